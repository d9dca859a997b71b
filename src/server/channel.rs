//! What an application plugs into the hub: a [`Channel`] per topic pattern.

use std::collections::HashMap;
use std::sync::Arc;

use bytestring::ByteString;
use serde_json::Value;

use super::presence::PresenceRefusal;
use super::registry::refuse_reserved;
use super::registry::{Registry, SessionId};
use crate::protocol::clock::unix_millis;
use crate::protocol::phoenix;
use crate::protocol::{ChannelErrorCode, Payload};
use crate::transport::outbox::Outbox;

/// What a channel answers to an inbound event.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Reply `{"status":"ok","response": payload}` (`Payload::from(json!(…))`
    /// for a `Value`; an inbound payload passed back is not re-encoded).
    Ok(Payload),
    /// Reply `{"status":"error","response":{"reason": code}}`.
    Error(ChannelErrorCode),
    /// Send no reply.
    NoReply,
}

/// A channel handler failed; the client gets `phx_error` on that topic only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("channel failed: {0}")]
pub struct ChannelFailure(pub String);

/// Who is on the other end of a socket.
#[derive(Debug, Clone, Default)]
pub struct SocketInfo {
    /// The socket's id within this hub.
    pub session_id: SessionId,
    /// Query parameters of the connect request (`vsn`, app params).
    pub params: HashMap<String, String>,
    /// Who the socket's credentials name: `anonymous` without credentials,
    /// `bearer` or `basic` for the single token or user, the token's name
    /// under `auth.type = "tokens"`. Unlike anything in a payload, a peer
    /// cannot choose it.
    pub principal: String,
}

/// Handles joins and inbound events for the topics it is routed to.
///
/// Payloads arrive raw, as [`Payload`]: parse them into your own types with
/// [`Payload::parse`] (a `Value` only when you ask, with
/// [`Payload::to_value`]), and pass one on (a broadcast, an echo) without
/// its bytes being parsed or copied.
///
/// Handlers run inside the socket's session actor: keep them quick, and for
/// slow work spawn a task that answers later through [`ChannelContext::push`]
/// or the hub's `Broadcast` message.
///
/// ```
/// use serde::Deserialize;
/// use serde_json::{json, Value};
/// use switchboard::protocol::{ChannelErrorCode, Payload};
/// use switchboard::server::{Channel, ChannelContext, ChannelFailure, ChannelRouter, Outcome, SocketInfo};
///
/// /// Members may join with the right password; `shout` reaches everyone.
/// struct Lounge;
///
/// #[derive(Deserialize)]
/// struct Knock<'a> {
///     password: Option<&'a str>,
/// }
///
/// impl Channel for Lounge {
///     fn join(&self, _: &str, payload: &Payload, _: &SocketInfo) -> Result<Value, ChannelErrorCode> {
///         match payload.parse::<Knock>() {
///             Ok(Knock { password: Some("open sesame") }) => Ok(json!({"welcome": true})),
///             _ => Err(ChannelErrorCode::Forbidden),
///         }
///     }
///
///     fn handle_in(&self, event: &str, payload: &Payload, ctx: &ChannelContext<'_>) -> Result<Outcome, ChannelFailure> {
///         match event {
///             // The shout goes out as the bytes it came in.
///             "shout" => Ok(Outcome::Ok(json!({"heard_by": ctx.broadcast("shout", payload)}).into())),
///             _ => Ok(Outcome::Error(ChannelErrorCode::NotFound)),
///         }
///     }
/// }
///
/// let router = ChannelRouter::new().route("lounge:*", Lounge);
/// ```
pub trait Channel: Send + Sync + 'static {
    /// Decides a join; `Ok` carries the join reply's response.
    fn join(
        &self,
        topic: &str,
        payload: &Payload,
        socket: &SocketInfo,
    ) -> Result<Value, ChannelErrorCode>;

    /// Whom a socket that just joined `topic` is, for presence:
    /// `Some((key, meta))` tracks it under `key` (it first gets the topic's
    /// `presence_state`, then every member the `presence_diff`); `None`,
    /// the default, tracks nothing.
    fn presence(
        &self,
        topic: &str,
        payload: &Payload,
        socket: &SocketInfo,
    ) -> Option<(String, Value)> {
        let _ = (topic, payload, socket);
        None
    }

    /// Handles one event pushed by the client on a joined topic.
    fn handle_in(
        &self,
        event: &str,
        payload: &Payload,
        ctx: &ChannelContext<'_>,
    ) -> Result<Outcome, ChannelFailure>;
}

/// What a handler may do while handling an event.
pub struct ChannelContext<'a> {
    pub(crate) topic: &'a str,
    pub(crate) join_ref: Option<&'a str>,
    pub(crate) socket: &'a SocketInfo,
    pub(crate) registry: &'a Registry,
    pub(crate) outbox: &'a Outbox,
}

impl ChannelContext<'_> {
    /// The topic being handled.
    pub fn topic(&self) -> &str {
        self.topic
    }

    /// The socket that sent the event.
    pub fn socket(&self) -> &SocketInfo {
        self.socket
    }

    /// Sends `event` to every member of the topic, this socket included;
    /// returns how many members it was queued for (0 for a reserved event
    /// name: `phx_*`, presence). On a plain topic the payload's bytes go
    /// out as they are.
    pub fn broadcast(&self, event: &str, payload: &Payload) -> usize {
        self.registry
            .broadcast_payload(self.topic, event, payload, None)
    }

    /// Sends `event` to every member of the topic but this socket. On a
    /// recoverable topic every member gets every sequence, this socket too.
    pub fn broadcast_from(&self, event: &str, payload: &Payload) -> usize {
        let except = Some(self.socket.session_id);
        self.registry
            .broadcast_payload(self.topic, event, payload, except)
    }

    /// Tracks this socket's presence on the topic under `key` with `meta`
    /// (an object); every member gets the `presence_diff`.
    /// It first gets the topic's `presence_state` (phoenix.js's `Presence`
    /// shows nothing before one).
    pub fn track(&self, key: &str, meta: &Value) -> Result<(), PresenceRefusal> {
        let session = self.socket.session_id;
        let presence = self.registry.presence();
        presence.push_state(self.topic, self.join_ref, self.outbox);
        presence.track(self.registry, self.topic, session, key, meta)
    }

    /// Replaces the meta this socket has under `key` (a new `phx_ref`, the
    /// old one as `phx_ref_prev`).
    pub fn update(&self, key: &str, meta: &Value) -> Result<(), PresenceRefusal> {
        let session = self.socket.session_id;
        self.registry
            .presence()
            .update(self.registry, self.topic, session, key, meta)
    }

    /// Stops tracking this socket under `key` on the topic.
    pub fn untrack(&self, key: &str) {
        let session = self.socket.session_id;
        self.registry
            .presence()
            .untrack(self.registry, self.topic, session, Some(key));
    }

    /// The topic's presence now: `{key: {"metas": [...]}}`.
    pub fn presence_list(&self) -> Value {
        self.registry.presence().list(self.topic)
    }

    /// Pushes `event` to this socket only (`[join_ref, null, topic, event, payload]`).
    /// Returns false when the socket's outbox is full, or for a reserved
    /// event name (`phx_*`, presence).
    pub fn push(&self, event: &str, payload: &Payload) -> bool {
        if phoenix::is_reserved_event(event) {
            refuse_reserved(self.topic, event, "push");
            return false;
        }
        let frame = phoenix::encode_raw(self.join_ref, None, self.topic, event, payload);
        self.outbox.push(ByteString::from(frame)).is_ok()
    }
}

/// Topic patterns to channels: `"room:*"` matches every topic that starts
/// with `room:`; any other pattern matches exactly. The first match wins.
#[derive(Clone, Default)]
pub struct ChannelRouter {
    routes: Vec<(String, Arc<dyn Channel>)>,
}

impl ChannelRouter {
    /// A router with no routes: every join is `unmatched topic`.
    pub fn new() -> ChannelRouter {
        ChannelRouter::default()
    }

    /// Routes topics matching `pattern` to `channel`.
    pub fn route(mut self, pattern: &str, channel: impl Channel) -> ChannelRouter {
        self.routes.push((pattern.to_owned(), Arc::new(channel)));
        self
    }

    /// The default router of `switchboard serve`: `room:*` to [`RoomChannel`].
    pub fn rooms() -> ChannelRouter {
        ChannelRouter::new().route("room:*", RoomChannel)
    }

    /// The router of `switchboard serve`: [`rooms`](Self::rooms), and every
    /// recoverable topic pattern of `[history]` routed to [`RoomChannel`] too.
    pub fn rooms_with_history(patterns: &[String]) -> ChannelRouter {
        patterns
            .iter()
            .fold(ChannelRouter::rooms(), |router, pattern| {
                router.route(pattern, RoomChannel)
            })
    }

    /// [`rooms_with_history`](Self::rooms_with_history) with every room a
    /// [`PresenceRoom`]: the default router when `presence.rooms` is set.
    pub fn presence_rooms_with_history(patterns: &[String]) -> ChannelRouter {
        std::iter::once("room:*".to_owned())
            .chain(patterns.iter().cloned())
            .fold(ChannelRouter::new(), |router, pattern| {
                router.route(&pattern, PresenceRoom)
            })
    }

    /// The channel routed for `topic`, if any.
    pub fn find(&self, topic: &str) -> Option<Arc<dyn Channel>> {
        self.routes
            .iter()
            .find(|(pattern, _)| matches(pattern, topic))
            .map(|(_, channel)| channel.clone())
    }
}

fn matches(pattern: &str, topic: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => topic.starts_with(prefix),
        None => pattern == topic,
    }
}

/// The default room: anyone may join; `ping` is answered with its own payload;
/// any other event is broadcast to every member (sender included) and answered ok.
#[derive(Debug, Clone, Copy, Default)]
pub struct RoomChannel;

impl Channel for RoomChannel {
    fn join(&self, _: &str, _: &Payload, _: &SocketInfo) -> Result<Value, ChannelErrorCode> {
        Ok(Value::Object(Default::default()))
    }

    fn handle_in(
        &self,
        event: &str,
        payload: &Payload,
        ctx: &ChannelContext<'_>,
    ) -> Result<Outcome, ChannelFailure> {
        if event == "ping" {
            // The same bytes back: a clone shares them.
            return Ok(Outcome::Ok(payload.clone()));
        }
        ctx.broadcast(event, payload);
        Ok(Outcome::Ok(Payload::empty_object()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_and_exact_patterns() {
        assert!(matches("room:*", "room:lobby"));
        assert!(matches("room:*", "room:"));
        assert!(!matches("room:*", "rooms:lobby"));
        assert!(matches("admin", "admin"));
        assert!(!matches("admin", "admin:1"));
    }

    #[test]
    fn first_route_wins_and_unrouted_is_none() {
        let router = ChannelRouter::rooms();
        assert!(router.find("room:1").is_some());
        assert!(router.find("nope:1").is_none());
    }
}

/// A [`RoomChannel`] whose members are tracked for presence: under the join
/// payload's `user` when it is a string (at most 128 bytes), else under
/// `socket:<id>`, with `{"online_at": unix milliseconds}`. The `user` is
/// what the client claims; a channel that needs proven identity keys on
/// [`SocketInfo::principal`] instead.
#[derive(Debug, Clone, Copy, Default)]
pub struct PresenceRoom;

impl Channel for PresenceRoom {
    fn join(
        &self,
        topic: &str,
        payload: &Payload,
        socket: &SocketInfo,
    ) -> Result<Value, ChannelErrorCode> {
        RoomChannel.join(topic, payload, socket)
    }

    fn presence(&self, _: &str, payload: &Payload, socket: &SocketInfo) -> Option<(String, Value)> {
        let payload = payload.to_value();
        let key = match payload.get("user").and_then(Value::as_str) {
            Some(user) if !user.is_empty() && user.len() <= 128 => user.to_owned(),
            _ => format!("socket:{}", socket.session_id),
        };
        Some((key, serde_json::json!({ "online_at": unix_millis() })))
    }

    fn handle_in(
        &self,
        event: &str,
        payload: &Payload,
        ctx: &ChannelContext<'_>,
    ) -> Result<Outcome, ChannelFailure> {
        RoomChannel.handle_in(event, payload, ctx)
    }
}
