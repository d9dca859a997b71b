//! What a connection tells the world: its [`ConnectionStatus`] (readable at any time
//! without a round trip) and a stream of [`ConnectEvent`]s.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::{broadcast, watch};

use super::error::DialError;

/// How many events a slow subscriber may fall behind before it loses the
/// oldest (it then sees `RecvError::Lagged(n)`).
pub(crate) const EVENT_BUFFER: usize = 256;

/// The buffer is allocated when the first subscriber arrives: a connection
/// nobody watches does not pay for it (256 slots are about 24 KiB).
type LazyEvents = Arc<OnceLock<broadcast::Sender<ConnectEvent>>>;

/// Lifecycle of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    /// Opened, not yet dialled.
    Init,
    /// First dial under way.
    Connecting,
    /// Socket up.
    Connected,
    /// Socket lost; redialling with backoff.
    Reconnecting,
    /// Closed for good: by the user, a terminal close, or retries exhausted.
    Closed,
}

/// A change in a connection's life, as one JSON line in `switchboard tail`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ConnectEvent {
    /// A dial succeeded.
    Connected,
    /// The socket dropped (or a dial failed).
    Disconnected {
        /// Why, in words.
        reason: String,
    },
    /// A dial is scheduled.
    Reconnecting {
        /// 1-based number of the coming attempt.
        attempt: u32,
        /// When it will be made (RFC 3339).
        #[serde(serialize_with = "rfc3339")]
        next_attempt_at: SystemTime,
    },
    /// A topic was joined again after a reconnect; its buffered pushes were flushed.
    Rejoined {
        /// The topic.
        topic: String,
        /// The join reply's response.
        reply: Value,
    },
    /// The server refused a join nobody was waiting for. A rejoin after a
    /// reconnect (the topic had been joined) is tried again with the Phoenix
    /// backoff (1 s, 2 s, 5 s, then 10 s); a topic never joined (its caller
    /// already gave up waiting) is forgotten.
    JoinRefused {
        /// The topic.
        topic: String,
        /// The server's reason (`response.reason`, or the whole response).
        reason: String,
        /// The whole error response.
        response: Value,
    },
    /// A recoverable topic lost messages the hub could not replay:
    /// sequences `expected..got` will never be delivered (SEQ-5, SEQ-8).
    Gap {
        /// The topic.
        topic: String,
        /// The first missing sequence.
        expected: u64,
        /// The sequence delivered next (after an epoch change, the new
        /// epoch's next sequence).
        got: u64,
    },
    /// A strict recoverable topic could not be resumed, so it was left
    /// instead of skipping what was lost (SEQ-7).
    Unrecovered {
        /// The topic.
        topic: String,
        /// The hub's refusal.
        reply: Value,
    },
    /// A push could not be handed to a typed aspect handler.
    InvalidPayload {
        /// The topic.
        topic: String,
        /// The handler's aspect.
        aspect: String,
        /// What was wrong.
        reason: String,
    },
    /// The connection stopped for good.
    Closed {
        /// Why.
        reason: String,
    },
}

fn rfc3339<S: serde::Serializer>(at: &SystemTime, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&humantime::format_rfc3339_millis(*at))
}

/// The sending side of a connection's status and events, shared by its actors.
#[derive(Clone)]
pub(crate) struct Announcer {
    status: watch::Sender<ConnectionStatus>,
    events: LazyEvents,
    dial_error: Arc<Mutex<Option<DialError>>>,
}

impl Default for Announcer {
    fn default() -> Self {
        Announcer::new()
    }
}

impl Announcer {
    /// A fresh announcer in [`ConnectionStatus::Init`].
    pub(crate) fn new() -> Announcer {
        Announcer {
            status: watch::channel(ConnectionStatus::Init).0,
            events: LazyEvents::default(),
            dial_error: Arc::default(),
        }
    }

    /// Sets the status (subscribers see only changes).
    pub(crate) fn set_status(&self, status: ConnectionStatus) {
        self.status.send_if_modified(|current| {
            let changed = *current != status;
            *current = status;
            changed
        });
    }

    /// The current status.
    pub(crate) fn status(&self) -> ConnectionStatus {
        *self.status.borrow()
    }

    /// Publishes an event to every subscriber (none listening is fine).
    pub(crate) fn emit(&self, event: ConnectEvent) {
        tracing::debug!(?event, "connection event");
        if let Some(events) = self.events.get() {
            let _ = events.send(event);
        }
    }

    /// Keeps the error of the dial that ended the connection, for the
    /// caller of a `fail_first_connect` open.
    pub(crate) fn record_dial_error(&self, error: DialError) {
        if let Ok(mut slot) = self.dial_error.lock() {
            *slot = Some(error);
        }
    }

    /// The error [`record_dial_error`](Self::record_dial_error) kept.
    pub(crate) fn dial_error(&self) -> Option<DialError> {
        self.dial_error.lock().ok().and_then(|slot| slot.clone())
    }

    /// A watch on the status.
    pub(crate) fn watch_status(&self) -> watch::Receiver<ConnectionStatus> {
        self.status.subscribe()
    }

    /// A new subscriber to the events from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<ConnectEvent> {
        self.events
            .get_or_init(|| broadcast::channel(EVENT_BUFFER).0)
            .subscribe()
    }
}
