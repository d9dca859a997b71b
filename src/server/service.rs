//! `HubService`: the hub as an embeddable piece of an actix-web app.

use std::sync::Arc;

use actix::{Actor, Addr};
use actix_web::web;

use super::auth::{Credentials, MissingSecret};
use super::channel::ChannelRouter;
use super::endpoint;
use super::history::History;
use super::hub::{Drain, Hub};
use super::registry::Registry;
use super::registry::{SenderRequest, SessionId};
use super::snapshot;
use super::stats::HubStats;
use crate::client::RequestError;
use crate::config::{BidirectionalConfig, Config, ServerConfig};
use crate::ingest::{
    Dedup, Drain as IngestDrain, DrainReport, IngestQueue, IngestStats, QueueConfig,
};
use crate::protocol::envelope::Envelope;
use crate::sequence::Snapshotter;
use crate::sink::in_process::CountingSink;
use crate::sink::Sink;
use crate::{health, metrics};
use tokio::sync::Semaphore;

struct HubState {
    config: ServerConfig,
    bidirectional: BidirectionalConfig,
    ingest: IngestParts,
    credentials: Credentials,
    router: ChannelRouter,
    registry: Arc<Registry>,
    stats: Arc<HubStats>,
    hub: Addr<Hub>,
}

/// The ingest queue of a hub, and what senders need to reach it.
#[derive(Clone)]
pub struct IngestParts {
    /// The queue actor.
    pub queue: Addr<IngestQueue>,
    /// Under `block`, its admission semaphore.
    pub admission: Option<Arc<Semaphore>>,
    /// Its counters.
    pub stats: Arc<IngestStats>,
    /// The duplicate filter of sequenced messages (SEQ-9).
    pub dedup: Arc<Dedup>,
    /// Where ingest high-water marks are persisted.
    pub snapshotter: Addr<Snapshotter>,
}

/// A hub: its config, credentials, channels, directory, counters and actor.
/// Clone it into every actix-web worker and mount it with [`HubService::configure`].
#[derive(Clone)]
pub struct HubService {
    state: Arc<HubState>,
}

impl HubService {
    /// Builds the hub and starts its actor. Call inside a running actix system.
    pub fn new(config: &Config, router: ChannelRouter) -> Result<HubService, MissingSecret> {
        let credentials = Credentials::from_config(&config.auth)?;
        Ok(HubService::with_credentials(config, router, credentials))
    }

    /// Like [`HubService::new`], with credentials obtained by the application
    /// (a vault, a file) instead of the environment variables `config.auth` names.
    pub fn with_credentials(
        config: &Config,
        router: ChannelRouter,
        credentials: Credentials,
    ) -> HubService {
        HubService::with_sink(config, router, credentials, Arc::new(CountingSink::new()))
    }

    /// A hub whose ingest queue delivers to `sink`.
    pub fn with_sink(
        config: &Config,
        router: ChannelRouter,
        credentials: Credentials,
        sink: Arc<dyn Sink>,
    ) -> HubService {
        metrics::install();
        let server = config.server.clone();
        let registry = Arc::new(
            Registry::new(server.max_connections).with_history(History::new(&config.history)),
        );
        let hub = Hub::new(
            registry.clone(),
            server.shutdown_batch,
            server.shutdown_batch_interval,
        )
        .start();
        let queue = IngestQueue::new(
            QueueConfig {
                queue_size: config.backpressure.queue_size,
                on_full: config.backpressure.on_full,
            },
            sink,
        );
        let (snapshotter, marks) = snapshot::open(&config.snapshot);
        let ingest = IngestParts {
            admission: queue.admission(),
            stats: queue.stats(),
            queue: queue.start(),
            dedup: Dedup::new(marks, Some(snapshotter.clone())),
            snapshotter,
        };
        HubService {
            state: Arc::new(HubState {
                config: server,
                bidirectional: config.bidirectional,
                ingest,
                credentials,
                router,
                registry,
                stats: Arc::new(HubStats::default()),
                hub,
            }),
        }
    }

    /// Mounts the Phoenix endpoint (at `server.path`), the ingest endpoint
    /// (at `server.ingest_path`), `GET /health` and
    /// `GET /metrics`, and makes this service available as `web::Data`.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(web::Data::new(self.clone()))
            .route(
                &self.state.config.path,
                web::get().to(endpoint::phoenix_socket),
            )
            .route(
                &self.state.config.ingest_path,
                web::get().to(endpoint::ingest_socket),
            )
            .route("/health", web::get().to(health::health))
            .route("/metrics", web::get().to(metrics::render));
    }

    /// The hub actor: message it `Broadcast` from any handler.
    pub fn hub(&self) -> &Addr<Hub> {
        &self.state.hub
    }

    /// The shared directory (membership, connection count).
    pub fn registry(&self) -> &Arc<Registry> {
        &self.state.registry
    }

    /// Settings of the hub's requests to ingest senders.
    pub fn bidirectional(&self) -> BidirectionalConfig {
        self.state.bidirectional
    }

    /// Sends a request to ingest sender `session` and waits for its reply.
    pub async fn request_sender(
        &self,
        session: SessionId,
        method: &str,
        params: serde_json::Value,
    ) -> Result<Envelope, RequestError> {
        let sender = self
            .state
            .registry
            .sender(session)
            .ok_or(RequestError::Closed)?;
        let request = SenderRequest {
            method: method.to_owned(),
            params,
        };
        sender
            .send(request)
            .await
            .unwrap_or(Err(RequestError::Closed))
    }

    /// The ingest queue and its counters.
    pub fn ingest(&self) -> &IngestParts {
        &self.state.ingest
    }

    /// The hub's counters.
    pub fn stats(&self) -> &Arc<HubStats> {
        &self.state.stats
    }

    /// The server section of the config in force.
    pub fn config(&self) -> &ServerConfig {
        &self.state.config
    }

    pub(crate) fn credentials(&self) -> &Credentials {
        &self.state.credentials
    }

    pub(crate) fn router(&self) -> &ChannelRouter {
        &self.state.router
    }

    /// Refuses new sockets, closes open ones with 1012 in batches, then lets
    /// the ingest queue deliver what it holds (bounded by `timeout`).
    pub async fn drain_all(&self, timeout: std::time::Duration) -> Option<DrainReport> {
        self.drain().await;
        self.state
            .ingest
            .queue
            .send(IngestDrain { timeout })
            .await
            .ok()
    }

    /// Refuses new sockets and closes open ones with 1012 in batches.
    pub async fn drain(&self) {
        if self.state.hub.send(Drain { code: 1012 }).await.is_err() {
            // The hub actor is gone (its system stopped): refuse new sockets at least.
            self.state.registry.start_draining();
        }
    }
}
