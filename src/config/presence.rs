//! `[presence]`: who is on a topic, as phoenix.js's `Presence` shows it.

use serde::{Deserialize, Serialize};

/// Presence bounds, and whether the default rooms track their members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PresenceConfig {
    /// Whether the default `room:*` channel (the hub's router when none is
    /// given, as under `serve`) tracks each member: under the join
    /// payload's `user` when it is a string, else the socket's id.
    pub rooms: bool,
    /// Most keys tracked on one topic; a track past it is refused (counted).
    pub max_keys_per_topic: usize,
    /// Most metas under one key (one per socket tracked under it).
    pub max_metas_per_key: usize,
    /// Largest meta, encoded as JSON.
    pub max_meta_bytes: usize,
}

impl Default for PresenceConfig {
    fn default() -> Self {
        PresenceConfig {
            rooms: true,
            max_keys_per_topic: 10_000,
            max_metas_per_key: 32,
            max_meta_bytes: 1024,
        }
    }
}
