use actix_codec::{Decoder, Encoder};
use awc::ws::{Codec, Frame, Message};
use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::ClientFrames;
use crate::transport::frame_guard::GuardedCodec;

const LIMIT: usize = 64 * 1024;

/// A client's frames over one end of an in-memory pipe; the other end is
/// the "server", speaking with a server-side codec.
fn pipe() -> (ClientFrames, tokio::io::DuplexStream) {
    let (client, server) = tokio::io::duplex(1024);
    let codec = GuardedCodec::new(Codec::new().client_mode(), LIMIT);
    (ClientFrames::new(Box::new(client), codec, b""), server)
}

fn server_frame(text: &str) -> BytesMut {
    let mut bytes = BytesMut::new();
    Codec::new()
        .encode(Message::Text(text.into()), &mut bytes)
        .expect("encodes");
    bytes
}

#[tokio::test]
async fn a_frame_larger_than_a_read_arrives_whole() {
    let (mut frames, mut server) = pipe();
    let text = "x".repeat(20_000);
    let bytes = server_frame(&text);
    let write = async move {
        server.write_all(&bytes).await.expect("written");
        server
    };
    let (frame, _server) = tokio::join!(frames.next(), write);
    let Some(Ok(Frame::Text(payload))) = frame else {
        panic!("a text frame: {frame:?}");
    };
    assert_eq!(payload.len(), 20_000);
}

#[tokio::test]
async fn bytes_read_past_the_handshake_are_not_lost() {
    let (client, _server) = tokio::io::duplex(1024);
    let codec = GuardedCodec::new(Codec::new().client_mode(), LIMIT);
    let early = server_frame("early");
    let mut frames = ClientFrames::new(Box::new(client), codec, &early);
    let frame = frames.next().await;
    assert!(matches!(frame, Some(Ok(Frame::Text(ref t))) if &t[..] == b"early"));
}

#[tokio::test]
async fn messages_fed_together_leave_on_flush_and_a_large_buffer_is_let_go() {
    let (mut frames, mut server) = pipe();
    let big = "y".repeat(10_000);
    let reader = tokio::spawn(async move {
        let mut bytes = BytesMut::new();
        let mut codec = Codec::new();
        let mut got = Vec::new();
        while got.len() < 3 {
            while let Some(frame) = codec.decode(&mut bytes).expect("valid") {
                got.push(frame);
            }
            if got.len() < 3 && server.read_buf(&mut bytes).await.expect("reads") == 0 {
                break;
            }
        }
        got
    });
    frames.feed(Message::Text("a".into())).await.expect("fed");
    frames
        .feed(Message::Text(big.clone().into()))
        .await
        .expect("fed");
    frames.send(Message::Text("b".into())).await.expect("sent");
    assert_eq!(frames.write.capacity(), 0, "the grown buffer was let go");
    let got = reader.await.expect("reader");
    assert_eq!(got.len(), 3);
    assert!(matches!(&got[1], Frame::Text(t) if t.len() == 10_000));
}

#[tokio::test]
async fn the_end_of_the_socket_ends_the_stream() {
    let (mut frames, server) = pipe();
    drop(server);
    assert!(frames.next().await.is_none());
}

#[tokio::test]
async fn closing_a_socket_whose_write_failed_is_not_an_error_again() {
    let (mut frames, server) = pipe();
    drop(server);
    let sent = frames.send(Message::Text("lost".into())).await;
    assert!(sent.is_err(), "the peer is gone");
    assert!(frames.close().await.is_ok(), "nothing more to say");
}

#[tokio::test]
async fn an_idle_connection_keeps_no_read_buffer() {
    let (mut frames, mut server) = pipe();
    server
        .write_all(&server_frame("once"))
        .await
        .expect("written");
    assert!(matches!(frames.next().await, Some(Ok(Frame::Text(_)))));
    let waited = tokio::time::timeout(std::time::Duration::from_millis(20), frames.next()).await;
    assert!(waited.is_err(), "nothing more came");
    assert_eq!(frames.read.capacity(), 0, "the empty buffer was let go");
}
