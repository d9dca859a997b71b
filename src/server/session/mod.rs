//! `ServerSession`: the actor that owns one inbound socket.
//!
//! It reads frames (continuations already joined, size capped), answers
//! pings, enforces the idle timeout, and hands text to the [`Protocol`] the
//! socket speaks (Phoenix V2 or envelope v1). Everything it writes goes
//! through the socket's bounded [`Outbox`], emptied beside the actor (by the
//! TCP socket's response body, or by a writer task into an in-memory or
//! long-poll sink), so a peer that stops reading can never freeze the actor
//! nor grow its memory.
//!
//! Built on `actix-ws` rather than `actix-web-actors`: the latter drives the
//! actor from the HTTP response body, which actix-http stops polling once 32 KiB
//! are waiting for a peer that does not read; the actor, its timers and its
//! mailbox then stall with it, and nothing can close the socket.

mod inbound_rate;
pub(crate) mod ingest_socket;
pub(crate) mod phoenix_socket;

use std::time::{Duration, Instant};

use actix::{Actor, ActorContext, ActorFutureExt, AsyncContext, Context, Handler, StreamHandler};
use actix_ws::{AggregatedMessage, CloseCode, CloseReason, ProtocolError};
use bytestring::ByteString;

use crate::config::{InboundRateConfig, OnExceed};
use crate::server::registry::{CloseSession, Registry, SessionId};
use crate::server::stats::{CloseCause, HubStats};
use crate::server::stats::{FrameProblem, Throttle};
use crate::transport::outbox::{Closer, Outbox, OutboxLimits, SlowConsumer};
use crate::transport::read_gate::{Hold, ReadGate};
use crate::transport::SocketSink;
use inbound_rate::InboundRate;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What a peer sends a session: whole messages (continuations joined, size
/// capped), from an upgraded TCP socket or an in-memory one.
pub(crate) type InboundStream =
    Pin<Box<dyn futures_util::Stream<Item = Result<AggregatedMessage, ProtocolError>>>>;

/// The wire protocol a session speaks: what to do with each text frame.
pub(crate) trait Protocol: Sized + Unpin + 'static {
    /// Handles one inbound text frame (a protocol may keep slices of it);
    /// never fails (bad input is counted and answered by the protocol itself).
    fn on_text(&mut self, text: &ByteString, ctx: &mut Context<ServerSession<Self>>);

    /// A text frame over the socket's inbound rate limit arrived (under
    /// `on_exceed = "refuse"`): answer it with `rate_limited` where the
    /// protocol can, handle nothing.
    fn on_rate_limited(&mut self, text: &str, ctx: &mut Context<ServerSession<Self>>);

    /// The socket is gone: forget it wherever it was registered.
    fn on_stop(&mut self);
}

/// Where a session's frames go.
pub(crate) enum Outgoing {
    /// A write half: a writer task empties the outbox into it.
    Sink(SocketSink),
    /// An outbox already emptied elsewhere (by a TCP socket's response body).
    Outbox(Outbox, Closer),
}

/// Everything a session needs to start.
pub(crate) struct SessionParts {
    /// Where the socket's frames go.
    pub outgoing: Outgoing,
    /// Read half.
    pub stream: InboundStream,
    /// The socket's id within the hub.
    pub id: SessionId,
    /// The hub's directory.
    pub registry: Arc<Registry>,
    /// The hub's counters.
    pub stats: Arc<HubStats>,
    /// Close the socket after this long without an inbound frame.
    pub idle_timeout: Duration,
    /// Bounds of the outbound queue (of an [`Outgoing::Sink`]).
    pub limits: OutboxLimits,
    /// Set when the inbound frame guard refused a frame at its header.
    pub oversized: Arc<AtomicBool>,
    /// The optional inbound rate limit.
    pub inbound_rate: InboundRateConfig,
}

/// The actor behind one inbound socket speaking `P`.
pub(crate) struct ServerSession<P: Protocol> {
    socket: P,
    outbox: Outbox,
    closer: Option<Closer>,
    stats: Arc<HubStats>,
    last_inbound: Instant,
    idle_timeout: Duration,
    span: tracing::Span,
    registry: Arc<Registry>,
    oversized: Arc<AtomicBool>,
    gate: ReadGate,
    rate: Option<InboundRate>,
    on_exceed: OnExceed,
}

impl<P: Protocol> ServerSession<P> {
    /// Starts the session actor on the current arbiter; `protocol` builds the
    /// protocol state from the socket's outbox, the gate on its inbound
    /// stream, and the actor's context.
    pub(crate) fn start(
        parts: SessionParts,
        protocol: impl FnOnce(Outbox, ReadGate, &mut Context<ServerSession<P>>) -> P,
    ) -> actix::Addr<ServerSession<P>> {
        ServerSession::create(|ctx| {
            let (outbox, closer) = match parts.outgoing {
                Outgoing::Sink(sink) => {
                    Outbox::spawn(sink, parts.limits, ctx.address().recipient())
                }
                Outgoing::Outbox(outbox, closer) => {
                    outbox.tell_overflow_to(ctx.address().recipient());
                    (outbox, closer)
                }
            };
            let gate = ReadGate::default();
            ctx.add_stream(gate.wrap(parts.stream));
            let id = parts.id;
            parts.registry.add_session(id, ctx.address().recipient());
            ServerSession {
                socket: protocol(outbox.clone(), gate.clone(), ctx),
                outbox,
                closer: Some(closer),
                stats: parts.stats,
                last_inbound: Instant::now(),
                idle_timeout: parts.idle_timeout,
                span: tracing::info_span!("session", id),
                registry: parts.registry,
                oversized: parts.oversized,
                gate,
                rate: InboundRate::new(&parts.inbound_rate, Instant::now()),
                on_exceed: parts.inbound_rate.on_exceed,
            }
        })
    }

    /// The protocol state.
    pub(crate) fn protocol(&mut self) -> &mut P {
        &mut self.socket
    }

    /// Closes the socket with `code`, counting `cause` (once).
    pub(crate) fn close(
        &mut self,
        ctx: &mut Context<Self>,
        cause: CloseCause,
        code: CloseCode,
        why: &str,
    ) {
        self.close_inner(ctx, cause, code, why);
    }

    fn close_inner(
        &mut self,
        ctx: &mut Context<Self>,
        cause: CloseCause,
        code: CloseCode,
        why: &str,
    ) {
        if self.closer.is_none() {
            return; // already closing: count and log once
        }
        self.stats.closed(cause);
        tracing::info!(parent: &self.span, cause = cause.label(), "closing socket: {why}");
        self.close_with(
            ctx,
            Some(CloseReason {
                code,
                description: Some(why.to_owned()),
            }),
        );
    }

    fn close_with(&mut self, ctx: &mut Context<Self>, reason: Option<CloseReason>) {
        if let Some(closer) = self.closer.take() {
            closer.close(reason.unwrap_or_else(|| CloseCode::Normal.into()));
        }
        ctx.stop();
    }

    fn draining(&self) -> bool {
        self.registry.is_draining()
    }

    /// Run after every inbound frame: while the outbox is half full (in
    /// frames or bytes) the socket is not read, so a peer that asks faster
    /// than it reads (joins with replays, requests) is slowed by TCP instead
    /// of overflowing its outbox. A peer that reads nothing at all for
    /// `idle_timeout` meanwhile is closed as a slow consumer; one that reads,
    /// however slowly, is waited for.
    fn pace(&mut self, ctx: &mut Context<Self>) {
        if self.gate.is_held(Hold::Drain) || !self.outbox.half_full() {
            return;
        }
        self.stats.throttled(Throttle::Answers);
        self.gate.hold(Hold::Drain);
        self.await_drain(ctx);
    }

    fn await_drain(&mut self, ctx: &mut Context<Self>) {
        let written_before = self.outbox.written();
        let drained = tokio::time::timeout(self.idle_timeout, self.outbox.drained_below_half());
        ctx.spawn(
            actix::fut::wrap_future::<_, Self>(drained).map(move |drained, session, ctx| {
                match drained {
                    Ok(()) => session.gate.release(Hold::Drain),
                    Err(_) if session.outbox.written() != written_before => {
                        session.await_drain(ctx)
                    }
                    Err(_) => {
                        let why = "answers not read within the idle timeout";
                        session.close(ctx, CloseCause::SlowConsumer, CloseCode::Again, why);
                    }
                }
            }),
        );
    }

    /// Whether `message` is within the inbound rate limit (charging it).
    fn within_rate(&mut self, message: &AggregatedMessage) -> bool {
        let Some(rate) = &mut self.rate else {
            return true;
        };
        let len = match message {
            AggregatedMessage::Text(text) => text.len(),
            AggregatedMessage::Binary(bytes) => bytes.len(),
            AggregatedMessage::Ping(bytes) | AggregatedMessage::Pong(bytes) => bytes.len(),
            AggregatedMessage::Close(_) => return true,
        };
        rate.admit(len, Instant::now())
    }

    /// A frame over the limit: refused (answered where the protocol can) or
    /// the socket closed, per `on_exceed`; counted either way.
    fn over_rate(&mut self, message: AggregatedMessage, ctx: &mut Context<Self>) {
        self.stats.frame_problem(FrameProblem::RateLimited);
        match (self.on_exceed, message) {
            (OnExceed::Close, _) => {
                let why = "inbound rate limit exceeded";
                self.close(ctx, CloseCause::RateLimited, CloseCode::Policy, why);
            }
            (OnExceed::Refuse, AggregatedMessage::Text(text)) => {
                self.socket.on_rate_limited(&text, ctx);
            }
            // A ping over the limit gets no pong; the rest needs no answer.
            (OnExceed::Refuse, _) => {}
        }
    }

    fn check_idle(&mut self, ctx: &mut Context<Self>) {
        if self.gate.is_shut() {
            // Not read on purpose: the peer is not idle (a wait on the peer
            // itself is bounded by `pace`).
            self.last_inbound = Instant::now();
            return;
        }
        if self.last_inbound.elapsed() >= self.idle_timeout {
            let why = "no frame within the idle timeout";
            self.close(ctx, CloseCause::Idle, CloseCode::Away, why);
        }
    }
}

impl<P: Protocol> Actor for ServerSession<P> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        tracing::debug!(parent: &self.span, "socket open");
        if self.draining() {
            // Admitted while a drain began: the drain's snapshot may miss us.
            let why = "server restarting";
            return self.close(ctx, CloseCause::Shutdown, CloseCode::Restart, why);
        }
        let every =
            (self.idle_timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(5));
        ctx.run_interval(every, |session, ctx| session.check_idle(ctx));
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        tracing::debug!(parent: &self.span, "socket closed");
        self.socket.on_stop();
    }
}

impl<P: Protocol> StreamHandler<Result<AggregatedMessage, ProtocolError>> for ServerSession<P> {
    fn handle(&mut self, item: Result<AggregatedMessage, ProtocolError>, ctx: &mut Context<Self>) {
        let _entered = self.span.clone().entered();
        let message = match item {
            Ok(message) => message,
            Err(ProtocolError::Overflow) => {
                let why = "frame larger than max_frame_bytes";
                return self.close(ctx, CloseCause::FrameTooLarge, CloseCode::Size, why);
            }
            Err(ProtocolError::Io(error)) if error.kind() == std::io::ErrorKind::InvalidData => {
                let why = "text frame is not valid UTF-8";
                return self.close(ctx, CloseCause::InvalidText, CloseCode::Invalid, why);
            }
            // The frame guard refused a frame or message at its header.
            Err(ProtocolError::Io(_)) if self.oversized.load(Ordering::Acquire) => {
                let why = "frame larger than max_frame_bytes";
                return self.close(ctx, CloseCause::FrameTooLarge, CloseCode::Size, why);
            }
            // actix-ws reports an oversized fragmented message as an I/O error.
            Err(ProtocolError::Io(error)) if error.to_string().contains("continuation size") => {
                let why = "message larger than max_frame_bytes";
                return self.close(ctx, CloseCause::FrameTooLarge, CloseCode::Size, why);
            }
            Err(ProtocolError::Io(error)) => {
                // The peer vanished without a close frame: nothing to answer.
                tracing::debug!(parent: &self.span, %error, "peer disconnected");
                return ctx.stop();
            }
            Err(error) => {
                let why = format!("websocket protocol error: {error}");
                return self.close(ctx, CloseCause::ProtocolError, CloseCode::Protocol, &why);
            }
        };
        self.last_inbound = Instant::now();
        if !self.within_rate(&message) {
            self.over_rate(message, ctx);
            return self.pace(ctx);
        }
        match message {
            AggregatedMessage::Text(text) => self.socket.on_text(&text, ctx),
            AggregatedMessage::Binary(_) => {
                let why = "binary frames are not supported: send Phoenix V2 JSON text";
                self.close(ctx, CloseCause::BinaryFrame, CloseCode::Unsupported, why);
            }
            AggregatedMessage::Ping(payload) => {
                // On overflow the session hears SlowConsumer and closes.
                let _ = self.outbox.pong(payload);
            }
            AggregatedMessage::Pong(_) => {}
            AggregatedMessage::Close(reason) => {
                tracing::debug!(parent: &self.span, ?reason, "peer closed");
                return self.close_with(ctx, reason);
            }
        }
        self.pace(ctx);
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl<P: Protocol> Handler<SlowConsumer> for ServerSession<P> {
    type Result = ();

    fn handle(&mut self, _: SlowConsumer, ctx: &mut Context<Self>) {
        let why = "outbound queue full: the peer is not reading";
        self.close(ctx, CloseCause::SlowConsumer, CloseCode::Again, why);
    }
}

impl<P: Protocol> Handler<CloseSession> for ServerSession<P> {
    type Result = ();

    fn handle(&mut self, msg: CloseSession, ctx: &mut Context<Self>) {
        self.close(
            ctx,
            CloseCause::Shutdown,
            CloseCode::from(msg.code),
            msg.reason,
        );
    }
}
