//! Messages a `Connection` sends to the actor that speaks its protocol (a
//! `Subscription` or a `Producer`) as its socket comes and goes.

use actix::Message;

use crate::transport::outbox::Outbox;

/// How many messages from its connection a protocol actor may have queued.
pub(crate) const MAILBOX_CAPACITY: usize = 4096;

/// The socket is up; write through `outbox`.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct TransportUp {
    /// The live socket's write queue.
    pub outbox: Outbox,
}

/// The socket dropped; a redial will follow.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct TransportDown;

/// The connection closed for good: fail everything that waits.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct ConnectionClosed;

/// Close the socket for good (no redial). Answers once the close is under way.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct Shutdown;

/// Stop the actor so its supervisor restarts it: the socket is dropped and
/// redialled, every topic rejoined (as after a crash).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct ForceRestart;
