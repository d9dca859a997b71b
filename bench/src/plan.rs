//! How big each scenario runs: `--quick` (under a minute on 2 cores) or
//! full (under ten minutes).

use std::time::Duration;

/// Sizes and durations of one run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// `--quick`.
    pub quick: bool,
    /// Alternations of the sides per throughput scenario (the median is reported).
    pub rounds: usize,
    /// Sending before the throughput window opens.
    pub warmup: Duration,
    /// The throughput measuring window.
    pub window: Duration,
    /// One-way messages a sender may have in flight (sent, not yet counted by the server).
    pub one_way_in_flight: u64,
    /// Ingest messages in flight: half the hub's default queue of 1,000, so
    /// the queue never signals `slow` or drops (what `switchboard publish` uses).
    pub ingest_in_flight: u64,
    /// Sequential round trips per side.
    pub rtt_iterations: usize,
    /// Requests in flight in the pipelined scenario.
    pub pipeline_depth: usize,
    /// Sockets joined to the fan-out topic.
    pub fanout_connections: usize,
    /// Broadcasts in the fan-out scenario.
    pub fanout_broadcasts: usize,
    /// Timed publish-to-deliver samples per run of the cluster scenario.
    pub cluster_latency_samples: usize,
    /// Idle connections held for the memory figures.
    pub idle_connections: Vec<usize>,
    /// Supervised connections in the rejoin scenario.
    pub rejoin_connections: usize,
    /// Redial backoff of the rejoin scenario: first delay.
    pub rejoin_initial_backoff: Duration,
    /// Redial backoff of the rejoin scenario: ceiling.
    pub rejoin_max_backoff: Duration,
    /// Handshakes in flight when many sockets connect.
    pub connect_parallel: usize,
}

/// Open files the 10,000-connection memory run needs per process.
pub const TEN_THOUSAND_NEEDS_FILES: u64 = 10_500;

impl Plan {
    /// The plan for `quick`, given the open-file limit in force.
    pub fn new(quick: bool, open_files: u64) -> Plan {
        let idle_connections = if quick {
            vec![500]
        } else if open_files >= TEN_THOUSAND_NEEDS_FILES {
            vec![1_000, 10_000]
        } else {
            eprintln!(
                "warning: open-file limit {open_files} < {TEN_THOUSAND_NEEDS_FILES}: \
                 idle_memory runs with 1,000 connections only"
            );
            vec![1_000]
        };
        Plan {
            quick,
            rounds: if quick { 1 } else { 5 },
            warmup: Duration::from_millis(if quick { 200 } else { 500 }),
            window: Duration::from_millis(if quick { 500 } else { 2_000 }),
            one_way_in_flight: 4_096,
            ingest_in_flight: 500,
            rtt_iterations: if quick { 2_000 } else { 20_000 },
            pipeline_depth: 64,
            fanout_connections: if quick { 250 } else { 1_000 },
            fanout_broadcasts: if quick { 250 } else { 1_000 },
            cluster_latency_samples: if quick { 200 } else { 1_000 },
            idle_connections,
            rejoin_connections: if quick { 200 } else { 1_000 },
            rejoin_initial_backoff: Duration::from_millis(100),
            rejoin_max_backoff: Duration::from_secs(1),
            connect_parallel: 128,
        }
    }
}
