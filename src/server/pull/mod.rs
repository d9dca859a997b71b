//! Client mode (`mode = "client"`): the hub dials a remote hub, joins its
//! recoverable topics under the client's supervision (backoff, heartbeat,
//! rejoin resuming from the last position), and feeds every broadcast into
//! its own ingest queue, so that an edge hub pulls from a cloud hub into
//! its own sink. With `protocol = "envelope"` the remote is an envelope v1
//! stream instead ([`envelope`]).
//!
//! Each broadcast becomes one item with the id `topic:epoch:sequence`
//! (JetStream deduplicates on it; a new epoch of the remote topic gets new
//! ids). The client drops the replayed duplicates a resume may bring, so
//! across cuts the sink gets every message once. Under
//! `backpressure.on_full = "block"` a full queue pauses the forwarding;
//! meanwhile up to 1,024 broadcasts per topic wait, and past that the
//! client drops them (counted `handler_full`) while its position moves on:
//! a sink stalled that long loses them (a known limit).
//!
//! Each topic's position, the highest sequence below which the sink
//! accepted everything, is kept in the hub's snapshotter (`[snapshot]`), so
//! a restarted hub resumes where its sink stood, not where the client had
//! read to.

mod accepted;
mod envelope;
mod forward;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use actix::{Actor, Addr};
use serde::Serialize;
use serde_json::json;

use self::accepted::{position_key, Acceptance};
use self::forward::{forward, Route};
use crate::client::{
    ClientAuth, ConnectionConfig, ConnectionHandle, ConnectionStatus, Open, OpenProducer,
    PhoenixHandle, ProducerHandle, Switchboard, TokenSource, WireProtocol,
};
use crate::config::ClientModeConfig;
use crate::sequence::{Advance, Position, Snapshotter};
use crate::server::service::IngestParts;

/// Items waiting between one pulled topic (or the envelope stream) and
/// the queue.
const PULL_BUFFER: usize = 1024;

/// The pulling side of a hub in client mode.
pub(crate) struct Pull {
    url: String,
    handle: OnceLock<ConnectionHandle>,
    /// The connection could not even be opened.
    failed: AtomicBool,
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
    /// Opens the connection and starts pulling; call inside a running actix
    /// system.
    pub(crate) fn start(config: &ClientModeConfig, ingest: &IngestParts) -> Arc<Pull> {
        let pull = Arc::new(Pull {
            url: config.url.clone(),
            handle: OnceLock::new(),
            failed: AtomicBool::new(false),
            board: OnceLock::new(),
        });
        let mut connection = ConnectionConfig::new(&config.url);
        connection.protocol = config.protocol;
        connection.reconnect = config.reconnect;
        connection.tls.ca_file = config.ca_file.clone();
        connection.tls.cert_file = config.cert_file.clone();
        connection.tls.key_file = config.key_file.clone();
        if let Some(name) = &config.token_env {
            connection.auth = ClientAuth::Bearer(TokenSource::Env(name.clone()));
        }
        let (config, ingest, started) = (config.clone(), ingest.clone(), pull.clone());
        actix::spawn(async move {
            let board = started
                .board
                .get_or_init(|| Switchboard::builder().arbiters(1).build().start());
            let opened = match config.protocol {
                WireProtocol::Phoenix => pull_topics(board, connection, &config.topics, &ingest)
                    .await
                    .map(|handle| (*handle).clone()),
                WireProtocol::Envelope => pull_envelopes(board, connection, &ingest)
                    .await
                    .map(|handle| (*handle).clone()),
            };
            match opened {
                Ok(handle) => {
                    let _ = started.handle.set(handle);
                }
                Err(error) => {
                    started.failed.store(true, Ordering::Relaxed);
                    tracing::error!(%error, "client mode: cannot open");
                }
            }
        });
        pull
    }

    /// Closes the connection for good: nothing more is pulled.
    pub(crate) async fn stop(&self) {
        if let Some(handle) = self.handle.get() {
            handle.close().await;
        }
    }

    /// The figures `/health` shows.
    pub(crate) fn health(&self) -> PullHealth {
        let status = self.handle.get().map(|handle| handle.status());
        PullHealth {
            remote_url: self.url.clone(),
            connected: status == Some(ConnectionStatus::Connected),
            gave_up: status == Some(ConnectionStatus::Closed)
                || self.failed.load(Ordering::Relaxed),
        }
    }
}

/// Opens a Phoenix connection and pulls each of `topics`, resuming from
/// its stored position.
async fn pull_topics(
    board: &Addr<Switchboard>,
    mut connection: ConnectionConfig,
    topics: &[String],
    ingest: &IngestParts,
) -> Result<PhoenixHandle, String> {
    // The client's own positions (read to) stay in memory; the stored ones
    // (accepted by the sink) seed them before each first join.
    let positions = Snapshotter::in_memory();
    connection.snapshotter = Some(positions.clone());
    let store = ingest.snapshotter.clone();
    let route = Route {
        queue: ingest.queue.clone(),
        admission: ingest.admission.clone(),
        acceptance: Acceptance::new(store.clone()).start(),
    };
    let handle = opened(board.send(Open(connection)).await)?;
    for topic in topics {
        let incoming = handle.incoming(topic, None, PULL_BUFFER);
        actix::spawn(forward(incoming, route.clone()));
        let joining = handle.clone();
        let (store, positions, topic) = (store.clone(), positions.clone(), topic.clone());
        actix::spawn(async move {
            resume_from_stored(&topic, &store, &positions).await;
            match joining.join_recoverable(&topic, json!({}), false).await {
                Ok(_) => tracing::info!(%topic, "client mode: pulling"),
                Err(error) => {
                    let error = crate::report::with_sources(&error);
                    tracing::error!(%topic, %error, "client mode: join failed");
                }
            }
        });
    }
    Ok(handle)
}

/// Opens an envelope v1 connection and ingests every `data` it sends.
async fn pull_envelopes(
    board: &Addr<Switchboard>,
    connection: ConnectionConfig,
    ingest: &IngestParts,
) -> Result<ProducerHandle, String> {
    let handle = opened(board.send(OpenProducer(connection)).await)?;
    let received = handle.receive_data(PULL_BUFFER);
    actix::spawn(envelope::forward(received, ingest.clone()));
    Ok(handle)
}

/// The handle of an opened connection, or why there is none, in words.
fn opened<H, E: std::error::Error + 'static>(
    answer: Result<Result<H, E>, actix::MailboxError>,
) -> Result<H, String> {
    match answer {
        Ok(Ok(handle)) => Ok(handle),
        Ok(Err(error)) => Err(crate::report::with_sources(&error)),
        Err(error) => Err(format!("no switchboard: {error}")),
    }
}

/// Seeds the client's position of `topic` with the stored one, if any.
async fn resume_from_stored(topic: &str, store: &Addr<Snapshotter>, positions: &Addr<Snapshotter>) {
    let stored = store.send(Position {
        channel: position_key(topic),
    });
    let Ok(Some(stored)) = stored.await else {
        return;
    };
    let Some(epoch) = stored.epoch else {
        return;
    };
    tracing::info!(%topic, delivered = stored.delivered, "client mode: resuming from the stored position");
    let _ = positions
        .send(Advance {
            channel: topic.to_owned(),
            delivered: stored.delivered,
            epoch: Some(epoch),
        })
        .await;
}
