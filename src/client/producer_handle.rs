//! `ProducerHandle`: what the application holds to send data over an
//! envelope v1 connection (the ingest client).

use std::sync::Arc;

use actix::Addr;
use serde_json::Value;
use tokio::sync::{broadcast, watch};

use super::connection::{Connection, Shutdown};
use super::error::RequestError;
use super::events::{Announcer, ConnectEvent, Status};
use super::gauges::TimerGauges;
use super::handle::ConnectionId;
use super::producer::{Producer, Request, SendData};
use crate::protocol::envelope::Envelope;

/// A handle on one supervised envelope v1 connection.
#[derive(Clone)]
pub struct ProducerHandle {
    pub(crate) id: ConnectionId,
    pub(crate) connection: Addr<Connection>,
    pub(crate) producer: Addr<Producer>,
    pub(crate) announcer: Announcer,
    pub(crate) gauges: Arc<TimerGauges>,
}

fn mailbox<T>(
    result: Result<Result<T, RequestError>, actix::MailboxError>,
) -> Result<T, RequestError> {
    result.unwrap_or(Err(RequestError::Closed))
}

impl ProducerHandle {
    /// The connection's id.
    pub fn id(&self) -> ConnectionId {
        self.id
    }

    /// Current status, without a round trip.
    pub fn status(&self) -> Status {
        self.announcer.status()
    }

    /// A watch that sees every status change.
    pub fn watch_status(&self) -> watch::Receiver<Status> {
        self.announcer.watch_status()
    }

    /// Connect events from now on.
    pub fn events(&self) -> broadcast::Receiver<ConnectEvent> {
        self.announcer.subscribe()
    }

    /// Sends one data envelope and waits until the hub acked it. It is kept
    /// (and resent after a reconnect) until then, or until the buffer deadline.
    pub async fn send_data(&self, payload: Value) -> Result<(), RequestError> {
        let send = SendData {
            payload,
            wait_for_ack: true,
        };
        mailbox(self.producer.send(send).await)
    }

    /// Sends one data envelope without waiting for its ack (it is still
    /// resent after a reconnect until acked).
    pub async fn send(&self, payload: Value) -> Result<(), RequestError> {
        let send = SendData {
            payload,
            wait_for_ack: false,
        };
        mailbox(self.producer.send(send).await)
    }

    /// Sends a request and waits for the correlated reply.
    pub async fn request(&self, method: &str, params: Value) -> Result<Envelope, RequestError> {
        let request = Request {
            method: method.to_owned(),
            params,
        };
        mailbox(self.producer.send(request).await)
    }

    /// Closes the connection for good.
    pub async fn close(&self) {
        let _ = self.connection.send(Shutdown).await;
    }

    /// Live heartbeat timers (1 while connected).
    pub fn heartbeat_timers(&self) -> i64 {
        self.gauges.heartbeats()
    }
}
