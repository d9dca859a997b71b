//! A TCP proxy on 127.0.0.1 that forwards to one upstream and can cut a
//! share of its live connections, for the soak: the clients dial it, it
//! dials the hub.
//!
//! It runs on a thread of its own (a current-thread tokio runtime), so it
//! keeps forwarding whatever the caller's runtime does. A cut is either an
//! abortive close (`SO_LINGER` 0, both peers see a reset) or an orderly one
//! (a FIN each way).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use anyhow::{anyhow, Context};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// How a connection is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// A reset to both sides.
    Reset,
    /// A FIN to both sides.
    Fin,
}

/// The proxy; dropping it stops it and drops every connection.
pub struct CutProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// What the handle and the proxy thread share.
struct Shared {
    upstream: SocketAddr,
    next_id: AtomicU64,
    accepted: AtomicU64,
    /// Live connections, each with the sender that cuts it.
    live: Mutex<HashMap<u64, oneshot::Sender<Cut>>>,
}

impl Shared {
    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<Cut>>> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl CutProxy {
    /// Listens on `127.0.0.1:0` and forwards every connection to `upstream`.
    pub fn start(upstream: SocketAddr) -> anyhow::Result<CutProxy> {
        let shared = Arc::new(Shared {
            upstream,
            next_id: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            live: Mutex::new(HashMap::new()),
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("the proxy's runtime")?;
        let listener =
            std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding the proxy")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (shutdown, stopped) = oneshot::channel();
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("soak-proxy".to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    match TcpListener::from_std(listener) {
                        Ok(listener) => accept(listener, thread_shared, stopped).await,
                        Err(error) => eprintln!("soak proxy: cannot listen: {error}"),
                    }
                })
            })
            .context("spawning the proxy thread")?;
        Ok(CutProxy {
            addr,
            shared,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Cuts each live connection with probability `share`; answers how many.
    pub fn cut_share(&self, share: f64, how: Cut) -> usize {
        let mut live = self.shared.live();
        let chosen: Vec<u64> = live
            .keys()
            .copied()
            .filter(|_| fastrand::f64() < share)
            .collect();
        for id in &chosen {
            if let Some(cut) = live.remove(id) {
                let _ = cut.send(how);
            }
        }
        chosen.len()
    }

    /// Connections forwarded now.
    pub fn live(&self) -> usize {
        self.shared.live().len()
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Accepts until shut down; each connection is forwarded by a task.
async fn accept(listener: TcpListener, shared: Arc<Shared>, mut stopped: oneshot::Receiver<()>) {
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => {
                    shared.accepted.fetch_add(1, Ordering::Relaxed);
                    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
                    let (cut, cut_rx) = oneshot::channel();
                    shared.live().insert(id, cut);
                    tokio::spawn(forward(shared.clone(), id, client, cut_rx));
                }
                Err(error) => {
                    eprintln!("soak proxy: accept failed: {error}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            },
        }
    }
}

/// Forwards one connection until either side ends it or it is cut.
async fn forward(
    shared: Arc<Shared>,
    id: u64,
    mut client: TcpStream,
    mut cut: oneshot::Receiver<Cut>,
) {
    let how = match TcpStream::connect(shared.upstream).await {
        Ok(mut upstream) => {
            let _ = client.set_nodelay(true);
            let _ = upstream.set_nodelay(true);
            let how = tokio::select! {
                how = &mut cut => how.ok(),
                _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => None,
            };
            end(&mut upstream, how).await;
            how
        }
        // The hub is down: the client sees a reset, as if refused.
        Err(_) => Some(Cut::Reset),
    };
    end(&mut client, how).await;
    shared.live().remove(&id);
}

/// Closes `stream` the way `how` says (an orderly close when not cut).
async fn end(stream: &mut TcpStream, how: Option<Cut>) {
    match how {
        Some(Cut::Reset) => {
            let _ = stream.set_zero_linger();
        }
        Some(Cut::Fin) | None => {
            let _ = stream.shutdown().await;
        }
    }
}

/// The proxy's WebSocket URL for `path`.
pub fn ws_url(proxy: &CutProxy, path: &str) -> String {
    format!("ws://{}{path}", proxy.addr())
}

/// A loopback port nobody listens on now (bound, then released).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|error| anyhow!("finding a free port: {error}"))?;
    Ok(listener.local_addr()?.port())
}
