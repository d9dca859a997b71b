//! A gate on a socket's inbound stream: while it is shut the socket is not
//! read (TCP then pushes back on the peer), yet the actor that owns it keeps
//! handling its mailbox and timers, unlike `ctx.wait`. A protocol shuts it
//! when answering more would overflow what it may hold, and opens it again
//! from whatever event frees room.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;
use futures_util::Stream;

/// The switch; clones share it.
#[derive(Clone, Default)]
pub(crate) struct ReadGate {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    shut: AtomicBool,
    reader: AtomicWaker,
}

impl ReadGate {
    /// Stops reading after the frame in hand.
    pub(crate) fn shut(&self) {
        self.shared.shut.store(true, Ordering::Release);
    }

    /// Reads again.
    pub(crate) fn open(&self) {
        if self.shared.shut.swap(false, Ordering::AcqRel) {
            self.shared.reader.wake();
        }
    }

    /// Whether reading is stopped.
    pub(crate) fn is_shut(&self) -> bool {
        self.shared.shut.load(Ordering::Acquire)
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
    async fn a_shut_gate_holds_items_until_opened() {
        let gate = ReadGate::default();
        let mut gated = gate.wrap(futures_util::stream::iter([1, 2]));
        assert_eq!(gated.next().await, Some(1));
        gate.shut();
        let held = tokio::time::timeout(std::time::Duration::from_millis(20), gated.next()).await;
        assert!(held.is_err(), "nothing is read while shut");
        let opener = gate.clone();
        tokio::spawn(async move { opener.open() });
        assert_eq!(gated.next().await, Some(2));
        assert!(!gate.is_shut());
    }
}
