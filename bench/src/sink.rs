//! A sink wrapper that counts what the real sink accepted.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use switchboard::sink::{Accepted, AcceptedBatch, Sink, SinkError, SinkItem};

use crate::counter::Counter;

/// Delegates to `inner` (the in-process sink, or JetStream) and counts each
/// item once `inner` has accepted it (for JetStream: once it is stored).
pub struct CountedSink {
    inner: Arc<dyn Sink>,
    accepted: Arc<Counter>,
}

impl CountedSink {
    /// Wraps `inner`, counting into `accepted`.
    pub fn new(inner: Arc<dyn Sink>, accepted: Arc<Counter>) -> CountedSink {
        CountedSink { inner, accepted }
    }
}

impl Sink for CountedSink {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn send(&self, item: SinkItem) -> BoxFuture<'static, Result<Accepted, SinkError>> {
        let handed = self.inner.send(item);
        let accepted = self.accepted.clone();
        Box::pin(async move {
            let stored = handed.await?;
            let counted: Accepted = Box::pin(async move {
                stored.await?;
                accepted.add(1);
                Ok(())
            });
            Ok(counted)
        })
    }

    /// The inner sink's own batches (the ingest queue hands over batches),
    /// each accepted item counted.
    // The batch's acceptance is what the hand-over yields, awaited later.
    #[allow(clippy::async_yields_async)]
    fn send_batch(&self, items: Vec<SinkItem>) -> BoxFuture<'static, AcceptedBatch> {
        let handed = self.inner.send_batch(items);
        let accepted = self.accepted.clone();
        Box::pin(async move {
            let stored = handed.await;
            let counted: AcceptedBatch = Box::pin(async move {
                let outcomes = stored.await;
                let ok = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
                accepted.add(ok as u64);
                outcomes
            });
            counted
        })
    }
}
