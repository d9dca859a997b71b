//! The 100-byte messages every scenario moves, in each side's framing.
//!
//! The application payload is always 100 bytes: the baseline sends it as
//! the whole text frame; switchboard and the peer carry the same 100 bytes
//! of JSON inside a Phoenix V2 array or an envelope v1 object, which is the
//! framing those protocols add.

use serde_json::{json, Value};
use switchboard::protocol::envelope::Envelope;
use switchboard::protocol::phoenix;

/// Size of every application message.
pub const MESSAGE_BYTES: usize = 100;

/// The topic every Phoenix scenario uses (routed to the bench channel).
pub const TOPIC: &str = "bench:load";

/// The event the bench channel counts without replying.
pub const COUNT_EVENT: &str = "count";

/// The event the bench channel answers with its own payload.
pub const PING_EVENT: &str = "ping";

/// The event of hub broadcasts.
pub const BROADCAST_EVENT: &str = "news";

/// `{"body":"xxx…"}`, exactly [`MESSAGE_BYTES`] bytes of JSON.
pub fn json_payload() -> Value {
    let overhead = r#"{"body":""}"#.len();
    json!({ "body": "x".repeat(MESSAGE_BYTES - overhead) })
}

/// The baseline's message: [`MESSAGE_BYTES`] bytes of text.
pub fn raw_text() -> String {
    json_payload().to_string()
}

/// A Phoenix V2 push of `payload` on [`TOPIC`], as the peer sends it.
pub fn phoenix_push(msg_ref: u64, event: &str, payload: &Value) -> String {
    phoenix::encode_parts(Some("1"), Some(&msg_ref.to_string()), TOPIC, event, payload)
}

/// The Phoenix V2 join of [`TOPIC`] with join_ref = ref = "1".
pub fn phoenix_join() -> String {
    phoenix::encode_parts(Some("1"), Some("1"), TOPIC, "phx_join", &json!({}))
}

/// An envelope v1 `data` message carrying `payload`.
pub fn envelope_data(id: u64, payload: Value) -> String {
    Envelope::data(format!("peer-{id}"), payload).encode()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_one_hundred_bytes() {
        assert_eq!(json_payload().to_string().len(), MESSAGE_BYTES);
        assert_eq!(raw_text().len(), MESSAGE_BYTES);
    }
}
