//! Client mode (`mode = "client"`): the hub dials a remote hub, joins its
//! recoverable topics under the client's supervision (backoff, heartbeat,
//! rejoin resuming from the last position), and feeds every broadcast into
//! its own ingest queue, so that an edge hub pulls from a cloud hub into
//! its own sink.
//!
//! Each broadcast becomes one item with the id `topic:epoch:sequence`
//! (JetStream deduplicates on it; a new epoch of the remote topic gets new
//! ids). The client drops the replayed duplicates a resume may bring, so
//! across cuts the sink gets every message once. Under
//! `backpressure.on_full = "block"` a full queue pauses the forwarding;
//! meanwhile up to 1,024 broadcasts per topic wait, and past that the
//! client drops them (counted `handler_full`) while its position moves on:
//! a sink stalled that long loses them. Positions live in memory: a
//! restarted hub resumes from the remote's history cap, not from where it
//! was. Both are known limits of this first client mode.

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
    /// The connection could not even be opened.
    failed: std::sync::atomic::AtomicBool,
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
            failed: std::sync::atomic::AtomicBool::new(false),
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
                    started
                        .failed
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                    let error = crate::report::with_sources(&error);
                    return tracing::error!(%error, "client mode: cannot open");
                }
                Err(error) => {
                    started
                        .failed
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                    return tracing::error!(%error, "client mode: no switchboard");
                }
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
            gave_up: status == Some(ConnectionStatus::Closed)
                || self.failed.load(std::sync::atomic::Ordering::Relaxed),
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
        let epoch = message.payload.get("epoch").and_then(|e| e.as_str());
        let id = match (epoch, sequence) {
            (Some(epoch), Some(sequence)) => format!("{}:{epoch}:{sequence}", message.topic),
            (None, Some(sequence)) => format!("{}:{sequence}", message.topic),
            // Not a recoverable topic's broadcast: nothing to deduplicate on.
            (_, None) => format!("{}:{:016x}", message.topic, fastrand::u64(..)),
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
