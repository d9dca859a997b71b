//! `[server]` and `[auth]`: the inbound side.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The inbound (hub) side.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on, e.g. `127.0.0.1:4000`.
    pub listen: String,
    /// HTTP worker threads of the hub's own server (`switchboard serve`,
    /// [`HubBuilder::start`](crate::server::HubBuilder::start)); unset:
    /// actix-web's default, one per core. A hub mounted on an app's own
    /// `HttpServer` runs on that server's workers instead.
    pub workers: Option<usize>,
    /// Path of the Phoenix V2 endpoint.
    pub path: String,
    /// Path of the envelope v1 ingest endpoint.
    pub ingest_path: String,
    /// Most sockets open at once; more are refused with 503.
    pub max_connections: usize,
    /// Largest inbound frame; a larger one closes the socket with 1009.
    pub max_frame_bytes: usize,
    /// Longest query string of an upgrade request; longer ones get 414.
    pub max_query_bytes: usize,
    /// Most bytes of request headers (names, values and their separators)
    /// on the hub's routes; more get 431. At most 64 KiB: beyond actix-web's
    /// own 128 KiB buffer a request head is refused before the hub sees it.
    pub max_header_bytes: usize,
    /// Most connections accepted and not upgraded yet (where the hub runs
    /// its own server); past it a new connection is shut at once.
    pub max_pending_upgrades: usize,
    /// A connection must send its request head within this (where the hub
    /// runs its own server); else 408, and it is closed.
    #[serde(with = "humantime_serde")]
    pub upgrade_timeout: Duration,
    /// Environment variable holding a token that `GET /health` and
    /// `GET /metrics` then require (`Authorization: Bearer`); unset: open.
    pub admin_token_env: Option<String>,
    /// Where the hub serves its dashboard, e.g. `/dashboard` (the page, and
    /// its figures at `<path>/state`, behind `admin_token_env` like
    /// `/metrics`). Unset: no dashboard (`serve --dashboard` sets
    /// `/dashboard`).
    pub dashboard: Option<String>,
    /// Origins allowed to connect besides the hub's own: exact entries
    /// (any scheme), or `*` for any. Empty = the hub's own origin only.
    pub allowed_origins: Vec<String>,
    /// The hub's own origin as browsers see it, e.g.
    /// `https://chat.example.com` (behind a proxy). Unset: the address the
    /// server is bound to (on a loopback address, `localhost`, `127.0.0.1`
    /// and `[::1]` at that port). Never the request's `Host` header.
    pub public_url: Option<String>,
    /// A socket with no inbound frame for this long is closed.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// A long-poll session without a poll for this long is closed.
    #[serde(with = "humantime_serde")]
    pub longpoll_window: Duration,
    /// Most topics one socket may join.
    pub max_channels_per_socket: usize,
    /// Most frames waiting to be written to one socket; past this the socket
    /// is closed with 1013 (try again later).
    pub max_outbound_frames: usize,
    /// Most bytes waiting to be written to one socket; same policy.
    pub max_outbound_bytes: usize,
    /// On shutdown, sockets closed per batch.
    pub shutdown_batch: usize,
    /// On shutdown, pause between batches.
    #[serde(with = "humantime_serde")]
    pub shutdown_batch_interval: Duration,
    /// An optional limit on what one socket may send (off by default).
    pub inbound_rate: InboundRateConfig,
    /// TLS of the hub's own server; unset: plain `ws://` and `http://`.
    pub tls: Option<ServerTlsConfig>,
}

/// `[server.tls]`: the hub terminates TLS itself (`wss://`, `https://`).
/// PEM files; a bad or missing one stops the start, naming its key.
///
/// ```
/// let config = switchboard::config::Config::from_toml(
///     "[server.tls]\ncert_file = \"hub.pem\"\nkey_file = \"hub.key\"\n",
/// )
/// .unwrap();
/// assert!(config.server.tls.is_some());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerTlsConfig {
    /// The certificate chain, leaf first.
    pub cert_file: std::path::PathBuf,
    /// The private key of the leaf certificate (PKCS#8, PKCS#1 or SEC1).
    pub key_file: std::path::PathBuf,
    /// When set, clients must present a certificate signed by one of these
    /// CAs (mutual TLS).
    #[serde(default)]
    pub client_ca_file: Option<std::path::PathBuf>,
}

/// `[server.inbound_rate]`: the most one socket may send per second, as a
/// token bucket holding one second's worth (so a burst of up to a second's
/// allowance passes). Pings count as frames. 0 means no limit.
///
/// ```
/// let config = switchboard::config::Config::from_toml(
///     "[server.inbound_rate]\nframes_per_second = 100\non_exceed = \"close\"\n",
/// )
/// .unwrap();
/// assert_eq!(config.server.inbound_rate.frames_per_second, 100);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InboundRateConfig {
    /// Most frames per second (0: no limit).
    pub frames_per_second: u32,
    /// Most bytes per second (0: no limit); at least `max_frame_bytes`
    /// when set, so that every allowed frame can pass.
    pub bytes_per_second: u64,
    /// What becomes of a frame over the limit.
    pub on_exceed: OnExceed,
}

/// What the hub does with a frame over `[server.inbound_rate]`; either way
/// it is counted (`switchboard_frames_rejected_total{reason="rate_limited"}`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnExceed {
    /// Not handled; answered with `rate_limited` where the protocol has an
    /// answer (a Phoenix reply, an ingest nack or error reply); the socket
    /// stays open.
    #[default]
    Refuse,
    /// The socket is closed with 1008 (policy violation).
    Close,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:4000".to_owned(),
            workers: None,
            path: "/socket/websocket".to_owned(),
            ingest_path: "/ingest".to_owned(),
            max_connections: 10_000,
            max_frame_bytes: 1024 * 1024,
            max_query_bytes: 4096,
            max_header_bytes: 16 * 1024,
            max_pending_upgrades: 1024,
            upgrade_timeout: Duration::from_secs(5),
            admin_token_env: None,
            dashboard: None,
            allowed_origins: Vec::new(),
            public_url: None,
            idle_timeout: Duration::from_secs(60),
            longpoll_window: Duration::from_secs(20),
            max_channels_per_socket: 100,
            max_outbound_frames: 1024,
            max_outbound_bytes: 4 * 1024 * 1024,
            shutdown_batch: 100,
            shutdown_batch_interval: Duration::from_millis(10),
            inbound_rate: InboundRateConfig::default(),
            tls: None,
        }
    }
}

/// How a connection proves who it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthType {
    /// No credentials required.
    #[default]
    None,
    /// A bearer token.
    Bearer,
    /// HTTP basic auth.
    Basic,
    /// Several bearer tokens, each naming a principal (`name=token,...`).
    Tokens,
}

/// Credentials for inbound connections. Secrets come from environment
/// variables named here, never from the file itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Which scheme is required.
    #[serde(rename = "type")]
    pub kind: AuthType,
    /// Environment variable holding the bearer token.
    pub bearer_token_env: String,
    /// Environment variable holding the basic-auth user name.
    pub basic_username_env: String,
    /// Environment variable holding the basic-auth password.
    pub basic_password_env: String,
    /// Environment variable holding `name=token` pairs, comma separated
    /// (`type = "tokens"`): each sender is the principal its token names.
    pub tokens_env: String,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            kind: AuthType::None,
            bearer_token_env: "SWITCHBOARD_TOKEN".to_owned(),
            tokens_env: "SWITCHBOARD_TOKENS".to_owned(),
            basic_username_env: "SWITCHBOARD_USERNAME".to_owned(),
            basic_password_env: "SWITCHBOARD_PASSWORD".to_owned(),
        }
    }
}
