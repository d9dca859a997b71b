//! Envelope v1 as the floor reads and writes it: each object parsed into
//! borrowed fields, one `ack` per `data` message in the hub's own format
//! (`{"type":"ack","id":…,"timestamp":…}`, no payload).

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// `type` of a data message.
pub const DATA: &str = "data";
/// `type` of an acknowledgement.
pub const ACK: &str = "ack";

/// One envelope, borrowed from its text.
#[derive(Debug, Deserialize, Serialize)]
pub struct Envelope<'a> {
    /// `data`, `ack`, ...
    #[serde(rename = "type")]
    pub kind: &'a str,
    /// The message's id (an ack's is the id it answers).
    pub id: &'a str,
    /// Unix milliseconds (absent reads as 0).
    #[serde(default)]
    pub timestamp: u64,
    /// Any JSON; left out of acks.
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<&'a RawValue>,
}

/// Parses one envelope.
pub fn parse(text: &str) -> anyhow::Result<Envelope<'_>> {
    serde_json::from_str(text).context("not an envelope")
}

/// The ack of the message `id`, stamped now.
pub fn ack(id: &str) -> String {
    encode(&Envelope {
        kind: ACK,
        id,
        timestamp: unix_millis(),
        payload: None,
    })
}

/// A data message `id` carrying `payload`, stamped now.
pub fn data(id: &str, payload: &RawValue) -> String {
    encode(&Envelope {
        kind: DATA,
        id,
        timestamp: unix_millis(),
        payload: Some(payload),
    })
}

/// The envelope as JSON text.
fn encode(envelope: &Envelope<'_>) -> String {
    // Strings, an integer and raw JSON: serializing cannot fail.
    serde_json::to_string(envelope).unwrap_or_default()
}

/// Milliseconds since the Unix epoch.
fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_acked_in_the_hubs_format() {
        let payload = RawValue::from_string(r#"{"body":"x"}"#.to_owned()).expect("json");
        let frame = data("f-7", &payload);
        let parsed = parse(&frame).expect("parses");
        assert_eq!((parsed.kind, parsed.id), (DATA, "f-7"));
        assert_eq!(parsed.payload.map(RawValue::get), Some(r#"{"body":"x"}"#));
        let answer = ack(parsed.id);
        let hub = switchboard::protocol::envelope::Envelope::decode(&answer).expect("decodes");
        assert_eq!(hub.type_name(), "ack");
        assert_eq!(hub.id, "f-7");
        assert!(answer.starts_with(r#"{"type":"ack","id":"f-7","timestamp":"#));
        assert!(!answer.contains("payload"));
    }
}
