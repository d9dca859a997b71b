//! The results: one row per figure, printed as a table and as the final
//! JSON line `{"scenarios": [...]}`.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// Which direction of a figure is good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    /// Throughput.
    Higher,
    /// Latency, memory, time.
    Lower,
}

/// An acceptance target on a row.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "on", rename_all = "snake_case")]
pub enum Target {
    /// `switchboard / baseline` must be at least this.
    RatioAtLeast {
        /// The bound.
        bound: f64,
    },
    /// `switchboard / baseline` must be at most this.
    RatioAtMost {
        /// The bound.
        bound: f64,
    },
    /// The switchboard figure itself must be at most this.
    ValueAtMost {
        /// The bound.
        bound: f64,
    },
    /// `switchboard / protocol floor` must be at least this.
    FloorRatioAtLeast {
        /// The bound.
        bound: f64,
    },
}

impl Target {
    /// Whether `row` meets the target.
    fn met(&self, row: &Row) -> bool {
        match *self {
            Target::RatioAtLeast { bound } => row.ratio >= bound,
            Target::RatioAtMost { bound } => row.ratio <= bound,
            Target::ValueAtMost { bound } => row.switchboard <= bound,
            Target::FloorRatioAtLeast { bound } => row.floor_ratio.is_some_and(|r| r >= bound),
        }
    }

    /// `ratio ≥ 0.6`, `value ≤ 3000`, ...
    fn describe(&self) -> String {
        match *self {
            Target::RatioAtLeast { bound } => format!("ratio >= {bound}"),
            Target::RatioAtMost { bound } => format!("ratio <= {bound}"),
            Target::ValueAtMost { bound } => format!("value <= {bound}"),
            Target::FloorRatioAtLeast { bound } => format!("floor ratio >= {bound}"),
        }
    }
}

/// One figure of one scenario, for both sides (and the peer where measured).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    /// Scenario name, e.g. `one_way_ingest`.
    pub name: String,
    /// Unit of the figures, e.g. `msgs/s`.
    pub metric: String,
    /// switchboard's figure.
    pub switchboard: f64,
    /// The raw tokio-tungstenite baseline's figure.
    pub baseline: f64,
    /// `switchboard / baseline`.
    pub ratio: f64,
    /// Which direction is good.
    pub better: Better,
    /// The protocol floor's figure (a minimal server and client speaking
    /// the same protocol, no framework), where defined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor: Option<f64>,
    /// `switchboard / floor`, where the floor is defined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor_ratio: Option<f64>,
    /// The ezsockets client's figure, where measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<f64>,
    /// `switchboard / peer`, where measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_ratio: Option<f64>,
    /// The `phoenix_channels_client` client's figure, where measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer2: Option<f64>,
    /// `switchboard / peer2`, where measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer2_ratio: Option<f64>,
    /// The acceptance target, where the scenario has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    /// Whether the target (and being ahead of the peer) is met.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub met: Option<bool>,
    /// How the figure was taken, where it needs saying.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Row {
    /// A row with the ratio filled in.
    pub fn new(name: &str, metric: &str, better: Better, switchboard: f64, baseline: f64) -> Row {
        Row {
            name: name.to_owned(),
            metric: metric.to_owned(),
            switchboard: round(switchboard),
            baseline: round(baseline),
            ratio: ratio(switchboard, baseline),
            better,
            floor: None,
            floor_ratio: None,
            peer: None,
            peer_ratio: None,
            peer2: None,
            peer2_ratio: None,
            target: None,
            met: None,
            note: None,
        }
    }

    /// Adds the protocol floor's figure.
    pub fn with_floor(mut self, floor: f64) -> Row {
        self.floor = Some(round(floor));
        self.floor_ratio = Some(ratio(self.switchboard, floor));
        self.met = self.evaluate();
        self
    }

    /// Adds the second peer's (`phoenix_channels_client`) figure.
    pub fn with_peer2(mut self, peer2: f64) -> Row {
        self.peer2 = Some(round(peer2));
        self.peer2_ratio = Some(ratio(self.switchboard, peer2));
        self.met = self.evaluate();
        self
    }

    /// Adds the peer's figure.
    pub fn with_peer(mut self, peer: f64) -> Row {
        self.peer = Some(round(peer));
        self.peer_ratio = Some(ratio(self.switchboard, peer));
        self.met = self.evaluate();
        self
    }

    /// Sets the acceptance target.
    pub fn with_target(mut self, target: Target) -> Row {
        self.target = Some(target);
        self.met = self.evaluate();
        self
    }

    /// Adds a note.
    pub fn with_note(mut self, note: impl Into<String>) -> Row {
        self.note = Some(note.into());
        self
    }

    /// Target met and, where peers were measured, ahead of every one.
    fn evaluate(&self) -> Option<bool> {
        let target = self.target.map(|target| target.met(self));
        let peers = [self.peer, self.peer2];
        let mut measured = peers.iter().flatten().peekable();
        let ahead = measured.peek().is_some().then(|| {
            measured.all(|peer| match self.better {
                Better::Higher => self.switchboard >= *peer,
                Better::Lower => self.switchboard <= *peer,
            })
        });
        match (target, ahead) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(true) && b.unwrap_or(true)),
        }
    }
}

/// `a / b` to three decimals (0 when `b` is 0).
fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        0.0
    } else {
        (a / b * 1000.0).round() / 1000.0
    }
}

/// Rounds a figure for display: integers above 100, two decimals below.
fn round(value: f64) -> f64 {
    if value.abs() >= 100.0 {
        value.round()
    } else {
        (value * 100.0).round() / 100.0
    }
}

/// Every row of a run.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Report {
    /// The rows, in scenario order.
    pub scenarios: Vec<Row>,
}

impl Report {
    /// The JSON object, on one line.
    pub fn json(&self) -> anyhow::Result<String> {
        Ok(serde_json::to_string(self)?)
    }

    /// A Markdown table of every row.
    pub fn table(&self) -> String {
        let mut out = String::from(
            "| scenario | metric | switchboard | baseline | ratio | floor | sw/floor | peer (ezsockets) | sw/peer | peer2 (phoenix_channels_client) | sw/peer2 | better | target | met |\n\
             |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|\n",
        );
        let cell = |figure: Option<f64>| figure.map_or(String::new(), |f| format!("{f}"));
        for row in &self.scenarios {
            let target = row.target.map_or("".to_owned(), |t| t.describe());
            let met = match row.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "",
            };
            let better = match row.better {
                Better::Higher => "higher",
                Better::Lower => "lower",
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                row.name,
                row.metric,
                row.switchboard,
                row.baseline,
                row.ratio,
                cell(row.floor),
                cell(row.floor_ratio),
                cell(row.peer),
                cell(row.peer_ratio),
                cell(row.peer2),
                cell(row.peer2_ratio),
                better,
                target,
                met
            );
        }
        out
    }

    /// The notes of every row that has one.
    pub fn notes(&self) -> String {
        let mut out = String::new();
        for row in &self.scenarios {
            if let Some(note) = &row.note {
                let _ = writeln!(out, "- {}: {}", row.name, note);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_peer_decide_met() {
        let row = Row::new("one_way", "msgs/s", Better::Higher, 700.0, 1000.0)
            .with_target(Target::RatioAtLeast { bound: 0.6 });
        assert_eq!(row.ratio, 0.7);
        assert_eq!(row.met, Some(true));
        let behind = row.with_peer(800.0);
        assert_eq!(behind.met, Some(false));
        let slow = Row::new("rtt_p50", "us", Better::Lower, 130.0, 100.0)
            .with_target(Target::RatioAtMost { bound: 1.2 });
        assert_eq!(slow.met, Some(false));
    }

    #[test]
    fn every_peer_must_be_behind_and_a_floor_target_reads_the_floor_ratio() {
        let row = Row::new("rtt_p50", "us", Better::Lower, 100.0, 95.0)
            .with_target(Target::RatioAtMost { bound: 1.1 })
            .with_peer(110.0);
        assert_eq!(row.met, Some(true));
        assert_eq!(
            row.with_peer2(99.0).met,
            Some(false),
            "the second peer is ahead"
        );
        let ingest = Row::new("one_way_ingest", "msgs/s", Better::Higher, 60.0, 1000.0)
            .with_target(Target::FloorRatioAtLeast { bound: 0.6 });
        assert_eq!(ingest.met, Some(false), "no floor measured: not met");
        assert_eq!(ingest.with_floor(90.0).met, Some(true), "60 of 90");
    }

    #[test]
    fn json_line_has_the_required_fields() {
        let report = Report {
            scenarios: vec![Row::new("fanout", "deliveries/s", Better::Higher, 1.0, 2.0)],
        };
        let value: serde_json::Value =
            serde_json::from_str(&report.json().expect("serializes")).expect("parses");
        let row = &value["scenarios"][0];
        for key in [
            "name",
            "metric",
            "switchboard",
            "baseline",
            "ratio",
            "better",
        ] {
            assert!(row.get(key).is_some(), "{key} missing");
        }
        assert_eq!(row["better"], "higher");
        assert!(row.get("floor").is_none(), "no floor measured");
    }

    #[test]
    fn floor_and_second_peer_have_their_ratios_and_columns() {
        let row = Row::new("rtt_p50", "µs", Better::Lower, 90.0, 60.0)
            .with_floor(75.0)
            .with_peer(100.0)
            .with_peer2(180.0);
        assert_eq!((row.floor_ratio, row.peer2_ratio), (Some(1.2), Some(0.5)));
        assert_eq!(row.met, Some(true), "met is about the ezsockets peer");
        let report = Report {
            scenarios: vec![row],
        };
        let value: serde_json::Value =
            serde_json::from_str(&report.json().expect("serializes")).expect("parses");
        assert_eq!(value["scenarios"][0]["floor"], 75.0);
        assert_eq!(value["scenarios"][0]["peer2_ratio"], 0.5);
        let table = report.table();
        assert!(table.contains("| floor | sw/floor |"));
        assert!(table.contains("| 90 | 60 | 1.5 | 75 | 1.2 | 100 | 0.9 | 180 | 0.5 | lower |"));
    }
}
