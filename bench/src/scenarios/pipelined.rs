//! `pipelined`: one connection, a fixed number of requests in flight
//! (replies/s). switchboard: that many concurrent `PhoenixHandle::push`
//! calls, each replaced as soon as its reply is back. Baseline: as many echo
//! frames in flight on the raw pair, each answered echo sending the next.
//! Floor: as many `ping` pushes from a raw socket to the Phoenix floor
//! server, each reply matched by ref. Peer2: as many concurrent
//! `phoenix_channels_client` `Channel::send` calls.

use actix::Actor;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, SinkExt, StreamExt};
use switchboard::client::Switchboard;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::{alternate, loopback, measure_sender, of, Side, Stop, FAST_DIALS_PER_SECOND};
use std::collections::HashSet;

use crate::baseline::client;
use crate::baseline::server::{BaselineServer, Mode};
use crate::counter::Counter;
use crate::floor::server::{FloorServer, Protocol};
use crate::floor::{self, phoenix};
use crate::hub::{BenchHub, SinkChoice};
use crate::payload::{self, PING_EVENT, TOPIC};
use crate::phoenix_peer::PhoenixPeer;
use crate::plan::Plan;
use crate::report::{Better, Row, Target};
use crate::stats::median;

/// Runs the pipelined row.
pub async fn run(plan: &Plan) -> anyhow::Result<Vec<Row>> {
    let sides = [Side::Switchboard, Side::Baseline, Side::Floor, Side::Peer2];
    let results = alternate(plan.rounds, &sides, async |side| match side {
        Side::Switchboard => switchboard(plan).await,
        Side::Baseline => baseline(plan).await,
        Side::Floor => floor(plan).await,
        Side::Peer2 | Side::Peer => peer2(plan).await,
    })
    .await?;
    let figure = |side| median(of(&sides, &results, side));
    Ok(vec![Row::new(
        "pipelined",
        "replies/s",
        Better::Higher,
        figure(Side::Switchboard),
        figure(Side::Baseline),
    )
    .with_floor(figure(Side::Floor))
    .with_peer2(figure(Side::Peer2))
    .with_target(Target::RatioAtLeast { bound: 0.6 })
    .with_note(format!(
        "{} requests in flight (PhoenixHandle::push through the Correlator); median of {} rounds",
        plan.pipeline_depth, plan.rounds
    ))])
}

/// switchboard's hub and supervised client.
async fn switchboard(plan: &Plan) -> anyhow::Result<f64> {
    let hub = BenchHub::start(loopback(), SinkChoice::InProcess)?;
    let board = Switchboard::new(FAST_DIALS_PER_SECOND).start();
    let handle = crate::supervised::open_joined(&board, &hub.phoenix_url(), TOPIC).await?;
    let replies = Counter::new();
    let stop = Stop::new();
    let (flag, counted, sender, depth) = (
        stop.clone(),
        replies.clone(),
        handle.clone(),
        plan.pipeline_depth,
    );
    let rate = measure_sender(&replies, plan, stop, async move {
        let payload = payload::json_payload();
        let push = || {
            let (handle, payload) = (sender.clone(), payload.clone());
            async move { handle.push(TOPIC, PING_EVENT, payload).await }
        };
        let mut in_flight: FuturesUnordered<_> = (0..depth).map(|_| push()).collect();
        while let Some(reply) = in_flight.next().await {
            reply?;
            counted.add(1);
            if !flag.is_set() {
                in_flight.push(push());
            }
        }
        Ok(())
    })
    .await;
    handle.close().await;
    hub.kill().await;
    rate
}

/// The raw pair: a window of echo frames; every echo read sends the next,
/// and echoes already read are answered in one write.
async fn baseline(plan: &Plan) -> anyhow::Result<f64> {
    let server = BaselineServer::start(loopback(), Mode::Echo)?;
    let mut ws = client::connect(&server.url()).await?;
    let replies = Counter::new();
    let stop = Stop::new();
    let (flag, counted, depth) = (stop.clone(), replies.clone(), plan.pipeline_depth);
    let rate = measure_sender(&replies, plan, stop, async move {
        let text = Utf8Bytes::from(payload::raw_text());
        for _ in 0..depth {
            ws.feed(Message::Text(text.clone())).await?;
        }
        ws.flush().await?;
        let mut outstanding = depth;
        while outstanding > 0 {
            let mut next = ws.next().await;
            loop {
                match next {
                    Some(message) => {
                        if let Message::Text(_) = message? {
                            counted.add(1);
                            outstanding -= 1;
                            if !flag.is_set() {
                                ws.feed(Message::Text(text.clone())).await?;
                                outstanding += 1;
                            }
                        }
                    }
                    None => anyhow::bail!("the echo server closed the socket"),
                }
                match ws.next().now_or_never() {
                    Some(message) => next = message,
                    None => break,
                }
            }
            ws.flush().await?;
        }
        ws.close(None).await?;
        Ok(())
    })
    .await;
    server.stop();
    rate
}

/// The Phoenix floor: a window of `ping` pushes from a raw socket, each
/// reply matched by ref and replaced; replies already read are answered
/// in one write.
async fn floor(plan: &Plan) -> anyhow::Result<f64> {
    let server = FloorServer::start(loopback(), Protocol::Phoenix)?;
    let mut ws = floor::client::join(&server.phoenix_url(), TOPIC).await?;
    let replies = Counter::new();
    let stop = Stop::new();
    let (flag, counted, depth) = (stop.clone(), replies.clone(), plan.pipeline_depth);
    measure_sender(&replies, plan, stop, async move {
        let payload = floor::raw(&payload::json_payload())?;
        let mut pushes = phoenix::Pushes::new(TOPIC);
        let mut outstanding = HashSet::with_capacity(depth);
        let mut push = |outstanding: &mut HashSet<u64>| {
            let (msg_ref, frame) = pushes.next(PING_EVENT, &payload);
            outstanding.insert(msg_ref);
            Message::Text(frame.into())
        };
        for _ in 0..depth {
            ws.feed(push(&mut outstanding)).await?;
        }
        ws.flush().await?;
        while !outstanding.is_empty() {
            let mut next = ws.next().await;
            loop {
                let Some(message) = next else {
                    anyhow::bail!("the floor server closed the socket");
                };
                if let Message::Text(text) = message? {
                    let answered = phoenix::ok_reply_ref(&text)?;
                    if answered.is_some_and(|msg_ref| outstanding.remove(&msg_ref)) {
                        counted.add(1);
                        if !flag.is_set() {
                            ws.feed(push(&mut outstanding)).await?;
                        }
                    }
                }
                match ws.next().now_or_never() {
                    Some(message) => next = message,
                    None => break,
                }
            }
            ws.flush().await?;
        }
        ws.close(None).await?;
        Ok(())
    })
    .await
}

/// `phoenix_channels_client`: that many concurrent `Channel::send` calls,
/// each replaced when answered.
async fn peer2(plan: &Plan) -> anyhow::Result<f64> {
    let hub = BenchHub::start(loopback(), SinkChoice::InProcess)?;
    let peer = PhoenixPeer::join(&hub.phoenix_url(), TOPIC).await?;
    let replies = Counter::new();
    let stop = Stop::new();
    let (flag, counted, depth) = (stop.clone(), replies.clone(), plan.pipeline_depth);
    let rate = measure_sender(&replies, plan, stop, async move {
        let payload = payload::json_payload();
        let channel = peer.channel();
        let push = || channel.send(PING_EVENT, payload.clone());
        let mut in_flight: FuturesUnordered<_> = (0..depth).map(|_| push()).collect();
        while let Some(reply) = in_flight.next().await {
            reply?;
            counted.add(1);
            if !flag.is_set() {
                in_flight.push(push());
            }
        }
        drop(in_flight);
        peer.close().await;
        Ok(())
    })
    .await;
    hub.kill().await;
    rate
}
