//! `active_memory`: resident memory per *active* connection on the server.
//! Like `idle_memory_server_*`, but every socket is joined to a topic and
//! receives a broadcast each period while the memory is read.
//!
//! A child runs only the server and broadcasts by itself: the hub one
//! 100-byte broadcast per period on each of [`TOPICS`] topics, whose
//! members are the sockets in turn (10 topics of 1,000 at 10,000); the raw
//! server, which has no topics, one broadcast per period to every socket.
//! Either way each socket gets one broadcast per period. This process holds
//! the raw receivers, reads the child's VmRSS after the warm-up receivers
//! got a broadcast and again after every receiver got a few, and reports
//! `(after - before) / connections`, in KiB.

use std::time::Duration;

use anyhow::anyhow;

use super::scaling::{await_members, kind, Receivers, ANSWER_WITHIN};
use super::{alternate, first, Side};
use crate::child::{Broadcaster, ChildProcess, Kind, Listening, SETTLE, WARM_CONNECTIONS};
use crate::counter::Counter;
use crate::plan::{Plan, TEN_THOUSAND_NEEDS_FILES};
use crate::report::{Better, Row};
use crate::rss::rss_kib;

/// Topics the hub's sockets are spread over.
const TOPICS: usize = 10;

/// Broadcasts every receiver gets (about) before the "after" reading.
const ROUNDS_BEFORE_READING: u64 = 3;

/// Runs the `active_memory_server_N` row.
pub async fn run(plan: &Plan) -> anyhow::Result<Vec<Row>> {
    let open_files = crate::limits::raise_open_files();
    let (connections, period) = if plan.quick {
        // A smoke-size run: five broadcasts a second, to be done sooner.
        (1_000, Duration::from_millis(200))
    } else if open_files >= TEN_THOUSAND_NEEDS_FILES {
        (10_000, Duration::from_secs(1))
    } else {
        eprintln!(
            "warning: open-file limit {open_files} < {TEN_THOUSAND_NEEDS_FILES}: \
             active_memory runs with 1,000 connections only"
        );
        (1_000, Duration::from_secs(1))
    };
    let results = alternate(1, &[Side::Switchboard, Side::Baseline], async |side| {
        server_side(kind(side), connections, period, plan).await
    })
    .await?;
    Ok(vec![Row::new(
        &format!("active_memory_server_{connections}"),
        "KiB/connection",
        Better::Lower,
        first(&results[0]),
        first(&results[1]),
    )
    .with_note(format!(
        "hub (or raw broadcast server) in a child process; raw clients joined to {TOPICS} topics \
         (raw server: no topics), each receiving one 100-byte broadcast every {} ms; \
         RSS read after {ROUNDS_BEFORE_READING} of them",
        period.as_millis()
    ))])
}

/// Topic number `n`.
fn topic_name(n: usize) -> String {
    format!("bench:active-{n}")
}

/// The topic of receiver `index`.
fn topic(index: usize) -> String {
    topic_name(index % TOPICS)
}

/// KiB per active connection the server child grows by.
async fn server_side(
    kind: Kind,
    connections: usize,
    period: Duration,
    plan: &Plan,
) -> anyhow::Result<f64> {
    let mut child = ChildProcess::spawn(&[
        "__active_server".to_owned(),
        kind.arg(),
        TOPICS.to_string(),
        period.as_millis().to_string(),
    ])?;
    let listening: Listening = child.line(ANSWER_WITHIN).await?;
    let pid = child.pid()?;
    let url = kind.receiver_url(listening.addr);
    let topics: Vec<String> = (0..TOPICS).map(topic).collect();
    let delivered = Counter::new();
    let warm = Receivers::open(kind, &url, 0..WARM_CONNECTIONS, topic, plan, &delivered).await?;
    let total = WARM_CONNECTIONS + connections;
    let outcome = async {
        await_members(&mut child, &topics, WARM_CONNECTIONS).await?;
        await_rounds(&delivered, WARM_CONNECTIONS, 1, period).await?;
        tokio::time::sleep(SETTLE).await;
        let before = rss_kib(pid)?;
        let held =
            Receivers::open(kind, &url, WARM_CONNECTIONS..total, topic, plan, &delivered).await?;
        let after = async {
            await_members(&mut child, &topics, total).await?;
            await_rounds(&delivered, total, ROUNDS_BEFORE_READING, period).await?;
            tokio::time::sleep(SETTLE).await;
            rss_kib(pid)
        }
        .await;
        held.close().await;
        anyhow::Ok(after?.saturating_sub(before) as f64 / connections as f64)
    }
    .await;
    warm.close().await;
    child.finish().await;
    outcome
}

/// Waits until `receivers` have got `rounds` broadcasts each (counted
/// together) from now on.
async fn await_rounds(
    delivered: &Counter,
    receivers: usize,
    rounds: u64,
    period: Duration,
) -> anyhow::Result<()> {
    let expected = rounds * receivers as u64;
    let base = delivered.get();
    let within = period * (rounds as u32 + 2) + ANSWER_WITHIN;
    tokio::time::timeout(within, delivered.wait_for(base + expected))
        .await
        .map_err(|_| {
            anyhow!(
                "{} of {expected} broadcast deliveries within {within:?}",
                delivered.get() - base
            )
        })
}

/// `__active_server`: a server broadcasting every `period` on each of
/// `topics` topics (the raw server: once, to every socket), answering
/// `members` until stdin closes (in the child process).
pub fn serve(kind: Kind, topics: usize, period: Duration) -> anyhow::Result<()> {
    let server = Broadcaster::start(kind)?;
    server.announce()?;
    let names: Vec<String> = (0..topics).map(topic_name).collect();
    std::thread::scope(|scope| {
        scope.spawn(|| loop {
            std::thread::sleep(period);
            if server.is_raw() {
                server.broadcast("");
            } else {
                for name in &names {
                    server.broadcast(name);
                }
            }
        });
        let outcome = server.answer_commands();
        if let Err(error) = &outcome {
            eprintln!("active server: {error:#}");
        }
        // No orderly shutdown (the broadcasting thread never ends).
        std::process::exit(i32::from(outcome.is_err()))
    })
}
