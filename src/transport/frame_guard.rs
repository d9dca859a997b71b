//! Frame limits enforced at the header, as the bytes arrive.
//!
//! actix-http's WebSocket parser compares a frame's length with its limit
//! only once the whole frame is buffered, and actix-ws buffers a socket's
//! inbound bytes without a bound, so a peer announcing a 2^40-byte frame
//! would be buffered byte for byte. [`FrameGuard`] reads the frame headers
//! of the raw inbound byte stream itself (RFC 6455 §5.2): as soon as a
//! header announces a data frame, or a fragmented message sums to, more
//! than the limit, it refuses; nothing of the payload is kept.
//! [`GuardedPayload`] puts it in front of a socket's request body.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use actix_codec::{Decoder, Encoder};
use actix_web::error::PayloadError;
use actix_ws::Item;
use awc::error::WsProtocolError as ProtocolError;
use awc::ws::Frame;
use bytes::{Bytes, BytesMut};
use futures_util::Stream;

/// A frame or message announced larger than the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a frame announced {announced} bytes, more than the {limit}-byte limit")]
pub(crate) struct Oversized {
    /// The length the header (or the message so far) announced.
    pub(crate) announced: u64,
    /// The limit.
    pub(crate) limit: u64,
}

/// Where the scan is in the byte stream.
#[derive(Debug, Clone, Copy)]
enum Scan {
    /// Reading a header: `have` of its bytes are in `header`.
    Header { header: [u8; 14], have: usize },
    /// Skipping `remaining` payload bytes of the current frame.
    Payload { remaining: u64 },
}

/// An incremental reader of WebSocket frame headers (pure: bytes in,
/// verdict out).
#[derive(Debug, Clone)]
pub(crate) struct FrameGuard {
    limit: u64,
    scan: Scan,
    /// Bytes of the fragmented message in progress (0 between messages).
    message: u64,
}

impl FrameGuard {
    /// A guard refusing frames and messages over `limit` bytes.
    pub(crate) fn new(limit: usize) -> FrameGuard {
        FrameGuard {
            limit: limit as u64,
            scan: Scan::Header {
                header: [0; 14],
                have: 0,
            },
            message: 0,
        }
    }

    /// Reads `bytes`, the next bytes of the stream.
    pub(crate) fn feed(&mut self, mut bytes: &[u8]) -> Result<(), Oversized> {
        while !bytes.is_empty() {
            match &mut self.scan {
                Scan::Payload { remaining } => {
                    let skip = (*remaining).min(bytes.len() as u64);
                    *remaining -= skip;
                    bytes = &bytes[skip as usize..];
                    if *remaining == 0 {
                        self.scan = Scan::Header {
                            header: [0; 14],
                            have: 0,
                        };
                    }
                }
                Scan::Header { header, have } => {
                    header[*have] = bytes[0];
                    *have += 1;
                    bytes = &bytes[1..];
                    if let Some(frame) = parse_header(&header[..*have]) {
                        self.frame(frame)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// A whole header was read: check it, then skip its payload.
    fn frame(&mut self, frame: Header) -> Result<(), Oversized> {
        check_control(&frame)?;
        let data = frame.opcode < 0x8;
        if data {
            // A continuation (opcode 0) adds to the message; any other
            // data frame starts one.
            let so_far = if frame.opcode == 0 { self.message } else { 0 };
            let announced = so_far.saturating_add(frame.length);
            if announced > self.limit {
                return Err(Oversized {
                    announced,
                    limit: self.limit,
                });
            }
            self.message = if frame.fin { 0 } else { announced };
        }
        self.scan = if frame.length == 0 {
            Scan::Header {
                header: [0; 14],
                have: 0,
            }
        } else {
            Scan::Payload {
                remaining: frame.length,
            }
        };
        Ok(())
    }
}

/// Longest payload a control frame (close, ping, pong) may have, and it
/// may not be fragmented (RFC 6455 §5.5).
const MAX_CONTROL_PAYLOAD: u64 = 125;

/// A control frame announced past [`MAX_CONTROL_PAYLOAD`], or fragmented,
/// is refused at its header too: the parsers behind would buffer it whole
/// before checking.
fn check_control(frame: &Header) -> Result<(), Oversized> {
    if frame.opcode >= 0x8 && (frame.length > MAX_CONTROL_PAYLOAD || !frame.fin) {
        return Err(Oversized {
            announced: frame.length,
            limit: MAX_CONTROL_PAYLOAD,
        });
    }
    Ok(())
}

/// A frame header's fields that matter here.
struct Header {
    fin: bool,
    opcode: u8,
    length: u64,
}

/// The header in `bytes` once they hold all of it (2 to 14 bytes).
fn parse_header(bytes: &[u8]) -> Option<Header> {
    if bytes.len() < 2 {
        return None;
    }
    let masked = bytes[1] & 0x80 != 0;
    let (length_bytes, short) = match bytes[1] & 0x7f {
        126 => (2, None),
        127 => (8, None),
        short => (0, Some(u64::from(short))),
    };
    let total = 2 + length_bytes + if masked { 4 } else { 0 };
    if bytes.len() < total {
        return None;
    }
    let length = short.unwrap_or_else(|| {
        bytes[2..2 + length_bytes]
            .iter()
            .fold(0u64, |length, byte| (length << 8) | u64::from(*byte))
    });
    Some(Header {
        fin: bytes[0] & 0x80 != 0,
        opcode: bytes[0] & 0x0f,
        length,
    })
}

/// A socket's inbound bytes behind a [`FrameGuard`]: an oversized frame
/// ends the stream with an error at its header, and `tripped` tells the
/// session why (so it closes with 1009).
pub(crate) struct GuardedPayload<S> {
    inner: S,
    guard: FrameGuard,
    tripped: Arc<AtomicBool>,
    done: bool,
}

impl<S> GuardedPayload<S> {
    /// Guards `inner` with `limit`; `tripped` is set when it refuses.
    pub(crate) fn new(inner: S, limit: usize, tripped: Arc<AtomicBool>) -> GuardedPayload<S> {
        GuardedPayload {
            inner,
            guard: FrameGuard::new(limit),
            tripped,
            done: false,
        }
    }
}

impl<S> Stream for GuardedPayload<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(bytes))) => match this.guard.feed(&bytes) {
                Ok(()) => Poll::Ready(Some(Ok(bytes))),
                Err(oversized) => {
                    // Nothing of this chunk goes on: the payload is never kept.
                    this.done = true;
                    this.tripped.store(true, Ordering::Release);
                    let error = std::io::Error::other(oversized);
                    Poll::Ready(Some(Err(PayloadError::Io(error))))
                }
            },
            other => other,
        }
    }
}

/// A WebSocket codec behind a frame guard, for sockets read through a
/// `Framed` (the client's): a frame or fragmented message announced over the
/// limit is refused with [`ProtocolError::Overflow`] as soon as its header
/// is in the read buffer, before the payload is read.
pub(crate) struct GuardedCodec<C> {
    inner: C,
    limit: u64,
    /// Bytes of the fragmented message in progress.
    message: u64,
}

impl<C> GuardedCodec<C> {
    /// `inner` behind a guard of `limit` bytes.
    pub(crate) fn new(inner: C, limit: usize) -> GuardedCodec<C> {
        GuardedCodec {
            inner,
            limit: limit as u64,
            message: 0,
        }
    }
}

impl<C> Decoder for GuardedCodec<C>
where
    C: Decoder<Item = Frame, Error = ProtocolError>,
{
    type Item = Frame;
    type Error = ProtocolError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        if let Some(header) = parse_header(&src[..src.len().min(14)]) {
            if check_control(&header).is_err() {
                return Err(ProtocolError::Overflow);
            }
            let so_far = if header.opcode == 0 { self.message } else { 0 };
            if header.opcode < 0x8 && so_far.saturating_add(header.length) > self.limit {
                return Err(ProtocolError::Overflow);
            }
        }
        let frame = self.inner.decode(src)?;
        if let Some(Frame::Continuation(item)) = &frame {
            self.message = match item {
                Item::FirstText(chunk) | Item::FirstBinary(chunk) => chunk.len() as u64,
                Item::Continue(chunk) => self.message + chunk.len() as u64,
                Item::Last(_) => 0,
            };
        }
        Ok(frame)
    }
}

impl<C, I> Encoder<I> for GuardedCodec<C>
where
    C: Encoder<I>,
{
    type Error = C::Error;

    fn encode(&mut self, item: I, dst: &mut BytesMut) -> Result<(), Self::Error> {
        self.inner.encode(item, dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client frame header (masked) announcing `length` bytes.
    fn header(fin: bool, opcode: u8, length: u64) -> Vec<u8> {
        let mut bytes = vec![if fin { 0x80 } else { 0 } | opcode];
        match length {
            0..=125 => bytes.push(0x80 | length as u8),
            126..=0xffff => {
                bytes.push(0x80 | 126);
                bytes.extend_from_slice(&(length as u16).to_be_bytes());
            }
            _ => {
                bytes.push(0x80 | 127);
                bytes.extend_from_slice(&length.to_be_bytes());
            }
        }
        bytes.extend_from_slice(&[1, 2, 3, 4]); // the mask
        bytes
    }

    fn frame(fin: bool, opcode: u8, payload: usize) -> Vec<u8> {
        let mut bytes = header(fin, opcode, payload as u64);
        bytes.extend(std::iter::repeat_n(b'x', payload));
        bytes
    }

    #[test]
    fn frames_within_the_limit_pass_in_any_split() {
        let mut stream = frame(true, 1, 100);
        stream.extend(frame(true, 9, 4)); // a ping
        stream.extend(frame(true, 1, 70_000));
        for chunk in [1, 3, 7, 1000, stream.len()] {
            let mut guard = FrameGuard::new(70_000);
            for piece in stream.chunks(chunk) {
                assert_eq!(guard.feed(piece), Ok(()), "chunks of {chunk}");
            }
        }
    }

    #[test]
    fn a_huge_announced_frame_is_refused_at_its_header() {
        let mut guard = FrameGuard::new(1 << 20);
        let refused = guard.feed(&header(true, 1, 1 << 40));
        assert_eq!(
            refused,
            Err(Oversized {
                announced: 1 << 40,
                limit: 1 << 20
            })
        );
    }

    #[test]
    fn a_fragmented_message_is_refused_when_its_sum_crosses_the_limit() {
        let mut guard = FrameGuard::new(1000);
        assert_eq!(guard.feed(&frame(false, 1, 600)), Ok(()));
        assert_eq!(guard.feed(&frame(true, 9, 10)), Ok(()), "a ping in between");
        let refused = guard.feed(&header(false, 0, 600));
        assert_eq!(refused.map_err(|e| e.announced), Err(1200));
        // After a complete message the count starts over.
        let mut guard = FrameGuard::new(1000);
        assert_eq!(guard.feed(&frame(false, 1, 600)), Ok(()));
        assert_eq!(guard.feed(&frame(true, 0, 300)), Ok(()));
        assert_eq!(guard.feed(&frame(true, 1, 900)), Ok(()));
    }

    #[test]
    fn control_frames_do_not_count_toward_a_message() {
        let mut guard = FrameGuard::new(10);
        assert_eq!(guard.feed(&frame(true, 8, 100)), Ok(()));
        assert_eq!(guard.feed(&frame(true, 1, 10)), Ok(()));
    }

    #[test]
    fn a_long_or_fragmented_control_frame_is_refused_at_its_header() {
        let mut guard = FrameGuard::new(1 << 20);
        let refused = guard.feed(&header(true, 9, 1 << 40)).map_err(|e| e.limit);
        assert_eq!(refused, Err(125), "a ping announced at 2^40 bytes");
        let mut guard = FrameGuard::new(1 << 20);
        assert!(
            guard.feed(&header(true, 8, 126)).is_err(),
            "a 126-byte close"
        );
        let mut guard = FrameGuard::new(1 << 20);
        assert!(
            guard.feed(&header(false, 10, 4)).is_err(),
            "a fragmented pong"
        );
    }
}
