//! A topic's presence as the client sees it: `presence_state` and
//! `presence_diff` applied the way phoenix.js's `Presence` applies them
//! ([`PresenceList`], pure), kept current by a task per topic
//! ([`TopicPresence`], from [`PhoenixHandle::presence`]).
//!
//! [`PhoenixHandle::presence`]: crate::client::PhoenixHandle::presence

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use tokio::sync::{broadcast, mpsc, watch};

use super::subscription::Incoming;

/// Who is on a topic: each key with its metas, in phoenix.js's order (the
/// metas a key kept first, then the ones that joined).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PresenceList {
    keys: BTreeMap<String, Vec<Value>>,
}

/// One change to a [`PresenceList`].
#[derive(Debug, Clone, PartialEq)]
pub enum PresenceChange {
    /// Metas joined under `key` (a new key, or another socket of it).
    Joined {
        /// The key.
        key: String,
        /// The metas that joined.
        metas: Vec<Value>,
    },
    /// Metas left `key`; `gone` when it has none left.
    Left {
        /// The key.
        key: String,
        /// The metas that left.
        metas: Vec<Value>,
        /// Whether the key left altogether.
        gone: bool,
    },
}

impl PresenceList {
    /// Every key and its metas.
    pub fn keys(&self) -> &BTreeMap<String, Vec<Value>> {
        &self.keys
    }

    /// The metas of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&[Value]> {
        self.keys.get(key).map(Vec::as_slice)
    }

    /// Replaces the list by a `presence_state` (`{key: {metas: [...]}}`),
    /// answering what changed: keys and metas absent from it leave, new
    /// ones join.
    pub fn sync_state(&mut self, state: &Value) -> Vec<PresenceChange> {
        let incoming = metas_by_key(state);
        let mut joins = BTreeMap::new();
        let mut leaves = BTreeMap::new();
        for (key, current) in &self.keys {
            match incoming.get(key) {
                None => {
                    leaves.insert(key.clone(), current.clone());
                }
                Some(new) => {
                    let left: Vec<Value> = current
                        .iter()
                        .filter(|m| !has_ref(new, m))
                        .cloned()
                        .collect();
                    if !left.is_empty() {
                        leaves.insert(key.clone(), left);
                    }
                }
            }
        }
        for (key, new) in incoming {
            let joined: Vec<Value> = match self.keys.get(&key) {
                Some(current) => new.into_iter().filter(|m| !has_ref(current, m)).collect(),
                None => new,
            };
            if !joined.is_empty() {
                joins.insert(key, joined);
            }
        }
        self.apply(joins, leaves)
    }

    /// Applies a `presence_diff` (`{joins: {...}, leaves: {...}}`).
    pub fn sync_diff(&mut self, diff: &Value) -> Vec<PresenceChange> {
        let joins = metas_by_key(&diff["joins"]);
        let leaves = metas_by_key(&diff["leaves"]);
        self.apply(joins, leaves)
    }

    fn apply(
        &mut self,
        joins: BTreeMap<String, Vec<Value>>,
        leaves: BTreeMap<String, Vec<Value>>,
    ) -> Vec<PresenceChange> {
        let mut changes = Vec::new();
        for (key, joined) in joins {
            let mut metas: Vec<Value> = self
                .keys
                .get(&key)
                .map(|current| {
                    current
                        .iter()
                        .filter(|m| !has_ref(&joined, m))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            metas.extend(joined.iter().cloned());
            self.keys.insert(key.clone(), metas);
            changes.push(PresenceChange::Joined { key, metas: joined });
        }
        for (key, left) in leaves {
            let Some(current) = self.keys.get_mut(&key) else {
                continue;
            };
            current.retain(|m| !has_ref(&left, m));
            let gone = current.is_empty();
            if gone {
                self.keys.remove(&key);
            }
            changes.push(PresenceChange::Left {
                key,
                metas: left,
                gone,
            });
        }
        changes
    }
}

fn metas_by_key(value: &Value) -> BTreeMap<String, Vec<Value>> {
    let empty = Map::new();
    value
        .as_object()
        .unwrap_or(&empty)
        .iter()
        .map(|(key, presence)| {
            let metas = presence["metas"].as_array().cloned().unwrap_or_default();
            (key.clone(), metas)
        })
        .collect()
}

fn has_ref(metas: &[Value], meta: &Value) -> bool {
    let wanted = &meta["phx_ref"];
    metas.iter().any(|m| &m["phx_ref"] == wanted)
}

/// A topic's presence, kept current from the topic's `presence_state` and
/// `presence_diff` (for the connection's life, across rejoins).
#[derive(Debug)]
pub struct TopicPresence {
    list: watch::Receiver<PresenceList>,
    changes: broadcast::Sender<PresenceChange>,
}

impl TopicPresence {
    /// Follows `incoming` (the topic's messages).
    pub(crate) fn follow(mut incoming: mpsc::Receiver<Incoming>) -> TopicPresence {
        let (list_sender, list) = watch::channel(PresenceList::default());
        let (changes, _) = broadcast::channel(256);
        let announce = changes.clone();
        actix::spawn(async move {
            while let Some(message) = incoming.recv().await {
                let mut changed = Vec::new();
                list_sender.send_modify(|list| {
                    changed = match message.event.as_str() {
                        "presence_state" => list.sync_state(&message.payload.to_value()),
                        "presence_diff" => list.sync_diff(&message.payload.to_value()),
                        _ => Vec::new(),
                    };
                });
                for change in changed {
                    // Nobody listening, or a listener behind: the list is
                    // still current.
                    let _ = announce.send(change);
                }
            }
        });
        TopicPresence { list, changes }
    }

    /// The list now.
    pub fn list(&self) -> PresenceList {
        self.list.borrow().clone()
    }

    /// Waits for the next change of the list; `false` once it can no
    /// longer change (the connection closed).
    pub async fn changed(&mut self) -> bool {
        self.list.changed().await.is_ok()
    }

    /// Joins and leaves from now on (a listener that falls 256 behind
    /// loses the oldest; the list itself stays whole).
    pub fn changes(&self) -> broadcast::Receiver<PresenceChange> {
        self.changes.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn meta(r: &str) -> Value {
        json!({"phx_ref": r})
    }

    #[test]
    fn state_then_diffs_as_phoenix_js_applies_them() {
        let mut list = PresenceList::default();
        let joined = list.sync_state(&json!({"ann": {"metas": [meta("1")]}}));
        assert_eq!(joined.len(), 1);
        list.sync_diff(&json!({"joins": {"ann": {"metas": [meta("2")]}}, "leaves": {}}));
        assert_eq!(list.get("ann"), Some(&[meta("1"), meta("2")][..]));
        // An update: the new meta joins, the old one leaves, in one diff.
        list.sync_diff(&json!({
            "joins": {"ann": {"metas": [{"phx_ref": "3", "phx_ref_prev": "1"}]}},
            "leaves": {"ann": {"metas": [meta("1")]}}
        }));
        assert_eq!(
            list.get("ann"),
            Some(&[meta("2"), json!({"phx_ref": "3", "phx_ref_prev": "1"})][..])
        );
        let left = list.sync_diff(&json!({"joins": {}, "leaves": {"ann": {"metas": [meta("2"), json!({"phx_ref": "3"})]}}}));
        assert!(matches!(
            &left[..],
            [PresenceChange::Left { gone: true, .. }]
        ));
        assert!(list.keys().is_empty());
    }

    #[test]
    fn a_new_state_after_a_rejoin_replaces_without_duplicates() {
        let mut list = PresenceList::default();
        list.sync_state(&json!({"ann": {"metas": [meta("1")]}, "bob": {"metas": [meta("2")]}}));
        // The same diff twice (before and after the state) changes nothing more.
        let diff = json!({"joins": {"cy": {"metas": [meta("3")]}}, "leaves": {}});
        list.sync_diff(&diff);
        list.sync_diff(&diff);
        assert_eq!(list.get("cy"), Some(&[meta("3")][..]));
        // After a hub restart: new refs for ann, bob gone.
        let changes =
            list.sync_state(&json!({"ann": {"metas": [meta("9")]}, "cy": {"metas": [meta("3")]}}));
        assert_eq!(list.get("ann"), Some(&[meta("9")][..]));
        assert_eq!(list.get("bob"), None);
        assert_eq!(changes.len(), 3, "{changes:?}");
    }
}
