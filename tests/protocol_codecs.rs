//! Property tests of the wire codecs: no input panics a decoder, every frame
//! and envelope survives an encode/decode round trip, and short Phoenix
//! arrays are reported as arity errors.

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use serde_json::{Map, Number, Value};
use switchboard::protocol::envelope::{self, Body, Envelope, ReplyBody, SlowSignal};
use switchboard::protocol::phoenix::Frame;
use switchboard::protocol::DecodeError;

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

/// Any JSON leaf, including floats of every finite magnitude.
fn any_json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,12}".prop_map(Value::String),
    ]
}

/// JSON leaves that survive a trip through text exactly. Floats are
/// restricted to `n / 1000`, which serde_json prints and parses back without
/// loss (its default parser is not guaranteed exact for every float).
fn exact_json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1_000_000i32..1_000_000).prop_map(|n| Value::from(f64::from(n) / 1000.0)),
        any::<String>().prop_map(Value::String),
    ]
}

/// Nests `leaf` into arrays and objects, at most four levels deep.
fn json_tree(leaf: impl Strategy<Value = Value> + 'static) -> impl Strategy<Value = Value> {
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            btree_map(".{0,8}", inner, 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn any_json() -> impl Strategy<Value = Value> {
    json_tree(any_json_leaf())
}

fn exact_json() -> impl Strategy<Value = Value> {
    json_tree(exact_json_leaf())
}

/// Text made of JSON punctuation, digits and the words the codecs look for,
/// so the parsers get past the first byte more often than with random text.
fn json_ish_text() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just(",".to_owned()),
        Just(":".to_owned()),
        Just("\"".to_owned()),
        Just("null".to_owned()),
        Just("\"id\"".to_owned()),
        Just("\"type\"".to_owned()),
        Just("\"payload\"".to_owned()),
        Just("\"timestamp\"".to_owned()),
        Just("\"slow\"".to_owned()),
        Just("\"phoenix\"".to_owned()),
        "-?[0-9]{1,20}(\\.[0-9]{1,4})?(e-?[0-9]{1,3})?",
        "\\\\[\"/bfnrtu0-9a-f\\\\]{0,5}",
        ".",
    ];
    vec(token, 0..40).prop_map(|tokens| tokens.concat())
}

fn optional_string() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(any::<String>())
}

fn frames() -> impl Strategy<Value = Frame> {
    (
        optional_string(),
        optional_string(),
        any::<String>(),
        any::<String>(),
        exact_json(),
    )
        .prop_map(|(join_ref, msg_ref, topic, event, payload)| Frame {
            join_ref,
            msg_ref,
            topic,
            event,
            payload: payload.into(),
        })
}

/// Utilizations that round-trip exactly (see [`exact_json_leaf`]).
fn utilization() -> impl Strategy<Value = f64> {
    (0u32..=2_000).prop_map(|n| f64::from(n) / 1000.0)
}

fn bodies() -> impl Strategy<Value = Body> {
    prop_oneof![
        exact_json().prop_map(Body::Data),
        (any::<String>(), exact_json())
            .prop_map(|(method, params)| Body::Request { method, params }),
        exact_json().prop_map(|result| Body::Reply(ReplyBody::Ok(result))),
        exact_json().prop_map(|error| Body::Reply(ReplyBody::Error(error))),
        Just(Body::Ack),
        (any::<String>(), optional_string())
            .prop_map(|(reason, error)| Body::Nack { reason, error }),
        (any::<u64>(), any::<u64>(), utilization(), any::<bool>()).prop_map(
            |(queue_depth, queue_capacity, utilization, resumed)| Body::Slow(SlowSignal {
                queue_depth,
                queue_capacity,
                utilization,
                resumed,
            })
        ),
    ]
}

fn envelopes() -> impl Strategy<Value = Envelope> {
    (any::<String>(), any::<u64>(), bodies()).prop_map(|(id, timestamp, body)| Envelope {
        id,
        timestamp,
        body,
    })
}

/// Objects shaped like envelopes whose fields may be missing, mistyped or
/// unknown, to reach every branch of the envelope decoder.
fn envelope_like_objects() -> impl Strategy<Value = Value> {
    let type_name = prop_oneof![
        Just(Value::from("data")),
        Just(Value::from("request")),
        Just(Value::from("reply")),
        Just(Value::from("ack")),
        Just(Value::from("nack")),
        Just(Value::from("slow")),
        any_json(),
    ];
    let payload_field = prop_oneof![
        Just("method"),
        Just("params"),
        Just("status"),
        Just("result"),
        Just("error"),
        Just("reason"),
        Just("queue_depth"),
        Just("queue_capacity"),
        Just("utilization"),
        Just("resumed"),
    ];
    let payload = prop_oneof![
        any_json(),
        btree_map(payload_field, any_json_leaf(), 0..6).prop_map(|fields| {
            Value::Object(
                fields
                    .into_iter()
                    .map(|(key, value)| (key.to_owned(), value))
                    .collect(),
            )
        }),
    ];
    (
        proptest::option::of(type_name),
        proptest::option::of(any_json_leaf()),
        proptest::option::of(any_json_leaf()),
        proptest::option::of(payload),
    )
        .prop_map(|(kind, id, timestamp, payload)| {
            let mut object = Map::new();
            let fields = [
                ("type", kind),
                ("id", id),
                ("timestamp", timestamp),
                ("payload", payload),
            ];
            for (key, value) in fields {
                if let Some(value) = value {
                    object.insert(key.to_owned(), value);
                }
            }
            Value::Object(object)
        })
}

/// Feeds `text` to every decoder; the property is that none of them panics.
fn decode_everything(text: &str) {
    let _ = Frame::decode(text);
    let _ = Envelope::decode(text);
    let _ = envelope::recover_id(text);
}

// ---------------------------------------------------------------------------
// (a) Arbitrary text never panics a decoder
// ---------------------------------------------------------------------------

proptest! {
    #[test]
    fn arbitrary_strings_never_panic_the_decoders(text in any::<String>()) {
        decode_everything(&text);
    }

    #[test]
    fn lossy_utf8_byte_soup_never_panics_the_decoders(bytes in vec(any::<u8>(), 0..512)) {
        decode_everything(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn json_ish_token_soup_never_panics_the_decoders(text in json_ish_text()) {
        decode_everything(&text);
    }

    #[test]
    fn truncated_or_corrupted_valid_frames_never_panic_the_decoders(
        frame in frames(),
        envelope in envelopes(),
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        for text in [frame.encode(), envelope.encode()] {
            let mut bytes = text.into_bytes();
            let truncated = bytes[..cut.index(bytes.len() + 1)].to_vec();
            decode_everything(&String::from_utf8_lossy(&truncated));
            if !bytes.is_empty() {
                let at = flip.index(bytes.len());
                bytes[at] = byte;
                decode_everything(&String::from_utf8_lossy(&bytes));
            }
        }
    }
}

// ---------------------------------------------------------------------------
// (b) Arbitrary JSON never panics a decoder
// ---------------------------------------------------------------------------

proptest! {
    #[test]
    fn arbitrary_json_values_never_panic_the_decoders(value in any_json()) {
        decode_everything(&value.to_string());
        let _ = Frame::from_value(value.clone());
        let _ = Envelope::from_value(value);
    }

    #[test]
    fn five_element_arrays_of_arbitrary_json_never_panic_the_decoders(
        items in vec(any_json(), 5..8),
    ) {
        let value = Value::Array(items);
        decode_everything(&value.to_string());
        let _ = Frame::from_value(value);
    }

    #[test]
    fn envelope_like_objects_never_panic_and_errors_keep_the_id_readable(
        value in envelope_like_objects(),
    ) {
        let text = value.to_string();
        decode_everything(&text);
        let string_id = value.get("id").and_then(Value::as_str).map(str::to_owned);
        match Envelope::decode(&text) {
            Ok(envelope) => prop_assert_eq!(Some(envelope.id), string_id.clone()),
            Err(error) => {
                let structural = matches!(error, DecodeError::Json(_) | DecodeError::Shape { .. });
                prop_assert!(!structural, "an object failed as {:?}", error);
                let nack = envelope::nack_for_invalid(&text, &error);
                prop_assert_eq!(nack.map(|nack| nack.id), string_id.clone());
            }
        }
        prop_assert_eq!(envelope::recover_id(&text), string_id);
    }
}

// ---------------------------------------------------------------------------
// (c) Round trips
// ---------------------------------------------------------------------------

proptest! {
    #[test]
    fn phoenix_frames_round_trip(frame in frames()) {
        prop_assert_eq!(Frame::decode(&frame.encode()), Ok(frame));
    }

    #[test]
    fn envelopes_of_every_type_round_trip(envelope in envelopes()) {
        let text = envelope.encode();
        prop_assert_eq!(envelope::recover_id(&text), Some(envelope.id.clone()));
        prop_assert_eq!(Envelope::decode(&text), Ok(envelope));
    }

    #[test]
    fn envelopes_built_by_the_constructors_round_trip(
        id in any::<String>(),
        text in any::<String>(),
        payload in exact_json(),
        depth in 0u64..10_000,
        capacity in 0u64..10_000,
    ) {
        let built = [
            Envelope::data(id.clone(), payload.clone()),
            Envelope::request(id.clone(), text.clone(), payload.clone()),
            Envelope::reply_ok(id.clone(), payload.clone()),
            Envelope::reply_error(id.clone(), payload),
            Envelope::ack(id.clone()),
            Envelope::nack(id.clone(), text.clone(), Some(text.clone())),
            Envelope::nack(id.clone(), text, None),
            Envelope::slow(id.clone(), depth, capacity),
            Envelope::resumed(id, depth, capacity),
        ];
        for envelope in built {
            prop_assert_eq!(Envelope::decode(&envelope.encode()), Ok(envelope));
        }
    }
}

// ---------------------------------------------------------------------------
// (d) Short Phoenix arrays are arity errors
// ---------------------------------------------------------------------------

proptest! {
    #[test]
    fn phoenix_arrays_shorter_than_five_are_arity_errors(items in vec(any_json(), 0..5)) {
        let found = items.len();
        let text = Value::Array(items).to_string();
        prop_assert_eq!(Frame::decode(&text), Err(DecodeError::Arity { found }));
        prop_assert_eq!(
            Envelope::decode(&text),
            Err(DecodeError::Shape { expected: "object" })
        );
    }
}
