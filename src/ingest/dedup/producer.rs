//! What the duplicate filter keeps per producer: its floor, the window of
//! sequences accepted above it, and the sequences on their way.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use actix::Recipient;

use crate::ingest::outcome::IngestOutcome;

/// Most accepted sequences kept above a producer's floor. Past it the floor
/// jumps to the oldest of them: the holes below are sequences that were
/// never sent, since a sent one is in flight or retried until settled.
pub(crate) const MAX_ACCEPTED_WINDOW: usize = 4096;

/// A resend waiting for its in-flight original's outcome.
pub(super) struct Waiter {
    pub(super) id: String,
    pub(super) origin: Recipient<IngestOutcome>,
}

/// One producer's state.
pub(super) struct ProducerState {
    /// Every sequence at or below it was accepted (or never sent).
    pub(super) floor: u64,
    accepted: BTreeSet<u64>,
    /// Sequences on their way to the sink, with the resends waiting on them.
    pub(super) in_flight: HashMap<u64, Vec<Waiter>>,
    /// When it was last seen, on the filter's logical clock (for the caps).
    pub(super) last_seen: u64,
    /// When it was last seen (for the retention).
    pub(super) seen_at: Instant,
}

impl ProducerState {
    /// A producer known only by its stored `floor`, seen `now`.
    pub(super) fn at_floor(floor: u64, now: Instant) -> ProducerState {
        ProducerState {
            floor,
            accepted: BTreeSet::new(),
            in_flight: HashMap::new(),
            last_seen: 0,
            seen_at: now,
        }
    }

    /// Whether `sequence` was accepted already.
    pub(super) fn is_duplicate(&self, sequence: u64) -> bool {
        sequence <= self.floor || self.accepted.contains(&sequence)
    }

    /// Records an acceptance; answers whether the floor rose.
    pub(super) fn accept(&mut self, sequence: u64) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_window_lets_the_floor_jump_over_sequences_never_sent() {
        let mut state = ProducerState::at_floor(0, Instant::now());
        // Sequence 1 was burned by its publisher; 2.. are accepted.
        for sequence in 2..=(MAX_ACCEPTED_WINDOW as u64 + 2) {
            state.accept(sequence);
        }
        assert!(state.floor >= 2, "the floor moved past the hole");
        assert!(state.accepted.len() <= MAX_ACCEPTED_WINDOW);
        assert!(state.is_duplicate(MAX_ACCEPTED_WINDOW as u64 + 2));
    }
}
