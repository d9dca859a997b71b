//! The Phoenix V2 protocol of one inbound socket: which topics it joined and
//! how each inbound frame is answered. Transport concerns (timers, close
//! codes, the socket itself) stay in [`session`](crate::server::session).
//! History requests are answered in [`history`].

mod cluster_join;
mod history;
mod joins;

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use bytestring::ByteString;
use serde_json::{json, Value};

use crate::protocol::history::HISTORY_EVENT;
use crate::protocol::phoenix::{self, Frame, Reply, ReplyStatus};
use crate::protocol::{ChannelErrorCode, DecodeError};
use crate::server::channel::{Channel, ChannelContext, ChannelRouter, Outcome, SocketInfo};
use crate::server::registry::Registry;
use crate::server::session::{Protocol, ServerSession};
use crate::server::stats::{FrameProblem, HubStats};
use crate::transport::outbox::Outbox;
use actix::Context;

/// Longest topic or event name the hub keeps (they are stored per join).
pub(crate) const MAX_NAME_BYTES: usize = 256;
/// Longest `ref` or `join_ref` the hub echoes.
pub(crate) const MAX_REF_BYTES: usize = 64;

struct Joined {
    join_ref: Option<String>,
    channel: Arc<dyn Channel>,
}

type Ctx = Context<ServerSession<PhoenixSocket>>;

/// Per-socket Phoenix state.
pub(crate) struct PhoenixSocket {
    info: SocketInfo,
    joined: HashMap<String, Joined>,
    /// Joins waiting for this node's copy of a recoverable topic (in a
    /// cluster), by topic: their join_ref.
    waiting: HashMap<String, Option<String>>,
    max_channels: usize,
    router: ChannelRouter,
    registry: Arc<Registry>,
    stats: Arc<HubStats>,
    outbox: Outbox,
}

/// What the socket needs from the hub.
pub(crate) struct SocketDeps {
    /// Routes topics to channels.
    pub router: ChannelRouter,
    /// Shared membership directory.
    pub registry: Arc<Registry>,
    /// Counters.
    pub stats: Arc<HubStats>,
    /// Most topics this socket may join.
    pub max_channels: usize,
}

impl PhoenixSocket {
    /// State for a freshly opened socket writing to `outbox`.
    pub(crate) fn new(info: SocketInfo, deps: SocketDeps, outbox: Outbox) -> PhoenixSocket {
        PhoenixSocket {
            info,
            joined: HashMap::new(),
            waiting: HashMap::new(),
            max_channels: deps.max_channels,
            router: deps.router,
            registry: deps.registry,
            stats: deps.stats,
            outbox,
        }
    }

    /// Leaves every topic and forgets the socket (when it closes).
    fn leave_all(&mut self) {
        self.waiting.clear();
        let topics: Vec<String> = self.joined.drain().map(|(topic, _)| topic).collect();
        self.registry
            .remove_session(self.info.session_id, topics.iter().map(String::as_str));
    }

    /// Handles one inbound text frame. Never fails: bad input is counted,
    /// logged and answered where Phoenix would answer.
    pub(crate) fn handle_text(&mut self, text: &ByteString, ctx: &mut Ctx) {
        let frame = match Frame::decode_shared(text) {
            Ok(frame) => frame,
            Err(error) => {
                let problem = match error {
                    DecodeError::Json(_) => FrameProblem::InvalidJson,
                    _ => FrameProblem::Malformed,
                };
                self.stats.frame_problem(problem);
                tracing::debug!(%error, "dropped an invalid frame");
                return;
            }
        };
        if !names_fit(&frame) {
            self.stats.frame_problem(FrameProblem::Malformed);
            tracing::debug!("dropped a frame with an oversized topic, event or ref");
            return;
        }
        if frame.topic == phoenix::PHOENIX_TOPIC && frame.event == phoenix::HEARTBEAT {
            self.reply(None, &frame, Reply::ok(json!({})));
            return;
        }
        match frame.event.as_str() {
            phoenix::PHX_JOIN => self.join(frame, ctx),
            phoenix::PHX_LEAVE => self.leave(frame),
            HISTORY_EVENT => self.history(frame),
            event if phoenix::is_reserved_event(event) => self.reserved(&frame),
            _ => self.event(frame),
        }
    }

    /// A client event named like one of the protocol's own: refused,
    /// counted, never handed to a channel.
    fn reserved(&mut self, frame: &Frame) {
        self.stats.frame_problem(FrameProblem::ReservedEvent);
        tracing::debug!(topic = %frame.topic, event = %frame.event, "refused a reserved event");
        let refused = Reply::error(&ChannelErrorCode::ReservedEvent);
        self.reply(frame.join_ref.as_deref(), frame, refused);
    }

    /// Answers `invalid` when the payload is not an object; true when it is.
    fn payload_ok(&self, frame: &Frame) -> bool {
        if frame.payload.is_object() {
            return true;
        }
        self.stats.frame_problem(FrameProblem::InvalidPayload);
        tracing::debug!(topic = %frame.topic, event = %frame.event, "payload is not an object");
        let invalid = Reply::error(&ChannelErrorCode::Invalid);
        self.reply(frame.join_ref.as_deref(), frame, invalid);
        false
    }

    /// Forgets a joined topic: membership first, so no broadcast can follow
    /// the closing frame; then `event` (`phx_close` or `phx_error`).
    fn drop_topic(&mut self, topic: &str, event: &str, payload: &Value) {
        self.waiting.remove(topic);
        let Some(joined) = self.joined.remove(topic) else {
            return;
        };
        self.registry.unsubscribe(topic, self.info.session_id);
        let join_ref = joined.join_ref.as_deref();
        self.send(join_ref, join_ref, topic, event, payload);
    }

    fn join(&mut self, frame: Frame, ctx: &mut Ctx) {
        let Some(channel) = self.router.find(&frame.topic) else {
            return self.unmatched(&frame);
        };
        if !self.payload_ok(&frame) {
            return;
        }
        // A second join replaces the first: close the old one first.
        self.drop_topic(&frame.topic, phoenix::PHX_CLOSE, &json!({}));
        let join_ref = frame.join_ref.as_deref();
        if self.joined.len() + self.waiting.len() >= self.max_channels {
            self.stats.frame_problem(FrameProblem::TooManyChannels);
            tracing::warn!(topic = %frame.topic, cap = self.max_channels, "join refused: channel cap");
            let refused = Reply::error(&ChannelErrorCode::TooManyChannels);
            return self.reply(join_ref, &frame, refused);
        }
        let decided = catch_unwind(AssertUnwindSafe(|| {
            channel.join(&frame.topic, &frame.payload, &self.info)
        }));
        match decided {
            Ok(Ok(response)) => {
                let registry = self.registry.clone();
                let history = registry.history_for(&frame.topic);
                if let Some(cluster) = registry.cluster() {
                    let replay = history.map(|history| history.max_replay());
                    return self.join_in_cluster(cluster, replay, frame, response, channel, ctx);
                }
                let accepted = match history {
                    Some(history) => {
                        let log = history.log(&frame.topic, |t| registry.member_count(t) > 0);
                        self.join_resuming(&log, history.max_replay(), &frame, response)
                    }
                    None => self.join_plain(&frame, response),
                };
                if accepted {
                    self.keep_joined(channel, &frame);
                }
            }
            Ok(Err(code)) => self.reply(join_ref, &frame, Reply::error(&code)),
            Err(_) => {
                self.stats.frame_problem(FrameProblem::HandlerFailed);
                tracing::error!(topic = %frame.topic, "channel join panicked");
                let crashed = ChannelErrorCode::Other("join crashed".to_owned());
                self.reply(join_ref, &frame, Reply::error(&crashed));
            }
        }
    }

    fn leave(&mut self, frame: Frame) {
        if self.is_stale(&frame) {
            return;
        }
        self.reply(frame.join_ref.as_deref(), &frame, Reply::ok(json!({})));
        self.drop_topic(&frame.topic, phoenix::PHX_CLOSE, &json!({}));
    }

    fn event(&mut self, frame: Frame) {
        let Some(joined) = self.joined.get(&frame.topic) else {
            return self.unmatched(&frame);
        };
        if self.is_stale(&frame) || !self.payload_ok(&frame) {
            return;
        }
        let channel = joined.channel.clone();
        let join_ref = joined.join_ref.clone();
        let ctx = ChannelContext {
            topic: &frame.topic,
            join_ref: join_ref.as_deref(),
            socket: &self.info,
            registry: &self.registry,
            outbox: &self.outbox,
        };
        let handled = catch_unwind(AssertUnwindSafe(|| {
            channel.handle_in(&frame.event, &frame.payload, &ctx)
        }));
        let failure = match handled {
            Ok(Ok(Outcome::Ok(response))) => {
                // The response's bytes as the channel gave them (an echo is
                // the inbound payload's own).
                let reply = Reply::raw(ReplyStatus::Ok, &response);
                let (join_ref, msg_ref) = (join_ref.as_deref(), frame.msg_ref.as_deref());
                let reply = phoenix::encode_raw(
                    join_ref,
                    msg_ref,
                    &frame.topic,
                    phoenix::PHX_REPLY,
                    &reply,
                );
                // On overflow the session is told through SlowConsumer and closes.
                let _ = self.outbox.push(ByteString::from(reply));
                return;
            }
            Ok(Ok(Outcome::Error(code))) => {
                return self.reply(join_ref.as_deref(), &frame, Reply::error(&code));
            }
            Ok(Ok(Outcome::NoReply)) => return,
            Ok(Err(failure)) => failure.0,
            Err(_) => "handler panicked".to_owned(),
        };
        self.stats.frame_problem(FrameProblem::HandlerFailed);
        tracing::error!(topic = %frame.topic, event = %frame.event, %failure, "channel failed");
        // Like a crashed channel process: this topic errors and is left,
        // sibling topics and the socket live on.
        self.drop_topic(
            &frame.topic,
            phoenix::PHX_ERROR,
            &json!({ "reason": failure }),
        );
    }

    /// A non-null join_ref that is not the topic's current one: ignored.
    fn is_stale(&self, frame: &Frame) -> bool {
        let Some(sent) = frame.join_ref.as_deref() else {
            return false;
        };
        let current = self
            .joined
            .get(&frame.topic)
            .and_then(|joined| joined.join_ref.as_deref());
        let stale = current.is_some_and(|current| current != sent);
        if stale {
            self.stats.frame_problem(FrameProblem::StaleJoinRef);
            tracing::debug!(topic = %frame.topic, join_ref = sent, "ignored a stale join_ref");
        }
        stale
    }

    fn unmatched(&self, frame: &Frame) {
        self.stats.frame_problem(FrameProblem::UnmatchedTopic);
        tracing::debug!(topic = %frame.topic, event = %frame.event, "unmatched topic");
        self.reply(None, frame, Reply::error(&ChannelErrorCode::UnmatchedTopic));
    }

    fn reply(&self, join_ref: Option<&str>, to: &Frame, reply: Reply) {
        let payload = reply.to_value();
        self.send(
            join_ref,
            to.msg_ref.as_deref(),
            &to.topic,
            phoenix::PHX_REPLY,
            &payload,
        );
    }

    fn send(
        &self,
        join_ref: Option<&str>,
        msg_ref: Option<&str>,
        topic: &str,
        event: &str,
        payload: &Value,
    ) {
        let frame = phoenix::encode_parts(join_ref, msg_ref, topic, event, payload);
        // On overflow the session is told through SlowConsumer and closes.
        let _ = self.outbox.push(ByteString::from(frame));
    }
}

/// Topic and event names and refs are short strings: a frame whose names
/// would pin memory in the join table is dropped instead.
fn names_fit(frame: &Frame) -> bool {
    let ref_fits = |r: &Option<String>| r.as_ref().is_none_or(|r| r.len() <= MAX_REF_BYTES);
    frame.topic.len() <= MAX_NAME_BYTES
        && frame.event.len() <= MAX_NAME_BYTES
        && ref_fits(&frame.join_ref)
        && ref_fits(&frame.msg_ref)
}

impl Protocol for PhoenixSocket {
    fn on_text(&mut self, text: &ByteString, ctx: &mut Context<ServerSession<Self>>) {
        self.handle_text(text, ctx);
    }

    fn on_rate_limited(&mut self, text: &str, _: &mut Context<ServerSession<Self>>) {
        // Answered when it has a ref to answer (phoenix.js then fails the
        // push with `rate_limited`); anything else, or anything large, is
        // only counted.
        if text.len() > crate::server::session::ingest_socket::REFUSAL_DECODE_BYTES {
            return;
        }
        if let Ok(frame) = Frame::decode(text) {
            if names_fit(&frame) && frame.msg_ref.is_some() {
                let refused = Reply::error(&ChannelErrorCode::RateLimited);
                self.reply(frame.join_ref.as_deref(), &frame, refused);
            }
        }
    }

    fn on_stop(&mut self) {
        self.leave_all();
    }
}
