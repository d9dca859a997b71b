//! What the codec targets share.

#![allow(dead_code)]

use serde_json::Value;

/// Whether two JSON values are the same, numbers compared as a reader would
/// see them: serde_json reads a float to within an ulp of the one written
/// (its fast, best-effort parser), so a float that makes a round trip may
/// come back a hair off. Integers must match exactly.
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if x.is_f64() || y.is_f64() {
                match (x.as_f64(), y.as_f64()) {
                    (Some(x), Some(y)) => close(x, y),
                    _ => false,
                }
            } else {
                x == y
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(key, x)| y.get(key).is_some_and(|y| same(x, y)))
        }
        _ => a == b,
    }
}

/// Two floats equal to within a few ulps.
pub fn close(x: f64, y: f64) -> bool {
    x == y || (x - y).abs() <= 4.0 * f64::EPSILON * x.abs().max(y.abs())
}

/// The input as text, if it is UTF-8 (what a WebSocket text frame carries).
pub fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}
