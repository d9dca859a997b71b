//! The queue's counters, mirrored to the `metrics` facade.

use std::sync::atomic::{AtomicU64, Ordering};

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
    pub(super) fn bump(counter: &AtomicU64, name: &'static str, reason: &'static str) {
        Self::add(counter, name, reason, 1);
    }

    /// Adds `count` at once (a batch's items).
    pub(super) fn add(counter: &AtomicU64, name: &'static str, reason: &'static str, count: u64) {
        if count == 0 {
            return;
        }
        counter.fetch_add(count, Ordering::Relaxed);
        metrics::counter!(name, "reason" => reason).increment(count);
    }

    /// Total items dropped by the overflow policy.
    pub fn dropped(&self) -> u64 {
        self.dropped_oldest.load(Ordering::Relaxed) + self.dropped_newest.load(Ordering::Relaxed)
    }
}
