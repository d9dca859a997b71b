//! Where ingested data goes: a [`Sink`] behind a small trait.
//!
//! The [`IngestQueue`](crate::ingest) hands items to its sink in batches,
//! in order ([`Sink::send_batch`]); each hand-over answers with a future of
//! the batch's durable acceptance ([`AcceptedBatch`], one outcome per item),
//! which the queue awaits while it hands over the next batches (a bounded
//! window of items). An item is acknowledged to its sender only once its
//! outcome is `Ok`.
//!
//! A sink implements [`Sink::send`] for one item; [`Sink::send_batch`] has a
//! default that hands each item of a batch to `send`, so a sink that gains
//! nothing from batches needs nothing more. A payload is the JSON text the
//! sender wrote, as it arrived ([`SinkItem::payload`]): no parse, no
//! re-encoding on the way; [`SinkItem::parse`] reads it into any type.

use std::fmt;

use bytes::Bytes;
use futures_util::future::{self, BoxFuture};
use futures_util::stream::{FuturesOrdered, StreamExt};
use serde::de::DeserializeOwned;

pub(crate) mod in_process;
pub(crate) mod nats;
mod nats_publish;
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
    /// The payload: the JSON text of the envelope's `payload` exactly as the
    /// sender wrote it (never parsed into a DOM, never re-encoded).
    pub payload: Bytes,
}

impl SinkItem {
    /// The payload read as `T` (any `Deserialize` type, `serde_json::Value`
    /// included).
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.payload)
    }

    /// The payload as text (`None` when the bytes are not UTF-8, which a
    /// payload read from a text frame always is).
    pub fn payload_text(&self) -> Option<&str> {
        std::str::from_utf8(&self.payload).ok()
    }
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

/// The durable acceptance of a batch: one outcome per item, in the
/// batch's order.
pub type AcceptedBatch = BoxFuture<'static, Vec<Result<(), SinkError>>>;

/// A destination for ingested items.
pub trait Sink: Send + Sync + 'static {
    /// A short name for logs and metrics (`in_process`, `nats`, `jetstream`).
    fn name(&self) -> &'static str;

    /// Hands `item` over. The outer future resolves once the item is on its
    /// way, in call order; the inner one once the sink has durably accepted it.
    fn send(&self, item: SinkItem) -> BoxFuture<'static, Result<Accepted, SinkError>>;

    /// Hands `items` over, in order. The outer future resolves once all of
    /// them are on their way; the inner one ([`AcceptedBatch`]) once each
    /// has its outcome, one per item in the same order (an item that could
    /// not be handed over has its error there).
    ///
    /// The default calls [`Sink::send`] for each item in order, awaits their
    /// hand-overs in that order and then their acceptances together. A sink
    /// that can pipeline (publish a batch, then await its confirmations)
    /// overrides it.
    // The batch's acceptance is what the hand-over yields, awaited later.
    #[allow(clippy::async_yields_async)]
    fn send_batch(&self, items: Vec<SinkItem>) -> BoxFuture<'static, AcceptedBatch> {
        let handing: Vec<_> = items.into_iter().map(|item| self.send(item)).collect();
        Box::pin(async move {
            let mut accepted = FuturesOrdered::new();
            for handed in handing {
                accepted.push_back(match handed.await {
                    Ok(acceptance) => acceptance,
                    Err(error) => Box::pin(future::ready(Err(error))),
                });
            }
            let batch: AcceptedBatch = Box::pin(accepted.collect());
            batch
        })
    }
}
