//! `switchboard publish`: send N data envelopes, wait for every ack, report.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::Actor;
use futures_util::stream::{FuturesUnordered, StreamExt};
use indicatif::{ProgressBar, ProgressState};
use serde::Serialize;
use serde_json::json;

use crate::client_args::{bar_style, stderr_bar, ConnectArgs};
use switchboard::client::{OpenProducer, ProduceError, Switchboard};

/// What to publish (also the `publish` subcommand's arguments).
#[derive(Debug, Clone, clap::Args)]
pub struct PublishOptions {
    /// The hub's ingest URL, e.g. ws://127.0.0.1:4000/ingest.
    pub url: String,
    /// How many data envelopes.
    #[arg(long, default_value_t = 1000)]
    pub count: u64,
    /// Messages per second (default: as fast as acks allow).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Approximate payload size in bytes.
    #[arg(long, default_value_t = 100)]
    pub size: usize,
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Most envelopes awaiting their ack at once (keep it under the hub's
    /// backpressure.queue_size, 1000 by default).
    #[arg(long, default_value_t = 500)]
    pub window: usize,
    /// How long one envelope may wait for its ack.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

/// The one JSON line `publish` prints.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PublishSummary {
    /// Envelopes handed to the connection.
    pub sent: u64,
    /// Acked by the hub.
    pub acked: u64,
    /// Nacked by the hub.
    pub nacked: u64,
    /// Neither (timeout, connection closed).
    pub failed: u64,
    /// Wall time.
    pub elapsed_ms: u64,
    /// acked / elapsed.
    pub msgs_per_s: f64,
}

impl PublishSummary {
    /// Exit code: 0 only if every envelope was acked.
    pub fn exit_code(&self) -> u8 {
        if self.acked == self.sent && self.sent > 0 || self.sent == 0 && self.failed == 0 {
            0
        } else {
            1
        }
    }
}

/// The bar on stderr: settled envelopes out of `--count`, then sent,
/// acked, nacked and failed (those two when not 0) and the settle rate.
const TEMPLATE: &str = "{spinner} {elapsed_precise} [{wide_bar}] sent {sent}/{len}  \
                        acked {acked}{trouble}  {rate} msg/s";

/// The counts the bar reads when it redraws; the publish loop only stores
/// them (relaxed), so publishing does not wait on drawing.
#[derive(Debug, Default)]
struct Counts {
    sent: AtomicU64,
    acked: AtomicU64,
    nacked: AtomicU64,
    failed: AtomicU64,
}

/// `publish`'s progress: a bar when stderr is a terminal, else nothing.
struct Progress(Option<(ProgressBar, Arc<Counts>)>);

impl Progress {
    fn start(count: u64) -> Progress {
        let counts = Arc::new(Counts::default());
        let key = |field: fn(&Counts) -> &AtomicU64| {
            let counts = counts.clone();
            move |_: &ProgressState, out: &mut dyn std::fmt::Write| {
                let _ = write!(out, "{}", field(&counts).load(Ordering::Relaxed));
            }
        };
        let trouble = {
            let counts = counts.clone();
            move |_: &ProgressState, out: &mut dyn std::fmt::Write| {
                let nacked = counts.nacked.load(Ordering::Relaxed);
                let failed = counts.failed.load(Ordering::Relaxed);
                if nacked + failed > 0 {
                    let _ = write!(out, "  nacked {nacked}  failed {failed}");
                }
            }
        };
        let style = bar_style(TEMPLATE)
            .with_key("sent", key(|counts| &counts.sent))
            .with_key("acked", key(|counts| &counts.acked))
            .with_key("trouble", trouble)
            .progress_chars("=> ");
        Progress(stderr_bar(Some(count), style).map(|bar| (bar, counts)))
    }

    /// Stores the counts; the bar redraws when its rate limit allows.
    fn show(&self, summary: &PublishSummary) {
        let Some((bar, counts)) = &self.0 else {
            return;
        };
        counts.sent.store(summary.sent, Ordering::Relaxed);
        counts.acked.store(summary.acked, Ordering::Relaxed);
        counts.nacked.store(summary.nacked, Ordering::Relaxed);
        counts.failed.store(summary.failed, Ordering::Relaxed);
        bar.set_position(summary.acked + summary.nacked + summary.failed);
    }

    /// Draws the final counts and leaves them on their own line.
    fn finish(&self, summary: &PublishSummary) {
        self.show(summary);
        if let Some((bar, _)) = &self.0 {
            bar.finish();
            eprintln!();
        }
    }
}

/// Publishes and returns the summary; `Err` when no connection could be made.
pub async fn publish(options: PublishOptions) -> Result<PublishSummary, String> {
    let mut config = options.connect.config(&options.url);
    config.fail_first_connect = true;
    config.buffer_max_frames = options.window.max(1) * 2;
    config.buffer_max_bytes = (options.size + 256) * config.buffer_max_frames;
    config.buffer_deadline = options.timeout;
    let board = Switchboard::default().start();
    let handle = board
        .send(OpenProducer(config))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| crate::with_sources(&e))?;
    let pad = "x".repeat(options.size.saturating_sub(24));
    let started = Instant::now();
    let mut summary = PublishSummary {
        sent: 0,
        acked: 0,
        nacked: 0,
        failed: 0,
        elapsed_ms: 0,
        msgs_per_s: 0.0,
    };
    let progress = Progress::start(options.count);
    let mut waiting = FuturesUnordered::new();
    let tally = |summary: &mut PublishSummary, outcome: Result<(), ProduceError>| match outcome {
        Ok(()) => summary.acked += 1,
        Err(ProduceError::Nacked { .. }) => summary.nacked += 1,
        Err(_) => summary.failed += 1,
    };
    for seq in 0..options.count {
        if let Some(rate) = options.rate.filter(|rate| *rate > 0.0) {
            // The envelopes in flight go on (and are tallied) meanwhile.
            let due = started + Duration::from_secs_f64(seq as f64 / rate);
            let pause = tokio::time::sleep_until(due.into());
            tokio::pin!(pause);
            loop {
                tokio::select! {
                    () = &mut pause => break,
                    Some(outcome) = waiting.next() => {
                        tally(&mut summary, outcome);
                        progress.show(&summary);
                    }
                }
            }
        }
        while waiting.len() >= options.window.max(1) {
            if let Some(outcome) = waiting.next().await {
                tally(&mut summary, outcome);
                progress.show(&summary);
            }
        }
        let handle = handle.clone();
        let payload = json!({"seq": seq, "pad": pad});
        waiting.push(async move { handle.send_data(payload).await });
        summary.sent += 1;
        progress.show(&summary);
    }
    while let Some(outcome) = waiting.next().await {
        tally(&mut summary, outcome);
        progress.show(&summary);
    }
    let elapsed = started.elapsed();
    summary.elapsed_ms = elapsed.as_millis() as u64;
    summary.msgs_per_s =
        (summary.acked as f64 / elapsed.as_secs_f64().max(1e-9) * 10.0).round() / 10.0;
    progress.finish(&summary);
    handle.close().await;
    Ok(summary)
}
