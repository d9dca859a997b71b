//! `Snapshotter`: the actor that owns the [`Snapshot`] and writes it to a
//! [`SnapshotStore`] without blocking its arbiter.
//!
//! Three kinds of state go through it:
//!
//! - publisher sequences ([`Stamp`]): handed out only below a reservation
//!   watermark that is already durable, so a sequence is never reused across
//!   a crash (a crash may skip some, never repeat one);
//! - receiver positions ([`Advance`], [`Position`]): the last sequence
//!   delivered to the application per channel and epoch, for resume (SEQ-2,
//!   SEQ-3);
//! - ingest high-water marks ([`AdvanceProducer`], [`ProducerMarks`]): the
//!   highest sequence the sink accepted per producer, for exactly-once
//!   (SEQ-9).
//!
//! Writes happen on a blocking thread, one at a time. Changes that arrive
//! while a write is in flight mark the state dirty and go into the next write
//! together. A request that waits for durability is answered when the first
//! write covering it completes, or with that write's error. A failed write is
//! logged, counted and retried with the next change (or tick); the actor
//! keeps running.
//!
//! Memory is bounded by the number of distinct channels and producers the
//! application uses: their entries are never forgotten (they are what a
//! restart resumes from), so channel and producer names should come from a
//! bounded set. Requests waiting for a write are bounded by the mailbox and
//! the callers awaiting them.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::ready;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use actix::{
    Actor, ActorFutureExt, Addr, AsyncContext, Context, Handler, Message, MessageResult,
    ResponseFuture, WrapFuture,
};
use tokio::sync::oneshot;

use super::snapshot::{ChannelPosition, Snapshot};
use super::store::{MemoryStore, SnapshotStore, StoreError};

/// How far [`Stamp`] extends an exhausted reservation under
/// [`FlushPolicy::Interval`]: a crash skips at most this many sequences.
pub const RESERVE_BLOCK: u64 = 1024;

/// Shortest period of [`FlushPolicy::Interval`]; shorter ones are raised to it.
pub(crate) const MIN_INTERVAL: Duration = Duration::from_millis(1);

/// The period of [`Snapshotter::in_memory`].
pub(crate) const IN_MEMORY_INTERVAL: Duration = Duration::from_secs(1);

/// When the snapshot is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushPolicy {
    /// Every change is written as soon as the previous write completed;
    /// [`Advance`] and [`AdvanceProducer`] answer once they are durable, and
    /// [`Stamp`] reserves one sequence per write.
    Every,
    /// Changes are written together, at most one period after the first
    /// of them (and at stop);
    /// [`Advance`] and [`AdvanceProducer`] answer at once, so a crash may
    /// lose up to one period of them. [`Stamp`] reserves
    /// [`RESERVE_BLOCK`] sequences per write, and [`Flush`] writes at once.
    Interval(Duration),
}

impl FlushPolicy {
    /// How many sequences [`Stamp`] reserves when the reservation runs out.
    pub fn reserve_block(self) -> u64 {
        match self {
            FlushPolicy::Every => 1,
            FlushPolicy::Interval(_) => RESERVE_BLOCK,
        }
    }
}

/// Hands out the next published sequence of a channel (the first is 1).
///
/// A sequence is handed out only once a snapshot whose `published` covers it
/// is durable, so none is ever reused across a crash or restart. Stamps of
/// one channel are answered in the order they arrived.
#[derive(Debug, Clone, PartialEq, Eq, Message)]
#[rtype(result = "Result<u64, StoreError>")]
pub struct Stamp {
    /// The channel.
    pub channel: String,
}

/// Records the receiver position of a channel: the last sequence delivered
/// to the application.
///
/// Within one epoch the position never moves backwards (a lower value is
/// ignored and counted); a different epoch (`None` counts as one of its
/// own) replaces it, even with a lower value. Under [`FlushPolicy::Every`] the answer comes once a snapshot
/// holding the position (or a later one) is durable; under
/// [`FlushPolicy::Interval`] at once.
#[derive(Debug, Clone, PartialEq, Eq, Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct Advance {
    /// The channel.
    pub channel: String,
    /// The last sequence delivered.
    pub delivered: u64,
    /// The epoch `delivered` belongs to, when the hub reported one.
    pub epoch: Option<String>,
}

/// Reads the state of a channel as held in memory (`published` may be a
/// reservation whose write is still in flight); `None` when the channel has
/// none.
#[derive(Debug, Clone, PartialEq, Eq, Message)]
#[rtype(result = "Option<ChannelPosition>")]
pub struct Position {
    /// The channel.
    pub channel: String,
}

/// Records an ingest high-water mark: the highest sequence of `producer` the
/// sink accepted. The mark only rises (`max`); answers like [`Advance`].
#[derive(Debug, Clone, PartialEq, Eq, Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct AdvanceProducer {
    /// The producer.
    pub producer: String,
    /// A sequence the sink accepted.
    pub sequence: u64,
}

/// Forgets a producer's ingest mark (the hub stopped tracking it), so the
/// snapshot does not grow with every producer ever seen.
#[derive(Debug, Clone, PartialEq, Eq, Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct ForgetProducer {
    /// The producer.
    pub producer: String,
}

/// Reads every ingest high-water mark (the hub loads them at start).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Message)]
#[rtype(result = "BTreeMap<String, u64>")]
pub struct ProducerMarks;

/// Writes now when something changed since the last write, and answers once
/// everything recorded before it is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct Flush;

/// Reads the snapshotter's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Message)]
#[rtype(result = "SnapshotterStatus")]
pub struct GetSnapshotterStatus;

/// The figures of a snapshotter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SnapshotterStatus {
    /// Successful writes (`switchboard_snapshot_writes_total`).
    pub writes: u64,
    /// Failed writes (`switchboard_snapshot_write_errors_total`).
    pub write_errors: u64,
    /// Advances and producer marks ignored because they were lower than the
    /// stored value (`switchboard_snapshot_stale_updates_total`).
    pub stale_updates: u64,
    /// Whether the memory holds changes no completed write covers.
    pub dirty: bool,
    /// Whether a write is in flight.
    pub writing: bool,
    /// Requests waiting for a write.
    pub waiting: usize,
    /// Channels known.
    pub channels: usize,
    /// Producers known.
    pub producers: usize,
}

type SharedStore = Arc<Mutex<Box<dyn SnapshotStore>>>;

/// The store, even when a panicking save poisoned its lock (the stores
/// replace a snapshot whole, so nothing is half-updated in memory).
fn lock(store: &SharedStore) -> MutexGuard<'_, Box<dyn SnapshotStore>> {
    store
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The publisher side of one channel.
#[derive(Debug, Default)]
struct Issuer {
    /// The last sequence handed out.
    issued: u64,
    /// `published` in the last durable snapshot.
    durable: u64,
    /// Stamps waiting for a reservation to become durable.
    pending: u64,
}

/// A request waiting for a write.
enum Waiter {
    /// Answered once a write of state version `since` (or later) completed.
    Durable {
        since: u64,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    /// Answered with the next sequence of `channel` once its durable
    /// reservation covers one; failed by a write of version `since` or later.
    Stamp {
        channel: String,
        since: u64,
        reply: oneshot::Sender<Result<u64, StoreError>>,
    },
}

/// The snapshot actor. See the [module documentation](crate::sequence).
pub struct Snapshotter {
    store: SharedStore,
    /// The store's file, or `<memory>`, for logs and errors.
    location: PathBuf,
    policy: FlushPolicy,
    state: Snapshot,
    issuers: HashMap<String, Issuer>,
    /// Bumped by every change of `state`.
    version: u64,
    /// The version of the last completed write.
    written: u64,
    /// The version of the write in flight.
    writing: Option<u64>,
    /// Under [`FlushPolicy::Interval`], whether a tick is scheduled.
    tick_armed: bool,
    /// In arrival order.
    waiters: VecDeque<Waiter>,
    status: SnapshotterStatus,
}

impl Snapshotter {
    /// Loads the store (synchronously, before starting) and starts the actor on the current arbiter.
    ///
    /// Must be called inside a running actix `System`. Fails when the store
    /// cannot be read or holds something that is not a snapshot.
    pub fn start(
        store: Box<dyn SnapshotStore>,
        policy: FlushPolicy,
    ) -> Result<Addr<Snapshotter>, StoreError> {
        let loaded = store.load()?.unwrap_or_default();
        Ok(Snapshotter::new(store, policy, loaded).start())
    }

    /// In-memory, Interval(1s): for tests and for apps that do not persist.
    pub fn in_memory() -> Addr<Snapshotter> {
        Snapshotter::memory().start()
    }

    /// [`in_memory`](Self::in_memory), started on `arbiter` (callable from
    /// any thread).
    pub fn in_memory_on(arbiter: &actix::ArbiterHandle) -> Addr<Snapshotter> {
        Snapshotter::start_in_arbiter(arbiter, |_| Snapshotter::memory())
    }

    fn memory() -> Snapshotter {
        Snapshotter::new(
            Box::new(MemoryStore::new()),
            FlushPolicy::Interval(IN_MEMORY_INTERVAL),
            Snapshot::default(),
        )
    }

    /// An actor over `store` whose state starts as `loaded`: every sequence
    /// up to a loaded `published` counts as handed out.
    fn new(store: Box<dyn SnapshotStore>, policy: FlushPolicy, loaded: Snapshot) -> Snapshotter {
        let location = store
            .location()
            .map_or_else(|| PathBuf::from("<memory>"), Path::to_path_buf);
        let issuers = loaded
            .channels
            .iter()
            .filter(|(_, position)| position.published > 0)
            .map(|(channel, position)| {
                let issuer = Issuer {
                    issued: position.published,
                    durable: position.published,
                    pending: 0,
                };
                (channel.clone(), issuer)
            })
            .collect();
        Snapshotter {
            store: Arc::new(Mutex::new(store)),
            location,
            policy,
            state: loaded,
            issuers,
            version: 0,
            written: 0,
            writing: None,
            tick_armed: false,
            waiters: VecDeque::new(),
            status: SnapshotterStatus::default(),
        }
    }

    fn dirty(&self) -> bool {
        self.version > self.written
    }

    fn stopped_error(location: &Path) -> StoreError {
        StoreError::Io {
            path: location.to_path_buf(),
            source: io::Error::other("the snapshotter stopped before the snapshot was durable"),
        }
    }

    /// The answer to a request that waits on `reply`.
    fn answer<T: 'static>(
        &self,
        reply: oneshot::Receiver<Result<T, StoreError>>,
    ) -> ResponseFuture<Result<T, StoreError>> {
        let location = self.location.clone();
        Box::pin(async move {
            reply
                .await
                .unwrap_or_else(|_| Err(Snapshotter::stopped_error(&location)))
        })
    }

    /// Answers once everything changed so far is durable.
    fn when_durable(&mut self, ctx: &mut Context<Self>) -> ResponseFuture<Result<(), StoreError>> {
        if !self.dirty() {
            return Box::pin(ready(Ok(())));
        }
        let (reply, answer) = oneshot::channel();
        self.waiters.push_back(Waiter::Durable {
            since: self.version,
            reply,
        });
        self.kick(ctx);
        self.answer(answer)
    }

    /// The answer to a change under the current policy.
    fn changed(&mut self, ctx: &mut Context<Self>) -> ResponseFuture<Result<(), StoreError>> {
        match self.policy {
            FlushPolicy::Every => self.when_durable(ctx),
            FlushPolicy::Interval(_) => {
                self.arm(ctx);
                Box::pin(ready(Ok(())))
            }
        }
    }

    fn stale(&mut self, kind: &'static str) {
        self.status.stale_updates += 1;
        metrics::counter!("switchboard_snapshot_stale_updates_total", "kind" => kind).increment(1);
    }

    /// Starts a write when none is in flight, the state is dirty, and either
    /// the policy writes every change or a request waits for one.
    fn kick(&mut self, ctx: &mut Context<Self>) {
        let wanted = self.policy == FlushPolicy::Every || !self.waiters.is_empty();
        if self.writing.is_none() && self.dirty() && wanted {
            self.start_write(ctx);
        }
        self.arm(ctx);
    }

    /// Under [`FlushPolicy::Interval`], schedules a tick one period from now
    /// when the state is dirty and none is scheduled.
    ///
    /// The timer is a detached task holding a weak address, not an item of
    /// the actor's context: a pending tick does not keep the actor alive, so
    /// it stops (with its final save) once its last address is dropped.
    fn arm(&mut self, ctx: &mut Context<Self>) {
        let FlushPolicy::Interval(period) = self.policy else {
            return;
        };
        if self.tick_armed || !self.dirty() {
            return;
        }
        self.tick_armed = true;
        let snapshotter = ctx.address().downgrade();
        actix::spawn(async move {
            tokio::time::sleep(period.max(MIN_INTERVAL)).await;
            if let Some(snapshotter) = snapshotter.upgrade() {
                snapshotter.do_send(Tick);
            }
        });
    }

    /// Under [`FlushPolicy::Interval`]: writes when dirty (or, when a write
    /// is in flight, ticks again one period later).
    fn tick(&mut self, ctx: &mut Context<Self>) {
        if self.writing.is_none() && self.dirty() {
            self.start_write(ctx);
        } else {
            self.arm(ctx);
        }
    }

    /// Saves a copy of the state on a blocking thread.
    fn start_write(&mut self, ctx: &mut Context<Self>) {
        let version = self.version;
        let snapshot = self.state.clone();
        let store = self.store.clone();
        self.writing = Some(version);
        let save =
            tokio::task::spawn_blocking(move || lock(&store).save(&snapshot).map(|()| snapshot));
        ctx.spawn(save.into_actor(self).map(move |joined, this, ctx| {
            let outcome = joined.unwrap_or_else(|failure| {
                Err(StoreError::Io {
                    path: this.location.clone(),
                    source: io::Error::other(format!("the snapshot writer failed: {failure}")),
                })
            });
            this.finish_write(version, outcome, ctx);
        }));
    }

    fn finish_write(
        &mut self,
        version: u64,
        outcome: Result<Snapshot, StoreError>,
        ctx: &mut Context<Self>,
    ) {
        self.writing = None;
        match outcome {
            Ok(snapshot) => {
                self.wrote(version, &snapshot);
                self.kick(ctx);
            }
            Err(error) => {
                self.write_failed(version, &error);
                // Requests that arrived during the failed write get a write
                // of their own; otherwise the next change or tick retries.
                if !self.waiters.is_empty() {
                    self.start_write(ctx);
                }
                self.arm(ctx);
            }
        }
    }

    /// `snapshot`, the state at `version`, is durable: answers whoever it
    /// covers.
    fn wrote(&mut self, version: u64, snapshot: &Snapshot) {
        self.written = self.written.max(version);
        self.status.writes += 1;
        metrics::counter!("switchboard_snapshot_writes_total").increment(1);
        for (channel, issuer) in &mut self.issuers {
            issuer.durable = issuer.durable.max(snapshot.published(channel));
        }
        let mut kept = VecDeque::new();
        for waiter in std::mem::take(&mut self.waiters) {
            match waiter {
                Waiter::Durable { since, reply } if since <= self.written => {
                    let _ = reply.send(Ok(()));
                }
                Waiter::Stamp {
                    channel,
                    since,
                    reply,
                } => match self.issuers.get_mut(&channel) {
                    Some(issuer) if issuer.issued < issuer.durable => {
                        issuer.pending = issuer.pending.saturating_sub(1);
                        issuer.issued += 1;
                        if reply.send(Ok(issuer.issued)).is_err() {
                            // Nobody received it: the next stamp takes it.
                            issuer.issued -= 1;
                        }
                    }
                    _ => kept.push_back(Waiter::Stamp {
                        channel,
                        since,
                        reply,
                    }),
                },
                waiter => kept.push_back(waiter),
            }
        }
        self.waiters = kept;
    }

    /// The write of `version` failed: logs, counts, and fails whoever it
    /// would have covered.
    fn write_failed(&mut self, version: u64, error: &StoreError) {
        self.status.write_errors += 1;
        metrics::counter!("switchboard_snapshot_write_errors_total").increment(1);
        tracing::error!(
            path = %self.location.display(),
            %error,
            "snapshot write failed; retrying with the next change"
        );
        let mut kept = VecDeque::new();
        for waiter in std::mem::take(&mut self.waiters) {
            match waiter {
                Waiter::Durable { since, reply } if since <= version => {
                    let _ = reply.send(Err(error.replicate()));
                }
                Waiter::Stamp {
                    channel,
                    since,
                    reply,
                } if since <= version => {
                    if let Some(issuer) = self.issuers.get_mut(&channel) {
                        issuer.pending = issuer.pending.saturating_sub(1);
                    }
                    let _ = reply.send(Err(error.replicate()));
                }
                waiter => kept.push_back(waiter),
            }
        }
        self.waiters = kept;
    }
}

impl Actor for Snapshotter {
    type Context = Context<Self>;

    /// The final save: synchronous, when dirty (it waits for a write still in
    /// flight, then writes the latest state). Whoever still waits is answered.
    fn stopped(&mut self, _: &mut Context<Self>) {
        if self.dirty() {
            let version = self.version;
            let snapshot = self.state.clone();
            let saved = lock(&self.store).save(&snapshot);
            match saved {
                Ok(()) => self.wrote(version, &snapshot),
                Err(error) => self.write_failed(version, &error),
            }
        }
        for waiter in std::mem::take(&mut self.waiters) {
            let error = Snapshotter::stopped_error(&self.location);
            match waiter {
                Waiter::Durable { reply, .. } => {
                    let _ = reply.send(Err(error));
                }
                Waiter::Stamp { reply, .. } => {
                    let _ = reply.send(Err(error));
                }
            }
        }
    }
}

/// A scheduled write under [`FlushPolicy::Interval`].
struct Tick;

impl Message for Tick {
    type Result = ();
}

impl Handler<Tick> for Snapshotter {
    type Result = ();

    fn handle(&mut self, _: Tick, ctx: &mut Context<Self>) {
        self.tick_armed = false;
        self.tick(ctx);
    }
}

impl Handler<Stamp> for Snapshotter {
    type Result = ResponseFuture<Result<u64, StoreError>>;

    fn handle(&mut self, msg: Stamp, ctx: &mut Context<Self>) -> Self::Result {
        let block = self.policy.reserve_block();
        let issuer = self.issuers.entry(msg.channel.clone()).or_default();
        if issuer.pending == 0 && issuer.issued < issuer.durable {
            issuer.issued += 1;
            return Box::pin(ready(Ok(issuer.issued)));
        }
        issuer.pending += 1;
        let needed = issuer.issued + issuer.pending;
        let position = self.state.channels.entry(msg.channel.clone()).or_default();
        if position.published < needed {
            position.published = needed + (block - 1);
            self.version += 1;
        }
        let (reply, answer) = oneshot::channel();
        self.waiters.push_back(Waiter::Stamp {
            channel: msg.channel,
            since: self.version,
            reply,
        });
        self.kick(ctx);
        self.answer(answer)
    }
}

impl Handler<Advance> for Snapshotter {
    type Result = ResponseFuture<Result<(), StoreError>>;

    fn handle(&mut self, msg: Advance, ctx: &mut Context<Self>) -> Self::Result {
        let mut changed = !self.state.channels.contains_key(&msg.channel);
        let position = self.state.channels.entry(msg.channel).or_default();
        let mut stale = false;
        if position.epoch != msg.epoch {
            position.delivered = msg.delivered;
            position.epoch = msg.epoch;
            changed = true;
        } else if msg.delivered > position.delivered {
            position.delivered = msg.delivered;
            changed = true;
        } else if msg.delivered < position.delivered {
            stale = true;
        }
        if stale {
            self.stale("channel");
        }
        if changed {
            self.version += 1;
        }
        self.changed(ctx)
    }
}

impl Handler<AdvanceProducer> for Snapshotter {
    type Result = ResponseFuture<Result<(), StoreError>>;

    fn handle(&mut self, msg: AdvanceProducer, ctx: &mut Context<Self>) -> Self::Result {
        match self.state.producers.get_mut(&msg.producer) {
            Some(mark) if msg.sequence > *mark => {
                *mark = msg.sequence;
                self.version += 1;
            }
            Some(mark) if msg.sequence < *mark => self.stale("producer"),
            Some(_) => {}
            None => {
                self.state.producers.insert(msg.producer, msg.sequence);
                self.version += 1;
            }
        }
        self.changed(ctx)
    }
}

impl Handler<ForgetProducer> for Snapshotter {
    type Result = ResponseFuture<Result<(), StoreError>>;

    fn handle(&mut self, msg: ForgetProducer, ctx: &mut Context<Self>) -> Self::Result {
        if self.state.producers.remove(&msg.producer).is_some() {
            self.version += 1;
        }
        self.changed(ctx)
    }
}

impl Handler<Position> for Snapshotter {
    type Result = MessageResult<Position>;

    fn handle(&mut self, msg: Position, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.state.channels.get(&msg.channel).cloned())
    }
}

impl Handler<ProducerMarks> for Snapshotter {
    type Result = MessageResult<ProducerMarks>;

    fn handle(&mut self, _: ProducerMarks, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.state.producers.clone())
    }
}

impl Handler<Flush> for Snapshotter {
    type Result = ResponseFuture<Result<(), StoreError>>;

    fn handle(&mut self, _: Flush, ctx: &mut Context<Self>) -> Self::Result {
        self.when_durable(ctx)
    }
}

impl Handler<GetSnapshotterStatus> for Snapshotter {
    type Result = MessageResult<GetSnapshotterStatus>;

    fn handle(&mut self, _: GetSnapshotterStatus, _: &mut Context<Self>) -> Self::Result {
        MessageResult(SnapshotterStatus {
            dirty: self.dirty(),
            writing: self.writing.is_some(),
            waiting: self.waiters.len(),
            channels: self.state.channels.len(),
            producers: self.state.producers.len(),
            ..self.status
        })
    }
}
