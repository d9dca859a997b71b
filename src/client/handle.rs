//! `ConnectionHandle`: what the application holds to use one connection.
//! Cheap to clone; every method is a message to the connection's actors, or a
//! read of state they publish.

use std::ops::Deref;
use std::time::Duration;

use actix::Addr;
use serde_json::Value;
use tokio::sync::mpsc;

use super::correlator::PendingSlots;
use super::error::RequestError;
use super::link_handle::{answered, LinkHandle};
use super::subscription::{Cast, Incoming, Join, Leave, On, Push, PushSink, Subscription};
use crate::protocol::phoenix::Reply;

/// A handle on one supervised Phoenix connection. The methods of
/// [`LinkHandle`] (status, events, close ...) are available through `Deref`.
#[derive(Clone)]
pub struct ConnectionHandle {
    pub(crate) link: LinkHandle,
    pub(crate) subscription: Addr<Subscription>,
    pub(crate) slots: PendingSlots,
    pub(crate) join_wait: Duration,
}

impl Deref for ConnectionHandle {
    type Target = LinkHandle;

    fn deref(&self) -> &LinkHandle {
        &self.link
    }
}

impl ConnectionHandle {
    /// Joins `topic` (and keeps it joined across reconnects); answers the
    /// first join reply, ok or error.
    pub async fn join(&self, topic: &str, params: Value) -> Result<Reply, RequestError> {
        let join = Join {
            topic: topic.to_owned(),
            params,
        };
        match tokio::time::timeout(self.join_wait, self.subscription.send(join)).await {
            Ok(answer) => answered(answer),
            Err(_) => Err(RequestError::Timeout {
                after: self.join_wait,
            }),
        }
    }

    /// Leaves `topic`; it is not rejoined any more.
    pub async fn leave(&self, topic: &str) -> Result<(), RequestError> {
        answered(
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
        answered(
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
        answered(self.subscription.send(cast).await)
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

    /// Requests waiting for replies now.
    pub fn pending_requests(&self) -> usize {
        self.slots.in_use()
    }
}
