//! The bounded queue of the ingest pipeline as a pure data structure: the
//! overflow policy and the slow/resume hysteresis, with no I/O.

use std::collections::VecDeque;

use crate::config::OnFull;

/// Utilization at which `slow` is signalled.
pub(crate) const SLOW_AT: f64 = 0.8;
/// Utilization at which, after `slow`, the resume is signalled.
pub(crate) const RESUME_AT: f64 = 0.5;

/// An edge of the backpressure signal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Signal {
    /// Utilization reached 80 %.
    Slow(Level),
    /// Utilization fell back to 50 %.
    Resumed(Level),
}

/// The queue's fill level when a signal fired.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Level {
    /// Items queued.
    pub depth: usize,
    /// Capacity.
    pub capacity: usize,
}

impl Level {
    /// depth / capacity.
    pub fn utilization(&self) -> f64 {
        self.depth as f64 / self.capacity.max(1) as f64
    }
}

/// What an offer did.
#[derive(Debug, PartialEq)]
pub(crate) enum Offered<T> {
    /// Queued.
    Queued,
    /// Queued, and this older item was evicted to make room.
    Evicted(T),
    /// Not queued: the queue is full (`drop_newest`, or `block` with no room).
    Refused(T),
}

/// A bounded FIFO with an overflow policy and an edge-triggered slow signal.
#[derive(Debug)]
pub(crate) struct BoundedQueue<T> {
    items: VecDeque<T>,
    capacity: usize,
    policy: OnFull,
    slow: bool,
}

impl<T> BoundedQueue<T> {
    /// An empty queue of `capacity` (at least 1).
    pub(crate) fn new(capacity: usize, policy: OnFull) -> BoundedQueue<T> {
        BoundedQueue {
            items: VecDeque::with_capacity(capacity.clamp(1, 4096)),
            capacity: capacity.max(1),
            policy,
            slow: false,
        }
    }

    /// Offers an item; the signal is `Some` on a slow edge.
    pub(crate) fn offer(&mut self, item: T) -> (Offered<T>, Option<Signal>) {
        let offered = if self.items.len() < self.capacity {
            self.items.push_back(item);
            Offered::Queued
        } else {
            match self.policy {
                OnFull::DropOldest => match self.items.pop_front() {
                    Some(oldest) => {
                        self.items.push_back(item);
                        Offered::Evicted(oldest)
                    }
                    None => Offered::Refused(item),
                },
                OnFull::DropNewest | OnFull::Block => Offered::Refused(item),
            }
        };
        (offered, self.edge())
    }

    /// Puts items back at the front, in order (a failed send being retried).
    /// May exceed the capacity by the number of items returned.
    pub(crate) fn requeue_front(
        &mut self,
        items: impl DoubleEndedIterator<Item = T>,
    ) -> Option<Signal> {
        for item in items.rev() {
            self.items.push_front(item);
        }
        self.edge()
    }

    /// Takes the oldest item; the signal is `Some` on a resume edge.
    pub(crate) fn pop(&mut self) -> (Option<T>, Option<Signal>) {
        let item = self.items.pop_front();
        (item, self.edge())
    }

    /// Items queued now.
    pub(crate) fn depth(&self) -> usize {
        self.items.len()
    }

    /// The current level.
    pub(crate) fn level(&self) -> Level {
        Level {
            depth: self.items.len(),
            capacity: self.capacity,
        }
    }

    /// Whether a slow episode is under way.
    pub(crate) fn is_slow(&self) -> bool {
        self.slow
    }

    /// Empties the queue.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        self.items.drain(..)
    }

    fn edge(&mut self) -> Option<Signal> {
        let level = self.level();
        let utilization = level.utilization();
        if !self.slow && utilization >= SLOW_AT {
            self.slow = true;
            return Some(Signal::Slow(level));
        }
        if self.slow && utilization <= RESUME_AT {
            self.slow = false;
            return Some(Signal::Resumed(level));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(queue: &mut BoundedQueue<u32>, count: u32) -> Vec<Option<Signal>> {
        (0..count).map(|n| queue.offer(n).1).collect()
    }

    #[test]
    fn drop_oldest_evicts_the_head() {
        let mut queue = BoundedQueue::new(3, OnFull::DropOldest);
        fill(&mut queue, 3);
        assert_eq!(queue.offer(9).0, Offered::Evicted(0));
        assert_eq!(queue.drain().collect::<Vec<_>>(), [1, 2, 9]);
    }

    #[test]
    fn drop_newest_and_block_refuse_the_arrival() {
        for policy in [OnFull::DropNewest, OnFull::Block] {
            let mut queue = BoundedQueue::new(2, policy);
            fill(&mut queue, 2);
            assert_eq!(queue.offer(7).0, Offered::Refused(7));
            assert_eq!(queue.depth(), 2);
        }
    }

    #[test]
    fn slow_once_at_80_percent_resume_once_at_50() {
        let mut queue = BoundedQueue::new(10, OnFull::DropOldest);
        let signals = fill(&mut queue, 10);
        let slow: Vec<_> = signals
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_some())
            .collect();
        assert_eq!(slow.len(), 1, "one slow per episode");
        assert_eq!(slow[0].0, 7, "fires when the 8th item makes 80 %");
        assert!(matches!(
            slow[0].1,
            Some(Signal::Slow(Level {
                depth: 8,
                capacity: 10
            }))
        ));
        // Overflowing while slow does not signal again.
        assert_eq!(queue.offer(99).1, None);
        let mut resumed = Vec::new();
        while queue.depth() > 0 {
            if let (_, Some(signal)) = queue.pop() {
                resumed.push(signal);
            }
        }
        assert_eq!(
            resumed,
            [Signal::Resumed(Level {
                depth: 5,
                capacity: 10
            })]
        );
        // A new episode signals again.
        assert!(fill(&mut queue, 8).iter().any(Option::is_some));
    }

    #[test]
    fn hysteresis_does_not_flap_between_the_thresholds() {
        let mut queue = BoundedQueue::new(10, OnFull::DropOldest);
        fill(&mut queue, 8);
        for n in 0..20 {
            assert_eq!(queue.pop().1, None);
            assert_eq!(queue.offer(n).1, None);
        }
    }

    #[test]
    fn requeue_front_keeps_order() {
        let mut queue = BoundedQueue::new(4, OnFull::Block);
        fill(&mut queue, 2);
        queue.requeue_front([7, 8].into_iter());
        assert_eq!(queue.drain().collect::<Vec<_>>(), [7, 8, 0, 1]);
    }
}
