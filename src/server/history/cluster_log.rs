//! A cluster node's copy of a recoverable topic: the messages arrive
//! sequenced and encoded from the history stream, so the log keeps them as
//! they are (no stamping here), and starts afresh where the stream's own
//! history has a hole or a new epoch begins.

use bytestring::ByteString;

use super::TopicLog;

impl TopicLog {
    /// An empty copy, before the stream has said anything of the topic:
    /// epoch `""`, top 0.
    pub(crate) fn cluster_copy(capacity: usize, max_bytes: usize) -> TopicLog {
        let mut log = TopicLog::new(String::new(), capacity.max(1), max_bytes.max(1));
        log.lenient = true;
        // Plain topics are followed with a copy that stays empty: no room
        // is taken before a message is.
        log.ring = std::collections::VecDeque::new();
        log
    }

    /// Forgets every message: the log goes on from `top` in `epoch`.
    pub(crate) fn restart(&mut self, epoch: &str, top: u64) {
        self.ring.clear();
        self.bytes = 0;
        epoch.clone_into(&mut self.epoch);
        self.top = top;
    }

    /// Keeps message `sequence` (the next one: `top + 1`), already encoded.
    pub(crate) fn push_stored(&mut self, sequence: u64, frame: ByteString) {
        self.keep(sequence, frame);
    }

    /// The log's epoch (`""` before the topic's first message).
    #[cfg(test)]
    pub(crate) fn current_epoch(&self) -> &str {
        &self.epoch
    }
}

#[cfg(test)]
mod tests {
    use crate::protocol::resume::ResumeRequest;

    use super::*;

    fn resume(sequence: u64, epoch: &str) -> ResumeRequest {
        ResumeRequest {
            sequence,
            epoch: epoch.to_owned(),
            strict: false,
        }
    }

    #[test]
    fn a_copy_recovers_like_a_log_and_admits_a_joiner_that_saw_nothing() {
        let mut log = TopicLog::cluster_copy(3, 1 << 20);
        assert!(log.recover(Some(&resume(0, "")), 10).reply.recovered);
        log.restart("e1", 0);
        for sequence in 1..=4 {
            log.push_stored(sequence, ByteString::from(format!("m{sequence}")));
        }
        // Ring of 3: 2..4 kept.
        let from_one = log.recover(Some(&resume(1, "e1")), 10);
        assert!(from_one.reply.recovered);
        assert_eq!(from_one.replay, ["m2", "m3", "m4"]);
        // Saw nothing, but 1 is gone: not recovered.
        assert!(!log.recover(Some(&resume(0, "")), 10).reply.recovered);
        assert!(!log.recover(Some(&resume(2, "e0")), 10).reply.recovered);
        // A hole in the stream: the copy restarts past it.
        log.restart("e1", 9);
        log.push_stored(10, ByteString::from("m10"));
        let across = log.recover(Some(&resume(4, "e1")), 10);
        assert!(!across.reply.recovered);
        assert_eq!(across.replay, ["m10"]);
        assert_eq!((log.top(), log.current_epoch()), (10, "e1"));
    }

    #[test]
    fn a_single_node_log_does_not_admit_an_empty_epoch() {
        let log = TopicLog::new("e".to_owned(), 3, 1 << 20);
        assert!(!log.recover(Some(&resume(0, "")), 10).reply.recovered);
    }
}
