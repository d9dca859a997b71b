//! The results as SVG charts (`--svg DIR` after a run, or `plot` from a
//! run's JSON): `ratios.svg`, `fanout.svg`, `latency.svg`,
//! `idle_memory.svg` and `scaling.svg`, each written when the report has
//! rows for it.

mod chart;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use plotters::style::RGBColor;

use self::chart::{Bar, Frame, Group, Points, Scale, Series};
use crate::report::{Better, Report, Row, Target};

/// `plot`: the charts of a recorded run, without running anything.
#[derive(Debug, clap::Args)]
pub struct PlotArgs {
    /// The run's JSON: its `--json` file, or its captured output (last line).
    #[arg(long, value_name = "FILE")]
    pub json: PathBuf,
    /// Where to write the SVG files (created if missing).
    #[arg(long, value_name = "DIR")]
    pub svg: PathBuf,
    /// Prefix of the file names, e.g. `bench-` for `bench-ratios.svg`.
    #[arg(long, value_name = "PREFIX", default_value = "")]
    pub svg_prefix: String,
}

/// `plot`: reads the JSON, writes the charts, prints their paths.
pub fn run(args: PlotArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.json)
        .with_context(|| format!("reading {}", args.json.display()))?;
    let report = parse(&text).with_context(|| format!("parsing {}", args.json.display()))?;
    for path in write(&report, &args.svg, &args.svg_prefix)? {
        println!("{}", path.display());
    }
    Ok(())
}

/// A report from a `--json` file, or from a run's output (its last line).
pub fn parse(text: &str) -> Result<Report> {
    serde_json::from_str(text).or_else(|whole| {
        let last = text.lines().rev().find(|line| !line.trim().is_empty());
        last.and_then(|line| serde_json::from_str(line).ok())
            .ok_or(whole.into())
    })
}

/// Writes every chart `report` has rows for into `dir`; returns their paths.
pub fn write(report: &Report, dir: &Path, prefix: &str) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let charts = [
        ("ratios", ratios(report)?),
        (
            "fanout",
            per_side(report, "fan-out", |row| {
                row.metric == "deliveries/s" && !is_scaling(row)
            })?,
        ),
        ("latency", per_side(report, "latency", is_percentile)?),
        ("idle_memory", idle_memory(report)?),
        ("scaling", scaling(report)?),
    ];
    let mut written = Vec::new();
    for (name, svg) in charts {
        if let Some(svg) = svg {
            let path = dir.join(format!("{prefix}{name}.svg"));
            std::fs::write(&path, svg).with_context(|| format!("writing {}", path.display()))?;
            written.push(path);
        }
    }
    Ok(written)
}

/// Whether a row is a cluster row, whose sides are 2 nodes and 1 node.
fn is_cluster(row: &Row) -> bool {
    row.name.starts_with("cluster_")
}

/// A `scaling_N` row (charted over N, not per side).
fn is_scaling(row: &Row) -> bool {
    row.name.starts_with("scaling_")
}

/// A p50 or p99 latency row.
fn is_percentile(row: &Row) -> bool {
    row.name.ends_with("_p50") || row.name.ends_with("_p99")
}

/// A target as a ratio: a value bound divided by the baseline's figure.
fn target_ratio(row: &Row) -> Option<f64> {
    match row.target? {
        Target::RatioAtLeast { bound } | Target::RatioAtMost { bound } => Some(bound),
        Target::ValueAtMost { bound } if row.baseline > 0.0 => Some(bound / row.baseline),
        Target::ValueAtMost { .. } => None,
        // A bound on the floor ratio, drawn on the raw ratio's scale.
        Target::FloorRatioAtLeast { bound } => row
            .floor_ratio
            .filter(|floor| *floor > 0.0)
            .map(|floor| bound * row.ratio / floor),
    }
}

/// `ratios.svg`: each row's ratio, higher-is-better and lower-is-better
/// rows apart, coloured by whether the row met its target.
fn ratios(report: &Report) -> Result<Option<String>> {
    let mut higher = Vec::new();
    let mut lower = Vec::new();
    for row in &report.scenarios {
        if row.ratio <= 0.0 || !row.ratio.is_finite() {
            continue; // a side did not run (`--side`)
        }
        let bar = Bar {
            label: format!("{}{}", row.name, if is_cluster(row) { " *" } else { "" }),
            value: row.ratio,
            text: format!("{}", row.ratio),
            color: match row.met {
                Some(true) => chart::GREEN,
                Some(false) => chart::RED,
                None => chart::GREY,
            },
            mark: target_ratio(row),
        };
        match row.better {
            Better::Higher => higher.push(bar),
            Better::Lower => lower.push(bar),
        }
    }
    let mut groups = Vec::new();
    if !higher.is_empty() {
        groups.push(Group {
            title: "Higher is better (throughput): right of 1 = switchboard ahead".into(),
            bars: higher,
        });
    }
    if !lower.is_empty() {
        groups.push(Group {
            title: "Lower is better (latency, memory, time): left of 1 = switchboard ahead".into(),
            bars: lower,
        });
    }
    if groups.is_empty() {
        return Ok(None);
    }
    let frame = Frame {
        title: "switchboard ÷ raw tokio-tungstenite baseline, per row (the table's ratio)",
        caption: &[
            "Log scale; each bar runs from 1 (parity) to the ratio. * cluster rows: 2 nodes ÷ 1 node.",
            "Black mark: the row's target (a bound on the figure itself drawn as bound ÷ baseline).",
        ],
        x_desc: "switchboard ÷ baseline (log scale)",
        legend: &[
            ("met (target; ahead of ezsockets where measured)", chart::GREEN, false),
            ("missed", chart::RED, false),
            ("no target", chart::GREY, false),
            ("target", chart::INK, true),
        ],
    };
    chart::bars(&frame, Scale::Ratio, &groups).map(Some)
}

/// What the baseline is, under a per-side chart's title.
const BASELINE: &str =
    "baseline: a raw tokio-tungstenite server and client, same loopback, same run.";

/// What the protocol floor is, under a per-side chart's title.
const FLOOR: &str =
    "protocol floor: a minimal tokio-tungstenite server and client speaking the same protocol.";

/// What a row's sides are called and coloured.
fn sides(row: &Row) -> [(&'static str, RGBColor); 5] {
    if is_cluster(row) {
        [
            ("2 nodes", chart::BLUE),
            ("1 node", chart::GREY),
            ("", chart::TEAL),
            ("", chart::ORANGE),
            ("", chart::PINK),
        ]
    } else {
        [
            ("switchboard", chart::BLUE),
            ("baseline", chart::GREY),
            ("protocol floor", chart::TEAL),
            ("peer (ezsockets)", chart::ORANGE),
            ("peer2 (phoenix_channels_client)", chart::PINK),
        ]
    }
}

/// One line on what a row's figure is, for the chart's group title.
fn describe(row: &Row) -> &'static str {
    match row.name.as_str() {
        "fanout" => "hub → supervised switchboard connections",
        "fanout_hub" => "the same hub → raw sockets (the hub alone)",
        "cluster_fanout" => "receivers on 2 cluster nodes vs all on a 1-node cluster",
        name if name.starts_with("rtt_") => "sequential request/reply round trip",
        name if name.starts_with("cluster_fanout_") => {
            "node A → receiver on B (2 nodes) or on A (1 node)"
        }
        _ => "",
    }
}

/// `fanout.svg` / `latency.svg`: one group per row that `keep` selects,
/// a bar per side (switchboard, baseline, and the floor and peers where measured).
fn per_side(report: &Report, what: &str, keep: fn(&Row) -> bool) -> Result<Option<String>> {
    let rows: Vec<&Row> = report.scenarios.iter().filter(|row| keep(row)).collect();
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let unit = first.metric.clone();
    let mut groups = Vec::new();
    for row in &rows {
        let figures = [
            Some(row.switchboard),
            Some(row.baseline),
            row.floor,
            row.peer,
            row.peer2,
        ];
        let bars = sides(row)
            .into_iter()
            .zip(figures)
            .filter_map(|((side, color), figure)| {
                let value = figure.filter(|v| *v > 0.0)?;
                Some(Bar {
                    label: side.to_owned(),
                    value,
                    text: if unit.chars().count() <= 3 {
                        format!("{} {unit}", figure_text(value))
                    } else {
                        figure_text(value)
                    },
                    color,
                    mark: None,
                })
            })
            .collect();
        let about = describe(row);
        let title = if about.is_empty() {
            row.name.clone()
        } else {
            format!("{} — {about}", row.name)
        };
        groups.push(Group { title, bars });
    }
    let better = match first.better {
        Better::Higher => "higher is better",
        Better::Lower => "lower is better",
    };
    let title = format!("{}: {unit} per side", capitalised(what));
    let cluster = rows.iter().any(|row| is_cluster(row));
    let mut legend = vec![
        (
            if cluster {
                "switchboard (cluster: 2 nodes)"
            } else {
                "switchboard"
            },
            chart::BLUE,
            false,
        ),
        (
            if cluster {
                "baseline (cluster: 1 node)"
            } else {
                "baseline"
            },
            chart::GREY,
            false,
        ),
    ];
    if rows.iter().any(|row| row.floor.is_some()) {
        legend.push(("protocol floor", chart::TEAL, false));
    }
    if rows.iter().any(|row| row.peer.is_some()) {
        legend.push(("peer: ezsockets client on the hub", chart::ORANGE, false));
    }
    if rows.iter().any(|row| row.peer2.is_some()) {
        legend.push(("peer2: phoenix_channels_client", chart::PINK, false));
    }
    let mut caption = vec![BASELINE];
    if rows.iter().any(|row| row.floor.is_some()) {
        caption.push(FLOOR);
    }
    if cluster {
        caption.push("Cluster rows: switchboard = 2 nodes, baseline = a 1-node cluster.");
    }
    let x_desc = format!("{unit} ({better})");
    let frame = Frame {
        title: &title,
        caption: &caption,
        x_desc: &x_desc,
        legend: &legend,
    };
    chart::bars(&frame, Scale::Linear, &groups).map(Some)
}

/// `Fan-out` from `fan-out`.
fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}

/// A figure as the table prints it: integers with separators, else two decimals.
fn figure_text(value: f64) -> String {
    if value >= 100.0 {
        chart::thousands(value)
    } else {
        format!("{value:.2}")
    }
}

/// The rows named `{prefix}{N}`, as `(N, switchboard)` and `(N, baseline)`
/// points, N ascending: how a metric measured at several sizes becomes
/// the input of [`chart::lines`].
fn over_n(report: &Report, prefix: &str) -> (Points, Points) {
    let mut rows: Vec<(f64, &Row)> = report
        .scenarios
        .iter()
        .filter_map(|row| Some((row.name.strip_prefix(prefix)?.parse().ok()?, row)))
        .collect();
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    let pick = |side: fn(&Row) -> f64| rows.iter().map(|(n, row)| (*n, side(row))).collect();
    (pick(|row| row.switchboard), pick(|row| row.baseline))
}

/// `idle_memory.svg`: KiB per idle connection over the connection count.
fn idle_memory(report: &Report) -> Result<Option<String>> {
    let (server, raw_server) = over_n(report, "idle_memory_server_");
    let (client, raw_client) = over_n(report, "idle_memory_client_");
    let series: Vec<Series> = [
        ("server: switchboard hub", chart::BLUE, server),
        ("server: raw", chart::GREY, raw_server),
        ("client: switchboard connections", chart::PURPLE, client),
        ("client: raw", chart::BROWN, raw_client),
    ]
    .into_iter()
    .filter(|(_, _, points)| !points.is_empty())
    .map(|(name, color, points)| Series {
        name: name.to_owned(),
        color,
        points,
    })
    .collect();
    if series.is_empty() {
        return Ok(None);
    }
    let legend: Vec<(&str, RGBColor, bool)> = series
        .iter()
        .map(|s| (s.name.as_str(), s.color, false))
        .collect();
    let frame = Frame {
        title: "Idle memory: resident KiB per connection, by connection count",
        caption: &["(RSS after − before) ÷ connections, in a child process; lower is better."],
        x_desc: "idle connections (log scale)",
        legend: &legend,
    };
    chart::lines(&frame, "KiB per connection", &series).map(Some)
}

/// `scaling.svg`: deliveries/s of a broadcast burst over the receiver count.
fn scaling(report: &Report) -> Result<Option<String>> {
    let (hub, raw) = over_n(report, "scaling_");
    if hub.is_empty() {
        return Ok(None);
    }
    let series = [
        ("switchboard hub", chart::BLUE, hub),
        ("raw broadcast server", chart::GREY, raw),
    ]
    .map(|(name, color, points)| Series {
        name: name.to_owned(),
        color,
        points,
    });
    let legend: Vec<(&str, RGBColor, bool)> = series
        .iter()
        .map(|s| (s.name.as_str(), s.color, false))
        .collect();
    let frame = Frame {
        title: "Scaling: deliveries/s of a broadcast burst, by receiver count",
        caption: &["Raw receivers on one topic, server in a child process; higher is better."],
        x_desc: "receivers (log scale)",
        legend: &legend,
    };
    chart::lines(&frame, "deliveries/s", &series).map(Some)
}

#[cfg(test)]
mod tests;
