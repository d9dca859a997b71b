//! The snapshot's bound: the largest JSON its limits allow.

use super::*;
use crate::server::http::dashboard::series::KEPT;

fn long(c: char) -> String {
    cut(&c.to_string().repeat(10 * NAME_CHARS))
}

#[test]
fn names_are_cut_on_a_character_boundary() {
    assert_eq!(cut("room:lobby"), "room:lobby");
    let cut_name = cut(&"é".repeat(NAME_CHARS + 1));
    assert_eq!(
        cut_name.chars().count(),
        NAME_CHARS + 1,
        "the names and an ellipsis"
    );
    assert!(cut_name.ends_with('…'));
}

#[test]
fn the_largest_snapshot_fits_its_bound() {
    let point = Point {
        t: u64::from(u32::MAX) * 1000,
        connections: 1_000_000,
        opened: 123_456.78,
        closed: 123_456.78,
        topics: 1_000_000,
        utilization: 0.1234,
        sink: 123_456.78,
    };
    let episode = Episode {
        count: u64::MAX,
        after: u64::MAX,
        seen: u64::MAX,
        end: Some(u64::MAX),
        peak: 0.1234,
    };
    let episodes = vec![&episode; 10];
    let row = |rank: usize| TopicRow {
        topic: long('t'),
        members: usize::MAX,
        messages_per_s: Some(123_456.78),
        presence: (rank < PRESENCE_TOPICS).then(|| PresenceCount {
            keys: usize::MAX,
            metas: usize::MAX,
            names: vec![long('k'); PRESENCE_KEYS],
        }),
    };
    let drops = drops_of_every_kind();
    let view = View {
        snapshot: u64::MAX,
        at: u64::MAX,
        status: "connecting",
        healthy: false,
        mode: "client",
        client: Some(PullHealth {
            remote_url: long('u'),
            connected: false,
            gave_up: false,
        }),
        connections: Connections {
            now: usize::MAX,
            max: usize::MAX,
            opened_per_s: 123_456.78,
            closed_per_s: 123_456.78,
        },
        series: std::iter::repeat_n(&point, KEPT).collect(),
        topics: Topics {
            count: usize::MAX,
            rows: Some((0..TOPICS).map(row).collect()),
        },
        queue: Queue {
            depth: usize::MAX,
            capacity: usize::MAX,
            utilization: 0.1234,
            in_flight: usize::MAX,
            slow: true,
            slow_episodes: u64::MAX,
            resumed: u64::MAX,
            episodes,
        },
        sink: Sink {
            delivered: u64::MAX,
            per_s: 123_456.78,
            retries: u64::MAX,
            retries_per_s: 123_456.78,
        },
        drops,
        cluster: Some(Cluster {
            node_id: long('n'),
            state: "disconnected",
            lag_ms: 123_456.789,
            pending: usize::MAX,
            subscriptions: usize::MAX,
            published: u64::MAX,
            delivered: u64::MAX,
            dropped: u64::MAX,
            peers_total: usize::MAX,
            peers: (0..PEERS)
                .map(|_| Peer {
                    node: long('p'),
                    state: long('s'),
                    last_seen_ms: u64::MAX,
                    connections: usize::MAX,
                })
                .collect(),
        }),
        dashboard: Served {
            snapshots: u64::MAX,
            bodies: u64::MAX,
            bytes: u64::MAX,
            not_modified: u64::MAX,
            busy: u64::MAX,
            interval_ms: u64::MAX,
            max_bodies_per_interval: usize::MAX,
            max_body_bytes: usize::MAX,
        },
    };
    let size = serde_json::to_vec(&view).expect("serializes").len();
    assert!(size <= MAX_BODY_BYTES, "{size} bytes");
    assert!(
        size > MAX_BODY_BYTES / 2,
        "the bound is not far off: {size} bytes"
    );
}

/// One row per drop counter the hub keeps, each at its largest.
fn drops_of_every_kind() -> Vec<Drop> {
    drops::names()
        .into_iter()
        .map(|(group, reason)| Drop {
            group,
            reason,
            total: u64::MAX,
            per_s: 123_456.78,
        })
        .collect()
}
