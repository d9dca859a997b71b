//! Configuration: one serde [`Config`], loadable from TOML or JSON, with
//! defaults and start-up validation whose messages name the offending key.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

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
}

/// Recoverable topics: the hub sequences every broadcast on them and keeps
/// the most recent ones for joins that resume from a position.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryConfig {
    /// Topic patterns (`feed:*` or an exact name); empty = no history.
    pub topics: Vec<String>,
    /// Messages kept per topic (the ring's size).
    pub size: usize,
    /// Bytes kept per topic; the oldest frames go first past it. A replay
    /// is queued at once, so it must stay below `server.max_outbound_bytes`.
    pub max_bytes: usize,
    /// Most topics with a history; past it the least recently published
    /// topic's history is dropped (counted; one without members first) and
    /// restarts in a new epoch.
    pub max_topics: usize,
    /// Most messages one resume replays; a joiner further behind gets the
    /// newest this many with `recovered: false` (a Gap it can fill by
    /// asking for history).
    pub max_replay: usize,
    /// A topic without members and not published to for this long loses its
    /// history (a later join starts a new epoch).
    #[serde(with = "humantime_serde")]
    pub idle_ttl: Duration,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            topics: Vec::new(),
            size: 256,
            max_bytes: 1024 * 1024,
            max_topics: 1000,
            max_replay: 300,
            idle_ttl: Duration::from_secs(300),
        }
    }
}

/// When a snapshot of sequence state is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum SnapshotEvery {
    /// After every change (`"publish"`): each change is written as soon as
    /// the previous write is done (a crash loses at most the writes in flight).
    Publish,
    /// At most this often (`"1s"`): a crash loses at most one interval.
    Interval(Duration),
}

impl TryFrom<String> for SnapshotEvery {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        if text == "publish" {
            return Ok(SnapshotEvery::Publish);
        }
        humantime::parse_duration(&text)
            .map(SnapshotEvery::Interval)
            .map_err(|error| format!("expected \"publish\" or a duration like \"1s\": {error}"))
    }
}

impl From<SnapshotEvery> for String {
    fn from(every: SnapshotEvery) -> String {
        match every {
            SnapshotEvery::Publish => "publish".to_owned(),
            SnapshotEvery::Interval(interval) => humantime::format_duration(interval).to_string(),
        }
    }
}

/// The snapshot file of sequence state.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SnapshotConfig {
    /// The JSON file; none = kept in memory only (lost on restart).
    pub path: Option<std::path::PathBuf>,
    /// The flush policy.
    pub every: SnapshotEvery,
}

impl Default for SnapshotConfig {
    fn default() -> Self {
        SnapshotConfig {
            path: None,
            every: SnapshotEvery::Interval(Duration::from_secs(1)),
        }
    }
}

/// Request/reply on envelope v1 connections, hub to sender.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BidirectionalConfig {
    /// How long a request waits for its reply.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Most requests in flight per connection.
    pub max_concurrent_requests: usize,
}

impl Default for BidirectionalConfig {
    fn default() -> Self {
        BidirectionalConfig {
            request_timeout: Duration::from_secs(5),
            max_concurrent_requests: 100,
        }
    }
}

/// Which sink the ingest queue delivers to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkType {
    /// In the hub's own process (counts what it stores; needs nothing installed).
    #[default]
    #[serde(alias = "log")]
    InProcess,
    /// NATS core publish (no durability).
    Nats,
    /// NATS JetStream: acked once stored, deduplicated by envelope id.
    Jetstream,
}

/// The sink section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SinkConfig {
    /// `in_process` (default), `nats` or `jetstream`.
    #[serde(rename = "type")]
    pub kind: SinkType,
    /// NATS server URL.
    pub url: String,
    /// Subjects.
    pub subjects: Subjects,
    /// JetStream stream name (created when missing).
    pub stream: String,
}

impl Default for SinkConfig {
    fn default() -> Self {
        SinkConfig {
            kind: SinkType::InProcess,
            url: "nats://127.0.0.1:4222".to_owned(),
            subjects: Subjects::default(),
            stream: "FEDERATED".to_owned(),
        }
    }
}

/// The ingest queue between `/ingest` senders and the sink.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackpressureConfig {
    /// Items the queue holds.
    pub queue_size: usize,
    /// What happens when it is full: `drop_oldest`, `drop_newest` or `block`.
    pub on_full: OnFull,
}

impl Default for BackpressureConfig {
    fn default() -> Self {
        BackpressureConfig {
            queue_size: 1000,
            on_full: OnFull::DropOldest,
        }
    }
}

/// The inbound (hub) side.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on, e.g. `127.0.0.1:4000`.
    pub listen: String,
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
    /// Environment variable holding a token that `GET /health` and
    /// `GET /metrics` then require (`Authorization: Bearer`); unset: open.
    pub admin_token_env: Option<String>,
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
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:4000".to_owned(),
            path: "/socket/websocket".to_owned(),
            ingest_path: "/ingest".to_owned(),
            max_connections: 10_000,
            max_frame_bytes: 1024 * 1024,
            max_query_bytes: 4096,
            admin_token_env: None,
            allowed_origins: Vec::new(),
            public_url: None,
            idle_timeout: Duration::from_secs(60),
            max_channels_per_socket: 100,
            max_outbound_frames: 1024,
            max_outbound_bytes: 4 * 1024 * 1024,
            shutdown_batch: 100,
            shutdown_batch_interval: Duration::from_millis(10),
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
        positive("server.max_connections", server.max_connections)?;
        positive("server.max_frame_bytes", server.max_frame_bytes)?;
        positive(
            "server.max_channels_per_socket",
            server.max_channels_per_socket,
        )?;
        positive("server.max_outbound_frames", server.max_outbound_frames)?;
        positive("server.max_outbound_bytes", server.max_outbound_bytes)?;
        positive("server.shutdown_batch", server.shutdown_batch)?;
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
        if self.history.size >= server.max_outbound_frames {
            // A replay is queued at once: it must fit the socket's outbox.
            return Err(invalid(
                "history.size",
                "must be below server.max_outbound_frames",
            ));
        }
        positive("history.max_topics", self.history.max_topics)?;
        positive("history.max_bytes", self.history.max_bytes)?;
        if self.history.max_bytes >= server.max_outbound_bytes {
            return Err(invalid(
                "history.max_bytes",
                "must be below server.max_outbound_bytes",
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

/// The subjects items are published to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Subjects {
    /// Subject of `data` items (default `federated.data`).
    pub data: String,
    /// Subject of control items (default `federated.control`).
    pub control: String,
}

impl Default for Subjects {
    fn default() -> Self {
        Subjects {
            data: "federated.data".to_owned(),
            control: "federated.control".to_owned(),
        }
    }
}

/// What happens when an item arrives at a full queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFull {
    /// Evict the oldest queued item (nacked) to make room.
    #[default]
    DropOldest,
    /// Refuse the arriving item (nacked).
    DropNewest,
    /// Make the sender wait: its socket is not read until there is room.
    Block,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn toml_durations_and_keys() {
        let config = Config::from_toml(
            "[server]\nidle_timeout = \"5s\"\nallowed_origins = [\"*\"]\n[auth]\ntype = \"bearer\"\n",
        )
        .unwrap();
        assert_eq!(config.server.idle_timeout, Duration::from_secs(5));
        assert_eq!(config.auth.kind, AuthType::Bearer);
        config.validate().unwrap();
    }

    #[test]
    fn backpressure_keys() {
        let config =
            Config::from_toml("[backpressure]\nqueue_size = 10\non_full = \"block\"\n").unwrap();
        assert_eq!(config.backpressure.on_full, OnFull::Block);
        let zero = Config::from_toml("[backpressure]\nqueue_size = 0\n").unwrap();
        assert_eq!(
            zero.validate().unwrap_err().to_string(),
            "backpressure.queue_size must be > 0"
        );
        assert!(Config::from_toml("[backpressure]\non_full = \"explode\"\n").is_err());
    }

    #[test]
    fn sink_section() {
        let config = Config::from_toml(
            "[sink]\ntype = \"jetstream\"\nurl = \"nats://127.0.0.1:4333\"\n[sink.subjects]\ndata = \"d\"\n",
        )
        .unwrap();
        assert_eq!(config.sink.kind, SinkType::Jetstream);
        assert_eq!(config.sink.subjects.data, "d");
        assert_eq!(config.sink.subjects.control, "federated.control");
        let log = Config::from_toml("[sink]\ntype = \"log\"\n").unwrap();
        assert_eq!(log.sink.kind, SinkType::InProcess);
    }

    #[test]
    fn json_is_accepted() {
        let config = Config::from_json(r#"{"server":{"max_connections":3}}"#).unwrap();
        assert_eq!(config.server.max_connections, 3);
    }

    #[test]
    fn validation_names_the_key() {
        let config = Config::from_toml("[server]\nmax_connections = 0\n").unwrap();
        let message = config.validate().unwrap_err().to_string();
        assert_eq!(message, "server.max_connections must be > 0");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let message = Config::from_toml("[server]\nmax_conections = 5\n").unwrap_err();
        assert!(message.contains("max_conections"), "{message}");
    }

    #[test]
    fn parse_errors_name_the_key() {
        let message = Config::from_json(r#"{"server":{"idle_timeout":"soon"}}"#).unwrap_err();
        assert!(message.starts_with("server.idle_timeout: "), "{message}");
        let message = Config::from_toml("[server]\nidle_timeout = 5\n").unwrap_err();
        assert!(message.starts_with("server.idle_timeout: "), "{message}");
    }
}
