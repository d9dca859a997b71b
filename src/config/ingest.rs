//! `[backpressure]`, `[sink]` and `[bidirectional]`: the ingest path.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Request/reply on envelope v1 connections, hub to sender.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BidirectionalConfig {
    /// How long a request waits for its reply.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Most requests in flight per connection.
    pub max_concurrent_requests: usize,
}

impl Default for BidirectionalConfig {
    fn default() -> Self {
        BidirectionalConfig {
            request_timeout: Duration::from_secs(5),
            max_concurrent_requests: 100,
        }
    }
}

/// Which sink the ingest queue delivers to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkType {
    /// In the hub's own process (counts what it stores; needs nothing installed).
    #[default]
    #[serde(alias = "log")]
    InProcess,
    /// NATS core publish (no durability).
    Nats,
    /// NATS JetStream: acked once stored, deduplicated by envelope id.
    Jetstream,
}

/// The sink section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SinkConfig {
    /// `in_process` (default), `nats` or `jetstream`.
    #[serde(rename = "type")]
    pub kind: SinkType,
    /// NATS server URL.
    pub url: String,
    /// Subjects.
    pub subjects: Subjects,
    /// JetStream stream name (created when missing).
    pub stream: String,
}

impl Default for SinkConfig {
    fn default() -> Self {
        SinkConfig {
            kind: SinkType::InProcess,
            url: "nats://127.0.0.1:4222".to_owned(),
            subjects: Subjects::default(),
            stream: "FEDERATED".to_owned(),
        }
    }
}

/// The ingest queue between `/ingest` senders and the sink.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackpressureConfig {
    /// Items the queue holds.
    pub queue_size: usize,
    /// What happens when it is full: `drop_oldest`, `drop_newest` or `block`.
    pub on_full: OnFull,
}

impl Default for BackpressureConfig {
    fn default() -> Self {
        BackpressureConfig {
            queue_size: 1000,
            on_full: OnFull::DropOldest,
        }
    }
}

/// The subjects items are published to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Subjects {
    /// Subject of `data` items (default `federated.data`).
    pub data: String,
    /// Subject of control items (default `federated.control`).
    pub control: String,
}

impl Default for Subjects {
    fn default() -> Self {
        Subjects {
            data: "federated.data".to_owned(),
            control: "federated.control".to_owned(),
        }
    }
}

/// What happens when an item arrives at a full queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFull {
    /// Evict the oldest queued item (nacked) to make room.
    #[default]
    DropOldest,
    /// Refuse the arriving item (nacked).
    DropNewest,
    /// Make the sender wait: its socket is not read until there is room.
    Block,
}
