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
        let stamped = self.stamp(topic, event, payload);
        let frame = ByteString::from(phoenix::encode_parts(None, None, topic, event, &stamped));
        self.bytes += frame.len();
        self.ring.push_back((self.top, frame.clone()));
        while self.ring.len() > self.capacity
            || (self.bytes > self.max_bytes && self.ring.len() > 1)
        {
            if let Some((_, old)) = self.ring.pop_front() {
                self.bytes -= old.len();
                metrics::counter!("switchboard_history_evicted_total").increment(1);
            }
        }
        (frame, stamped)
    }

    fn stamp(&self, topic: &str, event: &str, payload: &Value) -> Value {
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
        envelope.insert("sequence".to_owned(), json!(self.top));
        envelope.insert("epoch".to_owned(), json!(self.epoch));
        Value::Object(envelope)
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
        if resume.epoch != self.epoch || resume.sequence > self.top {
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

    /// The page a history request gets from `log`: at most
    /// `history.max_request` messages, within the ring's own byte bound.
    pub(crate) fn page(
        &self,
        log: &TopicLog,
        query: &crate::protocol::history::HistoryQuery,
    ) -> crate::protocol::history::HistoryPage {
        log.range(query, self.max_request, self.max_bytes)
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

/// Locks a log; a poisoned lock still holds consistent data (every update
/// is a push or pop), so it is used as is.
pub(crate) fn lock(log: &Mutex<TopicLog>) -> MutexGuard<'_, TopicLog> {
    log.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_with(size: usize, messages: u64) -> TopicLog {
        let mut log = TopicLog::new("e".into(), size, usize::MAX);
        for n in 0..messages {
            log.append("t", "ev", &json!({ "n": n }));
        }
        log
    }

    fn resume(sequence: u64, epoch: &str) -> ResumeRequest {
        ResumeRequest {
            sequence,
            epoch: epoch.into(),
            strict: false,
        }
    }

    fn sequences(recovery: &Recovery) -> Vec<u64> {
        recovery
            .replay
            .iter()
            .map(|frame| {
                let value: Value = serde_json::from_str(frame).expect("json");
                value[4]["sequence"].as_u64().expect("sequence")
            })
            .collect()
    }

    #[test]
    fn sequences_rise_by_one_and_plain_payloads_are_wrapped() {
        let log = log_with(8, 3);
        let recovery = log.recover(Some(&resume(0, "e")), usize::MAX);
        assert_eq!(sequences(&recovery), vec![1, 2, 3]);
        let frame: Value = serde_json::from_str(&recovery.replay[0]).expect("json");
        assert_eq!(frame[4]["payload"], json!({"n": 0}));
        assert_eq!(frame[4]["producer"], json!(HUB_PRODUCER));
        assert_eq!(frame[4]["epoch"], json!("e"));
    }

    #[test]
    fn a_partial_envelope_is_completed_and_restamped_not_wrapped() {
        let mut log = TopicLog::new("e".into(), 4, usize::MAX);
        let partial = json!({"aspect": "reading", "payload": {"celsius": 21}});
        let frame = log.append("t", "reading", &partial);
        let value: Value = serde_json::from_str(&frame).expect("json");
        let envelope = &value[4];
        assert_eq!(envelope["payload"], json!({"celsius": 21}), "not wrapped");
        assert_eq!(envelope["producer"], json!(HUB_PRODUCER));
        assert!(envelope["produced_at"].as_u64().is_some());
        assert_eq!(envelope["channel"], json!("t"));
        assert_eq!(envelope["sequence"], json!(1));
        assert!(
            crate::protocol::content::EnvelopeKey::of(envelope).is_some(),
            "complete now"
        );
    }

    #[test]
    fn an_envelope_keeps_its_fields_and_gets_the_topic_position() {
        let mut log = TopicLog::new("e".into(), 4, usize::MAX);
        let envelope = json!({"channel": "t", "aspect": "a", "producer": "p", "sequence": 99,
                              "produced_at": 1, "payload": 5, "schema_ref": "s/1"});
        let frame = log.append("t", "a", &envelope);
        let value: Value = serde_json::from_str(&frame).expect("json");
        assert_eq!(value[4]["sequence"], json!(1));
        assert_eq!(value[4]["producer"], json!("p"));
        assert_eq!(value[4]["schema_ref"], json!("s/1"));
    }

    #[test]
    fn contiguous_history_recovers() {
        let log = log_with(8, 6);
        let recovery = log.recover(Some(&resume(3, "e")), usize::MAX);
        assert!(recovery.reply.recovered);
        assert_eq!(sequences(&recovery), vec![4, 5, 6]);
        assert_eq!(recovery.reply.sequence, 6);
        let at_top = log.recover(Some(&resume(6, "e")), usize::MAX);
        assert!(at_top.reply.recovered && at_top.replay.is_empty());
    }

    #[test]
    fn idle_histories_without_members_expire() {
        let config = HistoryConfig {
            topics: vec!["feed:*".into()],
            idle_ttl: Duration::from_secs(60),
            ..HistoryConfig::default()
        };
        let history = History::new(&config);
        let nobody = |_: &str| false;
        history.log("feed:empty", nobody);
        history.log("feed:busy", nobody);
        let now = Instant::now();
        assert_eq!(history.expire_idle(now, nobody), 0, "not idle long enough");
        let later = now + Duration::from_secs(61);
        let members = |topic: &str| topic == "feed:busy";
        assert_eq!(history.expire_idle(later, members), 1);
        assert_eq!(
            history.topic_count(),
            1,
            "the topic with members keeps its history"
        );
    }

    #[test]
    fn a_replay_is_capped_to_the_newest_and_then_not_recovered() {
        let log = log_with(100, 50);
        let capped = log.recover(Some(&resume(0, "e")), 10);
        assert!(!capped.reply.recovered, "too far behind to be recovered");
        assert_eq!(sequences(&capped), (41..=50).collect::<Vec<_>>());
        let within = log.recover(Some(&resume(40, "e")), 10);
        assert!(within.reply.recovered, "exactly the cap is recovered");
        assert_eq!(sequences(&within).len(), 10);
    }

    #[test]
    fn truncated_history_does_not_recover_but_replays_what_it_has() {
        let log = log_with(3, 10);
        let recovery = log.recover(Some(&resume(2, "e")), usize::MAX);
        assert!(!recovery.reply.recovered);
        assert_eq!(sequences(&recovery), vec![8, 9, 10]);
        // Exactly at the edge it still recovers.
        assert!(
            log.recover(Some(&resume(7, "e")), usize::MAX)
                .reply
                .recovered
        );
    }

    #[test]
    fn another_epoch_or_a_future_position_does_not_recover() {
        let log = log_with(8, 4);
        let other = log.recover(Some(&resume(2, "old")), usize::MAX);
        assert!(!other.reply.recovered && other.replay.is_empty());
        assert!(
            !log.recover(Some(&resume(9, "e")), usize::MAX)
                .reply
                .recovered
        );
    }

    #[test]
    fn eviction_prefers_topics_without_members_and_gives_a_new_epoch() {
        let config = HistoryConfig {
            topics: vec!["feed:*".into(), "exact".into()],
            size: 4,
            max_bytes: usize::MAX,
            max_topics: 2,
            max_replay: 300,
            idle_ttl: Duration::from_secs(300),
            ..HistoryConfig::default()
        };
        let history = History::new(&config);
        assert!(history.covers("feed:1") && history.covers("exact"));
        assert!(!history.covers("room:1") && !history.covers("exact:2"));
        let followed = |topic: &str| topic == "feed:1";
        let first = lock(&history.log("feed:1", followed)).epoch().to_owned();
        lock(&history.log("feed:1", followed)).append("feed:1", "e", &json!({}));
        history.log("feed:2", followed);
        // feed:1 was published to more recently than feed:2 was created, but
        // feed:2 has no members: it goes first.
        history.log("feed:3", followed);
        assert_eq!(history.topic_count(), 2);
        assert_eq!(lock(&history.log("feed:1", followed)).epoch(), first);
        assert_eq!(lock(&history.log("feed:1", followed)).top(), 1);
        let again = lock(&history.log("feed:2", followed)).epoch().to_owned();
        assert_ne!(again, first, "a recreated log starts a new epoch");
    }

    #[test]
    fn the_ring_is_bounded_in_bytes_too() {
        let mut log = TopicLog::new("e".into(), 100, 300);
        for n in 0..20 {
            log.append("t", "ev", &json!({ "n": n }));
        }
        let kept: usize = log.ring.iter().map(|(_, frame)| frame.len()).sum();
        assert!(kept <= 300, "{kept} bytes kept");
        assert_eq!(log.ring.back().map(|(sequence, _)| *sequence), Some(20));
        assert!(
            !log.recover(Some(&resume(0, "e")), usize::MAX)
                .reply
                .recovered
        );
    }
}
