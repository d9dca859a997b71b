//! `rejoin`: N supervised connections joined to a topic; the hub is killed
//! (sockets drop without a close frame) and a new one started on the same
//! port at once. Measured: time from the kill until every connection has
//! rejoined, and the largest share of the dials (upgrade requests the new
//! hub received) in any 100 ms window.
//!
//! switchboard: a `Switchboard` with its default dial budget (500 dials/s),
//! backoff `plan.rejoin_initial_backoff` → `plan.rejoin_max_backoff`,
//! waiting for each connection's `Rejoined` event. Baseline: N raw
//! tokio-tungstenite clients with the same full-jitter backoff and no
//! budget, each "rejoining" by sending a frame and reading its echo.

use std::time::{Duration, Instant};

use actix::Actor;
use anyhow::anyhow;
use futures_util::StreamExt;
use switchboard::client::ReconnectPolicy;
use switchboard::client::{ConnectEvent, Switchboard};
use tokio::sync::broadcast::error::RecvError;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::{alternate, Side};
use crate::baseline::client;
use crate::baseline::server::{BaselineServer, Mode};
use crate::hub::{BenchHub, SinkChoice};
use crate::payload::{self, TOPIC};
use crate::plan::Plan;
use crate::report::{Better, Row, Target};

/// Longest the rejoin may take before the run fails.
const REJOIN_WITHIN: Duration = Duration::from_secs(60);

/// The window dials are counted in.
const WINDOW: Duration = Duration::from_millis(100);

/// What one side's rejoin looked like.
#[derive(Debug, Clone, Copy)]
struct Outcome {
    /// From the kill until the last connection rejoined, in ms.
    rejoin_ms: f64,
    /// Largest share of the dials in any 100 ms window, in %.
    peak_share: f64,
}

/// Runs the two rejoin rows.
pub async fn run(plan: &Plan) -> anyhow::Result<Vec<Row>> {
    let results = alternate(
        1,
        &[Side::Switchboard, Side::Baseline],
        async |side| match side {
            Side::Baseline => baseline(plan).await,
            _ => switchboard(plan).await,
        },
    )
    .await?;
    let pick = |side: usize| {
        results[side].first().copied().unwrap_or(Outcome {
            rejoin_ms: 0.0,
            peak_share: 0.0,
        })
    };
    let (sw, base) = (pick(0), pick(1));
    let max_backoff_ms = plan.rejoin_max_backoff.as_secs_f64() * 1000.0;
    let config = format!(
        "{} connections, backoff {} ms -> {} ms (max), x2, full jitter; switchboard's default dial budget of {} dials/s",
        plan.rejoin_connections,
        plan.rejoin_initial_backoff.as_millis(),
        plan.rejoin_max_backoff.as_millis(),
        switchboard::client::Switchboard::DEFAULT_DIALS_PER_SECOND
    );
    Ok(vec![
        Row::new(
            "rejoin_time",
            "ms",
            Better::Lower,
            sw.rejoin_ms,
            base.rejoin_ms,
        )
        .with_target(Target::ValueAtMost {
            bound: max_backoff_ms + 2000.0,
        })
        .with_note(format!(
            "kill to the last rejoin; target: max backoff + 2 s; {config}"
        )),
        Row::new(
            "rejoin_peak_dials",
            "% of dials in a 100 ms window",
            Better::Lower,
            sw.peak_share,
            base.peak_share,
        )
        .with_target(Target::ValueAtMost { bound: 10.0 })
        .with_note(
            "upgrade requests the restarted server received, in the busiest sliding 100 ms window",
        ),
    ])
}

/// The reconnect policy both sides use.
fn policy(plan: &Plan) -> ReconnectPolicy {
    ReconnectPolicy {
        initial_interval: plan.rejoin_initial_backoff,
        max_interval: plan.rejoin_max_backoff,
        multiplier: 2.0,
        ..ReconnectPolicy::default()
    }
}

/// switchboard: supervised connections rejoining a restarted hub.
async fn switchboard(plan: &Plan) -> anyhow::Result<Outcome> {
    let hub = BenchHub::start(super::loopback(), SinkChoice::InProcess)?;
    let addr = hub.addr();
    let url = hub.phoenix_url();
    let board = Switchboard::default().start();
    let mut handles = Vec::with_capacity(plan.rejoin_connections);
    let opened: Vec<_> = futures_util::stream::iter(0..plan.rejoin_connections)
        .map(|_| {
            let mut config = crate::supervised::connection_config(&url);
            config.reconnect = policy(plan);
            let board = board.clone();
            async move {
                let handle = crate::supervised::open(&board, config).await?;
                handle.join(TOPIC, serde_json::json!({})).await?;
                anyhow::Ok(handle)
            }
        })
        .buffer_unordered(plan.connect_parallel)
        .collect()
        .await;
    for handle in opened {
        handles.push(handle?);
    }
    let waits: Vec<_> = handles
        .iter()
        .map(|handle| {
            let mut events = handle.events();
            actix_rt::spawn(async move {
                loop {
                    match events.recv().await {
                        Ok(ConnectEvent::Rejoined { .. }) => return Some(Instant::now()),
                        Ok(_) | Err(RecvError::Lagged(_)) => continue,
                        Err(RecvError::Closed) => return None,
                    }
                }
            })
        })
        .collect();
    let cut = Instant::now();
    hub.kill().await;
    let hub = BenchHub::start(addr, SinkChoice::InProcess)?;
    let mut last = cut;
    for wait in waits {
        let rejoined = tokio::time::timeout(REJOIN_WITHIN.saturating_sub(cut.elapsed()), wait)
            .await
            .map_err(|_| anyhow!("not every connection rejoined within {REJOIN_WITHIN:?}"))?
            .map_err(|error| anyhow!("a rejoin watcher failed: {error}"))?
            .ok_or_else(|| anyhow!("a connection closed instead of rejoining"))?;
        last = last.max(rejoined);
    }
    let dials = hub.upgrades();
    for handle in &handles {
        handle.close().await;
    }
    hub.kill().await;
    Ok(Outcome {
        rejoin_ms: (last - cut).as_secs_f64() * 1000.0,
        peak_share: peak_share(&dials, plan.rejoin_connections),
    })
}

/// The baseline: raw clients with the same backoff, no dial budget.
async fn baseline(plan: &Plan) -> anyhow::Result<Outcome> {
    let server = BaselineServer::start(super::loopback(), Mode::Echo)?;
    let addr = server.addr();
    let url = server.url();
    let (joined_tx, mut joined_rx) = tokio::sync::mpsc::unbounded_channel();
    let clients: Vec<_> = (0..plan.rejoin_connections)
        .map(|_| actix_rt::spawn(raw_client(url.clone(), policy(plan), joined_tx.clone())))
        .collect();
    for _ in 0..plan.rejoin_connections {
        joined_rx
            .recv()
            .await
            .ok_or_else(|| anyhow!("a baseline client ended"))?;
    }
    let cut = Instant::now();
    server.stop();
    let server = BaselineServer::start(addr, Mode::Echo)?;
    let mut last = cut;
    for _ in 0..plan.rejoin_connections {
        let rejoined = tokio::time::timeout(
            REJOIN_WITHIN.saturating_sub(cut.elapsed()),
            joined_rx.recv(),
        )
        .await
        .map_err(|_| anyhow!("not every baseline client rejoined within {REJOIN_WITHIN:?}"))?
        .ok_or_else(|| anyhow!("a baseline client ended"))?;
        last = last.max(rejoined);
    }
    let dials = server.accepted_at();
    for client in clients {
        client.abort();
    }
    server.stop();
    Ok(Outcome {
        rejoin_ms: (last - cut).as_secs_f64() * 1000.0,
        peak_share: peak_share(&dials, plan.rejoin_connections),
    })
}

/// One raw client: connect, "join" (a frame and its echo), report, read
/// until the socket drops, then redial with backoff.
async fn raw_client(
    url: String,
    policy: ReconnectPolicy,
    joined: tokio::sync::mpsc::UnboundedSender<Instant>,
) {
    let mut attempt = 0;
    let join = Utf8Bytes::from(payload::raw_text());
    loop {
        if let Ok(mut ws) = client::connect(&url).await {
            if client::round_trip(&mut ws, join.clone()).await.is_ok() {
                attempt = 0;
                if joined.send(Instant::now()).is_err() {
                    return;
                }
                while let Some(Ok(_)) = ws.next().await {}
            }
        }
        tokio::time::sleep(full_jitter(&policy, attempt)).await;
        attempt += 1;
    }
}

/// The raw client's redial delay: exponential growth from
/// `initial_interval`, capped at `max_interval`, a uniform point below it.
fn full_jitter(policy: &ReconnectPolicy, attempt: i32) -> Duration {
    let ceiling = policy.initial_interval.as_secs_f64() * policy.multiplier.powi(attempt.min(64));
    let ceiling = ceiling.min(policy.max_interval.as_secs_f64());
    let low = policy.initial_interval.as_secs_f64().min(ceiling);
    Duration::from_secs_f64(low + (ceiling - low) * fastrand::f64())
}

/// The largest share (in %) of `dials` that fall in any window of
/// [`WINDOW`], relative to `expected` dials (or to all, if there were more).
fn peak_share(dials: &[Instant], expected: usize) -> f64 {
    let mut times = dials.to_vec();
    times.sort();
    let mut peak = 0;
    let mut start = 0;
    for end in 0..times.len() {
        while times[end] - times[start] >= WINDOW {
            start += 1;
        }
        peak = peak.max(end - start + 1);
    }
    let total = times.len().max(expected).max(1);
    peak as f64 * 100.0 / total as f64
}
