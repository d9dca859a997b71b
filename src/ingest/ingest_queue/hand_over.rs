//! Hand-over to the sink: batches of queued items, in order, with a
//! bounded window of items in flight; each batch's outcomes settled
//! together (acks, nacks, requeues for a retry).

use std::task::Poll;

use actix::{ActorFutureExt, AsyncContext, Context, Handler, Message, WrapFuture};
use futures_util::task::noop_waker_ref;

use super::entry::{Entry, Replies};
use super::{IngestQueue, IngestStats, MAX_BATCH, MAX_IN_FLIGHT};
use crate::ingest::outcome::Nack;
use crate::sink::{AcceptedBatch, SinkError};

/// A batch's acceptances came back; sent to the queue by the task that
/// awaited them.
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct Settled {
    entries: Vec<Entry>,
    outcomes: Vec<Result<(), SinkError>>,
}

impl IngestQueue {
    /// Hands the next batch to the sink when it may; then records the
    /// figures (every change of depth or in-flight count ends in a pump).
    pub(super) fn pump(&mut self, ctx: &mut Context<Self>) {
        self.hand_next(ctx);
        self.gauge.set(self.queue.depth(), self.in_flight);
    }

    fn hand_next(&mut self, ctx: &mut Context<Self>) {
        // A loop, not recursion: an in-process sink settles every batch inline.
        while !self.sending && !self.retry.holds() {
            let room = MAX_IN_FLIGHT.saturating_sub(self.in_flight).min(MAX_BATCH);
            let mut entries = Vec::new();
            while entries.len() < room {
                let (entry, signal) = self.queue.pop();
                self.signal(signal);
                match entry {
                    Some(entry) => entries.push(entry),
                    None => break,
                }
            }
            if entries.is_empty() {
                return;
            }
            self.sending = true;
            self.in_flight += entries.len();
            let items = entries.iter().map(|entry| entry.item.clone()).collect();
            let mut handed = self.sink.send_batch(items);
            // Handed over already (an in-process sink): go on at once.
            let mut probe = std::task::Context::from_waker(noop_waker_ref());
            if let Poll::Ready(accepted) = handed.as_mut().poll(&mut probe) {
                self.handed(entries, accepted, ctx);
                continue;
            }
            ctx.spawn(handed.into_actor(self).map(move |accepted, queue, ctx| {
                queue.handed(entries, accepted, ctx);
                queue.pump(ctx);
            }));
            return;
        }
    }

    /// A batch is on its way: its acceptance settles now when it is ready,
    /// or in a task of its own (woken only by its own futures: futures
    /// spawned into the actor's context would all be polled again on every
    /// wake of the actor).
    fn handed(
        &mut self,
        entries: Vec<Entry>,
        mut accepted: AcceptedBatch,
        ctx: &mut Context<Self>,
    ) {
        self.sending = false;
        let mut probe = std::task::Context::from_waker(noop_waker_ref());
        if let Poll::Ready(outcomes) = accepted.as_mut().poll(&mut probe) {
            return self.settle(entries, outcomes, ctx);
        }
        let queue = ctx.address();
        actix::spawn(async move {
            let outcomes = accepted.await;
            queue.do_send(Settled { entries, outcomes });
        });
    }

    /// Answers a batch's items by their outcomes; a retryable failure puts
    /// the item back at the head and holds hand-over for a backoff.
    fn settle(
        &mut self,
        entries: Vec<Entry>,
        outcomes: Vec<Result<(), SinkError>>,
        ctx: &mut Context<Self>,
    ) {
        self.in_flight = self.in_flight.saturating_sub(entries.len());
        let mut replies = Replies::default();
        let mut requeue = Vec::new();
        let mut outcomes = outcomes.into_iter();
        let (mut delivered, mut rejected) = (0, 0);
        for entry in entries {
            let outcome = outcomes.next().unwrap_or_else(|| {
                Err(SinkError::Unavailable(
                    "the sink answered fewer outcomes than it was handed items".to_owned(),
                ))
            });
            match outcome {
                Ok(()) => {
                    self.retry.succeeded();
                    delivered += 1;
                    entry.answer(Ok(()), &mut replies);
                }
                Err(error) if error.is_retryable() && !self.closed => {
                    let delay = self.retry.next_delay();
                    if requeue.is_empty() {
                        tracing::warn!(%error, ?delay, "sink failed; item requeued");
                    }
                    requeue.push(entry);
                    if let Some(delay) = self.retry.failed() {
                        ctx.run_later(delay, |queue, ctx| {
                            queue.retry.timer_fired();
                            queue.pump(ctx);
                        });
                    }
                }
                Err(error) => {
                    rejected += 1;
                    let reason = "rejected";
                    entry.answer(
                        Err(Nack {
                            reason,
                            error: error.to_string(),
                        }),
                        &mut replies,
                    );
                }
            }
        }
        let stats = &self.stats;
        IngestStats::add(
            &stats.delivered,
            "switchboard_ingest_delivered_total",
            "ok",
            delivered,
        );
        IngestStats::add(
            &stats.rejected,
            "switchboard_ingest_dropped_total",
            "rejected",
            rejected,
        );
        if !requeue.is_empty() {
            let retried = requeue.len() as u64;
            IngestStats::add(
                &stats.retries,
                "switchboard_ingest_retries_total",
                "sink",
                retried,
            );
            let signal = self.queue.requeue_front(requeue.into_iter());
            self.signal(signal);
        }
        replies.send();
        self.check_drained();
    }
}

impl Handler<Settled> for IngestQueue {
    type Result = ();

    fn handle(&mut self, msg: Settled, ctx: &mut Context<Self>) {
        self.settle(msg.entries, msg.outcomes, ctx);
        self.pump(ctx);
    }
}
