//! Phoenix Channels V2: every text frame is `[join_ref, ref, topic, event, payload]`.

use std::borrow::Cow;

use bytestring::ByteString;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use super::error::{ChannelErrorCode, DecodeError};
use super::Payload;

/// The `vsn` query parameter that selects this protocol.
pub const VSN: &str = "2.0.0";
/// The topic heartbeats travel on.
pub const PHOENIX_TOPIC: &str = "phoenix";
/// Client heartbeat event.
pub const HEARTBEAT: &str = "heartbeat";
/// Join request event.
pub const PHX_JOIN: &str = "phx_join";
/// Leave request event.
pub const PHX_LEAVE: &str = "phx_leave";
/// Reply event; its payload is a [`Reply`].
pub const PHX_REPLY: &str = "phx_reply";
/// The server closed the channel.
pub const PHX_CLOSE: &str = "phx_close";
/// The channel crashed on the server.
pub const PHX_ERROR: &str = "phx_error";

/// Whether `event` is one of the protocol's own: phoenix.js takes a
/// `phx_*` event (`phx_close`, `phx_error`, `phx_reply`, ...) as its
/// channel's lifecycle, `chan_reply_<ref>` as the reply to its push `ref`,
/// and `presence_state` / `presence_diff` as the truth about who is online. No client may send one as an event, and no
/// broadcast or push may carry one.
pub fn is_reserved_event(event: &str) -> bool {
    // phoenix.js answers a pending push on `chan_reply_<ref>`: a member must
    // not be able to resolve another's pushes.
    event.starts_with("phx_")
        || event.starts_with("chan_reply_")
        || matches!(event, "presence_state" | "presence_diff")
}

/// One decoded Phoenix V2 message.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// The ref of the join this message belongs to, if any.
    pub join_ref: Option<String>,
    /// The message's own ref, used to match replies.
    pub msg_ref: Option<String>,
    /// The channel topic, e.g. `room:lobby`.
    pub topic: String,
    /// The event name.
    pub event: String,
    /// The JSON payload, raw (parse it with [`Payload::parse`]).
    pub payload: Payload,
}

/// A well-formed frame's fields, borrowed from its text.
#[derive(Deserialize)]
struct Parts<'a>(
    #[serde(borrow)] Option<Cow<'a, str>>,
    #[serde(borrow)] Option<Cow<'a, str>>,
    #[serde(borrow)] Cow<'a, str>,
    #[serde(borrow)] Cow<'a, str>,
    #[serde(borrow)] &'a RawValue,
);

impl Frame {
    /// Decodes one text frame. Extra trailing elements are ignored. The
    /// payload is copied out of `text` as it is, never parsed.
    pub fn decode(text: &str) -> Result<Frame, DecodeError> {
        Frame::decode_with(text, |raw| ByteString::from(raw))
    }

    /// Decodes a frame whose payload then shares `text`'s bytes (no copy).
    pub(crate) fn decode_shared(text: &ByteString) -> Result<Frame, DecodeError> {
        Frame::decode_with(text, |raw| text.slice_ref(raw))
    }

    fn decode_with(
        text: &str,
        keep: impl FnOnce(&str) -> ByteString,
    ) -> Result<Frame, DecodeError> {
        // The common, well-formed frame straight into its fields; anything
        // else goes the long way, which says exactly what is wrong.
        if let Ok(Parts(join_ref, msg_ref, topic, event, payload)) = serde_json::from_str(text) {
            return Ok(Frame {
                join_ref: join_ref.map(Cow::into_owned),
                msg_ref: msg_ref.map(Cow::into_owned),
                topic: topic.into_owned(),
                event: event.into_owned(),
                payload: Payload::trusted(keep(payload.get())),
            });
        }
        let value: Value =
            serde_json::from_str(text).map_err(|e| DecodeError::Json(e.to_string()))?;
        Frame::from_value(value)
    }

    /// Decodes an already parsed JSON value.
    pub fn from_value(value: Value) -> Result<Frame, DecodeError> {
        let Value::Array(items) = value else {
            return Err(DecodeError::Shape { expected: "array" });
        };
        if items.len() < 5 {
            return Err(DecodeError::Arity { found: items.len() });
        }
        let mut items = items.into_iter();
        let mut next = || items.next().unwrap_or(Value::Null);
        let join_ref = optional_ref(next(), "join_ref")?;
        let msg_ref = optional_ref(next(), "ref")?;
        let topic = required_string(next(), "topic")?;
        let event = required_string(next(), "event")?;
        let payload = Payload::from(next());
        Ok(Frame {
            join_ref,
            msg_ref,
            topic,
            event,
            payload,
        })
    }

    /// Encodes the frame as V2 JSON text.
    pub fn encode(&self) -> String {
        encode_raw(
            self.join_ref.as_deref(),
            self.msg_ref.as_deref(),
            &self.topic,
            &self.event,
            &self.payload,
        )
    }
}

fn optional_ref(value: Value, field: &'static str) -> Result<Option<String>, DecodeError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        _ => Err(DecodeError::Field {
            field,
            expected: "a string or null",
        }),
    }
}

fn required_string(value: Value, field: &'static str) -> Result<String, DecodeError> {
    match value {
        Value::String(s) => Ok(s),
        _ => Err(DecodeError::Field {
            field,
            expected: "a string",
        }),
    }
}

/// Encodes a frame around a raw payload, whose bytes are written as they are.
pub fn encode_raw(
    join_ref: Option<&str>,
    msg_ref: Option<&str>,
    topic: &str,
    event: &str,
    payload: &Payload,
) -> String {
    let mut frame = Vec::with_capacity(32 + topic.len() + event.len() + payload.len());
    // `[join_ref,ref,"topic","event"]` (strings and `None` always encode),
    // then its `]` becomes `,payload]`.
    let _ = serde_json::to_writer(&mut frame, &(join_ref, msg_ref, topic, event));
    frame.pop();
    frame.push(b',');
    frame.extend_from_slice(payload.json().as_bytes());
    frame.push(b']');
    String::from_utf8(frame).unwrap_or_default()
}

/// Encodes a frame from its parts without building a [`Frame`].
pub fn encode_parts<P: Serialize + ?Sized>(
    join_ref: Option<&str>,
    msg_ref: Option<&str>,
    topic: &str,
    event: &str,
    payload: &P,
) -> String {
    // Serializing a tuple of strings and a serializable payload cannot fail
    // unless the payload's own Serialize impl fails; fall back to null then.
    serde_json::to_string(&(join_ref, msg_ref, topic, event, payload)).unwrap_or_else(|_| {
        serde_json::to_string(&(join_ref, msg_ref, topic, event, Value::Null)).unwrap_or_default()
    })
}

/// The outcome carried by a `phx_reply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReplyStatus {
    /// The request succeeded.
    Ok,
    /// The request failed; the response says why.
    Error,
}

/// The payload of a `phx_reply`: `{"status": "ok"|"error", "response": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// Success or failure.
    pub status: ReplyStatus,
    /// The channel's answer (for errors, `{"reason": ...}`).
    #[serde(default)]
    pub response: Value,
}

impl Reply {
    /// A successful reply with `response`.
    pub fn ok(response: Value) -> Reply {
        Reply {
            status: ReplyStatus::Ok,
            response,
        }
    }

    /// An error reply `{"reason": code}`.
    pub fn error(code: &ChannelErrorCode) -> Reply {
        Reply {
            status: ReplyStatus::Error,
            response: serde_json::json!({ "reason": code.as_str() }),
        }
    }

    /// The error code of an error reply, if it carries a string `reason`.
    pub fn error_code(&self) -> Option<ChannelErrorCode> {
        if self.status != ReplyStatus::Error {
            return None;
        }
        self.response
            .get("reason")
            .and_then(Value::as_str)
            .map(|reason| ChannelErrorCode::from(reason.to_owned()))
    }

    /// Reads a reply out of a raw `phx_reply` payload.
    pub fn from_raw(payload: &Payload) -> Result<Reply, DecodeError> {
        payload.parse().map_err(|_| DecodeError::Field {
            field: "payload",
            expected: "an object with `status` \"ok\" or \"error\"",
        })
    }

    /// Reads a reply out of a `phx_reply` payload.
    pub fn from_payload(payload: &Value) -> Result<Reply, DecodeError> {
        Reply::deserialize(payload).map_err(|_| DecodeError::Field {
            field: "payload",
            expected: "an object with `status` \"ok\" or \"error\"",
        })
    }

    /// A `phx_reply` payload around a raw `response`, whose bytes are
    /// written as they are.
    pub(crate) fn raw(status: ReplyStatus, response: &Payload) -> Payload {
        let status = match status {
            ReplyStatus::Ok => "ok",
            ReplyStatus::Error => "error",
        };
        let text = format!(r#"{{"status":"{status}","response":{}}}"#, response.json());
        Payload::trusted(text.into())
    }

    /// The reply as a JSON value, ready to be a frame's payload.
    pub fn to_value(&self) -> Value {
        serde_json::json!({ "status": self.status, "response": self.response })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_events_and_presence_are_reserved() {
        for event in [
            "phx_close",
            "phx_error",
            "phx_reply",
            "phx_join",
            "phx_anything",
        ] {
            assert!(is_reserved_event(event), "{event}");
        }
        assert!(is_reserved_event("presence_state") && is_reserved_event("presence_diff"));
        assert!(
            is_reserved_event("chan_reply_7"),
            "would resolve another's push 7"
        );
        for event in ["shout", "phx", "presence", "heartbeat", "PHX_CLOSE"] {
            assert!(!is_reserved_event(event), "{event}");
        }
    }
    use serde_json::json;

    #[test]
    fn decodes_null_refs_and_ignores_trailing_elements() {
        let frame = Frame::decode(r#"[null,"7","phoenix","heartbeat",{},"extra"]"#).unwrap();
        assert_eq!(frame.join_ref, None);
        assert_eq!(frame.msg_ref.as_deref(), Some("7"));
        assert_eq!(frame.topic, "phoenix");
        assert_eq!(frame.payload, json!({}));
    }

    #[test]
    fn rejects_short_arrays_and_bad_fields() {
        assert_eq!(
            Frame::decode(r#"[null,"1","t"]"#),
            Err(DecodeError::Arity { found: 3 })
        );
        assert!(matches!(
            Frame::decode(r#"[null,"1",5,"e",{}]"#),
            Err(DecodeError::Field { field: "topic", .. })
        ));
        assert!(matches!(
            Frame::decode(r#"{"topic":"x"}"#),
            Err(DecodeError::Shape { .. })
        ));
        assert!(matches!(Frame::decode("[1,"), Err(DecodeError::Json(_))));
    }

    #[test]
    fn round_trips() {
        let frame = Frame {
            join_ref: Some("1".into()),
            msg_ref: None,
            topic: "room:a".into(),
            event: "new\"msg".into(),
            payload: json!({"body": "hi"}).into(),
        };
        assert_eq!(Frame::decode(&frame.encode()).unwrap(), frame);
    }

    #[test]
    fn reply_error_code_reads_reason() {
        let reply = Reply::error(&ChannelErrorCode::UnmatchedTopic);
        assert_eq!(
            reply.to_value(),
            json!({"status":"error","response":{"reason":"unmatched topic"}})
        );
        assert_eq!(reply.error_code(), Some(ChannelErrorCode::UnmatchedTopic));
    }
}
