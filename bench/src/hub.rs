//! The switchboard side's server: a `HubService` on an actix-web server of
//! its own thread (one worker), with the bench channel and a counted sink.
//!
//! The server is built here rather than with `switchboard::server::start`
//! so it can run one worker (like the baseline's one server thread) and
//! count upgrade requests as they arrive (the rejoin scenario's dials).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use actix_web::dev::{ServerHandle, Service};
use actix_web::{App, HttpServer};
use anyhow::{anyhow, Context};
use switchboard::config::{ClusterConfig, Config, SinkConfig, SinkType};
use switchboard::server::{ChannelRouter, Credentials, HubService};
use switchboard::sink::CountingSink;
use switchboard::sink::Sink;
use switchboard::sink::Subjects;

use crate::channel::BenchChannel;
use crate::counter::Counter;
use crate::sink::CountedSink;

/// Stream and subjects of the JetStream scenario's switchboard side.
pub const JETSTREAM_STREAM: &str = "BENCH_SWITCHBOARD";

/// Where the hub's ingest queue delivers.
#[derive(Debug, Clone)]
pub enum SinkChoice {
    /// switchboard's in-process sink (`CountingSink`).
    InProcess,
    /// JetStream at this NATS URL.
    JetStream(String),
}

/// A running hub and what the scenarios read from it.
pub struct BenchHub {
    addr: SocketAddr,
    service: HubService,
    handle: ServerHandle,
    thread: Option<JoinHandle<()>>,
    counted: Arc<Counter>,
    ingested: Arc<Counter>,
    upgrades: Arc<Mutex<Vec<Instant>>>,
}

/// The hub's config: the defaults, except limits a benchmark must lift.
pub fn hub_config(listen: SocketAddr) -> Config {
    let mut config = Config::default();
    config.server.listen = listen.to_string();
    // 10,000 idle connections plus warm-up ones (default 10,000).
    config.server.max_connections = 100_000;
    // A fan-out burst of 1,000 broadcasts must fit one socket's queue (default 1,024).
    config.server.max_outbound_frames = 4096;
    // Raw idle clients send nothing while memory is measured (default 60 s).
    config.server.idle_timeout = Duration::from_secs(600);
    config
}

/// What the hub thread hands back once it listens.
type Ready = anyhow::Result<(SocketAddr, HubService, ServerHandle)>;

impl BenchHub {
    /// Starts a hub on `listen` (port 0 picks a free port).
    pub fn start(listen: SocketAddr, sink: SinkChoice) -> anyhow::Result<BenchHub> {
        BenchHub::start_with(listen, sink, None)
    }

    /// Starts a hub that is a node of `cluster` (in-process sink).
    pub fn start_node(listen: SocketAddr, cluster: ClusterConfig) -> anyhow::Result<BenchHub> {
        BenchHub::start_with(listen, SinkChoice::InProcess, Some(cluster))
    }

    /// Starts a hub on `listen`, a cluster node when `cluster` is set.
    fn start_with(
        listen: SocketAddr,
        sink: SinkChoice,
        cluster: Option<ClusterConfig>,
    ) -> anyhow::Result<BenchHub> {
        let counted = Counter::new();
        let ingested = Counter::new();
        let upgrades = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Ready>();
        let parts = (counted.clone(), ingested.clone(), upgrades.clone());
        let thread = std::thread::Builder::new()
            .name("switchboard-hub".to_owned())
            .spawn(move || {
                let system = actix_rt::System::new();
                system.block_on(async move {
                    let (counted, ingested, upgrades) = parts;
                    match serve(listen, sink, cluster, counted, ingested, upgrades).await {
                        Ok((addr, service, handle, server)) => {
                            let _ = ready_tx.send(Ok((addr, service, handle)));
                            let _ = server.await;
                        }
                        Err(error) => {
                            let _ = ready_tx.send(Err(error));
                        }
                    }
                });
            })
            .context("spawning the hub thread")?;
        let (addr, service, handle) = ready_rx
            .recv()
            .map_err(|_| anyhow!("the hub thread ended before listening"))??;
        Ok(BenchHub {
            addr,
            service,
            handle,
            thread: Some(thread),
            counted,
            ingested,
            upgrades,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The Phoenix endpoint, as the supervised client dials it.
    pub fn phoenix_url(&self) -> String {
        format!("ws://{}/socket/websocket", self.addr)
    }

    /// The Phoenix endpoint with `vsn=2.0.0`, for raw and peer clients.
    pub fn phoenix_v2_url(&self) -> String {
        format!("{}?vsn=2.0.0", self.phoenix_url())
    }

    /// The envelope v1 ingest endpoint.
    pub fn ingest_url(&self) -> String {
        format!("ws://{}/ingest", self.addr)
    }

    /// The hub service (broadcasts, registry).
    pub fn service(&self) -> &HubService {
        &self.service
    }

    /// `count` events the bench channel received.
    pub fn counted(&self) -> &Arc<Counter> {
        &self.counted
    }

    /// Items the sink accepted.
    pub fn ingested(&self) -> &Arc<Counter> {
        &self.ingested
    }

    /// When each upgrade request to the Phoenix endpoint arrived.
    pub fn upgrades(&self) -> Vec<Instant> {
        self.upgrades
            .lock()
            .map(|times| times.clone())
            .unwrap_or_default()
    }

    /// Abrupt stop, like a crash: the server stops at once and every socket
    /// drops without a close frame.
    pub async fn kill(mut self) {
        self.handle.stop(false).await;
        self.join();
    }

    /// Waits for the hub thread to end.
    fn join(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for BenchHub {
    fn drop(&mut self) {
        if self.thread.is_some() {
            // The stop command is sent at once; nobody waits for it here.
            drop(self.handle.stop(false));
        }
    }
}

/// Builds the sink, the hub service and its HTTP server (one worker).
async fn serve(
    listen: SocketAddr,
    sink: SinkChoice,
    cluster: Option<ClusterConfig>,
    counted: Arc<Counter>,
    ingested: Arc<Counter>,
    upgrades: Arc<Mutex<Vec<Instant>>>,
) -> anyhow::Result<(SocketAddr, HubService, ServerHandle, actix_web::dev::Server)> {
    let mut config = hub_config(listen);
    config.cluster = cluster;
    let inner: Arc<dyn Sink> = match sink {
        SinkChoice::InProcess => Arc::new(CountingSink::new()),
        SinkChoice::JetStream(url) => {
            let sink_config = SinkConfig {
                kind: SinkType::Jetstream,
                url,
                subjects: Subjects {
                    data: "bench.switchboard.data".to_owned(),
                    control: "bench.switchboard.control".to_owned(),
                },
                stream: JETSTREAM_STREAM.to_owned(),
            };
            switchboard::sink::from_config(&sink_config)
                .await
                .map_err(|error| anyhow!("connecting the JetStream sink: {error}"))?
        }
    };
    let sink = Arc::new(CountedSink::new(inner, ingested));
    let router = ChannelRouter::new().route("bench:*", BenchChannel::new(counted));
    let service = HubService::builder(&config)
        .router(router)
        .credentials(Credentials::Open)
        .sink(sink)
        .build()?;
    let phoenix_path = config.server.path.clone();
    let app_service = service.clone();
    let server = HttpServer::new(move || {
        let upgrades = upgrades.clone();
        let phoenix_path = phoenix_path.clone();
        App::new()
            .wrap_fn(move |request, next| {
                if request.path() == phoenix_path {
                    if let Ok(mut times) = upgrades.lock() {
                        times.push(Instant::now());
                    }
                }
                next.call(request)
            })
            .configure(|cfg| app_service.configure(cfg))
    })
    .workers(1)
    .backlog(4096)
    .disable_signals()
    .shutdown_timeout(1)
    .bind(listen)
    .with_context(|| format!("binding the hub to {listen}"))?;
    let addr = server
        .addrs()
        .first()
        .copied()
        .ok_or_else(|| anyhow!("the hub bound no address"))?;
    let server = server.run();
    let handle = server.handle();
    Ok((addr, service, handle, server))
}
