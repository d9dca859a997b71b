//! Client mode (`mode = "client"`): the hub dials a remote hub, joins its
//! recoverable topics under the client's supervision (backoff, heartbeat,
//! rejoin resuming from the last position), and feeds every broadcast into
//! its own ingest queue, so that an edge hub pulls from a cloud hub into
//! its own sink.
//!
//! Each broadcast becomes one item with the id `topic:sequence` (JetStream
//! deduplicates on it). The client drops the replayed duplicates a resume
//! may bring, so across cuts the sink gets every message once. Under
//! `backpressure.on_full = "block"` a full queue stops the pulling (and the
//! socket is then not read); under the drop policies the queue drops, and
//! counts, as for senders.

use std::sync::{Arc, OnceLock};

use actix::{Actor, Addr};
use bytes::Bytes;
use serde::Serialize;
use serde_json::json;

use crate::client::{
    ClientAuth, ConnectionConfig, ConnectionStatus, Incoming, Open, PhoenixHandle, Switchboard,
    TokenSource,
};
use crate::config::ClientModeConfig;
use crate::ingest::{Ingest, IngestQueue};
use crate::server::service::IngestParts;
use crate::sink::{ItemKind, SinkItem};

/// Items waiting between one pulled topic and the queue.
const PULL_BUFFER: usize = 1024;

/// The pulling side of a hub in client mode.
pub(crate) struct Pull {
    url: String,
    handle: OnceLock<PhoenixHandle>,
    /// Kept so that the switchboard lives as long as the hub.
    board: OnceLock<Addr<Switchboard>>,
}

/// What `/health` says about it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct PullHealth {
    /// The remote hub.
    pub remote_url: String,
    /// A socket to it is up.
    pub connected: bool,
    /// Its redials are exhausted (`client.reconnect.max_retries`).
    pub gave_up: bool,
}

impl Pull {
    /// Opens the connection and starts pulling every topic; call inside a
    /// running actix system.
    pub(crate) fn start(config: &ClientModeConfig, ingest: &IngestParts) -> Arc<Pull> {
        let pull = Arc::new(Pull {
            url: config.url.clone(),
            handle: OnceLock::new(),
            board: OnceLock::new(),
        });
        let mut connection = ConnectionConfig::new(&config.url);
        connection.reconnect = config.reconnect;
        connection.tls.ca_file = config.ca_file.clone();
        if let Some(name) = &config.token_env {
            connection.auth = ClientAuth::Bearer(TokenSource::Env(name.clone()));
        }
        let topics = config.topics.clone();
        let (queue, admission) = (ingest.queue.clone(), ingest.admission.clone());
        let started = pull.clone();
        actix::spawn(async move {
            let board = started.board.get_or_init(|| Switchboard::default().start());
            let handle = match board.send(Open(connection)).await {
                Ok(Ok(handle)) => handle,
                Ok(Err(error)) => {
                    let error = crate::report::with_sources(&error);
                    return tracing::error!(%error, "client mode: cannot open");
                }
                Err(error) => return tracing::error!(%error, "client mode: no switchboard"),
            };
            let _ = started.handle.set(handle.clone());
            for topic in topics {
                let incoming = handle.incoming(&topic, None, PULL_BUFFER);
                actix::spawn(forward(incoming, queue.clone(), admission.clone()));
                let joining = handle.clone();
                actix::spawn(async move {
                    match joining.join_recoverable(&topic, json!({}), false).await {
                        Ok(_) => tracing::info!(%topic, "client mode: pulling"),
                        Err(error) => {
                            let error = crate::report::with_sources(&error);
                            tracing::error!(%topic, %error, "client mode: join failed");
                        }
                    }
                });
            }
        });
        pull
    }

    /// The figures `/health` shows.
    pub(crate) fn health(&self) -> PullHealth {
        let status = self.handle.get().map(|handle| handle.status());
        PullHealth {
            remote_url: self.url.clone(),
            connected: status == Some(ConnectionStatus::Connected),
            gave_up: status == Some(ConnectionStatus::Closed),
        }
    }
}

/// Feeds one topic's broadcasts into the queue, in order, waiting for room
/// under `block`.
async fn forward(
    mut incoming: tokio::sync::mpsc::Receiver<Incoming>,
    queue: Addr<IngestQueue>,
    admission: Option<Arc<tokio::sync::Semaphore>>,
) {
    while let Some(message) = incoming.recv().await {
        let sequence = message.payload.get("sequence").and_then(|s| s.as_u64());
        let id = match sequence {
            Some(sequence) => format!("{}:{sequence}", message.topic),
            None => format!("{}:{}", message.topic, fastrand::u64(..)),
        };
        let permit = match &admission {
            Some(admission) => admission.clone().acquire_owned().await.ok(),
            None => None,
        };
        let item = SinkItem {
            id,
            kind: ItemKind::Data,
            payload: Bytes::from(message.payload.to_string()),
        };
        let entry = Ingest {
            item,
            origin: None,
            permit,
            dedup: None,
        };
        if queue.send(entry).await.is_err() {
            return;
        }
    }
}
