//! `switchboard-bench soak`: a bounded soak of the hub and the supervised
//! client under restarts and cut connections. Not part of the benchmark
//! run (nor of `cargo test`); see docs/reliability.md (Soak).
//!
//! Three processes besides this one (the harness): a `nats-server -js`, the
//! hub (this binary as `__soak_hub`, restarted `--restarts` times on one
//! port, alternately with SIGTERM and SIGKILL) and the clients (this binary
//! as `__soak_clients`: `--connections` supervised Phoenix connections and
//! one ingest producer). The clients reach the hub through a TCP proxy in
//! this process that cuts a share of the connections every `--cut-every`.
//! Every `--sample-every` the resident memory of the hub and the clients
//! is read, with the clients' timer gauges. At the end the clients settle,
//! every connection must answer on both its topics with one heartbeat timer
//! and no dial loop, and every envelope the hub acked must be in the
//! stream.

pub mod clients;
pub mod hub;
mod report;
mod stream;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde::Serialize;

use self::clients::ClientStatus;
use crate::child::{ChildProcess, Listening};
use crate::nats::{find_binary, NatsServer};
use crate::proxy::{free_port, ws_url, Cut, CutProxy};
use crate::rss::rss_kib;

/// The soak's command line.
#[derive(Debug, Clone, clap::Args)]
pub struct SoakArgs {
    /// How long the traffic runs, in minutes (the settle and checks come after).
    #[arg(long, default_value_t = 10.0)]
    pub minutes: f64,
    /// Supervised Phoenix connections.
    #[arg(long, default_value_t = 1000)]
    pub connections: usize,
    /// Hub restarts, evenly spread over the run (SIGTERM and SIGKILL in turn).
    #[arg(long, default_value_t = 20)]
    pub restarts: usize,
    /// Ingest envelopes per second.
    #[arg(long, default_value_t = 200)]
    pub ingest_rate: u32,
    /// Seconds between two memory samples.
    #[arg(long, default_value_t = 10.0)]
    pub sample_every: f64,
    /// Seconds between two proxy cuts.
    #[arg(long, default_value_t = 15.0)]
    pub cut_every: f64,
    /// Share of the live connections each cut drops (resets and FINs in turn).
    #[arg(long, default_value_t = 0.1)]
    pub cut_share: f64,
    /// Share of the run counted as warm-up for the flatness figures.
    #[arg(long, default_value_t = 0.2)]
    pub warmup_share: f64,
    /// RSS spread (%) after warm-up above which the run fails.
    #[arg(long, default_value_t = 5.0)]
    pub flat_within: f64,
    /// Also count the clients' connect events by kind (costs each
    /// connection its event buffer, ~24 KiB, so the memory curve is higher).
    #[arg(long)]
    pub events: bool,
    /// Also write the JSON report to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<std::path::PathBuf>,
}

/// How long a hub may take to listen, and a graceful one to exit.
const HUB_WITHIN: Duration = Duration::from_secs(30);

/// How long the clients may take to open every connection.
const CLIENTS_READY_WITHIN: Duration = Duration::from_secs(300);

/// How long a `sample` may take to answer.
const SAMPLE_WITHIN: Duration = Duration::from_secs(30);

/// How long `finish` may take to answer (the clients bound it at 120 s).
const FINISH_WITHIN: Duration = Duration::from_secs(200);

/// Time given beyond the run for start-up, settling and checks before the
/// whole soak is abandoned.
const OVERRUN: Duration = Duration::from_secs(15 * 60);

/// One sample.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Seconds since the traffic started.
    pub t_s: f64,
    /// Which hub process (0 = the first, n = after the nth restart).
    pub hub_incarnation: usize,
    /// VmRSS of the hub process, KiB (none while it restarts).
    pub hub_rss_kib: Option<u64>,
    /// What the clients reported (their VmRSS among it).
    pub clients: ClientStatus,
    /// Connections the proxy forwards now.
    pub proxied: usize,
}

/// One hub restart.
#[derive(Debug, Clone, Serialize)]
pub struct Restart {
    /// Seconds since the traffic started.
    pub t_s: f64,
    /// `sigterm` or `sigkill`.
    pub how: &'static str,
    /// The old hub's exit, as the OS reported it.
    pub exit: String,
    /// From the signal until the new hub listened, ms.
    pub down_ms: f64,
}

/// One proxy cut.
#[derive(Debug, Clone, Serialize)]
pub struct CutRecord {
    /// Seconds since the traffic started.
    pub t_s: f64,
    /// `reset` or `fin`.
    pub how: &'static str,
    /// Connections cut.
    pub cut: usize,
}

/// What the stream held at the end, against what was acked.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SinkCheck {
    /// Messages in the stream.
    pub stored: u64,
    /// Distinct envelope ids (`Nats-Msg-Id`) among them.
    pub distinct_ids: usize,
    /// Ids stored more than once.
    pub duplicates: usize,
    /// Envelopes the producer saw acked.
    pub acked: usize,
    /// Acked but not in the stream: must be 0.
    pub acked_missing: usize,
    /// In the stream but never acked to the producer (an ack lost with a
    /// hub, its resend then deduplicated; or a failed publish).
    pub stored_not_acked: usize,
}

/// Everything the soak measured.
#[derive(Debug, Clone, Serialize)]
pub struct SoakReport {
    /// The settings.
    pub minutes: f64,
    /// Supervised Phoenix connections.
    pub connections: usize,
    /// Ingest envelopes per second asked for.
    pub ingest_rate: u32,
    /// Seconds the clients took to open and join everything.
    pub open_s: f64,
    /// The samples, every `sample_every` seconds.
    pub samples: Vec<Sample>,
    /// The hub restarts.
    pub restarts: Vec<Restart>,
    /// The proxy cuts.
    pub cuts: Vec<CutRecord>,
    /// Connections the proxy accepted over the run.
    pub proxy_accepted: u64,
    /// The clients after `finish`.
    pub finale: ClientStatus,
    /// The sink check.
    pub sink: SinkCheck,
    /// The flatness figures and the verdict.
    pub verdict: report::Verdict,
}

/// Runs the soak; exits 1 when a check fails.
pub fn run(args: SoakArgs) -> anyhow::Result<()> {
    let open_files = crate::limits::raise_open_files();
    if (open_files as usize) < args.connections + 200 {
        bail!(
            "open-file limit {open_files} is too low for {} connections",
            args.connections
        );
    }
    let run_for = Duration::from_secs_f64(args.minutes * 60.0);
    let report = actix_rt::System::new().block_on(async {
        tokio::time::timeout(run_for + OVERRUN, soak(&args, run_for))
            .await
            .map_err(|_| anyhow!("the soak overran its bound of {:?}", run_for + OVERRUN))?
    })?;
    println!("{}", report::text(&report, &args));
    let json = serde_json::to_string(&report)?;
    if let Some(path) = &args.json {
        std::fs::write(path, format!("{json}\n"))?;
    }
    println!("{json}");
    if report.verdict.passed {
        Ok(())
    } else {
        eprintln!(
            "*** soak FAILED: {} ***",
            report.verdict.failures.join("; ")
        );
        std::process::exit(1)
    }
}

/// The hub process and what is known about it.
struct Hub {
    process: ChildProcess,
    incarnation: usize,
}

/// Starts a hub process listening on `listen`.
async fn start_hub(
    listen: SocketAddr,
    nats_url: &str,
    snapshot: &Path,
    incarnation: usize,
) -> anyhow::Result<Hub> {
    let mut process = ChildProcess::spawn(&[
        "__soak_hub".to_owned(),
        listen.to_string(),
        nats_url.to_owned(),
        snapshot.display().to_string(),
    ])?;
    let listening: Listening = process
        .line(HUB_WITHIN)
        .await
        .with_context(|| format!("hub {incarnation} did not start"))?;
    anyhow::ensure!(
        listening.addr == listen,
        "hub listened on {}",
        listening.addr
    );
    Ok(Hub {
        process,
        incarnation,
    })
}

/// Stops the hub (gracefully when `graceful`), starts the next one.
async fn restart_hub(
    hub: Hub,
    graceful: bool,
    listen: SocketAddr,
    nats_url: &str,
    snapshot: &Path,
) -> anyhow::Result<(Hub, String, Duration)> {
    let Hub {
        mut process,
        incarnation,
    } = hub;
    let signalled = Instant::now();
    let exit = if graceful {
        process.terminate()?;
        match process.exited(HUB_WITHIN).await {
            Some(status) => status.to_string(),
            None => {
                process.kill().await?;
                format!("no exit within {HUB_WITHIN:?} of SIGTERM; killed")
            }
        }
    } else {
        process.kill().await?;
        process
            .exited(HUB_WITHIN)
            .await
            .map_or_else(|| "not reaped".to_owned(), |status| status.to_string())
    };
    let next = start_hub(listen, nats_url, snapshot, incarnation + 1).await?;
    Ok((next, exit, signalled.elapsed()))
}

/// The soak itself.
async fn soak(args: &SoakArgs, run_for: Duration) -> anyhow::Result<SoakReport> {
    let binary = find_binary().ok_or_else(|| {
        anyhow!("nats-server not found on PATH, in /usr/sbin or /usr/local/bin (apt-get install nats-server)")
    })?;
    let nats = NatsServer::start(&binary).await?;
    let dir = tempfile::tempdir().context("a temporary directory")?;
    let snapshot = dir.path().join("hub-snapshot.json");
    let acked_file = dir.path().join("acked.txt");
    let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
    let mut hub = start_hub(listen, &nats.url(), &snapshot, 0).await?;
    let proxy = CutProxy::start(listen)?;
    let mut client_args = vec![
        "__soak_clients".to_owned(),
        ws_url(&proxy, "/socket/websocket"),
        ws_url(&proxy, "/ingest"),
        args.connections.to_string(),
        args.ingest_rate.to_string(),
        acked_file.display().to_string(),
    ];
    if args.events {
        client_args.push("--events".to_owned());
    }
    let mut clients = ChildProcess::spawn(&client_args)?;
    let ready: serde_json::Value = clients.line(CLIENTS_READY_WITHIN).await?;
    let open_s = ready["open_s"].as_f64().unwrap_or(0.0);
    eprintln!(
        "soak: {} connections open and joined in {open_s:.1} s; running {:.1} min",
        args.connections, args.minutes
    );

    let started = Instant::now();
    let every = |seconds: f64| Duration::from_secs_f64(seconds.max(0.1));
    let restart_at: Vec<Duration> = (1..=args.restarts)
        .map(|i| run_for.mul_f64(i as f64 / (args.restarts + 1) as f64))
        .collect();
    let (sample_every, cut_every) = (every(args.sample_every), every(args.cut_every));
    let (mut next_sample, mut next_cut) = (Duration::ZERO, cut_every / 2);
    let (mut samples, mut restarts, mut cuts) = (Vec::new(), Vec::new(), Vec::new());
    loop {
        let next_restart = restart_at.get(restarts.len()).copied();
        let due = [
            Some(next_sample),
            Some(next_cut),
            next_restart,
            Some(run_for),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(run_for);
        tokio::time::sleep_until((started + due).into()).await;
        let t_s = started.elapsed().as_secs_f64();
        if next_restart == Some(due) {
            let graceful = restarts.len() % 2 == 0;
            let (next, exit, down) =
                restart_hub(hub, graceful, listen, &nats.url(), &snapshot).await?;
            hub = next;
            let how = if graceful { "sigterm" } else { "sigkill" };
            eprintln!(
                "soak: [{t_s:>6.1} s] hub restart {} ({how}): down {:.0} ms",
                hub.incarnation,
                down.as_secs_f64() * 1000.0
            );
            restarts.push(Restart {
                t_s,
                how,
                exit,
                down_ms: down.as_secs_f64() * 1000.0,
            });
        } else if due == next_sample {
            let sample = take_sample(t_s, &hub, &mut clients, &proxy).await?;
            eprintln!("soak: {}", report::progress(&sample));
            samples.push(sample);
            next_sample += sample_every;
        } else if due == next_cut {
            let how = if cuts.len() % 2 == 0 {
                Cut::Reset
            } else {
                Cut::Fin
            };
            let cut = proxy.cut_share(args.cut_share, how);
            cuts.push(CutRecord {
                t_s,
                how: if how == Cut::Reset { "reset" } else { "fin" },
                cut,
            });
            next_cut += cut_every;
        } else {
            break;
        }
    }
    eprintln!("soak: traffic stopped; settling");
    let finale: ClientStatus = clients.ask("finish", FINISH_WITHIN).await?;
    let t_s = started.elapsed().as_secs_f64();
    let mut last = take_sample(t_s, &hub, &mut clients, &proxy).await?;
    last.clients.final_check = finale.final_check.clone();
    eprintln!("soak: {}", report::progress(&last));
    samples.push(last);
    let sink = stream::check(&nats.url(), &acked_file).await?;
    hub.process.terminate()?;
    let _ = hub.process.exited(HUB_WITHIN).await;
    clients.finish().await;
    nats.stop()?;
    let verdict = report::verdict(args, run_for, &samples, &finale, &sink);
    Ok(SoakReport {
        minutes: args.minutes,
        connections: args.connections,
        ingest_rate: args.ingest_rate,
        open_s,
        samples,
        restarts,
        cuts,
        proxy_accepted: proxy.accepted(),
        finale,
        sink,
        verdict,
    })
}

/// Reads both processes' memory and the clients' state.
async fn take_sample(
    t_s: f64,
    hub: &Hub,
    clients: &mut ChildProcess,
    proxy: &CutProxy,
) -> anyhow::Result<Sample> {
    let hub_rss_kib = hub.process.pid().ok().and_then(|pid| rss_kib(pid).ok());
    let status: ClientStatus = clients.ask("sample", SAMPLE_WITHIN).await?;
    Ok(Sample {
        t_s,
        hub_incarnation: hub.incarnation,
        hub_rss_kib,
        clients: status,
        proxied: proxy.live(),
    })
}
