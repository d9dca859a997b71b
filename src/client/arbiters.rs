//! The arbiters a switchboard runs its connections on: threads of their
//! own, started with the switchboard. Each connection is placed whole on
//! one of them, in turn. They stop once nothing can reach a connection any
//! more: the switchboard stopped and the last handle of its connections
//! dropped (every handle holds them).

use std::sync::atomic::{AtomicUsize, Ordering};

use actix::{Arbiter, ArbiterHandle};

/// A switchboard's arbiters; each is stopped when this is dropped.
pub(crate) struct ConnectionArbiters {
    /// The arbiters started (stopped on drop).
    owned: Vec<Arbiter>,
    /// Where connections go: the owned arbiters, or the current one when
    /// no thread could be started.
    handles: Vec<ArbiterHandle>,
    next: AtomicUsize,
}

impl ConnectionArbiters {
    /// Starts `count` arbiters (at least one). Call inside a running actix
    /// system. Should the system refuse a thread, connections go to the
    /// arbiters that did start, or to the current one.
    pub(crate) fn start(count: usize) -> ConnectionArbiters {
        let mut owned = Vec::with_capacity(count.max(1));
        for _ in 0..count.max(1) {
            match Arbiter::try_new() {
                Ok(arbiter) => owned.push(arbiter),
                Err(error) => {
                    tracing::error!(%error, started = owned.len(), "switchboard: no more arbiters");
                    break;
                }
            }
        }
        let mut handles: Vec<_> = owned.iter().map(Arbiter::handle).collect();
        if handles.is_empty() {
            handles.push(Arbiter::current());
        }
        ConnectionArbiters {
            owned,
            handles,
            next: AtomicUsize::new(0),
        }
    }

    /// The arbiter the next connection goes to: each in turn.
    pub(crate) fn next(&self) -> ArbiterHandle {
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        self.handles[turn % self.handles.len()].clone()
    }
}

impl Drop for ConnectionArbiters {
    fn drop(&mut self) {
        for arbiter in &self.owned {
            // Already stopped (its system stopped first): nothing to do.
            let _ = arbiter.stop();
        }
    }
}
