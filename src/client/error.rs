//! Typed errors of the client side, one enum per operation.

use std::time::Duration;

/// Why a push, send, join or leave did not get its answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// No reply within the timeout, counted from when the frame was written
    /// (or, while waiting to be written, from when it was buffered).
    #[error("no reply within {after:?}")]
    Timeout {
        /// The timeout that ran out.
        after: Duration,
    },
    /// The socket dropped while the request was in flight.
    #[error("the connection dropped before the reply")]
    Disconnected,
    /// `max_concurrent_requests` are already in flight.
    #[error("{limit} requests are already in flight")]
    TooManyRequests {
        /// The configured limit.
        limit: usize,
    },
    /// The buffer of sends waiting for a connection or a join is full.
    #[error("outbound buffer full ({reason})")]
    BufferFull {
        /// Which bound was hit.
        reason: &'static str,
    },
    /// The socket is not reading fast enough: its write queue is full.
    #[error("the socket's write queue is full")]
    Backpressure,
    /// The topic was never joined, was left, or the server closed it.
    #[error("topic `{topic}` is not joined")]
    NotJoined {
        /// The topic.
        topic: String,
    },
    /// The connection was closed for good.
    #[error("the connection is closed")]
    Closed,
    /// The hub refused a data envelope (`nack`).
    #[error("nacked ({reason}): {error}")]
    Nacked {
        /// The hub's reason, e.g. `queue_full`.
        reason: String,
        /// Details.
        error: String,
    },
    /// A publish could not be stamped with its sequence (the snapshot
    /// store failed, so the sequence could not be made durable).
    #[error("cannot stamp a sequence: {0}")]
    Sequence(String),
}

/// Why a dial failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialError {
    /// The server answered the upgrade with an HTTP status (401, 403, 503 ...).
    #[error("upgrade refused with HTTP {status}")]
    Refused {
        /// The status code.
        status: u16,
    },
    /// TCP, TLS or the WebSocket handshake failed.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The URL in the config is not usable.
    #[error("invalid url: {0}")]
    Url(String),
}

/// Why a connection could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// `fail_first_connect` is set and the first dial failed.
    #[error("first connect failed: {0}")]
    FirstConnect(String),
    /// The switchboard is gone.
    #[error("the switchboard is not running")]
    Stopped,
}
