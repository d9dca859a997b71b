//! The bounded outbound queue of one WebSocket, and what empties it.
//!
//! Used by both sides. A hub socket's queue is emptied by the HTTP
//! response body itself ([`OutboxBody`]): frames go from the queue straight
//! into actix-http's write buffer, one hop, with no task of its own. A client
//! connection's queue is emptied by a writer task into a `Sink` of whole
//! [`Message`]s (awc's, or an in-memory one). Everything written to a socket
//! (replies, pushes, broadcasts, pongs, the close frame) goes through its
//! [`Outbox`], bounded both in frames and in bytes. A peer that stops
//! reading fills it; the next push then fails with [`Overflow`] and the
//! owner is told once through [`SlowConsumer`], so it can close the socket
//! with 1013. Nothing waits without bound behind a slow peer.

mod body;
mod writer;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use actix::Recipient;
use actix_ws::CloseReason;
use bytes::Bytes;
use bytestring::ByteString;
use futures_util::Sink;
use tokio::sync::{mpsc, oneshot, Notify};

use super::socket::Message;
pub(crate) use body::OutboxBody;

/// Sent once to the socket's owner when its outbox overflows.
#[derive(Debug, actix::Message)]
#[rtype(result = "()")]
pub(crate) struct SlowConsumer;

/// A push did not fit: the peer is not reading fast enough.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("outbound queue full: peer is not reading")]
pub(crate) struct Overflow;

enum Outbound {
    Text(ByteString),
    Ping(Bytes),
    Pong(Bytes),
}

impl Outbound {
    /// The frame as a WebSocket message, and the bytes it counted for.
    fn into_message(self) -> (Message, usize) {
        match self {
            Outbound::Text(text) => {
                let size = text.len();
                (Message::Text(text), size)
            }
            Outbound::Ping(payload) => {
                let size = payload.len();
                (Message::Ping(payload), size)
            }
            Outbound::Pong(payload) => {
                let size = payload.len();
                (Message::Pong(payload), size)
            }
        }
    }
}

struct Shared {
    queue: mpsc::Sender<Outbound>,
    gone: AtomicBool,
    written: Notify,
    /// Frames handed to the socket so far.
    written_count: AtomicU64,
    queued_bytes: AtomicUsize,
    max_bytes: usize,
    overflowed: AtomicBool,
    /// Told once when a push overflows (set when the owner has an address).
    on_overflow: OnceLock<Recipient<SlowConsumer>>,
}

impl Shared {
    /// The socket is gone or closing: pushes fail from now on, and whoever
    /// waits for room is woken.
    fn mark_gone(&self) {
        self.gone.store(true, Ordering::SeqCst);
        self.written.notify_waiters();
    }

    /// One frame of `size` bytes left the queue for the socket.
    fn taken(&self, size: usize) {
        self.queued_bytes.fetch_sub(size, Ordering::Relaxed);
        self.written_count.fetch_add(1, Ordering::Relaxed);
    }
}

/// Cheap-to-clone handle that queues frames for one socket.
#[derive(Clone)]
pub(crate) struct Outbox {
    shared: Arc<Shared>,
}

/// Closes the socket: stops the writer and sends the close frame.
/// Dropping it closes the socket too (with no particular code).
pub(crate) struct Closer {
    close: oneshot::Sender<CloseReason>,
    shared: Arc<Shared>,
}

/// Limits of one outbox.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OutboxLimits {
    /// Most frames queued.
    pub max_frames: usize,
    /// Most bytes queued.
    pub max_bytes: usize,
}

/// The receiving end of an outbox: what empties it, as a writer task
/// ([`Queued::write_to`]) or as a response body ([`Queued::into_body`]).
pub(crate) struct Queued {
    receiver: mpsc::Receiver<Outbound>,
    close_signal: oneshot::Receiver<CloseReason>,
    shared: Arc<Shared>,
}

impl Queued {
    /// Spawns, on the current arbiter, the task that writes the queue to `sink`.
    pub(crate) fn write_to<S>(self, sink: S)
    where
        S: Sink<Message> + Unpin + 'static,
    {
        actix::spawn(writer::write_loop(sink, self));
    }

    /// The queue as an HTTP response body that encodes its frames itself.
    pub(crate) fn into_body(self) -> OutboxBody {
        OutboxBody::new(self)
    }
}

impl Outbox {
    /// A new outbox with its closer and its receiving end; nobody hears of an
    /// overflow until [`tell_overflow_to`](Self::tell_overflow_to).
    pub(crate) fn bounded(limits: OutboxLimits) -> (Outbox, Closer, Queued) {
        let (queue, receiver) = mpsc::channel(limits.max_frames.max(1));
        let (close, close_signal) = oneshot::channel();
        let shared = Arc::new(Shared {
            queue,
            gone: AtomicBool::new(false),
            written: Notify::new(),
            written_count: AtomicU64::new(0),
            queued_bytes: AtomicUsize::new(0),
            max_bytes: limits.max_bytes,
            overflowed: AtomicBool::new(false),
            on_overflow: OnceLock::new(),
        });
        let closer = Closer {
            close,
            shared: shared.clone(),
        };
        let queued = Queued {
            receiver,
            close_signal,
            shared: shared.clone(),
        };
        (Outbox { shared }, closer, queued)
    }

    /// Creates the outbox of `sink` and spawns its writer on the current arbiter.
    pub(crate) fn spawn<S>(
        sink: S,
        limits: OutboxLimits,
        on_overflow: Recipient<SlowConsumer>,
    ) -> (Outbox, Closer)
    where
        S: Sink<Message> + Unpin + 'static,
    {
        let (outbox, closer, queued) = Outbox::bounded(limits);
        outbox.tell_overflow_to(on_overflow);
        queued.write_to(sink);
        (outbox, closer)
    }

    /// Names who hears [`SlowConsumer`] when a push overflows (the first
    /// one named keeps it).
    pub(crate) fn tell_overflow_to(&self, owner: Recipient<SlowConsumer>) {
        let _ = self.shared.on_overflow.set(owner);
    }

    /// Queues a text frame, or reports [`Overflow`] (and tells the owner once).
    pub(crate) fn push(&self, text: ByteString) -> Result<(), Overflow> {
        let size = text.len();
        self.enqueue(Outbound::Text(text), size)
    }

    /// Queues a pong answering a ping.
    pub(crate) fn pong(&self, payload: Bytes) -> Result<(), Overflow> {
        let size = payload.len();
        self.enqueue(Outbound::Pong(payload), size)
    }

    /// Queues a ping (a client's liveness probe).
    pub(crate) fn ping(&self, payload: Bytes) -> Result<(), Overflow> {
        let size = payload.len();
        self.enqueue(Outbound::Ping(payload), size)
    }

    /// Frames queued and not yet handed to the socket.
    pub(crate) fn backlog(&self) -> usize {
        self.shared.queue.max_capacity() - self.shared.queue.capacity()
    }

    /// Whether at most half of the frame capacity is taken: room to write
    /// without pacing.
    pub(crate) fn has_room(&self) -> bool {
        self.backlog() * 2 <= self.shared.queue.max_capacity()
    }

    /// Whether half its frames or half its bytes are taken.
    pub(crate) fn half_full(&self) -> bool {
        self.backlog() * 2 >= self.shared.queue.max_capacity()
            || self.shared.queued_bytes.load(Ordering::Relaxed) * 2 >= self.shared.max_bytes
    }

    /// Frames handed to the socket so far (a peer that reads moves it).
    pub(crate) fn written(&self) -> u64 {
        self.shared.written_count.load(Ordering::Relaxed)
    }

    /// Resolves once fewer than `frames` are queued (or the socket is gone).
    pub(crate) fn drained_below(
        &self,
        frames: usize,
    ) -> impl std::future::Future<Output = ()> + 'static {
        let outbox = self.clone();
        async move {
            loop {
                let written = outbox.shared.written.notified();
                if outbox.backlog() < frames || outbox.is_gone() {
                    return;
                }
                written.await;
            }
        }
    }

    /// Resolves once the outbox is no longer [half full](Self::half_full)
    /// (or the socket is gone): lets the owner stop reading while the
    /// answers the peer asked for back up.
    pub(crate) fn drained_below_half(&self) -> impl std::future::Future<Output = ()> + 'static {
        let outbox = self.clone();
        async move {
            loop {
                let written = outbox.shared.written.notified();
                if !outbox.half_full() || outbox.is_gone() {
                    return;
                }
                written.await;
            }
        }
    }

    /// Whether the socket is closed or closing: nothing pushed now is written.
    pub(crate) fn is_gone(&self) -> bool {
        self.shared.gone.load(Ordering::SeqCst)
    }

    fn enqueue(&self, item: Outbound, size: usize) -> Result<(), Overflow> {
        let shared = &self.shared;
        if shared.gone.load(Ordering::SeqCst) {
            dropped("socket_gone");
            return Err(Overflow);
        }
        if shared.overflowed.load(Ordering::Relaxed) {
            return Err(Overflow);
        }
        if size > shared.max_bytes {
            // One frame larger than the whole queue: refuse it, keep the socket.
            dropped("frame_too_large");
            return Err(Overflow);
        }
        let before = shared.queued_bytes.fetch_add(size, Ordering::Relaxed);
        let sent = if before + size <= shared.max_bytes {
            shared.queue.try_send(item).map_err(|error| match error {
                mpsc::error::TrySendError::Full(_) => "queue_full",
                mpsc::error::TrySendError::Closed(_) => "socket_gone",
            })
        } else {
            Err("queue_full")
        };
        let Err(reason) = sent else {
            return Ok(());
        };
        shared.queued_bytes.fetch_sub(size, Ordering::Relaxed);
        dropped(reason);
        if reason == "queue_full" && !shared.overflowed.swap(true, Ordering::Relaxed) {
            if let Some(owner) = shared.on_overflow.get() {
                owner.do_send(SlowConsumer);
            }
        }
        Err(Overflow)
    }
}

/// Counts a frame that was not written, by why.
fn dropped(reason: &'static str) {
    metrics::counter!("switchboard_outbound_dropped_total", "reason" => reason).increment(1);
}

impl Closer {
    /// Stops writing queued frames and closes the socket with `reason`.
    pub(crate) fn close(self, reason: CloseReason) {
        // From now on pushes fail at once, before the writer even wakes up.
        self.shared.gone.store(true, Ordering::SeqCst);
        // The writer may already be gone (peer disconnected); nothing to do then.
        let _ = self.close.send(reason);
    }
}
