//! The last [`KEPT`] samples of the hub's counters, and what they make:
//! rates from counter deltas, churn, and the ingest queue's slow episodes
//! (pure: every sample is passed in).

use std::collections::VecDeque;
use std::time::Instant;

use serde::Serialize;

use crate::ingest::queue::{RESUME_AT, SLOW_AT};

/// Samples kept (a minute at one per second).
pub(super) const KEPT: usize = 60;
/// Slow episodes remembered.
const EPISODES: usize = 10;

/// What one snapshot read of the hub: gauges and counters, no rates.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Sample {
    pub at: Instant,
    /// Unix milliseconds.
    pub unix_ms: u64,
    pub connections: usize,
    /// Sessions started so far (every socket takes one id).
    pub sessions: u64,
    pub topics: usize,
    pub utilization: f64,
    pub slow_episodes: u64,
    /// Items the sink accepted so far.
    pub delivered: u64,
    pub retries: u64,
    /// Drop counters, in the order of `snapshot::DROPS`.
    pub drops: Vec<u64>,
}

/// One point of the page's charts: the sample and its rates since the one
/// before (rounded to hundredths, utilization to ten-thousandths).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Point {
    /// Unix milliseconds.
    pub t: u64,
    pub connections: usize,
    /// Sockets opened and closed per second.
    pub opened: f64,
    pub closed: f64,
    pub topics: usize,
    pub utilization: f64,
    /// Items the sink accepted per second.
    pub sink: f64,
}

/// Slow episodes of the ingest queue that one sample saw begin: one, or
/// several that came and went between two samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(super) struct Episode {
    /// How many began.
    pub count: u64,
    /// They began after this sample (unix ms; the first sample: when seen).
    pub after: u64,
    /// The sample that saw them.
    pub seen: u64,
    /// The sample that saw the last one over (`None`: still slow).
    pub end: Option<u64>,
    /// Highest utilization sampled meanwhile (80 % at least).
    pub peak: f64,
}

/// The samples, their points and the episodes seen; all bounded.
#[derive(Debug, Default)]
pub(super) struct Series {
    samples: VecDeque<Sample>,
    points: VecDeque<Point>,
    episodes: VecDeque<Episode>,
}

impl Series {
    /// Adds `sample`, forgetting the oldest past [`KEPT`].
    pub(super) fn push(&mut self, sample: Sample) {
        let point = match self.samples.back() {
            Some(last) => point(last, &sample),
            None => Point {
                t: sample.unix_ms,
                connections: sample.connections,
                opened: 0.0,
                closed: 0.0,
                topics: sample.topics,
                utilization: round(sample.utilization, 1e4),
                sink: 0.0,
            },
        };
        self.follow_episodes(&sample);
        if self.samples.len() == KEPT {
            self.samples.pop_front();
            self.points.pop_front();
        }
        self.samples.push_back(sample);
        self.points.push_back(point);
    }

    /// The points, oldest first.
    pub(super) fn points(&self) -> impl Iterator<Item = &Point> {
        self.points.iter()
    }

    /// The newest point.
    pub(super) fn last_point(&self) -> Option<&Point> {
        self.points.back()
    }

    /// Per second, how much `counter` grew since the sample before.
    pub(super) fn rate(&self, counter: impl Fn(&Sample) -> u64) -> f64 {
        let mut newest = self.samples.iter().rev();
        match (newest.next(), newest.next()) {
            (Some(now), Some(before)) => {
                per_second(counter(now), counter(before), seconds_between(before, now))
            }
            _ => 0.0,
        }
    }

    /// Seconds between the newest sample and the one before.
    pub(super) fn seconds_since_previous(&self) -> Option<f64> {
        let mut newest = self.samples.iter().rev();
        let now = newest.next()?;
        newest.next().map(|before| seconds_between(before, now))
    }

    /// [`rate`](Self::rate) of each drop counter.
    pub(super) fn drop_rates(&self) -> Vec<f64> {
        let count = self.samples.back().map_or(0, |sample| sample.drops.len());
        (0..count)
            .map(|at| self.rate(|sample| sample.drops.get(at).copied().unwrap_or(0)))
            .collect()
    }

    /// The episodes remembered, oldest first.
    pub(super) fn episodes(&self) -> impl Iterator<Item = &Episode> {
        self.episodes.iter()
    }

    /// Whether the queue is in a slow episode, as far as the samples tell:
    /// exactly outside the hysteresis band (at or past 80 % it is, at or
    /// below 50 % it is not), in it as the last edge seen left it.
    pub(super) fn is_slow(&self) -> bool {
        self.episodes
            .back()
            .is_some_and(|episode| episode.end.is_none())
    }

    fn follow_episodes(&mut self, sample: &Sample) {
        let (started, after) = match self.samples.back() {
            Some(last) => (
                sample.slow_episodes.saturating_sub(last.slow_episodes),
                last.unix_ms,
            ),
            // The first sample: only an episode under way now counts.
            None => (u64::from(sample.utilization >= SLOW_AT), sample.unix_ms),
        };
        let at = sample.unix_ms;
        if started > 0 {
            // An episode under way ended before the new ones began.
            self.close_episode(at);
            let over = sample.utilization <= RESUME_AT;
            self.remember(Episode {
                count: started,
                after,
                seen: at,
                end: over.then_some(at),
                peak: round(sample.utilization.max(SLOW_AT), 1e4),
            });
        } else if sample.utilization <= RESUME_AT {
            self.close_episode(at);
        } else if let Some(open) = self.episodes.back_mut().filter(|e| e.end.is_none()) {
            open.peak = open.peak.max(round(sample.utilization, 1e4));
        }
    }

    fn close_episode(&mut self, at: u64) {
        if let Some(open) = self.episodes.back_mut().filter(|e| e.end.is_none()) {
            open.end = Some(at);
        }
    }

    fn remember(&mut self, episode: Episode) {
        if self.episodes.len() == EPISODES {
            self.episodes.pop_front();
        }
        self.episodes.push_back(episode);
    }
}

fn seconds_between(before: &Sample, now: &Sample) -> f64 {
    now.at.saturating_duration_since(before.at).as_secs_f64()
}

fn per_second(now: u64, before: u64, seconds: f64) -> f64 {
    if seconds <= 0.0 {
        return 0.0;
    }
    now.saturating_sub(before) as f64 / seconds
}

fn point(before: &Sample, now: &Sample) -> Point {
    let seconds = seconds_between(before, now);
    // Each snapshot takes one session id itself to read the count.
    let opened = now
        .sessions
        .saturating_sub(before.sessions)
        .saturating_sub(1);
    let grown = now.connections as i64 - before.connections as i64;
    let closed = (opened as i64 - grown).max(0) as u64;
    Point {
        t: now.unix_ms,
        connections: now.connections,
        opened: round(per_second(opened, 0, seconds), 100.0),
        closed: round(per_second(closed, 0, seconds), 100.0),
        topics: now.topics,
        utilization: round(now.utilization, 1e4),
        sink: round(per_second(now.delivered, before.delivered, seconds), 100.0),
    }
}

/// `value` to the nearest `1 / per`.
pub(super) fn round(value: f64, per: f64) -> f64 {
    (value * per).round() / per
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn sample(start: Instant, second: u64) -> Sample {
        Sample {
            at: start + Duration::from_secs(second),
            unix_ms: 1_000 * second,
            connections: 0,
            sessions: 0,
            topics: 0,
            utilization: 0.0,
            slow_episodes: 0,
            delivered: 0,
            retries: 0,
            drops: vec![0, 0],
        }
    }

    #[test]
    fn rates_and_churn_come_from_counter_deltas() {
        let start = Instant::now();
        let mut series = Series::default();
        series.push(Sample {
            connections: 5,
            sessions: 10,
            delivered: 100,
            ..sample(start, 0)
        });
        // 2 s later: 7 sockets opened (8 ids, one the snapshot's own), 4 closed.
        series.push(Sample {
            connections: 8,
            sessions: 18,
            delivered: 300,
            drops: vec![4, 0],
            ..sample(start, 2)
        });
        let point = *series.last_point().expect("a point");
        assert_eq!((point.opened, point.closed), (3.5, 2.0));
        assert_eq!((point.connections, point.sink), (8, 100.0));
        assert_eq!(series.drop_rates(), [2.0, 0.0]);
        assert_eq!(series.rate(|sample| sample.delivered), 100.0);
    }

    #[test]
    fn the_series_keeps_a_minute() {
        let start = Instant::now();
        let mut series = Series::default();
        for second in 0..(KEPT as u64 + 25) {
            series.push(sample(start, second));
        }
        assert_eq!(series.points().count(), KEPT);
        assert_eq!(series.points().next().map(|p| p.t), Some(25_000));
    }

    #[test]
    fn slow_episodes_follow_the_counter_and_the_hysteresis() {
        let start = Instant::now();
        let mut series = Series::default();
        let at = |second, utilization, slow_episodes| Sample {
            utilization,
            slow_episodes,
            ..sample(start, second)
        };
        series.push(at(0, 0.1, 3)); // earlier episodes are not invented
        assert_eq!((series.episodes().count(), series.is_slow()), (0, false));
        series.push(at(1, 0.9, 4));
        assert!(series.is_slow());
        series.push(at(2, 0.95, 4));
        series.push(at(3, 0.6, 4)); // in the band: still slow
        assert!(series.is_slow());
        series.push(at(4, 0.5, 4)); // resumed
        assert!(!series.is_slow());
        // Two episodes between samples, the second still under way.
        series.push(at(5, 0.7, 6));
        let episodes: Vec<_> = series.episodes().copied().collect();
        assert_eq!(episodes.len(), 2);
        let first = episodes[0];
        assert_eq!((first.count, first.after, first.seen), (1, 0, 1_000));
        assert_eq!((first.end, first.peak), (Some(4_000), 0.95));
        let second = episodes[1];
        assert_eq!((second.count, second.after, second.end), (2, 4_000, None));
        assert!(series.is_slow());
    }
}
