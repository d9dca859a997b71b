//! An in-process transport: a client connection dials straight into a
//! [`HubService`] of the same process, through two bounded queues instead
//! of TCP.
//!
//! The hub treats such a socket like any other: the same checks before it
//! opens (credentials, `vsn`, capacity, origin), the same session, channels,
//! broadcasts and history. Only the bytes on a wire are missing.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use futures_util::{future, sink, stream, Stream, StreamExt};
use tokio::sync::{mpsc, watch};

use super::socket::{DialRequest, Dialing, Message, Socket, Transport, TransportError};
use crate::client::{DialError, DialErrorKind};
use crate::server::HubService;

/// Messages in flight each way before a writer waits (the outboxes on
/// either side keep their own bounds).
const PIPE_CAPACITY: usize = 64;

/// Dials into a hub of the same process: no socket, no port. Apps test
/// their channels and clients with it, as Phoenix apps do with
/// `ChannelTest`.
///
/// The URL's path picks the endpoint (`server.path` or
/// `server.ingest_path`) and its query the params, as over TCP; scheme and
/// host are not used (`ws://hub/socket/websocket` reads well). A refused
/// dial fails with the HTTP status the hub would have answered.
///
/// ```
/// use std::sync::Arc;
/// use actix::Actor;
/// use serde_json::json;
/// use switchboard::client::{ConnectionConfig, Open, Switchboard};
/// use switchboard::config::Config;
/// use switchboard::server::{ChannelRouter, HubService};
/// use switchboard::transport::MemoryTransport;
///
/// # #[actix::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let hub = HubService::builder(&Config::default())
///     .router(ChannelRouter::rooms())
///     .build()?;
/// let memory = MemoryTransport::new(&hub);
/// let mut config = ConnectionConfig::new("ws://hub/socket/websocket");
/// config.transport = Some(Arc::new(memory.clone()));
/// let board = Switchboard::default().start();
/// let client = board.send(Open(config)).await??;
/// client.join("room:lobby", json!({})).await?;
/// assert_eq!(hub.member_count("room:lobby"), 1);
/// memory.cut(); // as if the network dropped: the client redials and rejoins
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct MemoryTransport {
    inner: Arc<Inner>,
}

struct Inner {
    hub: HubService,
    /// Bumped by [`MemoryTransport::cut`]; every pipe watches it.
    cuts: watch::Sender<u64>,
    dials: AtomicU64,
    /// Cleared by [`MemoryTransport::set_reachable`]: dials fail.
    reachable: AtomicBool,
}

/// A dial while the hub is set unreachable.
#[derive(Debug, thiserror::Error)]
#[error("the in-memory hub is set unreachable")]
struct Unreachable;

impl MemoryTransport {
    /// A transport into `hub`.
    pub fn new(hub: &HubService) -> MemoryTransport {
        MemoryTransport {
            inner: Arc::new(Inner {
                hub: hub.clone(),
                cuts: watch::Sender::new(0),
                dials: AtomicU64::new(0),
                reachable: AtomicBool::new(true),
            }),
        }
    }

    /// Drops every socket open through this transport, as a network
    /// failure would: both sides see their stream end without a close
    /// frame (1006). Sockets dialled afterwards are not affected.
    pub fn cut(&self) {
        self.inner.cuts.send_modify(|cuts| *cuts += 1);
    }

    /// Takes the hub off the network (`false`: every open socket is
    /// [cut](Self::cut) and every dial fails as a connect error would) or
    /// puts it back (`true`, the default).
    pub fn set_reachable(&self, reachable: bool) {
        self.inner.reachable.store(reachable, Ordering::SeqCst);
        if !reachable {
            self.cut();
        }
    }

    /// Dials made through this transport so far, refused ones included.
    pub fn dials(&self) -> u64 {
        self.inner.dials.load(Ordering::Relaxed)
    }
}

impl std::fmt::Debug for MemoryTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryTransport")
            .field("dials", &self.dials())
            .finish_non_exhaustive()
    }
}

impl Transport for MemoryTransport {
    fn dial(&self, request: DialRequest) -> Dialing {
        let inner = self.inner.clone();
        Box::pin(async move {
            inner.dials.fetch_add(1, Ordering::Relaxed);
            if !inner.reachable.load(Ordering::SeqCst) {
                return Err(DialError::caused_by(DialErrorKind::Connect, Unreachable));
            }
            let mut cut = inner.cuts.subscribe();
            cut.mark_unchanged();
            let (to_hub, from_client) = mpsc::channel(PIPE_CAPACITY);
            let (to_client, from_hub) = mpsc::channel(PIPE_CAPACITY);
            let hub_end = Socket::new(sender(to_client), cut_off(receiver(from_client), &cut));
            inner.hub.open_in_memory(&request, hub_end)?;
            let limit = request.max_message_bytes;
            let inbound = receiver(from_hub).map(move |message| match message {
                Ok(message) if message_len(&message) > limit => Err(TransportError::TooLarge),
                other => other,
            });
            Ok(Socket::new(sender(to_hub), cut_off(inbound, &cut)))
        })
    }
}

/// The payload size of `message`, for the receiver's limit.
pub(crate) fn message_len(message: &Message) -> usize {
    match message {
        Message::Text(text) => text.len(),
        Message::Binary(bytes) | Message::Ping(bytes) | Message::Pong(bytes) => bytes.len(),
        Message::Close(close) => close.as_ref().map_or(0, |close| close.reason.len()),
    }
}

/// A sink writing into `queue`, waiting while it is full.
fn sender(
    queue: mpsc::Sender<Message>,
) -> impl futures_util::Sink<Message, Error = TransportError> {
    sink::unfold(queue, |queue, message: Message| async move {
        queue
            .send(message)
            .await
            .map_err(|_| TransportError::Closed)?;
        Ok(queue)
    })
}

/// The messages of `queue`, ending when its sender is gone.
fn receiver(queue: mpsc::Receiver<Message>) -> impl Stream<Item = Result<Message, TransportError>> {
    stream::unfold(queue, |mut queue| async move {
        let message = queue.recv().await?;
        Some((Ok(message), queue))
    })
}

/// `stream`, ending at the next cut.
fn cut_off<S: Stream>(stream: S, cut: &watch::Receiver<u64>) -> impl Stream<Item = S::Item> {
    let mut cut = cut.clone();
    stream.take_until(async move {
        if cut.changed().await.is_err() {
            // The transport is gone: no cut can come any more.
            future::pending::<()>().await;
        }
    })
}
