//! A dial budget shared by every connection of a switchboard (NET-2): when
//! many connections lose their server at once, their redials are paced so
//! no instant holds more than one, instead of all dialling in one tick.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Paces dials to at most `per_second`, spread evenly.
#[derive(Clone, Debug)]
pub(crate) struct DialBudget {
    interval: Duration,
    next_free: Arc<Mutex<Option<Instant>>>,
}

impl DialBudget {
    /// A budget of `per_second` dials (at least 1).
    pub(crate) fn new(per_second: u32) -> DialBudget {
        DialBudget {
            interval: Duration::from_secs(1) / per_second.max(1),
            next_free: Arc::new(Mutex::new(None)),
        }
    }

    /// Books the first free slot at or after `earliest` and returns it.
    pub(crate) fn reserve(&self, earliest: Instant) -> Instant {
        let mut next_free = self
            .next_free
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let slot = next_free.map_or(earliest, |free| free.max(earliest));
        *next_free = Some(slot + self.interval);
        slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simultaneous_requests_are_spread_by_the_interval() {
        let budget = DialBudget::new(100);
        let now = Instant::now();
        let slots: Vec<_> = (0..5).map(|_| budget.reserve(now)).collect();
        for (n, slot) in slots.iter().enumerate() {
            assert_eq!(*slot, now + Duration::from_millis(10) * n as u32);
        }
    }

    #[test]
    fn a_later_request_is_not_pulled_earlier() {
        let budget = DialBudget::new(10);
        let now = Instant::now();
        budget.reserve(now);
        let later = now + Duration::from_secs(5);
        assert_eq!(budget.reserve(later), later);
    }
}
