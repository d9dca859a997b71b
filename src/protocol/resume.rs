//! The resume handshake of recoverable topics, both sides of it.
//!
//! A joiner that has delivered up to `sequence` in `epoch` adds
//! `{"resume": {"sequence": n, "epoch": e, "strict": b}}` to its join
//! payload ([`ResumeRequest`]). The hub's ok reply carries
//! `{"recovered": r, "epoch": e, "sequence": top}` beside the channel's own
//! response ([`ResumeReply`]), then replays what followed `n`, then live
//! messages. A strict resume the hub cannot recover is refused with the
//! reason [`UNRECOVERED`]. Every message on a recoverable topic carries its
//! [`Position`].

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::Payload;

/// The error reason a hub refuses a strict resume with, when its history
/// cannot fill the hole (SEQ-7).
pub const UNRECOVERED: &str = "unrecovered";

/// Where a joiner wants to resume from: the join payload's `resume`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumeRequest {
    /// The last sequence the joiner delivered.
    pub sequence: u64,
    /// The epoch that sequence belongs to.
    pub epoch: String,
    /// Refuse the join rather than start unrecovered (SEQ-7).
    #[serde(default)]
    pub strict: bool,
}

impl ResumeRequest {
    /// Reads `resume` out of a join payload; `None` when absent or malformed.
    pub fn read(join_payload: &Value) -> Option<ResumeRequest> {
        let resume = join_payload.get("resume")?;
        ResumeRequest::deserialize(resume).ok()
    }

    /// `params` (an object, or nothing) with this as its `resume`.
    pub fn add_to(&self, params: &Value) -> Value {
        let mut params = match params {
            Value::Object(object) => object.clone(),
            _ => Map::new(),
        };
        params.insert("resume".to_owned(), json!(self));
        Value::Object(params)
    }
}

/// What a hub answers about a join on a recoverable topic, in the ok reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeReply {
    /// The replay runs contiguously from the joiner's position to the top.
    pub recovered: bool,
    /// The topic's epoch.
    pub epoch: String,
    /// The topic's top sequence (the last one broadcast).
    pub sequence: u64,
}

impl ResumeReply {
    /// Reads it out of a join reply's response; `None` when the topic is not
    /// recoverable (no `epoch` and `sequence`). A missing `recovered` is false.
    pub fn read(response: &Value) -> Option<ResumeReply> {
        Some(ResumeReply {
            recovered: response.get("recovered").and_then(Value::as_bool) == Some(true),
            epoch: response.get("epoch")?.as_str()?.to_owned(),
            sequence: response.get("sequence")?.as_u64()?,
        })
    }

    /// `response` (the channel's own) with `recovered`, `epoch` and
    /// `sequence` added; a response that is not an object goes under
    /// `response`.
    pub fn add_to(&self, response: Value) -> Value {
        let mut object = match response {
            Value::Object(object) => object,
            Value::Null => Map::new(),
            other => Map::from_iter([("response".to_owned(), other)]),
        };
        object.insert("recovered".to_owned(), json!(self.recovered));
        object.insert("epoch".to_owned(), json!(self.epoch));
        object.insert("sequence".to_owned(), json!(self.sequence));
        Value::Object(object)
    }
}

/// Whether an error response is the refusal of a strict resume.
pub fn is_unrecovered(response: &Value) -> bool {
    response.get("reason").and_then(Value::as_str) == Some(UNRECOVERED)
}

/// The place of a message in its recoverable topic: the `sequence` and
/// `epoch` the hub stamped on its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position<'a> {
    /// The message's sequence.
    pub sequence: u64,
    /// The epoch it belongs to.
    pub epoch: &'a str,
}

impl Position<'_> {
    /// Reads it from a push payload; `None` for a message not sequenced.
    pub fn read(payload: &Value) -> Option<Position<'_>> {
        Some(Position {
            sequence: payload.get("sequence")?.as_u64()?,
            epoch: payload.get("epoch")?.as_str()?,
        })
    }

    /// Reads it from a raw push payload without building a `Value` (an
    /// epoch the hub wrote with escapes in it does not read).
    pub fn of(payload: &Payload) -> Option<Position<'_>> {
        #[derive(Deserialize)]
        struct Stamp<'a> {
            sequence: u64,
            epoch: &'a str,
        }
        let stamp: Stamp<'_> = payload.parse().ok()?;
        Some(Position {
            sequence: stamp.sequence,
            epoch: stamp.epoch,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_survives_its_round_trip_through_join_params() {
        let request = ResumeRequest {
            sequence: 41,
            epoch: "e".to_owned(),
            strict: true,
        };
        let params = request.add_to(&json!({"token": "t"}));
        assert_eq!(params["token"], "t");
        assert_eq!(ResumeRequest::read(&params), Some(request));
        assert_eq!(
            ResumeRequest::read(&json!({"resume": {"sequence": "x"}})),
            None
        );
        assert_eq!(ResumeRequest::read(&json!({})), None);
    }

    #[test]
    fn a_reply_survives_its_round_trip_and_keeps_the_channels_response() {
        let reply = ResumeReply {
            recovered: true,
            epoch: "e".to_owned(),
            sequence: 7,
        };
        let response = reply.add_to(json!({"welcome": 1}));
        assert_eq!(response["welcome"], 1);
        assert_eq!(ResumeReply::read(&response), Some(reply));
        assert_eq!(ResumeReply::read(&json!({"welcome": 1})), None);
        let wrapped = ResumeReply::read(&json!({"epoch": "e", "sequence": 1})).unwrap();
        assert!(!wrapped.recovered, "a missing `recovered` is false");
    }

    #[test]
    fn positions_and_refusals_are_read_in_place() {
        let payload = json!({"sequence": 3, "epoch": "e", "payload": {}});
        assert_eq!(
            Position::read(&payload),
            Some(Position {
                sequence: 3,
                epoch: "e"
            })
        );
        assert_eq!(Position::read(&json!({"sequence": 3})), None);
        assert!(is_unrecovered(&json!({"reason": UNRECOVERED})));
        assert!(!is_unrecovered(&json!({"reason": "forbidden"})));
    }
}
