//! The Phoenix V2 frame decoder on arbitrary text.
//!
//! Beyond "never panics": the fast path (straight into a tuple) and the long
//! path (through a `Value`) agree; a decoded frame survives encode + decode;
//! a `phx_reply` payload that reads as a `Reply` survives its own round trip.

#![no_main]

#[path = "common/mod.rs"]
mod common;

use common::same;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use switchboard::protocol::phoenix::{self, Frame, Reply};

fn same_frame(a: &Frame, b: &Frame) -> bool {
    a.join_ref == b.join_ref
        && a.msg_ref == b.msg_ref
        && a.topic == b.topic
        && a.event == b.event
        && same(&a.payload, &b.payload)
}

fuzz_target!(|data: &[u8]| {
    let Some(text) = common::text(data) else {
        return;
    };
    let decoded = Frame::decode(text);

    // Whatever path `decode` took, the long one says the same.
    let long = serde_json::from_str::<Value>(text)
        .map_err(|_| ())
        .and_then(|value| Frame::from_value(value).map_err(|_| ()));
    match (&decoded, &long) {
        (Ok(a), Ok(b)) => assert!(same_frame(a, b), "paths disagree: {a:?} vs {b:?}"),
        (Err(_), Err(_)) => {}
        _ => panic!("one path decoded, the other did not: {decoded:?} vs {long:?}"),
    }

    let Ok(frame) = decoded else {
        return;
    };
    let encoded = frame.encode();
    let again = Frame::decode(&encoded).expect("an encoded frame decodes");
    assert!(
        same_frame(&frame, &again),
        "{frame:?} came back as {again:?}"
    );
    let parts = phoenix::encode_parts(
        frame.join_ref.as_deref(),
        frame.msg_ref.as_deref(),
        &frame.topic,
        &frame.event,
        &frame.payload,
    );
    assert_eq!(parts, encoded, "encode_parts and encode differ");

    let _ = phoenix::is_reserved_event(&frame.event);
    if let Ok(reply) = Reply::from_payload(&frame.payload) {
        let _ = reply.error_code();
        let back = Reply::from_payload(&reply.to_value()).expect("a reply reads back");
        assert_eq!(back.status, reply.status);
        assert!(
            same(&back.response, &reply.response),
            "{reply:?} vs {back:?}"
        );
    }
});
