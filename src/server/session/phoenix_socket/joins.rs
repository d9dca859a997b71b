//! What follows a join the channel accepted: the reply (on a recoverable
//! topic with the recovery outcome and the replay), membership, presence.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use super::{Joined, PhoenixSocket};
use crate::protocol::phoenix::{Frame, Reply, ReplyStatus};
use crate::protocol::resume::{ResumeRequest, UNRECOVERED};
use crate::protocol::ChannelErrorCode;
use crate::server::channel::Channel;
use crate::server::history::TopicLog;
use crate::server::stats::FrameProblem;

impl PhoenixSocket {
    /// A join on a plain topic: subscribed before the reply, as Phoenix
    /// does, so no broadcast made after the client sees "ok" can miss it.
    pub(super) fn join_plain(&self, frame: &Frame, response: Value) -> bool {
        self.registry
            .subscribe(&frame.topic, self.info.session_id, self.outbox.clone());
        self.reply(frame.join_ref.as_deref(), frame, Reply::ok(response));
        true
    }

    /// A join accepted and replied to: presence, and the topic kept.
    pub(super) fn keep_joined(&mut self, channel: Arc<dyn Channel>, frame: &Frame) {
        self.track_joiner(channel.as_ref(), frame);
        self.joined.insert(
            frame.topic.clone(),
            Joined {
                join_ref: frame.join_ref.clone(),
                channel,
            },
        );
    }

    /// After a join's reply: when the channel tracks the joiner, the topic's
    /// `presence_state` to it, then its own join to every member.
    fn track_joiner(&self, channel: &dyn Channel, frame: &Frame) {
        let tracked = catch_unwind(AssertUnwindSafe(|| {
            channel.presence(&frame.topic, &frame.payload, &self.info)
        }));
        let Ok(Some((key, meta))) = tracked else {
            return;
        };
        let presence = self.registry.presence();
        presence.push_state(&frame.topic, frame.join_ref.as_deref(), &self.outbox);
        let session = self.info.session_id;
        if let Err(refusal) = presence.track(&self.registry, &frame.topic, session, &key, &meta) {
            tracing::warn!(topic = %frame.topic, %key, %refusal, "presence not tracked");
        }
    }

    /// A join on a recoverable topic: reply with the recovery outcome, then
    /// the replay, then live frames (SEQ-3..SEQ-7). A strict resume that
    /// cannot be recovered is refused with `unrecovered`.
    pub(super) fn join_resuming(
        &self,
        log: &Mutex<TopicLog>,
        max_replay: usize,
        frame: &Frame,
        response: Value,
    ) -> bool {
        let payload = frame.payload.to_value();
        let resume = ResumeRequest::read(&payload);
        let join_ref = frame.join_ref.as_deref();
        let asked = payload
            .get("resume")
            .is_some_and(|resume| !resume.is_null());
        if asked && resume.is_none() {
            // A malformed resume (`strict: "yes"`, a string sequence) is
            // refused, never taken for a fresh join.
            self.stats.frame_problem(FrameProblem::InvalidPayload);
            self.reply(join_ref, frame, Reply::error(&ChannelErrorCode::Invalid));
            return false;
        }
        let strict = resume.as_ref().is_some_and(|resume| resume.strict);
        let accepted = self.registry.subscribe_resuming(
            log,
            max_replay,
            &frame.topic,
            self.info.session_id,
            &self.outbox,
            resume.as_ref(),
            |recovery| {
                if strict && !recovery.reply.recovered {
                    let refused = recovery.reply.add_to(json!({ "reason": UNRECOVERED }));
                    let refused = Reply {
                        status: ReplyStatus::Error,
                        response: refused,
                    };
                    self.reply(join_ref, frame, refused);
                    return false;
                }
                self.reply(join_ref, frame, Reply::ok(recovery.reply.add_to(response)));
                true
            },
        );
        if resume.is_some() {
            let outcome = if accepted { "accepted" } else { "refused" };
            metrics::counter!("switchboard_hub_resumes_total", "outcome" => outcome).increment(1);
        }
        accepted
    }
}
