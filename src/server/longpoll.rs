//! Long-poll sessions: phoenix.js's `LongPoll` transport. A session is a
//! hub socket like any other (the same session actor, channels, presence,
//! history), whose inbound stream is fed by POSTs and whose outbound frames
//! wait in a bounded queue for the next GET.
//!
//! A session ends when no GET came for `server.longpoll_window`, when it
//! lets more than `server.max_outbound_bytes` wait for a GET, or when the
//! hub closes it; its token then answers `410` and phoenix.js starts a new
//! one.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_ws::{AggregatedMessage, ProtocolError};
use bytes::Bytes;
use dashmap::DashMap;
use futures_util::{sink, stream};
use tokio::sync::mpsc;

use crate::server::registry::ConnectionSlot;
use crate::server::session::InboundStream;
use crate::transport::{Message, SocketSink, TransportError};

/// How long a GET waits for messages before answering 204 (phoenix.js
/// gives up on a request after its `timeout`, 10 s by default).
pub(crate) const POLL_WAIT: Duration = Duration::from_secs(5);
/// Frames waiting for the next GET (the session's outbox bounds it too).
const OUTBOUND_FRAMES: usize = 256;
/// Most frames one GET answers.
const BATCH: usize = 100;
/// Frames of POSTs waiting for the session to read them.
const INBOUND_FRAMES: usize = 64;
/// Most long-poll sessions (each also holds a connection slot).
const MAX_SESSIONS: usize = 100_000;

/// One long-poll session.
pub(crate) struct LongPollSession {
    inbound: Mutex<Option<mpsc::Sender<AggregatedMessage>>>,
    outbound: tokio::sync::Mutex<mpsc::Receiver<String>>,
    /// Bytes of the frames waiting for a GET.
    waiting: AtomicUsize,
    last_poll: Mutex<Instant>,
}

/// Every long-poll session of one hub, by token.
#[derive(Default)]
pub(crate) struct LongPolls {
    sessions: DashMap<String, Arc<LongPollSession>>,
}

/// What a GET got.
pub(crate) enum Polled {
    /// Frames, oldest first.
    Messages(Vec<String>),
    /// Nothing within [`POLL_WAIT`].
    Nothing,
    /// No such session (expired, closed, or never was).
    Gone,
}

impl LongPolls {
    /// A new session holding `slot`: its token, and the two halves a
    /// session actor takes (`None` past [`MAX_SESSIONS`]).
    pub(crate) fn open(
        self: &Arc<Self>,
        slot: ConnectionSlot,
        window: Duration,
        max_bytes: usize,
    ) -> Option<(String, SocketSink, InboundStream)> {
        if self.sessions.len() >= MAX_SESSIONS {
            return None;
        }
        let token = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        let (to_session, from_posts) = mpsc::channel(INBOUND_FRAMES);
        let (to_polls, from_session) = mpsc::channel(OUTBOUND_FRAMES);
        let session = Arc::new(LongPollSession {
            inbound: Mutex::new(Some(to_session)),
            outbound: tokio::sync::Mutex::new(from_session),
            waiting: AtomicUsize::new(0),
            last_poll: Mutex::new(Instant::now()),
        });
        self.sessions.insert(token.clone(), session.clone());
        let stream: InboundStream = Box::pin(stream::unfold(
            (from_posts, slot),
            |(mut posts, slot)| async move {
                let message = posts.recv().await?;
                Some((Ok::<_, ProtocolError>(message), (posts, slot)))
            },
        ));
        let counted = session.clone();
        let sink: SocketSink =
            Box::pin(sink::unfold(to_polls, move |to_polls, message: Message| {
                let counted = counted.clone();
                async move {
                    match message {
                        Message::Text(text) => {
                            // A peer that lets this much wait is not polling.
                            let before = counted.waiting.fetch_add(text.len(), Ordering::Relaxed);
                            if before + text.len() > max_bytes {
                                return Err(TransportError::Closed);
                            }
                            to_polls
                                .send(text.to_string())
                                .await
                                .map_err(|_| TransportError::Closed)?;
                        }
                        // Nothing else travels over long-poll; a close ends it.
                        Message::Close(_) => return Err(TransportError::Closed),
                        _ => {}
                    }
                    Ok(to_polls)
                }
            }));
        self.watch(token.clone(), session, window);
        Some((token, sink, stream))
    }

    /// Closes `token`'s session once no GET came for `window`.
    fn watch(self: &Arc<Self>, token: String, session: Arc<LongPollSession>, window: Duration) {
        let polls = Arc::downgrade(self);
        actix::spawn(async move {
            loop {
                tokio::time::sleep(window / 4).await;
                let idle = lock(&session.last_poll).elapsed() >= window;
                let closed = lock(&session.inbound).is_none();
                if idle || closed {
                    // Dropping the sender ends the session's stream.
                    lock(&session.inbound).take();
                    if let Some(polls) = polls.upgrade() {
                        polls.sessions.remove(&token);
                    }
                    return;
                }
            }
        });
    }

    fn session(&self, token: &str) -> Option<Arc<LongPollSession>> {
        self.sessions.get(token).map(|session| session.clone())
    }

    /// Waits up to [`POLL_WAIT`] for `token`'s frames.
    pub(crate) async fn poll(&self, token: &str) -> Polled {
        let Some(session) = self.session(token) else {
            return Polled::Gone;
        };
        *lock(&session.last_poll) = Instant::now();
        // A poll is the peer's sign of life (phoenix.js sends no heartbeat
        // over long-poll): the session's idle timer sees it as a ping.
        if let Some(inbound) = lock(&session.inbound).as_ref() {
            let _ = inbound.try_send(AggregatedMessage::Ping(Bytes::new()));
        }
        let mut outbound = session.outbound.lock().await;
        let first = match tokio::time::timeout(POLL_WAIT, outbound.recv()).await {
            Ok(Some(first)) => first,
            Ok(None) => {
                self.sessions.remove(token);
                return Polled::Gone;
            }
            Err(_) => return Polled::Nothing,
        };
        let mut messages = vec![first];
        while messages.len() < BATCH {
            match outbound.try_recv() {
                Ok(more) => messages.push(more),
                Err(_) => break,
            }
        }
        let taken: usize = messages.iter().map(String::len).sum();
        session.waiting.fetch_sub(taken, Ordering::Relaxed);
        Polled::Messages(messages)
    }

    /// Hands the lines of a POST to `token`'s session, in order; `false`
    /// when there is no such session.
    pub(crate) async fn post(&self, token: &str, lines: Vec<String>) -> bool {
        let Some(session) = self.session(token) else {
            return false;
        };
        let Some(inbound) = lock(&session.inbound).clone() else {
            return false;
        };
        for line in lines {
            if inbound
                .send(AggregatedMessage::Text(line.into()))
                .await
                .is_err()
            {
                return false;
            }
        }
        true
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How a peer's stream of POSTed lines is capped: lines longer than
/// `max_frame_bytes` are refused as an oversized frame would be.
pub(crate) fn within_frame_limit(lines: &[String], max_frame_bytes: usize) -> bool {
    lines.iter().all(|line| line.len() <= max_frame_bytes)
}
