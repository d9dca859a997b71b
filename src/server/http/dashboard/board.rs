//! One [`Board`] per hub, shared by every worker of its server: the snapshot
//! taken at most once per [`INTERVAL`] and kept as JSON, and what each
//! viewer's request gets of it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::snapshot::{Reader, Served};
use crate::server::service::HubService;

/// A snapshot is taken at most this often; the page polls at this pace.
pub(super) const INTERVAL: Duration = Duration::from_secs(1);
/// Most bodies sent per snapshot (so per interval), whatever the number of
/// viewers; past it a viewer gets 429 and comes back after `Retry-After`.
pub(super) const MAX_BODIES: usize = 64;

/// What a viewer's request gets.
pub(super) enum Answer {
    /// The snapshot's JSON, under its tag.
    Body { etag: String, body: Bytes },
    /// The viewer has the current snapshot already (it sent its tag).
    NotModified { etag: String },
    /// This interval's bodies are spent.
    Busy,
}

/// The dashboard of one hub.
pub(crate) struct Board {
    state: Mutex<State>,
    /// Part of every tag, so a restarted hub's tags never match old ones.
    boot: u32,
    snapshots: AtomicU64,
    bodies: AtomicU64,
    bytes: AtomicU64,
    not_modified: AtomicU64,
    busy: AtomicU64,
}

#[derive(Default)]
struct State {
    reader: Reader,
    current: Option<Current>,
}

struct Current {
    taken: Instant,
    etag: String,
    body: Bytes,
    /// Bodies sent of it.
    sent: usize,
}

impl Board {
    /// The board of `service`'s hub (one per hub, kept in its state, so
    /// every worker shares it), made on first use.
    pub(super) fn of(service: &HubService) -> Arc<Board> {
        service
            .dashboard_board()
            .get_or_init(|| {
                Arc::new(Board {
                    state: Mutex::default(),
                    boot: fastrand::u32(..),
                    snapshots: AtomicU64::new(0),
                    bodies: AtomicU64::new(0),
                    bytes: AtomicU64::new(0),
                    not_modified: AtomicU64::new(0),
                    busy: AtomicU64::new(0),
                })
            })
            .clone()
    }

    /// Answers a viewer that has the snapshots tagged in `seen` (an
    /// `If-None-Match` list),
    /// taking a new snapshot first when the last is an interval old.
    pub(super) fn answer(&self, service: &HubService, seen: Option<&str>) -> Answer {
        let mut state = lock(&self.state);
        let state = &mut *state;
        if state
            .current
            .as_ref()
            .is_none_or(|current| current.taken.elapsed() >= INTERVAL)
        {
            let taken = Instant::now();
            let number = self.snapshots.fetch_add(1, Ordering::Relaxed) + 1;
            metrics::counter!("switchboard_dashboard_snapshots_total").increment(1);
            let body = state.reader.snapshot(service, number, self.served());
            state.current = Some(Current {
                taken,
                etag: format!("\"{:08x}-{number}\"", self.boot),
                body: Bytes::from(body),
                sent: 0,
            });
        }
        let Some(current) = state.current.as_mut() else {
            return Answer::Busy;
        };
        if seen.is_some_and(|tags| super::matches(tags, &current.etag)) {
            self.count(&self.not_modified, "not_modified");
            return Answer::NotModified {
                etag: current.etag.clone(),
            };
        }
        if current.sent >= MAX_BODIES {
            self.count(&self.busy, "busy");
            return Answer::Busy;
        }
        current.sent += 1;
        self.count(&self.bodies, "body");
        let bytes = current.body.len() as u64;
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        metrics::counter!("switchboard_dashboard_bytes_total").increment(bytes);
        Answer::Body {
            etag: current.etag.clone(),
            body: current.body.clone(),
        }
    }

    fn count(&self, counter: &AtomicU64, answer: &'static str) {
        counter.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("switchboard_dashboard_responses_total", "answer" => answer).increment(1);
    }

    fn served(&self) -> Served {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Served {
            snapshots: load(&self.snapshots),
            bodies: load(&self.bodies),
            bytes: load(&self.bytes),
            not_modified: load(&self.not_modified),
            busy: load(&self.busy),
            interval_ms: INTERVAL.as_millis() as u64,
            max_bodies_per_interval: MAX_BODIES,
            max_body_bytes: super::snapshot::MAX_BODY_BYTES,
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
