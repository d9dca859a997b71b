//! Where a connection is in its life. Each state carries what only it has:
//! the socket exists only while `Linked`, a dial only while `Dialing`.

use std::time::Instant;

use actix::SpawnHandle;

use crate::transport::outbox::{Closer, Outbox};

/// The state of one connection's link.
pub(super) enum LinkState {
    /// Not started, or just dropped: the next step is scheduling a dial.
    Idle,
    /// The next dial waits for its backoff, then for the dial budget.
    Waiting {
        /// The timer that dials when it fires.
        timer: SpawnHandle,
    },
    /// A dial is under way.
    Dialing {
        /// The dial's future.
        attempt: SpawnHandle,
    },
    /// The socket is up.
    Linked(Link),
    /// Closed for good: nothing is dialled again.
    Closed,
}

/// A live socket and what is bound to it.
pub(super) struct Link {
    /// Where frames to the server go.
    pub(super) outbox: Outbox,
    /// Closes the socket with a close frame.
    pub(super) closer: Closer,
    /// The read half, as a stream of the actor.
    pub(super) stream: SpawnHandle,
    /// The heartbeat timer.
    pub(super) heartbeat: SpawnHandle,
    /// When it came up (a stable link resets the backoff).
    pub(super) connected_at: Instant,
    /// A text frame came back on it (so does a link that made progress).
    pub(super) progressed: bool,
    /// The ref of the heartbeat waiting for its answer.
    pub(super) pending_heartbeat: Option<String>,
}

/// What the connection remembers across links: whether to report a dial as
/// a first connect or a reconnect.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct DialHistory {
    /// A dial has succeeded once.
    pub(super) ever_connected: bool,
    /// Dials failed since the last success.
    pub(super) failed_dials: u32,
}

impl DialHistory {
    /// The next dial is a reconnect, not the first connect.
    pub(super) fn is_reconnect(&self) -> bool {
        self.ever_connected || self.failed_dials > 0
    }
}

impl LinkState {
    /// The live link, if there is one.
    pub(super) fn link(&self) -> Option<&Link> {
        match self {
            LinkState::Linked(link) => Some(link),
            _ => None,
        }
    }

    /// The live link, if there is one.
    pub(super) fn link_mut(&mut self) -> Option<&mut Link> {
        match self {
            LinkState::Linked(link) => Some(link),
            _ => None,
        }
    }

    /// Closed for good.
    pub(super) fn is_closed(&self) -> bool {
        matches!(self, LinkState::Closed)
    }

    /// Leaves this state for `Idle`, answering it.
    pub(super) fn take(&mut self) -> LinkState {
        std::mem::replace(self, LinkState::Idle)
    }

    /// When linked, goes `Idle` and answers the link; any other state stays.
    pub(super) fn take_link(&mut self) -> Option<Link> {
        match self.take() {
            LinkState::Linked(link) => Some(link),
            other => {
                *self = other;
                None
            }
        }
    }
}
