//! `IngestQueue`: the bounded, backpressured queue between the senders'
//! sockets and the [`Sink`].
//!
//! Items arrive one by one ([`Ingest`]) or as the batch one read of a
//! socket produced (one message for all of them), and are handed to the
//! sink in arrival order, in batches ([`Sink::send_batch`]), with a bounded
//! window of items in flight. Each item's outcome goes back to its origin: `ack`
//! once the sink durably accepted it, `nack` when it was dropped by the
//! overflow policy, refused by the sink, or abandoned at shutdown. A sink
//! outage keeps items queued (the policy applies) and retries with backoff.
//! When utilization reaches 80 % every upstream connection is told `slow`
//! once; when it falls to 50 %, `resumed`.

use std::collections::HashMap;
use std::sync::Arc;

use actix::{Actor, Context, Handler, Message, MessageResult, Recipient};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

mod drain;
mod entry;
mod hand_over;
mod stats;

use drain::DrainWait;
pub use drain::{DrainQueue, DrainReport};
pub(crate) use entry::{Batched, IngestBatch, IngestOutcomes};
use entry::{Entry, Replies};
pub use stats::IngestStats;

use super::dedup::DedupTicket;
use super::outcome::{IngestOutcome, Nack};
use super::queue::{BoundedQueue, Level, Offered, Signal};
use super::retry::Retry;
use super::status::{QueueGauge, QueueStatus};
use crate::config::OnFull;
use crate::sink::{Sink, SinkItem};

/// Most items handed to the sink and not yet settled.
pub(crate) const MAX_IN_FLIGHT: usize = 256;

/// Most items in one hand-over to the sink.
pub(crate) const MAX_BATCH: usize = 64;

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
    queue: BoundedQueue<Entry>,
    sink: Arc<dyn Sink>,
    /// A batch is being handed to the sink (its outer future runs).
    sending: bool,
    /// Items handed to the sink, not yet settled.
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

    /// Offers one entry under the overflow policy; refused or evicted
    /// items are answered `queue_full` through `replies`.
    fn admit(&mut self, entry: Entry, replies: &mut Replies) {
        if self.closed {
            IngestStats::bump(
                &self.stats.abandoned,
                "switchboard_ingest_dropped_total",
                "shutdown",
            );
            return nack(entry, "shutdown", "the queue is draining", replies);
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
                let why = "evicted by a newer item (drop_oldest)";
                nack(oldest, "queue_full", why, replies);
            }
            Offered::Refused(newest) => {
                IngestStats::bump(
                    &self.stats.dropped_newest,
                    "switchboard_ingest_dropped_total",
                    "drop_newest",
                );
                nack(newest, "queue_full", "queue full (drop_newest)", replies);
            }
        }
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

fn nack(entry: Entry, reason: &'static str, error: &str, replies: &mut Replies) {
    let error = error.to_owned();
    entry.answer(Err(Nack { reason, error }), replies);
}

impl Handler<Ingest> for IngestQueue {
    type Result = ();

    fn handle(&mut self, entry: Ingest, ctx: &mut Context<Self>) {
        let mut replies = Replies::default();
        self.admit(Entry::from(entry), &mut replies);
        replies.send();
        self.pump(ctx);
    }
}

impl Handler<IngestBatch> for IngestQueue {
    type Result = ();

    fn handle(&mut self, batch: IngestBatch, ctx: &mut Context<Self>) {
        let mut replies = Replies::default();
        for batched in batch.entries {
            self.admit(Entry::batched(batched, &batch.origin), &mut replies);
        }
        replies.send();
        self.pump(ctx);
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
