//! The arbiters a switchboard runs its connections on: the one it was
//! started on, and threads of its own started with it. Each connection is
//! placed whole on one of them, in turn, the first on the switchboard's
//! own (an application that opens one connection keeps it on its thread:
//! no hop between the caller and the connection). The started ones stop
//! once nothing can reach a connection any more: the switchboard stopped
//! and the last handle of its connections dropped (every handle holds
//! them).

use std::sync::atomic::{AtomicUsize, Ordering};

use actix::{Arbiter, ArbiterHandle};

/// A switchboard's arbiters; each is stopped when this is dropped.
pub(crate) struct ConnectionArbiters {
    /// The arbiters started (stopped on drop).
    owned: Vec<Arbiter>,
    /// Where connections go: the current arbiter, then the owned ones.
    handles: Vec<ArbiterHandle>,
    next: AtomicUsize,
}

impl ConnectionArbiters {
    /// `count` arbiters (at least one): the current one and `count - 1`
    /// started now. Call inside a running actix system. Should the system
    /// refuse a thread, connections go to the arbiters there are.
    pub(crate) fn start(count: usize) -> ConnectionArbiters {
        let extra = count.max(1) - 1;
        let mut owned = Vec::with_capacity(extra);
        for _ in 0..extra {
            match Arbiter::try_new() {
                Ok(arbiter) => owned.push(arbiter),
                Err(error) => {
                    tracing::error!(%error, started = owned.len(), "switchboard: no more arbiters");
                    break;
                }
            }
        }
        let handles = std::iter::once(Arbiter::current())
            .chain(owned.iter().map(Arbiter::handle))
            .collect();
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
