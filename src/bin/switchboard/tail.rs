//! `switchboard tail`: connect, join, print every push and connect event.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use actix::{Actor, Addr};
use indicatif::ProgressBar;
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc};

use crate::client_args::{bar_style, stderr_bar, terminal, ConnectArgs, JoinArgs};
use switchboard::client::{
    ConnectEvent, ConnectionConfig, ConnectionStatus, Incoming, Open, PhoenixHandle, Switchboard,
};

/// Bound of the queue between the subscription and the printer.
const PRINT_QUEUE: usize = 1024;

/// `--progress`: pushes received, their rate, and for how long.
const COUNTER: &str = "{spinner} {elapsed_precise} {pos} pushes received  {rate}/s";

/// How long a line may be held above the counter (see [`Output`]).
const HOLD: Duration = Duration::from_millis(100);

/// Most lines held above the counter; more are written at once.
const HOLD_LINES: usize = 4096;

/// What to tail (also the `tail` subcommand's arguments).
#[derive(Debug, Clone, clap::Args)]
pub struct TailOptions {
    /// Socket URL, e.g. ws://127.0.0.1:4000/socket/websocket.
    pub url: String,
    /// Topic to join (repeatable).
    #[arg(long = "topic", required = true)]
    pub topics: Vec<String>,
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(flatten)]
    pub join: JoinArgs,
    /// One JSON object per line (otherwise a readable line).
    #[arg(long)]
    pub json: bool,
    /// Exit (code 2) once no connection has been up for this long.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub give_up_after: Option<Duration>,
    /// Count the pushes received, live on stderr (only when stderr is a
    /// terminal; stdout is unchanged).
    #[arg(long)]
    pub progress: bool,
}

/// Why `tail` stopped.
#[derive(Debug, thiserror::Error)]
pub enum TailError {
    /// Writing to the output failed (exit 1).
    #[error("cannot write: {0}")]
    Output(#[from] std::io::Error),
    /// No connection can succeed as given (exit 2).
    #[error("{0}")]
    Terminal(String),
    /// `--give-up-after` passed without a connection (exit 2).
    #[error("no connection for {0:?} (--give-up-after)")]
    GaveUp(Duration),
}

impl TailError {
    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            TailError::Output(_) => 1,
            TailError::Terminal(_) | TailError::GaveUp(_) => 2,
        }
    }
}

fn line(json_lines: bool, value: Value) -> String {
    if json_lines {
        return value.to_string();
    }
    let event = value["event"].as_str().unwrap_or("?");
    let rest: Vec<String> = value
        .as_object()
        .map(|fields| {
            fields
                .iter()
                .filter(|(key, _)| *key != "event")
                .map(|(key, value)| format!("{key}={value}"))
                .collect()
        })
        .unwrap_or_default();
    format!("{event} {}", rest.join(" "))
}

/// Where `tail` writes its lines: straight to `out`, flushed line by line;
/// with `--progress` on a terminal, also a counter of pushes on stderr.
/// When stdout is a terminal too, lines are held for up to [`HOLD`] and
/// written together above the counter, so that it is redrawn at most 10
/// times a second however fast pushes come.
struct Output<W: Write> {
    out: W,
    counter: Option<ProgressBar>,
    /// Whether lines go through `held` (stdout is a terminal as well).
    hold: bool,
    held: Vec<String>,
    /// When the oldest held line came.
    held_since: Option<Instant>,
}

impl<W: Write> Output<W> {
    fn new(out: W, progress: bool) -> Output<W> {
        let counter = progress
            .then(|| stderr_bar(None, bar_style(COUNTER)))
            .flatten();
        let hold = counter.is_some() && std::io::stdout().is_terminal();
        Output {
            out,
            counter,
            hold,
            held: Vec::new(),
            held_since: None,
        }
    }

    /// Writes (or holds) one line; `push` counts it.
    fn line(&mut self, text: String, push: bool) -> std::io::Result<()> {
        if let (true, Some(counter)) = (push, &self.counter) {
            counter.inc(1);
        }
        if !self.hold {
            writeln!(self.out, "{text}")?;
            return self.out.flush();
        }
        self.held.push(text);
        self.held_since.get_or_insert_with(Instant::now);
        if self.held.len() >= HOLD_LINES {
            self.flush()?;
        }
        Ok(())
    }

    /// When the held lines are due.
    fn due(&self) -> Option<Instant> {
        self.held_since.map(|since| since + HOLD)
    }

    /// Writes the held lines above the counter.
    fn flush(&mut self) -> std::io::Result<()> {
        self.held_since = None;
        if self.held.is_empty() {
            return Ok(());
        }
        let (out, held) = (&mut self.out, std::mem::take(&mut self.held));
        let mut write = || {
            held.iter().try_for_each(|line| writeln!(out, "{line}"))?;
            out.flush()
        };
        match &self.counter {
            Some(counter) => counter.suspend(write),
            None => write(),
        }
    }
}

impl<W: Write> Drop for Output<W> {
    /// Held lines are written, and the counter left at its last count, also
    /// when `tail` is stopped by a signal.
    fn drop(&mut self) {
        let _ = self.flush();
        if let Some(counter) = &self.counter {
            counter.abandon();
            eprintln!();
        }
    }
}

/// Opens the connection: a first dial that no retry can fix ends `tail`
/// (exit 2); one that failed for the network is retried forever.
async fn open(
    board: &Addr<Switchboard>,
    config: ConnectionConfig,
) -> Result<PhoenixHandle, TailError> {
    let mut first = config.clone();
    first.fail_first_connect = true;
    let gone = |error: actix::MailboxError| TailError::Terminal(error.to_string());
    match board.send(Open(first)).await.map_err(gone)? {
        Ok(handle) => Ok(handle),
        Err(error) => match terminal(&error) {
            Some(reason) => Err(TailError::Terminal(reason)),
            None => board
                .send(Open(config))
                .await
                .map_err(gone)?
                .map_err(|error| TailError::Terminal(crate::with_sources(&error))),
        },
    }
}

/// Runs until the process is stopped (reconnecting forever), printing one
/// line per event to `out`; ends early on a terminal error, or after
/// `--give-up-after` without a connection.
pub async fn tail(options: TailOptions, out: impl Write) -> Result<(), TailError> {
    let mut output = Output::new(out, options.progress);
    let board = Switchboard::default().start();
    let give_up = options.give_up_after;
    let config = options.connect.config(&options.url);
    let opened = match give_up {
        Some(after) => tokio::time::timeout(after, open(&board, config))
            .await
            .map_err(|_| TailError::GaveUp(after))?,
        None => open(&board, config).await,
    };
    let handle = opened?;
    let mut events = handle.events();
    let connected = handle.status() == ConnectionStatus::Connected;
    let mut down_since = (!connected).then(Instant::now);
    if connected {
        // Up before the events were watched: say so, as a later connect would.
        let event = serde_json::to_value(ConnectEvent::Connected).unwrap_or(Value::Null);
        output.line(line(options.json, event), false)?;
    }
    let (pushes, mut printed) = mpsc::channel::<Value>(PRINT_QUEUE);
    let params = options.join.payload();
    for topic in &options.topics {
        let mut incoming = handle.incoming(topic, None, PRINT_QUEUE);
        let forward = pushes.clone();
        actix::spawn(async move {
            while let Some(Incoming {
                topic,
                event,
                payload,
            }) = incoming.recv().await
            {
                let line =
                    json!({"event": "push", "topic": topic, "name": event, "payload": payload});
                if forward.send(line).await.is_err() {
                    break;
                }
            }
        });
        let joining = handle.clone();
        let report = pushes.clone();
        let topic = topic.clone();
        let params = params.clone();
        actix::spawn(async move {
            let line = match joining.join(&topic, params).await {
                Ok(reply) => {
                    json!({"event": "joined", "topic": topic, "status": reply.status, "response": reply.response})
                }
                Err(error) => {
                    json!({"event": "join_failed", "topic": topic, "error": crate::with_sources(&error)})
                }
            };
            let _ = report.send(line).await;
        });
    }
    loop {
        let deadline = match (give_up, down_since) {
            (Some(after), Some(since)) => since + after,
            // Far enough never to fire.
            _ => Instant::now() + Duration::from_secs(86_400 * 365),
        };
        let due = output.due();
        let value = tokio::select! {
            event = events.recv() => match event {
                Ok(ConnectEvent::Closed { reason }) => return Err(TailError::Terminal(reason)),
                Ok(event) => {
                    match event {
                        ConnectEvent::Connected => down_since = None,
                        ConnectEvent::Disconnected { .. } => {
                            down_since.get_or_insert_with(Instant::now);
                        }
                        _ => {}
                    }
                    serde_json::to_value(&event).unwrap_or(Value::Null)
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => json!({"event": "lagged", "missed": missed}),
                Err(broadcast::error::RecvError::Closed) => {
                    return Err(TailError::Terminal("the connection is gone".to_owned()))
                }
            },
            Some(value) = printed.recv() => value,
            () = tokio::time::sleep_until(deadline.into()) => {
                return Err(TailError::GaveUp(give_up.unwrap_or_default()));
            }
            () = tokio::time::sleep_until(due.unwrap_or(deadline).into()), if due.is_some() => {
                output.flush()?;
                continue;
            }
        };
        let push = value["event"] == "push";
        output.line(line(options.json, value), push)?;
    }
}
