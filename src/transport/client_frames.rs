//! A client socket's WebSocket frames, read and written through buffers
//! sized here: awc's `Framed` keeps 8 KiB each way for every connection,
//! which an idle connection pays for as long as it lives.
//!
//! Reads go into a buffer grown 4 KiB at a time (and as far as the frame
//! limit when a large frame needs it), let go whenever it is empty and the
//! socket has nothing more to read; writes are encoded into a buffer
//! that is flushed once it holds 16 KiB or when the writer asks, and
//! dropped when it grew past 4 KiB and emptied.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use actix_codec::{Decoder, Encoder};
use awc::ws::{Frame, Message as WsMessage};
use awc::BoxedSocket;
use bytes::{Buf, BytesMut};
use futures_util::{Sink, Stream};
use tokio::io::AsyncWrite;

use super::frame_guard::GuardedCodec;
use awc::error::WsProtocolError;
use awc::ws::Codec;

/// Room a read asks for at once.
const READ_CHUNK: usize = 4 * 1024;
/// Below this much free room, the read buffer grows first.
const READ_LOW: usize = 512;
/// Encoded bytes that make the sink flush before taking more.
const WRITE_HIGH: usize = 16 * 1024;
/// A write buffer larger than this is let go once empty.
const WRITE_KEEP: usize = 4 * 1024;

/// One client socket, framed: a `Stream` of frames and a `Sink` of messages.
pub(super) struct ClientFrames {
    io: BoxedSocket,
    codec: GuardedCodec<Codec>,
    read: BytesMut,
    write: BytesMut,
    eof: bool,
    /// A write failed: the socket is gone, closing it again is a no-op.
    broken: bool,
}

impl ClientFrames {
    /// Frames over `io`, starting with what the handshake read past its end.
    pub(super) fn new(io: BoxedSocket, codec: GuardedCodec<Codec>, already_read: &[u8]) -> Self {
        ClientFrames {
            io,
            codec,
            read: BytesMut::from(already_read),
            write: BytesMut::new(),
            eof: false,
            broken: false,
        }
    }

    /// Writes out what is encoded.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), WsProtocolError>> {
        while !self.write.is_empty() {
            let written = match ready!(Pin::new(&mut self.io).poll_write(cx, &self.write)) {
                Ok(0) => Err(std::io::Error::from(std::io::ErrorKind::WriteZero)),
                written => written,
            };
            match written {
                Ok(written) => self.write.advance(written),
                Err(error) => {
                    self.broken = true;
                    self.write = BytesMut::new();
                    return Poll::Ready(Err(error.into()));
                }
            }
        }
        if self.write.capacity() > WRITE_KEEP {
            self.write = BytesMut::new();
        }
        Poll::Ready(Ok(()))
    }
}

impl Stream for ClientFrames {
    type Item = Result<Frame, WsProtocolError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if !this.read.is_empty() {
                match this.codec.decode(&mut this.read) {
                    Ok(Some(frame)) => return Poll::Ready(Some(Ok(frame))),
                    Ok(None) => {}
                    Err(error) => return Poll::Ready(Some(Err(error))),
                }
            }
            if this.eof {
                return Poll::Ready(None);
            }
            if this.read.capacity() - this.read.len() < READ_LOW {
                this.read.reserve(READ_CHUNK);
            }
            let read =
                match tokio_util::io::poll_read_buf(Pin::new(&mut this.io), cx, &mut this.read) {
                    Poll::Ready(read) => read,
                    Poll::Pending => {
                        // Nothing more to read now: an idle connection keeps no
                        // read buffer (the next read allocates one again).
                        if this.read.is_empty() {
                            this.read = BytesMut::new();
                        }
                        return Poll::Pending;
                    }
                };
            match read {
                Ok(0) => this.eof = true,
                Ok(_) => {}
                Err(error) => return Poll::Ready(Some(Err(error.into()))),
            }
        }
    }
}

impl Sink<WsMessage> for ClientFrames {
    type Error = WsProtocolError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let this = self.get_mut();
        if this.write.len() >= WRITE_HIGH {
            ready!(this.poll_write_out(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, message: WsMessage) -> Result<(), Self::Error> {
        let this = self.get_mut();
        this.codec.encode(message, &mut this.write)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let this = self.get_mut();
        ready!(this.poll_write_out(cx))?;
        Pin::new(&mut this.io).poll_flush(cx).map_err(Into::into)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let this = self.get_mut();
        if this.broken {
            return Poll::Ready(Ok(()));
        }
        ready!(this.poll_write_out(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx).map_err(Into::into)
    }
}

#[cfg(test)]
mod tests;
