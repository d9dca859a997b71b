//! The position of one recoverable topic, and what to do with each message
//! that arrives on it (SEQ-2..SEQ-8). Pure: no actor, no clock, no I/O.
//!
//! The hub sequences recoverable topics: every push carries `sequence` and
//! `epoch` in its content envelope. [`TopicRecovery`] delivers each sequence
//! once and in order, drops duplicates, holds early arrivals while a replay
//! is still filling the hole before them, and reports a [`Step::Gap`] where
//! the hub could not fill one.
//!
//! Its state is two facts that change apart: where the topic stands
//! ([`Track`]: the position and the [`Phase`] of what follows it, absent
//! until there is a position) and where its joins stand ([`Join`]).

use std::collections::{BTreeMap, VecDeque};

use serde_json::Value;

use crate::protocol::phoenix::Frame;
use crate::protocol::resume::{Position, ResumeReply, ResumeRequest};

/// Most early messages held per topic while a hole is being filled; past it
/// the hole is given up on (a `Gap`) and the held messages are delivered.
pub(crate) const MAX_HELD: usize = 1024;

/// What the subscription should do, in order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    /// Hand the frame to the application; the position is now its sequence.
    Deliver(Frame),
    /// Messages `expected..got` will never arrive.
    Gap {
        /// The first missing sequence.
        expected: u64,
        /// The sequence delivered next (after an epoch change: the new
        /// epoch's next sequence).
        got: u64,
    },
    /// A live hole: rejoin with the current position so the hub replays it.
    Recover,
}

/// How a join reply left the topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Joined {
    /// First join: delivery starts live from the hub's top.
    Fresh,
    /// Everything after the position will be replayed (SEQ-5).
    Recovered,
    /// The hub could not replay everything (history truncated or epoch changed).
    Unrecovered,
    /// The reply carried no position: the topic is not recoverable on this hub.
    NotSequenced,
}

/// Counters of one topic, for metrics and reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RecoveryStats {
    /// Messages delivered.
    pub delivered: u64,
    /// Duplicates dropped (sequence at or below the position).
    pub duplicates: u64,
    /// Holes reported as gaps.
    pub gaps: u64,
    /// Messages of another epoch dropped.
    pub stale_epoch: u64,
    /// Messages not held while a join reply was awaited (the hold was full).
    pub overflow: u64,
}

/// Position and hole-filling state of one recoverable topic.
#[derive(Debug, Clone)]
pub(crate) struct TopicRecovery {
    strict: bool,
    /// `None` until a join reply or a first message gives the topic a position.
    track: Option<Track>,
    join: Join,
    held: BTreeMap<u64, Frame>,
    retired: VecDeque<String>,
    stats: RecoveryStats,
}

/// The position of a topic that has one, and what is expected after it.
#[derive(Debug, Clone)]
struct Track {
    /// The last sequence delivered.
    delivered: u64,
    /// Its epoch. `None` only for a position restored without one: it
    /// resumes nothing, and every epoch the hub sends differs from it.
    epoch: Option<String>,
    phase: Phase,
}

/// What the last join reply said about the messages after the position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing is being replayed: a hole is live, and a rejoin fills it.
    Live,
    /// The hub is replaying up to `top`, above the position: messages past
    /// a hole wait for the replay to reach them.
    Replaying { top: u64 },
    /// The hub's history resumes past a hole (it was truncated): the first
    /// message after the position closes it, as a gap unless it is the next
    /// one; the replay up to `top`, when above the position, goes on from there.
    PastHole { top: Option<u64> },
}

/// Where the topic's joins stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Join {
    /// No join is out and no rejoin asked for: messages are judged as they come.
    Settled,
    /// A rejoin was asked for (a live hole, a new epoch) and no reply with a
    /// position has come since: it is not asked for again.
    RejoinAsked,
    /// A join is out: messages are held until its reply says where the
    /// replay starts. A reply without a position leaves a rejoin that was
    /// asked for (`rejoin_asked`) asked for.
    Sent { rejoin_asked: bool },
}

/// Epochs remembered as past, so their late messages are dropped rather
/// than taken for a new epoch.
const RETIRED_EPOCHS: usize = 4;

impl TopicRecovery {
    /// A topic with no position yet; `strict` refuses to start unrecovered.
    pub(crate) fn new(strict: bool) -> TopicRecovery {
        TopicRecovery {
            strict,
            track: None,
            join: Join::Settled,
            held: BTreeMap::new(),
            retired: VecDeque::new(),
            stats: RecoveryStats::default(),
        }
    }

    /// A topic resuming from a stored position.
    pub(crate) fn restored(strict: bool, delivered: u64, epoch: Option<String>) -> TopicRecovery {
        let track = Track {
            delivered,
            epoch,
            phase: Phase::Live,
        };
        TopicRecovery {
            track: Some(track),
            ..TopicRecovery::new(strict)
        }
    }

    /// The last sequence delivered and its epoch.
    pub(crate) fn position(&self) -> (u64, Option<&str>) {
        self.track
            .as_ref()
            .map_or((0, None), |track| (track.delivered, track.epoch.as_deref()))
    }

    /// Counters so far.
    #[cfg(test)]
    pub(crate) fn stats(&self) -> RecoveryStats {
        self.stats
    }

    /// Adds `resume` to join params when there is a position to resume from.
    pub(crate) fn join_params(&self, params: &Value) -> Value {
        let Some(Track {
            delivered,
            epoch: Some(epoch),
            ..
        }) = &self.track
        else {
            return params.clone();
        };
        let resume = ResumeRequest {
            sequence: *delivered,
            epoch: epoch.clone(),
            strict: self.strict,
        };
        resume.add_to(params)
    }

    /// A join was sent: messages are held until its reply says where the
    /// replay starts (pushes can overtake the reply on their way here).
    pub(crate) fn joining(&mut self) {
        self.join = self.join.sent();
    }

    /// Applies an ok join reply's `recovered`, `epoch` and `sequence`, then
    /// the messages held while it was awaited. Answers how the topic goes
    /// on and what to do, in order.
    pub(crate) fn on_join_reply(&mut self, response: &Value) -> (Joined, Vec<Step>) {
        let (joined, gap) = self.apply_reply(response);
        self.join = self.join.answered(joined != Joined::NotSequenced);
        let mut steps: Vec<Step> = gap.into_iter().collect();
        let held = std::mem::take(&mut self.held);
        for (_, frame) in held {
            steps.extend(self.on_message(frame));
        }
        (joined, steps)
    }

    fn apply_reply(&mut self, response: &Value) -> (Joined, Option<Step>) {
        let Some(ResumeReply {
            recovered,
            epoch,
            sequence: top,
        }) = ResumeReply::read(response)
        else {
            return (Joined::NotSequenced, None);
        };
        let Some(track) = self.track.as_mut() else {
            self.track = Some(Track::live(top, epoch));
            return (Joined::Fresh, None);
        };
        track.adopt_first_epoch(&epoch);
        // Each reply says afresh what follows the position: a hole an
        // earlier reply expected is not carried over.
        if recovered {
            track.phase = Phase::Replaying { top }.at(track.delivered);
            return (Joined::Recovered, None);
        }
        if track.epoch.as_deref() != Some(epoch.as_str()) {
            // Nothing is stitched across epochs (SEQ-4): start at the new
            // top, or at the first message of the new epoch already held.
            let first_held = self
                .held
                .iter()
                .find(|(_, frame)| frame_epoch(frame) == Some(epoch.as_str()))
                .map(|(sequence, _)| *sequence);
            let start = first_held.map_or(top, |first| first.saturating_sub(1).min(top));
            let gap = Step::Gap {
                expected: track.next(),
                got: start.saturating_add(1),
            };
            if let Some(old) = track.epoch.replace(epoch) {
                if self.retired.len() == RETIRED_EPOCHS {
                    self.retired.pop_front();
                }
                self.retired.push_back(old);
            }
            track.delivered = start;
            track.phase = Phase::Live;
            self.stats.gaps += 1;
            return (Joined::Unrecovered, Some(gap));
        }
        // Same epoch, history truncated: the replay starts past a hole. (A
        // top below the position cannot come from one hub epoch; the
        // position is kept, never lowered, and what follows is judged by it.)
        track.phase = Phase::PastHole {
            top: (top > track.delivered).then_some(top),
        };
        (Joined::Unrecovered, None)
    }

    /// What to do with one message on the topic.
    pub(crate) fn on_message(&mut self, frame: Frame) -> Vec<Step> {
        let Some(Position { sequence, epoch }) = Position::of(&frame.payload) else {
            self.stats.delivered += 1;
            return vec![Step::Deliver(frame)];
        };
        let epoch = epoch.to_owned();
        if let Join::Sent { .. } = self.join {
            if self.held.len() < MAX_HELD {
                self.held.insert(sequence, frame);
            } else {
                // A live hole once the reply is in: recovered by a rejoin.
                self.stats.overflow += 1;
            }
            return Vec::new();
        }
        // A message before any join reply: adopt its position.
        let track = self
            .track
            .get_or_insert_with(|| Track::live(sequence.saturating_sub(1), epoch.clone()));
        if self.retired.contains(&epoch) {
            self.stats.stale_epoch += 1;
            return Vec::new();
        }
        track.adopt_first_epoch(&epoch);
        if track.epoch.as_deref() != Some(epoch.as_str()) {
            // The hub's history for this topic restarted under us: hold the
            // message and rejoin, which announces the change as a gap.
            if self.held.len() < MAX_HELD {
                self.held.insert(sequence, frame);
            }
            return self.join.ask_rejoin().into_iter().collect();
        }
        if sequence <= track.delivered {
            self.stats.duplicates += 1;
            return Vec::new();
        }
        let mut steps = Vec::new();
        if sequence > track.next() {
            if let Phase::PastHole { .. } = track.phase {
                track.report_gap(sequence, &mut self.stats, &mut steps);
            } else {
                self.held.insert(sequence, frame);
                if self.held.len() > MAX_HELD {
                    track.give_up_hole(&mut self.held, &mut self.stats, &mut steps);
                } else if track.phase == Phase::Live {
                    // A live hole (SEQ-8): ask the hub to replay it.
                    steps.extend(self.join.ask_rejoin());
                }
                return steps;
            }
        }
        track.deliver(frame, &mut self.stats, &mut steps);
        track.drain_held(&mut self.held, &mut self.stats, &mut steps);
        steps
    }
}

impl Track {
    /// A topic joined before its first message (a cluster node answers
    /// epoch `""` then) takes the first epoch the hub names.
    fn adopt_first_epoch(&mut self, epoch: &str) {
        if self.delivered == 0 && self.epoch.as_deref() == Some("") {
            self.epoch = Some(epoch.to_owned());
        }
    }

    /// A position taken from the hub, nothing replayed after it.
    fn live(delivered: u64, epoch: String) -> Track {
        Track {
            delivered,
            epoch: Some(epoch),
            phase: Phase::Live,
        }
    }

    /// The sequence that is delivered next.
    fn next(&self) -> u64 {
        self.delivered.saturating_add(1)
    }

    /// The hub will not fill what is missing: report it and carry on.
    fn give_up_hole(
        &mut self,
        held: &mut BTreeMap<u64, Frame>,
        stats: &mut RecoveryStats,
        steps: &mut Vec<Step>,
    ) {
        if let Some(&first) = held.keys().next() {
            self.report_gap(first, stats, steps);
            self.drain_held(held, stats, steps);
        }
    }

    fn report_gap(&mut self, got: u64, stats: &mut RecoveryStats, steps: &mut Vec<Step>) {
        stats.gaps += 1;
        steps.push(Step::Gap {
            expected: self.next(),
            got,
        });
        self.delivered = got.saturating_sub(1);
        self.phase = self.phase.at(self.delivered);
    }

    /// Delivers the next sequence; it closes a hole that was expected, and
    /// ends a replay that reached its top.
    fn deliver(&mut self, frame: Frame, stats: &mut RecoveryStats, steps: &mut Vec<Step>) {
        self.delivered = self.next();
        stats.delivered += 1;
        self.phase = self.phase.at(self.delivered);
        steps.push(Step::Deliver(frame));
    }

    fn drain_held(
        &mut self,
        held: &mut BTreeMap<u64, Frame>,
        stats: &mut RecoveryStats,
        steps: &mut Vec<Step>,
    ) {
        while let Some(entry) = held.first_entry() {
            if *entry.key() <= self.delivered {
                entry.remove();
                stats.duplicates += 1;
            } else if *entry.key() == self.next() {
                let frame = entry.remove();
                self.deliver(frame, stats, steps);
            } else {
                break;
            }
        }
    }
}

impl Phase {
    /// What follows a position at `delivered` once any expected hole is
    /// behind it: the replay, while its top is still above.
    fn at(self, delivered: u64) -> Phase {
        match self {
            Phase::Replaying { top } | Phase::PastHole { top: Some(top) } if top > delivered => {
                Phase::Replaying { top }
            }
            _ => Phase::Live,
        }
    }
}

impl Join {
    /// A join went out; one already out stays out.
    fn sent(self) -> Join {
        let rejoin_asked = matches!(self, Join::RejoinAsked | Join::Sent { rejoin_asked: true });
        Join::Sent { rejoin_asked }
    }

    /// Its reply came, `sequenced` when it carried a position.
    fn answered(self, sequenced: bool) -> Join {
        match self {
            Join::RejoinAsked | Join::Sent { rejoin_asked: true } if !sequenced => {
                Join::RejoinAsked
            }
            _ => Join::Settled,
        }
    }

    /// A rejoin is wanted: [`Step::Recover`], unless one is asked for or out.
    fn ask_rejoin(&mut self) -> Option<Step> {
        if *self != Join::Settled {
            return None;
        }
        *self = Join::RejoinAsked;
        Some(Step::Recover)
    }
}

/// The `epoch` a hub stamped on a push, if any.
fn frame_epoch(frame: &Frame) -> Option<&str> {
    Position::of(&frame.payload).map(|position| position.epoch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(sequence: u64, epoch: &str) -> Frame {
        Frame {
            join_ref: None,
            msg_ref: None,
            topic: "feed:1".into(),
            event: "news".into(),
            payload: json!({ "sequence": sequence, "epoch": epoch, "payload": {} }).into(),
        }
    }

    fn delivered(steps: &[Step]) -> Vec<u64> {
        steps
            .iter()
            .filter_map(|step| match step {
                Step::Deliver(frame) => frame.payload.to_value()["sequence"].as_u64(),
                _ => None,
            })
            .collect()
    }

    fn reply(recovered: bool, epoch: &str, top: u64) -> Value {
        json!({ "recovered": recovered, "epoch": epoch, "sequence": top })
    }

    fn feed(topic: &mut TopicRecovery, sequences: &[u64], epoch: &str) -> Vec<Step> {
        sequences
            .iter()
            .flat_map(|&sequence| topic.on_message(message(sequence, epoch)))
            .collect()
    }

    #[test]
    fn seq_1_a_fresh_join_starts_at_the_top_and_delivers_in_order() {
        let mut topic = TopicRecovery::new(false);
        assert_eq!(topic.on_join_reply(&reply(false, "e", 5)).0, Joined::Fresh);
        let steps = feed(&mut topic, &[6, 7, 8], "e");
        assert_eq!(delivered(&steps), vec![6, 7, 8]);
        assert_eq!(topic.position(), (8, Some("e")));
    }

    #[test]
    fn a_topic_joined_before_its_first_message_takes_the_first_epoch_named() {
        // A cluster node answers epoch "" for a topic nothing was sent on.
        let mut topic = TopicRecovery::new(false);
        assert_eq!(topic.on_join_reply(&reply(false, "", 0)).0, Joined::Fresh);
        let steps = feed(&mut topic, &[1, 2], "e");
        assert_eq!(delivered(&steps), vec![1, 2]);
        assert_eq!(topic.position(), (2, Some("e")));
        // Resumed from ("", 0) and recovered into the epoch begun since.
        let mut topic = TopicRecovery::restored(false, 0, Some(String::new()));
        topic.joining();
        assert_eq!(
            topic.on_join_reply(&reply(true, "e", 2)).0,
            Joined::Recovered
        );
        assert_eq!(delivered(&feed(&mut topic, &[1, 2], "e")), vec![1, 2]);
        assert_eq!(topic.position(), (2, Some("e")));
    }

    #[test]
    fn seq_2_the_position_never_moves_backwards() {
        let mut topic = TopicRecovery::restored(false, 10, Some("e".into()));
        assert!(feed(&mut topic, &[3, 10], "e").is_empty());
        assert_eq!(topic.position().0, 10);
        assert_eq!(topic.stats().duplicates, 2);
    }

    #[test]
    fn seq_3_a_stored_position_goes_into_the_join() {
        let topic = TopicRecovery::restored(true, 41, Some("e".into()));
        let params = topic.join_params(&json!({"user": "u"}));
        assert_eq!(params["user"], json!("u"));
        assert_eq!(
            params["resume"],
            json!({"sequence": 41, "epoch": "e", "strict": true})
        );
        assert_eq!(TopicRecovery::new(false).join_params(&json!({})), json!({}));
    }

    #[test]
    fn seq_4_an_epoch_change_is_a_gap_and_restarts_at_the_new_top() {
        let mut topic = TopicRecovery::restored(false, 10, Some("old".into()));
        let (joined, gap) = topic.on_join_reply(&reply(false, "new", 3));
        assert_eq!(joined, Joined::Unrecovered);
        assert_eq!(
            gap,
            vec![Step::Gap {
                expected: 11,
                got: 4
            }]
        );
        assert!(feed(&mut topic, &[11], "old").is_empty());
        assert_eq!(topic.stats().stale_epoch, 1);
        assert_eq!(delivered(&feed(&mut topic, &[4], "new")), vec![4]);
    }

    #[test]
    fn seq_5_truncated_history_reports_the_gap_where_history_ran_out() {
        let mut topic = TopicRecovery::restored(false, 2, Some("e".into()));
        assert_eq!(
            topic.on_join_reply(&reply(false, "e", 10)).0,
            Joined::Unrecovered
        );
        let steps = feed(&mut topic, &[8, 9, 10], "e");
        assert_eq!(
            steps[0],
            Step::Gap {
                expected: 3,
                got: 8
            }
        );
        assert_eq!(delivered(&steps), vec![8, 9, 10]);
    }

    #[test]
    fn seq_6_live_messages_racing_the_replay_are_merged_without_holes_or_duplicates() {
        let mut topic = TopicRecovery::restored(false, 3, Some("e".into()));
        assert_eq!(
            topic.on_join_reply(&reply(true, "e", 6)).0,
            Joined::Recovered
        );
        // Live 7 and 8 overtake the replay of 4..6; 5 arrives twice.
        let steps = feed(&mut topic, &[7, 4, 8, 5, 5, 6, 7, 9], "e");
        assert!(!steps.iter().any(|step| matches!(step, Step::Gap { .. })));
        assert!(!steps.contains(&Step::Recover));
        assert_eq!(delivered(&steps), vec![4, 5, 6, 7, 8, 9]);
        assert_eq!(topic.stats().duplicates, 2);
    }

    #[test]
    fn seq_8_a_live_hole_asks_for_recovery_once_then_fills_or_reports() {
        let mut topic = TopicRecovery::restored(false, 1, Some("e".into()));
        topic.on_join_reply(&reply(true, "e", 1));
        let steps = feed(&mut topic, &[2, 5, 6], "e");
        assert_eq!(delivered(&steps), vec![2]);
        assert_eq!(
            steps.iter().filter(|step| **step == Step::Recover).count(),
            1
        );
        // The rejoin recovers: 3 and 4 are replayed, 5 and 6 follow from the hold.
        topic.on_join_reply(&reply(true, "e", 6));
        assert_eq!(
            delivered(&feed(&mut topic, &[3, 4, 5, 6], "e")),
            vec![3, 4, 5, 6]
        );

        // A hole the hub cannot fill: the replay after it is reported as a gap.
        let mut lost = TopicRecovery::restored(false, 1, Some("e".into()));
        lost.on_join_reply(&reply(true, "e", 1));
        feed(&mut lost, &[4], "e");
        // The held 4 is judged against the reply: the hole before it is lost.
        let (_, steps) = lost.on_join_reply(&reply(false, "e", 4));
        assert!(
            feed(&mut lost, &[4], "e").is_empty(),
            "the replayed 4 is a duplicate"
        );
        assert_eq!(
            steps[0],
            Step::Gap {
                expected: 2,
                got: 4
            }
        );
        assert_eq!(delivered(&steps), vec![4]);
    }

    #[test]
    fn the_hold_is_bounded() {
        let mut topic = TopicRecovery::restored(false, 0, Some("e".into()));
        topic.on_join_reply(&reply(true, "e", 0));
        let late: Vec<u64> = (2..=(MAX_HELD as u64 + 2)).collect();
        let steps = feed(&mut topic, &late, "e");
        assert!(steps.contains(&Step::Gap {
            expected: 1,
            got: 2
        }));
        assert_eq!(delivered(&steps).len(), late.len());
    }

    #[test]
    fn messages_overtaking_the_join_reply_wait_for_it() {
        let mut topic = TopicRecovery::restored(false, 2, Some("e".into()));
        topic.joining();
        // The replay of a truncated history arrives before the reply.
        assert!(feed(&mut topic, &[8, 9, 10], "e").is_empty());
        let (joined, steps) = topic.on_join_reply(&reply(false, "e", 10));
        assert_eq!(joined, Joined::Unrecovered);
        assert_eq!(
            steps[0],
            Step::Gap {
                expected: 3,
                got: 8
            }
        );
        assert_eq!(delivered(&steps), vec![8, 9, 10]);
        assert!(!steps.contains(&Step::Recover));
    }

    #[test]
    fn seq_4_a_live_epoch_change_rejoins_and_keeps_what_the_new_epoch_sent() {
        let mut topic = TopicRecovery::restored(false, 7, Some("old".into()));
        topic.on_join_reply(&reply(true, "old", 7));
        // The hub's history restarted: new-epoch messages arrive live.
        let steps = feed(&mut topic, &[1, 2], "new");
        assert_eq!(
            steps,
            vec![Step::Recover],
            "one rejoin, nothing delivered yet"
        );
        topic.joining();
        let (joined, steps) = topic.on_join_reply(&reply(false, "new", 2));
        assert_eq!(joined, Joined::Unrecovered);
        assert_eq!(
            steps[0],
            Step::Gap {
                expected: 8,
                got: 1
            }
        );
        assert_eq!(
            delivered(&steps),
            vec![1, 2],
            "held new-epoch messages delivered"
        );
        assert_eq!(topic.position(), (2, Some("new")));
    }

    #[test]
    fn a_top_below_the_position_never_lowers_it() {
        let mut topic = TopicRecovery::restored(false, 10, Some("e".into()));
        topic.on_join_reply(&reply(false, "e", 3));
        assert_eq!(topic.position().0, 10);
        assert!(feed(&mut topic, &[4, 10], "e").is_empty(), "duplicates");
        assert_eq!(delivered(&feed(&mut topic, &[11], "e")), vec![11]);
    }

    #[test]
    fn extreme_sequences_from_a_peer_do_not_overflow() {
        let mut topic = TopicRecovery::restored(false, 1, Some("e".into()));
        let (_, steps) = topic.on_join_reply(&reply(false, "x", u64::MAX));
        assert_eq!(steps.len(), 1);
        let mut topic = TopicRecovery::restored(false, u64::MAX, Some("e".into()));
        topic.on_join_reply(&reply(true, "e", u64::MAX));
        assert!(feed(&mut topic, &[u64::MAX], "e").is_empty());
        let mut topic = TopicRecovery::new(false);
        topic.on_join_reply(&reply(false, "e", 0));
        let steps = feed(&mut topic, &[u64::MAX], "e");
        assert!(steps.contains(&Step::Recover));
    }

    #[test]
    fn messages_without_a_position_pass_through() {
        let mut topic = TopicRecovery::new(false);
        let mut frame = message(1, "e");
        frame.payload = json!({"plain": true}).into();
        assert_eq!(topic.on_message(frame.clone()), vec![Step::Deliver(frame)]);
    }

    fn phase(topic: &TopicRecovery) -> Option<Phase> {
        topic.track.as_ref().map(|track| track.phase)
    }

    #[test]
    fn a_position_comes_from_the_first_reply_or_message() {
        let mut topic = TopicRecovery::new(false);
        assert_eq!((phase(&topic), topic.position()), (None, (0, None)));
        assert_eq!(delivered(&feed(&mut topic, &[5], "e")), vec![5]);
        assert_eq!(
            (phase(&topic), topic.position()),
            (Some(Phase::Live), (5, Some("e")))
        );

        // A reply without a position gives none; a later one with it does.
        let mut topic = TopicRecovery::new(false);
        topic.joining();
        assert_eq!(topic.on_join_reply(&json!({})).0, Joined::NotSequenced);
        assert_eq!((phase(&topic), topic.join), (None, Join::Settled));
        topic.joining();
        assert_eq!(topic.on_join_reply(&reply(false, "e", 7)).0, Joined::Fresh);
        assert_eq!(
            (phase(&topic), topic.position()),
            (Some(Phase::Live), (7, Some("e")))
        );
    }

    #[test]
    fn a_rejoin_is_asked_for_once_until_a_reply_with_a_position() {
        let mut topic = TopicRecovery::restored(false, 1, Some("e".into()));
        topic.on_join_reply(&reply(true, "e", 1));
        assert_eq!(
            (phase(&topic), topic.join),
            (Some(Phase::Live), Join::Settled)
        );
        assert_eq!(feed(&mut topic, &[3], "e"), vec![Step::Recover]);
        assert_eq!(topic.join, Join::RejoinAsked);
        assert!(feed(&mut topic, &[5], "e").is_empty(), "asked for already");
        topic.joining();
        assert_eq!(topic.join, Join::Sent { rejoin_asked: true });
        assert!(feed(&mut topic, &[4], "e").is_empty(), "held for the reply");

        let (_, steps) = topic.on_join_reply(&reply(true, "e", 5));
        assert!(steps.is_empty(), "3..5 wait for the replay of 2");
        assert_eq!(topic.join, Join::Settled);
        assert_eq!(phase(&topic), Some(Phase::Replaying { top: 5 }));
        assert_eq!(delivered(&feed(&mut topic, &[2], "e")), vec![2, 3, 4, 5]);
        assert_eq!(phase(&topic), Some(Phase::Live));
        assert_eq!(
            feed(&mut topic, &[7], "e"),
            vec![Step::Recover],
            "a new hole"
        );
    }

    #[test]
    fn a_reply_without_a_position_leaves_a_rejoin_asked_for() {
        let mut topic = TopicRecovery::restored(false, 1, Some("e".into()));
        topic.on_join_reply(&reply(true, "e", 1));
        assert_eq!(feed(&mut topic, &[3], "e"), vec![Step::Recover]);
        topic.joining();
        assert_eq!(topic.on_join_reply(&json!({})).0, Joined::NotSequenced);
        assert_eq!(topic.join, Join::RejoinAsked);
        assert_eq!(phase(&topic), Some(Phase::Live), "the phase is kept too");
        assert!(
            feed(&mut topic, &[5], "e").is_empty(),
            "not asked for again"
        );
    }

    #[test]
    fn a_truncated_history_expects_a_hole_then_replays_to_its_top() {
        let mut topic = TopicRecovery::restored(false, 2, Some("e".into()));
        topic.on_join_reply(&reply(false, "e", 10));
        assert_eq!(phase(&topic), Some(Phase::PastHole { top: Some(10) }));
        let steps = feed(&mut topic, &[8], "e");
        assert_eq!(
            steps[0],
            Step::Gap {
                expected: 3,
                got: 8
            }
        );
        assert_eq!(phase(&topic), Some(Phase::Replaying { top: 10 }));
        // A live message overtaking the rest of the replay waits for it.
        assert!(feed(&mut topic, &[11], "e").is_empty());
        assert_eq!(delivered(&feed(&mut topic, &[9, 10], "e")), vec![9, 10, 11]);
        assert_eq!(phase(&topic), Some(Phase::Live));

        // The next message closes an expected hole even when it leaves none.
        let mut topic = TopicRecovery::restored(false, 2, Some("e".into()));
        topic.on_join_reply(&reply(false, "e", 10));
        assert_eq!(delivered(&feed(&mut topic, &[3], "e")), vec![3]);
        assert_eq!(phase(&topic), Some(Phase::Replaying { top: 10 }));
    }

    #[test]
    fn a_later_reply_replaces_the_hole_an_earlier_one_expected() {
        // Truncated, then (a reconnect) recovered: the replay from 3 is
        // whole, and a live message overtaking it waits for it.
        let mut topic = TopicRecovery::restored(false, 2, Some("e".into()));
        topic.on_join_reply(&reply(false, "e", 10));
        topic.joining();
        topic.on_join_reply(&reply(true, "e", 12));
        assert_eq!(phase(&topic), Some(Phase::Replaying { top: 12 }));
        let steps = feed(&mut topic, &[13, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], "e");
        assert!(!steps.iter().any(|step| matches!(step, Step::Gap { .. })));
        assert_eq!(delivered(&steps), (3..=13).collect::<Vec<u64>>());

        // Truncated, then a new epoch: a hole after the new top is live.
        let mut topic = TopicRecovery::restored(false, 2, Some("e".into()));
        topic.on_join_reply(&reply(false, "e", 10));
        topic.joining();
        topic.on_join_reply(&reply(false, "f", 4));
        assert_eq!(phase(&topic), Some(Phase::Live));
        assert_eq!(feed(&mut topic, &[6], "f"), vec![Step::Recover]);
    }
}
