//! The bounded outbound queue of one WebSocket and the task that writes it.
//!
//! Used by both sides: the hub's sessions and the client connections; each
//! writes to a `Sink` of whole [`Message`]s. Everything written to a socket
//! (replies, pushes, broadcasts, pongs, the close frame) goes through its
//! [`Outbox`], bounded both in frames and in bytes. A peer that stops
//! reading fills it; the next push then fails with [`Overflow`] and the
//! owner is told once through [`SlowConsumer`], so it can close the socket
//! with 1013. Nothing waits without bound behind a slow peer.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::Recipient;
use actix_ws::CloseReason;
use bytes::Bytes;
use bytestring::ByteString;
use futures_util::{Sink, SinkExt};
use tokio::sync::{mpsc, oneshot, Notify};

use super::socket::{Close, Message};

/// How long a close frame may wait for room before the socket is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

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

struct Shared {
    queue: mpsc::Sender<Outbound>,
    gone: AtomicBool,
    written: Notify,
    /// Frames handed to the socket so far.
    written_count: AtomicU64,
    queued_bytes: AtomicUsize,
    max_bytes: usize,
    overflowed: AtomicBool,
    on_overflow: Recipient<SlowConsumer>,
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

impl Outbox {
    /// Creates the outbox of `sink` and spawns its writer on the current arbiter.
    pub(crate) fn spawn<S>(
        sink: S,
        limits: OutboxLimits,
        on_overflow: Recipient<SlowConsumer>,
    ) -> (Outbox, Closer)
    where
        S: Sink<Message> + Unpin + 'static,
    {
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
            on_overflow,
        });
        actix::spawn(write_loop(sink, receiver, close_signal, shared.clone()));
        let closer = Closer {
            close,
            shared: shared.clone(),
        };
        (Outbox { shared }, closer)
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
            shared.on_overflow.do_send(SlowConsumer);
        }
        Err(Overflow)
    }
}

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

async fn write_loop<S>(
    mut sink: S,
    mut receiver: mpsc::Receiver<Outbound>,
    mut close_signal: oneshot::Receiver<CloseReason>,
    shared: Arc<Shared>,
) where
    S: Sink<Message> + Unpin,
{
    let reason = loop {
        let item = tokio::select! {
            biased;
            reason = &mut close_signal => break reason.ok(),
            item = receiver.recv() => item,
        };
        let Some(item) = item else { break None };
        let (message, size) = match item {
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
        };
        shared.queued_bytes.fetch_sub(size, Ordering::Relaxed);
        // Flush at once only when nothing else is waiting: batches writes.
        let written = if receiver.is_empty() {
            tokio::select! {
                biased;
                reason = &mut close_signal => break reason.ok(),
                written = sink.send(message) => written,
            }
        } else {
            tokio::select! {
                biased;
                reason = &mut close_signal => break reason.ok(),
                written = sink.feed(message) => written,
            }
        };
        if written.is_err() {
            // The peer is gone; the owner learns it from its inbound stream.
            shared.gone.store(true, Ordering::SeqCst);
            shared.written.notify_waiters();
            return;
        }
        shared.written_count.fetch_add(1, Ordering::Relaxed);
        shared.written.notify_waiters();
    };
    shared.gone.store(true, Ordering::SeqCst);
    shared.written.notify_waiters();
    // Frames queued behind the close are not written: count them.
    receiver.close();
    while let Ok(_unwritten) = receiver.try_recv() {
        dropped("closed");
    }
    // A peer that stopped reading may never make room for the close frame.
    let close = async {
        let _ = sink
            .send(Message::Close(reason.map(Close::from_actix)))
            .await;
        let _ = sink.close().await;
    };
    let _ = tokio::time::timeout(CLOSE_GRACE, close).await;
}
