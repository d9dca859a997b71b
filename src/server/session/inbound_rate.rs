//! The optional inbound rate limit of one socket (`[server.inbound_rate]`):
//! token buckets of frames and of bytes, each refilled at its rate per
//! second and holding at most one second's worth, so a burst of up to a
//! second's allowance passes and a steady sender above the rate does not.
//! Pure: the caller passes the time.

use std::time::Instant;

use crate::config::InboundRateConfig;

/// One token bucket.
#[derive(Debug, Clone, PartialEq)]
struct Bucket {
    per_second: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(per_second: f64, now: Instant) -> Bucket {
        Bucket {
            per_second,
            tokens: per_second,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.per_second);
        self.at = now;
    }
}

/// The buckets of one socket; a limit of 0 has none.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct InboundRate {
    frames: Option<Bucket>,
    bytes: Option<Bucket>,
}

impl InboundRate {
    /// The limiter `config` describes, full at `now`; `None` without limits.
    pub(crate) fn new(config: &InboundRateConfig, now: Instant) -> Option<InboundRate> {
        let bucket = |rate: u64| (rate > 0).then(|| Bucket::full(rate as f64, now));
        let limiter = InboundRate {
            frames: bucket(u64::from(config.frames_per_second)),
            bytes: bucket(config.bytes_per_second),
        };
        (limiter.frames.is_some() || limiter.bytes.is_some()).then_some(limiter)
    }

    /// Whether a frame of `len` bytes arriving at `now` is within the limit;
    /// it is charged only when it is (a refused frame costs nothing).
    pub(crate) fn admit(&mut self, len: usize, now: Instant) -> bool {
        let len = len as f64;
        for bucket in [&mut self.frames, &mut self.bytes].into_iter().flatten() {
            bucket.refill(now);
        }
        let fits = self
            .frames
            .as_ref()
            .is_none_or(|frames| frames.tokens >= 1.0)
            && self.bytes.as_ref().is_none_or(|bytes| bytes.tokens >= len);
        if fits {
            if let Some(frames) = &mut self.frames {
                frames.tokens -= 1.0;
            }
            if let Some(bytes) = &mut self.bytes {
                bytes.tokens -= len;
            }
        }
        fits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limits(frames_per_second: u32, bytes_per_second: u64) -> InboundRateConfig {
        InboundRateConfig {
            frames_per_second,
            bytes_per_second,
            ..InboundRateConfig::default()
        }
    }

    #[test]
    fn no_limits_no_limiter() {
        assert_eq!(InboundRate::new(&limits(0, 0), Instant::now()), None);
    }

    #[test]
    fn a_second_of_burst_then_the_rate() {
        let start = Instant::now();
        let mut rate = InboundRate::new(&limits(10, 0), start).unwrap();
        assert!(
            (0..10).all(|_| rate.admit(5, start)),
            "a full second's worth"
        );
        assert!(!rate.admit(5, start), "the eleventh at once is over");
        assert!(!rate.admit(5, start + Duration::from_millis(50)));
        assert!(
            rate.admit(5, start + Duration::from_millis(100)),
            "one per 100 ms"
        );
        assert!(!rate.admit(5, start + Duration::from_millis(150)));
        // Idle for a minute: still only one second's burst.
        let later = start + Duration::from_secs(60);
        assert_eq!((0..20).filter(|_| rate.admit(5, later)).count(), 10);
    }

    #[test]
    fn bytes_are_limited_too_and_a_refused_frame_costs_nothing() {
        let start = Instant::now();
        let mut rate = InboundRate::new(&limits(100, 1000), start).unwrap();
        assert!(rate.admit(900, start));
        assert!(!rate.admit(200, start), "over the bytes allowance");
        assert!(
            rate.admit(100, start),
            "the refused one took no frame or bytes"
        );
        assert!(!rate.admit(1, start));
        assert!(rate.admit(500, start + Duration::from_millis(500)));
    }
}
