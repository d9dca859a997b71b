//! Presence across a cluster: what each other node holds on a topic.
//!
//! Every node publishes its own changes of a topic as numbered diffs
//! (`v` = 1, 2, …, per topic) and keeps, per other node, a copy of what that
//! node holds there. Joins and leaves are applied by `phx_ref`, so a diff
//! seen twice changes nothing. A node that starts following a topic asks
//! the others for their whole state; a copy that misses a number asks that
//! node again. Every change a copy goes through reaches this node's members
//! as one `presence_diff`, under the topic's lock like local changes.

use std::collections::BTreeMap;

use serde_json::Value;

use super::table::{Diff, PresenceLimits, TopicPresence};
use crate::cluster::wire::{Metas, PresenceWire};

/// What one other node holds on one topic.
#[derive(Default)]
pub(crate) struct RemoteCopy {
    /// Its last change applied.
    v: u64,
    pub(super) keys: Metas,
    /// A state arriving in parts.
    staging: Option<Metas>,
    /// Asked for its state again (after a reconnect) and not answered yet.
    stale: bool,
}

fn phx_ref(meta: &Value) -> Option<&str> {
    meta.get("phx_ref").and_then(Value::as_str)
}

impl RemoteCopy {
    fn join(&mut self, key: &str, meta: Value, limits: &PresenceLimits, diff: &mut Diff) {
        let Some(reference) = phx_ref(&meta).map(str::to_owned) else {
            return; // not a meta this hub made: ignored
        };
        if !self.keys.contains_key(key) && self.keys.len() >= limits.max_keys {
            metrics::counter!("switchboard_cluster_presence_dropped_total").increment(1);
            return;
        }
        let metas = self.keys.entry(key.to_owned()).or_default();
        let known = metas.iter().any(|m| phx_ref(m) == Some(&reference));
        if known || metas.len() >= limits.max_metas_per_key {
            return;
        }
        metas.push(meta.clone());
        diff.joins.entry(key.to_owned()).or_default().push(meta);
    }

    fn leave(&mut self, key: &str, meta: &Value, diff: &mut Diff) {
        let (Some(reference), Some(metas)) = (phx_ref(meta), self.keys.get_mut(key)) else {
            return;
        };
        let (gone, kept): (Vec<Value>, Vec<Value>) =
            metas.drain(..).partition(|m| phx_ref(m) == Some(reference));
        *metas = kept;
        if metas.is_empty() {
            self.keys.remove(key);
        }
        if !gone.is_empty() {
            diff.leaves.entry(key.to_owned()).or_default().extend(gone);
        }
    }

    /// Replaces everything with `state`: what left, then what joined.
    fn replace(&mut self, state: Metas, limits: &PresenceLimits, diff: &mut Diff) {
        let old = std::mem::take(&mut self.keys);
        for (key, metas) in &old {
            for meta in metas {
                let still = state
                    .get(key)
                    .is_some_and(|new| new.iter().any(|m| phx_ref(m) == phx_ref(meta)));
                if still {
                    self.keys.entry(key.clone()).or_default().push(meta.clone());
                } else {
                    diff.leaves
                        .entry(key.clone())
                        .or_default()
                        .push(meta.clone());
                }
            }
        }
        for (key, metas) in state {
            for meta in metas {
                self.join(&key, meta, limits, diff);
            }
        }
    }
}

impl TopicPresence {
    /// Applies `wire` from `node`; answers the change for local members and
    /// whether a change of `node`'s was missed (ask it for its state).
    pub(super) fn apply_remote(
        &mut self,
        node: &str,
        wire: PresenceWire,
        limits: &PresenceLimits,
    ) -> (Diff, bool) {
        let copy = self.remote.entry(node.to_owned()).or_default();
        let mut diff = Diff::default();
        match wire {
            PresenceWire::Diff { v, joins, leaves } => {
                if v <= copy.v {
                    return (diff, false);
                }
                let missed = copy.v != 0 && Some(v) != copy.v.checked_add(1);
                copy.v = v;
                for (key, metas) in &leaves {
                    for meta in metas {
                        copy.leave(key, meta, &mut diff);
                    }
                }
                for (key, metas) in joins {
                    for meta in metas {
                        copy.join(&key, meta, limits, &mut diff);
                    }
                }
                (diff, missed)
            }
            PresenceWire::State {
                v,
                keys,
                first,
                last,
            } => {
                let staging = if first {
                    copy.staging.insert(BTreeMap::new())
                } else {
                    match copy.staging.as_mut() {
                        Some(staging) => staging,
                        None => return (diff, false), // its first part was missed
                    }
                };
                // Bounded as the parts arrive, as a copy is.
                for (key, metas) in keys {
                    if !staging.contains_key(&key) && staging.len() >= limits.max_keys {
                        metrics::counter!("switchboard_cluster_presence_dropped_total")
                            .increment(1);
                        continue;
                    }
                    let kept = staging.entry(key).or_default();
                    let room = limits.max_metas_per_key.saturating_sub(kept.len());
                    kept.extend(metas.into_iter().take(room));
                }
                if last {
                    let state = copy.staging.take().unwrap_or_default();
                    copy.replace(state, limits, &mut diff);
                    copy.v = copy.v.max(v);
                    copy.stale = false;
                }
                (diff, false)
            }
            PresenceWire::Sync { .. } => (diff, false),
        }
    }

    /// Marks every copy as asked for its state again.
    pub(super) fn mark_stale(&mut self) {
        for copy in self.remote.values_mut() {
            copy.stale = true;
        }
    }

    /// Forgets the copies still stale: what they held leaves.
    pub(super) fn drop_stale(&mut self) -> Diff {
        let stale: Vec<String> = self
            .remote
            .iter()
            .filter(|(_, copy)| copy.stale)
            .map(|(node, _)| node.clone())
            .collect();
        let mut diff = Diff::default();
        for node in stale {
            for (key, metas) in self.drop_remote(&node).leaves {
                diff.leaves.entry(key).or_default().extend(metas);
            }
        }
        diff
    }

    /// Forgets what `node` holds: every meta of it leaves.
    pub(super) fn drop_remote(&mut self, node: &str) -> Diff {
        let mut diff = Diff::default();
        if let Some(copy) = self.remote.remove(node) {
            diff.leaves = copy.keys;
        }
        diff
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LIMITS: PresenceLimits = PresenceLimits {
        max_keys: 10,
        max_metas_per_key: 4,
        max_meta_bytes: 1024,
    };

    fn metas(entries: &[(&str, &str)]) -> Metas {
        let mut out = Metas::new();
        for (key, reference) in entries {
            out.entry((*key).to_owned())
                .or_default()
                .push(json!({"phx_ref": reference}));
        }
        out
    }

    fn diff(v: u64, joins: &[(&str, &str)], leaves: &[(&str, &str)]) -> PresenceWire {
        PresenceWire::Diff {
            v,
            joins: metas(joins),
            leaves: metas(leaves),
        }
    }

    #[test]
    fn remote_diffs_apply_once_in_order_and_a_missed_one_is_noticed() {
        let mut table = TopicPresence::default();
        let (joined, missed) = table.apply_remote("b", diff(1, &[("ann", "r1")], &[]), &LIMITS);
        assert!(!missed);
        assert_eq!(
            joined.to_value()["joins"]["ann"]["metas"][0]["phx_ref"],
            "r1"
        );
        // Seen again: nothing.
        let (again, _) = table.apply_remote("b", diff(1, &[("ann", "r1")], &[]), &LIMITS);
        assert!(again.is_empty());
        // 2 was missed: 3 applies, and the gap is noticed.
        let (third, missed) =
            table.apply_remote("b", diff(3, &[("bob", "r2")], &[("ann", "r1")]), &LIMITS);
        assert!(missed);
        assert_eq!(
            third.to_value()["leaves"]["ann"]["metas"][0]["phx_ref"],
            "r1"
        );
        assert_eq!(
            table.state(),
            json!({"bob": {"metas": [{"phx_ref": "r2"}]}})
        );
        // A leave of something unknown changes nothing.
        let (nothing, _) = table.apply_remote("b", diff(4, &[], &[("zed", "r9")]), &LIMITS);
        assert!(nothing.is_empty());
    }

    #[test]
    fn a_state_in_parts_replaces_the_copy_and_unanswered_or_down_nodes_leave() {
        let mut table = TopicPresence::default();
        table.apply_remote("b", diff(1, &[("ann", "r1"), ("bob", "r2")], &[]), &LIMITS);
        let part = |keys, first, last| PresenceWire::State {
            v: 7,
            keys,
            first,
            last,
        };
        let (none, _) =
            table.apply_remote("b", part(metas(&[("bob", "r2")]), true, false), &LIMITS);
        assert!(none.is_empty(), "nothing changes before the last part");
        let (swapped, _) =
            table.apply_remote("b", part(metas(&[("cy", "r3")]), false, true), &LIMITS);
        let swapped = swapped.to_value();
        assert_eq!(swapped["leaves"]["ann"]["metas"][0]["phx_ref"], "r1");
        assert_eq!(swapped["joins"]["cy"]["metas"][0]["phx_ref"], "r3");
        assert!(swapped["leaves"].get("bob").is_none(), "{swapped}");
        // A part whose first part was missed is ignored.
        let (ignored, _) =
            table.apply_remote("b", part(metas(&[("dee", "r4")]), false, true), &LIMITS);
        assert!(ignored.is_empty());
        table.apply_remote("c", diff(1, &[("dee", "r5")], &[]), &LIMITS);
        table.mark_stale();
        let answered = PresenceWire::State {
            v: 2,
            keys: metas(&[("dee", "r5")]),
            first: true,
            last: true,
        };
        table.apply_remote("c", answered, &LIMITS);
        let unanswered = table.drop_stale().to_value();
        assert_eq!(
            unanswered["leaves"]["bob"]["metas"][0]["phx_ref"], "r2",
            "{unanswered}"
        );
        assert!(unanswered["leaves"].get("dee").is_none(), "{unanswered}");
        let gone = table.drop_remote("c").to_value();
        assert_eq!(gone["leaves"]["dee"]["metas"][0]["phx_ref"], "r5");
        assert!(table.is_empty());
    }

    #[test]
    fn remote_copies_are_bounded_and_metas_without_a_ref_are_ignored() {
        let limits = PresenceLimits {
            max_keys: 1,
            max_metas_per_key: 1,
            ..LIMITS
        };
        let mut table = TopicPresence::default();
        table.apply_remote(
            "b",
            diff(1, &[("ann", "r1"), ("ann", "r2"), ("bob", "r3")], &[]),
            &limits,
        );
        assert_eq!(
            table.state(),
            json!({"ann": {"metas": [{"phx_ref": "r1"}]}})
        );
        let mut stray = Metas::new();
        stray.insert("x".to_owned(), vec![json!("not a meta")]);
        let (nothing, _) = table.apply_remote(
            "c",
            PresenceWire::Diff {
                v: 1,
                joins: stray,
                leaves: Metas::new(),
            },
            &LIMITS,
        );
        assert!(nothing.is_empty());
    }
}
