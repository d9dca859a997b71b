//! The sequenced content envelope on arbitrary JSON text.
//!
//! A value that reads as a `ContentEnvelope` survives `to_value` +
//! `from_value`, and `EnvelopeKey::of` (the hub's test of "is this a
//! content envelope") names its producer and sequence.

#![no_main]

#[path = "common/mod.rs"]
mod common;

use common::same;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use switchboard::protocol::content::{ContentEnvelope, EnvelopeKey};

fuzz_target!(|data: &[u8]| {
    let Some(text) = common::text(data) else {
        return;
    };
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return;
    };
    let key = EnvelopeKey::of(&value);
    let Ok(envelope) = ContentEnvelope::from_value(&value) else {
        return;
    };
    let key = key.expect("a content envelope has a key");
    assert_eq!(key.producer, envelope.producer);
    assert_eq!(key.sequence, envelope.sequence);
    assert_eq!(
        envelope.dedup_id(),
        format!("{}:{}", envelope.producer, envelope.sequence)
    );

    let written = envelope.to_value();
    let back = ContentEnvelope::from_value(&written).expect("a written envelope reads back");
    assert!(same(&back.payload, &envelope.payload));
    assert_eq!(
        (
            &back.channel,
            &back.aspect,
            back.sequence,
            &back.epoch,
            back.produced_at,
            &back.producer,
            &back.causation,
            &back.schema_ref
        ),
        (
            &envelope.channel,
            &envelope.aspect,
            envelope.sequence,
            &envelope.epoch,
            envelope.produced_at,
            &envelope.producer,
            &envelope.causation,
            &envelope.schema_ref
        )
    );
    assert_eq!(EnvelopeKey::of(&written), Some(key));
    let cause = envelope.as_cause();
    assert_eq!(cause.sequence, envelope.sequence);
});
