//! The protocol floors: a minimal tokio-tungstenite server and client per
//! protocol (Phoenix V2, envelope v1), with no framework — serde parses
//! each frame into borrowed fields and the answers are written straight
//! back. What a Phoenix or envelope socket costs at the least, the limit
//! switchboard's design competes with (the raw baseline also leaves out
//! the protocol).

pub mod client;
pub mod ingest;
pub mod phoenix;
pub mod server;

use serde_json::value::RawValue;

/// `payload` (any JSON value) as raw JSON text, serialized once.
pub fn raw(payload: &serde_json::Value) -> anyhow::Result<Box<RawValue>> {
    Ok(RawValue::from_string(payload.to_string())?)
}
