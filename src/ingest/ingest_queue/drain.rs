//! Draining the queue at shutdown: intake stops, what is queued is
//! delivered within a deadline, and what is left is nacked `shutdown`.

use std::sync::atomic::Ordering;
use std::time::Duration;

use actix::{AsyncContext, Context, Handler, Message, ResponseFuture};
use tokio::sync::oneshot;

use super::entry::{Entry, Replies};
use super::{nack, IngestQueue, IngestStats};

/// Stops intake, delivers what is queued, and reports, within `timeout`.
#[derive(Debug, Message)]
#[rtype(result = "DrainReport")]
pub struct DrainQueue {
    /// Upper bound of the wait.
    pub timeout: Duration,
}

/// What a drain could not deliver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainReport {
    /// Items delivered during the drain.
    pub delivered: u64,
    /// Items nacked with `shutdown` because the deadline passed.
    pub undelivered: u64,
}

pub(super) struct DrainWait {
    pub(super) done: oneshot::Sender<DrainReport>,
    pub(super) delivered_before: u64,
}

impl IngestQueue {
    pub(super) fn check_drained(&mut self) {
        if self.drain.is_some() && self.queue.depth() == 0 && self.in_flight == 0 && !self.sending {
            self.finish_drain();
        }
    }

    /// Ends a drain: whatever is still queued is nacked with `shutdown`.
    pub(super) fn finish_drain(&mut self) {
        let Some(wait) = self.drain.take() else {
            return;
        };
        let abandoned: Vec<Entry> = self.queue.drain().collect();
        // In flight counts the batch being handed over too.
        let mut undelivered = self.in_flight as u64;
        let mut replies = Replies::default();
        for entry in abandoned {
            undelivered += 1;
            IngestStats::bump(
                &self.stats.abandoned,
                "switchboard_ingest_dropped_total",
                "shutdown",
            );
            let why = "not delivered before the drain deadline";
            nack(entry, "shutdown", why, &mut replies);
        }
        replies.send();
        let delivered = self.stats.delivered.load(Ordering::Relaxed) - wait.delivered_before;
        self.gauge.set(0, self.in_flight);
        if undelivered > 0 {
            tracing::warn!(undelivered, "drain deadline passed");
        }
        let _ = wait.done.send(DrainReport {
            delivered,
            undelivered,
        });
    }
}

impl Handler<DrainQueue> for IngestQueue {
    type Result = ResponseFuture<DrainReport>;

    fn handle(&mut self, msg: DrainQueue, ctx: &mut Context<Self>) -> Self::Result {
        let (done, report) = oneshot::channel();
        self.closed = true;
        self.drain = Some(DrainWait {
            done,
            delivered_before: self.stats.delivered.load(Ordering::Relaxed),
        });
        ctx.run_later(msg.timeout, |queue, _| queue.finish_drain());
        self.pump(ctx);
        self.check_drained();
        Box::pin(async move {
            report.await.unwrap_or(DrainReport {
                delivered: 0,
                undelivered: 0,
            })
        })
    }
}
