//! `switchboard-bench`: switchboard against a raw tokio-tungstenite baseline,
//! a protocol floor (a minimal server and client speaking the same protocol)
//! and the ezsockets and phoenix_channels_client clients where they do the
//! same job, over loopback, alternating the sides in one run. See
//! docs/performance.md.
//!
//! ```text
//! cargo run --release --bin switchboard-bench -- [--quick] [--json FILE] [--svg DIR] [--only NAME]
//! cargo run --release --bin switchboard-bench -- plot --json FILE --svg DIR [--svg-prefix bench-]
//! cargo run --release --bin switchboard-bench -- soak [--minutes 10] [--connections 1000] [--restarts 20]
//! ```
//!
//! The last line printed is one JSON object `{"scenarios": [...]}`.

mod baseline;
mod channel;
mod child;
mod counter;
mod floor;
mod http;
mod hub;
mod limits;
mod nats;
mod payload;
mod peer;
mod phoenix_peer;
mod plan;
mod plot;
mod proxy;
mod report;
mod rss;
mod scenarios;
mod sink;
mod soak;
mod stats;
mod supervised;

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;

use crate::plan::Plan;
use crate::report::{Report, Row};

/// Command line of the harness.
#[derive(Debug, Parser)]
#[command(
    name = "switchboard-bench",
    about = "switchboard against a raw tokio-tungstenite baseline"
)]
struct Cli {
    /// Small sizes: every scenario, within a minute on 2 cores.
    #[arg(long)]
    quick: bool,
    /// Also write the JSON object to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Also write SVG charts of the results into DIR (see `plot`).
    #[arg(long, value_name = "DIR")]
    svg: Option<PathBuf>,
    /// Prefix of the SVG file names, e.g. `bench-`.
    #[arg(long, value_name = "PREFIX", default_value = "", requires = "svg")]
    svg_prefix: String,
    /// Run only the scenarios whose name starts with NAME (repeatable).
    #[arg(long, value_name = "NAME")]
    only: Vec<String>,
    /// Run one side only, for profiling it (the other columns read 0).
    #[arg(long, value_enum)]
    side: Option<scenarios::Side>,
    /// `soak`, `plot`, or a child process of the memory scenario or of the soak (internal).
    #[command(subcommand)]
    role: Option<child::Role>,
}

/// One scenario: its name and how to run it.
type Scenario = (
    &'static str,
    fn(
        &Plan,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<Vec<Row>>> + '_>>,
);

/// Every scenario, in the order they run.
fn scenarios() -> Vec<Scenario> {
    vec![
        ("one_way_phoenix", |plan| {
            Box::pin(scenarios::one_way::run_phoenix(plan))
        }),
        ("one_way_ingest", |plan| {
            Box::pin(scenarios::one_way::run_ingest(plan))
        }),
        ("rtt", |plan| Box::pin(scenarios::rtt::run(plan))),
        ("pipelined", |plan| {
            Box::pin(scenarios::pipelined::run(plan))
        }),
        ("fanout", |plan| Box::pin(scenarios::fanout::run(plan))),
        ("idle_memory", |plan| {
            Box::pin(scenarios::idle_memory::run(plan))
        }),
        ("rejoin", |plan| Box::pin(scenarios::rejoin::run(plan))),
        ("jetstream_sink", |plan| {
            Box::pin(scenarios::jetstream::run(plan))
        }),
        ("cluster_fanout", |plan| {
            Box::pin(scenarios::cluster_fanout::run(plan))
        }),
        ("scaling", |plan| Box::pin(scenarios::scaling::run(plan))),
        ("active_memory", |plan| {
            Box::pin(scenarios::active_memory::run(plan))
        }),
    ]
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(role) = cli.role {
        return child::run(role);
    }
    if let Some(side) = cli.side {
        scenarios::run_only(side);
    }
    let open_files = limits::raise_open_files();
    let plan = Plan::new(cli.quick, open_files);
    let started = Instant::now();
    let mut failed = Vec::new();
    let report = actix_rt::System::new().block_on(async {
        let mut report = Report::default();
        for (name, run) in scenarios() {
            if !cli.only.is_empty() && !cli.only.iter().any(|only| name.starts_with(only.as_str()))
            {
                continue;
            }
            eprintln!("[{:>6.1}s] {name} ...", started.elapsed().as_secs_f64());
            match run(&plan).await {
                Ok(rows) => report.scenarios.extend(rows),
                Err(error) => {
                    eprintln!("*** {name} FAILED: {error:#} ***");
                    failed.push(name);
                }
            }
        }
        report
    });
    let wall = started.elapsed();
    println!("{}", report.table());
    print!("{}", report.notes());
    println!(
        "\n{} run on {} cores in {:.1} s{}",
        if plan.quick { "quick" } else { "full" },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        wall.as_secs_f64(),
        if failed.is_empty() {
            String::new()
        } else {
            format!("; FAILED: {}", failed.join(", "))
        }
    );
    let json = report.json()?;
    if let Some(path) = &cli.json {
        std::fs::write(path, format!("{json}\n"))?;
    }
    if let Some(dir) = &cli.svg {
        for path in plot::write(&report, dir, &cli.svg_prefix)? {
            eprintln!("wrote {}", path.display());
        }
    }
    println!("{json}");
    if failed.is_empty() {
        Ok(())
    } else {
        std::process::exit(1)
    }
}
