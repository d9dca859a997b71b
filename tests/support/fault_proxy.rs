//! A TCP fault proxy on 127.0.0.1 for reconnect, half-open and ordering
//! tests: it forwards bytes between a client and an upstream and can reset
//! or close every connection, refuse new ones, stall all traffic or delay it.
//!
//! The proxy runs on its own thread with its own tokio current-thread
//! runtime, so it keeps forwarding whatever the test's runtime is doing.
//! Every method is synchronous and may be called from any thread.
//!
//! Memory is bounded per connection: one [`CHUNK`]-byte read buffer and at
//! most [`QUEUE`] chunks in flight per direction. A stall stops reading, so
//! the kernel's flow control holds the data back instead of the proxy.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};

/// Size of the copy buffer of each direction of each connection.
pub const CHUNK: usize = 16 * 1024;

/// Chunks read but not yet written (waiting out the latency), per direction.
pub const QUEUE: usize = 4;

/// How many accept timestamps are kept (the most recent ones).
pub const ACCEPT_TIMES_KEPT: usize = 100_000;

/// How long [`FaultProxy::cut_all`] waits for the cut sockets to be closed.
const CUT_WAIT: Duration = Duration::from_secs(2);

/// How long a connection cut with [`Cut::Fin`] keeps reading (and discarding)
/// after its FIN, so that unread data does not turn the close into a reset.
const FIN_DRAIN: Duration = Duration::from_secs(2);

/// Backlog of the proxy's listening socket.
const BACKLOG: u32 = 1024;

/// How a connection is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Abortive close: `SO_LINGER` 0 on both sockets, then close, so both the
    /// client and the upstream receive an RST.
    Reset,
    /// Orderly close: a FIN to both the client and the upstream.
    Fin,
}

/// A TCP proxy on 127.0.0.1 that injects faults. Dropping it closes the
/// listener and drops every connection.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// State shared between the handle and the proxy thread.
struct Shared {
    upstream: Mutex<SocketAddr>,
    refusing: AtomicBool,
    refuse_until: Mutex<Option<Instant>>,
    stalled: watch::Sender<bool>,
    latency_nanos: AtomicU64,
    accepted: AtomicU64,
    accept_times: Mutex<VecDeque<Instant>>,
    connections: Mutex<Registry>,
    /// Signalled whenever a connection leaves the registry.
    left: Condvar,
}

/// Live connections, each with the sender that cuts it.
#[derive(Default)]
struct Registry {
    next_id: u64,
    live: HashMap<u64, watch::Sender<Option<Cut>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FaultProxy {
    /// Starts a proxy on `127.0.0.1:0` that forwards to `upstream`.
    ///
    /// Panics when the proxy's thread, runtime or listener cannot be set up.
    pub fn start(upstream: SocketAddr) -> FaultProxy {
        let (stalled, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            upstream: Mutex::new(upstream),
            refusing: AtomicBool::new(false),
            refuse_until: Mutex::new(None),
            stalled,
            latency_nanos: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            accept_times: Mutex::new(VecDeque::new()),
            connections: Mutex::new(Registry::default()),
            left: Condvar::new(),
        });
        let (shutdown, shutdown_rx) = oneshot::channel();
        let (bound_tx, bound_rx) = std_mpsc::channel();
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("fault-proxy".to_owned())
            .spawn(move || run(thread_shared, shutdown_rx, bound_tx))
            .expect("spawn the fault proxy thread");
        let addr = match bound_rx.recv() {
            Ok(Ok(addr)) => addr,
            Ok(Err(error)) => panic!("fault proxy failed to start: {error}"),
            Err(_) => panic!("fault proxy thread died while starting"),
        };
        FaultProxy {
            addr,
            shared,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Forwards connections accepted from now on to `upstream` (for a hub
    /// restarted on another port); live connections keep their upstream.
    pub fn set_upstream(&self, upstream: SocketAddr) {
        *lock(&self.shared.upstream) = upstream;
    }

    /// Cuts every live connection, on both sides, and returns once their
    /// sockets are closed (or after a 2 s bound). Connections accepted
    /// afterwards are not affected.
    pub fn cut_all(&self, how: Cut) {
        let registry = lock(&self.shared.connections);
        let ids: Vec<u64> = registry.live.keys().copied().collect();
        for cut in registry.live.values() {
            cut.send_replace(Some(how));
        }
        let (registry, _) = self
            .shared
            .left
            .wait_timeout_while(registry, CUT_WAIT, |registry| {
                ids.iter().any(|id| registry.live.contains_key(id))
            })
            .unwrap_or_else(PoisonError::into_inner);
        drop(registry);
    }

    /// While on, every new connection is accepted and at once reset; live
    /// connections are unaffected. `refuse(false)` also ends a
    /// [`refuse_for`](Self::refuse_for).
    pub fn refuse(&self, on: bool) {
        self.shared.refusing.store(on, Ordering::SeqCst);
        if !on {
            *lock(&self.shared.refuse_until) = None;
        }
    }

    /// Refuses new connections (as [`refuse`](Self::refuse)) for `d` from now.
    pub fn refuse_for(&self, d: Duration) {
        *lock(&self.shared.refuse_until) = Some(Instant::now() + d);
    }

    /// While on, no byte is forwarded in either direction and every socket
    /// stays open (a half-open link). The proxy stops reading, so the data
    /// waits in the kernel's buffers and flows again, in order, once off.
    pub fn stall(&self, on: bool) {
        self.shared.stalled.send_replace(on);
    }

    /// Delays every forwarded chunk by `d` (from when it was read), keeping
    /// the order. Applies to chunks read from now on.
    pub fn set_latency(&self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.shared.latency_nanos.store(nanos, Ordering::SeqCst);
    }

    /// Connections currently forwarded (or connecting to the upstream).
    pub fn live_connections(&self) -> usize {
        lock(&self.shared.connections).live.len()
    }

    /// Connections accepted so far, refused ones included.
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// When each connection was accepted (refused ones included), oldest
    /// first; only the last 100 000 are kept.
    pub fn accept_times(&self) -> Vec<Instant> {
        lock(&self.shared.accept_times).iter().copied().collect()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Shared {
    fn latency(&self) -> Duration {
        Duration::from_nanos(self.latency_nanos.load(Ordering::SeqCst))
    }

    fn refusing(&self) -> bool {
        if self.refusing.load(Ordering::SeqCst) {
            return true;
        }
        matches!(*lock(&self.refuse_until), Some(until) if Instant::now() < until)
    }

    fn record_accept(&self) {
        self.accepted.fetch_add(1, Ordering::SeqCst);
        let mut times = lock(&self.accept_times);
        if times.len() == ACCEPT_TIMES_KEPT {
            times.pop_front();
        }
        times.push_back(Instant::now());
    }

    /// Registers a new connection; returns its id and its cut signal.
    fn register(&self) -> (u64, watch::Receiver<Option<Cut>>) {
        let (cut, cut_rx) = watch::channel(None);
        let mut registry = lock(&self.connections);
        let id = registry.next_id;
        registry.next_id += 1;
        registry.live.insert(id, cut);
        (id, cut_rx)
    }
}

/// Removes a connection from the registry when dropped, also when its task
/// is cancelled by the runtime shutting down.
struct Registration {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        lock(&self.shared.connections).live.remove(&self.id);
        self.shared.left.notify_all();
    }
}

/// The proxy thread: binds, reports the address, accepts until shut down.
fn run(
    shared: Arc<Shared>,
    shutdown: oneshot::Receiver<()>,
    bound: std_mpsc::Sender<io::Result<SocketAddr>>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            let _ = bound.send(Err(error));
            return;
        }
    };
    runtime.block_on(async move {
        let listener = match listen() {
            Ok(listener) => listener,
            Err(error) => {
                let _ = bound.send(Err(error));
                return;
            }
        };
        match listener.local_addr() {
            Ok(addr) => {
                if bound.send(Ok(addr)).is_err() {
                    return;
                }
            }
            Err(error) => {
                let _ = bound.send(Err(error));
                return;
            }
        }
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => on_accept(&shared, stream),
                    Err(error) => {
                        // Typically out of file descriptors: back off a bit.
                        eprintln!("fault proxy: accept failed: {error}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                },
            }
        }
    });
    // Dropping the runtime here drops the listener and every connection task.
}

fn listen() -> io::Result<tokio::net::TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
    socket.listen(BACKLOG)
}

fn on_accept(shared: &Arc<Shared>, client: TcpStream) {
    shared.record_accept();
    if shared.refusing() {
        let _ = client.set_zero_linger();
        drop(client);
        return;
    }
    let (id, cut) = shared.register();
    let registration = Registration {
        shared: Arc::clone(shared),
        id,
    };
    tokio::spawn(serve(registration, client, cut));
}

/// Resolves once the connection is to be cut.
async fn cut_signal(cut: &mut watch::Receiver<Option<Cut>>) -> Cut {
    let how = cut.wait_for(Option::is_some).await.map(|how| *how);
    match how {
        Ok(how) => how.unwrap_or(Cut::Reset),
        // The sender lives until this connection leaves the registry.
        Err(_) => std::future::pending().await,
    }
}

/// Resolves once the proxy is not stalled.
async fn unstalled(stalled: &mut watch::Receiver<bool>) {
    let _ = stalled.wait_for(|stalled| !*stalled).await;
}

enum Outcome {
    /// Both directions ended with a FIN that was passed on.
    Finished,
    /// A read or write failed (often a reset by one side).
    Failed,
    /// Cut by [`FaultProxy::cut_all`].
    Cut(Cut),
}

/// One connection: connects to the upstream, forwards both ways, closes.
async fn serve(
    registration: Registration,
    mut client: TcpStream,
    mut cut: watch::Receiver<Option<Cut>>,
) {
    let shared = Arc::clone(&registration.shared);
    let upstream_addr = *lock(&shared.upstream);
    let connected = tokio::select! {
        biased;
        how = cut_signal(&mut cut) => Err(Some(how)),
        connected = TcpStream::connect(upstream_addr) => connected.map_err(|_| None),
    };
    let mut upstream = match connected {
        Ok(upstream) => upstream,
        Err(how) => {
            // Cut while connecting, or the upstream is unreachable.
            if how == Some(Cut::Reset) {
                let _ = client.set_zero_linger();
            } else {
                let _ = client.shutdown().await;
            }
            drop(client);
            drop(registration);
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);

    let outcome = {
        let (client_read, client_write) = client.split();
        let (upstream_read, upstream_write) = upstream.split();
        let forward = async {
            tokio::try_join!(
                pump(client_read, upstream_write, &shared),
                pump(upstream_read, client_write, &shared),
            )
        };
        tokio::select! {
            biased;
            how = cut_signal(&mut cut) => Outcome::Cut(how),
            forwarded = forward => match forwarded {
                Ok(_) => Outcome::Finished,
                Err(_) => Outcome::Failed,
            },
        }
    };

    match outcome {
        Outcome::Finished => {}
        Outcome::Cut(Cut::Reset) | Outcome::Failed => {
            let _ = client.set_zero_linger();
            let _ = upstream.set_zero_linger();
        }
        Outcome::Cut(Cut::Fin) => {
            let _ = client.shutdown().await;
            let _ = upstream.shutdown().await;
            drop(registration);
            let _ = tokio::time::timeout(FIN_DRAIN, async {
                tokio::join!(drain(&mut client), drain(&mut upstream))
            })
            .await;
            return;
        }
    }
    drop(client);
    drop(upstream);
    drop(registration);
}

/// Reads and discards until EOF or an error.
async fn drain(stream: &mut TcpStream) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}

/// Forwards one direction until EOF (passed on as a FIN) or an error.
///
/// A reader and a writer joined by a queue of at most [`QUEUE`] chunks, so
/// the latency delays each chunk without adding up over chunks.
async fn pump(mut from: ReadHalf<'_>, mut to: WriteHalf<'_>, shared: &Shared) -> io::Result<()> {
    let (queue, mut queued) = mpsc::channel::<(Instant, Vec<u8>)>(QUEUE);
    let mut stalled_reader = shared.stalled.subscribe();
    let mut stalled_writer = shared.stalled.subscribe();
    let reading = async move {
        let mut buf = vec![0u8; CHUNK];
        loop {
            unstalled(&mut stalled_reader).await;
            let n = from.read(&mut buf).await?;
            if n == 0 {
                // Dropping the queue tells the writer to pass the FIN on.
                return Ok::<(), io::Error>(());
            }
            let due = Instant::now() + shared.latency();
            if queue.send((due, buf[..n].to_vec())).await.is_err() {
                return Ok(());
            }
        }
    };
    let writing = async move {
        while let Some((due, chunk)) = queued.recv().await {
            tokio::time::sleep_until(due.into()).await;
            unstalled(&mut stalled_writer).await;
            to.write_all(&chunk).await?;
        }
        to.shutdown().await
    };
    tokio::try_join!(reading, writing).map(|_| ())
}

/// Cuts every connection of `proxy` (with resets) every `period`, until the
/// returned task is aborted.
pub fn cut_every(
    proxy: std::sync::Arc<FaultProxy>,
    period: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(period).await;
            proxy.cut_all(Cut::Reset);
        }
    })
}
