//! `fanout`: many connections joined to one topic, a burst of broadcasts,
//! deliveries/s from the first broadcast to the last delivery.
//!
//! Two switchboard rows share one baseline: `fanout` delivers to supervised
//! switchboard connections (hub and client stack, every push handed to the
//! application through `PhoenixHandle::incoming`), `fanout_hub` to raw
//! tokio-tungstenite sockets joined with Phoenix frames (the hub alone).
//! The baseline is the raw broadcast server and the same raw receivers; the
//! floor is the Phoenix floor server (each push encoded once, one writer
//! per socket) and raw receivers joined with Phoenix frames, parsing each
//! push borrowed. Both serve both rows.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::Actor;
use anyhow::{anyhow, bail};
use futures_util::StreamExt;
use serde_json::Value;
use switchboard::client::Switchboard;
use switchboard::server::Broadcast;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::{alternate, loopback, of, Side, FAST_DIALS_PER_SECOND};
use crate::baseline::client::{self, Ws};
use crate::baseline::server::{BaselineServer, Mode};
use crate::counter::Counter;
use crate::floor;
use crate::floor::server::{FloorServer, Protocol};
use crate::hub::{BenchHub, SinkChoice};
use crate::payload::{self, BROADCAST_EVENT, TOPIC};
use crate::plan::Plan;
use crate::report::{Better, Row, Target};
use crate::stats::median;

/// Longest a burst may take to be delivered.
const DELIVER_WITHIN: Duration = Duration::from_secs(120);

/// The receivers of the switchboard side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Receivers {
    /// Supervised switchboard connections.
    Supervised,
    /// Raw sockets joined with Phoenix frames.
    Raw,
}

/// Runs both fan-out rows.
pub async fn run(plan: &Plan) -> anyhow::Result<Vec<Row>> {
    let rounds = plan.rounds;
    // The switchboard side runs both receiver kinds; the baseline's and
    // the floor's one figure each serves both rows.
    let sides = [Side::Switchboard, Side::Baseline, Side::Floor];
    let results = alternate(rounds, &sides, async |side| match side {
        Side::Baseline => baseline(plan).await.map(|rate| (rate, rate)),
        Side::Floor => floor(plan).await.map(|rate| (rate, rate)),
        _ => Ok((
            switchboard(plan, Receivers::Supervised).await?,
            switchboard(plan, Receivers::Raw).await?,
        )),
    })
    .await?;
    let column = |side: Side, pick: fn(&(f64, f64)) -> f64| -> Vec<f64> {
        of(&sides, &results, side).iter().map(pick).collect()
    };
    let base = median(&column(Side::Baseline, |pair| pair.0));
    let floor = median(&column(Side::Floor, |pair| pair.0));
    let size = format!(
        "{} connections x {} broadcasts of 100 B; median of {rounds} rounds",
        plan.fanout_connections, plan.fanout_broadcasts
    );
    Ok(vec![
        Row::new(
            "fanout",
            "deliveries/s",
            Better::Higher,
            median(&column(Side::Switchboard, |pair| pair.0)),
            base,
        )
        .with_floor(floor)
        .with_target(Target::RatioAtLeast { bound: 0.35 })
        .with_note(format!(
            "hub -> supervised switchboard connections (PhoenixHandle::incoming); {size}"
        )),
        Row::new(
            "fanout_hub",
            "deliveries/s",
            Better::Higher,
            median(&column(Side::Switchboard, |pair| pair.1)),
            base,
        )
        .with_floor(floor)
        .with_target(Target::RatioAtLeast { bound: 0.6 })
        .with_note(format!(
            "hub -> raw tokio-tungstenite sockets joined with Phoenix frames (the hub alone); {size}"
        )),
    ])
}

/// switchboard's hub broadcasting to `receivers`.
async fn switchboard(plan: &Plan, receivers: Receivers) -> anyhow::Result<f64> {
    let hub = BenchHub::start(loopback(), SinkChoice::InProcess)?;
    let delivered = Counter::new();
    let connections = plan.fanout_connections;
    let mut handles = Vec::new();
    let mut tasks = Vec::new();
    match receivers {
        Receivers::Supervised => {
            let board = Switchboard::new(FAST_DIALS_PER_SECOND).start();
            let url = hub.phoenix_url();
            let opened: Vec<_> = futures_util::stream::iter(0..connections)
                .map(|_| crate::supervised::open_joined(&board, &url, TOPIC))
                .buffer_unordered(plan.connect_parallel)
                .collect()
                .await;
            for handle in opened {
                let handle = handle?;
                let mut pushes =
                    handle.incoming(TOPIC, Some(BROADCAST_EVENT), plan.fanout_broadcasts + 16);
                let delivered = delivered.clone();
                tasks.push(actix_rt::spawn(async move {
                    while pushes.recv().await.is_some() {
                        delivered.add(1);
                    }
                }));
                handles.push(handle);
            }
            // `incoming` registers by message; let every registration land.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Receivers::Raw => {
            let sockets =
                client::connect_many(&hub.phoenix_v2_url(), connections, plan.connect_parallel)
                    .await?;
            for mut ws in sockets {
                let reply = client::round_trip(&mut ws, payload::phoenix_join().into()).await?;
                if !reply.contains("\"ok\"") {
                    bail!("raw join refused: {reply}");
                }
                tasks.push(actix_rt::spawn(count_texts(ws, delivered.clone())));
            }
        }
    }
    let members = hub.service().member_count(TOPIC);
    if members != connections {
        bail!("{members} of {connections} sockets joined {TOPIC}");
    }
    let payload: Value = payload::json_payload();
    let started = Instant::now();
    for _ in 0..plan.fanout_broadcasts {
        hub.service().hub().do_send(Broadcast {
            topic: TOPIC.to_owned(),
            event: BROADCAST_EVENT.to_owned(),
            payload: payload.clone(),
        });
    }
    let rate = deliveries_per_second(&delivered, plan, started).await;
    for handle in &handles {
        handle.close().await;
    }
    for task in tasks {
        task.abort();
    }
    hub.kill().await;
    rate
}

/// The raw broadcast server and raw receivers.
async fn baseline(plan: &Plan) -> anyhow::Result<f64> {
    let server = BaselineServer::start(loopback(), Mode::Broadcast)?;
    let delivered = Counter::new();
    let connections = plan.fanout_connections;
    let sockets = client::connect_many(&server.url(), connections, plan.connect_parallel).await?;
    let tasks: Vec<_> = sockets
        .into_iter()
        .map(|ws| actix_rt::spawn(count_texts(ws, delivered.clone())))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.connections() < connections {
        if Instant::now() > deadline {
            bail!(
                "only {} of {connections} baseline sockets registered",
                server.connections()
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let text = Utf8Bytes::from(payload::raw_text());
    let started = Instant::now();
    for _ in 0..plan.fanout_broadcasts {
        server.broadcast(Message::Text(text.clone()));
    }
    let rate = deliveries_per_second(&delivered, plan, started).await;
    for task in tasks {
        task.abort();
    }
    server.stop();
    rate
}

/// The Phoenix floor server broadcasting to raw receivers joined with
/// Phoenix frames, each parsing every push borrowed.
async fn floor(plan: &Plan) -> anyhow::Result<f64> {
    let server = FloorServer::start(loopback(), Protocol::Phoenix)?;
    let delivered = Counter::new();
    let sockets = client::connect_many(
        &server.phoenix_url(),
        plan.fanout_connections,
        plan.connect_parallel,
    )
    .await?;
    let mut tasks = Vec::with_capacity(sockets.len());
    for mut ws in sockets {
        // Answered once the server has added the socket to the topic.
        floor::client::joined(&mut ws, TOPIC).await?;
        let delivered = delivered.clone();
        tasks.push(actix_rt::spawn(floor::client::count_pushes(
            ws,
            TOPIC,
            BROADCAST_EVENT,
            delivered,
        )));
    }
    let payload = floor::raw(&payload::json_payload())?;
    let started = Instant::now();
    for _ in 0..plan.fanout_broadcasts {
        server.broadcast(TOPIC, BROADCAST_EVENT, &payload);
    }
    let rate = deliveries_per_second(&delivered, plan, started).await;
    for task in tasks {
        task.abort();
    }
    rate
}

/// Waits for every delivery of the burst; deliveries per second since `started`.
async fn deliveries_per_second(
    delivered: &Arc<Counter>,
    plan: &Plan,
    started: Instant,
) -> anyhow::Result<f64> {
    let expected = (plan.fanout_connections * plan.fanout_broadcasts) as u64;
    tokio::time::timeout(DELIVER_WITHIN, delivered.wait_for(expected))
        .await
        .map_err(|_| {
            anyhow!(
                "{} of {expected} deliveries within {DELIVER_WITHIN:?}",
                delivered.get()
            )
        })?;
    Ok(expected as f64 / started.elapsed().as_secs_f64())
}

/// Counts the text frames a receiver gets until its socket ends.
pub(super) async fn count_texts(mut ws: Ws, delivered: Arc<Counter>) {
    while let Some(Ok(message)) = ws.next().await {
        if message.is_text() {
            delivered.add(1);
        }
    }
    let _ = ws.close(None).await;
}
