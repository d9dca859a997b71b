//! `PhoenixHandle`: what the application holds to use one connection.
//! Cheap to clone; every method is a message to the connection's actors, or a
//! read of state they publish.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::client::phoenix::aspect::{self, SchemaCheck};
use crate::client::phoenix::direct::DirectWriters;
use crate::client::phoenix::recovery::TopicRecovery;
use crate::client::positions::stamp;
use crate::client::positions::Positions;
use crate::client::refs::RefCounter;
use crate::protocol::content::{Causation, ContentEnvelope};
use crate::sequence::Position;
use crate::transport::correlator::RequestSlots;

use crate::client::error::{
    ConnectionClosed, HistoryError, JoinError, PublishError, PushError, SendError,
};
use crate::client::failure::answered;
use crate::client::handle::ConnectionHandle;
use crate::client::phoenix::presence::TopicPresence;
use crate::client::phoenix::subscription::refusal_reason;
use crate::client::phoenix::subscription::{
    Cast, Incoming, Join, Leave, On, Push, PushSink, Subscription,
};
use crate::protocol::history::{HistoryPage, HistoryQuery, HISTORY_EVENT};
use crate::protocol::phoenix::{Reply, ReplyStatus};
use crate::protocol::resume::is_unrecovered;
use crate::protocol::Payload;

/// A handle on one supervised Phoenix connection. The methods of
/// [`ConnectionHandle`] (status, events, close ...) are available through `Deref`.
///
/// ```no_run
/// # async fn example(connection: switchboard::client::PhoenixHandle) -> Result<(), Box<dyn std::error::Error>> {
/// use serde_json::json;
///
/// connection.join("room:lobby", json!({})).await?;
/// let reply = connection.push("room:lobby", "ping", json!({"n": 1})).await?; // correlated
/// connection.send("room:lobby", "typing", json!({})).await?; // fire and forget
/// let mut news = connection.incoming("room:lobby", Some("news"), 256); // bounded
/// while let Some(push) = news.recv().await {
///     println!("{} {}", push.event, push.payload);
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PhoenixHandle {
    pub(crate) link: ConnectionHandle,
    pub(crate) subscription: Addr<Subscription>,
    pub(crate) slots: RequestSlots,
    pub(crate) join_wait: Duration,
    pub(crate) positions: Positions,
    pub(crate) producer: Arc<str>,
    pub(crate) publish_order: Arc<tokio::sync::Mutex<()>>,
    pub(crate) direct: DirectWriters,
    pub(crate) refs: RefCounter,
}

/// How many pushes a typed aspect handler may fall behind.
pub(crate) const ASPECT_BUFFER: usize = 1024;

/// Messages a topic's presence follower may have waiting.
const PRESENCE_BUFFER: usize = 1024;

impl Deref for PhoenixHandle {
    type Target = ConnectionHandle;

    fn deref(&self) -> &ConnectionHandle {
        &self.link
    }
}

impl PhoenixHandle {
    /// Joins `topic` and keeps it joined across reconnects; answers the
    /// join reply. A refusal by the server is [`JoinError::Refused`] with its
    /// reason, and the topic is then forgotten (never retried); a refusal of
    /// a later rejoin is announced as [`ConnectEvent::JoinRefused`] and
    /// retried with backoff.
    ///
    /// ```no_run
    /// # async fn example(connection: switchboard::client::PhoenixHandle) {
    /// use serde_json::json;
    /// use switchboard::client::JoinError;
    ///
    /// match connection.join("room:lobby", json!({"token": "t"})).await {
    ///     Ok(reply) => println!("joined: {}", reply.response),
    ///     Err(JoinError::Refused { reason, .. }) => eprintln!("refused: {reason}"),
    ///     Err(other) => eprintln!("not joined: {other}"),
    /// }
    /// # }
    /// ```
    ///
    /// [`ConnectEvent::JoinRefused`]: crate::client::ConnectEvent::JoinRefused
    pub async fn join(&self, topic: &str, params: Value) -> Result<Reply, JoinError> {
        self.join_with(topic, params, None).await
    }

    /// Joins a recoverable topic: every rejoin resumes from the last
    /// sequence delivered (kept in the connection's snapshotter, so also
    /// across restarts when that is file-backed); duplicates are dropped and
    /// holes the hub cannot fill are announced as [`ConnectEvent::Gap`]. A
    /// `strict` topic is left rather than resumed unrecovered
    /// ([`ConnectEvent::Unrecovered`]).
    ///
    /// [`ConnectEvent::Gap`]: crate::client::ConnectEvent::Gap
    /// [`ConnectEvent::Unrecovered`]: crate::client::ConnectEvent::Unrecovered
    pub async fn join_recoverable(
        &self,
        topic: &str,
        params: Value,
        strict: bool,
    ) -> Result<Reply, JoinError> {
        let position = Position {
            channel: topic.to_owned(),
        };
        let recovery = match self.positions.snapshotter().send(position).await {
            Ok(Some(stored)) if stored.epoch.is_some() => {
                TopicRecovery::restored(strict, stored.delivered, stored.epoch)
            }
            _ => TopicRecovery::new(strict),
        };
        self.join_with(topic, params, Some(recovery)).await
    }

    async fn join_with(
        &self,
        topic: &str,
        params: Value,
        recovery: Option<TopicRecovery>,
    ) -> Result<Reply, JoinError> {
        let join = Join {
            topic: topic.to_owned(),
            params,
            recovery,
        };
        let reply = match tokio::time::timeout(self.join_wait, self.subscription.send(join)).await {
            Ok(answer) => answered(answer).map_err(|failure| failure.into_join_error(topic))?,
            Err(_) => {
                return Err(JoinError::Timeout {
                    after: self.join_wait,
                })
            }
        };
        match reply.status {
            ReplyStatus::Ok => Ok(reply),
            ReplyStatus::Error if is_unrecovered(&reply.response) => Err(JoinError::Unrecovered {
                topic: topic.to_owned(),
                response: reply.response,
            }),
            ReplyStatus::Error => Err(JoinError::Refused {
                topic: topic.to_owned(),
                reason: refusal_reason(&reply.response),
                response: reply.response,
            }),
        }
    }

    /// Leaves `topic`; it is not rejoined any more.
    pub async fn leave(&self, topic: &str) -> Result<(), ConnectionClosed> {
        let leave = Leave {
            topic: topic.to_owned(),
        };
        answered(self.subscription.send(leave).await).map_err(|_| ConnectionClosed)
    }

    /// Pushes `event` on a joined topic and waits for the reply. The
    /// payload (a `Value`, or any `Serialize` type) is encoded once,
    /// straight into JSON text.
    pub async fn push(
        &self,
        topic: &str,
        event: &str,
        payload: impl Serialize,
    ) -> Result<Reply, PushError> {
        let payload = Payload::encode(&payload).map_err(|error| PushError::Encode {
            reason: error.to_string(),
        })?;
        let push = Push {
            topic: topic.to_owned(),
            event: event.to_owned(),
            payload,
            timeout: None,
        };
        Ok(answered(self.subscription.send(push).await)?)
    }

    /// Reads part of a joined recoverable topic's history from the hub:
    /// after `since`, up to `until`, at most `limit` (see
    /// [`HistoryQuery`](crate::protocol::history::HistoryQuery)).
    ///
    /// ```no_run
    /// # async fn run(handle: switchboard::client::PhoenixHandle) -> Result<(), Box<dyn std::error::Error>> {
    /// use switchboard::protocol::history::HistoryQuery;
    /// let page = handle
    ///     .history("room:feed:1", HistoryQuery { since: Some(40), limit: Some(10), ..Default::default() })
    ///     .await?;
    /// println!("{} of epoch {}, top {}", page.publications.len(), page.epoch, page.top);
    /// # Ok(()) }
    /// ```
    pub async fn history(
        &self,
        topic: &str,
        query: HistoryQuery,
    ) -> Result<HistoryPage, HistoryError> {
        let payload = serde_json::to_value(query)
            .map_err(|error| HistoryError::Malformed(error.to_string()))?;
        let reply = self.push(topic, HISTORY_EVENT, payload).await?;
        if reply.status != ReplyStatus::Ok {
            let reason = reply.response["reason"].as_str().unwrap_or("unknown");
            return Err(HistoryError::Refused {
                reason: reason.to_owned(),
            });
        }
        serde_json::from_value(reply.response)
            .map_err(|error| HistoryError::Malformed(error.to_string()))
    }

    /// Pushes `event` without waiting for a reply. Answers as soon as it is
    /// written or buffered; errors when it cannot even be queued (buffer
    /// full, topic not joined, connection closed). The payload (a `Value`,
    /// or any `Serialize` type) is encoded straight into the frame.
    pub async fn send(
        &self,
        topic: &str,
        event: &str,
        payload: impl Serialize,
    ) -> Result<(), SendError> {
        if self.direct.try_send(&self.refs, topic, event, &payload) {
            return Ok(());
        }
        let payload = Payload::encode(&payload).map_err(|error| SendError::Encode {
            reason: error.to_string(),
        })?;
        let cast = Cast {
            topic: topic.to_owned(),
            event: event.to_owned(),
            payload,
            through_actor: Some(self.direct.via_actor()),
        };
        Ok(answered(self.subscription.send(cast).await)?)
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

    /// Follows `topic`'s presence: the list phoenix.js's `Presence` would
    /// show, kept current from the hub's `presence_state` and
    /// `presence_diff` across rejoins, with its joins and leaves. Call it
    /// before joining, like `incoming`.
    ///
    /// ```no_run
    /// # async fn run(handle: switchboard::client::PhoenixHandle) -> Result<(), Box<dyn std::error::Error>> {
    /// let mut presence = handle.presence("room:lobby");
    /// handle.join("room:lobby", serde_json::json!({"user": "ann"})).await?;
    /// while presence.changed().await {
    ///     println!("online: {:?}", presence.list().keys().keys().collect::<Vec<_>>());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn presence(&self, topic: &str) -> TopicPresence {
        TopicPresence::follow(self.incoming(topic, None, PRESENCE_BUFFER))
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

    /// Publishes a content envelope on a joined topic: stamped with the
    /// channel's next sequence, the time and this connection's producer
    /// name; `aspect` is also the push's event. Answers the hub's reply.
    pub async fn publish(
        &self,
        topic: &str,
        aspect: &str,
        payload: Value,
    ) -> Result<Reply, PublishError> {
        self.publish_envelope(topic, aspect, payload, None).await
    }

    /// Publishes on the channel of `cause` an envelope derived from it: its
    /// `causation` names `cause`.
    pub async fn publish_derived(
        &self,
        cause: &ContentEnvelope,
        aspect: &str,
        payload: Value,
    ) -> Result<Reply, PublishError> {
        let causation = Some(cause.as_cause());
        self.publish_envelope(&cause.channel, aspect, payload, causation)
            .await
    }

    async fn publish_envelope(
        &self,
        topic: &str,
        aspect: &str,
        payload: Value,
        causation: Option<Causation>,
    ) -> Result<Reply, PublishError> {
        // Stamped and queued under one lock, so concurrent publishes go out
        // in sequence order (while the subscription's mailbox has room: a
        // push is queued into it at once unless it is full).
        let order = self.publish_order.lock().await;
        let sequence = stamp(&self.positions.snapshotter(), topic.to_owned()).await?;
        let mut envelope =
            ContentEnvelope::stamped(topic, aspect, sequence, &self.producer, payload);
        envelope.causation = causation;
        let push = Push {
            topic: topic.to_owned(),
            event: aspect.to_owned(),
            payload: Payload::from(envelope.to_value()),
            timeout: None,
        };
        let reply = self.subscription.send(push);
        drop(order);
        Ok(answered(reply.await).map_err(PushError::from)?)
    }

    /// Hands every content envelope of `aspect` on `topic` to `handler`,
    /// its payload deserialized once into `T`. Pushes that are not
    /// envelopes or do not fit `T` are counted and reported as
    /// [`ConnectEvent::InvalidPayload`](crate::client::ConnectEvent::InvalidPayload).
    /// Runs on the current actix arbiter.
    pub fn on_aspect<T, F>(&self, topic: &str, aspect: &str, handler: F)
    where
        T: DeserializeOwned + 'static,
        F: FnMut(T, ContentEnvelope) + 'static,
    {
        self.on_aspect_checked(topic, aspect, None, handler);
    }

    /// [`on_aspect`](Self::on_aspect) with a schema check run on each
    /// envelope before its payload is deserialized.
    pub fn on_aspect_checked<T, F>(
        &self,
        topic: &str,
        aspect: &str,
        check: Option<SchemaCheck>,
        mut handler: F,
    ) where
        T: DeserializeOwned + 'static,
        F: FnMut(T, ContentEnvelope) + 'static,
    {
        let mut pushes = self.incoming(topic, None, ASPECT_BUFFER);
        let announcer = self.link.announcer.clone();
        let (topic, aspect) = (topic.to_owned(), aspect.to_owned());
        actix::spawn(async move {
            while let Some(push) = pushes.recv().await {
                match aspect::decode::<T>(&push, &aspect, check.as_ref()) {
                    Ok(Some((typed, envelope))) => handler(typed, envelope),
                    Ok(None) => {}
                    Err(error) => aspect::report(&announcer, &topic, &aspect, &error),
                }
            }
        });
    }

    /// Requests waiting for replies now.
    pub fn pending_requests(&self) -> usize {
        self.slots.in_use()
    }
}
