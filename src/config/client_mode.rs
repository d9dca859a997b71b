//! `mode` and `[client]`: a hub that also pulls, dialling out to a remote
//! hub's recoverable topics (or to an envelope v1 stream) and feeding what
//! arrives into its own ingest queue and sink.

use serde::{Deserialize, Serialize};

use crate::client::{ReconnectPolicy, WireProtocol};

/// What the hub does besides serving its endpoints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Serve only: data arrives from senders on `/ingest`.
    #[default]
    Server,
    /// Also pull from `[client] url`.
    Client,
}

/// `[client]`: the remote hub to pull from, under the client's supervision
/// (backoff, heartbeat, rejoin and resume from the last position).
///
/// ```
/// let config = switchboard::config::Config::from_toml(
///     "mode = \"client\"\n[client]\nurl = \"wss://cloud.example.com/socket/websocket\"\n\
///      topics = [\"room:feed:edge-7\"]\n[client.reconnect]\nmax_retries = 10\n",
/// )
/// .unwrap();
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientModeConfig {
    /// The remote's socket URL (`ws://` or `wss://`).
    pub url: String,
    /// What the remote speaks: `phoenix` (a hub: its recoverable `topics`
    /// are pulled) or `envelope` (envelope v1: every `data` it sends is
    /// ingested, acked once the sink accepted it).
    pub protocol: WireProtocol,
    /// Recoverable topics to pull (Phoenix); every broadcast on them
    /// becomes one ingested item (id `topic:epoch:sequence`).
    pub topics: Vec<String>,
    /// Environment variable holding the bearer token to present; unset:
    /// none.
    pub token_env: Option<String>,
    /// A PEM file of CA certificates trusted for `wss://` besides the
    /// platform's roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// A PEM certificate chain presented to a remote that asks for one
    /// (mutual TLS); needs `key_file`.
    pub cert_file: Option<std::path::PathBuf>,
    /// The PEM private key of `cert_file`.
    pub key_file: Option<std::path::PathBuf>,
    /// Redial policy (`max_retries = 0` retries forever; past a finite
    /// one `/health` turns unhealthy).
    pub reconnect: ReconnectPolicy,
}
