//! `rtt`: sequential request/reply, one at a time (p50, p99, max in µs).
//! switchboard: `PhoenixHandle::push` of `ping` to the hub, whose reply
//! comes back through the connection's Correlator. Baseline: a text frame
//! echoed by the raw server. Floor: the same `ping` push from a raw socket
//! to the Phoenix floor server, its reply matched by ref. Peers: the
//! ezsockets client pushing the same Phoenix frame to switchboard's hub,
//! and `phoenix_channels_client`'s `Channel::send`.

use std::time::{Duration, Instant};

use actix::Actor;
use anyhow::bail;
use futures_util::SinkExt;
use switchboard::client::Switchboard;
use switchboard::protocol::phoenix::ReplyStatus;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::{alternate, loopback, of, Side, FAST_DIALS_PER_SECOND};
use crate::baseline::client;
use crate::baseline::server::{BaselineServer, Mode};
use crate::floor::server::{FloorServer, Protocol};
use crate::floor::{self, phoenix};
use crate::hub::{BenchHub, SinkChoice};
use crate::payload::{self, PING_EVENT, TOPIC};
use crate::peer::Peer;
use crate::phoenix_peer::PhoenixPeer;
use crate::plan::Plan;
use crate::report::{Better, Row, Target};
use crate::stats::Latency;

/// Round trips before the timed ones, per run.
const WARMUP: usize = 200;

/// Runs the three rtt rows (p50, p99, max).
pub async fn run(plan: &Plan) -> anyhow::Result<Vec<Row>> {
    // Alternating runs of a share of the iterations each, pooled per side,
    // so a change in the machine's load hits every side alike.
    let runs = if plan.quick { 2 } else { 4 };
    let per_run = plan.rtt_iterations / runs;
    let sides = [
        Side::Switchboard,
        Side::Baseline,
        Side::Floor,
        Side::Peer,
        Side::Peer2,
    ];
    let samples = alternate(runs, &sides, async |side| match side {
        Side::Switchboard => switchboard(per_run).await,
        Side::Baseline => baseline(per_run).await,
        Side::Floor => floor(per_run).await,
        Side::Peer => peer(per_run).await,
        Side::Peer2 => peer2(per_run).await,
    })
    .await?;
    let [sw, base, floor, peer, peer2] =
        sides.map(|side| Latency::of(&of(&sides, &samples, side).concat()));
    let note = format!(
        "{} sequential round trips per side, in {runs} alternating runs",
        plan.rtt_iterations
    );
    Ok(vec![
        Row::new("rtt_p50", "µs", Better::Lower, sw.p50, base.p50)
            .with_floor(floor.p50)
            .with_peer(peer.p50)
            .with_peer2(peer2.p50)
            .with_target(Target::RatioAtMost { bound: 1.1 })
            .with_note(note),
        Row::new("rtt_p99", "µs", Better::Lower, sw.p99, base.p99)
            .with_floor(floor.p99)
            .with_peer(peer.p99)
            .with_peer2(peer2.p99),
        Row::new("rtt_max", "µs", Better::Lower, sw.max, base.max)
            .with_floor(floor.max)
            .with_peer(peer.max)
            .with_peer2(peer2.max),
    ])
}

/// switchboard's hub and supervised client.
async fn switchboard(iterations: usize) -> anyhow::Result<Vec<Duration>> {
    let hub = BenchHub::start(loopback(), SinkChoice::InProcess)?;
    let board = Switchboard::new(FAST_DIALS_PER_SECOND).start();
    let handle = crate::supervised::open_joined(&board, &hub.phoenix_url(), TOPIC).await?;
    let payload = payload::json_payload();
    let mut samples = Vec::with_capacity(iterations);
    for n in 0..WARMUP + iterations {
        let started = Instant::now();
        let reply = handle.push(TOPIC, PING_EVENT, payload.clone()).await?;
        let took = started.elapsed();
        if reply.status != ReplyStatus::Ok {
            bail!("ping refused: {:?}", reply.response);
        }
        if n >= WARMUP {
            samples.push(took);
        }
    }
    handle.close().await;
    hub.kill().await;
    Ok(samples)
}

/// The raw pair: send a text frame, wait for its echo.
async fn baseline(iterations: usize) -> anyhow::Result<Vec<Duration>> {
    let server = BaselineServer::start(loopback(), Mode::Echo)?;
    let mut ws = client::connect(&server.url()).await?;
    let text = Utf8Bytes::from(payload::raw_text());
    let mut samples = Vec::with_capacity(iterations);
    for n in 0..WARMUP + iterations {
        let started = Instant::now();
        let echo = client::round_trip(&mut ws, text.clone()).await?;
        let took = started.elapsed();
        if echo.len() != text.len() {
            bail!("the echo differs from what was sent");
        }
        if n >= WARMUP {
            samples.push(took);
        }
    }
    ws.close(None).await?;
    server.stop();
    Ok(samples)
}

/// The ezsockets client: push `ping`, wait for the `phx_reply`.
async fn peer(iterations: usize) -> anyhow::Result<Vec<Duration>> {
    let hub = BenchHub::start(loopback(), SinkChoice::InProcess)?;
    let mut peer = Peer::connect(&hub.phoenix_v2_url(), true).await?;
    let joined = peer.round_trip(payload::phoenix_join()).await?;
    if !joined.contains("\"ok\"") {
        bail!("the peer's join was refused: {joined}");
    }
    let payload = payload::json_payload();
    let mut samples = Vec::with_capacity(iterations);
    for n in 0..WARMUP + iterations {
        let started = Instant::now();
        let frame = payload::phoenix_push(n as u64 + 2, PING_EVENT, &payload);
        let reply = peer.round_trip(frame).await?;
        let took = started.elapsed();
        if !reply.contains("phx_reply") {
            bail!("the peer got {reply} instead of a reply");
        }
        if n >= WARMUP {
            samples.push(took);
        }
    }
    peer.close();
    hub.kill().await;
    Ok(samples)
}

/// The Phoenix floor: push `ping` from a raw socket, read until its reply.
async fn floor(iterations: usize) -> anyhow::Result<Vec<Duration>> {
    let server = FloorServer::start(loopback(), Protocol::Phoenix)?;
    let mut ws = floor::client::join(&server.phoenix_url(), TOPIC).await?;
    let payload = floor::raw(&payload::json_payload())?;
    let mut pushes = phoenix::Pushes::new(TOPIC);
    let mut samples = Vec::with_capacity(iterations);
    for n in 0..WARMUP + iterations {
        let started = Instant::now();
        let (msg_ref, frame) = pushes.next(PING_EVENT, &payload);
        ws.send(Message::Text(frame.into())).await?;
        floor::client::reply_to(&mut ws, msg_ref).await?;
        let took = started.elapsed();
        if n >= WARMUP {
            samples.push(took);
        }
    }
    ws.close(None).await?;
    Ok(samples)
}

/// `phoenix_channels_client`: `Channel::send` of `ping`, awaiting its reply.
async fn peer2(iterations: usize) -> anyhow::Result<Vec<Duration>> {
    let hub = BenchHub::start(loopback(), SinkChoice::InProcess)?;
    let peer = PhoenixPeer::join(&hub.phoenix_url(), TOPIC).await?;
    let payload = payload::json_payload();
    let mut samples = Vec::with_capacity(iterations);
    for n in 0..WARMUP + iterations {
        let started = Instant::now();
        peer.channel().send(PING_EVENT, payload.clone()).await?;
        let took = started.elapsed();
        if n >= WARMUP {
            samples.push(took);
        }
    }
    peer.close().await;
    hub.kill().await;
    Ok(samples)
}
