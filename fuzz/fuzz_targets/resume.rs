//! The resume handshake's readers on arbitrary JSON text: a join payload's
//! `resume`, a join reply's `recovered`/`epoch`/`sequence`, a push's
//! position.
//!
//! What reads survives `add_to` + `read`, and `add_to` keeps every other
//! key of the object it adds to.

#![no_main]

#[path = "common/mod.rs"]
mod common;

use common::same;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use switchboard::protocol::resume::{self, Position, ResumeReply, ResumeRequest};

/// Every key of `before` but `except` is in `after`, unchanged.
fn keeps_others(before: &Value, after: &Value, except: &[&str]) {
    let (Some(before), Some(after)) = (before.as_object(), after.as_object()) else {
        return;
    };
    for (key, value) in before {
        if !except.contains(&key.as_str()) {
            let kept = after.get(key).is_some_and(|kept| same(kept, value));
            assert!(kept, "add_to lost or changed {key:?}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(text) = common::text(data) else {
        return;
    };
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return;
    };

    if let Some(request) = ResumeRequest::read(&value) {
        let params = request.add_to(&value);
        assert_eq!(ResumeRequest::read(&params), Some(request));
        keeps_others(&value, &params, &["resume"]);
    }
    // Whatever the payload, a request added to it reads back.
    let made = ResumeRequest {
        sequence: value.get("n").and_then(Value::as_u64).unwrap_or(7),
        epoch: value
            .get("e")
            .and_then(Value::as_str)
            .unwrap_or("e")
            .to_owned(),
        strict: value.get("s").and_then(Value::as_bool).unwrap_or(false),
    };
    let params = made.add_to(&value);
    assert_eq!(ResumeRequest::read(&params), Some(made));
    keeps_others(&value, &params, &["resume"]);

    if let Some(reply) = ResumeReply::read(&value) {
        let response = reply.add_to(value.clone());
        assert_eq!(ResumeReply::read(&response), Some(reply));
        keeps_others(&value, &response, &["recovered", "epoch", "sequence"]);
    }
    let made = ResumeReply {
        recovered: value.get("r").and_then(Value::as_bool).unwrap_or(true),
        epoch: "e".to_owned(),
        sequence: value.get("n").and_then(Value::as_u64).unwrap_or(3),
    };
    let response = made.add_to(value.clone());
    assert_eq!(ResumeReply::read(&response), Some(made));
    match &value {
        Value::Object(_) => keeps_others(&value, &response, &["recovered", "epoch", "sequence"]),
        Value::Null => {}
        other => assert!(same(&response["response"], other), "the response is kept"),
    }

    if let Some(position) = Position::read(&value) {
        assert_eq!(value["sequence"].as_u64(), Some(position.sequence));
        assert_eq!(value["epoch"].as_str(), Some(position.epoch));
    }
    let refused = resume::is_unrecovered(&value);
    assert_eq!(
        refused,
        value.get("reason").and_then(Value::as_str) == Some(resume::UNRECOVERED)
    );
});
