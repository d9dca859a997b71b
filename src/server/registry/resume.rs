//! Joins that resume a recoverable topic, and history read on request.

use std::sync::Mutex;

use super::{Registry, SessionId};
use crate::protocol::history::{HistoryPage, HistoryQuery};
use crate::protocol::resume::ResumeRequest;
use crate::server::history::{self, Recovery, TopicLog};
use crate::transport::outbox::Outbox;

impl Registry {
    /// Joins `topic` with recovery: under the topic log's lock, `reply` is
    /// handed the [`Recovery`] (it queues the join reply, or refuses) and,
    /// when it accepts, the replay is queued and the socket becomes a member;
    /// so reply, replay and live frames reach it in that order, with no hole
    /// and no duplicate. Answers whether the join was accepted.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn subscribe_resuming(
        &self,
        log: &Mutex<TopicLog>,
        max_replay: usize,
        topic: &str,
        id: SessionId,
        outbox: &Outbox,
        resume: Option<&ResumeRequest>,
        reply: impl FnOnce(&Recovery) -> bool,
    ) -> bool {
        let log = history::lock(log);
        let recovery = log.recover(resume, max_replay);
        if !reply(&recovery) {
            return false;
        }
        for frame in recovery.replay {
            // On overflow the session is told through SlowConsumer and closes.
            let _ = outbox.push(frame);
        }
        self.subscribe(topic, id, outbox.clone());
        true
    }

    /// The page of `topic`'s history `query` asks for; `None` when the
    /// topic is not recoverable.
    pub(crate) fn history_page(&self, topic: &str, query: &HistoryQuery) -> Option<HistoryPage> {
        let history = self.history_for(topic)?;
        let log = match self.cluster() {
            Some(cluster) => cluster.live_copy(topic),
            None => history.existing(topic),
        };
        let Some(log) = log else {
            // Nothing broadcast and nobody joined: no log is made for a read.
            return Some(HistoryPage {
                epoch: String::new(),
                top: 0,
                oldest: None,
                publications: Vec::new(),
                truncated: false,
            });
        };
        let selected = history.select(&history::lock(&log), query);
        Some(selected.into_page())
    }
}
