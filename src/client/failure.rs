//! `Failure`: what the client's actors answer each other when an operation
//! fails. It never leaves the crate: each handle method turns it into its
//! operation's own error ([`PushError`], [`SendError`], [`ProduceError`],
//! [`JoinError`], [`RequestError`]).

use std::time::Duration;

use super::error::{JoinError, ProduceError, PushError, SendError};
use crate::transport::RequestError;

/// Why an operation failed, as it crosses the client's actor boundaries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Failure {
    /// No reply or ack within the timeout.
    #[error("no answer within {after:?}")]
    Timeout { after: Duration },
    /// The socket dropped, or is down.
    #[error("the connection dropped")]
    Disconnected,
    /// `max_concurrent_requests` are already in flight.
    #[error("{limit} requests are already in flight")]
    TooManyRequests { limit: usize },
    /// A buffer of frames waiting for a connection, a join or an ack is full.
    #[error("outbound buffer full ({reason})")]
    BufferFull { reason: &'static str },
    /// The socket's write queue is full.
    #[error("the socket's write queue is full")]
    Backpressure,
    /// The topic was never joined, was left, or the server closed it.
    #[error("topic `{topic}` is not joined")]
    NotJoined { topic: String },
    /// The hub refused a data envelope.
    #[error("nacked ({reason}): {error}")]
    Nacked { reason: String, error: String },
    /// The connection is closed for good.
    #[error("the connection is closed")]
    Closed,
}

impl From<RequestError> for Failure {
    fn from(error: RequestError) -> Failure {
        match error {
            RequestError::Timeout { after } => Failure::Timeout { after },
            RequestError::Disconnected => Failure::Disconnected,
            RequestError::TooManyRequests { limit } => Failure::TooManyRequests { limit },
            RequestError::Backpressure => Failure::Backpressure,
            RequestError::Closed => Failure::Closed,
        }
    }
}

impl From<Failure> for PushError {
    fn from(failure: Failure) -> PushError {
        match failure {
            Failure::Timeout { after } => PushError::Timeout { after },
            Failure::Disconnected => PushError::Disconnected,
            Failure::TooManyRequests { limit } => PushError::TooManyRequests { limit },
            Failure::BufferFull { reason } => PushError::BufferFull { reason },
            Failure::Backpressure => PushError::Backpressure,
            Failure::NotJoined { topic } => PushError::NotJoined { topic },
            // Only the envelope producer is nacked.
            Failure::Nacked { .. } | Failure::Closed => PushError::Closed,
        }
    }
}

impl From<Failure> for SendError {
    fn from(failure: Failure) -> SendError {
        match failure {
            Failure::BufferFull { reason } => SendError::BufferFull { reason },
            Failure::Backpressure => SendError::Backpressure,
            Failure::NotJoined { topic } => SendError::NotJoined { topic },
            // A send waits for nothing: a socket that dropped keeps it for
            // the rejoin, and it takes no request slot.
            Failure::Timeout { .. }
            | Failure::Disconnected
            | Failure::TooManyRequests { .. }
            | Failure::Nacked { .. }
            | Failure::Closed => SendError::Closed,
        }
    }
}

impl From<Failure> for ProduceError {
    fn from(failure: Failure) -> ProduceError {
        match failure {
            Failure::Nacked { reason, error } => ProduceError::Nacked { reason, error },
            Failure::Timeout { after } => ProduceError::Timeout { after },
            Failure::BufferFull { reason } => ProduceError::BufferFull { reason },
            // Data is kept and resent across drops and a full write queue;
            // it takes no request slot and names no topic.
            Failure::Disconnected
            | Failure::Backpressure
            | Failure::TooManyRequests { .. }
            | Failure::NotJoined { .. }
            | Failure::Closed => ProduceError::Closed,
        }
    }
}

impl From<Failure> for RequestError {
    fn from(failure: Failure) -> RequestError {
        match failure {
            Failure::Timeout { after } => RequestError::Timeout { after },
            Failure::Disconnected => RequestError::Disconnected,
            Failure::TooManyRequests { limit } => RequestError::TooManyRequests { limit },
            Failure::Backpressure => RequestError::Backpressure,
            Failure::BufferFull { .. }
            | Failure::NotJoined { .. }
            | Failure::Nacked { .. }
            | Failure::Closed => RequestError::Closed,
        }
    }
}

impl Failure {
    /// The error of a join of `topic` that failed with this.
    pub(crate) fn into_join_error(self, topic: &str) -> JoinError {
        match self {
            Failure::Timeout { after } => JoinError::Timeout { after },
            Failure::BufferFull { .. } => JoinError::TooManyWaiters,
            Failure::NotJoined { .. } => JoinError::Left {
                topic: topic.to_owned(),
            },
            Failure::Disconnected
            | Failure::TooManyRequests { .. }
            | Failure::Backpressure
            | Failure::Nacked { .. }
            | Failure::Closed => JoinError::Closed,
        }
    }
}

/// Maps an actor mailbox failure (the actor is gone) to `Closed`.
pub(crate) fn answered<T>(
    result: Result<Result<T, Failure>, actix::MailboxError>,
) -> Result<T, Failure> {
    result.unwrap_or(Err(Failure::Closed))
}
