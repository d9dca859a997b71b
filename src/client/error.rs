//! The errors of the client's operations, one type per operation.
//!
//! Each names only what its operation can meet. Underneath, requests are
//! correlated by the shared transport plumbing, whose failures convert
//! into these.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::sequence::StoreError;

/// What kind of failure a [`DialError`] is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DialErrorKind {
    /// The server answered the upgrade with an HTTP status (401, 403, 503 ...).
    #[error("upgrade refused with HTTP {status}")]
    Refused {
        /// The status code.
        status: u16,
    },
    /// TCP, TLS or the WebSocket handshake failed.
    #[error("cannot connect")]
    Connect,
    /// Neither the token provider nor the connect answered in time.
    #[error("no connection within {after:?}")]
    Timeout {
        /// The connect timeout.
        after: Duration,
    },
    /// The URL in the config is not usable.
    #[error("invalid url: {reason}")]
    Url {
        /// What is wrong with it.
        reason: String,
    },
    /// TLS cannot succeed as configured: the server's certificate is not
    /// trusted (or not for this host), or the CA file is unusable. Not
    /// retried: no redial can fix it.
    #[error("TLS failed: {reason}")]
    Tls {
        /// What the TLS layer said.
        reason: String,
    },
}

/// Why a dial failed: its [`kind`](DialError::kind), and the error of the
/// layer below (the HTTP client's) as its [`source`](StdError::source).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind}")]
pub struct DialError {
    kind: DialErrorKind,
    #[source]
    source: Option<Arc<dyn StdError + Send + Sync>>,
}

impl DialError {
    /// A dial error of `kind` with no underlying error.
    pub fn new(kind: DialErrorKind) -> DialError {
        DialError { kind, source: None }
    }

    /// A dial error of `kind` caused by `source`.
    pub fn caused_by(
        kind: DialErrorKind,
        source: impl StdError + Send + Sync + 'static,
    ) -> DialError {
        DialError {
            kind,
            source: Some(Arc::new(source)),
        }
    }

    /// What kind of failure it is.
    pub fn kind(&self) -> &DialErrorKind {
        &self.kind
    }
}

/// Why a connection could not be opened.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OpenError {
    /// `fail_first_connect` is set and the first dial failed.
    #[error("the first connect failed")]
    FirstConnect(#[source] DialError),
    /// `fail_first_connect` is set and the connection closed for good before
    /// it was seen up (closed by the application meanwhile, or closed with a
    /// terminal code right after the upgrade).
    #[error("the connection closed before it was up: {reason}")]
    ClosedFirst {
        /// Why it closed.
        reason: String,
    },
    /// The switchboard is gone.
    #[error("the switchboard is not running")]
    Stopped,
}

/// Why a join did not succeed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JoinError {
    /// The server refused the join this caller waited for; the topic is
    /// forgotten, not retried (a refusal nobody waits for is the event
    /// `ConnectEvent::JoinRefused` instead).
    #[error("join of `{topic}` refused: {reason}")]
    Refused {
        /// The topic.
        topic: String,
        /// The server's reason (`response.reason`, or the whole response).
        reason: String,
        /// The whole error response.
        response: Value,
    },
    /// A strict recoverable topic cannot be resumed without a gap, so it
    /// was not joined (SEQ-7).
    #[error("`{topic}` cannot be resumed without a gap")]
    Unrecovered {
        /// The topic.
        topic: String,
        /// The server's refusal.
        response: Value,
    },
    /// No join reply within the timeout; the topic stays and is rejoined
    /// with backoff (a later refusal is announced as
    /// `ConnectEvent::JoinRefused`).
    #[error("no join reply within {after:?}")]
    Timeout {
        /// The timeout that ran out.
        after: Duration,
    },
    /// Too many callers are already waiting for this topic's join.
    #[error("too many callers are waiting for this join")]
    TooManyWaiters,
    /// The topic was left, or the server closed it, before the join completed.
    #[error("`{topic}` was left before its join completed")]
    Left {
        /// The topic.
        topic: String,
    },
    /// The connection is closed for good.
    #[error("the connection is closed")]
    Closed,
}

/// Why a history request got no page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistoryError {
    /// The request's push got no reply.
    #[error(transparent)]
    Push(#[from] PushError),
    /// The hub refused: `not_recoverable`, `invalid` (the query), or the
    /// topic is not joined (`unmatched topic`).
    #[error("history refused: {reason}")]
    Refused {
        /// The hub's reason.
        reason: String,
    },
    /// The reply is not a history page.
    #[error("history reply not understood: {0}")]
    Malformed(String),
}

/// Why a push did not get its reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// No reply within the timeout, counted from when the frame was written
    /// (or, while waiting to be written, from when it was buffered).
    #[error("no reply within {after:?}")]
    Timeout {
        /// The timeout that ran out.
        after: Duration,
    },
    /// The socket dropped while the push was in flight.
    #[error("the connection dropped before the reply")]
    Disconnected,
    /// `max_concurrent_requests` are already in flight.
    #[error("{limit} requests are already in flight")]
    TooManyRequests {
        /// The configured limit.
        limit: usize,
    },
    /// The buffer of pushes waiting for a connection or a join is full.
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
    /// The connection is closed for good.
    #[error("the connection is closed")]
    Closed,
    /// The payload did not encode as JSON (its `Serialize` failed).
    #[error("the payload does not encode as JSON: {reason}")]
    Encode {
        /// What the encoder said.
        reason: String,
    },
}

/// Why a fire-and-forget send could not even be queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
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
    /// The connection is closed for good.
    #[error("the connection is closed")]
    Closed,
    /// The payload did not encode as JSON (its `Serialize` failed).
    #[error("the payload does not encode as JSON: {reason}")]
    Encode {
        /// What the encoder said.
        reason: String,
    },
}

/// Why a content envelope was not published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Its sequence could not be made durable (the snapshot store failed).
    #[error("cannot stamp a sequence")]
    Sequence(#[source] StoreError),
    /// The push of the stamped envelope failed.
    #[error(transparent)]
    Push(#[from] PushError),
}

/// Why the hub did not take data from an envelope producer (`send_data`,
/// `send`, `publish`).
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    /// The hub refused the envelope (`nack`).
    #[error("nacked ({reason}): {error}")]
    Nacked {
        /// The hub's reason, e.g. `queue_full`.
        reason: String,
        /// Details.
        error: String,
    },
    /// Not acked within the buffer deadline.
    #[error("no ack within {after:?}")]
    Timeout {
        /// The deadline that ran out.
        after: Duration,
    },
    /// The buffer of envelopes waiting for an ack is full.
    #[error("outbound buffer full ({reason})")]
    BufferFull {
        /// Which bound was hit.
        reason: &'static str,
    },
    /// Its sequence could not be made durable (the snapshot store failed).
    #[error("cannot stamp a sequence")]
    Sequence(#[source] StoreError),
    /// The connection is closed for good.
    #[error("the connection is closed")]
    Closed,
}

/// The connection is closed for good (the only way a leave can fail).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the connection is closed")]
pub struct ConnectionClosed;
