//! The queue's figures: a [`QueueStatus`] snapshot, and the [`QueueGauge`]
//! the queue keeps current so that sockets answer `status` at once, without
//! a message to the queue (and a future to await it) per request.

use std::sync::atomic::{AtomicUsize, Ordering};

/// A snapshot of the queue.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct QueueStatus {
    /// Items queued.
    pub queue_depth: usize,
    /// Capacity.
    pub queue_capacity: usize,
    /// depth / capacity.
    pub utilization: f64,
    /// Items handed to the sink, not yet accepted.
    pub in_flight: usize,
}

impl QueueStatus {
    /// The figures of a queue of `capacity` holding `depth` items.
    pub(crate) fn of(depth: usize, capacity: usize, in_flight: usize) -> QueueStatus {
        QueueStatus {
            queue_depth: depth,
            queue_capacity: capacity,
            utilization: depth as f64 / capacity.max(1) as f64,
            in_flight,
        }
    }
}

/// The queue's depth and in-flight count as of its last change; written by
/// the queue actor only, read by anyone.
#[derive(Debug)]
pub(crate) struct QueueGauge {
    capacity: usize,
    depth: AtomicUsize,
    in_flight: AtomicUsize,
}

impl QueueGauge {
    /// An empty queue of `capacity`.
    pub(crate) fn new(capacity: usize) -> QueueGauge {
        QueueGauge {
            capacity,
            depth: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }

    /// Records the queue's current figures.
    pub(crate) fn set(&self, depth: usize, in_flight: usize) {
        self.depth.store(depth, Ordering::Relaxed);
        self.in_flight.store(in_flight, Ordering::Relaxed);
    }

    /// The figures last recorded.
    pub(crate) fn read(&self) -> QueueStatus {
        QueueStatus::of(
            self.depth.load(Ordering::Relaxed),
            self.capacity,
            self.in_flight.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_was_set() {
        let gauge = QueueGauge::new(10);
        assert_eq!(gauge.read(), QueueStatus::of(0, 10, 0));
        gauge.set(8, 3);
        let status = gauge.read();
        assert_eq!((status.queue_depth, status.in_flight), (8, 3));
        assert!((status.utilization - 0.8).abs() < 1e-9);
    }
}
