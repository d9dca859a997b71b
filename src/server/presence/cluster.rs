//! The cluster side of [`Presence`]: another node's messages applied under
//! the topic's lock, this node's state sent when asked, copies of nodes
//! that went down or did not answer let go.

use super::table::TopicPresence;
use super::{lock, Presence, PRESENCE_DIFF};
use crate::cluster::wire::{Metas, PresenceWire};
use crate::server::registry::Registry;

/// Most bytes of metas in one state message (NATS' default payload limit is
/// 1 MiB).
const STATE_PART_BYTES: usize = 256 * 1024;

impl Presence {
    /// A presence message from `node` on `topic`. Answers what to publish
    /// back: a sync request to `node` after a missed change, or this node's
    /// state when asked for it (sent in parts, in order, by `publish`).
    pub(crate) fn on_remote(
        &self,
        registry: &Registry,
        topic: &str,
        node: &str,
        me: &str,
        wire: PresenceWire,
        publish: &dyn Fn(PresenceWire),
    ) {
        if let PresenceWire::Sync { to } = &wire {
            if to.as_deref().is_none_or(|to| to == me) {
                // Answered even when empty: the asker lets go of copies
                // that stay unanswered.
                self.publish_state(topic, publish);
            }
            return;
        }
        let shared = self.topic(topic);
        let mut table = lock(&shared);
        let (diff, missed) = table.apply_remote(node, wire, &self.limits);
        if !diff.is_empty() {
            registry.fan_out(topic, PRESENCE_DIFF, &diff.to_value());
        }
        drop(table);
        if missed {
            metrics::counter!("switchboard_cluster_presence_resyncs_total").increment(1);
            publish(PresenceWire::Sync {
                to: Some(node.to_owned()),
            });
        }
    }

    /// Publishes this node's whole presence on `topic`, in parts.
    fn publish_state(&self, topic: &str, publish: &dyn Fn(PresenceWire)) {
        let Some(shared) = self.existing(topic) else {
            publish(state_part(0, Metas::new(), true, true));
            return;
        };
        // Under the lock: no diff of this node can come between the parts.
        let table = lock(&shared);
        let metas = table.local_metas();
        let mut part = Metas::new();
        let mut bytes = 0;
        let mut first = true;
        for (key, key_metas) in metas {
            let size: usize = key_metas.iter().map(|m| m.to_string().len()).sum();
            if bytes + size > STATE_PART_BYTES && !part.is_empty() {
                publish(state_part(
                    table.version,
                    std::mem::take(&mut part),
                    first,
                    false,
                ));
                first = false;
                bytes = 0;
            }
            bytes += size;
            part.insert(key, key_metas);
        }
        publish(state_part(table.version, part, first, true));
    }

    /// The next number of a local change of `topic` (under its lock).
    pub(crate) fn next_version(table: &mut TopicPresence) -> u64 {
        table.version += 1;
        table.version
    }

    /// `node` is down: everything it held leaves, on every topic.
    pub(crate) fn drop_node(&self, registry: &Registry, node: &str) {
        let topics: Vec<String> = self.topics.iter().map(|e| e.key().clone()).collect();
        for topic in topics {
            let Some(shared) = self.existing(&topic) else {
                continue;
            };
            let mut table = lock(&shared);
            let diff = table.drop_remote(node);
            if !diff.is_empty() {
                registry.fan_out(&topic, PRESENCE_DIFF, &diff.to_value());
            }
            if table.is_empty() {
                self.topics.remove_if(&topic, |_, shared| {
                    std::sync::Arc::strong_count(shared) <= 2
                });
            }
        }
    }

    /// After NATS was away: this node's state goes out, and every other
    /// node is asked for its own; the copies of nodes that do not answer
    /// are let go by [`drop_unanswered`](Self::drop_unanswered).
    pub(crate) fn resync(&self, topic: &str, publish: &dyn Fn(PresenceWire)) {
        if let Some(shared) = self.existing(topic) {
            lock(&shared).mark_stale();
        }
        self.publish_state(topic, publish);
        publish(PresenceWire::Sync { to: None });
    }

    /// Lets go of the copies of nodes that did not answer a resync.
    pub(crate) fn drop_unanswered(&self, registry: &Registry, topic: &str) {
        let Some(shared) = self.existing(topic) else {
            return;
        };
        let diff = lock(&shared).drop_stale();
        if !diff.is_empty() {
            metrics::counter!("switchboard_cluster_presence_unanswered_total").increment(1);
            registry.fan_out(topic, PRESENCE_DIFF, &diff.to_value());
        }
    }

    /// This node no longer follows `topic`: its copies of other nodes go
    /// (nobody here to tell).
    pub(crate) fn forget_remote(&self, topic: &str) {
        if let Some(shared) = self.existing(topic) {
            let mut table = lock(&shared);
            table.remote.clear();
            if table.is_empty() {
                self.topics
                    .remove_if(topic, |_, shared| std::sync::Arc::strong_count(shared) <= 2);
            }
        }
    }
}

fn state_part(v: u64, keys: Metas, first: bool, last: bool) -> PresenceWire {
    PresenceWire::State {
        v,
        keys,
        first,
        last,
    }
}
