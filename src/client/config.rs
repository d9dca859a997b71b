//! Configuration of one outbound connection.

use std::sync::Arc;
use std::time::Duration;

use actix::Addr;

use crate::client::auth::ClientAuth;
use crate::client::backoff::ReconnectPolicy;
use crate::client::tls::TlsOptions;
use crate::sequence::Snapshotter;
use crate::transport::Transport;

/// Extra query parameters, computed again before every dial (PHX-C1).
pub(crate) type ParamsProvider = Arc<dyn Fn() -> Vec<(String, String)> + Send + Sync>;

/// The wire protocol a connection speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireProtocol {
    /// Phoenix Channels V2 (`vsn=2.0.0` is appended to the URL).
    #[default]
    Phoenix,
    /// Envelope v1, the ingest protocol.
    Envelope,
}

/// Everything one connection needs.
#[derive(Clone)]
pub struct ConnectionConfig {
    /// WebSocket URL, e.g. `ws://127.0.0.1:4000/socket/websocket`.
    /// `vsn=2.0.0` is appended on every dial.
    pub url: String,
    /// The protocol spoken.
    pub protocol: WireProtocol,
    /// Query parameters added on every dial.
    pub params: Option<ParamsProvider>,
    /// Credentials presented on every dial.
    pub auth: ClientAuth,
    /// How a `wss://` server's certificate is checked (by the default
    /// transport).
    pub tls: TlsOptions,
    /// What dials: `None` for awc over TCP (and TLS), or another
    /// [`Transport`], such as a
    /// [`MemoryTransport`](crate::transport::MemoryTransport) into a hub of
    /// the same process.
    pub transport: Option<Arc<dyn Transport>>,
    /// Redial policy.
    pub reconnect: ReconnectPolicy,
    /// When true, a failed first dial fails `Open` instead of retrying.
    pub fail_first_connect: bool,
    /// Heartbeat period; no reply within one period drops the socket.
    pub heartbeat_interval: Duration,
    /// Dial (TCP + upgrade) timeout.
    pub connect_timeout: Duration,
    /// Reply timeout of a push, counted from when it is written.
    pub push_timeout: Duration,
    /// Reply timeout of a join.
    pub join_timeout: Duration,
    /// Most requests waiting for replies at once.
    pub max_concurrent_requests: usize,
    /// Most sends buffered per topic while not joined or not connected.
    pub buffer_max_frames: usize,
    /// Most bytes buffered across all topics.
    pub buffer_max_bytes: usize,
    /// How long a buffered send may wait to be written.
    pub buffer_deadline: Duration,
    /// Most frames queued for writing on a live socket.
    pub write_queue_frames: usize,
    /// Most bytes queued for writing on a live socket.
    pub write_queue_bytes: usize,
    /// Largest inbound frame (and reassembled message).
    pub max_frame_bytes: usize,
    /// Where recoverable topics keep their positions (and publishes stamp
    /// their sequences); `None`: an in-memory one per connection, started
    /// when first needed and lost when the process ends.
    pub snapshotter: Option<Addr<Snapshotter>>,
    /// The name publishes are stamped with (`producer`).
    pub producer: String,
}

impl ConnectionConfig {
    /// Defaults for `url`: Phoenix's 30 s heartbeat and 10 s push timeout,
    /// backoff 1 s → 60 s.
    pub fn new(url: impl Into<String>) -> ConnectionConfig {
        ConnectionConfig {
            url: url.into(),
            protocol: WireProtocol::Phoenix,
            params: None,
            auth: ClientAuth::None,
            tls: TlsOptions::default(),
            transport: None,
            reconnect: ReconnectPolicy::default(),
            fail_first_connect: false,
            heartbeat_interval: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            push_timeout: Duration::from_secs(10),
            join_timeout: Duration::from_secs(10),
            max_concurrent_requests: 1024,
            buffer_max_frames: 1024,
            buffer_max_bytes: 4 * 1024 * 1024,
            buffer_deadline: Duration::from_secs(30),
            write_queue_frames: 1024,
            write_queue_bytes: 4 * 1024 * 1024,
            max_frame_bytes: 1024 * 1024,
            snapshotter: None,
            producer: format!("switchboard-{:016x}", fastrand::u64(..)),
        }
    }
}

impl std::fmt::Debug for ConnectionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionConfig")
            .field("url", &self.url)
            .field("auth", &self.auth)
            .field("reconnect", &self.reconnect)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .finish_non_exhaustive()
    }
}
