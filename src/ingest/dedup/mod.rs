//! Exactly-once ingest (SEQ-9): the hub recognises a resent data message by
//! its (producer, sequence) and does not hand it to the sink twice.
//!
//! For every producer the hub keeps:
//! - a *floor*: every sequence at or below it was accepted by the sink (or
//!   was never sent: publishers burn a sequence that failed to queue);
//! - the sequences accepted above the floor (a bounded window), so that an
//!   acceptance out of order (a retried message overtaken by a later one)
//!   neither hides the earlier one nor lets it through twice;
//! - the sequences still on their way to the sink.
//!
//! A message at or below the floor, or in the accepted window, is a
//! duplicate and is acked at once without being stored. A resend of a
//! message still in flight (sent again after a reconnect, before the
//! original was accepted) waits and is acked with the original. Only the
//! floor is persisted (through the [`Snapshotter`]), so it never passes a
//! message that was not stored: after a hub crash, messages accepted above
//! the floor may be stored once more (JetStream drops those by their
//! `Nats-Msg-Id`), but none is lost.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use actix::{Addr, Recipient};

use super::outcome::{IngestOutcome, Nack};
use crate::protocol::content::EnvelopeKey;
use crate::sequence::{AdvanceProducer, Snapshotter};
use legacy::migrate;
use producer::{ProducerState, Waiter};

mod forget;
mod legacy;
mod producer;

/// Most producers tracked; past it the least recently seen idle one is
/// forgotten (counted), and a very late resend of its messages could reach
/// the sink again.
pub(crate) const MAX_PRODUCERS: usize = 100_000;

/// Most resends waiting on one in-flight message; more are nacked `busy`.
const MAX_WAITERS: usize = 16;

/// Most producers one principal may have tracked: past it, that
/// principal's least recently seen idle producer is forgotten (counted); a
/// new one is refused only when all of them have messages on their way. So
/// one credential cannot fill the table, nor lock itself out.
pub(crate) const MAX_PRODUCERS_PER_PRINCIPAL: usize = 1000;

/// A producer scoped to its sender's principal: `@principal/producer`
/// (principal names never hold `/`; the `@` tells a scoped name from one an
/// older hub stored unscoped).
pub(crate) fn scoped(principal: &str, producer: &str) -> String {
    format!("@{principal}/{producer}")
}

/// The principal a scoped producer name belongs to (`""` for an unscoped one).
fn principal_of(producer: &str) -> &str {
    producer
        .strip_prefix('@')
        .and_then(|scoped| scoped.split_once('/'))
        .map_or("", |(principal, _)| principal)
}

/// What to do with an arriving message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Not seen before: hand it to the queue.
    New,
    /// Already accepted by the sink: ack it, do not store it again.
    Duplicate,
    /// The original is still on its way: this one is acked with it.
    InFlight,
    /// The original is on its way and too many resends already wait on it:
    /// nack this one (`busy`); the sender resends it later.
    Busy,
    /// A new producer while all of its principal's capped producers have
    /// messages on their way: refused; the sender may try again.
    TooManyProducers,
}

struct Table {
    producers: HashMap<String, ProducerState>,
    /// The producers of each principal (so that its cap looks at its own,
    /// at most [`MAX_PRODUCERS_PER_PRINCIPAL`], not at the whole table).
    per_principal: HashMap<String, HashSet<String>>,
    clock: u64,
    /// When producers past their retention were last looked for.
    swept_at: Instant,
}

impl Table {
    fn forget(&mut self, producer: &str) {
        if self.producers.remove(producer).is_none() {
            return;
        }
        let principal = principal_of(producer);
        if let Some(own) = self.per_principal.get_mut(principal) {
            own.remove(producer);
            if own.is_empty() {
                self.per_principal.remove(principal);
            }
        }
    }
}

/// Counters of the deduplication.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DedupStats {
    /// Messages admitted for the first time.
    pub admitted: u64,
    /// Duplicates acked without storing.
    pub duplicates: u64,
    /// Resends that waited for their in-flight original.
    pub joined_in_flight: u64,
    /// Resends nacked because too many already waited.
    pub busy: u64,
    /// New producers refused at their principal's cap.
    pub too_many_producers: u64,
    /// Producers forgotten at the cap.
    pub evicted: u64,
    /// Producers forgotten after `snapshot.producer_retention` without a
    /// message.
    pub expired: u64,
}

/// The hub-wide duplicate filter. Cheap to share (`Arc`).
pub(crate) struct Dedup {
    table: Mutex<Table>,
    stats: Mutex<DedupStats>,
    snapshotter: Option<Addr<Snapshotter>>,
    max_producers: usize,
    retention: Duration,
}

/// An admitted message's claim on the filter: settled with the message's
/// outcome, or, if dropped unsettled (a queue that went away), settled as
/// abandoned so resends are admitted again instead of waiting forever.
pub struct DedupTicket {
    dedup: Arc<Dedup>,
    key: EnvelopeKey,
    settled: bool,
}

impl DedupTicket {
    /// Reports the message's outcome.
    pub fn settle(mut self, result: &Result<(), Nack>) {
        self.settled = true;
        self.dedup.settle(&self.key, result);
    }

    /// The message's key.
    pub fn key(&self) -> &EnvelopeKey {
        &self.key
    }
}

impl Drop for DedupTicket {
    fn drop(&mut self) {
        if !self.settled {
            let abandoned = Err(Nack {
                reason: "abandoned",
                error: "the message was dropped before reaching the sink".to_owned(),
            });
            self.dedup.settle(&self.key, &abandoned);
        }
    }
}

impl std::fmt::Debug for DedupTicket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DedupTicket")
            .field("key", &self.key)
            .finish()
    }
}

impl Dedup {
    /// A filter starting from stored floors `marks` (at most
    /// [`MAX_PRODUCERS`] are kept), recording new floors in `snapshotter`.
    ///
    /// Floors an older hub stored under bare producer names are moved to
    /// `legacy_principal` (the one principal of a single-credential hub),
    /// so exactly-once holds across the upgrade; without one (several named
    /// tokens) they cannot be attributed and are forgotten, with a warning.
    ///
    /// A producer not seen for `retention` (and with nothing on its way) is
    /// forgotten; `Duration::ZERO` keeps producers until a cap evicts them.
    pub(crate) fn new(
        marks: BTreeMap<String, u64>,
        snapshotter: Option<Addr<Snapshotter>>,
        legacy_principal: Option<&str>,
        retention: Duration,
    ) -> Arc<Dedup> {
        let now = Instant::now();
        let (scoped_marks, legacy): (Vec<_>, Vec<_>) = marks
            .into_iter()
            .partition(|(producer, _)| producer.starts_with('@'));
        migrate(&legacy, snapshotter.as_ref(), legacy_principal);
        let moved = legacy_principal.into_iter().flat_map(|principal| {
            legacy
                .iter()
                .map(move |(producer, floor)| (scoped(principal, producer), *floor))
        });
        let producers: HashMap<String, ProducerState> = scoped_marks
            .into_iter()
            .chain(moved)
            .take(MAX_PRODUCERS)
            .map(|(producer, floor)| (producer, ProducerState::at_floor(floor, now)))
            .collect();
        let mut per_principal: HashMap<String, HashSet<String>> = HashMap::new();
        for producer in producers.keys() {
            per_principal
                .entry(principal_of(producer).to_owned())
                .or_default()
                .insert(producer.clone());
        }
        Arc::new(Dedup {
            table: Mutex::new(Table {
                producers,
                per_principal,
                clock: 0,
                swept_at: now,
            }),
            stats: Mutex::new(DedupStats::default()),
            snapshotter,
            max_producers: MAX_PRODUCERS,
            retention,
        })
    }

    /// Decides an arriving message; `id` and `origin` are where its ack
    /// goes when it has to wait for an in-flight original. A `New` message
    /// comes with its ticket, to be settled with its outcome.
    pub(crate) fn admit(
        self: &Arc<Self>,
        key: &EnvelopeKey,
        id: &str,
        origin: &Recipient<IngestOutcome>,
    ) -> (Admission, Option<DedupTicket>) {
        self.admit_at(key, id, origin, Instant::now())
    }

    /// [`Dedup::admit`] at `now`.
    fn admit_at(
        self: &Arc<Self>,
        key: &EnvelopeKey,
        id: &str,
        origin: &Recipient<IngestOutcome>,
        now: Instant,
    ) -> (Admission, Option<DedupTicket>) {
        let mut table = lock(&self.table);
        self.expire(&mut table, now);
        let seen_at = now;
        table.clock += 1;
        let now = table.clock;
        if !table.producers.contains_key(&key.producer) {
            let principal = principal_of(&key.producer).to_owned();
            let tracked = table.per_principal.get(&principal).map_or(0, HashSet::len);
            if tracked >= MAX_PRODUCERS_PER_PRINCIPAL
                && !self.evict_idle(&mut table, Some(&principal))
            {
                drop(table);
                self.count(Admission::TooManyProducers);
                return (Admission::TooManyProducers, None);
            }
            if table.producers.len() >= self.max_producers {
                self.evict_idle(&mut table, None);
            }
            table
                .per_principal
                .entry(principal)
                .or_default()
                .insert(key.producer.clone());
            table
                .producers
                .insert(key.producer.clone(), ProducerState::at_floor(0, seen_at));
        }
        let Some(state) = table.producers.get_mut(&key.producer) else {
            return (Admission::Busy, None);
        };
        state.last_seen = now;
        state.seen_at = seen_at;
        let admission = if let Some(waiters) = state.in_flight.get_mut(&key.sequence) {
            if waiters.len() < MAX_WAITERS {
                waiters.push(Waiter {
                    id: id.to_owned(),
                    origin: origin.clone(),
                });
                Admission::InFlight
            } else {
                Admission::Busy
            }
        } else if state.is_duplicate(key.sequence) {
            Admission::Duplicate
        } else {
            state.in_flight.insert(key.sequence, Vec::new());
            Admission::New
        };
        drop(table);
        self.count(admission);
        let ticket = (admission == Admission::New).then(|| DedupTicket {
            dedup: self.clone(),
            key: key.clone(),
            settled: false,
        });
        (admission, ticket)
    }

    /// The sink accepted (`Ok`) or the queue gave up on (`Err`) a message:
    /// records it, and answers resends that waited for it.
    fn settle(&self, key: &EnvelopeKey, result: &Result<(), Nack>) {
        let waiters = {
            let mut table = lock(&self.table);
            let Some(state) = table.producers.get_mut(&key.producer) else {
                return;
            };
            let waiters = state.in_flight.remove(&key.sequence).unwrap_or_default();
            if result.is_ok() && state.accept(key.sequence) {
                if let Some(snapshotter) = &self.snapshotter {
                    snapshotter.do_send(AdvanceProducer {
                        producer: key.producer.clone(),
                        sequence: state.floor,
                    });
                }
            }
            waiters
        };
        for waiter in waiters {
            waiter.origin.do_send(IngestOutcome {
                id: waiter.id,
                result: result.clone(),
            });
        }
    }

    /// The producer's floor: every sequence at or below it is stored (0
    /// when unknown).
    #[cfg(test)]
    pub(crate) fn mark(&self, producer: &str) -> u64 {
        lock(&self.table)
            .producers
            .get(producer)
            .map_or(0, |state| state.floor)
    }

    /// Counters so far.
    pub(crate) fn stats(&self) -> DedupStats {
        *lock(&self.stats)
    }

    fn count(&self, admission: Admission) {
        let mut stats = lock(&self.stats);
        if admission == Admission::TooManyProducers {
            stats.too_many_producers += 1;
            metrics::counter!("switchboard_ingest_refused_total", "reason" => "too_many_producers")
                .increment(1);
            return;
        }
        let label = match admission {
            Admission::New => {
                stats.admitted += 1;
                return;
            }
            Admission::Duplicate => {
                stats.duplicates += 1;
                "duplicate"
            }
            Admission::InFlight => {
                stats.joined_in_flight += 1;
                "in_flight"
            }
            Admission::Busy => {
                stats.busy += 1;
                "busy"
            }
            Admission::TooManyProducers => return,
        };
        metrics::counter!("switchboard_ingest_duplicates_total", "kind" => label).increment(1);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests;
