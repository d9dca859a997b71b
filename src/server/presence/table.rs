//! Who is present on one topic (pure): keys, each with the metas of the
//! sockets tracked under it, and the diffs that changes make, in the shape
//! phoenix.js's `Presence` reads (`{key: {metas: [{phx_ref, ...}]}}`).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::server::registry::SessionId;

/// The bounds of one topic's presence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PresenceLimits {
    /// Most keys tracked on a topic.
    pub max_keys: usize,
    /// Most metas under one key (one per tracked socket).
    pub max_metas_per_key: usize,
    /// Largest meta, encoded as JSON.
    pub max_meta_bytes: usize,
}

/// Why a track or update was refused (counted by the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PresenceRefusal {
    /// The topic has `max_keys` keys already.
    #[error("too many presence keys on this topic")]
    TooManyKeys,
    /// The key has `max_metas_per_key` metas already.
    #[error("too many presences under this key")]
    TooManyMetas,
    /// The meta is larger than `max_meta_bytes` (or not an object).
    #[error("presence meta too large or not an object")]
    MetaTooLarge,
    /// Update or untrack of a socket that is not tracked under the key.
    #[error("not tracked under this key")]
    NotTracked,
}

pub(super) struct Tracked {
    session: SessionId,
    pub(super) meta: Map<String, Value>,
}

/// One topic's presence: this node's sockets, and in a cluster what each
/// other node said it holds ([`remote`](super::remote)).
#[derive(Default)]
pub(crate) struct TopicPresence {
    pub(super) keys: BTreeMap<String, Vec<Tracked>>,
    pub(super) remote: BTreeMap<String, super::remote::RemoteCopy>,
    /// How many changes of this node's own presence here were published.
    pub(super) version: u64,
}

/// A change: metas that joined and metas that left, by key.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Diff {
    pub(super) joins: BTreeMap<String, Vec<Value>>,
    pub(super) leaves: BTreeMap<String, Vec<Value>>,
}

impl Diff {
    /// Whether nothing changed.
    pub(crate) fn is_empty(&self) -> bool {
        self.joins.is_empty() && self.leaves.is_empty()
    }

    /// The change as other nodes get it, as this node's `v`-th.
    pub(crate) fn into_wire(self, v: u64) -> crate::cluster::wire::PresenceWire {
        crate::cluster::wire::PresenceWire::Diff {
            v,
            joins: self.joins,
            leaves: self.leaves,
        }
    }

    /// `{"joins": {key: {"metas": [...]}}, "leaves": {...}}`.
    pub(crate) fn to_value(&self) -> Value {
        json!({ "joins": by_key(&self.joins), "leaves": by_key(&self.leaves) })
    }
}

fn by_key(metas: &BTreeMap<String, Vec<Value>>) -> Value {
    Value::Object(
        metas
            .iter()
            .map(|(key, metas)| (key.clone(), json!({ "metas": metas })))
            .collect(),
    )
}

impl TopicPresence {
    /// An empty table whose own changes are numbered from `base + 1`.
    pub(crate) fn numbered_from(base: u64) -> TopicPresence {
        TopicPresence {
            version: base,
            ..TopicPresence::default()
        }
    }

    /// Whether nobody is tracked, here or on another node.
    pub(crate) fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.remote.values().all(|copy| copy.keys.is_empty())
    }

    /// This node's own metas, by key.
    pub(crate) fn local_metas(&self) -> BTreeMap<String, Vec<Value>> {
        self.keys
            .iter()
            .map(|(key, tracked)| {
                let metas = tracked
                    .iter()
                    .map(|tracked| Value::Object(tracked.meta.clone()))
                    .collect();
                (key.clone(), metas)
            })
            .collect()
    }

    /// `{key: {"metas": [...]}}`, as `presence_state` carries it: this
    /// node's metas, then every other node's.
    pub(crate) fn state(&self) -> Value {
        let mut all = self.local_metas();
        for copy in self.remote.values() {
            for (key, metas) in &copy.keys {
                all.entry(key.clone())
                    .or_default()
                    .extend(metas.iter().cloned());
            }
        }
        by_key(&all)
    }

    /// Tracks `session` under `key` with `meta`, stamped with `phx_ref`.
    pub(crate) fn track(
        &mut self,
        session: SessionId,
        key: &str,
        meta: &Value,
        phx_ref: String,
        limits: &PresenceLimits,
    ) -> Result<Diff, PresenceRefusal> {
        let meta = checked(meta, limits)?;
        if !self.keys.contains_key(key) && self.keys.len() >= limits.max_keys {
            return Err(PresenceRefusal::TooManyKeys);
        }
        let tracked = self.keys.entry(key.to_owned()).or_default();
        if tracked.len() >= limits.max_metas_per_key {
            if tracked.is_empty() {
                self.keys.remove(key);
            }
            return Err(PresenceRefusal::TooManyMetas);
        }
        let meta = stamped(meta, phx_ref, None);
        tracked.push(Tracked {
            session,
            meta: meta.clone(),
        });
        let mut diff = Diff::default();
        diff.joins.insert(key.to_owned(), vec![Value::Object(meta)]);
        Ok(diff)
    }

    /// Replaces the meta `session` has under `key`: the old one leaves, the
    /// new one (with `phx_ref_prev`) joins, in one diff.
    pub(crate) fn update(
        &mut self,
        session: SessionId,
        key: &str,
        meta: &Value,
        phx_ref: String,
        limits: &PresenceLimits,
    ) -> Result<Diff, PresenceRefusal> {
        let meta = checked(meta, limits)?;
        let tracked = self
            .keys
            .get_mut(key)
            .and_then(|tracked| tracked.iter_mut().find(|t| t.session == session))
            .ok_or(PresenceRefusal::NotTracked)?;
        let previous = tracked.meta.get("phx_ref").cloned();
        let new = stamped(meta, phx_ref, previous);
        let old = std::mem::replace(&mut tracked.meta, new.clone());
        let mut diff = Diff::default();
        diff.joins.insert(key.to_owned(), vec![Value::Object(new)]);
        diff.leaves.insert(key.to_owned(), vec![Value::Object(old)]);
        Ok(diff)
    }

    /// Stops tracking `session` under `key` (every key: `None`).
    pub(crate) fn untrack(&mut self, session: SessionId, key: Option<&str>) -> Diff {
        let mut diff = Diff::default();
        self.keys.retain(|name, tracked| {
            if key.is_some_and(|key| key != name) {
                return true;
            }
            let (gone, kept): (Vec<Tracked>, Vec<Tracked>) =
                tracked.drain(..).partition(|t| t.session == session);
            *tracked = kept;
            if !gone.is_empty() {
                let metas = gone.into_iter().map(|t| Value::Object(t.meta)).collect();
                diff.leaves.insert(name.clone(), metas);
            }
            !tracked.is_empty()
        });
        diff
    }
}

fn checked(meta: &Value, limits: &PresenceLimits) -> Result<Map<String, Value>, PresenceRefusal> {
    let Value::Object(fields) = meta else {
        return Err(PresenceRefusal::MetaTooLarge);
    };
    if meta.to_string().len() > limits.max_meta_bytes {
        return Err(PresenceRefusal::MetaTooLarge);
    }
    Ok(fields.clone())
}

fn stamped(
    mut meta: Map<String, Value>,
    phx_ref: String,
    previous: Option<Value>,
) -> Map<String, Value> {
    meta.remove("phx_ref_prev");
    meta.insert("phx_ref".to_owned(), Value::String(phx_ref));
    if let Some(previous) = previous {
        meta.insert("phx_ref_prev".to_owned(), previous);
    }
    meta
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: PresenceLimits = PresenceLimits {
        max_keys: 2,
        max_metas_per_key: 2,
        max_meta_bytes: 64,
    };

    #[test]
    fn track_update_untrack_make_phoenix_shaped_diffs() {
        let mut presence = TopicPresence::default();
        let joined = presence.track(1, "ann", &json!({"d": "phone"}), "r1".into(), &LIMITS);
        assert_eq!(
            joined.unwrap().to_value(),
            json!({"joins": {"ann": {"metas": [{"d": "phone", "phx_ref": "r1"}]}}, "leaves": {}})
        );
        presence
            .track(2, "ann", &json!({"d": "laptop"}), "r2".into(), &LIMITS)
            .unwrap();
        let updated = presence.update(1, "ann", &json!({"d": "tablet"}), "r3".into(), &LIMITS);
        assert_eq!(
            updated.unwrap().to_value(),
            json!({
                "joins": {"ann": {"metas": [{"d": "tablet", "phx_ref": "r3", "phx_ref_prev": "r1"}]}},
                "leaves": {"ann": {"metas": [{"d": "phone", "phx_ref": "r1"}]}}
            })
        );
        assert_eq!(
            presence.state()["ann"]["metas"].as_array().unwrap().len(),
            2
        );
        let left = presence.untrack(2, None);
        assert_eq!(
            left.to_value()["leaves"]["ann"]["metas"][0]["phx_ref"],
            "r2"
        );
        presence.untrack(1, Some("ann"));
        assert!(presence.is_empty());
    }

    #[test]
    fn every_bound_is_refused_and_nothing_changes() {
        let mut presence = TopicPresence::default();
        presence
            .track(1, "a", &json!({}), "1".into(), &LIMITS)
            .unwrap();
        presence
            .track(2, "a", &json!({}), "2".into(), &LIMITS)
            .unwrap();
        let full = presence.track(3, "a", &json!({}), "3".into(), &LIMITS);
        assert_eq!(full.unwrap_err(), PresenceRefusal::TooManyMetas);
        presence
            .track(3, "b", &json!({}), "4".into(), &LIMITS)
            .unwrap();
        let keys = presence.track(4, "c", &json!({}), "5".into(), &LIMITS);
        assert_eq!(keys.unwrap_err(), PresenceRefusal::TooManyKeys);
        let big = json!({"pad": "x".repeat(100)});
        let large = presence.track(4, "b", &big, "6".into(), &LIMITS);
        assert_eq!(large.unwrap_err(), PresenceRefusal::MetaTooLarge);
        let not_object = presence.track(4, "b", &json!("x"), "7".into(), &LIMITS);
        assert_eq!(not_object.unwrap_err(), PresenceRefusal::MetaTooLarge);
        let stranger = presence.update(9, "a", &json!({}), "8".into(), &LIMITS);
        assert_eq!(stranger.unwrap_err(), PresenceRefusal::NotTracked);
        assert!(presence.untrack(9, None).is_empty());
    }
}
