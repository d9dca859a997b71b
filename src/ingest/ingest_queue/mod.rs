//! `IngestQueue`: the bounded, backpressured queue between the senders'
//! sockets and the [`Sink`].
//!
//! Items are handed to the sink in arrival order with a bounded window of
//! acceptances in flight. Each item's outcome goes back to its origin: `ack`
//! once the sink durably accepted it, `nack` when it was dropped by the
//! overflow policy, refused by the sink, or abandoned at shutdown. A sink
//! outage keeps items queued (the policy applies) and retries with backoff.
//! When utilization reaches 80 % every upstream connection is told `slow`
//! once; when it falls to 50 %, `resumed`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Poll;

use actix::{
    Actor, ActorFutureExt, AsyncContext, Context, Handler, Message, MessageResult, Recipient,
    WrapFuture,
};
use futures_util::task::noop_waker_ref;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

mod drain;

use drain::DrainWait;
pub use drain::{DrainQueue, DrainReport};

use super::dedup::DedupTicket;
use super::outcome::{IngestOutcome, Nack};
use super::queue::{BoundedQueue, Level, Offered, Signal};
use super::retry::Retry;
use super::status::{QueueGauge, QueueStatus};
use crate::config::OnFull;
use crate::sink::{Sink, SinkError, SinkItem};

/// Most sink acceptances awaited at once.
pub(crate) const MAX_IN_FLIGHT: usize = 256;

/// One item to ingest.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Ingest {
    /// The item.
    pub item: SinkItem,
    /// Who hears its outcome.
    pub origin: Option<Recipient<IngestOutcome>>,
    /// Under `block`, the admission permit it holds while queued.
    pub permit: Option<OwnedSemaphorePermit>,
    /// For a sequenced message: its claim on the duplicate filter, settled
    /// with its outcome (SEQ-9).
    pub dedup: Option<DedupTicket>,
}

/// The sink's acceptance of one item came back; sent to the queue by the
/// task that awaited it.
#[derive(Message)]
#[rtype(result = "()")]
struct Settled {
    entry: Ingest,
    outcome: Result<(), SinkError>,
}

/// A backpressure edge, sent to every upstream connection.
#[derive(Debug, Clone, Copy, PartialEq, Message)]
#[rtype(result = "()")]
pub struct Backpressure(pub Signal);

/// Registers (`Some`) or forgets (`None`) an upstream connection.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Upstream {
    /// The connection's id.
    pub id: u64,
    /// Where its backpressure signals go.
    pub recipient: Option<Recipient<Backpressure>>,
}

/// Reads the queue's figures.
#[derive(Debug, Message)]
#[rtype(result = "QueueStatus")]
pub struct GetQueueStatus;

/// Counters of one queue, mirrored to the `metrics` facade.
#[derive(Debug, Default)]
pub struct IngestStats {
    /// Items accepted by the sink.
    pub delivered: AtomicU64,
    /// Evicted by `drop_oldest`.
    pub dropped_oldest: AtomicU64,
    /// Refused by `drop_newest` (or a full `block` queue).
    pub dropped_newest: AtomicU64,
    /// Refused by the sink.
    pub rejected: AtomicU64,
    /// Abandoned at shutdown.
    pub abandoned: AtomicU64,
    /// Sink failures retried.
    pub retries: AtomicU64,
    /// Slow episodes.
    pub slow_episodes: AtomicU64,
}

impl IngestStats {
    fn bump(counter: &AtomicU64, name: &'static str, reason: &'static str) {
        counter.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(name, "reason" => reason).increment(1);
    }

    /// Total items dropped by the overflow policy.
    pub fn dropped(&self) -> u64 {
        self.dropped_oldest.load(Ordering::Relaxed) + self.dropped_newest.load(Ordering::Relaxed)
    }
}

/// Queue settings.
#[derive(Debug, Clone, Copy)]
pub struct QueueConfig {
    /// Capacity.
    pub queue_size: usize,
    /// Overflow policy.
    pub on_full: OnFull,
}

/// The queue actor.
pub struct IngestQueue {
    queue: BoundedQueue<Ingest>,
    sink: Arc<dyn Sink>,
    /// An item is being handed to the sink (its outer future runs).
    sending: bool,
    in_flight: usize,
    retry: Retry,
    upstreams: HashMap<u64, Recipient<Backpressure>>,
    stats: Arc<IngestStats>,
    admission: Option<Arc<Semaphore>>,
    closed: bool,
    drain: Option<DrainWait>,
    gauge: Arc<QueueGauge>,
}

impl IngestQueue {
    /// A queue in front of `sink`. Under `block` its admission semaphore is
    /// [`IngestQueue::admission`]: senders take a permit before offering.
    pub fn new(config: QueueConfig, sink: Arc<dyn Sink>) -> IngestQueue {
        let admission = (config.on_full == OnFull::Block)
            .then(|| Arc::new(Semaphore::new(config.queue_size.max(1))));
        IngestQueue {
            queue: BoundedQueue::new(config.queue_size, config.on_full),
            sink,
            sending: false,
            in_flight: 0,
            retry: Retry::default(),
            upstreams: HashMap::new(),
            stats: Arc::new(IngestStats::default()),
            admission,
            closed: false,
            drain: None,
            gauge: Arc::new(QueueGauge::new(config.queue_size)),
        }
    }

    /// Under `block`, the semaphore senders take a permit from before offering.
    pub fn admission(&self) -> Option<Arc<Semaphore>> {
        self.admission.clone()
    }

    /// The queue's counters.
    pub fn stats(&self) -> Arc<IngestStats> {
        self.stats.clone()
    }

    /// The queue's figures as of its last change, readable without a
    /// message to the queue.
    pub(crate) fn gauge(&self) -> Arc<QueueGauge> {
        self.gauge.clone()
    }

    fn signal(&mut self, signal: Option<Signal>) {
        let Some(signal) = signal else { return };
        match signal {
            Signal::Slow(level) => {
                IngestStats::bump(
                    &self.stats.slow_episodes,
                    "switchboard_ingest_slow_total",
                    "utilization",
                );
                tracing::warn!(
                    depth = level.depth,
                    capacity = level.capacity,
                    "ingest queue slow"
                );
            }
            Signal::Resumed(level) => {
                tracing::info!(
                    depth = level.depth,
                    capacity = level.capacity,
                    "ingest queue resumed"
                );
            }
        }
        for upstream in self.upstreams.values() {
            upstream.do_send(Backpressure(signal));
        }
    }

    fn nack(entry: Ingest, reason: &'static str, error: String) {
        let result = Err(Nack { reason, error });
        if let Some(ticket) = entry.dedup {
            ticket.settle(&result);
        }
        if let Some(origin) = entry.origin {
            origin.do_send(IngestOutcome {
                id: entry.item.id,
                result,
            });
        }
    }

    /// Hands the next item to the sink when it may; then records the figures
    /// (every change of depth or in-flight count ends in a pump).
    fn pump(&mut self, ctx: &mut Context<Self>) {
        self.hand_next(ctx);
        self.gauge.set(self.queue.depth(), self.in_flight);
    }

    fn hand_next(&mut self, ctx: &mut Context<Self>) {
        if self.sending || self.retry.holds() || self.in_flight >= MAX_IN_FLIGHT {
            return;
        }
        let (entry, signal) = self.queue.pop();
        self.signal(signal);
        let Some(entry) = entry else { return };
        self.sending = true;
        let handed = self.sink.send(entry.item.clone());
        ctx.spawn(handed.into_actor(self).map(move |handed, queue, ctx| {
            queue.sending = false;
            match handed {
                Ok(mut accepted) => {
                    // Accepted already (an in-process sink): settle now.
                    let mut probe = std::task::Context::from_waker(noop_waker_ref());
                    if let Poll::Ready(outcome) = accepted.as_mut().poll(&mut probe) {
                        queue.settle(entry, outcome, ctx);
                        return;
                    }
                    queue.in_flight += 1;
                    // A task of its own per acceptance, woken only by its own
                    // future: futures spawned into the actor's context would
                    // all be polled again on every wake of the actor.
                    let queue_addr = ctx.address();
                    actix::spawn(async move {
                        let outcome = accepted.await;
                        queue_addr.do_send(Settled { entry, outcome });
                    });
                }
                Err(error) => queue.settle(entry, Err(error), ctx),
            }
            queue.pump(ctx);
        }));
    }

    fn settle(
        &mut self,
        mut entry: Ingest,
        outcome: Result<(), SinkError>,
        ctx: &mut Context<Self>,
    ) {
        match outcome {
            Ok(()) => {
                self.retry.succeeded();
                IngestStats::bump(
                    &self.stats.delivered,
                    "switchboard_ingest_delivered_total",
                    "ok",
                );
                if let Some(ticket) = entry.dedup.take() {
                    ticket.settle(&Ok(()));
                }
                if let Some(origin) = &entry.origin {
                    origin.do_send(IngestOutcome {
                        id: entry.item.id.clone(),
                        result: Ok(()),
                    });
                }
            }
            Err(error) if error.is_retryable() && !self.closed => {
                IngestStats::bump(
                    &self.stats.retries,
                    "switchboard_ingest_retries_total",
                    "sink",
                );
                let delay = self.retry.next_delay();
                tracing::warn!(%error, ?delay, "sink failed; item requeued");
                let signal = self.queue.requeue_front(std::iter::once(entry));
                self.signal(signal);
                if let Some(delay) = self.retry.failed() {
                    ctx.run_later(delay, |queue, ctx| {
                        queue.retry.timer_fired();
                        queue.pump(ctx);
                    });
                }
            }
            Err(error) => {
                IngestStats::bump(
                    &self.stats.rejected,
                    "switchboard_ingest_dropped_total",
                    "rejected",
                );
                Self::nack(entry, "rejected", error.to_string());
            }
        }
        self.pump(ctx);
        self.check_drained();
    }

    fn status(&self) -> QueueStatus {
        let level: Level = self.queue.level();
        QueueStatus::of(level.depth, level.capacity, self.in_flight)
    }
}

impl Actor for IngestQueue {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAX_IN_FLIGHT * 4);
    }
}

impl Handler<Ingest> for IngestQueue {
    type Result = ();

    fn handle(&mut self, entry: Ingest, ctx: &mut Context<Self>) {
        if self.closed {
            IngestStats::bump(
                &self.stats.abandoned,
                "switchboard_ingest_dropped_total",
                "shutdown",
            );
            return Self::nack(entry, "shutdown", "the queue is draining".to_owned());
        }
        let (offered, signal) = self.queue.offer(entry);
        self.signal(signal);
        match offered {
            Offered::Queued => {}
            Offered::Evicted(oldest) => {
                IngestStats::bump(
                    &self.stats.dropped_oldest,
                    "switchboard_ingest_dropped_total",
                    "drop_oldest",
                );
                Self::nack(
                    oldest,
                    "queue_full",
                    "evicted by a newer item (drop_oldest)".to_owned(),
                );
            }
            Offered::Refused(newest) => {
                IngestStats::bump(
                    &self.stats.dropped_newest,
                    "switchboard_ingest_dropped_total",
                    "drop_newest",
                );
                Self::nack(newest, "queue_full", "queue full (drop_newest)".to_owned());
            }
        }
        self.pump(ctx);
    }
}

impl Handler<Settled> for IngestQueue {
    type Result = ();

    fn handle(&mut self, msg: Settled, ctx: &mut Context<Self>) {
        self.in_flight -= 1;
        self.settle(msg.entry, msg.outcome, ctx);
    }
}

impl Handler<Upstream> for IngestQueue {
    type Result = ();

    fn handle(&mut self, msg: Upstream, _: &mut Context<Self>) {
        match msg.recipient {
            Some(recipient) => {
                if self.queue.is_slow() {
                    recipient.do_send(Backpressure(Signal::Slow(self.queue.level())));
                }
                self.upstreams.insert(msg.id, recipient);
            }
            None => {
                self.upstreams.remove(&msg.id);
            }
        }
    }
}

impl Handler<GetQueueStatus> for IngestQueue {
    type Result = MessageResult<GetQueueStatus>;

    fn handle(&mut self, _: GetQueueStatus, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.status())
    }
}
