//! Sinks inside the application's own process.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use actix::{Message, Recipient};
use futures_util::future::{self, BoxFuture};
use tokio::sync::Notify;

use super::{Accepted, AcceptedBatch, Sink, SinkError, SinkItem};

/// An item delivered to the application's actor; it answers once stored.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), SinkError>")]
pub struct Ingested(pub SinkItem);

/// Hands every item to an actor of the application; the item is acked once
/// the actor answers `Ok`.
pub struct ActorSink {
    recipient: Recipient<Ingested>,
}

impl ActorSink {
    /// A sink delivering to `recipient`.
    pub fn new(recipient: Recipient<Ingested>) -> ActorSink {
        ActorSink { recipient }
    }
}

impl Sink for ActorSink {
    fn name(&self) -> &'static str {
        "in_process"
    }

    fn send(&self, item: SinkItem) -> BoxFuture<'static, Result<Accepted, SinkError>> {
        let answer = self.recipient.send(Ingested(item));
        Box::pin(async move {
            let accepted: Accepted = Box::pin(async move {
                answer
                    .await
                    .map_err(|error| SinkError::Unavailable(error.to_string()))?
            });
            Ok(accepted)
        })
    }
}

/// The default sink of `switchboard serve`: counts and logs items, keeps
/// nothing. It can be paused, which holds every item until resumed (a stand-in
/// for a slow or unavailable downstream).
#[derive(Default)]
pub struct CountingSink {
    stored: AtomicU64,
    bytes: AtomicU64,
    paused: AtomicBool,
    resumed: Notify,
}

impl CountingSink {
    /// A new, running sink.
    pub fn new() -> Arc<CountingSink> {
        Arc::new(CountingSink::default())
    }

    /// Items accepted so far.
    pub fn stored(&self) -> u64 {
        self.stored.load(Ordering::Relaxed)
    }

    /// Stops accepting until [`CountingSink::resume`].
    pub fn pause(&self) {
        self.paused.store(true, Ordering::SeqCst);
    }

    /// Accepts again, releasing every held item.
    pub fn resume(&self) {
        self.paused.store(false, Ordering::SeqCst);
        self.resumed.notify_waiters();
    }

    async fn running(&self) {
        while self.paused.load(Ordering::SeqCst) {
            let resumed = self.resumed.notified();
            if !self.paused.load(Ordering::SeqCst) {
                break;
            }
            resumed.await;
        }
    }

    fn store(&self, items: u64, bytes: usize) {
        self.stored.fetch_add(items, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

impl Sink for Arc<CountingSink> {
    fn name(&self) -> &'static str {
        "in_process"
    }

    fn send(&self, item: SinkItem) -> BoxFuture<'static, Result<Accepted, SinkError>> {
        let sink = self.clone();
        Box::pin(async move {
            sink.running().await;
            sink.store(1, item.payload.len());
            tracing::trace!(id = %item.id, "stored");
            let accepted: Accepted = Box::pin(async { Ok(()) });
            Ok(accepted)
        })
    }

    // The batch's acceptance is what the hand-over yields, awaited later.
    #[allow(clippy::async_yields_async)]
    fn send_batch(&self, items: Vec<SinkItem>) -> BoxFuture<'static, AcceptedBatch> {
        let sink = self.clone();
        Box::pin(async move {
            sink.running().await;
            let bytes = items.iter().map(|item| item.payload.len()).sum();
            sink.store(items.len() as u64, bytes);
            tracing::trace!(items = items.len(), "stored");
            let accepted: AcceptedBatch = Box::pin(future::ready(vec![Ok(()); items.len()]));
            accepted
        })
    }
}
