//! `[cluster]`: several hubs as one, over NATS JetStream.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Turns a hub into a node of a cluster: broadcasts, recoverable history,
/// presence and ingest span every node that names the same NATS server,
/// `subject_prefix` and `stream`. Without this section a hub is one node
/// and needs no NATS.
///
/// ```toml
/// [cluster]
/// nats_url = "nats://127.0.0.1:4222"
/// node_id = "hub-a"            # default: random
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// The NATS server (several separated by commas). Credentials may be
    /// embedded (`nats://user:password@host:4222`).
    pub nats_url: String,
    /// This node's name in `/health` and heartbeats (each start adds a
    /// random part there, so a restarted node is a new one to the others);
    /// empty (the default) picks a random one at start. Letters, digits,
    /// `-` and `_`.
    pub node_id: String,
    /// The first token(s) of every subject the cluster uses.
    pub subject_prefix: String,
    /// The JetStream stream that keeps recoverable topics' history (made
    /// when missing: one subject per topic, `history.size` messages each).
    pub stream: String,
    /// Bytes the history stream may hold; the oldest messages go first.
    pub history_max_bytes: u64,
    /// How long the stream keeps a message (`0s`: until the limits above
    /// push it out).
    #[serde(with = "humantime_serde")]
    pub history_max_age: Duration,
    /// How often a node tells the others it is alive.
    #[serde(with = "humantime_serde")]
    pub heartbeat: Duration,
    /// A node not heard from for this long is down: its presences leave.
    #[serde(with = "humantime_serde")]
    pub down_after: Duration,
    /// Most cluster publishes waiting to leave this node; past it a
    /// broadcast reaches local members only (counted).
    pub max_pending: usize,
    /// Most bytes of cluster publishes waiting to leave this node.
    pub max_pending_bytes: usize,
    /// Upper bound of every wait on NATS: a connection, a publish's
    /// acknowledgement, a history read.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            nats_url: "nats://127.0.0.1:4222".to_owned(),
            node_id: String::new(),
            subject_prefix: "switchboard".to_owned(),
            stream: "SWITCHBOARD_HISTORY".to_owned(),
            history_max_bytes: 256 * 1024 * 1024,
            history_max_age: Duration::from_secs(24 * 60 * 60),
            heartbeat: Duration::from_secs(1),
            down_after: Duration::from_secs(3),
            max_pending: 10_000,
            max_pending_bytes: 16 * 1024 * 1024,
            request_timeout: Duration::from_secs(5),
        }
    }
}

impl ClusterConfig {
    /// What is wrong with the section, as `(key, problem)`.
    pub(crate) fn problem(&self) -> Option<(&'static str, String)> {
        let name_ok = |name: &str, extra: &[char]| {
            !name.is_empty()
                && name.len() <= 64
                && name.chars().all(|c| {
                    c.is_ascii_alphanumeric() || c == '-' || c == '_' || extra.contains(&c)
                })
        };
        if self.nats_url.trim().is_empty() {
            return Some(("cluster.nats_url", "must not be empty".to_owned()));
        }
        if !self.node_id.is_empty() && !name_ok(&self.node_id, &[]) {
            let why = "must be 1 to 64 letters, digits, '-' or '_' (or empty: random)";
            return Some(("cluster.node_id", why.to_owned()));
        }
        let prefix_ok = name_ok(&self.subject_prefix, &['.'])
            && self
                .subject_prefix
                .split('.')
                .all(|token| !token.is_empty());
        if !prefix_ok {
            let why = "must be dot-separated tokens of letters, digits, '-' or '_'";
            return Some(("cluster.subject_prefix", why.to_owned()));
        }
        if !name_ok(&self.stream, &[]) {
            let why = "must be 1 to 64 letters, digits, '-' or '_'";
            return Some(("cluster.stream", why.to_owned()));
        }
        if self.heartbeat < Duration::from_millis(10) {
            return Some(("cluster.heartbeat", "must be at least 10ms".to_owned()));
        }
        if self.down_after < self.heartbeat * 2 {
            let why = "must be at least twice cluster.heartbeat";
            return Some(("cluster.down_after", why.to_owned()));
        }
        if self.max_pending == 0 || self.max_pending_bytes == 0 || self.history_max_bytes == 0 {
            let key = if self.max_pending == 0 {
                "cluster.max_pending"
            } else if self.max_pending_bytes == 0 {
                "cluster.max_pending_bytes"
            } else {
                "cluster.history_max_bytes"
            };
            return Some((key, "must be > 0".to_owned()));
        }
        if self.request_timeout.is_zero() {
            return Some(("cluster.request_timeout", "must be > 0".to_owned()));
        }
        None
    }
}
