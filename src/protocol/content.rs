//! The sequenced content envelope: the payload of data messages and of
//! pushes that opt in.
//!
//! ```json
//! {"channel": "sensors:7", "aspect": "reading", "sequence": 42, "epoch": "k3v9",
//!  "produced_at": 1764000000000, "producer": "probe-1",
//!  "causation": {"channel": "sensors:7", "producer": "probe-1", "sequence": 41},
//!  "schema_ref": "reading/v1", "payload": {"celsius": 21.5}}
//! ```
//!
//! A publisher stamps `sequence` (per channel, monotonic), `produced_at` and
//! `producer`; a derived publish names the envelope it came from in
//! `causation`. On a recoverable hub topic the hub is the sequencer: it
//! restamps `sequence` and sets `epoch` so every member sees one gap-free
//! series per topic.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::clock::unix_millis;

/// Which envelope another one was derived from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Causation {
    /// Channel of the causing envelope.
    pub channel: String,
    /// Producer of the causing envelope.
    pub producer: String,
    /// Sequence of the causing envelope.
    pub sequence: u64,
}

/// One sequenced message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContentEnvelope {
    /// The channel (topic) it belongs to.
    pub channel: String,
    /// What kind of content the payload is (`reading`, `alert`, ...).
    pub aspect: String,
    /// Position in the channel: rises by exactly 1 per message.
    pub sequence: u64,
    /// The sequencer's epoch, when a hub sequenced it; positions from
    /// different epochs are never compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<String>,
    /// When it was produced, in Unix milliseconds.
    pub produced_at: u64,
    /// Who produced it.
    pub producer: String,
    /// The envelope it was derived from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation: Option<Causation>,
    /// Names the schema the payload follows, if the producer says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_ref: Option<String>,
    /// The content itself.
    pub payload: Value,
}

/// Why a value is not a content envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a content envelope: {0}")]
pub struct ContentError(pub String);

impl ContentEnvelope {
    /// A stamped envelope produced now.
    pub fn stamped(
        channel: &str,
        aspect: &str,
        sequence: u64,
        producer: &str,
        payload: Value,
    ) -> ContentEnvelope {
        ContentEnvelope {
            channel: channel.to_owned(),
            aspect: aspect.to_owned(),
            sequence,
            epoch: None,
            produced_at: unix_millis(),
            producer: producer.to_owned(),
            causation: None,
            schema_ref: None,
            payload,
        }
    }

    /// Reads an envelope out of a JSON value (a push payload or a data item).
    pub fn from_value(value: &Value) -> Result<ContentEnvelope, ContentError> {
        ContentEnvelope::deserialize(value).map_err(|error| ContentError(error.to_string()))
    }

    /// The envelope as a JSON value.
    pub fn to_value(&self) -> Value {
        // A struct of strings, numbers and a Value always serializes.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// This envelope as the cause of a derived one.
    pub fn as_cause(&self) -> Causation {
        Causation {
            channel: self.channel.clone(),
            producer: self.producer.clone(),
            sequence: self.sequence,
        }
    }

    /// The message id JetStream deduplicates on: `producer:sequence`.
    pub fn dedup_id(&self) -> String {
        format!("{}:{}", self.producer, self.sequence)
    }
}

/// What names one content envelope: its producer and sequence. The hub
/// deduplicates ingest on it; JetStream gets it as `Nats-Msg-Id`
/// (`producer:sequence`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EnvelopeKey {
    /// The producer that stamped it.
    pub producer: String,
    /// Its sequence.
    pub sequence: u64,
}

impl EnvelopeKey {
    /// The key of a JSON value that is a content envelope (every required
    /// field present, of its type), or `None`: the one test of "is this a
    /// content envelope". The fields are checked in place; nothing of the
    /// value is copied but the producer's name.
    pub fn of(value: &Value) -> Option<EnvelopeKey> {
        let (producer, sequence) = key_fields(value)?;
        Some(EnvelopeKey {
            producer: producer.to_owned(),
            sequence,
        })
    }
}

/// The fields of a JSON object that carries an `aspect` and a `payload`: a
/// content envelope, complete or still to be completed (a hub restamps it,
/// filling what a publisher left out). [`EnvelopeKey::of`] is the test of a
/// complete one.
pub(crate) fn envelope_body(value: &Value) -> Option<&serde_json::Map<String, Value>> {
    let fields = value.as_object()?;
    (fields.get("aspect").is_some_and(Value::is_string) && fields.contains_key("payload"))
        .then_some(fields)
}

/// The producer and sequence of a content envelope, once every required
/// field is seen to be there with its type (borrowed: nothing is copied).
pub(crate) fn key_fields(value: &Value) -> Option<(&str, u64)> {
    let producer = value.get("producer")?.as_str()?;
    let sequence = value.get("sequence")?.as_u64()?;
    value.get("channel")?.as_str()?;
    value.get("aspect")?.as_str()?;
    value.get("produced_at")?.as_u64()?;
    value.get("payload")?;
    Some((producer, sequence))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_through_json_without_empty_optionals() {
        let envelope = ContentEnvelope::stamped("c", "reading", 3, "p", json!({"v": 1}));
        let value = envelope.to_value();
        assert!(value.get("causation").is_none());
        assert!(value.get("epoch").is_none());
        assert_eq!(ContentEnvelope::from_value(&value), Ok(envelope));
    }

    #[test]
    fn a_derived_envelope_names_its_cause() {
        let cause = ContentEnvelope::stamped("c", "reading", 3, "p", json!({}));
        let mut derived = ContentEnvelope::stamped("c", "alert", 4, "q", json!({}));
        derived.causation = Some(cause.as_cause());
        let back = ContentEnvelope::from_value(&derived.to_value()).expect("parses");
        assert_eq!(
            back.causation,
            Some(Causation {
                channel: "c".into(),
                producer: "p".into(),
                sequence: 3
            })
        );
    }

    #[test]
    fn missing_fields_and_wrong_types_are_errors() {
        assert!(ContentEnvelope::from_value(&json!({"aspect": "a"})).is_err());
        assert!(ContentEnvelope::from_value(&json!([1, 2])).is_err());
        let mut value = ContentEnvelope::stamped("c", "a", 1, "p", json!(1)).to_value();
        value["sequence"] = json!(-1);
        assert!(ContentEnvelope::from_value(&value).is_err());
    }

    #[test]
    fn dedup_id_is_producer_and_sequence() {
        let envelope = ContentEnvelope::stamped("c", "a", 17, "probe-1", json!(null));
        assert_eq!(envelope.dedup_id(), "probe-1:17");
    }
}
