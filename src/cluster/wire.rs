//! What nodes send each other: headers on every message, and the JSON of
//! presence changes and heartbeats. Broadcasts carry their Phoenix frame as
//! the body, encoded once by the node that made them.
//!
//! Everything read here comes from another node over NATS: it is parsed
//! without panicking, and what does not parse is counted and dropped.

use std::collections::BTreeMap;

use async_nats::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The node that made a message.
pub(crate) const NODE: &str = "Sb-Node";
/// `broadcast` or `presence` on a topic subject, `sequenced` on a
/// history subject.
pub(crate) const KIND: &str = "Sb-Kind";
/// A recoverable message's sequence in its topic.
pub(crate) const SEQUENCE: &str = "Sb-Seq";
/// A recoverable message's epoch.
pub(crate) const EPOCH: &str = "Sb-Epoch";
/// Unix microseconds when the message left its node (for lag).
pub(crate) const SENT_AT: &str = "Sb-At";
/// The stream sequence the stream republished a message with.
pub(crate) const STREAM_SEQUENCE: &str = "Nats-Sequence";

/// [`KIND`] of a plain broadcast.
pub(crate) const KIND_BROADCAST: &str = "broadcast";
/// [`KIND`] of a presence message.
pub(crate) const KIND_PRESENCE: &str = "presence";

/// One header's value, when present and text.
pub(crate) fn header<'a>(headers: Option<&'a HeaderMap>, name: &str) -> Option<&'a str> {
    headers?.get(name).map(|value| value.as_str())
}

/// One header's value as a number.
pub(crate) fn header_u64(headers: Option<&HeaderMap>, name: &str) -> Option<u64> {
    header(headers, name)?.parse().ok()
}

/// Metas (objects with a `phx_ref`) by presence key, as a node holds them
/// for one topic.
pub(crate) type Metas = BTreeMap<String, Vec<Value>>;

/// A presence message on a topic subject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
pub(crate) enum PresenceWire {
    /// The sender's presence on the topic changed (its `v`-th change).
    Diff {
        /// The sender's version of the topic's presence after this change.
        v: u64,
        /// Metas that joined.
        joins: Metas,
        /// Metas that left.
        leaves: Metas,
    },
    /// Asks every node (or only `to`) for its presence on the topic.
    Sync {
        /// Only this node answers; none: every node does.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
    },
    /// One part of the sender's whole presence on the topic, as of `v`.
    State {
        /// The sender's version the state is as of.
        v: u64,
        /// This part's metas.
        keys: Metas,
        /// The first part (the receiver starts afresh).
        first: bool,
        /// The last part (the receiver swaps it in).
        last: bool,
    },
}

/// What a node says about itself every heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Heartbeat {
    /// Its id.
    pub node: String,
    /// `serving` or `draining`.
    pub state: String,
    /// Its open sockets.
    pub connections: usize,
    /// Topics with members on it.
    pub topics: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn presence_messages_round_trip_and_bad_ones_fail_cleanly() {
        let diff: PresenceWire = serde_json::from_value(json!({
            "k": "diff", "v": 3,
            "joins": {"ann": [{"phx_ref": "r1"}]}, "leaves": {}
        }))
        .unwrap();
        let PresenceWire::Diff { v, joins, .. } = &diff else {
            panic!("{diff:?}");
        };
        assert_eq!((*v, joins["ann"].len()), (3, 1));
        let again: PresenceWire =
            serde_json::from_str(&serde_json::to_string(&diff).unwrap()).unwrap();
        assert_eq!(again, diff);
        assert_eq!(
            serde_json::to_value(PresenceWire::Sync { to: None }).unwrap(),
            json!({"k": "sync"})
        );
        for bad in [
            json!({"k": "diff"}),
            json!({"k": "x"}),
            json!([1]),
            json!({"k": "diff", "v": -1, "joins": {}, "leaves": {}}),
        ] {
            assert!(serde_json::from_value::<PresenceWire>(bad).is_err());
        }
    }
}
