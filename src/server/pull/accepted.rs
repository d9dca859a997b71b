//! Where a pulled topic may resume after a restart: the highest sequence
//! below which the sink accepted everything forwarded (pure), and the actor
//! that keeps it in the hub's snapshotter.
//!
//! A nacked item (a queue drained at shutdown, a sink that gave up) holds
//! the position back, so a restarted hub pulls it again, with what came
//! after it (at least once; a JetStream sink deduplicates on the id).

use std::collections::{BTreeSet, HashMap};

use actix::{Actor, Addr, Context, Handler, Message};

use crate::ingest::IngestOutcome;
use crate::sequence::{Advance, Snapshotter};

/// Most sequences settled above a held position per topic; past it the
/// position skips the oldest hole (counted), so memory stays bounded.
const MAX_AHEAD: usize = 65_536;

/// The snapshot channel a pulled topic's position is kept under.
pub(super) fn position_key(topic: &str) -> String {
    format!("pull:{topic}")
}

/// One topic: its epoch, everything at or below `floor` accepted, and the
/// sequences above it settled so far.
#[derive(Debug, Default)]
struct TopicAcceptance {
    epoch: String,
    floor: u64,
    above: BTreeSet<u64>,
}

/// Positions of every pulled topic.
#[derive(Debug, Default)]
pub(super) struct Accepted {
    topics: HashMap<String, TopicAcceptance>,
}

impl Accepted {
    /// `sequence` of `epoch` went into the queue; the first of an epoch
    /// starts the topic's position just below it.
    pub(super) fn forwarded(&mut self, topic: &str, epoch: &str, sequence: u64) {
        let state = self.topics.entry(topic.to_owned()).or_default();
        if state.epoch != epoch {
            *state = TopicAcceptance {
                epoch: epoch.to_owned(),
                floor: sequence.saturating_sub(1),
                above: BTreeSet::new(),
            };
        }
    }

    /// The sink accepted `sequence` of `epoch`: answers the topic's new
    /// position when it rose.
    pub(super) fn accepted(&mut self, topic: &str, epoch: &str, sequence: u64) -> Option<u64> {
        let state = self
            .topics
            .get_mut(topic)
            .filter(|state| state.epoch == epoch)?;
        if sequence <= state.floor {
            return None;
        }
        state.above.insert(sequence);
        if state.above.len() > MAX_AHEAD {
            // A hole held too long: give it up rather than grow.
            metrics::counter!("switchboard_pull_position_skips_total").increment(1);
            if let Some(lowest) = state.above.first().copied() {
                state.floor = lowest - 1;
            }
        }
        let before = state.floor;
        while let Some(next) = state.floor.checked_add(1) {
            if !state.above.remove(&next) {
                break;
            }
            state.floor = next;
        }
        (state.floor > before).then_some(state.floor)
    }
}

/// Told by the forwarding task before an item goes into the queue.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(super) struct Forwarded {
    pub topic: String,
    pub epoch: String,
    pub sequence: u64,
}

/// Hears the outcome of every pulled item and stores each topic's position.
pub(super) struct Acceptance {
    accepted: Accepted,
    store: Addr<Snapshotter>,
}

impl Acceptance {
    pub(super) fn new(store: Addr<Snapshotter>) -> Acceptance {
        Acceptance {
            accepted: Accepted::default(),
            store,
        }
    }
}

impl Actor for Acceptance {
    type Context = Context<Self>;
}

impl Handler<Forwarded> for Acceptance {
    type Result = ();

    fn handle(&mut self, msg: Forwarded, _: &mut Context<Self>) {
        self.accepted
            .forwarded(&msg.topic, &msg.epoch, msg.sequence);
    }
}

impl Handler<IngestOutcome> for Acceptance {
    type Result = ();

    fn handle(&mut self, outcome: IngestOutcome, _: &mut Context<Self>) {
        if outcome.result.is_err() {
            return; // held back: pulled again after a restart
        }
        let Some((topic, epoch, sequence)) = parse_id(&outcome.id) else {
            return;
        };
        if let Some(floor) = self.accepted.accepted(topic, epoch, sequence) {
            self.store.do_send(Advance {
                channel: position_key(topic),
                delivered: floor,
                epoch: Some(epoch.to_owned()),
            });
        }
    }
}

/// The id of a pulled item: `topic:epoch:sequence` (topics may hold `:`).
pub(super) fn item_id(topic: &str, epoch: &str, sequence: u64) -> String {
    format!("{topic}:{epoch}:{sequence}")
}

fn parse_id(id: &str) -> Option<(&str, &str, u64)> {
    let (rest, sequence) = id.rsplit_once(':')?;
    let (topic, epoch) = rest.rsplit_once(':')?;
    Some((topic, epoch, sequence.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_position_rises_over_what_is_accepted_without_a_hole() {
        let mut accepted = Accepted::default();
        for sequence in 5..=8 {
            accepted.forwarded("t", "e1", sequence);
        }
        assert_eq!(accepted.accepted("t", "e1", 6), None, "5 is not in yet");
        assert_eq!(accepted.accepted("t", "e1", 5), Some(6));
        assert_eq!(accepted.accepted("t", "e1", 8), None, "7 is missing");
        assert_eq!(accepted.accepted("t", "e1", 7), Some(8));
        assert_eq!(accepted.accepted("t", "e1", 7), None, "once is enough");
    }

    #[test]
    fn a_new_epoch_starts_over_and_the_old_one_is_ignored() {
        let mut accepted = Accepted::default();
        accepted.forwarded("t", "e1", 10);
        accepted.forwarded("t", "e2", 1);
        assert_eq!(accepted.accepted("t", "e1", 10), None);
        assert_eq!(accepted.accepted("t", "e2", 1), Some(1));
        assert_eq!(accepted.accepted("other", "e2", 1), None, "never forwarded");
    }

    #[test]
    fn a_hole_held_too_long_is_skipped_to_stay_bounded() {
        let mut accepted = Accepted::default();
        accepted.forwarded("t", "e", 1);
        // 1 never comes; everything above it does.
        let mut last = None;
        for sequence in 2..=(MAX_AHEAD as u64 + 2) {
            last = accepted.accepted("t", "e", sequence).or(last);
        }
        assert_eq!(last, Some(MAX_AHEAD as u64 + 2));
    }

    #[test]
    fn the_top_sequence_does_not_overflow() {
        let mut accepted = Accepted::default();
        accepted.forwarded("t", "e", u64::MAX);
        assert_eq!(accepted.accepted("t", "e", u64::MAX), Some(u64::MAX));
    }

    #[test]
    fn ids_round_trip_with_colons_in_the_topic() {
        let id = item_id("room:feed:1", "a1b2", 42);
        assert_eq!(parse_id(&id), Some(("room:feed:1", "a1b2", 42)));
        assert_eq!(parse_id("nonsense"), None);
    }
}
