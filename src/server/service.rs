//! `HubService`: the hub as an embeddable piece of an actix-web app.

use std::sync::Arc;

use actix::{Actor, Addr};
use actix_web::web;

use super::auth::{Credentials, MissingSecret};
use super::channel::ChannelRouter;
use super::endpoint;
use super::hub::{Drain, Hub};
use super::registry::Registry;
use super::stats::HubStats;
use crate::config::{Config, ServerConfig};
use crate::{health, metrics};

struct HubState {
    config: ServerConfig,
    credentials: Credentials,
    router: ChannelRouter,
    registry: Arc<Registry>,
    stats: Arc<HubStats>,
    hub: Addr<Hub>,
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
        metrics::install();
        let server = config.server.clone();
        let registry = Arc::new(Registry::new(server.max_connections));
        let hub = Hub::new(
            registry.clone(),
            server.shutdown_batch,
            server.shutdown_batch_interval,
        )
        .start();
        HubService {
            state: Arc::new(HubState {
                config: server,
                credentials,
                router,
                registry,
                stats: Arc::new(HubStats::default()),
                hub,
            }),
        }
    }

    /// Mounts the Phoenix endpoint (at `server.path`), `GET /health` and
    /// `GET /metrics`, and makes this service available as `web::Data`.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(web::Data::new(self.clone()))
            .route(
                &self.state.config.path,
                web::get().to(endpoint::phoenix_socket),
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

    /// Refuses new sockets and closes open ones with 1012 in batches.
    pub async fn drain(&self) {
        if self.state.hub.send(Drain { code: 1012 }).await.is_err() {
            // The hub actor is gone (its system stopped): refuse new sockets at least.
            self.state.registry.start_draining();
        }
    }
}
