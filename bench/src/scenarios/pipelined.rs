//! `pipelined`: one connection, a fixed number of requests in flight
//! (replies/s). switchboard: that many concurrent `PhoenixHandle::push`
//! calls, each replaced as soon as its reply is back. Baseline: as many echo
//! frames in flight on the raw pair, each answered echo sending the next.

use actix::Actor;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, SinkExt, StreamExt};
use switchboard::client::Switchboard;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::{alternate, loopback, measure_sender, Side, Stop, FAST_DIALS_PER_SECOND};
use crate::baseline::client;
use crate::baseline::server::{BaselineServer, Mode};
use crate::counter::Counter;
use crate::hub::{BenchHub, SinkChoice};
use crate::payload::{self, PING_EVENT, TOPIC};
use crate::plan::Plan;
use crate::report::{Better, Row, Target};
use crate::stats::median;

/// Runs the pipelined row.
pub async fn run(plan: &Plan) -> anyhow::Result<Vec<Row>> {
    let results = alternate(
        plan.rounds,
        &[Side::Switchboard, Side::Baseline],
        async |side| match side {
            Side::Baseline => baseline(plan).await,
            _ => switchboard(plan).await,
        },
    )
    .await?;
    Ok(vec![Row::new(
        "pipelined",
        "replies/s",
        Better::Higher,
        median(&results[0]),
        median(&results[1]),
    )
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
