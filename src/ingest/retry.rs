//! When the ingest queue may hand items to a sink that failed: a pure state
//! machine over the retry delays (doubling from [`RETRY_FIRST`] to
//! [`RETRY_MAX`], back to none after a success).

use std::time::Duration;

/// The first delay after a retryable sink failure.
pub(crate) const RETRY_FIRST: Duration = Duration::from_millis(50);
/// The longest delay between retries.
pub(crate) const RETRY_MAX: Duration = Duration::from_secs(2);

/// How the sink has been doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Retry {
    /// No failure since the last success: hand over freely.
    #[default]
    Healthy,
    /// A failure: nothing is handed over until the timer of `delay` fires.
    Waiting { delay: Duration },
    /// The timer fired: handing over again; another failure waits twice as long.
    Probing { last: Duration },
}

impl Retry {
    /// Whether hand-overs must wait.
    pub(crate) fn holds(&self) -> bool {
        matches!(self, Retry::Waiting { .. })
    }

    /// A retryable failure: answers the delay of a timer to arm, or `None`
    /// when one is already armed.
    pub(crate) fn failed(&mut self) -> Option<Duration> {
        let delay = match *self {
            Retry::Waiting { .. } => return None,
            Retry::Healthy => RETRY_FIRST,
            Retry::Probing { last } => (last * 2).min(RETRY_MAX),
        };
        *self = Retry::Waiting { delay };
        Some(delay)
    }

    /// The retry timer fired.
    pub(crate) fn timer_fired(&mut self) {
        if let Retry::Waiting { delay } = *self {
            *self = Retry::Probing { last: delay };
        }
    }

    /// An item was accepted: the sink is healthy again.
    pub(crate) fn succeeded(&mut self) {
        if !self.holds() {
            *self = Retry::Healthy;
        }
    }

    /// The delay a failure now would wait (for logs).
    pub(crate) fn next_delay(&self) -> Duration {
        match *self {
            Retry::Healthy => RETRY_FIRST,
            Retry::Waiting { delay } => delay,
            Retry::Probing { last } => (last * 2).min(RETRY_MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_double_the_delay_up_to_the_cap_and_a_success_resets_it() {
        let mut retry = Retry::default();
        assert!(!retry.holds());
        assert_eq!(retry.failed(), Some(RETRY_FIRST));
        assert!(retry.holds());
        assert_eq!(retry.failed(), None, "one timer at a time");
        retry.timer_fired();
        assert!(!retry.holds());
        assert_eq!(retry.failed(), Some(RETRY_FIRST * 2));
        for _ in 0..10 {
            retry.timer_fired();
            retry.failed();
        }
        assert_eq!(retry, Retry::Waiting { delay: RETRY_MAX });
        retry.timer_fired();
        retry.succeeded();
        assert_eq!(retry, Retry::Healthy);
        assert_eq!(retry.next_delay(), RETRY_FIRST);
    }

    #[test]
    fn a_success_while_waiting_keeps_the_timer() {
        let mut retry = Retry::default();
        retry.failed();
        // An item accepted earlier settles while the queue waits.
        retry.succeeded();
        assert!(retry.holds(), "the armed timer still decides");
        retry.timer_fired();
        retry.succeeded();
        assert_eq!(retry, Retry::Healthy);
    }
}
