//! Configuration: one serde [`Config`], loadable from TOML or JSON, with
//! defaults and start-up validation whose messages name the offending key.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

mod client_mode;
mod cluster;
mod history;
mod ingest;
mod presence;
mod server;

pub use client_mode::{ClientModeConfig, Mode};
pub use cluster::ClusterConfig;
pub use history::{HistoryConfig, SnapshotConfig, SnapshotEvery};
pub use ingest::{BackpressureConfig, BidirectionalConfig, OnFull, SinkConfig, SinkType, Subjects};
pub use presence::PresenceConfig;
pub use server::{
    AuthConfig, AuthType, InboundRateConfig, OnExceed, ServerConfig, ServerTlsConfig,
};

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}")]
    Read {
        /// The file's path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or JSON for this schema.
    #[error("cannot parse config file {path}: {message}")]
    Parse {
        /// The file's path.
        path: String,
        /// What the parser said (it names the key where it can).
        message: String,
    },
    /// A value is out of its allowed range.
    #[error("{key} {problem}")]
    Invalid {
        /// Dotted path of the key, e.g. `server.max_connections`.
        key: &'static str,
        /// What is wrong with it, e.g. `must be > 0`.
        problem: String,
    },
}

/// The whole configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `server` (the default) or `client`: also pull from `[client]`.
    pub mode: Mode,
    /// The inbound side: listen address, endpoint, limits.
    pub server: ServerConfig,
    /// How inbound connections authenticate.
    pub auth: AuthConfig,
    /// The ingest queue.
    pub backpressure: BackpressureConfig,
    /// Where ingested data goes.
    pub sink: SinkConfig,
    /// Requests the hub sends to ingest senders.
    pub bidirectional: BidirectionalConfig,
    /// Which hub topics keep a replayable history (resume from sequence).
    pub history: HistoryConfig,
    /// Where sequence state (ingest high-water marks) is persisted.
    pub snapshot: SnapshotConfig,
    /// Presence bounds, and whether the default rooms track members.
    pub presence: PresenceConfig,
    /// The remote hub pulled from under `mode = "client"`.
    pub client: ClientModeConfig,
    /// Makes the hub a node of a cluster over NATS JetStream; none (the
    /// default) is one node on its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterConfig>,
}

impl Config {
    /// Reads a file: `.json` as JSON, anything else as TOML; then validates.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        let is_json = path.extension().is_some_and(|ext| ext == "json");
        let config = if is_json {
            Config::from_json(&text)
        } else {
            Config::from_toml(&text)
        };
        config
            .map_err(|message| ConfigError::Parse {
                path: shown,
                message,
            })
            .and_then(|config| config.validated())
    }

    /// Parses TOML text (not yet validated).
    pub fn from_toml(text: &str) -> Result<Config, String> {
        serde_path_to_error::deserialize(toml::Deserializer::new(text)).map_err(keyed)
    }

    /// Parses JSON text (not yet validated).
    pub fn from_json(text: &str) -> Result<Config, String> {
        let mut json = serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(&mut json).map_err(keyed)
    }

    /// Checks every value; the error names the first bad key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let server = &self.server;
        if server.workers == Some(0) {
            return Err(invalid(
                "server.workers",
                "must be > 0 (unset: one per core)",
            ));
        }
        positive("server.max_connections", server.max_connections)?;
        positive("server.max_frame_bytes", server.max_frame_bytes)?;
        positive(
            "server.max_channels_per_socket",
            server.max_channels_per_socket,
        )?;
        positive("server.max_outbound_frames", server.max_outbound_frames)?;
        positive("server.max_outbound_bytes", server.max_outbound_bytes)?;
        positive("server.shutdown_batch", server.shutdown_batch)?;
        positive("server.max_pending_upgrades", server.max_pending_upgrades)?;
        if server.upgrade_timeout.is_zero() {
            return Err(invalid("server.upgrade_timeout", "must be > 0"));
        }
        if !(1..=64 * 1024).contains(&server.max_header_bytes) {
            return Err(invalid(
                "server.max_header_bytes",
                "must be between 1 and 65536",
            ));
        }
        let rate = &server.inbound_rate;
        if rate.bytes_per_second > 0 && rate.bytes_per_second < server.max_frame_bytes as u64 {
            return Err(invalid(
                "server.inbound_rate.bytes_per_second",
                "must be 0 (no limit) or at least server.max_frame_bytes",
            ));
        }
        if server.idle_timeout.is_zero() {
            return Err(invalid("server.idle_timeout", "must be > 0"));
        }
        if !server.path.starts_with('/') {
            return Err(invalid("server.path", "must start with '/'"));
        }
        if !server.ingest_path.starts_with('/') || server.ingest_path == server.path {
            return Err(invalid(
                "server.ingest_path",
                "must start with '/' and differ from server.path",
            ));
        }
        positive("backpressure.queue_size", self.backpressure.queue_size)?;
        positive(
            "bidirectional.max_concurrent_requests",
            self.bidirectional.max_concurrent_requests,
        )?;
        if self.bidirectional.request_timeout.is_zero() {
            return Err(invalid("bidirectional.request_timeout", "must be > 0"));
        }
        positive("history.size", self.history.size)?;
        positive(
            "presence.max_keys_per_topic",
            self.presence.max_keys_per_topic,
        )?;
        positive(
            "presence.max_metas_per_key",
            self.presence.max_metas_per_key,
        )?;
        positive("presence.max_meta_bytes", self.presence.max_meta_bytes)?;
        if self.history.size >= server.max_outbound_frames {
            // A replay is queued at once: it must fit the socket's outbox.
            return Err(invalid(
                "history.size",
                "must be below server.max_outbound_frames",
            ));
        }
        if self.history.max_replay > server.max_outbound_frames / 2 {
            // One resume's replay must fit the half of the outbox a socket
            // may fill before it is no longer read.
            return Err(invalid(
                "history.max_replay",
                "must be at most half of server.max_outbound_frames",
            ));
        }
        positive("history.max_topics", self.history.max_topics)?;
        positive("history.max_request", self.history.max_request)?;
        if self.history.max_request > server.max_outbound_frames / 2 {
            return Err(invalid(
                "history.max_request",
                "must be at most half of server.max_outbound_frames",
            ));
        }
        positive("history.max_bytes", self.history.max_bytes)?;
        if self.history.max_bytes > server.max_outbound_bytes / 2 {
            // A replay must fit the half of the outbox a socket may fill
            // before it is no longer read.
            return Err(invalid(
                "history.max_bytes",
                "must be at most half of server.max_outbound_bytes",
            ));
        }
        if self.snapshot.every == SnapshotEvery::Interval(Duration::ZERO) {
            return Err(invalid("snapshot.every", "must be \"publish\" or > 0"));
        }
        if self.sink.kind != SinkType::InProcess {
            non_empty("sink.url", &self.sink.url)?;
            non_empty("sink.subjects.data", &self.sink.subjects.data)?;
            non_empty("sink.subjects.control", &self.sink.subjects.control)?;
        }
        if server.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(invalid(
                "server.listen",
                "must be an address like 127.0.0.1:4000",
            ));
        }
        if self.mode == Mode::Client {
            let client = &self.client;
            if !(client.url.starts_with("ws://") || client.url.starts_with("wss://")) {
                return Err(invalid(
                    "client.url",
                    "must be a ws:// or wss:// URL when mode = \"client\"",
                ));
            }
            let phoenix = client.protocol == crate::client::WireProtocol::Phoenix;
            if phoenix && client.topics.is_empty() {
                return Err(invalid("client.topics", "must name at least one topic"));
            }
            if !phoenix && !client.topics.is_empty() {
                return Err(invalid(
                    "client.topics",
                    "an envelope stream has no topics: leave it out",
                ));
            }
            client
                .reconnect
                .validate("")
                .map_err(|problem| invalid("client.reconnect", &problem))?;
        }
        if let Some((key, problem)) = self.cluster.as_ref().and_then(ClusterConfig::problem) {
            return Err(invalid(key, &problem));
        }
        let auth = &self.auth;
        match auth.kind {
            AuthType::None => {}
            AuthType::Bearer => non_empty("auth.bearer_token_env", &auth.bearer_token_env)?,
            AuthType::Basic => {
                non_empty("auth.basic_username_env", &auth.basic_username_env)?;
                non_empty("auth.basic_password_env", &auth.basic_password_env)?;
            }
            AuthType::Tokens => non_empty("auth.tokens_env", &auth.tokens_env)?,
        }
        Ok(())
    }

    /// Validates and returns self.
    pub fn validated(self) -> Result<Config, ConfigError> {
        self.validate().map(|()| self)
    }
}

/// Prefixes a parse error with the dotted path of the key it happened at.
fn keyed<E: std::fmt::Display>(error: serde_path_to_error::Error<E>) -> String {
    let path = error.path().to_string();
    let inner = error.into_inner().to_string();
    let inner = inner.trim();
    if path == "." {
        inner.to_owned()
    } else {
        format!("{path}: {inner}")
    }
}

fn invalid(key: &'static str, problem: &str) -> ConfigError {
    ConfigError::Invalid {
        key,
        problem: problem.to_owned(),
    }
}

fn positive(key: &'static str, value: usize) -> Result<(), ConfigError> {
    if value == 0 {
        return Err(invalid(key, "must be > 0"));
    }
    Ok(())
}

fn non_empty(key: &'static str, value: &str) -> Result<(), ConfigError> {
    if value.trim().is_empty() {
        return Err(invalid(key, "must not be empty"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
