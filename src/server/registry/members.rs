//! A topic's members as the directory keeps them, with the count of
//! messages sent to them; and the busiest topics, for the dashboard.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Registry, SessionId};
use crate::server::member::Member;

/// A topic's members, and how many messages were sent to them since it got
/// its first member (for the dashboard's rates).
pub(crate) struct Members {
    pub(super) members: HashMap<SessionId, Member>,
    pub(super) sent: AtomicU64,
}

impl Deref for Members {
    type Target = HashMap<SessionId, Member>;

    fn deref(&self) -> &Self::Target {
        &self.members
    }
}

impl DerefMut for Members {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.members
    }
}

impl Registry {
    /// The `limit` topics with the most members now, most first: each with
    /// its member count and the messages sent to it so far. One pass over
    /// the topics, keeping `limit` of them.
    pub(crate) fn busiest_topics(&self, limit: usize) -> Vec<(String, usize, u64)> {
        let mut top: Vec<(usize, String, u64)> = Vec::with_capacity(limit + 1);
        for entry in self.topics.iter() {
            let members = entry.value().len();
            if top.len() == limit && top.last().is_none_or(|(least, _, _)| *least >= members) {
                continue;
            }
            let at = top.partition_point(|(more, _, _)| *more >= members);
            let sent = entry.value().sent.load(Ordering::Relaxed);
            top.insert(at, (members, entry.key().clone(), sent));
            top.truncate(limit);
        }
        top.into_iter()
            .map(|(members, topic, sent)| (topic, members, sent))
            .collect()
    }
}
