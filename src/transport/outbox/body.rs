//! A hub socket's outbox as its HTTP response body: actix-http polls it
//! for bytes to write, and it encodes the queued frames then and there.
//!
//! One hop from a push to the connection's write buffer, and no task or
//! channel beyond the outbox itself. When the peer stops reading, actix-http
//! stops polling, the queue fills and its bounds apply as for any socket.

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_codec::Encoder;
use actix_http::body::{BodySize, MessageBody};
use actix_http::ws::{Codec, Message as Frame, ProtocolError};
use actix_ws::CloseReason;
use bytes::{Bytes, BytesMut};
use futures_util::FutureExt;

use super::{dropped, Outbound, Queued};

/// Bytes encoded into one chunk at most before actix-http gets it.
const CHUNK_BYTES: usize = 64 * 1024;

/// The longest close reason a close frame may carry (125 − the 2-byte code).
const MAX_CLOSE_REASON: usize = 123;

/// The response body of a hub socket: its outbox, encoded as it is read.
pub(crate) struct OutboxBody {
    queued: Queued,
    codec: Codec,
    buffer: BytesMut,
    /// The close frame went out: the body ends.
    done: bool,
}

impl OutboxBody {
    pub(super) fn new(queued: Queued) -> OutboxBody {
        OutboxBody {
            queued,
            codec: Codec::new(),
            buffer: BytesMut::new(),
            done: false,
        }
    }

    /// Encodes the close frame (reason cut to what a control frame holds)
    /// and counts what is left in the queue as not written.
    fn close(&mut self, reason: Option<CloseReason>) -> Result<(), ProtocolError> {
        self.done = true;
        self.queued.shared.mark_gone();
        self.queued.receiver.close();
        while let Ok(_unwritten) = self.queued.receiver.try_recv() {
            dropped("closed");
        }
        self.codec
            .encode(Frame::Close(reason.map(fit_control)), &mut self.buffer)
    }

    /// Encodes queued frames until the queue is empty or a chunk is full.
    fn encode_queued(&mut self, cx: &mut Context<'_>) -> Result<(), ProtocolError> {
        let mut taken = 0;
        while self.buffer.len() < CHUNK_BYTES {
            let Poll::Ready(Some(item)) = self.queued.receiver.poll_recv(cx) else {
                break;
            };
            let (frame, size) = frame(item);
            self.codec.encode(frame, &mut self.buffer)?;
            self.queued.shared.taken(size);
            taken += 1;
        }
        if taken > 0 {
            self.queued.shared.written.notify_waiters();
        }
        Ok(())
    }
}

/// A queued frame as actix-http encodes it, and the bytes it counted for.
fn frame(item: Outbound) -> (Frame, usize) {
    match item {
        Outbound::Text(text) => {
            let size = text.len();
            (Frame::Text(text), size)
        }
        Outbound::Ping(payload) => {
            let size = payload.len();
            (Frame::Ping(payload), size)
        }
        Outbound::Pong(payload) => {
            let size = payload.len();
            (Frame::Pong(payload), size)
        }
    }
}

/// A close reason whose description fits a control frame, cut at a
/// character boundary.
fn fit_control(mut reason: CloseReason) -> CloseReason {
    if let Some(description) = reason.description.as_mut() {
        if description.len() > MAX_CLOSE_REASON {
            let mut end = MAX_CLOSE_REASON;
            while !description.is_char_boundary(end) {
                end -= 1;
            }
            description.truncate(end);
        }
    }
    reason
}

impl MessageBody for OutboxBody {
    type Error = ProtocolError;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let result = match this.queued.close_signal.poll_unpin(cx) {
            // A dropped closer closes too, with no particular code.
            Poll::Ready(reason) => this.close(reason.ok()),
            Poll::Pending => this.encode_queued(cx),
        };
        if let Err(error) = result {
            this.done = true;
            this.queued.shared.mark_gone();
            return Poll::Ready(Some(Err(error)));
        }
        if this.buffer.is_empty() {
            return Poll::Pending;
        }
        // Taken whole: an idle socket keeps no buffer.
        Poll::Ready(Some(Ok(std::mem::take(&mut this.buffer).freeze())))
    }
}

impl Drop for OutboxBody {
    /// actix-http drops the body when the connection is gone.
    fn drop(&mut self) {
        self.queued.shared.mark_gone();
    }
}

#[cfg(test)]
mod tests;
