//! Where a node is in one recoverable topic's stream (pure).
//!
//! Messages reach a node two ways: live, as the stream republishes each one
//! once stored (a core NATS subscription, which can drop); and read back,
//! one after another with "the next message on this subject after stream
//! sequence n" (which cannot skip). A live message that is not the next
//! one (`top + 1` in the same epoch) makes the node read back from where it
//! is; a message read back is the next one by definition, so when its
//! sequence is not `top + 1` the stream itself no longer holds what came
//! between (or a new epoch began): the copy restarts there.

/// One stored message of a recoverable topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stored {
    /// Its sequence in the history stream (across topics).
    pub stream_sequence: u64,
    /// Its sequence in the topic.
    pub sequence: u64,
    /// Its topic's epoch.
    pub epoch: String,
}

/// What to do with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offer {
    /// Keep and deliver it: it is the next one.
    Append,
    /// Already had (or older): drop it.
    Duplicate,
    /// Read back from the stream first: something came between.
    ReadBack,
    /// Start the copy afresh at it (a hole in the stream, or a new epoch).
    Restart,
}

/// A node's position in one topic's stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FeedState {
    epoch: String,
    top: u64,
    stream_sequence: u64,
}

impl FeedState {
    /// The stream sequence of the last message taken (0 before any).
    pub(crate) fn stream_sequence(&self) -> u64 {
        self.stream_sequence
    }

    /// The topic's epoch and top as far as this node knows.
    #[cfg(test)]
    pub(crate) fn position(&self) -> (&str, u64) {
        (&self.epoch, self.top)
    }

    /// A message that arrived live. One of another epoch is never taken
    /// live: the stream is read to find out what happened (a new epoch, a
    /// stream made again, or a late message of an old one).
    pub(crate) fn offer_live(&self, message: &Stored) -> Offer {
        if message.epoch != self.epoch {
            return Offer::ReadBack;
        }
        if message.stream_sequence <= self.stream_sequence || message.sequence <= self.top {
            return Offer::Duplicate;
        }
        if Some(message.sequence) == self.top.checked_add(1) {
            return Offer::Append;
        }
        Offer::ReadBack
    }

    /// The next message on the subject after [`stream_sequence`](Self::stream_sequence).
    pub(crate) fn offer_next(&self, message: &Stored) -> Offer {
        if message.stream_sequence <= self.stream_sequence {
            return Offer::Duplicate;
        }
        if message.epoch == self.epoch && Some(message.sequence) == self.top.checked_add(1) {
            return Offer::Append;
        }
        Offer::Restart
    }

    /// Passes over a stored message that could not be read (counted by the
    /// caller): the copy goes on after it.
    pub(crate) fn skip(&mut self, stream_sequence: u64) {
        self.stream_sequence = self.stream_sequence.max(stream_sequence);
    }

    /// Takes `message` (after [`Offer::Append`] or [`Offer::Restart`]).
    pub(crate) fn take(&mut self, message: &Stored) {
        message.epoch.clone_into(&mut self.epoch);
        self.top = message.sequence;
        self.stream_sequence = message.stream_sequence;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(stream_sequence: u64, sequence: u64, epoch: &str) -> Stored {
        Stored {
            stream_sequence,
            sequence,
            epoch: epoch.to_owned(),
        }
    }

    #[test]
    fn live_messages_in_order_append_and_others_read_back_or_drop() {
        let mut feed = FeedState::default();
        // The first message of an empty topic, read back: a start.
        let first = stored(7, 1, "e");
        assert_eq!(feed.offer_next(&first), Offer::Restart);
        feed.take(&first);
        // The next live one (other topics between in the stream): append.
        let second = stored(12, 2, "e");
        assert_eq!(feed.offer_live(&second), Offer::Append);
        feed.take(&second);
        assert_eq!(feed.offer_live(&second), Offer::Duplicate);
        assert_eq!(feed.offer_live(&stored(13, 2, "e")), Offer::Duplicate);
        // 3 was dropped on the way: 4 makes the node read back.
        assert_eq!(feed.offer_live(&stored(20, 4, "e")), Offer::ReadBack);
        let third = stored(15, 3, "e");
        assert_eq!(feed.offer_next(&third), Offer::Append);
        feed.take(&third);
        assert_eq!(feed.offer_live(&stored(20, 4, "e")), Offer::Append);
        assert_eq!(feed.position(), ("e", 3));
    }

    #[test]
    fn a_hole_or_a_new_epoch_read_back_restarts_the_copy() {
        let mut feed = FeedState::default();
        feed.take(&stored(5, 10, "e"));
        // The stream no longer has 11..14: the next one it has is 15.
        let after_hole = stored(30, 15, "e");
        assert_eq!(feed.offer_live(&after_hole), Offer::ReadBack);
        assert_eq!(feed.offer_next(&after_hole), Offer::Restart);
        feed.take(&after_hole);
        // A late message of an old epoch is looked into, never taken.
        assert_eq!(feed.offer_live(&stored(2, 3, "old")), Offer::ReadBack);
        // The topic's history was lost and began again.
        let reborn = stored(40, 1, "f");
        assert_eq!(feed.offer_live(&reborn), Offer::ReadBack);
        assert_eq!(feed.offer_next(&reborn), Offer::Restart);
        feed.take(&reborn);
        assert_eq!(feed.position(), ("f", 1));
        assert_eq!(feed.stream_sequence(), 40);
        // The stream was made again: numbers from 1, a new epoch.
        assert_eq!(feed.offer_live(&stored(1, 1, "g")), Offer::ReadBack);
        feed = FeedState::default();
        assert_eq!(feed.offer_next(&stored(1, 1, "g")), Offer::Restart);
    }
}
