//! The memory scenario's child processes: this binary re-executed with a
//! hidden subcommand, so a server or a set of clients can be measured in a
//! process of its own (its RSS holds nothing else).
//!
//! A child prints one JSON line when ready, then runs until its stdin closes.

use std::io::Read;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use actix::Actor;
use anyhow::{anyhow, Context};
use clap::{Subcommand, ValueEnum};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchboard::client::{ConnectionConfig, Switchboard};
use switchboard::server::Broadcast;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::baseline::client;
use crate::baseline::server::{BaselineServer, Mode};
use crate::hub::{BenchHub, SinkChoice};
use crate::payload::{self, BROADCAST_EVENT};
use crate::rss::own_rss_kib;
use crate::scenarios::{loopback, FAST_DIALS_PER_SECOND};

/// Connections opened (and kept) before the "before" reading, so one-time
/// costs (first socket, thread caches) are not charged per connection.
pub const WARM_CONNECTIONS: usize = 10;

/// Time given to a process to settle before its RSS is read.
pub const SETTLE: Duration = Duration::from_millis(500);

/// Whose server or clients a child runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// switchboard's hub / supervised connections.
    Switchboard,
    /// The raw tokio-tungstenite server / clients.
    Baseline,
}

/// The subcommands: the soak, `plot`, and the hidden child processes.
#[derive(Debug, Subcommand)]
pub enum Role {
    /// SVG charts of a recorded run (its `--json` file), without running it.
    Plot(crate::plot::PlotArgs),
    /// A bounded soak: connections, restarts and cuts for `--minutes`
    /// (not part of the benchmark run); see docs/reliability.md (Soak).
    Soak(crate::soak::SoakArgs),
    /// The soak's hub process (internal).
    #[command(name = "__soak_hub", hide = true)]
    SoakHub(crate::soak::hub::HubArgs),
    /// The soak's client process (internal).
    #[command(name = "__soak_clients", hide = true)]
    SoakClients(crate::soak::clients::ClientArgs),
    /// Serves until stdin closes; prints `{"addr": ...}` when listening.
    #[command(name = "__serve", hide = true)]
    Serve {
        /// Which server.
        #[arg(value_enum)]
        kind: Kind,
    },
    /// Holds `count` idle connections to `url` until stdin closes; prints
    /// its RSS before and after opening them.
    #[command(name = "__clients", hide = true)]
    Clients {
        /// Which clients.
        #[arg(value_enum)]
        kind: Kind,
        /// Where to connect.
        url: String,
        /// How many connections.
        count: usize,
        /// Handshakes in flight at once.
        parallel: usize,
    },
    /// The scaling scenario's server: broadcasts a burst on each `burst N`
    /// line, counts its members on `members`; see `scenarios::scaling`.
    #[command(name = "__burst_server", hide = true)]
    BurstServer {
        /// Which server.
        #[arg(value_enum)]
        kind: Kind,
    },
    /// The active-memory scenario's server: broadcasts once per `period_ms`
    /// on each of `topics` topics until stdin closes; see `scenarios::active_memory`.
    #[command(name = "__active_server", hide = true)]
    ActiveServer {
        /// Which server.
        #[arg(value_enum)]
        kind: Kind,
        /// Topics broadcast to (the raw server has one: every socket).
        topics: usize,
        /// Pause between two rounds of broadcasts, ms.
        period_ms: u64,
    },
}

/// What `__serve` prints.
#[derive(Debug, Serialize, Deserialize)]
pub struct Listening {
    /// The bound address.
    pub addr: SocketAddr,
}

/// What `__clients` prints.
#[derive(Debug, Serialize, Deserialize)]
pub struct ClientsRss {
    /// RSS after the warm-up connections, KiB.
    pub before_kib: u64,
    /// RSS with every connection up, KiB.
    pub after_kib: u64,
}

/// Runs a child role (in the child process).
pub fn run(role: Role) -> anyhow::Result<()> {
    match role {
        Role::Plot(args) => crate::plot::run(args),
        Role::Soak(args) => crate::soak::run(args),
        Role::SoakHub(args) => crate::soak::hub::run(args),
        Role::SoakClients(args) => {
            actix_rt::System::new().block_on(crate::soak::clients::run(args))
        }
        Role::Serve { kind } => serve(kind),
        Role::Clients {
            kind,
            url,
            count,
            parallel,
        } => actix_rt::System::new().block_on(clients(kind, url, count, parallel)),
        Role::BurstServer { kind } => {
            let server = Broadcaster::start(kind)?;
            server.announce()?;
            server.answer_commands()?;
            // No orderly shutdown: the parent has what it needs.
            std::process::exit(0)
        }
        Role::ActiveServer {
            kind,
            topics,
            period_ms,
        } => crate::scenarios::active_memory::serve(kind, topics, Duration::from_millis(period_ms)),
    }
}

impl Kind {
    /// The command line argument naming it.
    pub fn arg(self) -> String {
        match self {
            Kind::Switchboard => "switchboard",
            Kind::Baseline => "baseline",
        }
        .to_owned()
    }

    /// Where a raw receiver connects to a server of this kind at `addr`.
    pub fn receiver_url(self, addr: SocketAddr) -> String {
        match self {
            Kind::Switchboard => format!("ws://{addr}/socket/websocket?vsn=2.0.0"),
            Kind::Baseline => format!("ws://{addr}/"),
        }
    }
}

/// A broadcasting server run by a child: the hub (on its own thread) or
/// the raw broadcast server, and the 100-byte payload it sends.
pub struct Broadcaster {
    server: Broadcasting,
    payload: Value,
    text: Utf8Bytes,
}

/// The server a [`Broadcaster`] runs.
enum Broadcasting {
    /// switchboard's hub; broadcasts are `Broadcast` messages to its `Hub` actor.
    Hub(BenchHub),
    /// The raw server in broadcast mode; every socket gets every broadcast.
    Raw(BaselineServer),
}

impl Broadcaster {
    /// Starts a server of `kind` on a free loopback port.
    pub fn start(kind: Kind) -> anyhow::Result<Broadcaster> {
        let server = match kind {
            Kind::Switchboard => {
                Broadcasting::Hub(BenchHub::start(loopback(), SinkChoice::InProcess)?)
            }
            Kind::Baseline => {
                Broadcasting::Raw(BaselineServer::start(loopback(), Mode::Broadcast)?)
            }
        };
        Ok(Broadcaster {
            server,
            payload: payload::json_payload(),
            text: Utf8Bytes::from(payload::raw_text()),
        })
    }

    /// Prints `{"addr": ...}`: the child is ready.
    pub fn announce(&self) -> anyhow::Result<()> {
        let addr = match &self.server {
            Broadcasting::Hub(hub) => hub.addr(),
            Broadcasting::Raw(server) => server.addr(),
        };
        println!("{}", serde_json::to_string(&Listening { addr })?);
        Ok(())
    }

    /// Whether every socket gets every broadcast (the raw server has no topics).
    pub fn is_raw(&self) -> bool {
        matches!(self.server, Broadcasting::Raw(_))
    }

    /// Members of `topic` on the hub.
    fn members(&self, topic: &str) -> usize {
        match &self.server {
            Broadcasting::Hub(hub) => hub.service().member_count(topic),
            Broadcasting::Raw(server) => server.connections(),
        }
    }

    /// One broadcast to `topic` (the raw server: to every socket).
    pub fn broadcast(&self, topic: &str) {
        match &self.server {
            Broadcasting::Hub(hub) => hub.service().hub().do_send(Broadcast {
                topic: topic.to_owned(),
                event: BROADCAST_EVENT.to_owned(),
                payload: self.payload.clone(),
            }),
            Broadcasting::Raw(server) => server.broadcast(Message::Text(self.text.clone())),
        }
    }

    /// Answers the parent's commands, one line each, until stdin closes.
    /// `members TOPIC...`: `{"members": n}`, the members of those
    /// topics (the raw server: its sockets); `burst TOPIC COUNT`: COUNT
    /// broadcasts, then `{"sent": COUNT}`.
    pub fn answer_commands(&self) -> anyhow::Result<()> {
        for line in std::io::stdin().lines() {
            let line = line?;
            let words: Vec<&str> = line.split_whitespace().collect();
            let reply = match words.as_slice() {
                ["members", topics @ ..] if self.is_raw() || !topics.is_empty() => {
                    let members = match &self.server {
                        Broadcasting::Raw(server) => server.connections(),
                        Broadcasting::Hub(_) => topics.iter().map(|t| self.members(t)).sum(),
                    };
                    serde_json::to_string(&Members { members })?
                }
                ["burst", topic, count] => {
                    let sent: usize = count.parse().with_context(|| format!("in {line:?}"))?;
                    for _ in 0..sent {
                        self.broadcast(topic);
                    }
                    serde_json::to_string(&Sent { sent })?
                }
                _ => anyhow::bail!("unknown command {line:?}"),
            };
            println!("{reply}");
        }
        Ok(())
    }
}

/// What `members` answers.
#[derive(Debug, Serialize, Deserialize)]
pub struct Members {
    /// Members of the topics asked about (the raw server: its sockets).
    pub members: usize,
}

/// What `burst` answers once its broadcasts are sent.
#[derive(Debug, Serialize, Deserialize)]
pub struct Sent {
    /// Broadcasts sent.
    pub sent: usize,
}

/// `__serve`: a server on its own thread; this thread waits for stdin to close.
fn serve(kind: Kind) -> anyhow::Result<()> {
    let (addr, keep): (SocketAddr, Box<dyn std::any::Any>) = match kind {
        Kind::Switchboard => {
            let hub = BenchHub::start(loopback(), SinkChoice::InProcess)?;
            (hub.addr(), Box::new(hub))
        }
        Kind::Baseline => {
            let server = BaselineServer::start(loopback(), Mode::Echo)?;
            (server.addr(), Box::new(server))
        }
    };
    println!("{}", serde_json::to_string(&Listening { addr })?);
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    // Exit without an orderly shutdown: the parent has what it needs.
    std::mem::forget(keep);
    std::process::exit(0)
}

/// `__clients`: opens the connections, reports, holds them.
async fn clients(kind: Kind, url: String, count: usize, parallel: usize) -> anyhow::Result<()> {
    let mut held = Held::new(kind);
    held.open(&url, WARM_CONNECTIONS, parallel).await?;
    tokio::time::sleep(SETTLE).await;
    let before_kib = own_rss_kib()?;
    held.open(&url, count, parallel).await?;
    tokio::time::sleep(SETTLE).await;
    let after_kib = own_rss_kib()?;
    println!(
        "{}",
        serde_json::to_string(&ClientsRss {
            before_kib,
            after_kib
        })?
    );
    tokio::task::spawn_blocking(|| std::io::stdin().read_to_end(&mut Vec::new())).await??;
    std::process::exit(0)
}

/// Connections a client child holds.
enum Held {
    /// Supervised connections (the switchboard and its handles).
    Switchboard(
        actix::Addr<Switchboard>,
        Vec<switchboard::client::PhoenixHandle>,
    ),
    /// Raw sockets, each read by a task of its own.
    Baseline(Vec<tokio::task::JoinHandle<()>>),
}

impl Held {
    /// Nothing held yet.
    fn new(kind: Kind) -> Held {
        match kind {
            Kind::Switchboard => {
                Held::Switchboard(Switchboard::new(FAST_DIALS_PER_SECOND).start(), Vec::new())
            }
            Kind::Baseline => Held::Baseline(Vec::new()),
        }
    }

    /// Opens `count` more connections to `url` and waits until all are up.
    async fn open(&mut self, url: &str, count: usize, parallel: usize) -> anyhow::Result<()> {
        match self {
            Held::Switchboard(board, handles) => {
                // An application's defaults: no bench-sized queues here.
                let opened: Vec<_> = futures_util::stream::iter(0..count)
                    .map(|_| crate::supervised::open(board, ConnectionConfig::new(url)))
                    .buffer_unordered(parallel.max(1))
                    .collect()
                    .await;
                for handle in opened {
                    handles.push(handle?);
                }
            }
            Held::Baseline(tasks) => {
                for mut ws in client::connect_many(url, count, parallel).await? {
                    tasks.push(tokio::spawn(async move {
                        while let Some(Ok(_)) = ws.next().await {}
                    }));
                }
            }
        }
        Ok(())
    }
}

/// A child process as the parent sees it.
pub struct ChildProcess {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl ChildProcess {
    /// Starts this binary with `args`; killed if dropped.
    pub fn spawn(args: &[String]) -> anyhow::Result<ChildProcess> {
        let exe = std::env::current_exe().context("locating the bench binary")?;
        let mut child = Command::new(exe)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting a child process")?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("the child has no stdout"))?;
        Ok(ChildProcess {
            child,
            lines: BufReader::new(stdout).lines(),
        })
    }

    /// The child's process id.
    pub fn pid(&self) -> anyhow::Result<u32> {
        self.child
            .id()
            .ok_or_else(|| anyhow!("the child already exited"))
    }

    /// The next line the child prints, parsed as JSON, within `within`.
    pub async fn line<T: DeserializeOwned>(&mut self, within: Duration) -> anyhow::Result<T> {
        let line = tokio::time::timeout(within, self.lines.next_line())
            .await
            .map_err(|_| anyhow!("the child printed nothing within {within:?}"))??
            .ok_or_else(|| anyhow!("the child exited before reporting"))?;
        serde_json::from_str(&line).with_context(|| format!("the child printed {line:?}"))
    }

    /// Writes `command` and a newline to the child's stdin, then reads its
    /// one-line JSON answer within `within`.
    pub async fn ask<T: DeserializeOwned>(
        &mut self,
        command: &str,
        within: Duration,
    ) -> anyhow::Result<T> {
        let stdin = self
            .child
            .stdin
            .as_mut()
            .ok_or_else(|| anyhow!("the child's stdin is closed"))?;
        stdin.write_all(format!("{command}\n").as_bytes()).await?;
        stdin.flush().await?;
        self.line(within).await
    }

    /// Sends SIGTERM (with `kill`, so no unsafe code is needed here).
    pub fn terminate(&self) -> anyhow::Result<()> {
        let pid = self.pid()?.to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .context("running kill -TERM")?;
        anyhow::ensure!(status.success(), "kill -TERM {pid} failed: {status}");
        Ok(())
    }

    /// Sends SIGKILL and reaps the child.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        Ok(self.child.kill().await?)
    }

    /// Waits up to `within` for the child to exit, its stdin kept open
    /// meanwhile (tokio's `wait` would close it first, which tells a child
    /// to quit at once).
    pub async fn exited(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let _stdin = self.child.stdin.take();
        tokio::time::timeout(within, self.child.wait())
            .await
            .ok()
            .and_then(Result::ok)
    }

    /// Closes the child's stdin and waits (bounded) for it to exit; kills it otherwise.
    pub async fn finish(mut self) {
        drop(self.child.stdin.take());
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}
