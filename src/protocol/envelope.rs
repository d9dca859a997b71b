//! Envelope v1, the ingest protocol: one JSON object per text frame.
//!
//! ```json
//! {"type": "data", "id": "data-001", "timestamp": 1704844800000, "payload": {"value": 23.5}}
//! ```
//!
//! | `type`    | `payload`                                                                 |
//! |-----------|---------------------------------------------------------------------------|
//! | `data`    | any JSON (absent reads as `null`)                                          |
//! | `request` | `{"method": string, "params"?: any}`                                       |
//! | `reply`   | `{"status": "ok", "result"?: any}` or `{"status": "error", "error"?: any}` |
//! | `ack`     | none (anything sent is ignored)                                            |
//! | `nack`    | `{"reason": string, "error"?: string}`                                     |
//! | `slow`    | `{"queue_depth": u64, "queue_capacity": u64, "utilization": number, "resumed"?: bool}` |
//!
//! Correlation: `reply`, `ack` and `nack` carry **the id of the message they
//! answer** in their own `id` field; there is no separate `reply_to` field. A
//! `reply` to request `req-7` therefore has `"id": "req-7"`.
//!
//! Decisions this codec makes:
//!
//! - `type` and `id` are required strings (an empty `id` is accepted as-is).
//! - `timestamp` is unix milliseconds as a non-negative integer. A missing or
//!   `null` timestamp is tolerated and reads as `0`; any other non-integer
//!   value is an error. Constructors stamp the current time.
//! - The end of backpressure is a `slow` message with `"resumed": true` (and
//!   the current depth, capacity and utilization). `resumed` is written only
//!   when true, so an overload signal looks exactly like the classic `slow`
//!   message; a missing or `null` `resumed` reads as `false`.
//! - Fields the protocol does not name are ignored, at the top level and in
//!   payloads, so newer peers can add fields.
//!
//! Decoding never panics. Frames that fail to decode should be dropped,
//! counted by [`DecodeError::reason`], and answered with a `nack` when an id
//! can be read: see [`recover_id`] and [`nack_for_invalid`].

use serde::Serialize;
use serde_json::{Map, Value};

use super::clock::unix_millis;
use super::error::DecodeError;

/// `type` of an application data message.
pub(crate) const TYPE_DATA: &str = "data";
/// `type` of a control-plane request.
pub(crate) const TYPE_REQUEST: &str = "request";
/// `type` of the answer to a request.
pub(crate) const TYPE_REPLY: &str = "reply";
/// `type` of a positive acknowledgement.
pub(crate) const TYPE_ACK: &str = "ack";
/// `type` of a negative acknowledgement.
pub(crate) const TYPE_NACK: &str = "nack";
/// `type` of a backpressure signal (overload, or resume with `"resumed": true`).
pub(crate) const TYPE_SLOW: &str = "slow";

/// One envelope v1 message.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// The message's id. For `reply`, `ack` and `nack` this is the id of the
    /// message being answered.
    pub id: String,
    /// When the message was produced, in unix milliseconds (`0` when the
    /// sender left it out).
    pub timestamp: u64,
    /// The type and its typed payload.
    pub body: Body,
}

/// The typed content of an [`Envelope`], one variant per `type`.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// `data`: application data, any JSON.
    Data(Value),
    /// `request`: a control-plane call.
    Request {
        /// The method to call.
        method: String,
        /// Its parameters (`null` when absent).
        params: Value,
    },
    /// `reply`: the outcome of the request whose id the envelope carries.
    Reply(ReplyBody),
    /// `ack`: the message whose id the envelope carries was accepted.
    Ack,
    /// `nack`: the message whose id the envelope carries was not accepted.
    Nack {
        /// A short machine-readable reason (`invalid_json`, `queue_full`, ...).
        reason: String,
        /// Optional human-readable detail.
        error: Option<String>,
    },
    /// `slow`: the receiver's queue is filling up, or (with
    /// [`SlowSignal::resumed`]) has drained again.
    Slow(SlowSignal),
}

/// The payload of a `reply`.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplyBody {
    /// `{"status": "ok", "result": ...}`; the result is `null` when absent.
    Ok(Value),
    /// `{"status": "error", "error": ...}`; the error is `null` when absent.
    Error(Value),
}

impl ReplyBody {
    /// Whether the request succeeded.
    pub fn is_ok(&self) -> bool {
        matches!(self, ReplyBody::Ok(_))
    }

    /// The result of a success or the error of a failure.
    pub fn value(&self) -> &Value {
        match self {
            ReplyBody::Ok(value) | ReplyBody::Error(value) => value,
        }
    }
}

/// The payload of a `slow` message.
#[derive(Debug, Clone, PartialEq)]
pub struct SlowSignal {
    /// Items waiting in the receiver's queue.
    pub queue_depth: u64,
    /// The queue's capacity.
    pub queue_capacity: u64,
    /// `queue_depth / queue_capacity`, from 0.0 to 1.0. A non-finite value is
    /// written as `0` (JSON has no NaN or infinity).
    pub utilization: f64,
    /// `false`: slow down. `true`: the queue has drained, resume the normal rate.
    pub resumed: bool,
}

impl SlowSignal {
    /// A signal for `queue_depth` of `queue_capacity`, computing the
    /// utilization rounded to four decimal places (`0.0` when the capacity
    /// is 0). The rounding keeps the wire short and lets the value survive a
    /// trip through JSON text exactly.
    pub fn new(queue_depth: u64, queue_capacity: u64, resumed: bool) -> SlowSignal {
        let utilization = if queue_capacity == 0 {
            0.0
        } else {
            let exact = queue_depth as f64 / queue_capacity as f64;
            (exact * 10_000.0).round() / 10_000.0
        };
        SlowSignal {
            queue_depth,
            queue_capacity,
            utilization,
            resumed,
        }
    }
}

impl Envelope {
    /// An envelope with `id` and `body`, stamped with the current time.
    pub fn new(id: impl Into<String>, body: Body) -> Envelope {
        Envelope {
            id: id.into(),
            timestamp: unix_millis(),
            body,
        }
    }

    /// A `data` message.
    pub fn data(id: impl Into<String>, payload: Value) -> Envelope {
        Envelope::new(id, Body::Data(payload))
    }

    /// A `request` calling `method` with `params`.
    pub fn request(id: impl Into<String>, method: impl Into<String>, params: Value) -> Envelope {
        Envelope::new(
            id,
            Body::Request {
                method: method.into(),
                params,
            },
        )
    }

    /// A successful `reply` to the request `request_id`.
    pub fn reply_ok(request_id: impl Into<String>, result: Value) -> Envelope {
        Envelope::new(request_id, Body::Reply(ReplyBody::Ok(result)))
    }

    /// A failed `reply` to the request `request_id`.
    pub fn reply_error(request_id: impl Into<String>, error: Value) -> Envelope {
        Envelope::new(request_id, Body::Reply(ReplyBody::Error(error)))
    }

    /// An `ack` of the message `message_id`.
    pub fn ack(message_id: impl Into<String>) -> Envelope {
        Envelope::new(message_id, Body::Ack)
    }

    /// A `nack` of the message `message_id`.
    pub fn nack(
        message_id: impl Into<String>,
        reason: impl Into<String>,
        error: Option<String>,
    ) -> Envelope {
        Envelope::new(
            message_id,
            Body::Nack {
                reason: reason.into(),
                error,
            },
        )
    }

    /// A `slow` message: the queue holds `queue_depth` of `queue_capacity`.
    pub fn slow(id: impl Into<String>, queue_depth: u64, queue_capacity: u64) -> Envelope {
        Envelope::new(
            id,
            Body::Slow(SlowSignal::new(queue_depth, queue_capacity, false)),
        )
    }

    /// A `slow` message with `"resumed": true`: the queue has drained to
    /// `queue_depth` of `queue_capacity` and senders may resume.
    pub fn resumed(id: impl Into<String>, queue_depth: u64, queue_capacity: u64) -> Envelope {
        Envelope::new(
            id,
            Body::Slow(SlowSignal::new(queue_depth, queue_capacity, true)),
        )
    }

    /// The same envelope with `timestamp` replaced.
    pub fn with_timestamp(mut self, timestamp: u64) -> Envelope {
        self.timestamp = timestamp;
        self
    }

    /// The wire `type` of this envelope (`"data"`, `"ack"`, ...).
    pub fn type_name(&self) -> &'static str {
        self.body.type_name()
    }

    /// Decodes one text frame.
    pub fn decode(text: &str) -> Result<Envelope, DecodeError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| DecodeError::Json(e.to_string()))?;
        Envelope::from_value(value)
    }

    /// Decodes an already parsed JSON value.
    pub fn from_value(value: Value) -> Result<Envelope, DecodeError> {
        let Value::Object(mut fields) = value else {
            return Err(DecodeError::Shape { expected: "object" });
        };
        let id = match fields.remove("id") {
            Some(Value::String(id)) => id,
            _ => return Err(field_error("id", "a string")),
        };
        let type_name = match fields.remove("type") {
            Some(Value::String(name)) => name,
            _ => return Err(field_error("type", "a string")),
        };
        let timestamp = match fields.remove("timestamp") {
            None | Some(Value::Null) => 0,
            Some(Value::Number(n)) => n
                .as_u64()
                .ok_or_else(|| field_error("timestamp", TIMESTAMP_EXPECTED))?,
            Some(_) => return Err(field_error("timestamp", TIMESTAMP_EXPECTED)),
        };
        let payload = fields.remove("payload").unwrap_or(Value::Null);
        let body = Body::from_parts(&type_name, payload)?;
        Ok(Envelope {
            id,
            timestamp,
            body,
        })
    }

    /// Encodes the envelope as JSON text. `ack` is written without a payload.
    pub fn encode(&self) -> String {
        let wire = WireEnvelope {
            kind: self.type_name(),
            id: &self.id,
            timestamp: self.timestamp,
            payload: self.body.wire_payload(),
        };
        // Every part is a string, an integer, a finite float or a JSON value,
        // so serializing cannot fail; an empty string is unreachable.
        serde_json::to_string(&wire).unwrap_or_default()
    }
}

impl Body {
    /// The wire `type` of this body.
    pub fn type_name(&self) -> &'static str {
        match self {
            Body::Data(_) => TYPE_DATA,
            Body::Request { .. } => TYPE_REQUEST,
            Body::Reply(_) => TYPE_REPLY,
            Body::Ack => TYPE_ACK,
            Body::Nack { .. } => TYPE_NACK,
            Body::Slow(_) => TYPE_SLOW,
        }
    }

    fn from_parts(type_name: &str, payload: Value) -> Result<Body, DecodeError> {
        match type_name {
            TYPE_DATA => Ok(Body::Data(payload)),
            TYPE_ACK => Ok(Body::Ack),
            TYPE_REQUEST => {
                let mut payload = payload_object(payload, "an object with a string `method`")?;
                let method = required_string(&mut payload, "payload.method")?;
                let params = payload.remove("params").unwrap_or(Value::Null);
                Ok(Body::Request { method, params })
            }
            TYPE_REPLY => {
                let mut payload = payload_object(payload, "an object with a `status`")?;
                match payload.remove("status") {
                    Some(Value::String(status)) if status == "ok" => Ok(Body::Reply(
                        ReplyBody::Ok(payload.remove("result").unwrap_or(Value::Null)),
                    )),
                    Some(Value::String(status)) if status == "error" => Ok(Body::Reply(
                        ReplyBody::Error(payload.remove("error").unwrap_or(Value::Null)),
                    )),
                    _ => Err(field_error("payload.status", "\"ok\" or \"error\"")),
                }
            }
            TYPE_NACK => {
                let mut payload = payload_object(payload, "an object with a string `reason`")?;
                let reason = required_string(&mut payload, "payload.reason")?;
                let error = match payload.remove("error") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(error)) => Some(error),
                    Some(_) => return Err(field_error("payload.error", "a string or null")),
                };
                Ok(Body::Nack { reason, error })
            }
            TYPE_SLOW => {
                let mut payload = payload_object(
                    payload,
                    "an object with `queue_depth`, `queue_capacity` and `utilization`",
                )?;
                let queue_depth = required_u64(&mut payload, "payload.queue_depth")?;
                let queue_capacity = required_u64(&mut payload, "payload.queue_capacity")?;
                let utilization = payload
                    .remove("utilization")
                    .and_then(|value| value.as_f64())
                    .ok_or_else(|| field_error("payload.utilization", "a number"))?;
                let resumed = match payload.remove("resumed") {
                    None | Some(Value::Null) => false,
                    Some(Value::Bool(resumed)) => resumed,
                    Some(_) => return Err(field_error("payload.resumed", "a boolean")),
                };
                Ok(Body::Slow(SlowSignal {
                    queue_depth,
                    queue_capacity,
                    utilization,
                    resumed,
                }))
            }
            other => Err(DecodeError::UnknownType(other.to_owned())),
        }
    }

    fn wire_payload(&self) -> Option<WirePayload<'_>> {
        Some(match self {
            Body::Data(payload) => WirePayload::Value(payload),
            Body::Ack => return None,
            Body::Request { method, params } => WirePayload::Request { method, params },
            Body::Reply(ReplyBody::Ok(result)) => WirePayload::Reply {
                status: "ok",
                result: Some(result),
                error: None,
            },
            Body::Reply(ReplyBody::Error(error)) => WirePayload::Reply {
                status: "error",
                result: None,
                error: Some(error),
            },
            Body::Nack { reason, error } => WirePayload::Nack {
                reason,
                error: error.as_deref(),
            },
            Body::Slow(signal) => WirePayload::Slow {
                queue_depth: signal.queue_depth,
                queue_capacity: signal.queue_capacity,
                utilization: if signal.utilization.is_finite() {
                    signal.utilization
                } else {
                    0.0
                },
                resumed: signal.resumed,
            },
        })
    }
}

/// Reads the `id` of a frame that did not decode, so the sender can be
/// answered with a `nack`.
///
/// Returns `Some` when `text` is a JSON object whose `id` is a string,
/// whatever else is wrong with it (unknown `type`, bad payload, ...), and
/// `None` otherwise (not JSON, not an object, no string `id`).
pub fn recover_id(text: &str) -> Option<String> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(mut fields)) => match fields.remove("id") {
            Some(Value::String(id)) => Some(id),
            _ => None,
        },
        _ => None,
    }
}

/// The `nack` answering a frame that failed with `error`, if the frame's id
/// can be read ([`recover_id`]). Its reason is [`DecodeError::reason`] and its
/// error the error's message.
pub fn nack_for_invalid(text: &str, error: &DecodeError) -> Option<Envelope> {
    recover_id(text).map(|id| Envelope::nack(id, error.reason(), Some(error.to_string())))
}

const TIMESTAMP_EXPECTED: &str = "a non-negative integer (unix milliseconds)";

fn field_error(field: &'static str, expected: &'static str) -> DecodeError {
    DecodeError::Field { field, expected }
}

fn payload_object(
    payload: Value,
    expected: &'static str,
) -> Result<Map<String, Value>, DecodeError> {
    match payload {
        Value::Object(fields) => Ok(fields),
        _ => Err(field_error("payload", expected)),
    }
}

// `field` names a payload field as errors report it (`payload.method`); the
// key looked up in the payload object is the part after `payload.`.
fn required_string(
    fields: &mut Map<String, Value>,
    field: &'static str,
) -> Result<String, DecodeError> {
    let key = field.trim_start_matches("payload.");
    match fields.remove(key) {
        Some(Value::String(s)) => Ok(s),
        _ => Err(field_error(field, "a string")),
    }
}

fn required_u64(fields: &mut Map<String, Value>, field: &'static str) -> Result<u64, DecodeError> {
    let key = field.trim_start_matches("payload.");
    fields
        .remove(key)
        .and_then(|value| value.as_u64())
        .ok_or_else(|| field_error(field, "a non-negative integer"))
}

/// The envelope as written, borrowing from an [`Envelope`].
#[derive(Serialize)]
struct WireEnvelope<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
    timestamp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<WirePayload<'a>>,
}

/// A payload as written; each variant serializes as a plain JSON value.
#[derive(Serialize)]
#[serde(untagged)]
enum WirePayload<'a> {
    Value(&'a Value),
    Request {
        method: &'a str,
        #[serde(skip_serializing_if = "is_null")]
        params: &'a Value,
    },
    Reply {
        status: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        result: Option<&'a Value>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<&'a Value>,
    },
    Nack {
        reason: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<&'a str>,
    },
    Slow {
        queue_depth: u64,
        queue_capacity: u64,
        utilization: f64,
        #[serde(skip_serializing_if = "is_false")]
        resumed: bool,
    },
}

fn is_null(value: &&Value) -> bool {
    value.is_null()
}

fn is_false(flag: &bool) -> bool {
    !*flag
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip(envelope: Envelope) {
        let text = envelope.encode();
        assert_eq!(Envelope::decode(&text), Ok(envelope), "text: {text}");
    }

    #[test]
    fn data_round_trips_and_matches_the_wire_format() {
        let envelope = Envelope::data("data-001", json!({"sensor_id": "temp-01", "value": 23.5}))
            .with_timestamp(1_704_844_800_000);
        let wire: Value = serde_json::from_str(&envelope.encode()).unwrap();
        assert_eq!(
            wire,
            json!({"type": "data", "id": "data-001", "timestamp": 1_704_844_800_000u64,
                   "payload": {"sensor_id": "temp-01", "value": 23.5}})
        );
        round_trip(envelope);
        round_trip(Envelope::data("d", Value::Null));
        round_trip(Envelope::data("d", json!([1, "two", null])));
    }

    #[test]
    fn request_round_trips() {
        round_trip(Envelope::request(
            "req-001",
            "backpressure",
            json!({"rate_limit": 100, "unit": "msg/sec"}),
        ));
        round_trip(Envelope::request("req-002", "status", Value::Null));
    }

    #[test]
    fn reply_round_trips_and_carries_the_request_id() {
        let ok = Envelope::reply_ok("req-001", json!({"adjusted_to": 100}));
        assert_eq!(ok.id, "req-001");
        let wire: Value = serde_json::from_str(&ok.encode()).unwrap();
        assert_eq!(
            wire["payload"],
            json!({"status": "ok", "result": {"adjusted_to": 100}})
        );
        round_trip(ok);
        round_trip(Envelope::reply_error("req-002", json!("unknown method")));
        round_trip(Envelope::reply_ok("req-003", Value::Null));
        round_trip(Envelope::reply_error("req-004", Value::Null));
    }

    #[test]
    fn ack_round_trips_without_payload() {
        let ack = Envelope::ack("data-001").with_timestamp(5);
        assert_eq!(
            ack.encode(),
            r#"{"type":"ack","id":"data-001","timestamp":5}"#
        );
        round_trip(ack);
        let with_payload =
            Envelope::decode(r#"{"type":"ack","id":"x","timestamp":1,"payload":{"a":1}}"#);
        assert_eq!(with_payload.map(|e| e.body), Ok(Body::Ack));
    }

    #[test]
    fn nack_round_trips() {
        round_trip(Envelope::nack(
            "data-001",
            "publish_failed",
            Some("nats down".into()),
        ));
        let bare = Envelope::nack("data-002", "queue_full", None);
        let wire: Value = serde_json::from_str(&bare.encode()).unwrap();
        assert_eq!(wire["payload"], json!({"reason": "queue_full"}));
        round_trip(bare);
    }

    #[test]
    fn slow_and_resume_round_trip() {
        let slow = Envelope::slow("bp-001", 850, 1000);
        assert_eq!(
            slow.body,
            Body::Slow(SlowSignal {
                queue_depth: 850,
                queue_capacity: 1000,
                utilization: 0.85,
                resumed: false,
            })
        );
        let wire: Value = serde_json::from_str(&slow.encode()).unwrap();
        assert_eq!(
            wire["payload"],
            json!({"queue_depth": 850, "queue_capacity": 1000, "utilization": 0.85})
        );
        round_trip(slow);
        let resumed = Envelope::resumed("bp-002", 400, 1000);
        let wire: Value = serde_json::from_str(&resumed.encode()).unwrap();
        assert_eq!(wire["payload"]["resumed"], json!(true));
        round_trip(resumed);
        assert_eq!(SlowSignal::new(3, 0, false).utilization, 0.0);
        assert_eq!(SlowSignal::new(1607, 201, false).utilization, 7.995);
        assert_eq!(SlowSignal::new(1, 3, true).utilization, 0.3333);
    }

    #[test]
    fn non_finite_utilization_is_written_as_zero() {
        let mut slow = Envelope::slow("bp", 1, 2);
        if let Body::Slow(signal) = &mut slow.body {
            signal.utilization = f64::NAN;
        }
        let decoded = Envelope::decode(&slow.encode()).unwrap();
        assert!(
            matches!(decoded.body, Body::Slow(SlowSignal { utilization, .. }) if utilization == 0.0)
        );
    }

    #[test]
    fn missing_timestamp_reads_as_zero_and_extra_fields_are_ignored() {
        let envelope = Envelope::decode(r#"{"type":"ack","id":"a","extra":true}"#).unwrap();
        assert_eq!(envelope.timestamp, 0);
        let envelope = Envelope::decode(r#"{"type":"data","id":"a","timestamp":null}"#).unwrap();
        assert_eq!(envelope.timestamp, 0);
        assert_eq!(envelope.body, Body::Data(Value::Null));
    }

    #[test]
    fn constructors_stamp_the_current_time() {
        let before = unix_millis();
        let envelope = Envelope::ack("a");
        assert!(envelope.timestamp >= before && envelope.timestamp <= unix_millis());
        assert!(before > 1_600_000_000_000);
    }

    #[test]
    fn bad_json_and_wrong_shape() {
        assert!(matches!(
            Envelope::decode(r#"{"type":"data""#),
            Err(DecodeError::Json(_))
        ));
        assert!(matches!(Envelope::decode(""), Err(DecodeError::Json(_))));
        for text in ["[]", "1", "\"data\"", "null", "true"] {
            assert_eq!(
                Envelope::decode(text),
                Err(DecodeError::Shape { expected: "object" }),
                "{text}"
            );
        }
    }

    fn field_of(text: &str) -> &'static str {
        match Envelope::decode(text) {
            Err(DecodeError::Field { field, .. }) => field,
            other => panic!("expected a field error for {text}, got {other:?}"),
        }
    }

    #[test]
    fn missing_or_mistyped_fields_name_the_field() {
        assert_eq!(field_of(r#"{"type":"data"}"#), "id");
        assert_eq!(field_of(r#"{"type":"data","id":7}"#), "id");
        assert_eq!(field_of(r#"{"id":"a"}"#), "type");
        assert_eq!(field_of(r#"{"id":"a","type":null}"#), "type");
        assert_eq!(
            field_of(r#"{"id":"a","type":"ack","timestamp":"now"}"#),
            "timestamp"
        );
        assert_eq!(
            field_of(r#"{"id":"a","type":"ack","timestamp":-1}"#),
            "timestamp"
        );
        assert_eq!(
            field_of(r#"{"id":"a","type":"ack","timestamp":1.5}"#),
            "timestamp"
        );
        assert_eq!(field_of(r#"{"id":"a","type":"request"}"#), "payload");
        assert_eq!(
            field_of(r#"{"id":"a","type":"request","payload":{"params":{}}}"#),
            "payload.method"
        );
        assert_eq!(
            field_of(r#"{"id":"a","type":"reply","payload":[]}"#),
            "payload"
        );
        assert_eq!(
            field_of(r#"{"id":"a","type":"reply","payload":{"status":"maybe"}}"#),
            "payload.status"
        );
        assert_eq!(field_of(r#"{"id":"a","type":"nack"}"#), "payload");
        assert_eq!(
            field_of(r#"{"id":"a","type":"nack","payload":{"error":"x"}}"#),
            "payload.reason"
        );
        assert_eq!(
            field_of(r#"{"id":"a","type":"nack","payload":{"reason":"r","error":1}}"#),
            "payload.error"
        );
        assert_eq!(
            field_of(r#"{"id":"a","type":"slow","payload":1}"#),
            "payload"
        );
        assert_eq!(
            field_of(r#"{"id":"a","type":"slow","payload":{"queue_capacity":1,"utilization":0}}"#),
            "payload.queue_depth"
        );
        assert_eq!(
            field_of(r#"{"id":"a","type":"slow","payload":{"queue_depth":1,"utilization":0}}"#),
            "payload.queue_capacity"
        );
        assert_eq!(
            field_of(r#"{"id":"a","type":"slow","payload":{"queue_depth":1,"queue_capacity":2}}"#),
            "payload.utilization"
        );
        assert_eq!(
            field_of(
                r#"{"id":"a","type":"slow","payload":{"queue_depth":1,"queue_capacity":2,"utilization":0.5,"resumed":"yes"}}"#
            ),
            "payload.resumed"
        );
    }

    #[test]
    fn unknown_type_is_reported_by_name() {
        let error = Envelope::decode(r#"{"id":"a","type":"shout","timestamp":1}"#).unwrap_err();
        assert_eq!(error, DecodeError::UnknownType("shout".into()));
        assert_eq!(error.reason(), "unknown_type");
    }

    #[test]
    fn recover_id_reads_the_id_of_bad_messages() {
        assert_eq!(
            recover_id(r#"{"id":"m-1","type":"shout"}"#).as_deref(),
            Some("m-1")
        );
        assert_eq!(
            recover_id(r#"{"id":"m-2","type":"request","payload":5}"#).as_deref(),
            Some("m-2")
        );
        assert_eq!(recover_id(r#"{"id":5,"type":"data"}"#), None);
        assert_eq!(recover_id(r#"["id","m-3"]"#), None);
        assert_eq!(recover_id(r#"{"id":"m-4""#), None);
        assert_eq!(recover_id(""), None);
    }

    #[test]
    fn nack_for_invalid_names_the_reason() {
        let text = r#"{"id":"m-1","type":"shout"}"#;
        let error = Envelope::decode(text).unwrap_err();
        let nack = nack_for_invalid(text, &error).unwrap();
        assert_eq!(nack.id, "m-1");
        assert_eq!(
            nack.body,
            Body::Nack {
                reason: "unknown_type".into(),
                error: Some("unknown message type `shout`".into()),
            }
        );
        let garbage = "{not json";
        let error = Envelope::decode(garbage).unwrap_err();
        assert_eq!(nack_for_invalid(garbage, &error), None);
    }

    #[test]
    fn type_names_match_the_wire() {
        assert_eq!(Envelope::data("a", Value::Null).type_name(), "data");
        assert_eq!(
            Envelope::request("a", "m", Value::Null).type_name(),
            "request"
        );
        assert_eq!(Envelope::reply_ok("a", Value::Null).type_name(), "reply");
        assert_eq!(Envelope::ack("a").type_name(), "ack");
        assert_eq!(Envelope::nack("a", "r", None).type_name(), "nack");
        assert_eq!(Envelope::slow("a", 1, 2).type_name(), "slow");
        assert!(ReplyBody::Ok(json!(1)).is_ok());
        assert_eq!(ReplyBody::Error(json!("e")).value(), &json!("e"));
    }
}
