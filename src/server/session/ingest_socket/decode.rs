//! The common case read in one pass: a `data` envelope's id and the raw
//! JSON text of its payload, and a content envelope's key within that
//! text, with no `Value` DOM built. Anything this does not read (another
//! type, a bad field, duplicate keys) goes the general way
//! ([`Envelope::decode`](crate::protocol::envelope::Envelope::decode)),
//! so what is accepted or refused, and how, does not change.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::protocol::content::key_fields;

/// A well-formed `data` envelope, borrowed from its frame.
pub(super) struct DataFrame<'a> {
    /// Its id.
    pub(super) id: Cow<'a, str>,
    /// Its payload's JSON text as sent (`null` when absent).
    pub(super) payload: &'a RawValue,
}

#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    id: Cow<'a, str>,
    /// Checked as the general decode checks it: absent, null or a u64.
    #[serde(default)]
    #[allow(dead_code)]
    timestamp: Option<u64>,
    #[serde(borrow, default)]
    payload: Field<'a>,
}

/// A field that may be absent, kept apart from one that is `null`.
#[derive(Default)]
struct Field<'a>(Option<&'a RawValue>);

impl<'de: 'a, 'a> Deserialize<'de> for Field<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <&'a RawValue>::deserialize(deserializer).map(|raw| Field(Some(raw)))
    }
}

const NULL: &str = "null";

/// The frame as a `data` envelope, or `None` for anything else.
pub(super) fn data_frame(text: &str) -> Option<DataFrame<'_>> {
    // A frame without the word is no data envelope this path reads (an
    // escaped spelling goes the general way): other types are parsed once.
    if !text.contains("\"data\"") {
        return None;
    }
    let wire: Wire<'_> = serde_json::from_str(text).ok()?;
    if wire.kind != crate::protocol::envelope::TYPE_DATA {
        return None;
    }
    let payload = match wire.payload.0 {
        Some(raw) => raw,
        None => serde_json::from_str(NULL).ok()?,
    };
    Some(DataFrame {
        id: wire.id,
        payload,
    })
}

/// The fields a content envelope must carry, each kept as raw text.
#[derive(Deserialize)]
struct KeyWire<'a> {
    #[serde(borrow, default)]
    producer: Field<'a>,
    #[serde(borrow, default)]
    sequence: Field<'a>,
    #[serde(borrow, default)]
    channel: Field<'a>,
    #[serde(borrow, default)]
    aspect: Field<'a>,
    #[serde(borrow, default)]
    produced_at: Field<'a>,
    #[serde(borrow, default)]
    payload: Field<'a>,
}

/// The producer and sequence of a payload that is a content envelope (as
/// [`key_fields`] reads them from a `Value`).
pub(super) fn content_key(payload: &RawValue) -> Option<(String, u64)> {
    let Ok(wire) = serde_json::from_str::<KeyWire<'_>>(payload.get()) else {
        // Not an object, or one with duplicate keys: the general reading.
        let value: Value = serde_json::from_str(payload.get()).ok()?;
        return key_fields(&value).map(|(producer, sequence)| (producer.to_owned(), sequence));
    };
    let producer: String = serde_json::from_str(wire.producer.0?.get()).ok()?;
    let sequence: u64 = serde_json::from_str(wire.sequence.0?.get()).ok()?;
    is_string(wire.channel)?;
    is_string(wire.aspect)?;
    serde_json::from_str::<u64>(wire.produced_at.0?.get()).ok()?;
    wire.payload.0?;
    Some((producer, sequence))
}

/// `Some` when the field is there and a JSON string (raw text starts at
/// the value: a string starts with its quote).
fn is_string(field: Field<'_>) -> Option<()> {
    field.0?.get().starts_with('"').then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key_of(value: &Value) -> Option<(String, u64)> {
        let text = value.to_string();
        let raw: &RawValue = serde_json::from_str(&text).expect("raw");
        content_key(raw)
    }

    #[test]
    fn reads_a_data_frame_raw() {
        let text = r#"{"type":"data","id":"a\"1","timestamp":5,"payload": {"v" : 1.50}}"#;
        let frame = data_frame(text).expect("data");
        assert_eq!(frame.id, "a\"1");
        assert_eq!(frame.payload.get(), r#"{"v" : 1.50}"#, "as sent");
        let bare = data_frame(r#"{"type":"data","id":"b"}"#).expect("data");
        assert_eq!(bare.payload.get(), "null");
        let null = data_frame(r#"{"type":"data","id":"b","payload":null,"timestamp":null}"#);
        assert_eq!(null.expect("data").payload.get(), "null");
    }

    #[test]
    fn leaves_the_rest_to_the_general_decode() {
        for text in [
            r#"{"type":"request","id":"r","payload":{"method":"status"}}"#,
            r#"{"type":"data","id":7,"payload":1}"#,
            r#"{"type":"data","id":"x","timestamp":-1}"#,
            r#"{"type":"data","id":"x","timestamp":"now"}"#,
            r#"{"type":"data","id":"x","id":"y"}"#,
            r#"{"type":"data","id":"x"} trailing"#,
            r#"["data"]"#,
        ] {
            assert!(data_frame(text).is_none(), "{text}");
        }
    }

    #[test]
    fn content_keys_match_the_value_reading() {
        let full = json!({"producer": "p", "sequence": 3, "channel": "c", "aspect": "a",
                          "produced_at": 9, "payload": null});
        let cases = [
            full.clone(),
            json!({"producer": "p", "sequence": 3.0, "channel": "c", "aspect": "a",
                   "produced_at": 9, "payload": 1}),
            json!({"producer": "p", "sequence": -3, "channel": "c", "aspect": "a",
                   "produced_at": 9, "payload": 1}),
            json!({"producer": 1, "sequence": 3, "channel": "c", "aspect": "a",
                   "produced_at": 9, "payload": 1}),
            json!({"producer": "p\n", "sequence": 3, "channel": 2, "aspect": "a",
                   "produced_at": 9, "payload": 1}),
            json!({"producer": "p", "sequence": 3, "channel": "c", "aspect": "a",
                   "produced_at": 9}),
            json!({"body": "x"}),
            json!([1, 2]),
            json!("text"),
        ];
        for value in cases {
            let expected = key_fields(&value).map(|(p, s)| (p.to_owned(), s));
            assert_eq!(key_of(&value), expected, "{value}");
        }
        assert_eq!(key_of(&full), Some(("p".to_owned(), 3)));
        let duplicated = r#"{"producer":"p","producer":"q","sequence":1,"channel":"c",
                            "aspect":"a","produced_at":1,"payload":1}"#;
        let raw: &RawValue = serde_json::from_str(duplicated).expect("raw");
        assert_eq!(content_key(raw), Some(("q".to_owned(), 1)), "the last wins");
    }
}
