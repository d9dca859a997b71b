//! A node's cluster figures: counters kept as it works, and the section
//! `/health` shows.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use serde::Serialize;

use super::peers::PeerView;

/// Where the node's NATS connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum LinkState {
    /// Not connected yet.
    Connecting = 0,
    /// Connected.
    Connected = 1,
    /// Lost; the client is reconnecting.
    Disconnected = 2,
}

impl LinkState {
    fn name(self) -> &'static str {
        match self {
            LinkState::Connecting => "connecting",
            LinkState::Connected => "connected",
            LinkState::Disconnected => "disconnected",
        }
    }
}

/// Why something was not sent to or taken from the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dropped {
    /// The node's outgoing queue was full (`cluster.max_pending`).
    QueueFull,
    /// NATS was unreachable when it was to leave.
    Disconnected,
    /// A message from another node did not parse.
    Malformed,
    /// A recoverable publish lost the compare-and-set too many times.
    Contended,
    /// NATS refused a recoverable publish for good (too large, or refused
    /// for about ten seconds while connected).
    Rejected,
    /// The NATS client dropped messages it could not hand over in time.
    SlowConsumer,
    /// A heartbeat from one node more than the peer table holds.
    TooManyPeers,
    /// Presence from a node not heard from (yet).
    UnknownNode,
}

impl Dropped {
    fn label(self) -> &'static str {
        match self {
            Dropped::QueueFull => "queue_full",
            Dropped::Disconnected => "disconnected",
            Dropped::Malformed => "malformed",
            Dropped::Contended => "contended",
            Dropped::Rejected => "rejected",
            Dropped::SlowConsumer => "slow_consumer",
            Dropped::TooManyPeers => "too_many_peers",
            Dropped::UnknownNode => "unknown_node",
        }
    }
}

/// The node's counters.
#[derive(Default)]
pub(crate) struct Stats {
    state: AtomicU8,
    published: AtomicU64,
    delivered: AtomicU64,
    dropped: AtomicU64,
    conflicts: AtomicU64,
    lag_us: AtomicU64,
}

impl Stats {
    pub(crate) fn set_state(&self, state: LinkState) {
        self.state.store(state as u8, Ordering::Release);
        metrics::gauge!("switchboard_cluster_connected").set(if state == LinkState::Connected {
            1.0
        } else {
            0.0
        });
    }

    pub(crate) fn state(&self) -> LinkState {
        match self.state.load(Ordering::Acquire) {
            1 => LinkState::Connected,
            2 => LinkState::Disconnected,
            _ => LinkState::Connecting,
        }
    }

    /// One message left for the cluster.
    pub(crate) fn published(&self, kind: &'static str) {
        self.published.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("switchboard_cluster_published_total", "kind" => kind).increment(1);
    }

    /// One message from another node reached local members; `sent_at` is
    /// when it left its node (unix µs; the nodes' clocks are compared).
    pub(crate) fn delivered(&self, kind: &'static str, sent_at: Option<u64>) {
        self.delivered.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("switchboard_cluster_delivered_total", "kind" => kind).increment(1);
        if let Some(sent_at) = sent_at {
            let lag = crate::protocol::clock::unix_micros().saturating_sub(sent_at);
            self.lag_us.store(lag, Ordering::Relaxed);
            metrics::histogram!("switchboard_cluster_lag_seconds").record(lag as f64 / 1e6);
        }
    }

    pub(crate) fn dropped(&self, why: Dropped) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("switchboard_cluster_dropped_total", "reason" => why.label())
            .increment(1);
    }

    /// A recoverable publish lost a compare-and-set and is tried again.
    pub(crate) fn conflict(&self) {
        self.conflicts.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("switchboard_cluster_sequence_conflicts_total").increment(1);
    }
}

/// The `cluster` section of `/health`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct ClusterHealth {
    /// This node's id.
    pub node_id: String,
    /// This process on the wire (`node_id~boot`), as the others list it.
    pub instance: String,
    /// `connected`, `connecting` or `disconnected` (NATS).
    pub state: &'static str,
    /// The other nodes heard from.
    pub peers: Vec<PeerView>,
    /// Topics this node follows in the cluster.
    pub subscriptions: usize,
    /// Messages this node published to the cluster.
    pub published: u64,
    /// Messages of other nodes (and of the history stream) it delivered.
    pub delivered: u64,
    /// Messages not sent or not taken (queue full, NATS away, malformed).
    pub dropped: u64,
    /// Recoverable publishes that lost a compare-and-set and were retried.
    pub sequence_conflicts: u64,
    /// Cluster publishes waiting to leave.
    pub pending: usize,
    /// Publish-to-deliver time of the last message from another node, in
    /// ms (µs precision; the nodes' wall clocks are compared).
    pub lag_ms: f64,
}

impl ClusterHealth {
    pub(crate) fn read(
        node_id: &str,
        instance: &str,
        stats: &Stats,
        peers: Vec<PeerView>,
        subscriptions: usize,
        pending: usize,
    ) -> ClusterHealth {
        ClusterHealth {
            node_id: node_id.to_owned(),
            instance: instance.to_owned(),
            state: stats.state().name(),
            peers,
            subscriptions,
            published: stats.published.load(Ordering::Relaxed),
            delivered: stats.delivered.load(Ordering::Relaxed),
            dropped: stats.dropped.load(Ordering::Relaxed),
            sequence_conflicts: stats.conflicts.load(Ordering::Relaxed),
            pending,
            lag_ms: stats.lag_us.load(Ordering::Relaxed) as f64 / 1000.0,
        }
    }
}
