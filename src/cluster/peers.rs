//! The other nodes a node has heard from (pure, with the clock passed in).
//!
//! A node is up from its first heartbeat until `down_after` passes without
//! one; then it is down, and what it held (its presences) goes. A node that
//! said it was draining is kept as long as any other: its clients are
//! moving to other nodes, and its presences must not leave before they
//! have joined again elsewhere.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::wire::Heartbeat;

/// Most peers remembered; heartbeats of more are ignored (counted).
pub(crate) const MAX_PEERS: usize = 1024;

/// One peer as `/health` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct PeerView {
    /// Its id.
    pub node: String,
    /// `serving` or `draining`, as it last said.
    pub state: String,
    /// Milliseconds since its last heartbeat.
    pub last_seen_ms: u64,
    /// Its open sockets, as it last said.
    pub connections: usize,
}

struct Peer {
    last_seen: Instant,
    heartbeat: Heartbeat,
}

/// The peers heard from and not yet down.
#[derive(Default)]
pub(crate) struct PeerTable {
    peers: BTreeMap<String, Peer>,
}

impl PeerTable {
    /// Records a heartbeat; `false` when the table is full of other peers.
    /// Answers whether the peer is new (or back after being down).
    pub(crate) fn seen(&mut self, heartbeat: Heartbeat, now: Instant) -> Result<bool, ()> {
        if let Some(peer) = self.peers.get_mut(&heartbeat.node) {
            peer.last_seen = now;
            peer.heartbeat = heartbeat;
            return Ok(false);
        }
        if self.peers.len() >= MAX_PEERS {
            return Err(());
        }
        let node = heartbeat.node.clone();
        self.peers.insert(
            node,
            Peer {
                last_seen: now,
                heartbeat,
            },
        );
        Ok(true)
    }

    /// Whether `node` is up.
    pub(crate) fn knows(&self, node: &str) -> bool {
        self.peers.contains_key(node)
    }

    /// Removes and answers the peers not heard from for `down_after`.
    pub(crate) fn expire(&mut self, now: Instant, down_after: Duration) -> Vec<String> {
        let down: Vec<String> = self
            .peers
            .iter()
            .filter(|(_, peer)| now.saturating_duration_since(peer.last_seen) >= down_after)
            .map(|(node, _)| node.clone())
            .collect();
        for node in &down {
            self.peers.remove(node);
        }
        down
    }

    /// Every peer up now.
    pub(crate) fn view(&self, now: Instant) -> Vec<PeerView> {
        self.peers
            .iter()
            .map(|(node, peer)| PeerView {
                node: node.clone(),
                state: peer.heartbeat.state.clone(),
                last_seen_ms: u64::try_from(
                    now.saturating_duration_since(peer.last_seen).as_millis(),
                )
                .unwrap_or(u64::MAX),
                connections: peer.heartbeat.connections,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beat(node: &str, state: &str) -> Heartbeat {
        Heartbeat {
            node: node.to_owned(),
            state: state.to_owned(),
            connections: 1,
            topics: 1,
        }
    }

    #[test]
    fn a_peer_is_up_until_down_after_passes_without_a_heartbeat() {
        let start = Instant::now();
        let second = Duration::from_secs(1);
        let mut peers = PeerTable::default();
        assert_eq!(peers.seen(beat("a", "serving"), start), Ok(true));
        assert_eq!(peers.seen(beat("b", "draining"), start), Ok(true));
        assert_eq!(
            peers.seen(beat("a", "serving"), start + second * 2),
            Ok(false)
        );
        // b (draining) is kept like any other until down_after passes.
        assert!(peers.expire(start + second * 2, second * 3).is_empty());
        assert_eq!(peers.expire(start + second * 3, second * 3), ["b"]);
        let view = peers.view(start + second * 4);
        assert_eq!(view.len(), 1);
        assert_eq!((view[0].node.as_str(), view[0].last_seen_ms), ("a", 2000));
        assert_eq!(peers.expire(start + second * 5, second * 3), ["a"]);
        // Back after being down: new again.
        assert_eq!(
            peers.seen(beat("a", "serving"), start + second * 6),
            Ok(true)
        );
    }

    #[test]
    fn the_table_is_bounded() {
        let now = Instant::now();
        let mut peers = PeerTable::default();
        for n in 0..MAX_PEERS {
            peers.seen(beat(&format!("n{n}"), "serving"), now).unwrap();
        }
        assert_eq!(peers.seen(beat("one-too-many", "serving"), now), Err(()));
        assert_eq!(peers.seen(beat("n0", "serving"), now), Ok(false));
    }
}
