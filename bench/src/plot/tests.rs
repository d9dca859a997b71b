//! The charts from a small fixed result.

use super::*;

/// A small fixed result with a row of every chart.
fn report() -> Report {
    let row = |name: &str, metric: &str, better, sw, base| Row::new(name, metric, better, sw, base);
    Report {
        scenarios: vec![
            row("one_way_phoenix", "msgs/s", Better::Higher, 1.4e6, 6.0e6)
                .with_target(Target::RatioAtLeast { bound: 0.6 }),
            row("rtt_p50", "µs", Better::Lower, 92.7, 80.9)
                .with_floor(85.3)
                .with_peer(91.2)
                .with_peer2(140.0)
                .with_target(Target::RatioAtMost { bound: 1.2 }),
            row(
                "fanout",
                "deliveries/s",
                Better::Higher,
                583_085.0,
                4_471_495.0,
            ),
            row(
                "cluster_fanout",
                "deliveries/s",
                Better::Higher,
                949_971.0,
                652_693.0,
            ),
            row(
                "idle_memory_server_1000",
                "KiB/connection",
                Better::Lower,
                18.8,
                6.2,
            ),
            row(
                "idle_memory_server_10000",
                "KiB/connection",
                Better::Lower,
                18.7,
                6.1,
            ),
            row("rejoin_time", "ms", Better::Lower, 2105.0, 146.0)
                .with_target(Target::ValueAtMost { bound: 3000.0 }),
        ],
    }
}

#[test]
fn writes_well_formed_svg_with_the_row_names() {
    let dir = tempfile::tempdir().expect("temp dir");
    let written = write(&report(), dir.path(), "bench-").expect("writes");
    let names: Vec<String> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "bench-ratios.svg",
            "bench-fanout.svg",
            "bench-latency.svg",
            "bench-idle_memory.svg"
        ]
    );
    let svg = std::fs::read_to_string(&written[0]).expect("reads");
    let doc = roxmltree::Document::parse(&svg).expect("well-formed XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let text: String = doc.descendants().filter_map(|n| n.text()).collect();
    for row in report().scenarios {
        assert!(text.contains(&row.name), "{} missing", row.name);
    }
    assert!(!svg.contains("<script") && !svg.contains("@font-face"));
    let latency = std::fs::read_to_string(&written[2]).expect("reads");
    for side in ["protocol floor", "peer2 (phoenix_channels_client)"] {
        assert!(
            latency.contains(side),
            "{side} missing from the latency chart"
        );
    }
    for path in &written {
        let svg = std::fs::read_to_string(path).expect("reads");
        roxmltree::Document::parse(&svg).expect("well-formed XML");
        assert!(
            svg.len() < 60_000,
            "{} is {} bytes",
            path.display(),
            svg.len()
        );
    }
}

#[test]
fn reads_a_json_file_or_a_run_output() {
    let json = report().json().expect("serializes");
    assert_eq!(parse(&json).expect("file").scenarios.len(), 7);
    let output = format!("| table |\n\nfull run on 2 cores\n{json}\n");
    let back = parse(&output).expect("output");
    assert_eq!(
        back.scenarios[1].target,
        Some(Target::RatioAtMost { bound: 1.2 })
    );
    assert_eq!(back.scenarios[1].peer, Some(91.2));
    assert_eq!(
        (back.scenarios[1].floor, back.scenarios[1].peer2),
        (Some(85.3), Some(140.0))
    );
}

#[test]
fn value_targets_become_ratios() {
    let rows = report().scenarios;
    assert_eq!(target_ratio(&rows[6]), Some(3000.0 / 146.0));
    assert_eq!(target_ratio(&rows[0]), Some(0.6));
    assert_eq!(target_ratio(&rows[2]), None);
    let (sw, base) = over_n(&report(), "idle_memory_server_");
    assert_eq!(sw, [(1000.0, 18.8), (10000.0, 18.7)]);
    assert_eq!(base.len(), 2);
}

#[test]
fn scaling_rows_chart_over_n_not_per_side() {
    let mut report = report();
    for (n, sw, base) in [
        (100, 992_831.0, 2_881_373.0),
        (10_000, 290_842.0, 454_377.0),
    ] {
        report.scenarios.push(Row::new(
            &format!("scaling_{n}"),
            "deliveries/s",
            Better::Higher,
            sw,
            base,
        ));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let written = write(&report, dir.path(), "").expect("writes");
    let last = written.last().expect("charts written");
    assert!(last.ends_with("scaling.svg"), "{}", last.display());
    let svg = std::fs::read_to_string(last).expect("reads");
    roxmltree::Document::parse(&svg).expect("well-formed XML");
    let fanout = std::fs::read_to_string(dir.path().join("fanout.svg")).expect("reads");
    assert!(!fanout.contains("scaling_"));
    let (hub, raw) = over_n(&report, "scaling_");
    assert_eq!(hub, [(100.0, 992_831.0), (10_000.0, 290_842.0)]);
    assert_eq!(raw.len(), 2);
}
