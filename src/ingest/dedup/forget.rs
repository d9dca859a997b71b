//! How the duplicate filter forgets: producers silent past the retention,
//! and, at a cap, the least recently seen idle one.

use std::time::Instant;

use super::{lock, Dedup, ProducerState, Table};
use crate::sequence::ForgetProducer;

impl Dedup {
    /// Forgets the producers not seen for the retention that have nothing on
    /// their way; looks at most once per tenth of the retention.
    pub(super) fn expire(&self, table: &mut Table, now: Instant) {
        if self.retention.is_zero() || now.duration_since(table.swept_at) < self.retention / 10 {
            return;
        }
        table.swept_at = now;
        let expired: Vec<String> = table
            .producers
            .iter()
            .filter(|(_, state)| {
                state.in_flight.is_empty() && now.duration_since(state.seen_at) >= self.retention
            })
            .map(|(producer, _)| producer.clone())
            .collect();
        if expired.is_empty() {
            return;
        }
        tracing::info!(
            count = expired.len(),
            "dedup forgot producers past their retention"
        );
        lock(&self.stats).expired += expired.len() as u64;
        metrics::counter!("switchboard_ingest_dedup_expired_total").increment(expired.len() as u64);
        for producer in expired {
            table.forget(&producer);
            if let Some(snapshotter) = &self.snapshotter {
                snapshotter.do_send(ForgetProducer { producer });
            }
        }
    }

    /// Forgets the least recently seen producer with nothing on its way,
    /// among `principal`'s own (or all, at the table's cap); answers whether
    /// there was one.
    pub(super) fn evict_idle(&self, table: &mut Table, principal: Option<&str>) -> bool {
        fn idle<'a>((producer, state): (&'a String, &ProducerState)) -> Option<(u64, &'a String)> {
            state
                .in_flight
                .is_empty()
                .then_some((state.last_seen, producer))
        }
        let oldest = match principal {
            Some(principal) => table
                .per_principal
                .get(principal)
                .into_iter()
                .flatten()
                .filter_map(|producer| table.producers.get_key_value(producer))
                .filter_map(idle)
                .min(),
            None => table.producers.iter().filter_map(idle).min(),
        }
        .map(|(_, producer)| producer.clone());
        let Some(producer) = oldest else {
            return false;
        };
        table.forget(&producer);
        lock(&self.stats).evicted += 1;
        metrics::counter!("switchboard_ingest_dedup_evicted_total").increment(1);
        tracing::debug!(%producer, "dedup forgot an idle producer at a cap");
        if let Some(snapshotter) = &self.snapshotter {
            snapshotter.do_send(ForgetProducer { producer });
        }
        true
    }
}
