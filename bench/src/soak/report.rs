//! The soak's figures: the flatness of the memory curves, the checks, and
//! the report as Markdown.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use super::clients::ClientStatus;
use super::{Sample, SinkCheck, SoakArgs, SoakReport};

/// How flat a memory curve is after warm-up.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Flatness {
    /// Samples counted.
    pub samples: usize,
    /// Smallest and largest VmRSS among them, KiB.
    pub min_kib: u64,
    /// Largest.
    pub max_kib: u64,
    /// `(max − min) / min`, %.
    pub spread_pct: f64,
    /// Mean of the last third against the mean of the first third, %.
    pub drift_pct: f64,
    /// Least-squares slope over the samples, KiB per minute.
    pub slope_kib_per_min: f64,
}

/// The figures and whether every check passed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Verdict {
    /// Samples before this many seconds are warm-up.
    pub warmup_s: f64,
    /// The clients' memory after warm-up.
    pub clients_rss: Flatness,
    /// The hub's memory after warm-up, in samples where every connection
    /// was up (each hub process starts afresh, so this compares processes).
    pub hub_rss: Flatness,
    /// Every check passed.
    pub passed: bool,
    /// The checks that failed, in words.
    pub failures: Vec<String>,
}

/// Least-squares slope of `points` (minutes, KiB), KiB per minute.
fn slope(points: &[(f64, u64)]) -> f64 {
    let n = points.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let mean_t = points.iter().map(|(t, _)| t).sum::<f64>() / n;
    let mean_v = points.iter().map(|(_, v)| *v as f64).sum::<f64>() / n;
    let (mut covariance, mut variance) = (0.0, 0.0);
    for (t, v) in points {
        covariance += (t - mean_t) * (*v as f64 - mean_v);
        variance += (t - mean_t) * (t - mean_t);
    }
    if variance == 0.0 {
        0.0
    } else {
        covariance / variance
    }
}

/// The flatness of `points` (minutes, KiB).
fn flatness(points: &[(f64, u64)]) -> Flatness {
    let values: Vec<u64> = points.iter().map(|(_, kib)| *kib).collect();
    let (Some(&min_kib), Some(&max_kib)) = (values.iter().min(), values.iter().max()) else {
        return Flatness::default();
    };
    let third = (values.len() / 3).max(1);
    let mean = |part: &[u64]| part.iter().sum::<u64>() as f64 / part.len().max(1) as f64;
    let (first, last) = (
        mean(&values[..third]),
        mean(&values[values.len() - third..]),
    );
    Flatness {
        samples: values.len(),
        min_kib,
        max_kib,
        spread_pct: (max_kib - min_kib) as f64 * 100.0 / min_kib.max(1) as f64,
        drift_pct: (last - first) * 100.0 / first.max(1.0),
        slope_kib_per_min: slope(points),
    }
}

/// Works out the figures and checks the run.
pub fn verdict(
    args: &SoakArgs,
    run_for: Duration,
    samples: &[Sample],
    finale: &ClientStatus,
    sink: &SinkCheck,
) -> Verdict {
    let warmup_s = run_for.as_secs_f64() * args.warmup_share;
    let settled: Vec<&Sample> = samples.iter().filter(|s| s.t_s >= warmup_s).collect();
    let minutes = |s: &Sample| s.t_s / 60.0;
    let clients: Vec<(f64, u64)> = settled
        .iter()
        .map(|s| (minutes(s), s.clients.rss_kib))
        .collect();
    let hub: Vec<(f64, u64)> = settled
        .iter()
        .filter(|s| s.clients.connected == s.clients.connections)
        .filter_map(|s| Some((minutes(s), s.hub_rss_kib?)))
        .collect();
    let mut verdict = Verdict {
        warmup_s,
        clients_rss: flatness(&clients),
        hub_rss: flatness(&hub),
        ..Verdict::default()
    };
    let mut fail = |failed: bool, what: String| {
        if failed {
            verdict.failures.push(what);
        }
    };
    let n = args.connections;
    for (name, figure) in [
        ("clients", &verdict.clients_rss.clone()),
        ("hub", &verdict.hub_rss.clone()),
    ] {
        fail(
            figure.samples < 2,
            format!("{name} RSS: fewer than 2 samples after warm-up"),
        );
        fail(
            figure.spread_pct > args.flat_within,
            format!(
                "{name} RSS spread {:.1} % > {} %",
                figure.spread_pct, args.flat_within
            ),
        );
    }
    match &finale.final_check {
        Some(check) => {
            fail(
                check.answering != n,
                format!("{} of {n} connections answered at the end", check.answering),
            );
            fail(
                check.one_heartbeat_no_dial != n,
                format!(
                    "{} of {n} connections had one heartbeat timer and no dial loop",
                    check.one_heartbeat_no_dial
                ),
            );
        }
        None => fail(true, "no final check".to_owned()),
    }
    fail(
        finale.heartbeat_timers != n as i64 || finale.dial_loops != 0,
        format!(
            "{} heartbeat timers and {} dial loops for {n} connections",
            finale.heartbeat_timers, finale.dial_loops
        ),
    );
    fail(
        finale.producer_timers != (1, 0),
        format!(
            "the producer had {} heartbeat timers and {} dial loops",
            finale.producer_timers.0, finale.producer_timers.1
        ),
    );
    fail(
        sink.acked_missing > 0,
        format!(
            "{} acked envelopes are not in the stream",
            sink.acked_missing
        ),
    );
    fail(sink.acked == 0, "no envelope was acked".to_owned());
    verdict.passed = verdict.failures.is_empty();
    verdict
}

/// KiB as MiB with one decimal.
fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

/// One line per sample, for the log while the soak runs.
pub fn progress(sample: &Sample) -> String {
    let c = &sample.clients;
    format!(
        "[{:>6.1} s] hub#{} {} MiB, clients {} MiB; connected {}/{}, heartbeat timers {}, dial loops {}, \
         without/extra timers {}/{}; reconnects {}; pings {} ok / {} failed; ticks {}; ingest {} acked / {} failed / {} outstanding",
        sample.t_s,
        sample.hub_incarnation,
        sample.hub_rss_kib.map_or("-".to_owned(), mib),
        mib(c.rss_kib),
        c.connected,
        c.connections,
        c.heartbeat_timers,
        c.dial_loops,
        c.without_timer,
        c.with_extra_timers,
        c.reconnects,
        c.pings.ok,
        c.pings.failed,
        c.ticks_received,
        c.ingest.ok,
        c.ingest.failed,
        c.ingest_outstanding,
    )
}

/// The whole report as Markdown: the samples, the counts, the verdict.
pub fn text(report: &SoakReport, args: &SoakArgs) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n| t (s) | hub | hub RSS (MiB) | clients RSS (MiB) | connected | heartbeat timers | dial loops | no / extra timer | reconnects | pings ok | ticks received | ingest acked |"
    );
    let _ = writeln!(
        out,
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for sample in &report.samples {
        let c = &sample.clients;
        let _ = writeln!(
            out,
            "| {:.0} | #{} | {} | {} | {} | {} | {} | {} / {} | {} | {} | {} | {} |",
            sample.t_s,
            sample.hub_incarnation,
            sample.hub_rss_kib.map_or("-".to_owned(), mib),
            mib(c.rss_kib),
            c.connected,
            c.heartbeat_timers,
            c.dial_loops,
            c.without_timer,
            c.with_extra_timers,
            c.reconnects,
            c.pings.ok,
            c.ticks_received,
            c.ingest.ok,
        );
    }
    let f = &report.finale;
    let sink = &report.sink;
    let v = &report.verdict;
    let graceful = report
        .restarts
        .iter()
        .filter(|r| r.how == "sigterm")
        .count();
    let down: Vec<f64> = report.restarts.iter().map(|r| r.down_ms).collect();
    let cut: usize = report.cuts.iter().map(|c| c.cut).sum();
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "- run: {} min, {} connections (+1 producer), ingest {} /s; opened and joined in {:.1} s",
        args.minutes, report.connections, report.ingest_rate, report.open_s
    );
    let _ = writeln!(
        out,
        "- hub restarts: {} ({graceful} SIGTERM, {} SIGKILL), down {:.0}–{:.0} ms (signal to listening)",
        report.restarts.len(),
        report.restarts.len() - graceful,
        down.iter().copied().fold(f64::INFINITY, f64::min),
        down.iter().copied().fold(0.0, f64::max),
    );
    let _ = writeln!(
        out,
        "- proxy: {} cuts, {cut} connections cut, {} connections accepted",
        report.cuts.len(),
        report.proxy_accepted
    );
    let _ = writeln!(
        out,
        "- at the end: {} of {} connected; {} heartbeat timers, {} dial loops; producer {} / {}",
        f.connected,
        f.connections,
        f.heartbeat_timers,
        f.dial_loops,
        f.producer_timers.0,
        f.producer_timers.1
    );
    if let Some(check) = &f.final_check {
        let _ = writeln!(
            out,
            "- final check: {} answered a ping on both topics ({:.1} s after the traffic stopped); {} with exactly one heartbeat timer and no dial loop",
            check.answering, check.settle_s, check.one_heartbeat_no_dial
        );
    }
    let _ = writeln!(out, "- reconnects seen: {}", f.reconnects);
    if !f.events.is_empty() {
        let _ = writeln!(out, "- connect events: {:?}", f.events);
    }
    let _ = writeln!(
        out,
        "- pushes: ping {} ok / {} failed {:?}; say {} ok / {} failed {:?}",
        f.pings.ok, f.pings.failed, f.pings.reasons, f.says.ok, f.says.failed, f.says.reasons
    );
    let _ = writeln!(
        out,
        "- broadcasts received: {} tick (hub), {} say (group)",
        f.ticks_received, f.says_received
    );
    let _ = writeln!(
        out,
        "- ingest: {} published, {} acked, {} failed {:?}",
        f.ingest_published, f.ingest.ok, f.ingest.failed, f.ingest.reasons
    );
    let _ = writeln!(
        out,
        "- stream: {} stored, {} distinct ids, {} duplicates; acked {}, acked but missing {}, stored but not acked {}",
        sink.stored, sink.distinct_ids, sink.duplicates, sink.acked, sink.acked_missing, sink.stored_not_acked
    );
    for (name, figure) in [("clients", &v.clients_rss), ("hub", &v.hub_rss)] {
        let _ = writeln!(
            out,
            "- {name} RSS after {:.0} s warm-up: {} samples, {}–{} MiB, spread {:.2} %, drift (last third vs first) {:+.2} %, slope {:+.0} KiB/min",
            v.warmup_s,
            figure.samples,
            mib(figure.min_kib),
            mib(figure.max_kib),
            figure.spread_pct,
            figure.drift_pct,
            figure.slope_kib_per_min
        );
    }
    let _ = writeln!(
        out,
        "- verdict: {}",
        if v.passed {
            "PASSED".to_owned()
        } else {
            format!("FAILED: {}", v.failures.join("; "))
        }
    );
    out
}
