//! Refused origins, told to the operator: logged at WARN with the origin
//! and the rule that refused it, once per origin per minute, remembering
//! a bounded number of origins.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::server::origin::HubOrigin;

/// One warning per origin per this long.
const EVERY: Duration = Duration::from_secs(60);

/// Most origins remembered; past it, the oldest half is forgotten.
const TRACKED: usize = 256;

/// Longest origin logged (a header may be long; an origin is not).
const MAX_LOGGED: usize = 200;

/// When each refused origin was last logged.
#[derive(Debug, Default)]
pub(crate) struct OriginWarnings {
    logged: Mutex<HashMap<String, Instant>>,
}

impl OriginWarnings {
    /// A socket from a page at `origin` was refused: says so, unless it
    /// was said for that origin within the last minute.
    pub(crate) fn refused(&self, origin: &str, hub: &HubOrigin, allowed: &[String]) {
        let origin: String = origin.chars().take(MAX_LOGGED).collect();
        if !self.due(&origin, Instant::now()) {
            return;
        }
        tracing::warn!(
            %origin,
            hub = %hub,
            ?allowed,
            "socket refused: origin {origin} is not the hub's own ({hub}) and is not listed in \
             server.allowed_origins; list it there (matched exactly: scheme, host and port)"
        );
    }

    /// Whether `origin` is to be logged at `now` (and, if so, notes it).
    fn due(&self, origin: &str, now: Instant) -> bool {
        let mut logged = self
            .logged
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if logged
            .get(origin)
            .is_some_and(|at| now.duration_since(*at) < EVERY)
        {
            return false;
        }
        if logged.len() >= TRACKED && !logged.contains_key(origin) {
            let mut ages: Vec<Instant> = logged.values().copied().collect();
            ages.sort_unstable();
            let cutoff = ages[ages.len() / 2];
            logged.retain(|_, at| *at > cutoff);
        }
        logged.insert(origin.to_owned(), now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_per_origin_per_minute() {
        let warnings = OriginWarnings::default();
        let start = Instant::now();
        assert!(warnings.due("http://a.example", start));
        assert!(!warnings.due("http://a.example", start + Duration::from_secs(59)));
        assert!(warnings.due("http://b.example", start + Duration::from_secs(1)));
        assert!(warnings.due("http://a.example", start + Duration::from_secs(61)));
    }

    #[test]
    fn the_table_stays_bounded() {
        let warnings = OriginWarnings::default();
        let start = Instant::now();
        for n in 0..TRACKED * 4 {
            let at = start + Duration::from_millis(n as u64);
            assert!(warnings.due(&format!("http://{n}.example"), at));
        }
        assert!(warnings.logged.lock().unwrap().len() <= TRACKED);
    }
}
