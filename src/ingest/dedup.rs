//! Exactly-once ingest (SEQ-9): the hub recognises a resent data message by
//! its (producer, sequence) and does not hand it to the sink twice.
//!
//! For every producer the hub keeps the highest sequence the sink accepted
//! (its high-water mark, persisted through the [`Snapshotter`]) and the
//! sequences still on their way to the sink. A message at or below the mark
//! is a duplicate and is acked at once; a resend of a message still in
//! flight (sent again after a reconnect, before the original was accepted)
//! waits and is acked together with the original. This relies on the sink
//! accepting each producer's messages in order, which the ingest queue
//! guarantees under `backpressure.on_full = "block"`; a drop policy may skip
//! a message and let a later one raise the mark past it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use actix::{Addr, Recipient};

use super::ingest_queue::{IngestOutcome, Nack};
use crate::protocol::content::ContentEnvelope;
use crate::sequence::{AdvanceProducer, Snapshotter};

/// Most producers tracked; past it the least recently seen is forgotten
/// (counted), and a late resend of its messages could reach the sink again.
pub const MAX_PRODUCERS: usize = 100_000;

/// Most resends waiting on one in-flight message.
const MAX_WAITERS: usize = 16;

/// Identifies one sequenced data message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DedupKey {
    /// The producer that stamped it.
    pub producer: String,
    /// Its sequence.
    pub sequence: u64,
}

impl DedupKey {
    /// The key of a data payload that is a content envelope, if it is one.
    pub fn of(payload: &serde_json::Value) -> Option<DedupKey> {
        let producer = payload.get("producer")?.as_str()?;
        let sequence = payload.get("sequence")?.as_u64()?;
        // Cheap fields first; the full parse confirms the shape.
        ContentEnvelope::from_value(payload).ok()?;
        Some(DedupKey {
            producer: producer.to_owned(),
            sequence,
        })
    }
}

/// What to do with an arriving message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Not seen before: hand it to the queue.
    New,
    /// Already accepted by the sink: ack it, do not store it again.
    Duplicate,
    /// The original is still on its way: this one is acked with it.
    InFlight,
}

struct Waiter {
    id: String,
    origin: Recipient<IngestOutcome>,
}

#[derive(Default)]
struct ProducerState {
    accepted: u64,
    in_flight: HashMap<u64, Vec<Waiter>>,
    last_seen: u64,
}

#[derive(Default)]
struct Table {
    producers: HashMap<String, ProducerState>,
    clock: u64,
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
    /// Producers forgotten at the cap.
    pub evicted: u64,
}

/// The hub-wide duplicate filter. Cheap to share (`Arc`).
pub struct Dedup {
    table: Mutex<Table>,
    stats: Mutex<DedupStats>,
    snapshotter: Option<Addr<Snapshotter>>,
    max_producers: usize,
}

impl Dedup {
    /// A filter starting from stored high-water `marks`, recording new ones
    /// in `snapshotter`.
    pub fn new(marks: BTreeMap<String, u64>, snapshotter: Option<Addr<Snapshotter>>) -> Arc<Dedup> {
        let producers = marks
            .into_iter()
            .map(|(producer, accepted)| {
                let state = ProducerState {
                    accepted,
                    ..ProducerState::default()
                };
                (producer, state)
            })
            .collect();
        Arc::new(Dedup {
            table: Mutex::new(Table {
                producers,
                clock: 0,
            }),
            stats: Mutex::new(DedupStats::default()),
            snapshotter,
            max_producers: MAX_PRODUCERS,
        })
    }

    /// Decides an arriving message; `id` and `origin` are where its ack
    /// goes when it has to wait for an in-flight original.
    pub fn admit(&self, key: &DedupKey, id: &str, origin: &Recipient<IngestOutcome>) -> Admission {
        let mut table = lock(&self.table);
        table.clock += 1;
        let now = table.clock;
        if !table.producers.contains_key(&key.producer)
            && table.producers.len() >= self.max_producers
        {
            self.evict_one(&mut table);
        }
        let state = table.producers.entry(key.producer.clone()).or_default();
        state.last_seen = now;
        let admission = if let Some(waiters) = state.in_flight.get_mut(&key.sequence) {
            if waiters.len() < MAX_WAITERS {
                waiters.push(Waiter {
                    id: id.to_owned(),
                    origin: origin.clone(),
                });
            }
            Admission::InFlight
        } else if key.sequence <= state.accepted {
            Admission::Duplicate
        } else {
            state.in_flight.insert(key.sequence, Vec::new());
            Admission::New
        };
        drop(table);
        self.count(admission);
        admission
    }

    /// The sink accepted (`Ok`) or the queue gave up on (`Err`) a message:
    /// raises the mark on success, and answers resends that waited for it.
    pub fn settle(&self, key: &DedupKey, result: &Result<(), Nack>) {
        let waiters = {
            let mut table = lock(&self.table);
            let Some(state) = table.producers.get_mut(&key.producer) else {
                return;
            };
            let waiters = state.in_flight.remove(&key.sequence).unwrap_or_default();
            if result.is_ok() && key.sequence > state.accepted {
                state.accepted = key.sequence;
                if let Some(snapshotter) = &self.snapshotter {
                    snapshotter.do_send(AdvanceProducer {
                        producer: key.producer.clone(),
                        sequence: key.sequence,
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

    /// The highest sequence accepted for `producer` (0 when unknown).
    pub fn mark(&self, producer: &str) -> u64 {
        lock(&self.table)
            .producers
            .get(producer)
            .map_or(0, |state| state.accepted)
    }

    /// Counters so far.
    pub fn stats(&self) -> DedupStats {
        *lock(&self.stats)
    }

    fn count(&self, admission: Admission) {
        let mut stats = lock(&self.stats);
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
            table.producers.remove(&producer);
            lock(&self.stats).evicted += 1;
            metrics::counter!("switchboard_ingest_dedup_evicted_total").increment(1);
            tracing::warn!(%producer, "dedup forgot a producer: MAX_PRODUCERS reached");
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

    fn key(sequence: u64) -> DedupKey {
        DedupKey {
            producer: "p".into(),
            sequence,
        }
    }

    #[actix_rt::test]
    async fn seq_9_resends_are_recognised_before_and_after_acceptance() {
        let (sender, mut outcomes) = mpsc::unbounded_channel();
        let origin = Origin(sender).start().recipient();
        let dedup = Dedup::new(BTreeMap::from([("p".to_owned(), 3)]), None);
        assert_eq!(dedup.admit(&key(2), "p:2", &origin), Admission::Duplicate);
        assert_eq!(dedup.admit(&key(4), "p:4", &origin), Admission::New);
        // Resent after a reconnect while the original is in flight.
        assert_eq!(dedup.admit(&key(4), "p:4", &origin), Admission::InFlight);
        dedup.settle(&key(4), &Ok(()));
        let acked = outcomes.recv().await.expect("the resend is acked");
        assert_eq!(acked.id, "p:4");
        assert_eq!(acked.result, Ok(()));
        assert_eq!(dedup.mark("p"), 4);
        assert_eq!(dedup.admit(&key(4), "p:4", &origin), Admission::Duplicate);
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
        assert_eq!(dedup.admit(&key(1), "p:1", &origin), Admission::New);
        let nack = Nack {
            reason: "queue_full",
            error: "full".into(),
        };
        dedup.settle(&key(1), &Err(nack));
        assert_eq!(dedup.mark("p"), 0);
        assert_eq!(dedup.admit(&key(1), "p:1", &origin), Admission::New);
    }

    #[test]
    fn only_content_envelopes_have_a_key() {
        let envelope = ContentEnvelope::stamped("c", "a", 9, "probe", json!({})).to_value();
        assert_eq!(
            DedupKey::of(&envelope),
            Some(DedupKey {
                producer: "probe".into(),
                sequence: 9
            })
        );
        assert_eq!(DedupKey::of(&json!({"producer": "p", "sequence": 1})), None);
        assert_eq!(DedupKey::of(&json!({"n": 1})), None);
    }
}
