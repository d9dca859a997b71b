//! Hub history for recoverable topics (SEQ-1, SEQ-3..SEQ-7).
//!
//! Every broadcast on a recoverable topic is sequenced by its [`TopicLog`]:
//! `sequence` rises by exactly 1 within the log's epoch, and the encoded
//! frame is kept in a bounded ring. A join that carries
//! `{"resume": {"sequence": n, "epoch": e}}` gets the frames after `n`
//! replayed, and `recovered: true` only when they run contiguously from
//! `n + 1` to the top. The log's lock is held while a broadcast is stamped and
//! queued to every member, and while a join queues its reply and replay and
//! becomes a member: so a joiner sees reply, replay, then live frames, with
//! no hole and no duplicate between them.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytestring::ByteString;
use dashmap::DashMap;
use serde_json::{json, Map, Value};

use crate::config::HistoryConfig;
use crate::protocol::clock::unix_millis;
use crate::protocol::content::envelope_body;
use crate::protocol::phoenix;
use crate::protocol::resume::{ResumeReply, ResumeRequest};

mod cluster_log;
mod range;

/// Producer named on envelopes the hub wraps around plain payloads.
pub(crate) const HUB_PRODUCER: &str = "hub";

/// What a join on a recoverable topic gets.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Recovery {
    /// What the join reply says: recovered or not, the epoch, the top.
    pub(crate) reply: ResumeReply,
    /// Frames to send, in order, right after the join reply.
    pub(crate) replay: Vec<ByteString>,
}

/// One recoverable topic: its epoch, top sequence and recent frames.
pub(crate) struct TopicLog {
    epoch: String,
    top: u64,
    ring: VecDeque<(u64, ByteString)>,
    bytes: usize,
    capacity: usize,
    max_bytes: usize,
    last_append: u64,
    /// When it was last published to (or made).
    last_used: Instant,
    /// A cluster node's copy of a topic that may not have had a message
    /// yet: a joiner that saw nothing (`""`, 0) resumes into whatever epoch
    /// began since.
    lenient: bool,
}

impl TopicLog {
    fn new(epoch: String, capacity: usize, max_bytes: usize) -> TopicLog {
        TopicLog {
            epoch,
            top: 0,
            ring: VecDeque::with_capacity(capacity.min(64)),
            bytes: 0,
            capacity,
            max_bytes,
            last_append: 0,
            last_used: Instant::now(),
            lenient: false,
        }
    }

    /// Stamps the next sequence onto `payload`, encodes the broadcast frame
    /// once and keeps it. A content envelope is restamped in place; any other
    /// payload is wrapped in one (`aspect` = the event, `producer` = `hub`).
    #[cfg(test)]
    pub(crate) fn append(&mut self, topic: &str, event: &str, payload: &Value) -> ByteString {
        self.append_stamped(topic, event, payload).0
    }

    /// [`append`](Self::append), answering the stamped payload too (and
    /// its sequence is the log's new top).
    pub(crate) fn append_stamped(
        &mut self,
        topic: &str,
        event: &str,
        payload: &Value,
    ) -> (ByteString, Value) {
        self.top += 1;
        let stamped = stamp(topic, event, payload, self.top, &self.epoch);
        let frame = ByteString::from(phoenix::encode_parts(None, None, topic, event, &stamped));
        self.keep(self.top, frame.clone());
        (frame, stamped)
    }

    /// Keeps `frame` as sequence `sequence` (the new top), then evicts the
    /// oldest past the ring's count and byte bounds.
    fn keep(&mut self, sequence: u64, frame: ByteString) {
        self.top = sequence;
        self.bytes += frame.len();
        self.ring.push_back((sequence, frame));
        while self.ring.len() > self.capacity
            || (self.bytes > self.max_bytes && self.ring.len() > 1)
        {
            if let Some((_, old)) = self.ring.pop_front() {
                self.bytes -= old.len();
                metrics::counter!("switchboard_history_evicted_total").increment(1);
            }
        }
    }

    /// What a join resuming from `resume` gets (SEQ-4, SEQ-5): at most
    /// `max_replay` messages, the newest (a joiner further behind is not
    /// recovered).
    pub(crate) fn recover(&self, resume: Option<&ResumeRequest>, max_replay: usize) -> Recovery {
        let answer = |recovered, replay| Recovery {
            reply: ResumeReply {
                recovered,
                epoch: self.epoch.clone(),
                sequence: self.top,
            },
            replay,
        };
        let Some(resume) = resume else {
            // A first join starts live from the top.
            return answer(false, Vec::new());
        };
        let saw_nothing = self.lenient && resume.epoch.is_empty() && resume.sequence == 0;
        if (resume.epoch != self.epoch && !saw_nothing) || resume.sequence > self.top {
            // Nothing is stitched across epochs.
            return answer(false, Vec::new());
        }
        let missed = self
            .ring
            .iter()
            .filter(|(sequence, _)| *sequence > resume.sequence)
            .count();
        let replay: Vec<ByteString> = self
            .ring
            .iter()
            .filter(|(sequence, _)| *sequence > resume.sequence)
            .skip(missed.saturating_sub(max_replay))
            .map(|(_, frame)| frame.clone())
            .collect();
        let oldest_needed = resume.sequence + 1;
        let contiguous = resume.sequence == self.top
            || self
                .ring
                .front()
                .is_some_and(|(oldest, _)| *oldest <= oldest_needed);
        if contiguous && missed > max_replay {
            metrics::counter!("switchboard_history_replays_capped_total").increment(1);
        }
        answer(contiguous && missed <= max_replay, replay)
    }

    /// The log's epoch.
    #[cfg(test)]
    pub(crate) fn epoch(&self) -> &str {
        &self.epoch
    }

    /// The last sequence broadcast (0 before the first).
    pub(crate) fn top(&self) -> u64 {
        self.top
    }
}

/// The histories of every recoverable topic of one hub.
pub(crate) struct History {
    epoch: String,
    patterns: Vec<String>,
    size: usize,
    max_bytes: usize,
    max_topics: usize,
    max_replay: usize,
    max_request: usize,
    idle_ttl: Duration,
    last_sweep: Mutex<Instant>,
    logs: DashMap<String, Arc<Mutex<TopicLog>>>,
    generation: AtomicU64,
    clock: AtomicU64,
}

impl History {
    /// Most messages one resume replays.
    pub(crate) fn max_replay(&self) -> usize {
        self.max_replay
    }

    /// What a history request gets from `log`: at most
    /// `history.max_request` messages, within the ring's own byte bound.
    pub(crate) fn select(
        &self,
        log: &TopicLog,
        query: &crate::protocol::history::HistoryQuery,
    ) -> range::Selected {
        log.select(query, self.max_request, self.max_bytes)
    }

    /// The log of `topic` if it has one (never made here).
    pub(crate) fn existing(&self, topic: &str) -> Option<Arc<Mutex<TopicLog>>> {
        self.logs.get(topic).map(|log| log.clone())
    }

    /// Histories for the topics `config` names, in an epoch chosen now.
    pub(crate) fn new(config: &HistoryConfig) -> History {
        History {
            epoch: format!("{:x}{:04x}", unix_millis(), fastrand::u16(..)),
            patterns: config.topics.clone(),
            size: config.size.max(1),
            max_bytes: config.max_bytes.max(1),
            max_topics: config.max_topics.max(1),
            max_replay: config.max_replay,
            max_request: config.max_request.max(1),
            idle_ttl: config.idle_ttl,
            last_sweep: Mutex::new(Instant::now()),
            logs: DashMap::new(),
            generation: AtomicU64::new(0),
            clock: AtomicU64::new(0),
        }
    }

    /// Whether `topic` is recoverable.
    pub(crate) fn covers(&self, topic: &str) -> bool {
        self.patterns
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => topic.starts_with(prefix),
                None => pattern == topic,
            })
    }

    /// The log of `topic`, created on first use. Past `max_topics` the least
    /// recently published log is dropped, preferring one whose topic has no
    /// members (`has_members`); a log created again gets a new epoch, so
    /// resumes against the dropped one report not recovered, and members
    /// still following it rejoin and are told of the gap.
    pub(crate) fn log(
        &self,
        topic: &str,
        has_members: impl Fn(&str) -> bool,
    ) -> Arc<Mutex<TopicLog>> {
        if let Some(log) = self.logs.get(topic) {
            return log.clone();
        }
        self.expire_idle_now(&has_members);
        if self.logs.len() >= self.max_topics {
            self.evict_one(has_members);
        }
        self.logs
            .entry(topic.to_owned())
            .or_insert_with(|| {
                let generation = self.generation.fetch_add(1, Ordering::Relaxed);
                let epoch = format!("{}-{generation}", self.epoch);
                Arc::new(Mutex::new(TopicLog::new(epoch, self.size, self.max_bytes)))
            })
            .clone()
    }

    /// Marks a log as just published to (for eviction order).
    pub(crate) fn touch(&self, log: &mut TopicLog) {
        log.last_append = self.clock.fetch_add(1, Ordering::Relaxed);
        log.last_used = Instant::now();
    }

    /// Drops the histories of topics without members not published to for
    /// `history.idle_ttl` before `now`; answers how many went. A log busy
    /// right now (locked) is kept.
    pub(crate) fn expire_idle(&self, now: Instant, has_members: impl Fn(&str) -> bool) -> usize {
        let expired: Vec<String> =
            self.logs
                .iter()
                .filter(|entry| !has_members(entry.key()))
                .filter(|entry| {
                    entry.value().try_lock().is_ok_and(|log| {
                        now.saturating_duration_since(log.last_used) >= self.idle_ttl
                    })
                })
                .map(|entry| entry.key().clone())
                .collect();
        for topic in &expired {
            self.logs.remove(topic);
            metrics::counter!("switchboard_history_topics_expired_total").increment(1);
            tracing::debug!(%topic, "history of an idle topic without members dropped");
        }
        expired.len()
    }

    /// [`expire_idle`](Self::expire_idle) now, at most once per tenth of
    /// `idle_ttl` (so a busy hub does not scan its histories per message).
    fn expire_idle_now(&self, has_members: impl Fn(&str) -> bool) {
        if self.idle_ttl.is_zero() {
            return; // `idle_ttl = "0s"`: never expire
        }
        let now = Instant::now();
        let due = {
            let mut last = self.last_sweep.lock().unwrap_or_else(|p| p.into_inner());
            if now.saturating_duration_since(*last) < self.idle_ttl / 10 {
                false
            } else {
                *last = now;
                true
            }
        };
        if due {
            self.expire_idle(now, has_members);
        }
    }

    fn evict_one(&self, has_members: impl Fn(&str) -> bool) {
        // A log busy right now (locked) is being published to: not a candidate.
        let candidates: Vec<(bool, u64, String)> = self
            .logs
            .iter()
            .filter_map(|entry| {
                let last = entry.value().try_lock().ok()?.last_append;
                Some((has_members(entry.key()), last, entry.key().clone()))
            })
            .collect();
        let oldest = candidates
            .into_iter()
            .min_by_key(|(members, last, _)| (*members, *last))
            .map(|(_, _, topic)| topic);
        if let Some(topic) = oldest {
            self.logs.remove(&topic);
            metrics::counter!("switchboard_history_topics_evicted_total").increment(1);
            tracing::warn!(%topic, "history dropped: history.max_topics reached");
        }
    }

    /// Topics with a history now.
    #[cfg(test)]
    pub(crate) fn topic_count(&self) -> usize {
        self.logs.len()
    }
}

/// `payload` as message `sequence` of `topic` in `epoch`: a content
/// envelope is completed and restamped in place; any other payload is
/// wrapped in one (`aspect` = the event, `producer` = `hub`).
pub(crate) fn stamp(
    topic: &str,
    event: &str,
    payload: &Value,
    sequence: u64,
    epoch: &str,
) -> Value {
    let mut envelope = if let Some(fields) = envelope_body(payload) {
        // A content envelope, complete or not: completed, then restamped.
        let mut fields = fields.clone();
        fields
            .entry("producer")
            .or_insert_with(|| json!(HUB_PRODUCER));
        fields
            .entry("produced_at")
            .or_insert_with(|| json!(unix_millis()));
        fields
    } else {
        let mut wrapped = Map::new();
        wrapped.insert("aspect".to_owned(), json!(event));
        wrapped.insert("produced_at".to_owned(), json!(unix_millis()));
        wrapped.insert("producer".to_owned(), json!(HUB_PRODUCER));
        wrapped.insert("payload".to_owned(), payload.clone());
        wrapped
    };
    envelope.insert("channel".to_owned(), json!(topic));
    envelope.insert("sequence".to_owned(), json!(sequence));
    envelope.insert("epoch".to_owned(), json!(epoch));
    Value::Object(envelope)
}

/// Locks a log; a poisoned lock still holds consistent data (every update
/// is a push or pop), so it is used as is.
pub(crate) fn lock(log: &Mutex<TopicLog>) -> MutexGuard<'_, TopicLog> {
    log.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests;
