//! Running a hub as a server of its own (what `switchboard serve` does).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer};

use super::builder::{BuildError, HubBuilder};
use super::http::admission::{headers_fit, refused};
use super::http::pending::{PendingUpgrade, PendingUpgrades, RefusedConnection};
use super::service::HubService;
use super::stats::Refusal;
use super::tls::server_config;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use futures_util::future::{ready, Either};

/// How long a connection may stay open after its socket closed.
pub(crate) const CLOSE_LINGER: Duration = Duration::from_millis(50);

/// How long a shutdown waits for drained sockets to go before stopping anyway.
const DRAIN_WAIT: Duration = Duration::from_secs(5);

/// Why a hub could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The config does not make a hub.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The listen address could not be bound.
    #[error("cannot listen on {listen}")]
    Bind {
        /// The configured address.
        listen: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A hub serving on its own HTTP server; start one with
/// [`HubBuilder::start`](super::HubBuilder::start).
pub struct RunningHub {
    service: HubService,
    addr: SocketAddr,
    tls: bool,
    handle: ServerHandle,
    server: actix_web::rt::task::JoinHandle<std::io::Result<()>>,
}

/// What every request on the hub's own server goes through first: its
/// connection's first head frees its pending place; a connection refused
/// at accept, or headers past the cap, are answered here (on every route).
fn first_checks(req: &ServiceRequest, service: &HubService) -> Option<Refusal> {
    if let Some(place) = req.conn_data::<PendingUpgrade>() {
        place.head_received();
    }
    if req.conn_data::<RefusedConnection>().is_some() {
        return Some(Refusal::PendingUpgrades);
    }
    headers_fit(req.headers(), service).err()
}

impl HubBuilder {
    /// Builds the hub and serves it on an HTTP server of its own at
    /// `server.listen` (port 0 picks a free port). Call inside a running
    /// actix system.
    pub fn start(self) -> Result<RunningHub, StartError> {
        let listen = self.config.server.listen.clone();
        RunningHub::serve(self.build()?, &listen)
    }
}

impl RunningHub {
    /// Runs `service` on an HTTP server of its own bound to `listen`.
    pub(crate) fn serve(service: HubService, listen: &str) -> Result<RunningHub, StartError> {
        let app_service = service.clone();
        let config = service.config();
        let pending = PendingUpgrades::new(config.max_pending_upgrades, service.stats().clone());
        let tls = config
            .tls
            .as_ref()
            .map(server_config)
            .transpose()
            .map_err(BuildError::Tls)?;
        let server = HttpServer::new(move || {
            let gate_service = app_service.clone();
            App::new()
                .wrap_fn(move |req, routes| match first_checks(&req, &gate_service) {
                    Some(refusal) => {
                        let answered = req.into_response(refused(refusal));
                        Either::Left(ready(Ok(answered.map_into_boxed_body())))
                    }
                    None => {
                        let handled = routes.call(req);
                        Either::Right(async move {
                            handled.await.map(ServiceResponse::map_into_boxed_body)
                        })
                    }
                })
                .configure(|cfg| app_service.configure(cfg))
        })
        .disable_signals()
        .shutdown_timeout(2)
        .client_request_timeout(config.upgrade_timeout)
        // Once a socket's close frames are exchanged the connection ends
        // within this (actix-web's default, 1 s, kept browsers waiting).
        .client_disconnect_timeout(CLOSE_LINGER)
        .on_connect(move |io, data| pending.on_connect(io, data));
        let server = match config.workers {
            Some(count) => server.workers(count),
            None => server,
        };
        let secure = tls.is_some();
        let server = match tls {
            Some(tls) => server.bind_rustls_0_23(listen, tls),
            None => server.bind(listen),
        }
        .map_err(|source| StartError::Bind {
            listen: listen.to_owned(),
            source,
        })?;
        let addr = server
            .addrs()
            .first()
            .copied()
            .ok_or_else(|| StartError::Bind {
                listen: listen.to_owned(),
                source: std::io::Error::other("no address bound"),
            })?;
        let server = server.run();
        let handle = server.handle();
        tracing::info!(%addr, path = %service.config().path, tls = secure, "hub listening");
        Ok(RunningHub {
            service,
            addr,
            tls: secure,
            handle,
            server: actix_web::rt::spawn(server),
        })
    }
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The hub, for broadcasting and reading counters.
    pub fn service(&self) -> &HubService {
        &self.service
    }

    /// `ws://addr/path` (`wss://` with `[server.tls]`), the URL phoenix.js
    /// connects to (it adds `vsn` itself).
    pub fn socket_url(&self) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        format!("{scheme}://{}{}", self.addr, self.service.config().path)
    }

    /// Graceful stop: refuse new sockets, close open ones with 1012 in
    /// batches, wait (bounded) for them to go, then stop the HTTP server.
    pub async fn shutdown(self) {
        if let Some(report) = self.service.drain_all(DRAIN_WAIT).await {
            tracing::info!(
                delivered = report.delivered,
                undelivered = report.undelivered,
                "ingest queue drained"
            );
        }
        let deadline = Instant::now() + DRAIN_WAIT;
        while self.service.connections() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let left = self.service.connections();
        if left > 0 {
            tracing::warn!(left, "sockets still open after the drain; stopping anyway");
        }
        self.handle.stop(true).await;
        let _ = self.server.await;
    }

    /// Abrupt stop: the HTTP server stops at once, sockets drop without a
    /// close frame (in client mode, the connection to the remote hub too).
    pub async fn kill(self) {
        self.service.stop_pulling().await;
        self.handle.stop(false).await;
        let _ = self.server.await;
    }
}
