//! The NATS subjects of a cluster, and topic names as subject tokens.
//!
//! A topic becomes one token: letters, digits, `-`, `_` and `:` stay as
//! they are (so `room:lobby` reads as itself), every other byte becomes
//! `~` and two hex digits (`.` → `~2e`, `*` → `~2a`, `~` → `~7e`). The
//! encoding is one-to-one, so two topics never share a subject, and no
//! topic can reach into another's with NATS wildcards.
//!
//! | subject | carries |
//! |---|---|
//! | `P.t.TOPIC` | plain broadcasts and presence changes of a topic (core NATS) |
//! | `P.h.TOPIC` | a recoverable topic's messages, stored in the history stream |
//! | `P.r.TOPIC` | the same, republished by the stream once stored, in order |
//! | `P.nodes` | every node's heartbeat |

use std::fmt::Write;

/// The subjects of one cluster (one prefix).
#[derive(Debug, Clone)]
pub(crate) struct Subjects {
    prefix: String,
}

impl Subjects {
    /// Subjects under `prefix` (already validated: tokens, no wildcards).
    pub(crate) fn new(prefix: &str) -> Subjects {
        Subjects {
            prefix: prefix.to_owned(),
        }
    }

    /// Plain broadcasts and presence of `topic`.
    pub(crate) fn topic(&self, topic: &str) -> String {
        format!("{}.t.{}", self.prefix, token(topic))
    }

    /// Where a recoverable topic's messages are stored.
    pub(crate) fn history(&self, topic: &str) -> String {
        format!("{}.h.{}", self.prefix, token(topic))
    }

    /// Where the stream republishes them.
    pub(crate) fn republished(&self, topic: &str) -> String {
        format!("{}.r.{}", self.prefix, token(topic))
    }

    /// The history stream's subjects.
    pub(crate) fn history_all(&self) -> String {
        format!("{}.h.>", self.prefix)
    }

    /// Where the stream republishes to.
    pub(crate) fn republished_all(&self) -> String {
        format!("{}.r.>", self.prefix)
    }

    /// Heartbeats.
    pub(crate) fn nodes(&self) -> String {
        format!("{}.nodes", self.prefix)
    }
}

/// `topic` as one subject token.
pub(crate) fn token(topic: &str) -> String {
    let mut out = String::with_capacity(topic.len() + 2);
    if topic.is_empty() {
        out.push('~');
    }
    for byte in topic.bytes() {
        let kept = byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b':');
        if kept {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "~{byte:02x}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_become_single_tokens_one_to_one() {
        assert_eq!(token("room:lobby"), "room:lobby");
        assert_eq!(token("a.b"), "a~2eb");
        assert_eq!(token("a*>"), "a~2a~3e");
        assert_eq!(token("a~2eb"), "a~7e2eb");
        assert_eq!(token("x y\u{e9}"), "x~20y~c3~a9");
        assert_eq!(token(""), "~");
        for topic in ["a.b", "a~2eb", "a>b", "", "~"] {
            let encoded = token(topic);
            assert!(!encoded.contains(['.', '*', '>', ' ']), "{encoded}");
        }
        assert_ne!(token("a.b"), token("a~2eb"));
        let subjects = Subjects::new("sb.test");
        assert_eq!(subjects.topic("room:1"), "sb.test.t.room:1");
        assert_eq!(subjects.history("feed.x"), "sb.test.h.feed~2ex");
        assert_eq!(subjects.republished("f"), "sb.test.r.f");
    }
}
