//! The arbiters a switchboard runs its connections on: threads of their
//! own, started with the switchboard and stopped with it. Each connection
//! is placed whole on one of them, in turn.

use std::time::Duration;

use actix::{Arbiter, ArbiterHandle, Recipient};
use futures_util::future::join_all;

use super::link::Shutdown;

/// How long a stopping switchboard waits for its connections to start
/// closing before it stops their arbiters anyway.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// A switchboard's arbiters; each is stopped when this is dropped.
pub(crate) struct ConnectionArbiters {
    /// The arbiters started (stopped on drop).
    owned: Vec<Arbiter>,
    /// Where connections go: the owned arbiters, or the current one when
    /// no thread could be started.
    handles: Vec<ArbiterHandle>,
    next: usize,
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
            next: 0,
        }
    }

    /// The arbiter the next connection goes to: each in turn.
    pub(crate) fn next(&mut self) -> ArbiterHandle {
        let arbiter = self.handles[self.next % self.handles.len()].clone();
        self.next = self.next.wrapping_add(1);
        arbiter
    }

    /// Closes every connection in `shutdowns` (each answers once its close
    /// is under way, at most [`CLOSE_WAIT`] in all), then stops the arbiters.
    pub(crate) async fn close_then_stop(self, shutdowns: Vec<Recipient<Shutdown>>) {
        let closing = join_all(shutdowns.iter().map(|shutdown| shutdown.send(Shutdown)));
        let _ = tokio::time::timeout(CLOSE_WAIT, closing).await;
        drop(self);
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
