//! Which topics a node wants from the cluster: those with members here, and
//! those a join is waiting on. Changes are collected (at most once per
//! topic) and taken by the node's task, which subscribes and unsubscribes.

use std::collections::HashSet;
use std::sync::Mutex;

use dashmap::DashMap;
use tokio::sync::Notify;

#[derive(Default, Clone, Copy)]
struct Want {
    members: bool,
    pending: usize,
}

/// The topics a node wants, and the ones whose want changed.
#[derive(Default)]
pub(crate) struct Interest {
    wants: DashMap<String, Want>,
    dirty: Mutex<HashSet<String>>,
    changed: Notify,
}

impl Interest {
    /// `topic` has members here now (or no longer).
    pub(crate) fn set_members(&self, topic: &str, members: bool) {
        self.update(topic, |want| want.members = members);
    }

    /// A join waits on `topic`.
    pub(crate) fn add_pending(&self, topic: &str) {
        self.update(topic, |want| want.pending += 1);
    }

    /// A join no longer waits on `topic`.
    pub(crate) fn remove_pending(&self, topic: &str) {
        self.update(topic, |want| want.pending = want.pending.saturating_sub(1));
    }

    fn update(&self, topic: &str, change: impl FnOnce(&mut Want)) {
        {
            let mut want = self.wants.entry(topic.to_owned()).or_default();
            change(&mut want);
        }
        self.wants
            .remove_if(topic, |_, want| !want.members && want.pending == 0);
        self.dirty
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(topic.to_owned());
        self.changed.notify_one();
    }

    /// Whether `topic` is wanted now.
    pub(crate) fn wanted(&self, topic: &str) -> bool {
        self.wants.contains_key(topic)
    }

    /// Every topic wanted now.
    pub(crate) fn all(&self) -> Vec<String> {
        self.wants.iter().map(|entry| entry.key().clone()).collect()
    }

    /// The topics whose want changed since the last call.
    pub(crate) fn take_changed(&self) -> Vec<String> {
        let mut dirty = self
            .dirty
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        dirty.drain().collect()
    }

    /// Resolves once a want changed (at once when one changed since the last
    /// [`take_changed`](Self::take_changed)).
    pub(crate) async fn changed(&self) {
        self.changed.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_topic_is_wanted_while_it_has_members_or_a_waiting_join() {
        let interest = Interest::default();
        interest.add_pending("a");
        interest.set_members("a", true);
        interest.remove_pending("a");
        assert!(interest.wanted("a"));
        interest.set_members("a", false);
        assert!(!interest.wanted("a"));
        interest.set_members("b", true);
        let mut changed = interest.take_changed();
        changed.sort();
        assert_eq!(changed, ["a", "b"]);
        assert!(interest.take_changed().is_empty());
        assert_eq!(interest.all(), ["b"]);
    }
}
