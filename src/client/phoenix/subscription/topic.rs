//! One topic of a connection's Phoenix engine: its channel lifecycle, the
//! pushes waiting for its join, and the callers waiting for the join.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use actix::SpawnHandle;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::client::failure::Failure;
use crate::client::phoenix::channel_state::{ChannelLifecycle, ChannelState};
use crate::client::phoenix::recovery::TopicRecovery;
use crate::protocol::phoenix::{Reply, ReplyStatus};
use crate::protocol::resume::is_unrecovered;
use crate::protocol::Payload;
use crate::transport::correlator::Outgoing;

/// Where a caller waiting for a topic's join (or leave) gets its answer.
pub(super) type Waiter = oneshot::Sender<Result<Reply, Failure>>;

/// Most callers waiting for one topic's join reply.
pub(super) const MAX_JOIN_WAITERS: usize = 64;

/// A push or send waiting for its topic's join (or the connection).
pub(super) struct Buffered {
    pub(super) msg_ref: String,
    pub(super) event: String,
    pub(super) payload: Payload,
    pub(super) size: usize,
    pub(super) responder: Option<(Outgoing<Reply, Failure>, Duration)>,
    pub(super) expires_at: Instant,
}

impl Buffered {
    /// Approximate bytes it will take on the wire.
    pub(super) fn measure(&self, topic: &str) -> usize {
        self.event.len() + topic.len() + self.msg_ref.len() + self.payload.len()
    }
}

/// One topic of the connection: its lifecycle, buffer and waiters.
pub(super) struct Topic {
    pub(super) params: Value,
    pub(super) lifecycle: ChannelLifecycle,
    pub(super) buffer: VecDeque<Buffered>,
    pub(super) waiters: Vec<Waiter>,
    pub(super) rejoin_timer: Option<SpawnHandle>,
    pub(super) last_reply: Value,
    pub(super) recovery: Option<TopicRecovery>,
    /// Whether a join of it ever succeeded: a refusal before that is the
    /// caller's error, a refusal after it a rejoin to retry.
    pub(super) joined_once: bool,
}

impl Topic {
    pub(super) fn new(params: Value, recovery: Option<TopicRecovery>) -> Topic {
        Topic {
            recovery,
            params,
            lifecycle: ChannelLifecycle::new(),
            buffer: VecDeque::new(),
            waiters: Vec::new(),
            rejoin_timer: None,
            last_reply: Value::Null,
            joined_once: false,
        }
    }

    pub(super) fn state(&self) -> &ChannelState {
        self.lifecycle.state()
    }

    /// Joining, joined, or errored (waiting to rejoin): sends may be queued.
    pub(super) fn wants_join(&self) -> bool {
        matches!(
            self.state(),
            ChannelState::Joining { .. }
                | ChannelState::Joined { .. }
                | ChannelState::Errored { .. }
        )
    }
}

/// An error reply refusing a strict resume.
pub(super) fn is_unrecovered_reply(reply: &Reply) -> bool {
    reply.status == ReplyStatus::Error && is_unrecovered(&reply.response)
}

/// The `reason` of an error response, or the whole response as text.
pub(crate) fn refusal_reason(response: &Value) -> String {
    match response.get("reason").and_then(Value::as_str) {
        Some(reason) => reason.to_owned(),
        None => response.to_string(),
    }
}

pub(super) fn not_joined(topic: &str) -> Failure {
    Failure::NotJoined {
        topic: topic.to_owned(),
    }
}
