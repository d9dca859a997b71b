//! `HubBuilder`: how a [`HubService`] is put together.

use std::sync::Arc;

use super::channel::ChannelRouter;
use super::origin::Origin;
use super::service::HubService;
use super::snapshot;
use crate::config::{Config, Mode};
use crate::sequence::StoreError;
use crate::server::auth::{Credentials, MissingSecret};
use crate::sink::{CountingSink, Sink};

/// Why a hub could not be built from its config.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A secret named in the config is missing.
    #[error(transparent)]
    Secret(#[from] MissingSecret),
    /// `server.public_url` is not an origin (`http` or `https`, a host, an
    /// optional port, no path).
    #[error("server.public_url {url:?} is not an origin like https://chat.example.com")]
    PublicUrl {
        /// The configured value.
        url: String,
    },
    /// The configured snapshot file exists but cannot be read (the error
    /// names the file).
    #[error("snapshot.path")]
    Snapshot(#[source] StoreError),
    /// `[server.tls]` names files that do not make a TLS server.
    #[error(transparent)]
    Tls(#[from] super::tls::TlsError),
    /// `server.workers` (or [`HubBuilder::workers`]) is 0.
    #[error("server.workers must be > 0 (unset: one per core)")]
    Workers,
}

/// Builds a [`HubService`]: the config, then optionally the channels, the
/// credentials and the sink. Defaults: `room:*` and the `[history]` patterns
/// routed to [`RoomChannel`](super::RoomChannel), the credentials named in
/// `[auth]`, and an in-process [`CountingSink`]. `[sink]` is not read here,
/// since connecting to NATS is async: pass
/// [`sink::from_config`](crate::sink::from_config)'s sink to
/// [`sink`](HubBuilder::sink), as `switchboard serve` does.
///
/// ```no_run
/// use switchboard::config::Config;
/// use switchboard::server::{ChannelRouter, HubService};
///
/// # #[actix_web::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut config = Config::default();
/// config.server.listen = "127.0.0.1:0".into();
/// let hub = HubService::builder(&config)
///     .router(ChannelRouter::rooms())
///     .start()?;
/// println!("phoenix.js connects to {}", hub.socket_url());
/// hub.shutdown().await;
/// # Ok(()) }
/// ```
pub struct HubBuilder {
    pub(super) config: Config,
    router: Option<ChannelRouter>,
    credentials: Option<Credentials>,
    admin_token: Option<Vec<u8>>,
    sink: Option<Arc<dyn Sink>>,
}

impl HubService {
    /// Starts building a hub from `config`; see [`HubBuilder`].
    pub fn builder(config: &Config) -> HubBuilder {
        HubBuilder::new(config)
    }
}

impl HubBuilder {
    fn new(config: &Config) -> HubBuilder {
        HubBuilder {
            config: config.clone(),
            router: None,
            credentials: None,
            admin_token: None,
            sink: None,
        }
    }

    /// Which channel handles which topics.
    pub fn router(mut self, router: ChannelRouter) -> HubBuilder {
        self.router = Some(router);
        self
    }

    /// Credentials obtained by the application (a vault, a file) instead of
    /// the environment variables `[auth]` names.
    pub fn credentials(mut self, credentials: Credentials) -> HubBuilder {
        self.credentials = Some(credentials);
        self
    }

    /// A token `GET /health` and `GET /metrics` require
    /// (`Authorization: Bearer`), instead of the one `server.admin_token_env`
    /// names.
    pub fn admin_token(mut self, token: impl Into<Vec<u8>>) -> HubBuilder {
        self.admin_token = Some(token.into());
        self
    }

    /// Where the ingest queue delivers.
    pub fn sink(mut self, sink: Arc<dyn Sink>) -> HubBuilder {
        self.sink = Some(sink);
        self
    }

    /// How many HTTP worker threads [`start`](HubBuilder::start) serves
    /// the hub with, instead of `server.workers` (unset: actix-web's
    /// default, one per core; 0 is refused by the build). Every worker
    /// serves the same hub: one registry, one ingest queue.
    ///
    /// ```no_run
    /// use switchboard::config::Config;
    /// use switchboard::server::HubService;
    ///
    /// # #[actix_web::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let hub = HubService::builder(&Config::default()).workers(2).start()?;
    /// println!("two workers serve {}", hub.socket_url());
    /// # Ok(()) }
    /// ```
    pub fn workers(mut self, count: usize) -> HubBuilder {
        self.config.server.workers = Some(count);
        self
    }

    /// Checks what the build would refuse (secrets, the snapshot file)
    /// without starting anything.
    pub fn check(&self) -> Result<(), BuildError> {
        if self.config.server.workers == Some(0) {
            return Err(BuildError::Workers);
        }
        public_origin(&self.config)?;
        if self.admin_token.is_none() {
            Credentials::admin(&self.config.server)?;
        }
        if self.credentials.is_none() {
            Credentials::from_config(&self.config.auth)?;
        }
        if let Some(tls) = &self.config.server.tls {
            super::tls::server_config(tls)?;
        }
        snapshot::check(&self.config.snapshot).map_err(BuildError::Snapshot)
    }

    /// Builds the hub and starts its actors; mount it with
    /// [`HubService::configure`]. Call inside a running actix system.
    pub fn build(self) -> Result<HubService, BuildError> {
        self.check()?;
        let credentials = match self.credentials {
            Some(credentials) => credentials,
            None => Credentials::from_config(&self.config.auth)?,
        };
        let router = self.router.unwrap_or_else(|| {
            let recoverable = &self.config.history.topics;
            if self.config.presence.rooms {
                ChannelRouter::presence_rooms_with_history(recoverable)
            } else {
                ChannelRouter::rooms_with_history(recoverable)
            }
        });
        let sink = self.sink.unwrap_or_else(|| Arc::new(CountingSink::new()));
        let public = public_origin(&self.config)?;
        let admin = match self.admin_token {
            Some(token) => Some(Credentials::Bearer(token)),
            None => Credentials::admin(&self.config.server)?,
        };
        let service = HubService::assemble(&self.config, router, credentials, sink, public, admin);
        if self.config.mode == Mode::Client {
            service.start_pull(&self.config.client);
        }
        Ok(service)
    }
}

/// `server.public_url` as an origin, when set.
fn public_origin(config: &Config) -> Result<Option<Origin>, BuildError> {
    let Some(url) = &config.server.public_url else {
        return Ok(None);
    };
    match Origin::parse(url) {
        Some(origin) if origin.is_web() => Ok(Some(origin)),
        _ => Err(BuildError::PublicUrl { url: url.clone() }),
    }
}
