//! The task that empties an outbox into a `Sink` of whole messages (a
//! client connection's socket, or an in-memory one).

use std::time::Duration;

use futures_util::{Sink, SinkExt};

use super::{dropped, Queued};
use crate::transport::socket::{Close, Message};

/// How long a close frame may wait for room before the socket is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Writes what `queued` receives to `sink` until the socket closes.
pub(super) async fn write_loop<S>(mut sink: S, queued: Queued)
where
    S: Sink<Message> + Unpin,
{
    let Queued {
        mut receiver,
        mut close_signal,
        shared,
    } = queued;
    let reason = loop {
        let item = tokio::select! {
            biased;
            reason = &mut close_signal => break reason.ok(),
            item = receiver.recv() => item,
        };
        let Some(item) = item else { break None };
        let (message, size) = item.into_message();
        // Flush at once only when nothing else is waiting: batches writes.
        let written = if receiver.is_empty() {
            tokio::select! {
                biased;
                reason = &mut close_signal => break reason.ok(),
                written = sink.send(message) => written,
            }
        } else {
            tokio::select! {
                biased;
                reason = &mut close_signal => break reason.ok(),
                written = sink.feed(message) => written,
            }
        };
        if written.is_err() {
            // The peer is gone; the owner learns it from its inbound stream.
            shared.mark_gone();
            return;
        }
        shared.taken(size);
        shared.written.notify_waiters();
    };
    shared.mark_gone();
    // Frames queued behind the close are not written: count them.
    receiver.close();
    while let Ok(_unwritten) = receiver.try_recv() {
        dropped("closed");
    }
    // A peer that stopped reading may never make room for the close frame.
    // A sink that failed is not polled again (an error may end it for good).
    let close = async {
        let frame = Message::Close(reason.map(Close::from_actix));
        if sink.send(frame).await.is_ok() {
            let _ = sink.close().await;
        }
    };
    let _ = tokio::time::timeout(CLOSE_GRACE, close).await;
}
