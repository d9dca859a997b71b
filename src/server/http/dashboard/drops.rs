//! Every drop and refusal counter the hub keeps, in one fixed order: what
//! the page lists under "drops and refusals" (the queue's items, sockets
//! closed, frames rejected, upgrades refused, cluster messages).

use crate::server::service::HubService;
use crate::server::stats::{CloseCause, FrameProblem, Refusal};

/// What each counter counts, (group, reason), in the order of [`totals`].
pub(super) fn names() -> Vec<(&'static str, &'static str)> {
    let mut names = vec![
        ("ingest", "drop_oldest"),
        ("ingest", "drop_newest"),
        ("ingest", "rejected"),
        ("ingest", "abandoned"),
    ];
    names.extend(CLOSES.map(|c| ("sockets_closed", c.label())));
    names.extend(PROBLEMS.map(|p| ("frames_rejected", p.label())));
    names.extend(REFUSALS.map(|r| ("upgrades_refused", r.label())));
    names.push(("cluster", "dropped"));
    names
}

/// Each counter's total now, in the order of [`names`]; `cluster` is the
/// cluster's own count of messages dropped.
pub(super) fn totals(service: &HubService, cluster: u64) -> Vec<u64> {
    use std::sync::atomic::Ordering::Relaxed;
    let ingest = service.ingest_stats();
    let stats = service.stats();
    let mut totals = vec![
        ingest.dropped_oldest.load(Relaxed),
        ingest.dropped_newest.load(Relaxed),
        ingest.rejected.load(Relaxed),
        ingest.abandoned.load(Relaxed),
    ];
    totals.extend(CLOSES.map(|c| stats.closes(c)));
    totals.extend(PROBLEMS.map(|p| stats.problems(p)));
    totals.extend(REFUSALS.map(|r| stats.refusals(r)));
    totals.push(cluster);
    totals
}

const CLOSES: [CloseCause; 8] = [
    CloseCause::SlowConsumer,
    CloseCause::FrameTooLarge,
    CloseCause::Idle,
    CloseCause::BinaryFrame,
    CloseCause::InvalidText,
    CloseCause::ProtocolError,
    CloseCause::Shutdown,
    CloseCause::RateLimited,
];

const PROBLEMS: [FrameProblem; 9] = [
    FrameProblem::InvalidJson,
    FrameProblem::Malformed,
    FrameProblem::InvalidPayload,
    FrameProblem::StaleJoinRef,
    FrameProblem::UnmatchedTopic,
    FrameProblem::TooManyChannels,
    FrameProblem::HandlerFailed,
    FrameProblem::ReservedEvent,
    FrameProblem::RateLimited,
];

const REFUSALS: [Refusal; 7] = [
    Refusal::BadVersion,
    Refusal::Unauthorized,
    Refusal::Origin,
    Refusal::Capacity,
    Refusal::QueryTooLong,
    Refusal::HeadersTooLarge,
    Refusal::PendingUpgrades,
];

#[cfg(test)]
mod tests {
    #[actix_web::test]
    async fn every_counter_has_a_name() {
        let hub = crate::server::HubService::builder(&crate::config::Config::default())
            .build()
            .expect("a hub");
        let names = super::names();
        assert_eq!(names.len(), super::totals(&hub, 0).len());
        assert_eq!(names.len(), 4 + 8 + 9 + 7 + 1);
    }
}
