//! [`Payload`]: a message's JSON payload as it travelled, parsed only when
//! someone asks.

use std::fmt;

use bytestring::ByteString;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

/// The JSON payload of a message, kept as the text it arrived as (or was
/// encoded to once): no `serde_json::Value` is built unless asked for, and
/// a payload taken from a frame shares that frame's bytes, so passing it on
/// (a broadcast, an echo) copies nothing.
///
/// ```
/// use serde::Deserialize;
/// use serde_json::json;
/// use switchboard::protocol::Payload;
///
/// #[derive(Deserialize)]
/// struct Shout<'a> {
///     body: &'a str,
/// }
///
/// let payload = Payload::from(json!({"body": "hello"}));
/// assert_eq!(payload.json(), r#"{"body":"hello"}"#);
/// let shout: Shout = payload.parse()?;
/// assert_eq!(shout.body, "hello");
/// assert_eq!(payload.to_value()["body"], "hello");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Payload(ByteString);

impl Payload {
    /// `text` as a payload, once checked to be exactly one JSON value.
    pub fn from_json(text: impl Into<ByteString>) -> Result<Payload, serde_json::Error> {
        let text = text.into();
        serde_json::from_str::<&RawValue>(&text)?;
        Ok(Payload(text))
    }

    /// `value` encoded once as a payload.
    pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Payload, serde_json::Error> {
        serde_json::to_string(value).map(|text| Payload(text.into()))
    }

    /// `{}`.
    pub fn empty_object() -> Payload {
        Payload(ByteString::from_static("{}"))
    }

    /// `null`.
    pub fn null() -> Payload {
        Payload(ByteString::from_static("null"))
    }

    /// Text already known to be one JSON value (a slice of a parsed frame).
    pub(crate) fn trusted(text: ByteString) -> Payload {
        Payload(text)
    }

    /// The raw JSON text.
    pub fn json(&self) -> &str {
        &self.0
    }

    /// Parses the payload as `T`; `T` may borrow from it (`&str` fields).
    pub fn parse<'a, T: Deserialize<'a>>(&'a self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.0)
    }

    /// The payload as a `serde_json::Value` (a parse, each time).
    pub fn to_value(&self) -> Value {
        self.parse().unwrap_or(Value::Null)
    }

    /// Whether the payload is a JSON object (a look at its first byte).
    pub fn is_object(&self) -> bool {
        self.0.trim_start().starts_with('{')
    }

    /// The payload's length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the text is empty (never, for a payload made by this type).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Default for Payload {
    /// `{}`, what Phoenix sends when there is nothing to say.
    fn default() -> Payload {
        Payload::empty_object()
    }
}

impl From<Value> for Payload {
    fn from(value: Value) -> Payload {
        Payload::from(&value)
    }
}

impl From<&Value> for Payload {
    fn from(value: &Value) -> Payload {
        // A `Value` always encodes.
        Payload::encode(value).unwrap_or_else(|_| Payload::null())
    }
}

impl PartialEq<Value> for Payload {
    fn eq(&self, other: &Value) -> bool {
        self.parse::<Value>().is_ok_and(|value| value == *other)
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Payload({})", &*self.0)
    }
}

impl fmt::Display for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Payload {
    /// Written as the JSON it is, not as a string.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let raw: &RawValue = serde_json::from_str(&self.0).map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Payload, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        Ok(Payload(ByteString::from(String::from(Box::<str>::from(
            raw,
        )))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_payload_is_written_as_json_inside_other_json() {
        let payload = Payload::from_json(r#"{"a": [1, 2]}"#).expect("json");
        let frame = serde_json::to_string(&(None::<&str>, "t", &payload)).expect("encodes");
        assert_eq!(
            frame, r#"[null,"t",{"a": [1, 2]}]"#,
            "the bytes as they came"
        );
        let (_, _, back): (Option<String>, String, Payload) =
            serde_json::from_str(&frame).expect("decodes");
        assert_eq!(back, json!({"a": [1, 2]}));
    }

    #[test]
    fn only_one_json_value_is_a_payload() {
        assert!(Payload::from_json("{").is_err());
        assert!(Payload::from_json("1 2").is_err());
        assert!(Payload::from_json(" \"x\" ").is_ok());
        assert!(Payload::default().is_object() && !Payload::null().is_object());
    }
}
