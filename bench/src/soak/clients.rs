//! The soak's client process: supervised connections through the proxy,
//! each joined to two topics, pushing and receiving broadcasts, and one
//! producer ingesting at a steady rate.
//!
//! It reads commands on stdin, one a line, and answers each with one JSON
//! line: `sample` (a [`ClientStatus`]), `finish` (stops the traffic, waits
//! for every connection to answer on both its topics, then a
//! [`ClientStatus`] with `final_check`); stdin closing ends the process.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use actix::{Actor, Addr, Context, Handler};
use anyhow::anyhow;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use switchboard::client::{
    ConnectionConfig, ConnectionStatus, Incoming, PhoenixHandle, ProducerHandle, ReconnectPolicy,
    Switchboard,
};
use switchboard::protocol::phoenix::ReplyStatus;

use crate::rss::own_rss_kib;
use crate::scenarios::Stop;

/// The topic every connection joins; the hub broadcasts `tick` on it.
pub const ALL_TOPIC: &str = "room:all";

/// Groups of connections sharing a topic (`room:g<n>`), where `say`
/// pushes are broadcast to the group.
pub const GROUPS: usize = 100;

/// Each connection pushes a `ping` (answered with its payload) about this often.
pub const PING_EVERY: Duration = Duration::from_secs(10);

/// Each connection pushes a `say` (broadcast to its group) about this often.
pub const SAY_EVERY: Duration = Duration::from_secs(20);

/// Heartbeat of the soak's connections (default 30 s: a shorter one so
/// heartbeat timers come and go many times in a run).
pub const HEARTBEAT: Duration = Duration::from_secs(10);

/// The redial policy: the default, with the ceiling lowered from 60 s to
/// 10 s so a run's end is not held up by one long backoff.
pub fn reconnect_policy() -> ReconnectPolicy {
    ReconnectPolicy {
        max_interval: Duration::from_secs(10),
        ..ReconnectPolicy::default()
    }
}

/// Ingest envelopes published but not yet acked, at most (the producer's
/// default buffer holds 1,024).
const MAX_OUTSTANDING: usize = 800;

/// Handshakes in flight while the connections first open.
const OPEN_PARALLEL: usize = 64;

/// How long `finish` waits for every connection to answer, and for the
/// producer's outstanding envelopes.
const SETTLE_WITHIN: Duration = Duration::from_secs(120);

/// What the client process was asked to run.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientArgs {
    /// The Phoenix endpoint (through the proxy).
    pub phoenix_url: String,
    /// The ingest endpoint (through the proxy).
    pub ingest_url: String,
    /// Supervised Phoenix connections.
    pub connections: usize,
    /// Ingest envelopes per second.
    pub ingest_rate: u32,
    /// Where the acked envelope ids are written as they are acked, one a line.
    pub acked_file: PathBuf,
    /// Also count every connection's connect events by kind (each
    /// subscription costs the connection its 256-event buffer, ~24 KiB).
    #[arg(long)]
    pub events: bool,
}

/// Counts of one kind of request.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Tally {
    /// Answered `ok`.
    pub ok: u64,
    /// Failed, refused or timed out.
    pub failed: u64,
    /// Failures by reason (the error's text).
    pub reasons: BTreeMap<String, u64>,
}

impl Tally {
    fn fail(&mut self, reason: String) {
        self.failed += 1;
        *self.reasons.entry(reason).or_default() += 1;
    }
}

/// The client process's state, as a `sample` or `finish` reports it.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct ClientStatus {
    /// VmRSS of the client process, KiB.
    pub rss_kib: u64,
    /// Supervised Phoenix connections (the producer not included).
    pub connections: usize,
    /// Of those, `Connected` now.
    pub connected: usize,
    /// Live heartbeat timers, summed over the connections.
    pub heartbeat_timers: i64,
    /// Live dial loops, summed over the connections.
    pub dial_loops: i64,
    /// Connections with neither a heartbeat timer nor a dial loop now.
    pub without_timer: usize,
    /// Connections with more than one (heartbeat timers + dial loops) now.
    pub with_extra_timers: usize,
    /// Transitions to `Connected` after the first, summed (a watch may
    /// merge quick changes, so at least this many).
    pub reconnects: u64,
    /// `ping` pushes and their replies.
    pub pings: Tally,
    /// `say` pushes (broadcast to the group) and their replies.
    pub says: Tally,
    /// `tick` broadcasts (from the hub, on `room:all`) received.
    pub ticks_received: u64,
    /// `say` broadcasts received.
    pub says_received: u64,
    /// Ingest envelopes published, acked, failed, and outstanding now.
    pub ingest: Tally,
    /// Ingest envelopes published so far.
    pub ingest_published: u64,
    /// Published, neither acked nor failed yet.
    pub ingest_outstanding: u64,
    /// The producer's heartbeat timers and dial loops now.
    pub producer_timers: (i64, i64),
    /// Connect events by kind, with `--events` (else empty).
    pub events: BTreeMap<String, u64>,
    /// Set by `finish` only.
    pub final_check: Option<FinalCheck>,
}

/// What `finish` found once the traffic stopped.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct FinalCheck {
    /// Seconds from `finish` until every connection answered.
    pub settle_s: f64,
    /// Connections that answered a `ping` on both their topics.
    pub answering: usize,
    /// Connections with exactly one heartbeat timer and no dial loop.
    pub one_heartbeat_no_dial: usize,
    /// Ingest envelopes acked, written to the acked file.
    pub acked_ids: u64,
}

/// Counters shared by the tasks of the (single-threaded) client system.
#[derive(Default)]
struct Counters {
    reconnects: Cell<u64>,
    pings: RefCell<Tally>,
    says: RefCell<Tally>,
    ticks: Cell<u64>,
    says_received: Cell<u64>,
    ingest: RefCell<Tally>,
    published: Cell<u64>,
    /// The acked ids go straight to the file (so the client's memory does
    /// not grow with them).
    acked: RefCell<Option<std::io::BufWriter<std::fs::File>>>,
    acked_count: Cell<u64>,
    acked_error: RefCell<Option<String>>,
    events: RefCell<BTreeMap<String, u64>>,
}

impl Counters {
    /// Writes an acked id to the acked file.
    fn record_acked(&self, id: &str) {
        self.acked_count.set(self.acked_count.get() + 1);
        if let Some(file) = self.acked.borrow_mut().as_mut() {
            if let Err(error) = writeln!(file, "{id}") {
                self.acked_error.replace(Some(error.to_string()));
            }
        }
    }
}

/// Counts the broadcasts every connection receives.
struct Received(Rc<Counters>);

impl Actor for Received {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(1 << 20);
    }
}

impl Handler<Incoming> for Received {
    type Result = ();

    fn handle(&mut self, incoming: Incoming, _: &mut Context<Self>) {
        let counter = match incoming.event.as_str() {
            "tick" => &self.0.ticks,
            "say" => &self.0.says_received,
            _ => return,
        };
        counter.set(counter.get() + 1);
    }
}

/// The group topic of connection `index`.
fn group_topic(index: usize) -> String {
    format!("room:g{}", index % GROUPS)
}

/// A connection config for the soak.
fn config(url: &str) -> ConnectionConfig {
    let mut config = ConnectionConfig::new(url);
    config.reconnect = reconnect_policy();
    config.heartbeat_interval = HEARTBEAT;
    config
}

/// Runs the client process.
pub async fn run(args: ClientArgs) -> anyhow::Result<()> {
    let counters = Rc::new(Counters::default());
    let file = std::fs::File::create(&args.acked_file)?;
    *counters.acked.borrow_mut() = Some(std::io::BufWriter::new(file));
    let board = Switchboard::default().start();
    let received = Received(counters.clone()).start();
    let opened = Instant::now();
    let handles = open_all(&board, &args, &received).await?;
    let producer = open_producer(&board, &args.ingest_url).await?;
    let stop = Stop::new();
    for (index, handle) in handles.iter().enumerate() {
        actix_rt::spawn(watch_reconnects(handle.clone(), counters.clone()));
        if args.events {
            actix_rt::spawn(count_events(handle.clone(), counters.clone()));
        }
        actix_rt::spawn(push_loop(
            index,
            handle.clone(),
            counters.clone(),
            stop.clone(),
        ));
    }
    let mut ingest = Some(actix_rt::spawn(ingest_loop(
        producer.clone(),
        args.ingest_rate,
        counters.clone(),
        stop.clone(),
    )));
    answer(&json!({
        "ready": true,
        "open_s": opened.elapsed().as_secs_f64(),
        "rss_kib": own_rss_kib()?,
    }))?;
    let mut commands = stdin_lines();
    while let Some(command) = commands.recv().await {
        match (command.trim(), ingest.take()) {
            ("sample", running) => {
                ingest = running;
                answer(&status(&handles, &producer, &counters)?)?;
            }
            ("finish", Some(running)) => {
                stop.set();
                let check = finish(&handles, &args, &counters, running).await?;
                let mut report = status(&handles, &producer, &counters)?;
                report.final_check = Some(check);
                answer(&report)?;
            }
            (other, _) => return Err(anyhow!("unexpected command {other:?}")),
        }
    }
    std::process::exit(0)
}

/// Prints one JSON line on stdout.
fn answer<T: Serialize>(value: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", serde_json::to_string(value)?)?;
    out.flush()?;
    Ok(())
}

/// Lines of stdin, read on a thread of their own; the channel closes at EOF.
fn stdin_lines() -> tokio::sync::mpsc::UnboundedReceiver<String> {
    let (lines, received) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    received
}

/// Opens every connection, joins its two topics and registers the counters.
async fn open_all(
    board: &Addr<Switchboard>,
    args: &ClientArgs,
    received: &Addr<Received>,
) -> anyhow::Result<Vec<PhoenixHandle>> {
    let opened: Vec<anyhow::Result<PhoenixHandle>> =
        futures_util::stream::iter(0..args.connections)
            .map(|index| {
                let (board, url, received) =
                    (board.clone(), args.phoenix_url.clone(), received.clone());
                async move {
                    let handle = crate::supervised::open(&board, config(&url)).await?;
                    handle.on(ALL_TOPIC, Some("tick"), received.clone().recipient());
                    let group = group_topic(index);
                    handle.on(&group, Some("say"), received.recipient());
                    for topic in [ALL_TOPIC, group.as_str()] {
                        let reply = handle.join(topic, json!({})).await?;
                        if reply.status != ReplyStatus::Ok {
                            return Err(anyhow!("join of {topic} refused: {:?}", reply.response));
                        }
                    }
                    Ok(handle)
                }
            })
            // In order: connection `index` is `handles[index]`, whose group its pushes use.
            .buffered(OPEN_PARALLEL)
            .collect()
            .await;
    opened.into_iter().collect()
}

/// Opens the producer.
async fn open_producer(board: &Addr<Switchboard>, url: &str) -> anyhow::Result<ProducerHandle> {
    let mut config = config(url);
    config.producer = "soak".to_owned();
    let producer = board
        .send(switchboard::client::OpenProducer(config))
        .await
        .map_err(|error| anyhow!("switchboard gone: {error}"))??;
    crate::supervised::wait_connected(&producer, crate::supervised::CONNECT_WITHIN).await?;
    Ok(producer)
}

/// Counts the connection's returns to `Connected` after the first.
async fn watch_reconnects(handle: PhoenixHandle, counters: Rc<Counters>) {
    let mut status = handle.watch_status();
    let mut was_connected = *status.borrow_and_update() == ConnectionStatus::Connected;
    while status.changed().await.is_ok() {
        let connected = *status.borrow_and_update() == ConnectionStatus::Connected;
        if connected && !was_connected {
            counters.reconnects.set(counters.reconnects.get() + 1);
        }
        was_connected = connected;
    }
}

/// Counts the connection's connect events by kind (`JoinRefused` and
/// `Closed` also by topic or reason).
async fn count_events(handle: PhoenixHandle, counters: Rc<Counters>) {
    use switchboard::client::ConnectEvent as E;
    let mut events = handle.events();
    loop {
        let kind = match events.recv().await {
            Ok(E::Connected) => "connected".to_owned(),
            Ok(E::Disconnected { .. }) => "disconnected".to_owned(),
            Ok(E::Reconnecting { .. }) => "reconnecting".to_owned(),
            Ok(E::Rejoined { topic, .. }) if topic == ALL_TOPIC => "rejoined all".to_owned(),
            Ok(E::Rejoined { .. }) => "rejoined group".to_owned(),
            Ok(E::JoinRefused { topic, reason, .. }) => {
                format!(
                    "join refused {}: {reason}",
                    if topic == ALL_TOPIC { "all" } else { "group" }
                )
            }
            Ok(E::Gap { .. }) => "gap".to_owned(),
            Ok(E::Unrecovered { .. }) => "unrecovered".to_owned(),
            Ok(E::InvalidPayload { .. }) => "invalid payload".to_owned(),
            Ok(E::Closed { reason }) => format!("closed: {reason}"),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                format!("lagged {n}")
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        };
        *counters.events.borrow_mut().entry(kind).or_default() += 1;
    }
}

/// A delay of about `period` (±50 %), so the connections do not push in step.
fn jittered(period: Duration) -> Duration {
    period.mul_f64(0.5 + fastrand::f64())
}

/// Connection `index`'s pushes until `stop`: a `ping` about every
/// [`PING_EVERY`] and a `say` about every [`SAY_EVERY`], on its group topic.
async fn push_loop(index: usize, handle: PhoenixHandle, counters: Rc<Counters>, stop: Stop) {
    let topic = group_topic(index);
    let mut next_say = Instant::now() + jittered(SAY_EVERY);
    let mut n = 0u64;
    loop {
        tokio::time::sleep(jittered(PING_EVERY)).await;
        if stop.is_set() {
            return;
        }
        n += 1;
        let ping = handle.push(&topic, "ping", json!({ "n": n })).await;
        record(&counters.pings, ping.map(|reply| reply.status));
        if Instant::now() >= next_say {
            next_say = Instant::now() + jittered(SAY_EVERY);
            let say = handle
                .push(&topic, "say", json!({ "from": index, "n": n }))
                .await;
            record(&counters.says, say.map(|reply| reply.status));
        }
    }
}

/// Counts one push's outcome.
fn record(tally: &RefCell<Tally>, outcome: Result<ReplyStatus, switchboard::client::PushError>) {
    let mut tally = tally.borrow_mut();
    match outcome {
        Ok(ReplyStatus::Ok) => tally.ok += 1,
        Ok(ReplyStatus::Error) => tally.fail("error reply".to_owned()),
        Err(error) => tally.fail(error.to_string()),
    }
}

/// Publishes content envelopes at `rate` per second until `stop`, with at
/// most [`MAX_OUTSTANDING`] waiting for their acks (a tick with no room is
/// skipped, so an outage lowers the rate instead of piling up); returns
/// once every published envelope is acked or failed.
async fn ingest_loop(producer: ProducerHandle, rate: u32, counters: Rc<Counters>, stop: Stop) {
    let room = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_OUTSTANDING));
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !stop.is_set() {
        ticks.tick().await;
        let Ok(permit) = room.clone().try_acquire_owned() else {
            continue;
        };
        let n = counters.published.get();
        counters.published.set(n + 1);
        let (producer, counters) = (producer.clone(), counters.clone());
        actix_rt::spawn(async move {
            let published = producer
                .publish("soak", "reading", json!({ "n": n }), true)
                .await;
            match published {
                Ok(envelope) => {
                    counters.ingest.borrow_mut().ok += 1;
                    counters.record_acked(&envelope.dedup_id());
                }
                Err(error) => counters.ingest.borrow_mut().fail(error.to_string()),
            }
            drop(permit);
        });
    }
    // Every permit back: nothing outstanding.
    let _ = room.acquire_many(MAX_OUTSTANDING as u32).await;
}

/// The state now.
fn status(
    handles: &[PhoenixHandle],
    producer: &ProducerHandle,
    counters: &Counters,
) -> anyhow::Result<ClientStatus> {
    let mut report = ClientStatus {
        rss_kib: own_rss_kib()?,
        connections: handles.len(),
        reconnects: counters.reconnects.get(),
        pings: counters.pings.borrow().clone(),
        says: counters.says.borrow().clone(),
        ticks_received: counters.ticks.get(),
        says_received: counters.says_received.get(),
        ingest: counters.ingest.borrow().clone(),
        ingest_published: counters.published.get(),
        producer_timers: (producer.heartbeat_timers(), producer.dial_loops()),
        events: counters.events.borrow().clone(),
        ..ClientStatus::default()
    };
    let ingest = &report.ingest;
    report.ingest_outstanding = report.ingest_published - ingest.ok - ingest.failed;
    for handle in handles {
        let (beats, dials) = (handle.heartbeat_timers(), handle.dial_loops());
        report.heartbeat_timers += beats;
        report.dial_loops += dials;
        match beats + dials {
            0 => report.without_timer += 1,
            1 => {}
            _ => report.with_extra_timers += 1,
        }
        if handle.status() == ConnectionStatus::Connected {
            report.connected += 1;
        }
    }
    Ok(report)
}

/// After the traffic stopped: waits until every connection answers a
/// `ping` on both its topics and every envelope is acked or failed, then
/// writes the acked ids and counts the timers.
async fn finish(
    handles: &[PhoenixHandle],
    args: &ClientArgs,
    counters: &Counters,
    ingest: actix_rt::task::JoinHandle<()>,
) -> anyhow::Result<FinalCheck> {
    let started = Instant::now();
    let deadline = started + SETTLE_WITHIN;
    let answered: Vec<bool> = futures_util::stream::iter(handles.iter().enumerate())
        .map(|(index, handle)| async move {
            let group = group_topic(index);
            for topic in [ALL_TOPIC, group.as_str()] {
                if !answers(handle, topic, deadline).await {
                    return false;
                }
            }
            true
        })
        .buffer_unordered(OPEN_PARALLEL)
        .collect()
        .await;
    let settle_s = started.elapsed().as_secs_f64();
    tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), ingest)
        .await
        .map_err(|_| anyhow!("ingest acks still outstanding after {SETTLE_WITHIN:?}"))?
        .map_err(|error| anyhow!("the ingest task failed: {error}"))?;
    if let Some(mut file) = counters.acked.borrow_mut().take() {
        file.flush()?;
    }
    if let Some(error) = counters.acked_error.borrow().as_ref() {
        return Err(anyhow!("writing {}: {error}", args.acked_file.display()));
    }
    let one_heartbeat_no_dial = handles
        .iter()
        .filter(|handle| handle.heartbeat_timers() == 1 && handle.dial_loops() == 0)
        .count();
    Ok(FinalCheck {
        settle_s,
        answering: answered.iter().filter(|answered| **answered).count(),
        one_heartbeat_no_dial,
        acked_ids: counters.acked_count.get(),
    })
}

/// Pushes `ping` on `topic` until it is answered `ok` or `deadline` passes.
async fn answers(handle: &PhoenixHandle, topic: &str, deadline: Instant) -> bool {
    while Instant::now() < deadline {
        if let Ok(reply) = handle.push(topic, "ping", json!({ "final": true })).await {
            if reply.status == ReplyStatus::Ok {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    false
}
