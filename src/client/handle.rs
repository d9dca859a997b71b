//! `ConnectionHandle`: what every connection handle offers, whatever its protocol:
//! identity, status, events, timers, close and restart.

use std::sync::Arc;

use actix::Recipient;
use tokio::sync::{broadcast, watch};

use crate::client::arbiters::ConnectionArbiters;
use crate::client::events::{Announcer, ConnectEvent, ConnectionStatus};
use crate::client::gauges::TimerGauges;
use crate::client::link::{ForceRestart, Shutdown};

/// Identifies a connection within its switchboard.
pub type ConnectionId = u64;

/// The protocol-independent part of a connection handle.
#[derive(Clone)]
pub struct ConnectionHandle {
    pub(crate) id: ConnectionId,
    pub(crate) url: String,
    pub(crate) shutdown: Recipient<Shutdown>,
    pub(crate) restart: Recipient<ForceRestart>,
    pub(crate) announcer: Announcer,
    pub(crate) gauges: Arc<TimerGauges>,
    /// The switchboard's arbiters, kept running while a handle lives.
    pub(crate) _arbiters: Arc<ConnectionArbiters>,
}

impl ConnectionHandle {
    /// The connection's id.
    pub fn id(&self) -> ConnectionId {
        self.id
    }

    /// The URL it dials.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Current status, without a round trip.
    pub fn status(&self) -> ConnectionStatus {
        self.announcer.status()
    }

    /// A watch that sees every status change.
    pub fn watch_status(&self) -> watch::Receiver<ConnectionStatus> {
        self.announcer.watch_status()
    }

    /// Connect events from now on.
    pub fn events(&self) -> broadcast::Receiver<ConnectEvent> {
        self.announcer.subscribe()
    }

    /// Closes the connection for good.
    pub async fn close(&self) {
        let _ = self.shutdown.send(Shutdown).await;
    }

    /// Restarts the connection actor, as after a crash: the socket is dropped
    /// and redialled.
    pub fn restart(&self) {
        self.restart.do_send(ForceRestart);
    }

    /// Live heartbeat timers (1 while connected).
    pub fn heartbeat_timers(&self) -> i64 {
        self.gauges.heartbeats()
    }

    /// Live dial loops (0 while connected, at most 1 otherwise).
    pub fn dial_loops(&self) -> i64 {
        self.gauges.dial_loops()
    }
}
