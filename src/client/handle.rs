//! `ConnectionHandle`: what the application holds to use one connection.
//! Cheap to clone; every method is a message to the connection's actors, or a
//! read of state they publish.

use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use serde_json::Value;
use tokio::sync::{broadcast, mpsc, watch};

use super::connection::{Connection, ForceRestart, Shutdown};
use super::correlator::PendingSlots;
use super::error::RequestError;
use super::events::{Announcer, ConnectEvent, Status};
use super::gauges::TimerGauges;
use super::subscription::{Cast, Incoming, Join, Leave, On, Push, PushSink, Subscription};
use crate::protocol::phoenix::Reply;

/// Identifies a connection within its switchboard.
pub type ConnectionId = u64;

/// A handle on one supervised connection.
#[derive(Clone)]
pub struct ConnectionHandle {
    pub(crate) id: ConnectionId,
    pub(crate) url: String,
    pub(crate) connection: Addr<Connection>,
    pub(crate) subscription: Addr<Subscription>,
    pub(crate) announcer: Announcer,
    pub(crate) gauges: Arc<TimerGauges>,
    pub(crate) slots: PendingSlots,
    pub(crate) join_wait: Duration,
}

fn mailbox<T>(
    result: Result<Result<T, RequestError>, actix::MailboxError>,
) -> Result<T, RequestError> {
    result.unwrap_or(Err(RequestError::Closed))
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

    /// Joins `topic` (and keeps it joined across reconnects); answers the
    /// first join reply, ok or error.
    pub async fn join(&self, topic: &str, params: Value) -> Result<Reply, RequestError> {
        let join = Join {
            topic: topic.to_owned(),
            params,
        };
        match tokio::time::timeout(self.join_wait, self.subscription.send(join)).await {
            Ok(answer) => mailbox(answer),
            Err(_) => Err(RequestError::Timeout {
                after: self.join_wait,
            }),
        }
    }

    /// Leaves `topic`; it is not rejoined any more.
    pub async fn leave(&self, topic: &str) -> Result<(), RequestError> {
        mailbox(
            self.subscription
                .send(Leave {
                    topic: topic.to_owned(),
                })
                .await,
        )
    }

    /// Pushes `event` on a joined topic and waits for the reply.
    pub async fn push(
        &self,
        topic: &str,
        event: &str,
        payload: Value,
    ) -> Result<Reply, RequestError> {
        mailbox(
            self.subscription
                .send(Push {
                    topic: topic.to_owned(),
                    event: event.to_owned(),
                    payload,
                    timeout: None,
                })
                .await,
        )
    }

    /// Pushes `event` without waiting for a reply. Answers as soon as it is
    /// written or buffered; errors when it cannot even be queued (buffer
    /// full, topic not joined, connection closed).
    pub async fn send(&self, topic: &str, event: &str, payload: Value) -> Result<(), RequestError> {
        let cast = Cast {
            topic: topic.to_owned(),
            event: event.to_owned(),
            payload,
        };
        mailbox(self.subscription.send(cast).await)
    }

    /// Delivers every message the server sends on `topic` (`event` = None:
    /// all events) into a bounded channel of `capacity`; when the receiver
    /// falls behind, messages are dropped and counted. Registered once, the
    /// handler stays registered once across any number of reconnects.
    pub fn incoming(
        &self,
        topic: &str,
        event: Option<&str>,
        capacity: usize,
    ) -> mpsc::Receiver<Incoming> {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        self.subscription.do_send(On {
            topic: topic.to_owned(),
            event: event.map(str::to_owned),
            sink: PushSink::Channel(sender),
        });
        receiver
    }

    /// Delivers messages on `topic` to an actor (it should set a mailbox
    /// capacity; when full, messages are dropped and counted).
    pub fn on(&self, topic: &str, event: Option<&str>, recipient: actix::Recipient<Incoming>) {
        self.subscription.do_send(On {
            topic: topic.to_owned(),
            event: event.map(str::to_owned),
            sink: PushSink::Actor(recipient),
        });
    }

    /// Closes the connection for good.
    pub async fn close(&self) {
        let _ = self.connection.send(Shutdown).await;
    }

    /// Restarts the connection actor, as after a crash: the socket is dropped
    /// and redialled, every topic rejoined.
    pub fn restart(&self) {
        self.connection.do_send(ForceRestart);
    }

    /// Live heartbeat timers (1 while connected).
    pub fn heartbeat_timers(&self) -> i64 {
        self.gauges.heartbeats()
    }

    /// Live dial loops (0 while connected, at most 1 otherwise).
    pub fn dial_loops(&self) -> i64 {
        self.gauges.dial_loops()
    }

    /// Requests waiting for replies now.
    pub fn pending_requests(&self) -> usize {
        self.slots.in_use()
    }
}
