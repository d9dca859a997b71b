//! Who can be a member of a topic: a socket of the hub (its outbox), or any
//! actix actor of the application (a [`Recipient`] of [`TopicMessage`]),
//! under the same bounds: a member that cannot take a message now is
//! counted and dropped, never queued for without bound.

use actix::{Message, Recipient};
use bytestring::ByteString;
use serde_json::Value;

use crate::protocol::Payload;
use crate::transport::outbox::Outbox;

/// A message on a topic, as an actor member receives it.
///
/// ```
/// use actix::{Actor, Context, Handler};
/// use switchboard::server::TopicMessage;
///
/// struct Logger;
/// impl Actor for Logger {
///     type Context = Context<Self>;
///     fn started(&mut self, ctx: &mut Context<Self>) {
///         ctx.set_mailbox_capacity(1024); // a full mailbox drops the member
///     }
/// }
/// impl Handler<TopicMessage> for Logger {
///     type Result = ();
///     fn handle(&mut self, msg: TopicMessage, _: &mut Context<Self>) {
///         println!("{} {} {}", msg.topic, msg.event, msg.payload);
///     }
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Message)]
#[rtype(result = "()")]
pub struct TopicMessage {
    /// The topic.
    pub topic: String,
    /// The event.
    pub event: String,
    /// The payload, as socket members get it (on a recoverable topic, the
    /// sequenced envelope).
    pub payload: Value,
    /// The message's sequence on a recoverable topic.
    pub sequence: Option<u64>,
}

/// One member of a topic.
#[derive(Clone)]
pub(crate) enum Member {
    /// A socket of the hub.
    Socket(Outbox),
    /// An actor of the application.
    Actor(Recipient<TopicMessage>),
}

/// One message on its way to a topic's members: the frame sockets get,
/// and what an actor gets.
pub(crate) struct Delivery<'a> {
    pub topic: &'a str,
    pub event: &'a str,
    pub payload: Carried<'a>,
    pub sequence: Option<u64>,
    pub frame: &'a ByteString,
}

/// A delivery's payload as it was handed to the hub: parsed only if an
/// actor member needs a `Value`.
#[derive(Clone, Copy)]
pub(crate) enum Carried<'a> {
    /// Already a `Value`.
    Value(&'a Value),
    /// Raw JSON (a payload passed on as it arrived).
    Raw(&'a Payload),
}

impl Carried<'_> {
    fn to_value(self) -> Value {
        match self {
            Carried::Value(value) => value.clone(),
            Carried::Raw(payload) => payload.to_value(),
        }
    }
}

impl Member {
    /// Hands `delivery` to the member; `false` when it could not take it
    /// (an outbox full or gone, a mailbox full or closed).
    pub(crate) fn deliver(&self, delivery: &Delivery<'_>) -> bool {
        match self {
            Member::Socket(outbox) => outbox.push(delivery.frame.clone()).is_ok(),
            Member::Actor(recipient) => recipient
                .try_send(TopicMessage {
                    topic: delivery.topic.to_owned(),
                    event: delivery.event.to_owned(),
                    payload: delivery.payload.to_value(),
                    sequence: delivery.sequence,
                })
                .is_ok(),
        }
    }

    /// Whether it is an actor (dropped by the hub when it cannot take a
    /// message; a socket's own session closes it instead).
    pub(crate) fn is_actor(&self) -> bool {
        matches!(self, Member::Actor(_))
    }
}
