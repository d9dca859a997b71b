//! `one_way`: one connection, the client sends 100-byte messages as fast as
//! it can, the server counts them (msgs/s). Two rows: Phoenix pushes into
//! the hub's channel, and envelope v1 data through `/ingest` into the
//! in-process sink.
//!
//! Beside the raw pair, each row has its protocol floor (the floor client
//! and server speaking Phoenix V2 or envelope v1, `crate::floor`) and the
//! ezsockets peer; the Phoenix row also `phoenix_channels_client`.
//!
//! Every sender keeps at most `plan.one_way_in_flight` (ingest:
//! `plan.ingest_in_flight`) messages sent but not yet counted by the
//! server (the envelope floor's client: not yet acked, by the acks it
//! reads), the same rule for every side: switchboard's casts answer
//! once queued, not once written, so without a window a sender would only
//! measure how fast it can fill a queue. switchboard's client keeps
//! [`SEND_CONCURRENCY`](super::SEND_CONCURRENCY) `send` calls outstanding.

use actix::Actor;
use anyhow::bail;
use futures_util::{SinkExt, StreamExt};
use std::rc::Rc;
use std::time::Duration;

use serde_json::Value;
use switchboard::client::{ProduceError, ProducerHandle, Switchboard};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::{alternate, loopback, measure_sender, of, pump, Side, Stop, FAST_DIALS_PER_SECOND};
use crate::baseline::client;
use crate::baseline::server::{BaselineServer, Mode};
use crate::counter::Counter;
use crate::floor::server::{FloorServer, Protocol};
use crate::floor::{self, ingest, phoenix};
use crate::hub::{BenchHub, SinkChoice};
use crate::payload::{self, COUNT_EVENT, TOPIC};
use crate::peer::Peer;
use crate::phoenix_peer::PhoenixPeer;
use crate::plan::Plan;
use crate::report::{Better, Row, Target};
use crate::stats::median;

/// Which path the messages take on the switchboard side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// Phoenix pushes (`PhoenixHandle::send`) to the bench channel.
    Phoenix,
    /// Envelope data (`ProducerHandle::send`) into the in-process sink.
    Ingest,
}

/// Runs the Phoenix row.
pub async fn run_phoenix(plan: &Plan) -> anyhow::Result<Vec<Row>> {
    run(plan, Path::Phoenix).await
}

/// Runs the ingest row.
pub async fn run_ingest(plan: &Plan) -> anyhow::Result<Vec<Row>> {
    run(plan, Path::Ingest).await
}

/// Runs the row of `path`: every side, alternating.
async fn run(plan: &Plan, path: Path) -> anyhow::Result<Vec<Row>> {
    let sides: &[Side] = match path {
        Path::Phoenix => &[
            Side::Switchboard,
            Side::Baseline,
            Side::Floor,
            Side::Peer,
            Side::Peer2,
        ],
        Path::Ingest => &[Side::Switchboard, Side::Baseline, Side::Floor, Side::Peer],
    };
    let results = alternate(plan.rounds, sides, async |side| match side {
        Side::Switchboard => switchboard(plan, path).await,
        Side::Baseline => baseline(plan, window(plan, path)).await,
        Side::Floor if path == Path::Phoenix => floor_phoenix(plan).await,
        Side::Floor => floor_ingest(plan).await,
        Side::Peer => peer(plan, path).await,
        Side::Peer2 => peer2(plan).await,
    })
    .await?;
    let figure = |side| median(of(sides, &results, side));
    let (name, note) = match path {
        Path::Phoenix => (
            "one_way_phoenix",
            "PhoenixHandle::send casts to a hub channel that counts them",
        ),
        Path::Ingest => (
            "one_way_ingest",
            "ProducerHandle::send into /ingest, counted once the in-process sink accepted each",
        ),
    };
    let row = Row::new(
        name,
        "msgs/s",
        Better::Higher,
        figure(Side::Switchboard),
        figure(Side::Baseline),
    )
    .with_floor(figure(Side::Floor))
    .with_peer(figure(Side::Peer));
    // Phoenix against bare frames; ingest against its protocol floor (its
    // acks are part of the protocol: a raw pair that only counts frames
    // does not have them).
    let row = match path {
        Path::Phoenix => row
            .with_peer2(figure(Side::Peer2))
            .with_target(Target::RatioAtLeast { bound: 0.5 }),
        Path::Ingest => row.with_target(Target::FloorRatioAtLeast { bound: 0.6 }),
    };
    Ok(vec![row.with_note(format!(
        "{note}; {} in flight; median of {} rounds",
        window(plan, path),
        plan.rounds
    ))])
}

/// The in-flight window of `path`.
fn window(plan: &Plan, path: Path) -> u64 {
    match path {
        Path::Phoenix => plan.one_way_in_flight,
        Path::Ingest => plan.ingest_in_flight,
    }
}

/// switchboard's hub and supervised client.
async fn switchboard(plan: &Plan, path: Path) -> anyhow::Result<f64> {
    let hub = BenchHub::start(loopback(), SinkChoice::InProcess)?;
    let board = Switchboard::new(FAST_DIALS_PER_SECOND).start();
    let stop = Stop::new();
    let in_flight = window(plan, path);
    let rate = match path {
        Path::Phoenix => {
            let handle = crate::supervised::open_joined(&board, &hub.phoenix_url(), TOPIC).await?;
            let counter = hub.counted().clone();
            // Rc: the outstanding calls share the handle instead of cloning it.
            let (sender, flag) = (Rc::new(handle.clone()), stop.clone());
            let rate = measure_sender(&counter.clone(), plan, stop, async move {
                let payload = payload::json_payload();
                pump(&counter, in_flight, &flag, || {
                    let (sender, payload) = (sender.clone(), payload.clone());
                    async move { Ok(sender.send(TOPIC, COUNT_EVENT, payload).await?) }
                })
                .await
            })
            .await;
            handle.close().await;
            rate?
        }
        Path::Ingest => {
            let producer = crate::supervised::open_producer(&board, &hub.ingest_url()).await?;
            let counter = hub.ingested().clone();
            let (sender, flag) = (Rc::new(producer.clone()), stop.clone());
            let rate = measure_sender(&counter.clone(), plan, stop, async move {
                let payload = Rc::new(payload::json_payload());
                pump(&counter, in_flight, &flag, || {
                    send_data(sender.clone(), payload.clone())
                })
                .await
            })
            .await;
            producer.close().await;
            rate?
        }
    };
    hub.kill().await;
    Ok(rate)
}

/// Sends one data envelope without waiting for its ack; a full buffer
/// (acks trail the sink's count a little) is waited out, not counted.
pub async fn send_data(producer: Rc<ProducerHandle>, payload: Rc<Value>) -> anyhow::Result<()> {
    loop {
        match producer.send(Value::clone(&payload)).await {
            Ok(()) => return Ok(()),
            Err(ProduceError::BufferFull { .. }) => {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// The raw pair: a tokio-tungstenite client feeding 100-byte text frames
/// to a counting tokio-tungstenite server.
pub async fn baseline(plan: &Plan, in_flight: u64) -> anyhow::Result<f64> {
    let server = BaselineServer::start(loopback(), Mode::Count)?;
    let mut ws = client::connect(&server.url()).await?;
    let counter = server.counter().clone();
    let stop = Stop::new();
    let flag = stop.clone();
    let rate = measure_sender(&counter.clone(), plan, stop, async move {
        let text = Utf8Bytes::from(payload::raw_text());
        let mut sent: u64 = 0;
        while !flag.is_set() {
            if sent.saturating_sub(counter.get()) >= in_flight {
                ws.flush().await?;
                counter.wait_for_room(sent, in_flight).await;
            }
            ws.feed(Message::Text(text.clone())).await?;
            sent += 1;
        }
        ws.close(None).await?;
        Ok(())
    })
    .await?;
    server.stop();
    Ok(rate)
}

/// The ezsockets client sending the same frames to switchboard's hub.
async fn peer(plan: &Plan, path: Path) -> anyhow::Result<f64> {
    let hub = BenchHub::start(loopback(), SinkChoice::InProcess)?;
    let stop = Stop::new();
    let in_flight = window(plan, path);
    let (url, counter) = match path {
        Path::Phoenix => (hub.phoenix_v2_url(), hub.counted().clone()),
        Path::Ingest => (hub.ingest_url(), hub.ingested().clone()),
    };
    let peer = Peer::connect(&url, false).await?;
    if path == Path::Phoenix {
        peer.send(payload::phoenix_join())?;
    }
    let flag = stop.clone();
    let rate = measure_sender(&counter.clone(), plan, stop, async move {
        let payload = payload::json_payload();
        let mut sent = 0;
        while !flag.is_set() {
            counter.wait_for_room(sent, in_flight).await;
            let frame = match path {
                Path::Phoenix => payload::phoenix_push(sent + 2, COUNT_EVENT, &payload),
                Path::Ingest => payload::envelope_data(sent, payload.clone()),
            };
            peer.send(frame)?;
            sent += 1;
            if sent % 256 == 0 {
                // ezsockets queues without bound and writes on another task
                // of this thread: give it the thread now and then.
                tokio::task::yield_now().await;
            }
        }
        peer.close();
        Ok(())
    })
    .await;
    hub.kill().await;
    delivered(rate?, "ezsockets")
}

/// The Phoenix floor: `count` pushes (with refs, as switchboard's client
/// sends them) from a raw socket to the floor server, which counts them.
async fn floor_phoenix(plan: &Plan) -> anyhow::Result<f64> {
    let server = FloorServer::start(loopback(), Protocol::Phoenix)?;
    let mut ws = floor::client::join(&server.phoenix_url(), TOPIC).await?;
    let (counter, in_flight) = (server.counter().clone(), plan.one_way_in_flight);
    let stop = Stop::new();
    let flag = stop.clone();
    measure_sender(&counter.clone(), plan, stop, async move {
        let payload = floor::raw(&payload::json_payload())?;
        let mut pushes = phoenix::Pushes::new(TOPIC);
        let mut sent: u64 = 0;
        while !flag.is_set() {
            if sent.saturating_sub(counter.get()) >= in_flight {
                ws.flush().await?;
                counter.wait_for_room(sent, in_flight).await;
            }
            let (_, frame) = pushes.next(COUNT_EVENT, &payload);
            ws.feed(Message::Text(frame.into())).await?;
            sent += 1;
        }
        ws.close(None).await?;
        Ok(())
    })
    .await
}

/// The envelope floor: data envelopes from a raw socket, at most
/// `plan.ingest_in_flight` not yet acked; the floor server counts and acks
/// each one.
async fn floor_ingest(plan: &Plan) -> anyhow::Result<f64> {
    let server = FloorServer::start(loopback(), Protocol::Ingest)?;
    let (mut sink, stream) = client::connect(&server.ingest_url()).await?.split();
    let acks = Counter::new();
    let reader = actix_rt::spawn(floor::client::count_acks(stream, acks.clone()));
    let in_flight = plan.ingest_in_flight;
    let stop = Stop::new();
    let flag = stop.clone();
    let rate = measure_sender(&server.counter().clone(), plan, stop, async move {
        use std::fmt::Write as _;
        let payload = floor::raw(&payload::json_payload())?;
        let (mut id, mut sent) = (String::new(), 0u64);
        while !flag.is_set() {
            if sent.saturating_sub(acks.get()) >= in_flight {
                sink.flush().await?;
                acks.wait_for_room(sent, in_flight).await;
            }
            id.clear();
            let _ = write!(id, "floor-{sent}");
            sink.feed(Message::Text(ingest::data(&id, &payload).into()))
                .await?;
            sent += 1;
        }
        sink.close().await?;
        Ok(())
    })
    .await;
    reader.abort();
    rate
}

/// `phoenix_channels_client` casting `count` (`send_noreply`) to switchboard's hub.
async fn peer2(plan: &Plan) -> anyhow::Result<f64> {
    let hub = BenchHub::start(loopback(), SinkChoice::InProcess)?;
    let peer = PhoenixPeer::join(&hub.phoenix_url(), TOPIC).await?;
    let (counter, in_flight) = (hub.counted().clone(), plan.one_way_in_flight);
    let stop = Stop::new();
    let flag = stop.clone();
    let rate = measure_sender(&counter.clone(), plan, stop, async move {
        let payload = payload::json_payload();
        let mut sent = 0;
        while !flag.is_set() {
            counter.wait_for_room(sent, in_flight).await;
            peer.channel()
                .send_noreply(COUNT_EVENT, payload.clone())
                .await?;
            sent += 1;
        }
        peer.close().await;
        Ok(())
    })
    .await;
    hub.kill().await;
    delivered(rate?, "phoenix_channels_client")
}

/// A peer's rate, refused when it delivered nothing (a peer that never got
/// going must not read as a measurement).
fn delivered(rate: f64, peer: &str) -> anyhow::Result<f64> {
    if rate == 0.0 {
        bail!("the {peer} peer delivered nothing");
    }
    Ok(rate)
}
