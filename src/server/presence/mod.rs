//! Presence: who is on each topic, tracked by channels and kept per topic
//! ([`table`]); each change reaches the topic's members as one
//! `presence_diff`, and a tracked joiner first gets the whole
//! `presence_state`. A socket that leaves or closes is untracked.
//!
//! A topic's changes are made and fanned out under its lock, so every member
//! sees them in one order; a joiner's state is queued under the same lock.

mod cluster;
mod remote;
pub(crate) mod table;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytestring::ByteString;
use dashmap::DashMap;
use serde_json::Value;

use self::table::{Diff, PresenceLimits, TopicPresence};
use crate::config::PresenceConfig;
use crate::protocol::phoenix;
use crate::server::registry::{Registry, SessionId};
use crate::transport::outbox::Outbox;

pub use self::table::PresenceRefusal;

/// The event that carries a topic's whole presence to a joiner.
pub(crate) const PRESENCE_STATE: &str = "presence_state";
/// The event that carries one change to every member.
pub(crate) const PRESENCE_DIFF: &str = "presence_diff";

/// Every topic's presence in one hub.
pub(crate) struct Presence {
    topics: DashMap<String, Arc<Mutex<TopicPresence>>>,
    limits: PresenceLimits,
    prefix: String,
    refs: AtomicU64,
    /// Where the next topic table's change numbers start: far past every
    /// earlier table's, so a topic emptied and tracked again never reuses a
    /// number another node has seen (it sees a jump, and asks for the state).
    next_versions: AtomicU64,
}

impl Presence {
    /// Empty, within `config`'s bounds.
    pub(crate) fn new(config: &PresenceConfig) -> Presence {
        Presence {
            topics: DashMap::new(),
            limits: PresenceLimits {
                max_keys: config.max_keys_per_topic,
                max_metas_per_key: config.max_metas_per_key,
                max_meta_bytes: config.max_meta_bytes,
            },
            prefix: format!("{:08x}", fastrand::u32(..)),
            refs: AtomicU64::new(0),
            next_versions: AtomicU64::new(0),
        }
    }

    fn next_ref(&self) -> String {
        let n = self.refs.fetch_add(1, Ordering::Relaxed);
        format!("{}{n:x}", self.prefix)
    }

    fn topic(&self, topic: &str) -> Arc<Mutex<TopicPresence>> {
        self.topics
            .entry(topic.to_owned())
            .or_insert_with(|| {
                let base = self.next_versions.fetch_add(1 << 32, Ordering::Relaxed);
                Arc::new(Mutex::new(TopicPresence::numbered_from(base)))
            })
            .clone()
    }

    /// Tracks `session` on `topic` under `key`; the diff reaches every member.
    pub(crate) fn track(
        &self,
        registry: &Registry,
        topic: &str,
        session: SessionId,
        key: &str,
        meta: &Value,
    ) -> Result<(), PresenceRefusal> {
        let shared = self.topic(topic);
        let mut table = lock(&shared);
        let tracked = table.track(session, key, meta, self.next_ref(), &self.limits);
        self.settle(registry, topic, &mut table, tracked)
    }

    /// Replaces the meta `session` has under `key` on `topic`.
    pub(crate) fn update(
        &self,
        registry: &Registry,
        topic: &str,
        session: SessionId,
        key: &str,
        meta: &Value,
    ) -> Result<(), PresenceRefusal> {
        let Some(shared) = self.existing(topic) else {
            return self.settle_refusal(PresenceRefusal::NotTracked);
        };
        let mut table = lock(&shared);
        let updated = table.update(session, key, meta, self.next_ref(), &self.limits);
        self.settle(registry, topic, &mut table, updated)
    }

    /// Stops tracking `session` on `topic` under `key` (every key: `None`).
    pub(crate) fn untrack(
        &self,
        registry: &Registry,
        topic: &str,
        session: SessionId,
        key: Option<&str>,
    ) {
        let Some(shared) = self.existing(topic) else {
            return;
        };
        let mut table = lock(&shared);
        let diff = table.untrack(session, key);
        let _ = self.settle(registry, topic, &mut table, Ok(diff));
    }

    /// Fans a change out (under the topic's lock) to local members and, in
    /// a cluster, to the other nodes; forgets an empty topic; a refusal is
    /// counted. A draining node publishes no leaves: its clients are moving
    /// to other nodes, and the others let its presences go only once it has
    /// been down for `cluster.down_after`.
    fn settle(
        &self,
        registry: &Registry,
        topic: &str,
        table: &mut MutexGuard<'_, TopicPresence>,
        changed: Result<Diff, PresenceRefusal>,
    ) -> Result<(), PresenceRefusal> {
        if table.is_empty() {
            // Whatever happened, an empty topic is not kept.
            self.topics
                .remove_if(topic, |_, shared| Arc::strong_count(shared) <= 2);
        }
        let diff = match changed {
            Ok(diff) => diff,
            Err(refusal) => return self.settle_refusal(refusal),
        };
        if !diff.is_empty() {
            registry.fan_out(topic, PRESENCE_DIFF, &diff.to_value());
            if let Some(cluster) = registry.cluster() {
                let leaves_only = diff.joins.is_empty();
                if !(leaves_only && cluster.is_draining()) {
                    let v = Presence::next_version(table);
                    cluster.publish_presence(topic, &diff.into_wire(v));
                }
            }
        }
        Ok(())
    }

    /// Counts a refusal and answers it.
    fn settle_refusal(&self, refusal: PresenceRefusal) -> Result<(), PresenceRefusal> {
        metrics::counter!("switchboard_presence_refused_total", "reason" => reason(refusal))
            .increment(1);
        Err(refusal)
    }

    /// `topic`'s presence, if anyone is tracked there.
    fn existing(&self, topic: &str) -> Option<Arc<Mutex<TopicPresence>>> {
        self.topics.get(topic).map(|entry| entry.clone())
    }

    /// `{key: {metas: [...]}}` of `topic` now.
    pub(crate) fn list(&self, topic: &str) -> Value {
        match self.existing(topic) {
            Some(shared) => lock(&shared).state(),
            None => Value::Object(Default::default()),
        }
    }

    /// Queues `presence_state` for one socket that joined `topic` with
    /// `join_ref`.
    pub(crate) fn push_state(&self, topic: &str, join_ref: Option<&str>, outbox: &Outbox) {
        // Queued under the topic's lock, so no change of it can come between.
        let queue = |state: &Value| {
            let frame = phoenix::encode_parts(join_ref, None, topic, PRESENCE_STATE, state);
            // On overflow the session is told through SlowConsumer and closes.
            let _ = outbox.push(ByteString::from(frame));
        };
        match self.existing(topic) {
            Some(shared) => queue(&lock(&shared).state()),
            None => queue(&Value::Object(Default::default())),
        }
    }
}

fn reason(refusal: PresenceRefusal) -> &'static str {
    match refusal {
        PresenceRefusal::TooManyKeys => "too_many_keys",
        PresenceRefusal::TooManyMetas => "too_many_metas",
        PresenceRefusal::MetaTooLarge => "meta_too_large",
        PresenceRefusal::NotTracked => "not_tracked",
    }
}

fn lock(shared: &Mutex<TopicPresence>) -> MutexGuard<'_, TopicPresence> {
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
