//! Envelope v1 on arbitrary text: `Envelope::decode`, and for what does not
//! decode, `recover_id` and `nack_for_invalid`.
//!
//! A decoded envelope survives encode + decode; a frame that fails is
//! answered with a nack exactly when its id can be read, and that nack is
//! itself a valid envelope naming the same id.

#![no_main]

#[path = "common/mod.rs"]
mod common;

use common::{close, same};
use libfuzzer_sys::fuzz_target;
use switchboard::protocol::envelope::{self, Body, Envelope, ReplyBody};

fn same_body(a: &Body, b: &Body) -> bool {
    match (a, b) {
        (Body::Data(x), Body::Data(y)) => same(x, y),
        (
            Body::Request { method, params },
            Body::Request {
                method: m,
                params: p,
            },
        ) => method == m && same(params, p),
        (Body::Reply(ReplyBody::Ok(x)), Body::Reply(ReplyBody::Ok(y)))
        | (Body::Reply(ReplyBody::Error(x)), Body::Reply(ReplyBody::Error(y))) => same(x, y),
        (Body::Slow(x), Body::Slow(y)) => {
            x.queue_depth == y.queue_depth
                && x.queue_capacity == y.queue_capacity
                && x.resumed == y.resumed
                && close(x.utilization, y.utilization)
        }
        _ => a == b,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(text) = common::text(data) else {
        return;
    };
    match Envelope::decode(text) {
        Ok(decoded) => {
            assert_eq!(
                envelope::recover_id(text).as_deref(),
                Some(decoded.id.as_str()),
                "the id of a decoded envelope is recoverable"
            );
            let encoded = decoded.encode();
            assert!(!encoded.is_empty(), "an envelope encodes");
            let again = Envelope::decode(&encoded).expect("an encoded envelope decodes");
            assert_eq!(again.id, decoded.id);
            assert_eq!(again.timestamp, decoded.timestamp);
            assert_eq!(again.type_name(), decoded.type_name());
            assert!(
                same_body(&decoded.body, &again.body),
                "{decoded:?} came back as {again:?}"
            );
        }
        Err(error) => {
            assert!(!error.reason().is_empty());
            let nack = envelope::nack_for_invalid(text, &error);
            let id = envelope::recover_id(text);
            assert_eq!(nack.as_ref().map(|nack| &nack.id), id.as_ref());
            if let Some(nack) = nack {
                let back = Envelope::decode(&nack.encode()).expect("a nack decodes");
                assert_eq!(back.id, nack.id);
                match back.body {
                    Body::Nack {
                        reason,
                        error: detail,
                    } => {
                        assert_eq!(reason, error.reason());
                        assert_eq!(detail, Some(error.to_string()));
                    }
                    other => panic!("a nack came back as {other:?}"),
                }
            }
        }
    }
});
