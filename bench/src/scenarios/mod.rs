//! The benchmark scenarios, one per file, and what they share: the sides,
//! their alternation, and steady-rate measurement.

pub mod active_memory;
pub mod cluster_fanout;
pub mod fanout;
pub mod idle_memory;
pub mod jetstream;
pub mod one_way;
pub mod pipelined;
pub mod rejoin;
pub mod rtt;
pub mod scaling;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures_util::stream::{FuturesUnordered, StreamExt};

use crate::counter::Counter;
use crate::plan::Plan;

/// Dial budget of the bench's switchboards where the scenario is not about
/// dialling (the default, 500 dials/s, would make opening 1,000 sockets take 2 s).
pub const FAST_DIALS_PER_SECOND: u32 = 10_000;

/// How long a sender may take to notice it should stop.
const STOP_WITHIN: Duration = Duration::from_secs(10);

/// Who runs a measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Side {
    /// switchboard's hub and, where the scenario has one, its client.
    Switchboard,
    /// The raw tokio-tungstenite server and client.
    Baseline,
    /// The protocol floor: a minimal tokio-tungstenite server and client
    /// speaking the same protocol (`crate::floor`).
    Floor,
    /// The ezsockets client against switchboard's hub.
    Peer,
    /// The `phoenix_channels_client` client against switchboard's hub.
    Peer2,
}

/// The only side to run (`--side`, for profiling one side), if set.
static ONLY_SIDE: OnceLock<Side> = OnceLock::new();

/// Runs only `side` from now on: the others report 0 (for profiling).
pub fn run_only(side: Side) {
    let _ = ONLY_SIDE.set(side);
}

/// Whether `side` runs in this process.
fn selected(side: Side) -> bool {
    ONLY_SIDE.get().is_none_or(|only| *only == side)
}

/// The first result of a side, or 0 when it did not run.
pub fn first(results: &[f64]) -> f64 {
    results.first().copied().unwrap_or(0.0)
}

/// `127.0.0.1:0`.
pub fn loopback() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

/// Runs `run` for each side `rounds` times, alternating the order every
/// round; returns each side's results in the order of `sides` (none for a
/// side `--side` left out).
pub async fn alternate<T>(
    rounds: usize,
    sides: &[Side],
    mut run: impl AsyncFnMut(Side) -> anyhow::Result<T>,
) -> anyhow::Result<Vec<Vec<T>>> {
    let mut results: Vec<Vec<T>> = sides.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds.max(1) {
        let mut order: Vec<usize> = (0..sides.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for index in order.into_iter().filter(|index| selected(sides[*index])) {
            let result = run(sides[index]).await?;
            results[index].push(result);
        }
    }
    Ok(results)
}

/// The results of `side` from [`alternate`] run over `sides` (empty when
/// it was not among them or did not run).
pub fn of<'a, T>(sides: &[Side], results: &'a [Vec<T>], side: Side) -> &'a [T] {
    sides
        .iter()
        .position(|s| *s == side)
        .and_then(|index| results.get(index))
        .map_or(&[], Vec::as_slice)
}

/// A flag telling a sender task to stop.
#[derive(Clone, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    /// A flag that is not set.
    pub fn new() -> Stop {
        Stop::default()
    }

    /// Sets it.
    pub fn set(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether it is set.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Sends an application issues at once in the one-way scenarios: `send`
/// answers once a frame is queued, so a few outstanding calls let the
/// connection write frames in batches (measured: ~15 % more than one at a
/// time on 2 cores).
pub const SEND_CONCURRENCY: usize = 64;

/// Calls `send` until `stop` is set, with up to [`SEND_CONCURRENCY`] calls
/// outstanding and at most `window` messages sent but not yet counted by
/// the server.
pub async fn pump<F, Fut>(
    counter: &Counter,
    window: u64,
    stop: &Stop,
    mut send: F,
) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut outstanding = FuturesUnordered::new();
    let mut sent = 0;
    while !stop.is_set() {
        counter.wait_for_room(sent, window).await;
        while outstanding.len() >= SEND_CONCURRENCY {
            if let Some(outcome) = outstanding.next().await {
                outcome?;
            }
        }
        outstanding.push(send());
        sent += 1;
    }
    while let Some(outcome) = outstanding.next().await {
        outcome?;
    }
    Ok(())
}

/// Counted per second over the plan's window, after its warm-up.
pub async fn steady_rate(counter: &Counter, plan: &Plan) -> f64 {
    tokio::time::sleep(plan.warmup).await;
    let (before, started) = (counter.get(), Instant::now());
    tokio::time::sleep(plan.window).await;
    let (after, ended) = (counter.get(), Instant::now());
    (after - before) as f64 / (ended - started).as_secs_f64()
}

/// Measures the steady rate of `counter` while `sender` runs, then stops
/// the sender and surfaces its error, if any.
pub async fn measure_sender(
    counter: &Counter,
    plan: &Plan,
    stop: Stop,
    sender: impl std::future::Future<Output = anyhow::Result<()>> + 'static,
) -> anyhow::Result<f64> {
    let task = actix_rt::spawn(sender);
    let rate = steady_rate(counter, plan).await;
    stop.set();
    match tokio::time::timeout(STOP_WITHIN, task).await {
        Ok(Ok(outcome)) => outcome?,
        Ok(Err(panic)) => anyhow::bail!("the sender panicked: {panic}"),
        Err(_) => anyhow::bail!("the sender did not stop within {STOP_WITHIN:?}"),
    }
    Ok(rate)
}
