//! The baseline server: tokio-tungstenite on a thread of its own (one
//! current-thread runtime), counting, echoing or broadcasting text frames.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use anyhow::Context;
use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::thread::serve_on_this_thread;
use super::ws_config;
use crate::counter::Counter;

/// Frames one broadcast member may have queued before it counts as too slow.
const MEMBER_QUEUE: usize = 4096;

/// What the server does with each inbound text frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Counts it.
    Count,
    /// Counts it and sends it back.
    Echo,
    /// Ignores it; the socket receives every broadcast.
    Broadcast,
}

/// State shared by the tasks of the server thread.
struct Shared {
    mode: Mode,
    counter: Arc<Counter>,
    connections: Arc<AtomicUsize>,
    accepted: Arc<Mutex<Vec<Instant>>>,
    members: RefCell<HashMap<u64, mpsc::Sender<Message>>>,
    next_member: std::cell::Cell<u64>,
}

/// A running baseline server; stops (closing every socket) when stopped or dropped.
pub struct BaselineServer {
    addr: SocketAddr,
    counter: Arc<Counter>,
    connections: Arc<AtomicUsize>,
    accepted: Arc<Mutex<Vec<Instant>>>,
    broadcasts: mpsc::UnboundedSender<Message>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl BaselineServer {
    /// Starts a server on `listen` (port 0 picks a free one) in `mode`.
    pub fn start(listen: SocketAddr, mode: Mode) -> anyhow::Result<BaselineServer> {
        let counter = Counter::new();
        let connections = Arc::new(AtomicUsize::new(0));
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let (broadcasts, broadcast_rx) = mpsc::unbounded_channel();
        let (shutdown, shutdown_rx) = oneshot::channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let shared = SharedParts {
            mode,
            counter: counter.clone(),
            connections: connections.clone(),
            accepted: accepted.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("baseline-server".to_owned())
            .spawn(move || serve_thread(listen, shared, broadcast_rx, shutdown_rx, ready_tx))
            .context("spawning the baseline server thread")?;
        let addr = ready_rx
            .recv()
            .context("the baseline server thread ended before listening")??;
        Ok(BaselineServer {
            addr,
            counter,
            connections,
            accepted,
            broadcasts,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://addr/`.
    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    /// Text frames received (Count and Echo modes).
    pub fn counter(&self) -> &Arc<Counter> {
        &self.counter
    }

    /// Sockets past their handshake now.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Acquire)
    }

    /// When each TCP connection was accepted.
    pub fn accepted_at(&self) -> Vec<Instant> {
        self.accepted
            .lock()
            .map(|times| times.clone())
            .unwrap_or_default()
    }

    /// Sends `text` to every connected socket (Broadcast mode).
    pub fn broadcast(&self, message: Message) {
        let _ = self.broadcasts.send(message);
    }

    /// Stops at once: every socket drops without a close frame.
    pub fn stop(mut self) {
        self.halt();
    }

    /// Signals the server thread to stop and waits for it (once).
    fn halt(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for BaselineServer {
    fn drop(&mut self) {
        self.halt();
    }
}

/// The thread-safe parts handed to the server thread.
struct SharedParts {
    mode: Mode,
    counter: Arc<Counter>,
    connections: Arc<AtomicUsize>,
    accepted: Arc<Mutex<Vec<Instant>>>,
}

/// Body of the server thread: binds, reports the address, serves until shut down.
fn serve_thread(
    listen: SocketAddr,
    parts: SharedParts,
    broadcasts: mpsc::UnboundedReceiver<Message>,
    shutdown: oneshot::Receiver<()>,
    ready: std::sync::mpsc::Sender<anyhow::Result<SocketAddr>>,
) {
    serve_on_this_thread(listen, ready, shutdown, |listener| async move {
        let shared = Rc::new(Shared {
            mode: parts.mode,
            counter: parts.counter,
            connections: parts.connections,
            accepted: parts.accepted,
            members: RefCell::new(HashMap::new()),
            next_member: std::cell::Cell::new(0),
        });
        tokio::task::spawn_local(broadcaster(broadcasts, shared.clone()));
        accept_loop(listener, shared).await;
    });
}

/// Accepts connections and serves each on a task of its own.
async fn accept_loop(listener: TcpListener, shared: Rc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        if let Ok(mut times) = shared.accepted.lock() {
            times.push(Instant::now());
        }
        let _ = stream.set_nodelay(true);
        tokio::task::spawn_local(serve(stream, shared.clone()));
    }
}

/// One socket: handshake, then the mode's loop until it closes.
async fn serve(stream: TcpStream, shared: Rc<Shared>) {
    let Ok(ws) = tokio_tungstenite::accept_async_with_config(stream, Some(ws_config())).await
    else {
        return;
    };
    shared.connections.fetch_add(1, Ordering::AcqRel);
    let _ = match shared.mode {
        Mode::Count => count(ws, &shared.counter).await,
        Mode::Echo => echo(ws, &shared.counter).await,
        Mode::Broadcast => member(ws, &shared).await,
    };
    shared.connections.fetch_sub(1, Ordering::AcqRel);
}

/// Counts text frames until the socket closes.
async fn count(mut ws: WebSocketStream<TcpStream>, counter: &Counter) -> anyhow::Result<()> {
    while let Some(message) = ws.next().await {
        match message? {
            Message::Text(_) => counter.add(1),
            Message::Close(_) => break,
            _ => {}
        }
    }
    Ok(())
}

/// Sends every text frame back; frames already read are answered in one
/// write (one flush per batch, as any efficient echo server does).
async fn echo(mut ws: WebSocketStream<TcpStream>, counter: &Counter) -> anyhow::Result<()> {
    while let Some(first) = ws.next().await {
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message? {
                Message::Text(text) => {
                    counter.add(1);
                    ws.feed(Message::Text(text)).await?;
                }
                Message::Close(_) => return Ok(()),
                _ => {}
            }
            next = match ws.next().now_or_never() {
                Some(Some(message)) => Some(message),
                Some(None) => return Ok(()),
                None => None,
            };
        }
        ws.flush().await?;
    }
    Ok(())
}

/// A broadcast member: writes what the broadcaster queues for it, reads and
/// ignores what it sends, until either side ends.
async fn member(ws: WebSocketStream<TcpStream>, shared: &Shared) -> anyhow::Result<()> {
    let (queue, mut queued) = mpsc::channel(MEMBER_QUEUE);
    let id = shared.next_member.get();
    shared.next_member.set(id + 1);
    shared.members.borrow_mut().insert(id, queue);
    let (mut sink, mut stream) = ws.split();
    let writer = async {
        while let Some(message) = queued.recv().await {
            sink.feed(message).await?;
            while let Ok(message) = queued.try_recv() {
                sink.feed(message).await?;
            }
            sink.flush().await?;
        }
        anyhow::Ok(())
    };
    let reader = async {
        while let Some(message) = stream.next().await {
            if let Message::Close(_) = message? {
                break;
            }
        }
        anyhow::Ok(())
    };
    let outcome = tokio::select! {
        outcome = writer => outcome,
        outcome = reader => outcome,
    };
    shared.members.borrow_mut().remove(&id);
    outcome
}

/// Queues every broadcast to every member (a full member queue drops it).
async fn broadcaster(mut broadcasts: mpsc::UnboundedReceiver<Message>, shared: Rc<Shared>) {
    while let Some(message) = broadcasts.recv().await {
        for member in shared.members.borrow().values() {
            let _ = member.try_send(message.clone());
        }
    }
}
