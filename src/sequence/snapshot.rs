//! What a [`Snapshotter`](super::Snapshotter) persists: per-channel
//! sequence positions and per-producer ingest high-water marks, as plain
//! serde data.
//!
//! Every field defaults when absent, so a file written by an older release
//! (or by hand) loads, and fields added later do not break older files.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Per-channel sequence state kept by a Snapshotter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelPosition {
    /// No sequence above this has been handed out by `Stamp` (publisher side).
    ///
    /// This is a reservation watermark: sequences are handed out only at or
    /// below a value of `published` that is already durable, so after a
    /// crash the publisher resumes at `published + 1` and never reuses one.
    #[serde(default)]
    pub published: u64,
    /// Last sequence delivered to the application (receiver side, SEQ-2).
    #[serde(default)]
    pub delivered: u64,
    /// Epoch that `delivered` belongs to, when the hub reported one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<String>,
}

/// Everything a Snapshotter persists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Sequence state by channel name.
    #[serde(default)]
    pub channels: BTreeMap<String, ChannelPosition>,
    /// Ingest high-water marks: producer -> highest sequence the sink accepted.
    #[serde(default)]
    pub producers: BTreeMap<String, u64>,
}

impl Snapshot {
    /// The delivered position of `channel`, 0 when it has none.
    pub fn delivered(&self, channel: &str) -> u64 {
        self.channels.get(channel).map_or(0, |p| p.delivered)
    }

    /// The publisher reservation watermark of `channel`, 0 when it has none.
    pub fn published(&self, channel: &str) -> u64 {
        self.channels.get(channel).map_or(0, |p| p.published)
    }
}
