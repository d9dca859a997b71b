//! `jetstream_sink`: ingest into JetStream. switchboard: a producer sends
//! envelope data through `/ingest`, the hub's JetStream sink stores each
//! item (counted at its PubAck). Baseline: async-nats publishing the same
//! 100-byte payloads straight into a stream of the same configuration, with
//! the same headers (Nats-Msg-Id, Nats-Expected-Stream) and the same number
//! of acks outstanding. Runs only when nats-server is installed.

use std::rc::Rc;
use std::time::Duration;

use actix::Actor;
use anyhow::anyhow;
use async_nats::jetstream::{self, message::PublishMessage, stream};
use bytes::Bytes;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use switchboard::client::Switchboard;

use super::one_way::send_data;
use super::{alternate, loopback, measure_sender, pump, Side, Stop, FAST_DIALS_PER_SECOND};
use crate::counter::Counter;
use crate::hub::{BenchHub, SinkChoice};
use crate::nats::start_or_skip;
use crate::payload;
use crate::plan::Plan;
use crate::report::{Better, Row, Target};
use crate::stats::median;

/// The baseline's stream.
const BASELINE_STREAM: &str = "BENCH_BASELINE";

/// The baseline's data subject.
const BASELINE_SUBJECT: &str = "bench.baseline.data";

/// Runs the JetStream row, or reports it skipped when nats-server is missing.
pub async fn run(plan: &Plan) -> anyhow::Result<Vec<Row>> {
    let Some(nats) = start_or_skip("jetstream_sink").await? else {
        return Ok(Vec::new());
    };
    let results = alternate(
        plan.rounds,
        &[Side::Switchboard, Side::Baseline],
        async |side| match side {
            Side::Baseline => baseline(plan, &nats.url()).await,
            _ => switchboard(plan, &nats.url()).await,
        },
    )
    .await;
    nats.stop()?;
    let results = results?;
    Ok(vec![Row::new(
        "jetstream_sink",
        "stored msgs/s",
        Better::Higher,
        median(&results[0]),
        median(&results[1]),
    )
    .with_target(Target::RatioAtLeast { bound: 0.8 })
    .with_note(format!(
        "baseline = async-nats publishing straight into JetStream; {} acks outstanding on both sides; median of {} rounds",
        plan.ingest_in_flight, plan.rounds
    ))])
}

/// switchboard: producer -> hub -> JetStream sink.
async fn switchboard(plan: &Plan, url: &str) -> anyhow::Result<f64> {
    let hub = BenchHub::start(loopback(), SinkChoice::JetStream(url.to_owned()))?;
    let board = Switchboard::new(FAST_DIALS_PER_SECOND).start();
    let producer = crate::supervised::open_producer(&board, &hub.ingest_url()).await?;
    let counter = hub.ingested().clone();
    let stop = Stop::new();
    let (sender, flag, in_flight) = (
        Rc::new(producer.clone()),
        stop.clone(),
        plan.ingest_in_flight,
    );
    let rate = measure_sender(&counter.clone(), plan, stop, async move {
        let payload = Rc::new(payload::json_payload());
        pump(&counter, in_flight, &flag, || {
            send_data(sender.clone(), payload.clone())
        })
        .await
    })
    .await;
    producer.close().await;
    hub.kill().await;
    rate
}

/// The baseline: async-nats alone.
async fn baseline(plan: &Plan, url: &str) -> anyhow::Result<f64> {
    let client = async_nats::connect(url).await?;
    let context = jetstream::new(client);
    context
        .get_or_create_stream(stream::Config {
            name: BASELINE_STREAM.to_owned(),
            subjects: vec![BASELINE_SUBJECT.to_owned()],
            storage: stream::StorageType::File,
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await
        .map_err(|error| anyhow!("creating {BASELINE_STREAM}: {error}"))?;
    let stored = Counter::new();
    let stop = Stop::new();
    let (flag, counted, in_flight) = (stop.clone(), stored.clone(), plan.ingest_in_flight as usize);
    let prefix = format!("{:016x}", fastrand::u64(..));
    measure_sender(&stored, plan, stop, async move {
        let body = Bytes::from(payload::raw_text());
        let mut acks = FuturesUnordered::new();
        let mut sent = 0u64;
        while !flag.is_set() {
            while acks.len() >= in_flight {
                if let Some(ack) = acks.next().await {
                    ack?;
                    counted.add(1);
                }
            }
            while let Some(Some(ack)) = acks.next().now_or_never() {
                ack?;
                counted.add(1);
            }
            let message = PublishMessage::build()
                .payload(body.clone())
                .expected_stream(BASELINE_STREAM)
                .message_id(format!("{prefix}-{sent}"));
            let ack = context.send_publish(BASELINE_SUBJECT, message).await?;
            acks.push(std::future::IntoFuture::into_future(ack));
            sent += 1;
        }
        while let Some(ack) = acks.next().await {
            ack?;
            counted.add(1);
        }
        Ok(())
    })
    .await
}
