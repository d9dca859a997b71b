//! Redial and rejoin delays (NET-1, PHX-C10).
//!
//! Everything here is pure arithmetic: no clock is read and no I/O is done.
//! Randomness comes in as a `unit` value in `[0, 1)` so tests can pin it;
//! the `next_delay` conveniences draw that unit from [`fastrand`].

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The smallest delay ever returned, so no failure path can spin in a
/// zero-delay loop even if a policy with a zero interval slips through.
pub(crate) const MIN_DELAY: Duration = Duration::from_millis(1);

/// How a connection redials after a failed dial or a lost socket.
///
/// Durations are written as strings in configuration files (`"1s"`,
/// `"500ms"`); every key is optional and unknown keys are rejected.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReconnectPolicy {
    /// Lower bound of every delay and the ceiling of the first one
    /// (default 1 s). Must be greater than zero.
    #[serde(with = "humantime_serde")]
    pub initial_interval: Duration,
    /// Upper bound of every delay (default 60 s). Must be at least
    /// `initial_interval`.
    #[serde(with = "humantime_serde")]
    pub max_interval: Duration,
    /// Growth of the ceiling per attempt (default 2.0). Must be finite and
    /// at least 1.
    pub multiplier: f64,
    /// Most redial attempts before giving up; 0 retries forever (default).
    pub max_retries: u32,
    /// A connection that stayed up at least this long resets the backoff when
    /// it drops (default 5 s), and so does one that made progress (a frame
    /// came back on it: a reply, an ack, a broadcast), however short it
    /// was. One that drops sooner without a word keeps climbing, so a
    /// server that accepts and at once closes the socket is not hammered at
    /// `initial_interval`. Zero resets after every connection.
    #[serde(with = "humantime_serde")]
    pub stable_after: Duration,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            initial_interval: Duration::from_secs(1),
            max_interval: Duration::from_secs(60),
            multiplier: 2.0,
            max_retries: 0,
            stable_after: Duration::from_secs(5),
        }
    }
}

impl ReconnectPolicy {
    /// Checks the values; the error names the offending key under `prefix`
    /// (e.g. `client.reconnect.multiplier must be >= 1`). An empty prefix
    /// names the bare key.
    pub fn validate(&self, prefix: &str) -> Result<(), String> {
        let key = |name: &str| {
            if prefix.is_empty() {
                name.to_owned()
            } else {
                format!("{prefix}.{name}")
            }
        };
        if self.initial_interval.is_zero() {
            return Err(format!("{} must be > 0", key("initial_interval")));
        }
        if self.max_interval < self.initial_interval {
            return Err(format!(
                "{} must be >= {}",
                key("max_interval"),
                key("initial_interval")
            ));
        }
        if !self.multiplier.is_finite() || self.multiplier < 1.0 {
            return Err(format!("{} must be >= 1", key("multiplier")));
        }
        Ok(())
    }
}

/// Exponential redial backoff with full jitter (NET-1).
///
/// The delay before attempt `n` (1-based) is drawn uniformly from
/// `[initial_interval, min(max_interval, initial_interval * multiplier^(n-1))]`,
/// so the first delay is exactly `initial_interval` and the ceiling doubles
/// (by default) up to `max_interval`. After a connection that worked
/// dropped, the first redial comes sooner: within a tenth of
/// `initial_interval` (a flapping link that works is back at once; the
/// switchboard's dial budget still paces many such redials).
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    policy: ReconnectPolicy,
    attempt: u32,
    /// The next delay is the quick one after a connection that worked.
    quick: bool,
    /// The last delay handed out was a quick one: a link it led to that
    /// drops again soon earns no second quick redial in a row.
    after_quick: bool,
}

impl Backoff {
    /// A fresh backoff. Values a validated policy could not hold are
    /// tamed rather than trusted: intervals are raised to at least
    /// [`MIN_DELAY`], `max_interval` to at least `initial_interval`, and a
    /// multiplier that is not finite or below 1 is treated as 1.
    pub(crate) fn new(policy: ReconnectPolicy) -> Self {
        let initial = policy.initial_interval.max(MIN_DELAY);
        let policy = ReconnectPolicy {
            initial_interval: initial,
            max_interval: policy.max_interval.max(initial),
            multiplier: if policy.multiplier.is_finite() && policy.multiplier >= 1.0 {
                policy.multiplier
            } else {
                1.0
            },
            ..policy
        };
        Backoff {
            policy,
            attempt: 0,
            quick: false,
            after_quick: false,
        }
    }

    /// Attempts made since the last reset, i.e. how many delays were handed
    /// out. The upcoming attempt is number `attempt() + 1`. After
    /// [`next_delay_with`](Self::next_delay_with) returned `None` this is
    /// `max_retries`, the number of attempts that were made.
    pub(crate) fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The ceiling of the next delay:
    /// `min(max_interval, initial_interval * multiplier^attempt())`.
    /// Never overflows: anything past `max_interval` (including an infinite
    /// product) is capped.
    pub(crate) fn ceiling(&self) -> Duration {
        let p = &self.policy;
        let exponent = i32::try_from(self.attempt).unwrap_or(i32::MAX);
        let factor = p.multiplier.powi(exponent);
        let secs = p.initial_interval.as_secs_f64() * factor;
        if !secs.is_finite() || secs >= p.max_interval.as_secs_f64() {
            return p.max_interval;
        }
        Duration::try_from_secs_f64(secs)
            .unwrap_or(p.max_interval)
            .clamp(p.initial_interval, p.max_interval)
    }

    /// The delay before the next attempt, with full jitter: `unit` in
    /// `[0, 1)` picks a point between `initial_interval` and
    /// [`ceiling`](Self::ceiling) (values outside that range, and NaN, are
    /// clamped). Counts the attempt. Returns `None`, without counting, once
    /// `max_retries` (when > 0) attempts were handed out.
    pub(crate) fn next_delay_with(&mut self, unit: f64) -> Option<Duration> {
        let unit = if unit.is_nan() {
            0.0
        } else {
            unit.clamp(0.0, 1.0)
        };
        self.after_quick = std::mem::take(&mut self.quick);
        if self.after_quick {
            // Not an attempt of the climb: the link just worked.
            let tenth = self.policy.initial_interval.as_secs_f64() / 10.0 * unit;
            return Some(Duration::from_secs_f64(tenth).max(MIN_DELAY));
        }
        if self.policy.max_retries > 0 && self.attempt >= self.policy.max_retries {
            return None;
        }
        let low = self.policy.initial_interval;
        let high = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let span = high.saturating_sub(low).as_secs_f64() * unit;
        let delay = low.saturating_add(Duration::try_from_secs_f64(span).unwrap_or(Duration::ZERO));
        Some(delay.clamp(low, high))
    }

    /// [`next_delay_with`](Self::next_delay_with) with a random unit.
    pub(crate) fn next_delay(&mut self) -> Option<Duration> {
        self.next_delay_with(fastrand::f64())
    }

    /// Back to the initial delay and a zero attempt count.
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Call when a connection that was up drops, with how long it was up
    /// and whether anything came back on it. Resets if it made progress or
    /// stayed up at least `stable_after`; a shorter, silent connection
    /// leaves the attempt count (and so the next ceiling) as is: a flapping
    /// link that works is redialled at once, a server that accepts and
    /// drops is not hammered.
    ///
    /// The first redial after such a connection is quick, unless that
    /// connection came from a quick redial itself and was not stable: a
    /// link that keeps dropping right after a word alternates quick redials
    /// with `initial_interval` ones, never a tight loop.
    pub(crate) fn connection_dropped(&mut self, up_for: Duration, progressed: bool) {
        let stable = up_for >= self.policy.stable_after;
        if progressed || stable {
            self.reset();
            self.quick = stable || !self.after_quick;
        }
    }
}

/// Base rejoin delays after a failed join (PHX-C10): 1 s, 2 s, 5 s, then
/// 10 s for every later try (the schedule of phoenix.js).
pub(crate) const REJOIN_SCHEDULE: [Duration; 4] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(5),
    Duration::from_secs(10),
];

/// Relative jitter of a rejoin delay: each delay lies within ±20 % of its
/// base, so channels that failed together do not rejoin in one burst.
pub(crate) const REJOIN_JITTER: f64 = 0.2;

/// Rejoin delays of one channel after join errors and join timeouts
/// (PHX-C10): [`REJOIN_SCHEDULE`] with [`REJOIN_JITTER`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RejoinBackoff {
    tries: u32,
}

impl RejoinBackoff {
    /// A fresh schedule: the next delay is about 1 s.
    pub(crate) fn new() -> Self {
        RejoinBackoff { tries: 0 }
    }

    /// Delays handed out since the last reset.
    pub(crate) fn tries(&self) -> u32 {
        self.tries
    }

    /// The next delay: the schedule entry for this try scaled by
    /// `1 - REJOIN_JITTER + 2 * REJOIN_JITTER * unit`, so `unit` in `[0, 1)`
    /// maps onto `[0.8, 1.2)` of the base (NaN and out-of-range units are
    /// clamped). Counts the try; never runs out.
    pub(crate) fn next_delay_with(&mut self, unit: f64) -> Duration {
        let index = usize::try_from(self.tries)
            .unwrap_or(usize::MAX)
            .min(REJOIN_SCHEDULE.len() - 1);
        let base = REJOIN_SCHEDULE[index];
        self.tries = self.tries.saturating_add(1);
        let unit = if unit.is_nan() {
            0.5
        } else {
            unit.clamp(0.0, 1.0)
        };
        let factor = 1.0 - REJOIN_JITTER + 2.0 * REJOIN_JITTER * unit;
        base.mul_f64(factor).max(MIN_DELAY)
    }

    /// [`next_delay_with`](Self::next_delay_with) with a random unit.
    #[cfg(test)]
    pub(crate) fn next_delay(&mut self) -> Duration {
        self.next_delay_with(fastrand::f64())
    }

    /// Back to the 1 s step.
    pub(crate) fn reset(&mut self) {
        self.tries = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOW: f64 = 0.0;
    const HIGH: f64 = 0.999;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn defaults_are_the_documented_ones_and_valid() {
        let p = ReconnectPolicy::default();
        assert_eq!(p.initial_interval, secs(1));
        assert_eq!(p.max_interval, secs(60));
        assert_eq!(p.multiplier, 2.0);
        assert_eq!(p.max_retries, 0);
        assert_eq!(p.stable_after, secs(5));
        assert_eq!(p.validate("client.reconnect"), Ok(()));
    }

    #[test]
    fn ceiling_sequence_doubles_up_to_the_cap() {
        let mut b = Backoff::new(ReconnectPolicy::default());
        let mut ceilings = Vec::new();
        for _ in 0..10 {
            ceilings.push(b.ceiling().as_secs());
            b.next_delay_with(LOW);
        }
        assert_eq!(ceilings, [1, 2, 4, 8, 16, 32, 60, 60, 60, 60]);
    }

    #[test]
    fn highest_unit_follows_the_ceiling_sequence() {
        let mut b = Backoff::new(ReconnectPolicy::default());
        let got: Vec<u64> = (0..8)
            .map(|_| {
                b.next_delay_with(0.999_999_999)
                    .map_or(0, |d| d.as_secs_f64().round() as u64)
            })
            .collect();
        assert_eq!(got, [1, 2, 4, 8, 16, 32, 60, 60]);
    }

    #[test]
    fn every_delay_is_within_bounds() {
        for unit in [LOW, HIGH, 0.5, f64::NAN, -3.0, 7.0] {
            let mut b = Backoff::new(ReconnectPolicy::default());
            for _ in 0..100 {
                let ceiling = b.ceiling();
                let d = b.next_delay_with(unit).expect("forever");
                assert!(d >= secs(1), "{d:?} below initial for unit {unit}");
                assert!(d <= ceiling, "{d:?} above {ceiling:?} for unit {unit}");
                assert!(d <= secs(60));
            }
        }
    }

    #[test]
    fn lowest_unit_is_always_the_initial_interval() {
        let mut b = Backoff::new(ReconnectPolicy::default());
        for _ in 0..20 {
            assert_eq!(b.next_delay_with(LOW), Some(secs(1)));
        }
    }

    #[test]
    fn random_delays_stay_in_bounds() {
        let mut b = Backoff::new(ReconnectPolicy::default());
        for _ in 0..200 {
            let ceiling = b.ceiling();
            let d = b.next_delay().expect("forever");
            assert!(d >= secs(1) && d <= ceiling);
        }
    }

    #[test]
    fn huge_attempt_counts_do_not_overflow() {
        let mut b = Backoff::new(ReconnectPolicy {
            multiplier: 1e300,
            ..ReconnectPolicy::default()
        });
        b.attempt = u32::MAX - 1;
        assert_eq!(b.ceiling(), secs(60));
        assert_eq!(b.next_delay_with(HIGH).map(|d| d <= secs(60)), Some(true));
        assert_eq!(b.attempt(), u32::MAX);
        assert!(b.next_delay_with(HIGH).is_some());
        assert_eq!(b.attempt(), u32::MAX);
    }

    #[test]
    fn insane_policies_are_tamed() {
        let mut b = Backoff::new(ReconnectPolicy {
            initial_interval: Duration::ZERO,
            max_interval: Duration::ZERO,
            multiplier: f64::NAN,
            ..ReconnectPolicy::default()
        });
        for _ in 0..5 {
            let d = b.next_delay_with(HIGH).expect("forever");
            assert!(d >= MIN_DELAY);
        }
        let mut shrinking = Backoff::new(ReconnectPolicy {
            multiplier: 0.5,
            ..ReconnectPolicy::default()
        });
        for _ in 0..5 {
            assert_eq!(shrinking.next_delay_with(HIGH), Some(secs(1)));
        }
    }

    #[test]
    fn max_retries_runs_out_and_keeps_the_count() {
        let mut b = Backoff::new(ReconnectPolicy {
            max_retries: 3,
            ..ReconnectPolicy::default()
        });
        assert!(b.next_delay_with(LOW).is_some());
        assert!(b.next_delay_with(LOW).is_some());
        assert!(b.next_delay_with(LOW).is_some());
        assert_eq!(b.attempt(), 3);
        assert_eq!(b.next_delay_with(LOW), None);
        assert_eq!(b.next_delay_with(LOW), None);
        assert_eq!(b.attempt(), 3);
        b.reset();
        assert!(b.next_delay_with(LOW).is_some());
    }

    #[test]
    fn zero_max_retries_means_forever() {
        let mut b = Backoff::new(ReconnectPolicy::default());
        for _ in 0..10_000 {
            assert!(b.next_delay_with(HIGH).is_some());
        }
        assert_eq!(b.attempt(), 10_000);
    }

    #[test]
    fn reset_starts_over() {
        let mut b = Backoff::new(ReconnectPolicy::default());
        for _ in 0..5 {
            b.next_delay_with(HIGH);
        }
        assert_eq!(b.attempt(), 5);
        b.reset();
        assert_eq!(b.attempt(), 0);
        assert_eq!(b.ceiling(), secs(1));
        assert_eq!(b.next_delay_with(HIGH), Some(secs(1)));
    }

    #[test]
    fn short_connection_keeps_climbing_long_one_resets() {
        let mut b = Backoff::new(ReconnectPolicy::default());
        for _ in 0..4 {
            b.next_delay_with(LOW);
        }
        b.connection_dropped(Duration::from_millis(4_999), false);
        assert_eq!(b.attempt(), 4);
        assert_eq!(b.ceiling(), secs(16));
        b.connection_dropped(secs(5), false);
        assert_eq!(b.attempt(), 0);
        assert_eq!(b.ceiling(), secs(1));
    }

    #[test]
    fn a_short_connection_that_made_progress_resets() {
        let mut b = Backoff::new(ReconnectPolicy::default());
        for _ in 0..4 {
            b.next_delay_with(LOW);
        }
        b.connection_dropped(Duration::from_millis(300), true);
        assert_eq!(b.attempt(), 0);
        // The first redial is quick, within a tenth of the initial interval,
        // and not counted; a failure after it climbs from the start.
        let quick = b.next_delay_with(HIGH).unwrap();
        assert!(quick <= Duration::from_millis(100), "{quick:?}");
        assert_eq!(b.attempt(), 0);
        assert_eq!(b.next_delay_with(HIGH), Some(secs(1)));
        assert_eq!(b.attempt(), 1);
    }

    #[test]
    fn quick_redials_never_follow_each_other_on_a_link_that_keeps_dropping() {
        let mut b = Backoff::new(ReconnectPolicy::default());
        b.connection_dropped(Duration::from_millis(300), true);
        assert!(b.next_delay_with(HIGH).unwrap() <= Duration::from_millis(100));
        // The link the quick redial made drops again soon, after a word.
        b.connection_dropped(Duration::from_millis(300), true);
        assert_eq!(
            b.next_delay_with(HIGH),
            Some(secs(1)),
            "no second quick one"
        );
        b.connection_dropped(Duration::from_millis(300), true);
        assert!(b.next_delay_with(HIGH).unwrap() <= Duration::from_millis(100));
    }

    #[test]
    fn zero_stable_after_resets_on_every_drop() {
        let mut b = Backoff::new(ReconnectPolicy {
            stable_after: Duration::ZERO,
            ..ReconnectPolicy::default()
        });
        b.next_delay_with(LOW);
        b.connection_dropped(Duration::ZERO, false);
        assert_eq!(b.attempt(), 0);
    }

    #[test]
    fn validate_names_the_key() {
        let ok = ReconnectPolicy::default();
        let bad = |p: ReconnectPolicy| p.validate("client.reconnect").unwrap_err();
        assert_eq!(
            bad(ReconnectPolicy {
                multiplier: 0.5,
                ..ok
            }),
            "client.reconnect.multiplier must be >= 1"
        );
        assert_eq!(
            bad(ReconnectPolicy {
                multiplier: f64::NAN,
                ..ok
            }),
            "client.reconnect.multiplier must be >= 1"
        );
        assert_eq!(
            bad(ReconnectPolicy {
                initial_interval: Duration::ZERO,
                ..ok
            }),
            "client.reconnect.initial_interval must be > 0"
        );
        assert_eq!(
            bad(ReconnectPolicy {
                max_interval: Duration::from_millis(10),
                ..ok
            }),
            "client.reconnect.max_interval must be >= client.reconnect.initial_interval"
        );
        assert_eq!(
            ReconnectPolicy {
                multiplier: 0.0,
                ..ok
            }
            .validate(""),
            Err("multiplier must be >= 1".to_owned())
        );
    }

    #[test]
    fn serde_reads_duration_strings_and_fills_defaults() {
        let p: ReconnectPolicy =
            toml::from_str("initial_interval = \"250ms\"\nmax_retries = 7\n").expect("parses");
        assert_eq!(p.initial_interval, Duration::from_millis(250));
        assert_eq!(p.max_retries, 7);
        assert_eq!(p.max_interval, secs(60));
        let round: ReconnectPolicy =
            serde_json::from_str(&serde_json::to_string(&p).expect("serialises")).expect("parses");
        assert_eq!(round, p);
        assert!(toml::from_str::<ReconnectPolicy>("jitter = true").is_err());
    }

    #[test]
    fn rejoin_schedule_is_1_2_5_then_10() {
        let mut r = RejoinBackoff::new();
        let mid: Vec<Duration> = (0..6).map(|_| r.next_delay_with(0.5)).collect();
        assert_eq!(
            mid,
            [secs(1), secs(2), secs(5), secs(10), secs(10), secs(10)]
        );
        assert_eq!(r.tries(), 6);
        r.reset();
        assert_eq!(r.next_delay_with(0.5), secs(1));
    }

    #[test]
    fn rejoin_jitter_is_within_twenty_percent() {
        let mut low = RejoinBackoff::new();
        let mut high = RejoinBackoff::new();
        for base in [1_000u64, 2_000, 5_000, 10_000, 10_000] {
            let l = low.next_delay_with(LOW);
            let h = high.next_delay_with(HIGH);
            assert_eq!(l, Duration::from_millis(base * 8 / 10));
            assert!(h < Duration::from_millis(base * 12 / 10));
            assert!(h > Duration::from_millis(base * 119 / 100));
        }
        let mut random = RejoinBackoff::new();
        for _ in 0..50 {
            let d = random.next_delay();
            assert!(d >= Duration::from_millis(800) && d <= secs(12));
        }
    }
}
