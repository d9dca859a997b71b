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

use std::future::ready;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use actix::{
    Actor, ActorFutureExt, Addr, AsyncContext, Context, Handler, Message, MessageResult,
    ResponseFuture, WrapFuture,
};

use super::ledger::{Change, Ledger, Reply, Stamped};
use super::messages::{
    Advance, AdvanceProducer, Flush, FlushPolicy, ForgetProducer, GetSnapshotterStatus, Position,
    ProducerMarks, SnapshotterStatus, Stamp, IN_MEMORY_INTERVAL, MIN_INTERVAL,
};
use super::snapshot::Snapshot;
use super::store::{MemoryStore, SnapshotStore, StoreError};
use crate::report::with_sources;

type SharedStore = Arc<Mutex<Box<dyn SnapshotStore>>>;

/// How long after a failed write, with nothing else to trigger one, the
/// every-change policy tries again.
const WRITE_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// The store, even when a panicking save poisoned its lock (the stores
/// replace a snapshot whole, so nothing is half-updated in memory).
fn lock(store: &SharedStore) -> MutexGuard<'_, Box<dyn SnapshotStore>> {
    store
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The snapshot actor. See the [module documentation](crate::sequence).
pub struct Snapshotter {
    store: SharedStore,
    /// The store's file, or `<memory>`, for logs and errors.
    location: PathBuf,
    policy: FlushPolicy,
    ledger: Ledger,
    /// Under [`FlushPolicy::Interval`], whether a tick is scheduled.
    tick_armed: bool,
    /// A retry of a failed write is scheduled (every-change policy).
    retry_armed: bool,
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

    fn new(store: Box<dyn SnapshotStore>, policy: FlushPolicy, loaded: Snapshot) -> Snapshotter {
        let location = store
            .location()
            .map_or_else(|| PathBuf::from("<memory>"), Path::to_path_buf);
        Snapshotter {
            store: Arc::new(Mutex::new(store)),
            location,
            policy,
            ledger: Ledger::new(loaded),
            tick_armed: false,
            retry_armed: false,
            status: SnapshotterStatus::default(),
        }
    }

    fn stopped_error(location: &Path) -> StoreError {
        StoreError::Io {
            path: location.to_path_buf(),
            source: io::Error::other("the snapshotter stopped before the snapshot was durable"),
        }
    }

    /// The answer to a request that waits on `reply`.
    fn answer<T: 'static>(&self, reply: Reply<T>) -> ResponseFuture<Result<T, StoreError>> {
        let location = self.location.clone();
        Box::pin(async move {
            reply
                .await
                .unwrap_or_else(|_| Err(Snapshotter::stopped_error(&location)))
        })
    }

    /// Answers once everything changed so far is durable.
    fn when_durable(&mut self, ctx: &mut Context<Self>) -> ResponseFuture<Result<(), StoreError>> {
        let Some(reply) = self.ledger.when_durable() else {
            return Box::pin(ready(Ok(())));
        };
        self.kick(ctx);
        self.answer(reply)
    }

    /// The answer to a change under the current policy.
    fn changed(
        &mut self,
        change: Change,
        kind: &'static str,
        ctx: &mut Context<Self>,
    ) -> ResponseFuture<Result<(), StoreError>> {
        if change == Change::Stale {
            self.status.stale_updates += 1;
            metrics::counter!("switchboard_snapshot_stale_updates_total", "kind" => kind)
                .increment(1);
        }
        match self.policy {
            FlushPolicy::Every => self.when_durable(ctx),
            FlushPolicy::Interval(_) => {
                self.arm(ctx);
                Box::pin(ready(Ok(())))
            }
        }
    }

    /// Starts a write when the ledger wants one, and arms the tick.
    fn kick(&mut self, ctx: &mut Context<Self>) {
        if self.ledger.wants_write(self.policy == FlushPolicy::Every) {
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
        if self.tick_armed || !self.ledger.dirty() {
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
        if self.ledger.wants_write(true) {
            self.start_write(ctx);
        } else {
            self.arm(ctx);
        }
    }

    /// Saves a copy of the state on a blocking thread.
    fn start_write(&mut self, ctx: &mut Context<Self>) {
        let (version, snapshot) = self.ledger.begin_write();
        let store = self.store.clone();
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
        match outcome {
            Ok(snapshot) => {
                self.wrote(version, &snapshot);
                self.kick(ctx);
            }
            Err(error) => {
                self.write_failed(version, &error);
                // Requests that arrived during the failed write get a write
                // of their own; otherwise the next change or tick retries,
                // and under the every-change policy (no ticks) a pause does.
                if self.ledger.wants_write(false) {
                    self.start_write(ctx);
                } else if self.policy == FlushPolicy::Every && !self.retry_armed {
                    // A detached timer, like the tick's: a pending retry
                    // does not keep a snapshotter nobody holds alive.
                    self.retry_armed = true;
                    let snapshotter = ctx.address().downgrade();
                    actix::spawn(async move {
                        tokio::time::sleep(WRITE_RETRY).await;
                        if let Some(snapshotter) = snapshotter.upgrade() {
                            snapshotter.do_send(Tick);
                        }
                    });
                }
                self.arm(ctx);
            }
        }
    }

    fn wrote(&mut self, version: u64, snapshot: &Snapshot) {
        self.status.writes += 1;
        metrics::counter!("switchboard_snapshot_writes_total").increment(1);
        self.ledger.wrote(version, snapshot);
    }

    fn write_failed(&mut self, version: u64, error: &StoreError) {
        self.status.write_errors += 1;
        metrics::counter!("switchboard_snapshot_write_errors_total").increment(1);
        tracing::error!(
            path = %self.location.display(),
            error = %with_sources(error),
            "snapshot write failed; retrying with the next change"
        );
        self.ledger.write_failed(version, error);
    }
}

impl Actor for Snapshotter {
    type Context = Context<Self>;

    /// The final save: synchronous, when dirty (it waits for a write still in
    /// flight, then writes the latest state). Whoever still waits is answered.
    fn stopped(&mut self, _: &mut Context<Self>) {
        if self.ledger.dirty() {
            let (version, snapshot) = self.ledger.begin_write();
            let saved = lock(&self.store).save(&snapshot);
            match saved {
                Ok(()) => self.wrote(version, &snapshot),
                Err(error) => self.write_failed(version, &error),
            }
        }
        let location = self.location.clone();
        self.ledger
            .fail_all(|| Snapshotter::stopped_error(&location));
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
        self.retry_armed = false;
        self.tick(ctx);
    }
}

impl Handler<Stamp> for Snapshotter {
    type Result = ResponseFuture<Result<u64, StoreError>>;

    fn handle(&mut self, msg: Stamp, ctx: &mut Context<Self>) -> Self::Result {
        match self.ledger.stamp(msg.channel, self.policy.reserve_block()) {
            Stamped::Now(sequence) => Box::pin(ready(Ok(sequence))),
            Stamped::AfterWrite(reply) => {
                self.kick(ctx);
                self.answer(reply)
            }
        }
    }
}

impl Handler<Advance> for Snapshotter {
    type Result = ResponseFuture<Result<(), StoreError>>;

    fn handle(&mut self, msg: Advance, ctx: &mut Context<Self>) -> Self::Result {
        let change = self.ledger.advance(msg.channel, msg.delivered, msg.epoch);
        self.changed(change, "channel", ctx)
    }
}

impl Handler<AdvanceProducer> for Snapshotter {
    type Result = ResponseFuture<Result<(), StoreError>>;

    fn handle(&mut self, msg: AdvanceProducer, ctx: &mut Context<Self>) -> Self::Result {
        let change = self.ledger.advance_producer(msg.producer, msg.sequence);
        self.changed(change, "producer", ctx)
    }
}

impl Handler<ForgetProducer> for Snapshotter {
    type Result = ResponseFuture<Result<(), StoreError>>;

    fn handle(&mut self, msg: ForgetProducer, ctx: &mut Context<Self>) -> Self::Result {
        let change = self.ledger.forget_producer(&msg.producer);
        self.changed(change, "producer", ctx)
    }
}

impl Handler<Position> for Snapshotter {
    type Result = MessageResult<Position>;

    fn handle(&mut self, msg: Position, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.ledger.position(&msg.channel))
    }
}

impl Handler<ProducerMarks> for Snapshotter {
    type Result = MessageResult<ProducerMarks>;

    fn handle(&mut self, _: ProducerMarks, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.ledger.producer_marks())
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
        let (channels, producers) = self.ledger.sizes();
        MessageResult(SnapshotterStatus {
            dirty: self.ledger.dirty(),
            writing: self.ledger.writing(),
            waiting: self.ledger.waiting(),
            channels,
            producers,
            ..self.status
        })
    }
}
