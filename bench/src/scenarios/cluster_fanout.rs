//! `cluster_fanout`: the cost of the cluster hop. Hub nodes of a cluster
//! over one nats-server of the bench's own, all in this process.
//!
//! - Throughput: the fan-out burst of `fanout_hub` (raw Phoenix V2
//!   receivers, `Broadcast` messages to node A's `Hub` actor), with the
//!   receivers spread over 2 nodes (half reached through NATS and node B)
//!   against all of them on a 1-node cluster. The 1-node side is a cluster
//!   node too, so both sides publish every broadcast on NATS the same way
//!   and the ratio is the hop alone.
//! - Latency: one raw receiver on node B of the 2 nodes (on node A of the
//!   1-node cluster) and `HubService::broadcast` on node A, one stamped
//!   payload at a time; publish to delivery, read by the receiver.
//!
//! In the rows "switchboard" is the 2-node figure and "baseline" the 1-node
//! one. Runs only when nats-server is installed.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use futures_util::StreamExt;
use serde_json::{json, Value};
use switchboard::config::ClusterConfig;
use switchboard::protocol::phoenix;
use switchboard::server::Broadcast;
use tokio::sync::mpsc;

use super::fanout::count_texts;
use super::{alternate, loopback, Side};
use crate::baseline::client::{self, Ws};
use crate::counter::Counter;
use crate::hub::BenchHub;
use crate::nats::start_or_skip;
use crate::payload::{self, BROADCAST_EVENT, MESSAGE_BYTES, TOPIC};
use crate::plan::Plan;
use crate::report::{Better, Row};
use crate::stats::{median, Latency};

/// The topic of the latency samples (routed to the bench channel).
const LATENCY_TOPIC: &str = "bench:latency";

/// The event of a stamped broadcast.
const STAMP_EVENT: &str = "stamp";

/// Samples taken before the timed ones, per run.
const LATENCY_WARMUP: u64 = 20;

/// How often a bench node beats (default 1 s): peers are heard at once.
const HEARTBEAT: Duration = Duration::from_millis(100);

/// When a silent bench node counts as down (at least twice the heartbeat).
const DOWN_AFTER: Duration = Duration::from_secs(1);

/// Longest a node may take to reach NATS and hear its peers.
const READY_WITHIN: Duration = Duration::from_secs(15);

/// Longest the receivers may take to connect and join.
const JOIN_WITHIN: Duration = Duration::from_secs(30);

/// Longest a burst may take to be delivered.
const DELIVER_WITHIN: Duration = Duration::from_secs(120);

/// A burst whose count does not move for this long has lost deliveries.
const STALL_AFTER: Duration = Duration::from_secs(5);

/// Longest one stamped broadcast may take to arrive.
const SAMPLE_WITHIN: Duration = Duration::from_secs(5);

/// Bound of one `/health` request.
const HEALTH_WITHIN: Duration = Duration::from_secs(5);

/// What one run of one side measured.
struct Measured {
    /// Deliveries per second of the burst.
    rate: f64,
    /// Publish-to-deliver times of the stamped broadcasts.
    latencies: Vec<Duration>,
}

/// Runs the three cluster rows, or reports them skipped when nats-server
/// is missing.
pub async fn run(plan: &Plan) -> anyhow::Result<Vec<Row>> {
    let Some(nats) = start_or_skip("cluster_fanout").await? else {
        return Ok(Vec::new());
    };
    let results = alternate(
        plan.rounds,
        &[Side::Switchboard, Side::Baseline],
        async |side| match side {
            Side::Baseline => measure(plan, &nats.url(), 1).await,
            _ => measure(plan, &nats.url(), 2).await,
        },
    )
    .await;
    nats.stop()?;
    let results = results?;
    let rate = |side: usize| median(&results[side].iter().map(|m| m.rate).collect::<Vec<_>>());
    let latency = |side: usize| {
        let pooled: Vec<Duration> = results[side]
            .iter()
            .flat_map(|m| m.latencies.iter().copied())
            .collect();
        Latency::of(&pooled)
    };
    let (two, one) = (latency(0), latency(1));
    let samples = plan.cluster_latency_samples * plan.rounds.max(1);
    Ok(vec![
        Row::new(
            "cluster_fanout",
            "deliveries/s",
            Better::Higher,
            rate(0),
            rate(1),
        )
        .with_note(format!(
            "switchboard = receivers spread over 2 cluster nodes, baseline = all on a 1-node \
             cluster, broadcasts to node A's Hub actor; raw Phoenix V2 receivers; {} connections \
             x {} broadcasts of 100 B; median of {} rounds",
            plan.fanout_connections, plan.fanout_broadcasts, plan.rounds
        )),
        Row::new("cluster_fanout_p50", "µs", Better::Lower, two.p50, one.p50).with_note(format!(
            "HubService::broadcast on node A to a raw receiver on node B (switchboard) or on \
             node A of a 1-node cluster (baseline), one at a time, stamped in the payload; \
             {samples} samples per side in {} alternating runs",
            plan.rounds
        )),
        Row::new("cluster_fanout_p99", "µs", Better::Lower, two.p99, one.p99),
    ])
}

/// Starts `nodes` cluster nodes, measures on them, stops them.
async fn measure(plan: &Plan, nats_url: &str, nodes: usize) -> anyhow::Result<Measured> {
    // Fresh subjects and stream per run: nothing of an earlier run is heard.
    let run = format!("{:08x}", fastrand::u32(..));
    let mut hubs = Vec::new();
    for index in 0..nodes {
        let config = ClusterConfig {
            nats_url: nats_url.to_owned(),
            node_id: format!("bench-{run}-{index}"),
            subject_prefix: format!("bench.c{run}"),
            stream: format!("BENCH_CLUSTER_{run}"),
            heartbeat: HEARTBEAT,
            down_after: DOWN_AFTER,
            ..ClusterConfig::default()
        };
        hubs.push(BenchHub::start_node(loopback(), config)?);
    }
    let measured = measure_on(plan, &hubs).await;
    for hub in hubs {
        hub.kill().await;
    }
    measured
}

/// The burst, then the latency samples, on running nodes; `hubs[0]` is node A.
async fn measure_on(plan: &Plan, hubs: &[BenchHub]) -> anyhow::Result<Measured> {
    wait_ready(hubs).await?;
    let connections = plan.fanout_connections;
    let delivered = Counter::new();
    let mut tasks = Vec::new();
    for (index, hub) in hubs.iter().enumerate() {
        let share = connections / hubs.len() + usize::from(index < connections % hubs.len());
        let sockets = join_receivers(hub, TOPIC, share, plan.connect_parallel).await?;
        let members = hub.service().member_count(TOPIC);
        if members != share {
            bail!("node {index}: {members} of {share} sockets joined {TOPIC}");
        }
        tasks.extend(
            sockets
                .into_iter()
                .map(|ws| actix_rt::spawn(count_texts(ws, delivered.clone()))),
        );
    }
    let node_a = &hubs[0];
    let payload = payload::json_payload();
    let started = Instant::now();
    for _ in 0..plan.fanout_broadcasts {
        node_a.service().hub().do_send(Broadcast {
            topic: TOPIC.to_owned(),
            event: BROADCAST_EVENT.to_owned(),
            payload: payload.clone(),
        });
    }
    let expected = (connections * plan.fanout_broadcasts) as u64;
    let measured = match all_delivered(&delivered, expected).await {
        Ok(()) => {
            let rate = expected as f64 / started.elapsed().as_secs_f64();
            // The burst's receivers stay joined (idle): no leaves meanwhile.
            let receiving = &hubs[hubs.len() - 1];
            sample_latency(node_a, receiving, plan.cluster_latency_samples)
                .await
                .map(|latencies| Measured { rate, latencies })
        }
        Err(error) => Err(error),
    };
    for task in tasks {
        task.abort();
    }
    match measured {
        Ok(measured) => Ok(measured),
        Err(error) => Err(error.context(cluster_figures(hubs).await)),
    }
}

/// Waits until every node is connected to NATS and has heard every other
/// (as many peers as other nodes: the run's subjects are its own).
async fn wait_ready(hubs: &[BenchHub]) -> anyhow::Result<()> {
    let deadline = Instant::now() + READY_WITHIN;
    for (index, hub) in hubs.iter().enumerate() {
        loop {
            let health = crate::http::get_json(hub.addr(), "/health", HEALTH_WITHIN).await?;
            let cluster = &health["details"]["cluster"];
            let peers = cluster["peers"].as_array().map_or(0, Vec::len);
            if cluster["state"] == "connected" && peers + 1 >= hubs.len() {
                break;
            }
            if Instant::now() > deadline {
                bail!("node {index} not ready within {READY_WITHIN:?}: /health {health}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(())
}

/// Connects `count` raw sockets to `hub` and joins each to `topic` (a join
/// on a cluster node answers once the node is subscribed to the topic).
async fn join_receivers(
    hub: &BenchHub,
    topic: &str,
    count: usize,
    parallel: usize,
) -> anyhow::Result<Vec<Ws>> {
    let join = phoenix::encode_parts(Some("1"), Some("1"), topic, "phx_join", &json!({}));
    let joining = async {
        let mut sockets = client::connect_many(&hub.phoenix_v2_url(), count, parallel).await?;
        for ws in &mut sockets {
            let reply = client::round_trip(ws, join.clone().into()).await?;
            if !reply.contains("\"ok\"") {
                bail!("raw join of {topic} refused: {reply}");
            }
        }
        Ok(sockets)
    };
    tokio::time::timeout(JOIN_WITHIN, joining)
        .await
        .map_err(|_| anyhow!("{count} sockets not joined to {topic} within {JOIN_WITHIN:?}"))?
}

/// Waits for `expected` deliveries: at most [`DELIVER_WITHIN`], and fails
/// as soon as the count stops moving for [`STALL_AFTER`] (a lost message
/// never arrives).
async fn all_delivered(delivered: &Counter, expected: u64) -> anyhow::Result<()> {
    let deadline = Instant::now() + DELIVER_WITHIN;
    let mut last = delivered.get();
    loop {
        if tokio::time::timeout(STALL_AFTER, delivered.wait_for(expected))
            .await
            .is_ok()
        {
            return Ok(());
        }
        let now = delivered.get();
        if now == last || Instant::now() > deadline {
            bail!("{now} of {expected} deliveries (stalled or past {DELIVER_WITHIN:?})");
        }
        last = now;
    }
}

/// Broadcasts stamped payloads on `from` one at a time and times each to
/// its arrival at a raw receiver on `to`; the warm-up ones are left out.
async fn sample_latency(
    from: &BenchHub,
    to: &BenchHub,
    samples: usize,
) -> anyhow::Result<Vec<Duration>> {
    let mut sockets = join_receivers(to, LATENCY_TOPIC, 1, 1).await?;
    let ws = sockets.pop().context("no latency receiver")?;
    let (arrivals_tx, mut arrivals) = mpsc::channel(16);
    let receiver = actix_rt::spawn(read_stamps(ws, arrivals_tx));
    let mut latencies = Vec::with_capacity(samples);
    let mut outcome = Ok(());
    for n in 0..LATENCY_WARMUP + samples as u64 {
        from.service()
            .broadcast(LATENCY_TOPIC, STAMP_EVENT, &stamped(n));
        let arrival = async {
            while let Some((got, latency)) = arrivals.recv().await {
                if got == n {
                    return Some(latency);
                }
            }
            None
        };
        match tokio::time::timeout(SAMPLE_WITHIN, arrival).await {
            Ok(Some(latency)) if n >= LATENCY_WARMUP => latencies.push(latency),
            Ok(Some(_)) => {}
            Ok(None) => {
                outcome = Err(anyhow!("the latency receiver's socket ended at stamp {n}"));
                break;
            }
            Err(_) => {
                outcome = Err(anyhow!("stamp {n} not delivered within {SAMPLE_WITHIN:?}"));
                break;
            }
        }
    }
    receiver.abort();
    outcome.map(|()| latencies)
}

/// Reads stamped broadcasts until the socket ends; hands on each one's
/// number and how long ago it was stamped. Other frames are passed over.
async fn read_stamps(mut ws: Ws, arrivals: mpsc::Sender<(u64, Duration)>) {
    while let Some(Ok(message)) = ws.next().await {
        let Ok(text) = message.to_text() else {
            continue;
        };
        let Some((n, stamp)) = parse_stamp(text) else {
            continue;
        };
        let latency = since_origin().saturating_sub(stamp);
        if arrivals.send((n, latency)).await.is_err() {
            break;
        }
    }
}

/// The process's time origin for stamps.
fn since_origin() -> Duration {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed()
}

/// `{"body":"xx…","n":N,"t":T}`, [`MESSAGE_BYTES`] of JSON; `t` is when it
/// was made, in µs since the process's origin.
fn stamped(n: u64) -> Value {
    let t = u64::try_from(since_origin().as_micros()).unwrap_or(u64::MAX);
    let head = json!({ "n": n, "t": t, "body": "" }).to_string().len();
    json!({ "n": n, "t": t, "body": "x".repeat(MESSAGE_BYTES.saturating_sub(head)) })
}

/// The number and stamp of a `[_, _, topic, "stamp", {"n", "t", ..}]` frame.
fn parse_stamp(text: &str) -> Option<(u64, Duration)> {
    let frame: Value = serde_json::from_str(text).ok()?;
    if frame.get(3)?.as_str()? != STAMP_EVENT {
        return None;
    }
    let payload = frame.get(4)?;
    let n = payload.get("n")?.as_u64()?;
    let t = payload.get("t")?.as_u64()?;
    Some((n, Duration::from_micros(t)))
}

/// Every node's `/health` cluster section, for an error's context.
async fn cluster_figures(hubs: &[BenchHub]) -> String {
    let mut figures = Vec::new();
    for (index, hub) in hubs.iter().enumerate() {
        let section = match crate::http::get_json(hub.addr(), "/health", HEALTH_WITHIN).await {
            Ok(health) => health["details"]["cluster"].to_string(),
            Err(error) => format!("/health failed: {error:#}"),
        };
        figures.push(format!("node {index}: {section}"));
    }
    figures.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamped_payloads_are_one_hundred_bytes_and_parse_back() {
        let payload = stamped(7);
        assert_eq!(payload.to_string().len(), MESSAGE_BYTES);
        let frame = phoenix::encode_parts(None, None, LATENCY_TOPIC, STAMP_EVENT, &payload);
        let (n, stamp) = parse_stamp(&frame).expect("parses");
        assert_eq!(n, 7);
        assert!(stamp <= since_origin());
        let other = phoenix::encode_parts(None, None, TOPIC, BROADCAST_EVENT, &payload);
        assert_eq!(parse_stamp(&other), None);
        assert_eq!(parse_stamp("not json"), None);
    }
}
