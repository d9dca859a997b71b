//! Typed handlers per aspect of the content envelope.
//!
//! A topic's pushes are parsed once into a [`ContentEnvelope`], filtered by
//! aspect, checked by an optional schema hook, and their payload
//! deserialized once into the handler's type. A push that is not an
//! envelope, fails the check, or does not fit the type is never dropped
//! silently: it is counted (`switchboard_client_invalid_payloads_total`),
//! logged, and reported as a [`ConnectEvent::InvalidPayload`].

use serde::de::DeserializeOwned;

use crate::client::events::{Announcer, ConnectEvent};
use crate::client::phoenix::subscription::Incoming;
use crate::protocol::content::ContentEnvelope;

/// Checks an envelope before its payload is deserialized (e.g. against the
/// schema its `schema_ref` names); `Err` carries why it does not conform.
pub type SchemaCheck = Box<dyn Fn(&ContentEnvelope) -> Result<(), String> + Send>;

/// What goes wrong between a push and a typed handler.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AspectError {
    /// The push is not a content envelope.
    #[error("not a content envelope: {0}")]
    NotEnvelope(String),
    /// The schema check refused it.
    #[error("schema check failed: {0}")]
    Schema(String),
    /// The payload does not fit the handler's type.
    #[error("payload does not fit the handler's type: {0}")]
    Payload(String),
}

impl AspectError {
    /// A short label for metrics.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            AspectError::NotEnvelope(_) => "not_envelope",
            AspectError::Schema(_) => "schema",
            AspectError::Payload(_) => "payload",
        }
    }
}

/// Parses one push for a handler of `aspect`: `Ok(None)` when it is
/// another aspect's.
pub(crate) fn decode<T: DeserializeOwned>(
    incoming: &Incoming,
    aspect: &str,
    check: Option<&SchemaCheck>,
) -> Result<Option<(T, ContentEnvelope)>, AspectError> {
    let envelope = ContentEnvelope::from_value(&incoming.payload.to_value())
        .map_err(|error| AspectError::NotEnvelope(error.0))?;
    if envelope.aspect != aspect {
        return Ok(None);
    }
    if let Some(check) = check {
        check(&envelope).map_err(AspectError::Schema)?;
    }
    let typed = T::deserialize(&envelope.payload)
        .map_err(|error| AspectError::Payload(error.to_string()))?;
    Ok(Some((typed, envelope)))
}

/// Counts, logs and announces a push a typed handler could not take.
pub(crate) fn report(announcer: &Announcer, topic: &str, aspect: &str, error: &AspectError) {
    metrics::counter!("switchboard_client_invalid_payloads_total", "reason" => error.reason())
        .increment(1);
    tracing::warn!(topic, aspect, %error, "push not handed to its typed handler");
    announcer.emit(ConnectEvent::InvalidPayload {
        topic: topic.to_owned(),
        aspect: aspect.to_owned(),
        reason: error.to_string(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Reading {
        celsius: f64,
    }

    fn push(payload: serde_json::Value) -> Incoming {
        Incoming {
            topic: "t".into(),
            event: "e".into(),
            payload: payload.into(),
        }
    }

    fn envelope(aspect: &str, payload: serde_json::Value) -> Incoming {
        push(ContentEnvelope::stamped("t", aspect, 1, "p", payload).to_value())
    }

    #[test]
    fn a_matching_payload_is_typed_once() {
        let decoded = decode::<Reading>(
            &envelope("reading", json!({"celsius": 2.5})),
            "reading",
            None,
        );
        let (reading, envelope) = decoded.expect("ok").expect("this aspect");
        assert_eq!(reading, Reading { celsius: 2.5 });
        assert_eq!(envelope.sequence, 1);
    }

    #[test]
    fn other_aspects_are_skipped_and_bad_input_is_an_error() {
        let other = decode::<Reading>(&envelope("alert", json!({})), "reading", None);
        assert_eq!(other, Ok(None));
        let misfit = decode::<Reading>(
            &envelope("reading", json!({"celsius": "hot"})),
            "reading",
            None,
        );
        assert!(matches!(misfit, Err(AspectError::Payload(_))));
        let plain = decode::<Reading>(&push(json!({"celsius": 1})), "reading", None);
        assert!(matches!(plain, Err(AspectError::NotEnvelope(_))));
    }

    #[test]
    fn the_schema_check_runs_before_the_payload_is_typed() {
        let check: SchemaCheck = Box::new(|envelope| match envelope.schema_ref.as_deref() {
            Some("reading/v1") => Ok(()),
            other => Err(format!("unknown schema {other:?}")),
        });
        let decoded = decode::<Reading>(
            &envelope("reading", json!({"celsius": 1})),
            "reading",
            Some(&check),
        );
        assert!(matches!(decoded, Err(AspectError::Schema(_))));
    }
}
