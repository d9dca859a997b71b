//! Typed errors of the wire codecs and the channel error codes replies carry.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a frame from the network could not be decoded.
///
/// Every variant says what was wrong, so the caller can count it by reason
/// ([`DecodeError::reason`]) and log it without echoing the whole frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The text is not JSON at all.
    #[error("frame is not valid JSON: {0}")]
    Json(String),
    /// The JSON has the wrong top-level shape (e.g. an object where an array is expected).
    #[error("frame is not a JSON {expected}")]
    Shape {
        /// What the protocol expects at the top level.
        expected: &'static str,
    },
    /// A Phoenix V2 frame with fewer than five elements.
    #[error("frame has {found} elements, expected 5")]
    Arity {
        /// How many elements the array had.
        found: usize,
    },
    /// A field is missing or has the wrong JSON type.
    #[error("field `{field}` must be {expected}")]
    Field {
        /// The offending field.
        field: &'static str,
        /// What the field must be.
        expected: &'static str,
    },
    /// An envelope `type` this protocol does not know.
    #[error("unknown message type `{0}`")]
    UnknownType(String),
}

impl DecodeError {
    /// A short, stable label for metrics (`invalid_json`, `wrong_arity`, ...).
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::Json(_) => "invalid_json",
            DecodeError::Shape { .. } => "wrong_shape",
            DecodeError::Arity { .. } => "wrong_arity",
            DecodeError::Field { .. } => "bad_field",
            DecodeError::UnknownType(_) => "unknown_type",
        }
    }
}

/// The typed reasons a channel answers with in an error reply
/// (`{"status":"error","response":{"reason": <code>}}`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum ChannelErrorCode {
    /// The caller may not do this.
    Forbidden,
    /// The target does not exist.
    NotFound,
    /// The request changes nothing.
    Noop,
    /// The request is malformed.
    Invalid,
    /// The caller is sending too fast.
    RateLimited,
    /// No channel is routed for the topic, or the topic is not joined
    /// (Phoenix's own wording).
    UnmatchedTopic,
    /// The socket already joined as many topics as it may.
    TooManyChannels,
    /// The event is one of the protocol's own (`phx_*`, presence).
    ReservedEvent,
    /// Any other reason, kept verbatim.
    Other(String),
}

impl ChannelErrorCode {
    /// The code as it travels on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            ChannelErrorCode::Forbidden => "forbidden",
            ChannelErrorCode::NotFound => "not_found",
            ChannelErrorCode::Noop => "noop",
            ChannelErrorCode::Invalid => "invalid",
            ChannelErrorCode::RateLimited => "rate_limited",
            ChannelErrorCode::UnmatchedTopic => "unmatched topic",
            ChannelErrorCode::TooManyChannels => "too many channels joined",
            ChannelErrorCode::ReservedEvent => "reserved event",
            ChannelErrorCode::Other(other) => other,
        }
    }
}

impl From<String> for ChannelErrorCode {
    fn from(code: String) -> Self {
        match code.as_str() {
            "forbidden" => ChannelErrorCode::Forbidden,
            "not_found" => ChannelErrorCode::NotFound,
            "noop" => ChannelErrorCode::Noop,
            "invalid" => ChannelErrorCode::Invalid,
            "rate_limited" => ChannelErrorCode::RateLimited,
            "unmatched topic" => ChannelErrorCode::UnmatchedTopic,
            "reserved event" => ChannelErrorCode::ReservedEvent,
            "too many channels joined" => ChannelErrorCode::TooManyChannels,
            _ => ChannelErrorCode::Other(code),
        }
    }
}

impl From<ChannelErrorCode> for String {
    fn from(code: ChannelErrorCode) -> Self {
        code.as_str().to_owned()
    }
}

impl fmt::Display for ChannelErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
