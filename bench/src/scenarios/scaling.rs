//! `scaling`: how the cost of a broadcast grows with the audience. The
//! `fanout_hub` burst at 100, 1,000 and 10,000 raw receivers, against the
//! raw broadcast server with the same receivers; deliveries/s and µs per
//! delivery at each size.
//!
//! The server runs in a child process (the hub on its own threads, or the
//! raw server on its one), so each process holds one end of the sockets:
//! 10,000 receivers need 10,500 open files per process, not 21,000. This
//! process holds the receivers, times each burst from the `burst` command
//! to the last delivery, and reports the median burst.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use futures_util::StreamExt;
use switchboard::protocol::phoenix;
use tokio::task::JoinHandle;

use super::fanout::count_texts;
use super::{alternate, Side};
use crate::baseline::client::{self, Ws};
use crate::child::{ChildProcess, Kind, Listening, Members, Sent};
use crate::counter::Counter;
use crate::payload::TOPIC;
use crate::plan::{Plan, TEN_THOUSAND_NEEDS_FILES};
use crate::report::{Better, Row};
use crate::stats::median;

/// Longest a child may take to start or to answer a command.
pub(super) const ANSWER_WITHIN: Duration = Duration::from_secs(30);

/// Longest the receivers may take to connect and join.
const OPEN_WITHIN: Duration = Duration::from_secs(120);

/// Longest one burst may take to be delivered.
const DELIVER_WITHIN: Duration = Duration::from_secs(60);

/// Open files a process needs besides its sockets.
const SPARE_FILES: u64 = TEN_THOUSAND_NEEDS_FILES - 10_000;

/// One audience size and its burst.
#[derive(Debug, Clone, Copy)]
struct Step {
    /// Receivers joined to the topic.
    receivers: usize,
    /// Broadcasts per burst (at most 2,000: well inside the hub's 4,096
    /// outbound frames per socket and the raw server's 4,096).
    broadcasts: usize,
}

/// The sizes of a run: full, 200,000–500,000 deliveries per burst (about
/// 0.1–2 s each on 2 cores), 3 timed bursts per alternation, 2
/// alternations (about 40 s in all); `--quick`, two sizes, 3 bursts, 1
/// alternation (about 1.5 s).
fn steps(plan: &Plan) -> (Vec<Step>, usize, usize) {
    let step = |receivers, broadcasts| Step {
        receivers,
        broadcasts,
    };
    if plan.quick {
        (vec![step(100, 500), step(1_000, 100)], 3, 1)
    } else {
        (
            vec![step(100, 2_000), step(1_000, 500), step(10_000, 50)],
            3,
            2,
        )
    }
}

/// Runs the `scaling_N` rows.
pub async fn run(plan: &Plan) -> anyhow::Result<Vec<Row>> {
    let open_files = crate::limits::raise_open_files();
    let (steps, bursts, rounds) = steps(plan);
    let mut rows = Vec::new();
    let mut left_out = Vec::new();
    for step in steps {
        if open_files < step.receivers as u64 + SPARE_FILES {
            eprintln!(
                "warning: open-file limit {open_files} < {}: scaling_{} left out",
                step.receivers as u64 + SPARE_FILES,
                step.receivers
            );
            left_out.push(step.receivers.to_string());
            continue;
        }
        let results = alternate(rounds, &[Side::Switchboard, Side::Baseline], async |side| {
            measure(kind(side), step, bursts, plan).await
        })
        .await?;
        let rate = |side: usize| median(&results[side].concat());
        let (hub, raw) = (rate(0), rate(1));
        rows.push(
            Row::new(
                &format!("scaling_{}", step.receivers),
                "deliveries/s",
                Better::Higher,
                hub,
                raw,
            )
            .with_note(format!(
                "{} us/delivery hub, {} us raw; {} raw receivers x {} broadcasts of 100 B, \
                 server in a child process; median of {} bursts",
                micros_per_delivery(hub),
                micros_per_delivery(raw),
                step.receivers,
                step.broadcasts,
                bursts * rounds
            )),
        );
    }
    if let (Some(last), false) = (rows.last_mut(), left_out.is_empty()) {
        let note = last.note.take().unwrap_or_default();
        last.note = Some(format!(
            "{note}; N = {} left out: open-file limit {open_files}",
            left_out.join(", ")
        ));
    }
    Ok(rows)
}

/// The child kind of a side.
pub(super) fn kind(side: Side) -> Kind {
    match side {
        Side::Baseline => Kind::Baseline,
        _ => Kind::Switchboard,
    }
}

/// `1e6 / rate` to three decimals (0 when the side did not run).
fn micros_per_delivery(rate: f64) -> f64 {
    if rate > 0.0 {
        (1e6 / rate * 1000.0).round() / 1000.0
    } else {
        0.0
    }
}

/// One side at one size: a warm-up burst, then `bursts` timed ones;
/// deliveries/s of each.
async fn measure(kind: Kind, step: Step, bursts: usize, plan: &Plan) -> anyhow::Result<Vec<f64>> {
    let mut child = ChildProcess::spawn(&["__burst_server".to_owned(), kind.arg()])?;
    let listening: Listening = child.line(ANSWER_WITHIN).await?;
    let delivered = Counter::new();
    let url = kind.receiver_url(listening.addr);
    let receivers = Receivers::open(
        kind,
        &url,
        0..step.receivers,
        |_| TOPIC.to_owned(),
        plan,
        &delivered,
    )
    .await?;
    let outcome = async {
        await_members(&mut child, &[TOPIC.to_owned()], step.receivers).await?;
        burst(
            &mut child,
            &delivered,
            step.receivers,
            step.broadcasts.div_ceil(4),
        )
        .await?;
        let mut rates = Vec::with_capacity(bursts);
        for _ in 0..bursts {
            rates.push(burst(&mut child, &delivered, step.receivers, step.broadcasts).await?);
        }
        anyhow::Ok(rates)
    }
    .await;
    receivers.close().await;
    child.finish().await;
    outcome
}

/// One burst of `broadcasts`, timed from the command to the last of its
/// deliveries to `receivers`: deliveries/s.
async fn burst(
    child: &mut ChildProcess,
    delivered: &Counter,
    receivers: usize,
    broadcasts: usize,
) -> anyhow::Result<f64> {
    let expected = (receivers * broadcasts) as u64;
    let base = delivered.get();
    let started = Instant::now();
    let sent: Sent = child
        .ask(&format!("burst {TOPIC} {broadcasts}"), ANSWER_WITHIN)
        .await?;
    if sent.sent != broadcasts {
        bail!("the server sent {} of {broadcasts} broadcasts", sent.sent);
    }
    tokio::time::timeout(DELIVER_WITHIN, delivered.wait_for(base + expected))
        .await
        .map_err(|_| {
            anyhow!(
                "{} of {expected} deliveries within {DELIVER_WITHIN:?}",
                delivered.get() - base
            )
        })?;
    Ok(expected as f64 / started.elapsed().as_secs_f64())
}

/// Waits until the child's server counts `expected` members of `topics`.
pub(super) async fn await_members(
    child: &mut ChildProcess,
    topics: &[String],
    expected: usize,
) -> anyhow::Result<()> {
    let command = format!("members {}", topics.join(" "));
    let deadline = Instant::now() + ANSWER_WITHIN;
    loop {
        let members: Members = child.ask(&command, ANSWER_WITHIN).await?;
        if members.members >= expected {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{} of {expected} receivers registered", members.members);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Raw receivers of a child's server, each counting the text frames it
/// reads after its join.
pub(super) struct Receivers {
    tasks: Vec<JoinHandle<()>>,
}

impl Receivers {
    /// Connects one raw socket to `url` per index; on the hub socket `i`
    /// first joins `topic(i)` with Phoenix frames. Each then counts into
    /// `delivered`.
    pub(super) async fn open(
        kind: Kind,
        url: &str,
        indices: std::ops::Range<usize>,
        topic: fn(usize) -> String,
        plan: &Plan,
        delivered: &Arc<Counter>,
    ) -> anyhow::Result<Receivers> {
        let count = indices.len();
        let open = async {
            let sockets = client::connect_many(url, count, plan.connect_parallel).await?;
            let joined: Vec<anyhow::Result<Ws>> = futures_util::stream::iter(indices.zip(sockets))
                .map(|(index, ws)| join(kind, ws, topic(index)))
                .buffer_unordered(plan.connect_parallel.max(1))
                .collect()
                .await;
            joined.into_iter().collect::<anyhow::Result<Vec<Ws>>>()
        };
        let sockets = tokio::time::timeout(OPEN_WITHIN, open)
            .await
            .map_err(|_| anyhow!("{count} receivers not open within {OPEN_WITHIN:?}"))??;
        let tasks = sockets
            .into_iter()
            .map(|ws| actix_rt::spawn(count_texts(ws, delivered.clone())))
            .collect();
        Ok(Receivers { tasks })
    }

    /// Stops the readers and waits until their sockets are dropped.
    pub(super) async fn close(self) {
        for task in &self.tasks {
            task.abort();
        }
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Joins `topic` on the hub (the raw server has nothing to join).
async fn join(kind: Kind, mut ws: Ws, topic: String) -> anyhow::Result<Ws> {
    if kind == Kind::Switchboard {
        let frame = phoenix::encode_parts(
            Some("1"),
            Some("1"),
            &topic,
            "phx_join",
            &serde_json::json!({}),
        );
        let reply = client::round_trip(&mut ws, frame.into())
            .await
            .with_context(|| format!("joining {topic}"))?;
        if !reply.contains("\"ok\"") {
            bail!("join of {topic} refused: {reply}");
        }
    }
    Ok(ws)
}
