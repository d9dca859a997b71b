//! Where ingested data goes: a [`Sink`] behind a small trait.
//!
//! The [`IngestQueue`](crate::ingest) hands items to its sink one at a time,
//! in order ([`Sink::send`]); each send answers with a future of the item's
//! durable acceptance ([`Accepted`]), which the queue awaits while it sends
//! the next ones (a bounded window). An item is acknowledged to its sender
//! only once that future resolves `Ok`.

use std::fmt;

use bytes::Bytes;
use futures_util::future::BoxFuture;

pub(crate) mod in_process;
pub(crate) mod nats;
pub(crate) mod select;

pub use crate::config::Subjects;
pub use in_process::{ActorSink, CountingSink, Ingested};
pub(crate) use nats::redact;
pub use nats::{NatsSink, NatsSinkConfig, StreamConfig};
pub use select::from_config;

/// Which configured subject an item goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ItemKind {
    /// `data` messages (`sink.subjects.data`, default `federated.data`).
    Data,
    /// Control traffic (`sink.subjects.control`, default `federated.control`).
    Control,
}

/// One item for a sink.
#[derive(Clone, PartialEq)]
pub struct SinkItem {
    /// The envelope id it came with (its ack carries it): the
    /// deduplication key downstream (JetStream's `Nats-Msg-Id`) unless
    /// `store_id` says otherwise.
    pub id: String,
    /// The id to store it under instead, when set: a cluster node sets
    /// `k:producer:sequence` on sequenced data (so a producer that resends
    /// to another node is stored once) and `i:` with the envelope id scoped
    /// to its credential on the rest.
    pub store_id: Option<String>,
    /// Data or control.
    pub kind: ItemKind,
    /// The payload, as JSON text.
    pub payload: Bytes,
}

impl fmt::Debug for SinkItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SinkItem")
            .field("id", &self.id)
            .field("store_id", &self.store_id)
            .field("kind", &self.kind)
            .field("bytes", &self.payload.len())
            .finish()
    }
}

/// Why a sink did not take an item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// The sink is not reachable now (the queue keeps the item and retries).
    #[error("sink unavailable: {0}")]
    Unavailable(String),
    /// The sink refused this item (it is nacked, not retried).
    #[error("sink rejected the item: {0}")]
    Rejected(String),
    /// The sink did not confirm in time (the queue retries).
    #[error("sink did not confirm within {0:?}")]
    Timeout(std::time::Duration),
}

impl SinkError {
    /// Whether sending the same item again may succeed.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, SinkError::Rejected(_))
    }
}

/// The durable acceptance of one item.
pub type Accepted = BoxFuture<'static, Result<(), SinkError>>;

/// A destination for ingested items.
pub trait Sink: Send + Sync + 'static {
    /// A short name for logs and metrics (`in_process`, `nats`, `jetstream`).
    fn name(&self) -> &'static str;

    /// Hands `item` over. The outer future resolves once the item is on its
    /// way, in call order; the inner one once the sink has durably accepted it.
    fn send(&self, item: SinkItem) -> BoxFuture<'static, Result<Accepted, SinkError>>;
}
