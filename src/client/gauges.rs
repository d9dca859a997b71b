//! Live counts of a connection's timers and dial loops (NET-10): each timer
//! holds a guard that counts itself while it exists, so a leaked timer shows.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Counts of live timers of one connection.
#[derive(Debug, Default)]
pub(crate) struct TimerGauges {
    heartbeats: AtomicI64,
    dial_loops: AtomicI64,
}

/// Counts one live timer until dropped.
#[derive(Debug)]
pub(crate) struct TimerGuard {
    gauges: Arc<TimerGauges>,
    heartbeat: bool,
}

impl TimerGauges {
    /// A guard for a heartbeat timer.
    pub(crate) fn heartbeat(self: &Arc<Self>) -> TimerGuard {
        self.heartbeats.fetch_add(1, Ordering::Relaxed);
        TimerGuard {
            gauges: self.clone(),
            heartbeat: true,
        }
    }

    /// A guard for a scheduled or running dial.
    pub(crate) fn dial_loop(self: &Arc<Self>) -> TimerGuard {
        self.dial_loops.fetch_add(1, Ordering::Relaxed);
        TimerGuard {
            gauges: self.clone(),
            heartbeat: false,
        }
    }

    /// Heartbeat timers alive now (1 while connected, 0 otherwise).
    pub(crate) fn heartbeats(&self) -> i64 {
        self.heartbeats.load(Ordering::Relaxed)
    }

    /// Dial loops alive now (0 while connected, at most 1 otherwise).
    pub(crate) fn dial_loops(&self) -> i64 {
        self.dial_loops.load(Ordering::Relaxed)
    }
}

impl Drop for TimerGuard {
    fn drop(&mut self) {
        let counter = if self.heartbeat {
            &self.gauges.heartbeats
        } else {
            &self.gauges.dial_loops
        };
        counter.fetch_sub(1, Ordering::Relaxed);
    }
}
