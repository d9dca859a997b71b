//! One snapshot of the hub as the page shows it, bounded whatever the hub's
//! size: the [`TOPICS`] topics with the most members, presence counted on
//! the first [`PRESENCE_TOPICS`] of them, at most [`PEERS`] cluster nodes,
//! every name cut at [`NAME_CHARS`] characters, a minute of points.

use std::collections::HashMap;
use std::time::Instant;

use serde::Serialize;
use serde_json::Value;

use super::drops;
use super::series::{round, Episode, Point, Sample, Series};
use crate::cluster::ClusterHealth;
use crate::protocol::clock::unix_millis;
use crate::server::http::health::Health;
use crate::server::pull::PullHealth;
use crate::server::service::HubService;

/// Topics listed.
pub(super) const TOPICS: usize = 50;
/// Topics whose presence is counted (the busiest).
pub(super) const PRESENCE_TOPICS: usize = 10;
/// Presence is read only on topics with at most this many members here.
const PRESENCE_MEMBERS: usize = 500;
/// Presence keys named per topic.
pub(super) const PRESENCE_KEYS: usize = 8;
/// Cluster nodes listed.
pub(super) const PEERS: usize = 50;
/// Longest name shown (topics, keys, nodes, URLs).
pub(super) const NAME_CHARS: usize = 128;
/// What these bounds make the largest JSON (checked in the tests).
pub(super) const MAX_BODY_BYTES: usize = 64 * 1024;

/// The dashboard's own cost so far, shown with the figures.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub(super) struct Served {
    /// Snapshots taken (at most one per interval).
    pub snapshots: u64,
    /// `state` bodies sent, and their bytes.
    pub bodies: u64,
    pub bytes: u64,
    /// Answered 304 (the viewer had the snapshot) and 429 (over the
    /// interval's budget of bodies).
    pub not_modified: u64,
    pub busy: u64,
    pub interval_ms: u64,
    pub max_bodies_per_interval: usize,
    pub max_body_bytes: usize,
}

/// What is kept from one snapshot to the next: the samples, and each
/// listed topic's message counter (for its rate).
#[derive(Debug, Default)]
pub(super) struct Reader {
    series: Series,
    sent: HashMap<String, u64>,
}

#[derive(Serialize)]
struct View<'a> {
    snapshot: u64,
    at: u64,
    status: &'static str,
    healthy: bool,
    mode: &'static str,
    client: Option<PullHealth>,
    connections: Connections,
    series: Columns,
    topics: Topics,
    queue: Queue<'a>,
    sink: Sink,
    drops: Vec<Drop>,
    cluster: Option<Cluster>,
    dashboard: Served,
}

#[derive(Serialize)]
struct Connections {
    now: usize,
    max: usize,
    opened_per_s: f64,
    closed_per_s: f64,
}

/// The last minute's points, one array per figure (oldest first).
#[derive(Default, Serialize)]
struct Columns {
    t: Vec<u64>,
    connections: Vec<usize>,
    opened: Vec<f64>,
    closed: Vec<f64>,
    topics: Vec<usize>,
    utilization: Vec<f64>,
    sink: Vec<f64>,
}

impl<'a> FromIterator<&'a Point> for Columns {
    fn from_iter<I: IntoIterator<Item = &'a Point>>(points: I) -> Columns {
        let mut columns = Columns::default();
        for point in points {
            columns.t.push(point.t);
            columns.connections.push(point.connections);
            columns.opened.push(point.opened);
            columns.closed.push(point.closed);
            columns.topics.push(point.topics);
            columns.utilization.push(point.utilization);
            columns.sink.push(point.sink);
        }
        columns
    }
}

#[derive(Serialize)]
struct Topics {
    /// Topics with members now.
    count: usize,
    /// The busiest, or `None` where this hub cannot list them.
    rows: Option<Vec<TopicRow>>,
}

#[derive(Serialize)]
struct TopicRow {
    topic: String,
    members: usize,
    messages_per_s: Option<f64>,
    presence: Option<PresenceCount>,
}

#[derive(Serialize)]
struct PresenceCount {
    keys: usize,
    metas: usize,
    /// The first keys, by name.
    names: Vec<String>,
}

#[derive(Serialize)]
struct Queue<'a> {
    depth: usize,
    capacity: usize,
    utilization: f64,
    in_flight: usize,
    slow: bool,
    slow_episodes: u64,
    resumed: u64,
    episodes: Vec<&'a Episode>,
}

#[derive(Serialize)]
struct Sink {
    delivered: u64,
    per_s: f64,
    retries: u64,
    retries_per_s: f64,
}

#[derive(Serialize)]
struct Drop {
    group: &'static str,
    reason: &'static str,
    total: u64,
    per_s: f64,
}

#[derive(Serialize)]
struct Cluster {
    node_id: String,
    state: &'static str,
    lag_ms: f64,
    pending: usize,
    subscriptions: usize,
    published: u64,
    delivered: u64,
    dropped: u64,
    peers_total: usize,
    peers: Vec<Peer>,
}

#[derive(Serialize)]
struct Peer {
    node: String,
    state: String,
    last_seen_ms: u64,
    connections: usize,
}

impl Reader {
    /// Reads the hub and answers the page's JSON.
    pub(super) fn snapshot(
        &mut self,
        service: &HubService,
        number: u64,
        served: Served,
    ) -> Vec<u8> {
        let health = Health::of(service);
        let details = &health.details;
        let gauge = service.ingest().gauge.read();
        let stats = service.ingest_stats();
        let load = |counter: &std::sync::atomic::AtomicU64| {
            counter.load(std::sync::atomic::Ordering::Relaxed)
        };
        let cluster_dropped = details.cluster.as_ref().map_or(0, |c| c.dropped);
        let totals = drops::totals(service, cluster_dropped);
        let now = Instant::now();
        self.series.push(Sample {
            at: now,
            unix_ms: unix_millis(),
            connections: details.connections,
            // Ids are taken by every socket (and actor member) the hub
            // starts; this read takes one too (discounted in the series).
            sessions: service.registry().next_session_id(),
            topics: details.topics,
            utilization: gauge.utilization,
            slow_episodes: load(&stats.slow_episodes),
            delivered: load(&stats.delivered),
            retries: load(&stats.retries),
            drops: totals.clone(),
        });
        let point = self.series.last_point().copied();
        let rates = self.series.drop_rates();
        let slow_episodes = load(&stats.slow_episodes);
        let slow = self.series.is_slow();
        let rows = self.topic_rows(service);
        let view = View {
            snapshot: number,
            at: unix_millis(),
            status: health.status,
            healthy: health.healthy,
            mode: details.mode,
            client: details.client.clone().map(|mut client| {
                client.remote_url = cut(&client.remote_url);
                client
            }),
            connections: Connections {
                now: details.connections,
                max: service.config().max_connections,
                opened_per_s: point.map_or(0.0, |p| p.opened),
                closed_per_s: point.map_or(0.0, |p| p.closed),
            },
            series: self.series.points().collect(),
            topics: Topics {
                count: details.topics,
                rows,
            },
            queue: Queue {
                depth: gauge.queue_depth,
                capacity: gauge.queue_capacity,
                utilization: gauge.utilization,
                in_flight: gauge.in_flight,
                slow,
                slow_episodes,
                resumed: slow_episodes.saturating_sub(u64::from(slow)),
                episodes: self.series.episodes().collect(),
            },
            sink: Sink {
                delivered: load(&stats.delivered),
                per_s: point.map_or(0.0, |p| p.sink),
                retries: load(&stats.retries),
                retries_per_s: round(self.series.rate(|sample| sample.retries), 100.0),
            },
            // Only what happened at least once.
            drops: drops::names()
                .into_iter()
                .zip(totals)
                .zip(rates)
                .filter(|((_, total), _)| *total > 0)
                .map(|(((group, reason), total), per_s)| Drop {
                    group,
                    reason,
                    total,
                    per_s: round(per_s, 100.0),
                })
                .collect(),
            cluster: details.cluster.as_ref().map(cluster),
            dashboard: served,
        };
        serde_json::to_vec(&view).unwrap_or_default()
    }

    /// The busiest topics with their rates and presence, when listed.
    fn topic_rows(&mut self, service: &HubService) -> Option<Vec<TopicRow>> {
        let busiest = busiest_topics(service, TOPICS)?;
        let seconds = self.series.seconds_since_previous();
        let mut sent = HashMap::with_capacity(busiest.len());
        let rows = busiest
            .into_iter()
            .enumerate()
            .map(|(rank, (topic, members, messages))| {
                let rate = messages.and_then(|now| {
                    let before = self.sent.get(&topic)?;
                    seconds
                        .filter(|s| *s > 0.0)
                        .map(|s| round(now.saturating_sub(*before) as f64 / s, 100.0))
                });
                if let Some(messages) = messages {
                    sent.insert(topic.clone(), messages);
                }
                let presence = (rank < PRESENCE_TOPICS && members <= PRESENCE_MEMBERS)
                    .then(|| presence_count(&service.presence(&topic)));
                TopicRow {
                    topic: cut(&topic),
                    members,
                    messages_per_s: rate,
                    presence,
                }
            })
            .collect();
        self.sent = sent;
        Some(rows)
    }
}

/// The `limit` topics with the most members: name, members, messages sent
/// to it so far.
fn busiest_topics(service: &HubService, limit: usize) -> Option<Vec<(String, usize, Option<u64>)>> {
    let busiest = service.registry().busiest_topics(limit).into_iter();
    Some(
        busiest
            .map(|(topic, members, sent)| (topic, members, Some(sent)))
            .collect(),
    )
}

fn presence_count(list: &Value) -> PresenceCount {
    let Some(keys) = list.as_object() else {
        return PresenceCount {
            keys: 0,
            metas: 0,
            names: Vec::new(),
        };
    };
    let metas = keys
        .values()
        .filter_map(|entry| entry.get("metas").and_then(Value::as_array))
        .map(Vec::len)
        .sum();
    PresenceCount {
        keys: keys.len(),
        metas,
        names: keys
            .keys()
            .take(PRESENCE_KEYS)
            .map(|key| cut(key))
            .collect(),
    }
}

fn cluster(health: &ClusterHealth) -> Cluster {
    Cluster {
        node_id: cut(&health.node_id),
        state: health.state,
        lag_ms: health.lag_ms,
        pending: health.pending,
        subscriptions: health.subscriptions,
        published: health.published,
        delivered: health.delivered,
        dropped: health.dropped,
        peers_total: health.peers.len(),
        peers: health
            .peers
            .iter()
            .take(PEERS)
            .map(|peer| Peer {
                node: cut(&peer.node),
                state: cut(&peer.state),
                last_seen_ms: peer.last_seen_ms,
                connections: peer.connections,
            })
            .collect(),
    }
}

/// `name`, cut to [`NAME_CHARS`] characters.
fn cut(name: &str) -> String {
    match name.char_indices().nth(NAME_CHARS) {
        Some((at, _)) => format!("{}…", &name[..at]),
        None => name.to_owned(),
    }
}

#[cfg(test)]
mod tests;
