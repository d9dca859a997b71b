//! Reassembly of a fragmented WebSocket message (continuation frames) read
//! by the awc transport, bounded in bytes as the fragments arrive.

use actix_ws::Item;
use bytes::{Bytes, BytesMut};

/// A message being reassembled from its fragments.
#[derive(Debug, Default)]
pub(super) struct Reassembly {
    partial: Option<(BytesMut, bool)>,
}

/// A reassembled message: its bytes, and whether it is text.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Whole {
    /// The fragments of a text message (not yet checked as UTF-8).
    Text(Bytes),
    /// The fragments of a binary message.
    Binary(Bytes),
}

/// Why a fragmented message was given up on (the socket is then dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Broken {
    /// A continuation came without a first fragment.
    NoFirstFragment,
    /// The message grew past the limit.
    TooLarge,
}

impl Reassembly {
    /// Adds one fragment; answers the whole message once its last fragment
    /// is in. A message past `limit` bytes is refused as soon as the
    /// fragment that crosses it arrives.
    pub(super) fn push(&mut self, item: Item, limit: usize) -> Result<Option<Whole>, Broken> {
        let (chunk, first, last) = match item {
            Item::FirstText(chunk) => (chunk, Some(false), false),
            Item::FirstBinary(chunk) => (chunk, Some(true), false),
            Item::Continue(chunk) => (chunk, None, false),
            Item::Last(chunk) => (chunk, None, true),
        };
        if let Some(binary) = first {
            self.partial = Some((BytesMut::new(), binary));
        }
        let Some((bytes, _)) = self.partial.as_mut() else {
            return Err(Broken::NoFirstFragment);
        };
        if bytes.len() + chunk.len() > limit {
            self.partial = None;
            return Err(Broken::TooLarge);
        }
        bytes.extend_from_slice(&chunk);
        if !last {
            return Ok(None);
        }
        Ok(self.partial.take().map(|(bytes, binary)| {
            if binary {
                Whole::Binary(bytes.freeze())
            } else {
                Whole::Text(bytes.freeze())
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(whole: Option<Whole>) -> String {
        match whole {
            Some(Whole::Text(bytes)) => String::from_utf8(bytes.to_vec()).unwrap(),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    #[test]
    fn fragments_join_into_one_message() {
        let mut reassembly = Reassembly::default();
        let first = reassembly.push(Item::FirstText(Bytes::from_static(b"he")), 16);
        assert_eq!(first, Ok(None));
        let middle = reassembly.push(Item::Continue(Bytes::from_static(b"ll")), 16);
        assert_eq!(middle, Ok(None));
        let whole = reassembly.push(Item::Last(Bytes::from_static(b"o")), 16);
        assert_eq!(text(whole.unwrap()), "hello");
    }

    #[test]
    fn a_continuation_without_a_first_fragment_is_refused() {
        let mut reassembly = Reassembly::default();
        let refused = reassembly.push(Item::Continue(Bytes::from_static(b"x")), 16);
        assert_eq!(refused.err(), Some(Broken::NoFirstFragment));
    }

    #[test]
    fn a_message_past_the_limit_is_refused_at_the_crossing_fragment() {
        let mut reassembly = Reassembly::default();
        let _ = reassembly.push(Item::FirstBinary(Bytes::from_static(b"1234")), 6);
        let refused = reassembly.push(Item::Continue(Bytes::from_static(b"567")), 6);
        assert_eq!(refused.err(), Some(Broken::TooLarge));
        // Nothing is kept of it: the next fragment has no first one.
        let next = reassembly.push(Item::Last(Bytes::from_static(b"8")), 6);
        assert_eq!(next.err(), Some(Broken::NoFirstFragment));
    }
}
