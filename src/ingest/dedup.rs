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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use actix::{Addr, Recipient};

use super::outcome::{IngestOutcome, Nack};
use crate::protocol::content::EnvelopeKey;
use crate::sequence::{AdvanceProducer, ForgetProducer, Snapshotter};

/// Most producers tracked; past it the least recently seen idle one is
/// forgotten (counted), and a very late resend of its messages could reach
/// the sink again.
pub(crate) const MAX_PRODUCERS: usize = 100_000;

/// Most accepted sequences kept above a producer's floor. Past it the floor
/// jumps to the oldest of them: the holes below are sequences that were
/// never sent, since a sent one is in flight or retried until settled.
pub(crate) const MAX_ACCEPTED_WINDOW: usize = 4096;

/// Most resends waiting on one in-flight message; more are nacked `busy`.
const MAX_WAITERS: usize = 16;

/// Most producers one principal may have tracked; a new one past it is
/// refused (counted), so one credential cannot fill the table.
pub(crate) const MAX_PRODUCERS_PER_PRINCIPAL: usize = 1000;

/// Furthest a known producer's sequence may jump above its floor; further
/// is refused, and the floor never moves for it.
pub(crate) const MAX_SEQUENCE_JUMP: u64 = 1 << 20;

/// The principal a scoped producer name (`principal/name`) belongs to.
fn principal_of(producer: &str) -> &str {
    producer
        .split_once('/')
        .map_or(producer, |(principal, _)| principal)
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
    /// A new producer past its principal's cap: refused.
    TooManyProducers,
    /// A sequence too far above the producer's floor: refused.
    OutOfWindow,
}

struct Waiter {
    id: String,
    origin: Recipient<IngestOutcome>,
}

#[derive(Default)]
struct ProducerState {
    floor: u64,
    accepted: BTreeSet<u64>,
    in_flight: HashMap<u64, Vec<Waiter>>,
    last_seen: u64,
}

impl ProducerState {
    fn is_duplicate(&self, sequence: u64) -> bool {
        sequence <= self.floor || self.accepted.contains(&sequence)
    }

    /// Records an acceptance; answers whether the floor rose.
    fn accept(&mut self, sequence: u64) -> bool {
        if self.is_duplicate(sequence) {
            return false;
        }
        self.accepted.insert(sequence);
        let before = self.floor;
        // The floor never passes a message still in flight.
        let lowest_in_flight = self.in_flight.keys().min().copied().unwrap_or(u64::MAX);
        while let Some(&next) = self.accepted.first() {
            let contiguous = next == self.floor.saturating_add(1);
            let forced = self.accepted.len() > MAX_ACCEPTED_WINDOW && next < lowest_in_flight;
            if !(contiguous || forced) {
                break;
            }
            if forced && !contiguous {
                metrics::counter!("switchboard_ingest_dedup_window_full_total").increment(1);
            }
            self.floor = next;
            self.accepted.pop_first();
        }
        self.floor != before
    }
}

#[derive(Default)]
struct Table {
    producers: HashMap<String, ProducerState>,
    /// Producers tracked per principal.
    per_principal: HashMap<String, usize>,
    clock: u64,
}

impl Table {
    fn forget(&mut self, producer: &str) {
        if self.producers.remove(producer).is_none() {
            return;
        }
        let principal = principal_of(producer);
        if let Some(count) = self.per_principal.get_mut(principal) {
            *count -= 1;
            if *count == 0 {
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
    /// Messages refused for a sequence too far above the floor.
    pub out_of_window: u64,
    /// Producers forgotten at the cap.
    pub evicted: u64,
}

/// The hub-wide duplicate filter. Cheap to share (`Arc`).
pub(crate) struct Dedup {
    table: Mutex<Table>,
    stats: Mutex<DedupStats>,
    snapshotter: Option<Addr<Snapshotter>>,
    max_producers: usize,
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
    pub(crate) fn new(
        marks: BTreeMap<String, u64>,
        snapshotter: Option<Addr<Snapshotter>>,
    ) -> Arc<Dedup> {
        let producers: HashMap<String, ProducerState> = marks
            .into_iter()
            .take(MAX_PRODUCERS)
            .map(|(producer, floor)| {
                let state = ProducerState {
                    floor,
                    ..ProducerState::default()
                };
                (producer, state)
            })
            .collect();
        let mut per_principal = HashMap::new();
        for producer in producers.keys() {
            *per_principal
                .entry(principal_of(producer).to_owned())
                .or_insert(0) += 1;
        }
        Arc::new(Dedup {
            table: Mutex::new(Table {
                producers,
                per_principal,
                clock: 0,
            }),
            stats: Mutex::new(DedupStats::default()),
            snapshotter,
            max_producers: MAX_PRODUCERS,
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
        let mut table = lock(&self.table);
        table.clock += 1;
        let now = table.clock;
        if !table.producers.contains_key(&key.producer) {
            let principal = principal_of(&key.producer);
            if table.per_principal.get(principal).copied().unwrap_or(0)
                >= MAX_PRODUCERS_PER_PRINCIPAL
            {
                drop(table);
                self.count(Admission::TooManyProducers);
                return (Admission::TooManyProducers, None);
            }
            if table.producers.len() >= self.max_producers {
                self.evict_one(&mut table);
            }
            *table.per_principal.entry(principal.to_owned()).or_insert(0) += 1;
            // The first message the hub sees of a producer is its lowest
            // unacked one: everything below it was stored before.
            let state = ProducerState {
                floor: key.sequence.saturating_sub(1),
                ..ProducerState::default()
            };
            table.producers.insert(key.producer.clone(), state);
        }
        let Some(state) = table.producers.get_mut(&key.producer) else {
            return (Admission::Busy, None);
        };
        state.last_seen = now;
        let admission = if key.sequence > state.floor.saturating_add(MAX_SEQUENCE_JUMP) {
            Admission::OutOfWindow
        } else if let Some(waiters) = state.in_flight.get_mut(&key.sequence) {
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
        let refused = match admission {
            Admission::TooManyProducers => {
                stats.too_many_producers += 1;
                Some("too_many_producers")
            }
            Admission::OutOfWindow => {
                stats.out_of_window += 1;
                Some("sequence_out_of_window")
            }
            _ => None,
        };
        if let Some(reason) = refused {
            metrics::counter!("switchboard_ingest_refused_total", "reason" => reason).increment(1);
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
            Admission::TooManyProducers | Admission::OutOfWindow => return,
        };
        metrics::counter!("switchboard_ingest_duplicates_total", "kind" => label).increment(1);
    }

    fn evict_one(&self, table: &mut Table) {
        let oldest = table
            .producers
            .iter()
            .filter(|(_, state)| state.in_flight.is_empty())
            .min_by_key(|(_, state)| state.last_seen)
            .map(|(producer, _)| producer.clone());
        if let Some(producer) = oldest {
            table.forget(&producer);
            lock(&self.stats).evicted += 1;
            metrics::counter!("switchboard_ingest_dedup_evicted_total").increment(1);
            tracing::warn!(%producer, "dedup forgot a producer: MAX_PRODUCERS reached");
            if let Some(snapshotter) = &self.snapshotter {
                snapshotter.do_send(ForgetProducer { producer });
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::content::ContentEnvelope;
    use actix::{Actor, Context, Handler};
    use serde_json::json;
    use tokio::sync::mpsc;

    struct Origin(mpsc::UnboundedSender<IngestOutcome>);

    impl Actor for Origin {
        type Context = Context<Self>;
    }

    impl Handler<IngestOutcome> for Origin {
        type Result = ();
        fn handle(&mut self, outcome: IngestOutcome, _: &mut Context<Self>) {
            let _ = self.0.send(outcome);
        }
    }

    fn admission(
        dedup: &Arc<Dedup>,
        sequence: u64,
        origin: &Recipient<IngestOutcome>,
    ) -> Admission {
        let id = format!("p:{sequence}");
        dedup.admit(&key(sequence), &id, origin).0
    }

    fn key(sequence: u64) -> EnvelopeKey {
        EnvelopeKey {
            producer: "p".into(),
            sequence,
        }
    }

    #[actix_rt::test]
    async fn seq_9_resends_are_recognised_before_and_after_acceptance() {
        let (sender, mut outcomes) = mpsc::unbounded_channel();
        let origin = Origin(sender).start().recipient();
        let dedup = Dedup::new(BTreeMap::from([("p".to_owned(), 3)]), None);
        assert_eq!(admission(&dedup, 2, &origin), Admission::Duplicate);
        let (admitted, ticket) = dedup.admit(&key(4), "p:4", &origin);
        assert_eq!(admitted, Admission::New);
        // Resent after a reconnect while the original is in flight.
        assert_eq!(admission(&dedup, 4, &origin), Admission::InFlight);
        ticket.expect("a ticket").settle(&Ok(()));
        let acked = outcomes.recv().await.expect("the resend is acked");
        assert_eq!(acked.id, "p:4");
        assert_eq!(acked.result, Ok(()));
        assert_eq!(dedup.mark("p"), 4);
        assert_eq!(admission(&dedup, 4, &origin), Admission::Duplicate);
        let stats = dedup.stats();
        assert_eq!(
            (stats.admitted, stats.duplicates, stats.joined_in_flight),
            (1, 2, 1)
        );
    }

    #[actix_rt::test]
    async fn a_failed_message_can_be_sent_again() {
        let (sender, _outcomes) = mpsc::unbounded_channel();
        let origin = Origin(sender).start().recipient();
        let dedup = Dedup::new(BTreeMap::new(), None);
        let (_, ticket) = dedup.admit(&key(1), "p:1", &origin);
        let nack = Nack {
            reason: "queue_full",
            error: "full".into(),
        };
        ticket.expect("a ticket").settle(&Err(nack));
        assert_eq!(dedup.mark("p"), 0);
        assert_eq!(admission(&dedup, 1, &origin), Admission::New);
    }

    #[actix_rt::test]
    async fn an_acceptance_out_of_order_neither_hides_nor_doubles_the_earlier_one() {
        let (sender, _outcomes) = mpsc::unbounded_channel();
        let origin = Origin(sender).start().recipient();
        let dedup = Dedup::new(BTreeMap::from([("p".to_owned(), 4)]), None);
        let (_, five) = dedup.admit(&key(5), "p:5", &origin);
        let (_, six) = dedup.admit(&key(6), "p:6", &origin);
        // 5 fails and is retried; 6 is accepted first.
        six.expect("ticket").settle(&Ok(()));
        assert_eq!(dedup.mark("p"), 4, "the floor waits for 5");
        assert_eq!(admission(&dedup, 6, &origin), Admission::Duplicate);
        assert_eq!(admission(&dedup, 5, &origin), Admission::InFlight);
        let nack = Nack {
            reason: "shutdown",
            error: "draining".into(),
        };
        five.expect("ticket").settle(&Err(nack));
        // Given up on, 5 is admitted again when resent: not lost.
        let (again, five) = dedup.admit(&key(5), "p:5", &origin);
        assert_eq!(again, Admission::New);
        five.expect("ticket").settle(&Ok(()));
        assert_eq!(dedup.mark("p"), 6);
    }

    #[actix_rt::test]
    async fn a_dropped_ticket_settles_as_abandoned() {
        let (sender, mut outcomes) = mpsc::unbounded_channel();
        let origin = Origin(sender).start().recipient();
        let dedup = Dedup::new(BTreeMap::new(), None);
        let (_, ticket) = dedup.admit(&key(1), "p:1", &origin);
        assert_eq!(admission(&dedup, 1, &origin), Admission::InFlight);
        drop(ticket);
        let outcome = outcomes
            .recv()
            .await
            .expect("the waiting resend is answered");
        assert!(matches!(
            outcome.result,
            Err(Nack {
                reason: "abandoned",
                ..
            })
        ));
        assert_eq!(admission(&dedup, 1, &origin), Admission::New);
    }

    #[actix_rt::test]
    async fn a_principal_has_a_producer_cap_and_a_jump_past_the_window_is_refused() {
        let (sender, _outcomes) = mpsc::unbounded_channel();
        let origin = Origin(sender).start().recipient();
        let dedup = Dedup::new(BTreeMap::new(), None);
        for n in 0..MAX_PRODUCERS_PER_PRINCIPAL {
            let key = EnvelopeKey {
                producer: format!("alice/p{n}"),
                sequence: 1,
            };
            assert_eq!(dedup.admit(&key, "m", &origin).0, Admission::New);
        }
        let one_more = EnvelopeKey {
            producer: "alice/extra".to_owned(),
            sequence: 1,
        };
        assert_eq!(
            dedup.admit(&one_more, "m", &origin).0,
            Admission::TooManyProducers
        );
        let other = EnvelopeKey {
            producer: "bob/extra".to_owned(),
            sequence: 1,
        };
        assert_eq!(
            dedup.admit(&other, "m", &origin).0,
            Admission::New,
            "bob's own cap"
        );
        let jump = EnvelopeKey {
            producer: "bob/extra".to_owned(),
            sequence: 2 + MAX_SEQUENCE_JUMP,
        };
        assert_eq!(dedup.admit(&jump, "m", &origin).0, Admission::OutOfWindow);
        assert_eq!(dedup.stats().too_many_producers, 1);
        assert_eq!(dedup.stats().out_of_window, 1);
    }

    #[actix_rt::test]
    async fn a_producer_first_seen_mid_stream_starts_from_there() {
        let (sender, _outcomes) = mpsc::unbounded_channel();
        let origin = Origin(sender).start().recipient();
        let dedup = Dedup::new(BTreeMap::new(), None);
        let late = EnvelopeKey {
            producer: "anonymous/p".to_owned(),
            sequence: 5_000_000,
        };
        let (admission, ticket) = dedup.admit(&late, "m", &origin);
        assert_eq!(
            admission,
            Admission::New,
            "a hub that lost its marks takes it"
        );
        ticket.expect("ticket").settle(&Ok(()));
        assert_eq!(dedup.mark("anonymous/p"), 5_000_000);
    }

    #[test]
    fn a_full_window_lets_the_floor_jump_over_sequences_never_sent() {
        let mut state = ProducerState::default();
        // Sequence 1 was burned by its publisher; 2.. are accepted.
        for sequence in 2..=(MAX_ACCEPTED_WINDOW as u64 + 2) {
            state.accept(sequence);
        }
        assert!(state.floor >= 2, "the floor moved past the hole");
        assert!(state.accepted.len() <= MAX_ACCEPTED_WINDOW);
        assert!(state.is_duplicate(MAX_ACCEPTED_WINDOW as u64 + 2));
    }

    #[test]
    fn only_content_envelopes_have_a_key() {
        let envelope = ContentEnvelope::stamped("c", "a", 9, "probe", json!({})).to_value();
        assert_eq!(
            EnvelopeKey::of(&envelope),
            Some(EnvelopeKey {
                producer: "probe".into(),
                sequence: 9
            })
        );
        assert_eq!(
            EnvelopeKey::of(&json!({"producer": "p", "sequence": 1})),
            None
        );
        assert_eq!(EnvelopeKey::of(&json!({"n": 1})), None);
    }
}
