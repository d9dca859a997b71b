//! The messages the `Subscription` actor receives, and what it delivers.

use std::time::Duration;

use actix::Message;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::client::failure::Failure;
use crate::client::phoenix::direct::ThroughActor;
use crate::client::phoenix::recovery::TopicRecovery;
use crate::protocol::phoenix::{Frame, Reply};
use crate::protocol::Payload;

/// A message the server sent on a topic, as delivered to the application.
/// Its payload is raw JSON: [`parse`](Incoming::parse) it into your type
/// (nothing was parsed for you, so a message nobody reads costs no parse).
///
/// ```
/// use serde::Deserialize;
/// use serde_json::json;
/// use switchboard::client::Incoming;
///
/// #[derive(Deserialize)]
/// struct Shout {
///     body: String,
/// }
///
/// let incoming = Incoming {
///     topic: "room:lobby".into(),
///     event: "shout".into(),
///     payload: json!({"body": "hi"}).into(),
/// };
/// assert_eq!(incoming.parse::<Shout>()?.body, "hi");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Message)]
#[rtype(result = "()")]
pub struct Incoming {
    /// The topic.
    pub topic: String,
    /// The event.
    pub event: String,
    /// The payload, as the hub sent it.
    pub payload: Payload,
}

impl Incoming {
    /// The payload parsed as `T` (which may borrow from it).
    pub fn parse<'a, T: serde::Deserialize<'a>>(&'a self) -> Result<T, serde_json::Error> {
        self.payload.parse()
    }
}

/// Where a topic's incoming messages go.
pub(crate) enum PushSink {
    /// An actor (its mailbox capacity bounds the backlog).
    Actor(actix::Recipient<Incoming>),
    /// A bounded channel.
    Channel(mpsc::Sender<Incoming>),
}

/// A frame from the server that is not a reply.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct Inbound(pub Frame);

/// Joins a topic and keeps it joined; answers the first join reply.
#[derive(Debug, Message)]
#[rtype(result = "Result<Reply, Failure>")]
pub(crate) struct Join {
    /// The topic.
    pub topic: String,
    /// The join payload, sent again on every rejoin.
    pub params: Value,
    /// For a recoverable topic: its position (restored or new). Every
    /// rejoin then resumes from the last sequence delivered.
    pub recovery: Option<TopicRecovery>,
}

/// Leaves a topic.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), Failure>")]
pub(crate) struct Leave {
    /// The topic.
    pub topic: String,
}

/// Pushes an event and waits for its reply.
#[derive(Debug, Message)]
#[rtype(result = "Result<Reply, Failure>")]
pub(crate) struct Push {
    /// A joined topic.
    pub topic: String,
    /// The event.
    pub event: String,
    /// The payload, encoded once.
    pub payload: Payload,
    /// Reply timeout once written; `None` = the config's `push_timeout`.
    pub timeout: Option<Duration>,
}

/// Pushes an event without waiting for a reply.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), Failure>")]
pub(crate) struct Cast {
    /// A joined topic.
    pub topic: String,
    /// The event.
    pub event: String,
    /// The payload, encoded once.
    pub payload: Payload,
    /// Keeps the handle's direct path shut while this send is on its way
    /// (held for its drop, never read).
    #[allow(dead_code)]
    pub through_actor: Option<ThroughActor>,
}

/// Registers a handler for a topic's incoming messages (`event` None = all).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct On {
    /// The topic.
    pub topic: String,
    /// Only this event, or all.
    pub event: Option<String>,
    /// Where they go.
    pub sink: PushSink,
}
