use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use actix_codec::Decoder;
use actix_http::body::MessageBody;
use actix_http::ws::{CloseCode, Codec, Frame};
use actix_ws::CloseReason;
use bytes::{Bytes, BytesMut};

use crate::transport::outbox::{Outbox, OutboxBody, OutboxLimits};

const LIMITS: OutboxLimits = OutboxLimits {
    max_frames: 4,
    max_bytes: 1024,
};

fn poll(body: &mut OutboxBody) -> Poll<Option<Bytes>> {
    let mut cx = Context::from_waker(Waker::noop());
    Pin::new(body)
        .poll_next(&mut cx)
        .map(|chunk| chunk.map(|bytes| bytes.expect("encodes")))
}

/// Decodes what a body wrote as a client would.
fn frames(bytes: Bytes) -> Vec<Frame> {
    let mut codec = Codec::new().client_mode();
    let mut buffer = BytesMut::from(&bytes[..]);
    let mut frames = Vec::new();
    while let Some(frame) = codec.decode(&mut buffer).expect("valid frames") {
        frames.push(frame);
    }
    frames
}

#[test]
fn queued_frames_leave_in_one_chunk_and_free_their_room() {
    let (outbox, _closer, queued) = Outbox::bounded(LIMITS);
    let mut body = queued.into_body();
    assert_eq!(poll(&mut body), Poll::Pending, "nothing queued yet");
    outbox.push("one".into()).expect("room");
    outbox.push("two".into()).expect("room");
    outbox.pong(Bytes::from_static(b"p")).expect("room");
    assert_eq!(outbox.backlog(), 3);
    let Poll::Ready(Some(chunk)) = poll(&mut body) else {
        panic!("a chunk is ready");
    };
    let frames = frames(chunk);
    assert_eq!(frames.len(), 3);
    assert!(matches!(&frames[0], Frame::Text(text) if &text[..] == b"one"));
    assert!(matches!(&frames[2], Frame::Pong(payload) if &payload[..] == b"p"));
    assert_eq!(outbox.backlog(), 0);
    assert_eq!(outbox.written(), 3);
    assert!(outbox.push("three".into()).is_ok(), "room again");
}

#[test]
fn an_unread_body_bounds_the_queue() {
    let (outbox, _closer, queued) = Outbox::bounded(LIMITS);
    let _body = queued.into_body();
    for _ in 0..LIMITS.max_frames {
        outbox.push("x".into()).expect("room");
    }
    assert!(outbox.push("x".into()).is_err(), "a full queue refuses");
}

#[test]
fn the_close_frame_ends_the_body_and_what_was_queued_behind_it_is_not_written() {
    let (outbox, closer, queued) = Outbox::bounded(LIMITS);
    let mut body = queued.into_body();
    outbox.push("late".into()).expect("room");
    closer.close(CloseReason {
        code: CloseCode::Again,
        description: Some("é".repeat(100)),
    });
    assert!(
        outbox.push("after".into()).is_err(),
        "closing refuses pushes"
    );
    let Poll::Ready(Some(chunk)) = poll(&mut body) else {
        panic!("the close frame is ready");
    };
    let frames = frames(chunk);
    let [Frame::Close(Some(reason))] = &frames[..] else {
        panic!("only the close frame: {frames:?}");
    };
    assert_eq!(reason.code, CloseCode::Again);
    let description = reason.description.as_deref().unwrap_or_default();
    assert!(description.len() <= 123, "fits a control frame");
    assert_eq!(poll(&mut body), Poll::Ready(None));
}

#[test]
fn a_dropped_body_means_the_socket_is_gone() {
    let (outbox, _closer, queued) = Outbox::bounded(LIMITS);
    drop(queued.into_body());
    assert!(outbox.is_gone());
    assert!(outbox.push("x".into()).is_err());
}
