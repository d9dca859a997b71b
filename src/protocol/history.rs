//! History on request: a client asks a recoverable topic's ring for a range
//! of what was broadcast, by pushing [`HISTORY_EVENT`] on the joined topic
//! (or with `GET /history/{topic}`), and gets a [`HistoryPage`].
//!
//! `since` is exclusive and `until` inclusive, both sequences of the topic's
//! current epoch. With `since`, the page holds the first `limit` messages
//! after it (to page forward); without it, the last `limit` up to `until`
//! (the latest). `limit` is capped by `history.max_request`, and the page by
//! half the socket's outbound bytes.
//!
//! ```
//! use serde_json::json;
//! use switchboard::protocol::history::HistoryQuery;
//!
//! let query: HistoryQuery = serde_json::from_value(json!({"since": 40, "limit": 10})).unwrap();
//! assert_eq!(query.since, Some(40));
//! ```

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The event a client pushes on a joined recoverable topic to read its
/// history; the hub answers it, never the topic's channel.
pub const HISTORY_EVENT: &str = "switchboard:history";

/// The reason of the error reply to a history request on a topic that is
/// not recoverable (no history is kept for it).
pub const NOT_RECOVERABLE: &str = "not_recoverable";

/// Which part of a topic's history to read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Most messages wanted (capped by the hub's `history.max_request`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// Only messages after this sequence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<u64>,
    /// Only messages up to this sequence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<u64>,
}

/// What the hub answers: the messages, in order, and where the topic stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryPage {
    /// The topic's epoch: sequences of another epoch are not comparable.
    /// Empty when the topic has no history yet (nothing broadcast, nobody
    /// joined).
    pub epoch: String,
    /// The topic's last sequence.
    pub top: u64,
    /// The oldest sequence the ring still holds (`None` when empty).
    pub oldest: Option<u64>,
    /// The messages: each broadcast's payload as live members got it
    /// (with its `sequence` and `epoch`), oldest first.
    pub publications: Vec<Value>,
    /// Whether the range held more than the page (a limit or the byte cap).
    pub truncated: bool,
}
