//! The floor server: tokio-tungstenite on a thread of its own (one
//! current-thread runtime, like the raw baseline's), speaking Phoenix V2 or
//! envelope v1 with nothing between the socket and the protocol.
//!
//! Phoenix: `phx_join` is answered `ok` with `{}` and joins the topic;
//! `count` is counted, not answered; `ping` is answered with its payload;
//! `heartbeat` on `phoenix` is answered; any other event is broadcast to
//! every socket joined to the topic (encoded once, each socket writing its
//! own queue) and answered `ok`. Envelope v1: every `data` is counted and
//! acked in the hub's format. Answers to frames already read go out in one
//! write.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::Context;
use futures_util::{FutureExt, SinkExt, StreamExt};
use serde_json::value::RawValue;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

use super::{ingest, phoenix};
use crate::baseline::thread::serve_on_this_thread;
use crate::baseline::ws_config;
use crate::counter::Counter;
use crate::payload::{COUNT_EVENT, PING_EVENT};

/// Frames one socket may have queued before a broadcast to it is dropped.
const SOCKET_QUEUE: usize = 4096;

/// Which protocol the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Phoenix Channels V2 (the bench channel's events).
    Phoenix,
    /// Envelope v1 (`/ingest`).
    Ingest,
}

/// A broadcast handed to the server thread.
struct Broadcast {
    topic: String,
    event: String,
    payload: Box<RawValue>,
}

/// A running floor server; stops (closing every socket) when dropped.
pub struct FloorServer {
    addr: SocketAddr,
    counter: Arc<Counter>,
    broadcasts: mpsc::UnboundedSender<Broadcast>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FloorServer {
    /// Starts a server speaking `protocol` on `listen` (port 0 picks one).
    pub fn start(listen: SocketAddr, protocol: Protocol) -> anyhow::Result<FloorServer> {
        let counter = Counter::new();
        let (broadcasts, broadcast_rx) = mpsc::unbounded_channel();
        let (shutdown, shutdown_rx) = oneshot::channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let shared = Shared {
            protocol,
            counter: counter.clone(),
            topics: RefCell::default(),
            next_socket: Cell::new(0),
        };
        let thread = std::thread::Builder::new()
            .name("floor-server".to_owned())
            .spawn(move || serve_thread(listen, shared, broadcast_rx, shutdown_rx, ready_tx))
            .context("spawning the floor server thread")?;
        let addr = ready_rx
            .recv()
            .context("the floor server thread ended before listening")??;
        Ok(FloorServer {
            addr,
            counter,
            broadcasts,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// `ws://addr/socket/websocket?vsn=2.0.0` (any path is served).
    pub fn phoenix_url(&self) -> String {
        format!("ws://{}/socket/websocket?vsn=2.0.0", self.addr)
    }

    /// `ws://addr/ingest` (any path is served).
    pub fn ingest_url(&self) -> String {
        format!("ws://{}/ingest", self.addr)
    }

    /// `count` events (Phoenix) or `data` messages (envelope v1) received.
    pub fn counter(&self) -> &Arc<Counter> {
        &self.counter
    }

    /// Sends `[null, null, topic, event, payload]` to every socket joined to `topic`.
    pub fn broadcast(&self, topic: &str, event: &str, payload: &RawValue) {
        let _ = self.broadcasts.send(Broadcast {
            topic: topic.to_owned(),
            event: event.to_owned(),
            payload: payload.to_owned(),
        });
    }
}

impl Drop for FloorServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// State shared by the tasks of the server thread.
struct Shared {
    protocol: Protocol,
    counter: Arc<Counter>,
    /// Each topic's sockets, by socket id, with their outbound queues.
    topics: RefCell<HashMap<String, HashMap<u64, mpsc::Sender<Utf8Bytes>>>>,
    next_socket: Cell<u64>,
}

impl Shared {
    /// Encodes the push once and queues it to every member of `topic`
    /// (a full queue drops it).
    fn fan_out(&self, topic: &str, event: &str, payload: &RawValue) {
        let frame = Utf8Bytes::from(phoenix::push(None, None, topic, event, payload));
        if let Some(members) = self.topics.borrow().get(topic) {
            for member in members.values() {
                let _ = member.try_send(frame.clone());
            }
        }
    }
}

/// Body of the server thread: binds, reports the address, serves until shut down.
fn serve_thread(
    listen: SocketAddr,
    shared: Shared,
    mut broadcasts: mpsc::UnboundedReceiver<Broadcast>,
    shutdown: oneshot::Receiver<()>,
    ready: std::sync::mpsc::Sender<anyhow::Result<SocketAddr>>,
) {
    serve_on_this_thread(listen, ready, shutdown, |listener| async move {
        let shared = Rc::new(shared);
        let broadcaster = shared.clone();
        tokio::task::spawn_local(async move {
            while let Some(b) = broadcasts.recv().await {
                broadcaster.fan_out(&b.topic, &b.event, &b.payload);
            }
        });
        accept_loop(listener, shared).await;
    });
}

/// Accepts connections and serves each on a task of its own.
async fn accept_loop(listener: TcpListener, shared: Rc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::task::spawn_local(serve(stream, shared.clone()));
    }
}

/// One socket's own state.
struct Socket {
    id: u64,
    queue: mpsc::Sender<Utf8Bytes>,
    joined: Vec<String>,
}

/// One socket: handshake, then frames in and out until it closes.
async fn serve(stream: TcpStream, shared: Rc<Shared>) {
    let Ok(mut ws) = tokio_tungstenite::accept_async_with_config(stream, Some(ws_config())).await
    else {
        return;
    };
    let (queue, mut queued) = mpsc::channel(SOCKET_QUEUE);
    let id = shared.next_socket.get();
    shared.next_socket.set(id + 1);
    let mut socket = Socket {
        id,
        queue,
        joined: Vec::new(),
    };
    let _ = run(&mut ws, &mut queued, &mut socket, &shared).await;
    let mut topics = shared.topics.borrow_mut();
    for topic in &socket.joined {
        if let Some(members) = topics.get_mut(topic) {
            members.remove(&id);
        }
    }
}

/// Reads frames (answering every one already read in one write) and
/// writes what is queued for the socket, until it ends.
async fn run(
    ws: &mut WebSocketStream<TcpStream>,
    queued: &mut mpsc::Receiver<Utf8Bytes>,
    socket: &mut Socket,
    shared: &Shared,
) -> anyhow::Result<()> {
    loop {
        tokio::select! {
            message = ws.next() => {
                let mut next = message;
                while let Some(message) = next.take() {
                    match message? {
                        Message::Text(text) => {
                            if let Some(answer) = answer(&text, socket, shared) {
                                ws.feed(Message::Text(answer.into())).await?;
                            }
                        }
                        Message::Close(_) => return Ok(()),
                        _ => {}
                    }
                    next = match ws.next().now_or_never() {
                        Some(None) => return Ok(()),
                        Some(message) => message,
                        None => None,
                    };
                }
                ws.flush().await?;
            }
            Some(frame) = queued.recv() => {
                ws.feed(Message::Text(frame)).await?;
                while let Ok(frame) = queued.try_recv() {
                    ws.feed(Message::Text(frame)).await?;
                }
                ws.flush().await?;
            }
        }
    }
}

/// The answer to one inbound frame, if any (frames that do not parse are dropped).
fn answer(text: &str, socket: &mut Socket, shared: &Shared) -> Option<String> {
    match shared.protocol {
        Protocol::Phoenix => answer_phoenix(text, socket, shared),
        Protocol::Ingest => {
            let envelope = ingest::parse(text).ok()?;
            (envelope.kind == ingest::DATA).then(|| {
                shared.counter.add(1);
                ingest::ack(envelope.id)
            })
        }
    }
}

/// The answer to one Phoenix frame.
fn answer_phoenix(text: &str, socket: &mut Socket, shared: &Shared) -> Option<String> {
    let (join_ref, msg_ref, topic, event, payload) = phoenix::parse(text).ok()?;
    let ok = |response: &RawValue| Some(phoenix::reply(join_ref, msg_ref, topic, "ok", response));
    let joined = socket.joined.iter().position(|joined| joined == topic);
    match (event, joined) {
        (phoenix::HEARTBEAT_EVENT, _) if topic == phoenix::HEARTBEAT_TOPIC => ok(phoenix::empty()),
        (phoenix::JOIN_EVENT, _) => {
            if joined.is_none() {
                shared
                    .topics
                    .borrow_mut()
                    .entry(topic.to_owned())
                    .or_default()
                    .insert(socket.id, socket.queue.clone());
                socket.joined.push(topic.to_owned());
            }
            ok(phoenix::empty())
        }
        (_, None) => Some(phoenix::reply(
            join_ref,
            msg_ref,
            topic,
            "error",
            phoenix::unmatched_topic(),
        )),
        (phoenix::LEAVE_EVENT, Some(at)) => {
            socket.joined.swap_remove(at);
            if let Some(members) = shared.topics.borrow_mut().get_mut(topic) {
                members.remove(&socket.id);
            }
            ok(phoenix::empty())
        }
        (COUNT_EVENT, Some(_)) => {
            shared.counter.add(1);
            None
        }
        (PING_EVENT, Some(_)) => ok(payload),
        (_, Some(_)) => {
            shared.fan_out(topic, event, payload);
            ok(phoenix::empty())
        }
    }
}
