//! `[history]` and `[snapshot]`: recoverable topics and persisted sequence state.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Recoverable topics: the hub sequences every broadcast on them and keeps
/// the most recent ones for joins that resume from a position.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryConfig {
    /// Topic patterns (`feed:*` or an exact name); empty = no history.
    pub topics: Vec<String>,
    /// Messages kept per topic (the ring's size).
    pub size: usize,
    /// Bytes kept per topic; the oldest frames go first past it. A replay
    /// is queued at once, so it must stay below `server.max_outbound_bytes`.
    pub max_bytes: usize,
    /// Most topics with a history; past it the least recently published
    /// topic's history is dropped (counted; one without members first) and
    /// restarts in a new epoch.
    pub max_topics: usize,
    /// Most messages one resume replays; a joiner further behind gets the
    /// newest this many with `recovered: false` (a Gap it can fill by
    /// asking for history).
    pub max_replay: usize,
    /// Most messages one history request answers (`switchboard:history`,
    /// `GET /history/{topic}`).
    pub max_request: usize,
    /// A topic without members and not published to for this long loses its
    /// history (a later join starts a new epoch).
    #[serde(with = "humantime_serde")]
    pub idle_ttl: Duration,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            topics: Vec::new(),
            size: 256,
            max_bytes: 1024 * 1024,
            max_topics: 1000,
            max_replay: 300,
            max_request: 100,
            idle_ttl: Duration::from_secs(300),
        }
    }
}

/// When a snapshot of sequence state is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum SnapshotEvery {
    /// After every change (`"publish"`): each change is written as soon as
    /// the previous write is done (a crash loses at most the writes in flight).
    Publish,
    /// At most this often (`"1s"`): a crash loses at most one interval.
    Interval(Duration),
}

impl TryFrom<String> for SnapshotEvery {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        if text == "publish" {
            return Ok(SnapshotEvery::Publish);
        }
        humantime::parse_duration(&text)
            .map(SnapshotEvery::Interval)
            .map_err(|error| format!("expected \"publish\" or a duration like \"1s\": {error}"))
    }
}

impl From<SnapshotEvery> for String {
    fn from(every: SnapshotEvery) -> String {
        match every {
            SnapshotEvery::Publish => "publish".to_owned(),
            SnapshotEvery::Interval(interval) => humantime::format_duration(interval).to_string(),
        }
    }
}

/// The snapshot file of sequence state.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SnapshotConfig {
    /// The JSON file; none = kept in memory only (lost on restart).
    pub path: Option<std::path::PathBuf>,
    /// The flush policy.
    pub every: SnapshotEvery,
    /// An ingest producer with no message for this long is forgotten (its
    /// floor leaves the table and the file); `0s` keeps producers until a
    /// cap evicts them. A producer that comes back after it starts afresh.
    #[serde(with = "humantime_serde")]
    pub producer_retention: Duration,
}

impl Default for SnapshotConfig {
    fn default() -> Self {
        SnapshotConfig {
            path: None,
            every: SnapshotEvery::Interval(Duration::from_secs(1)),
            producer_retention: Duration::from_secs(24 * 60 * 60),
        }
    }
}
