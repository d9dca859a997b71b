//! A gate on a socket's inbound stream: while anything holds it the socket
//! is not read (TCP then pushes back on the peer), yet the actor that owns
//! it keeps handling its mailbox and timers, unlike `ctx.wait`. Each reason
//! to stop reading holds it on its own ([`Hold`]) and releases it from
//! whatever event frees room; reading resumes once none holds it.

use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;
use futures_util::Stream;

/// The switch; clones share it.
#[derive(Clone, Default)]
pub(crate) struct ReadGate {
    shared: Arc<Shared>,
}

/// Why a socket is not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Hold {
    /// Its outbox is filling: the peer reads slower than it asks.
    Drain = 1,
    /// It owes as many answers as it may (an ingest sender's acks).
    Owed = 2,
}

#[derive(Default)]
struct Shared {
    holds: AtomicU8,
    reader: AtomicWaker,
}

impl ReadGate {
    /// Stops reading after the frame in hand, for `hold`.
    pub(crate) fn hold(&self, hold: Hold) {
        self.shared.holds.fetch_or(hold as u8, Ordering::AcqRel);
    }

    /// `hold` no longer applies; reads again when nothing else holds.
    pub(crate) fn release(&self, hold: Hold) {
        let before = self.shared.holds.fetch_and(!(hold as u8), Ordering::AcqRel);
        if before == hold as u8 {
            self.shared.reader.wake();
        }
    }

    /// Whether `hold` holds the gate.
    pub(crate) fn is_held(&self, hold: Hold) -> bool {
        self.shared.holds.load(Ordering::Acquire) & hold as u8 != 0
    }

    /// Whether reading is stopped, for any reason.
    pub(crate) fn is_shut(&self) -> bool {
        self.shared.holds.load(Ordering::Acquire) != 0
    }

    /// `stream`, read only while the gate is open.
    pub(crate) fn wrap<S: Stream>(&self, stream: S) -> Gated<S> {
        Gated {
            stream,
            gate: self.clone(),
        }
    }
}

/// A stream behind a [`ReadGate`].
pub(crate) struct Gated<S> {
    stream: S,
    gate: ReadGate,
}

impl<S: Stream + Unpin> Stream for Gated<S> {
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let this = self.get_mut();
        if this.gate.is_shut() {
            this.gate.shared.reader.register(cx.waker());
            // Opened between the check and the registration: read now.
            if this.gate.is_shut() {
                return Poll::Pending;
            }
        }
        Pin::new(&mut this.stream).poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    #[tokio::test]
    async fn a_held_gate_reads_nothing_until_every_hold_is_released() {
        let gate = ReadGate::default();
        let mut gated = gate.wrap(futures_util::stream::iter([1, 2]));
        assert_eq!(gated.next().await, Some(1));
        gate.hold(Hold::Drain);
        gate.hold(Hold::Owed);
        let quick = std::time::Duration::from_millis(20);
        gate.release(Hold::Drain);
        let held = tokio::time::timeout(quick, gated.next()).await;
        assert!(held.is_err(), "still held for what it owes");
        assert!(gate.is_held(Hold::Owed) && !gate.is_held(Hold::Drain));
        let opener = gate.clone();
        tokio::spawn(async move { opener.release(Hold::Owed) });
        assert_eq!(gated.next().await, Some(2));
        assert!(!gate.is_shut());
    }
}
