//! History on request over the socket: a push of
//! [`HISTORY_EVENT`](crate::protocol::history::HISTORY_EVENT) on a joined
//! recoverable topic, answered by the hub from the topic's ring.

use serde_json::json;

use super::PhoenixSocket;
use crate::protocol::history::{HistoryQuery, NOT_RECOVERABLE};
use crate::protocol::phoenix::{Frame, Reply};
use crate::protocol::ChannelErrorCode;
use crate::server::stats::FrameProblem;

impl PhoenixSocket {
    /// Answers a history request; the topic must be joined (the join was
    /// its authorization) and recoverable.
    pub(super) fn history(&mut self, frame: Frame) {
        let Some(joined) = self.joined.get(&frame.topic) else {
            return self.unmatched(&frame);
        };
        if self.is_stale(&frame) || !self.payload_ok(&frame) {
            return;
        }
        let join_ref = joined.join_ref.clone();
        let query: HistoryQuery = match frame.payload.parse() {
            Ok(query) => query,
            Err(_) => {
                self.stats.frame_problem(FrameProblem::InvalidPayload);
                let invalid = Reply::error(&ChannelErrorCode::Invalid);
                return self.reply(join_ref.as_deref(), &frame, invalid);
            }
        };
        let reply = match self.registry.history_page(&frame.topic, &query) {
            Some(page) => Reply::ok(json!(page)),
            None => Reply::error(&ChannelErrorCode::Other(NOT_RECOVERABLE.to_owned())),
        };
        self.reply(join_ref.as_deref(), &frame, reply);
    }
}
