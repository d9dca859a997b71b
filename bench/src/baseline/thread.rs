//! The body of a bench server's own thread, as the raw baseline and the
//! protocol floor share it: one current-thread runtime, the listener bound
//! and its address reported, then served until shut down.

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Binds `listen`, tells `ready` the address (or why not), and runs
/// `serve(listener)` on a `LocalSet` until it ends or `shutdown` fires.
pub fn serve_on_this_thread<F, Fut>(
    listen: SocketAddr,
    ready: std::sync::mpsc::Sender<anyhow::Result<SocketAddr>>,
    shutdown: oneshot::Receiver<()>,
    serve: F,
) where
    F: FnOnce(TcpListener) -> Fut,
    Fut: Future<Output = ()>,
{
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            let _ = ready.send(Err(error.into()));
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let bound = async {
            let listener = TcpListener::bind(listen)
                .await
                .with_context(|| format!("binding {listen}"))?;
            let addr = listener.local_addr()?;
            anyhow::Ok((listener, addr))
        };
        let listener = match bound.await {
            Ok((listener, addr)) => {
                let _ = ready.send(Ok(addr));
                listener
            }
            Err(error) => {
                let _ = ready.send(Err(error));
                return;
            }
        };
        tokio::select! {
            _ = serve(listener) => {}
            _ = shutdown => {}
        }
    });
    // Dropping the LocalSet drops every socket task: the sockets close.
    drop(local);
}
