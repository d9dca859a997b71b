//! `Connection`: the actor that owns one outbound socket (awc).
//!
//! It dials (with fresh credentials and params each time), answers pings,
//! reassembles continuations, sends heartbeats and drops a socket whose
//! heartbeat goes unanswered for one interval, and redials with backoff,
//! paced by the switchboard's dial budget. Replies go to its `Correlator`,
//! everything else to its `Subscription`; both outlive a restart of this
//! actor, which runs under `actix::Supervisor`.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use actix::{
    Actor, ActorContext, ActorFutureExt, Addr, AsyncContext, Context, Handler, Message,
    SpawnHandle, StreamHandler, Supervised, WrapFuture,
};
use actix_ws::Item;
use actix_ws::{CloseCode, CloseReason};
use awc::error::{WsClientError, WsProtocolError};
use awc::ws::Frame as WsFrame;
use bytes::BytesMut;
use bytestring::ByteString;
use futures_util::{stream, StreamExt};
use serde_json::json;

use super::auth::{Credential, TokenCache};
use super::backoff::Backoff;
use super::config::ConnectionConfig;
use super::config::WireProtocol;
use super::correlator::{Correlator, FailAll, Resolve};
use super::dial_budget::DialBudget;
use super::error::{DialError, RequestError};
use super::events::{Announcer, ConnectEvent, Status};
use super::gauges::{TimerGauges, TimerGuard};
use super::producer::{Acked, Producer, Throttle};
use super::refs::RefCounter;
use super::subscription::{ConnectionClosed, Inbound, Subscription, TransportDown, TransportUp};
use crate::protocol::envelope::{Body, Envelope};
use crate::protocol::phoenix::{self, Frame, Reply};
use crate::transport::outbox::{Closer, Outbox, OutboxLimits, SlowConsumer};

/// Close the socket for good (no redial). Answers once the close is under way.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Shutdown;

/// Stop the actor so its supervisor restarts it: the socket is dropped and
/// redialled, every topic rejoined (as after a crash).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct ForceRestart;

/// An item of the socket's read half, tagged with the link it belongs to.
enum LinkItem {
    Frame(u64, Result<WsFrame, WsProtocolError>),
    End(u64),
}

/// The actors a connection hands its traffic to, per protocol.
#[derive(Clone)]
pub enum Peers {
    /// Phoenix V2: topics and pushes, and the correlator of replies by ref.
    Phoenix {
        /// Topics, buffers, handlers.
        subscription: Addr<Subscription>,
        /// Pending pushes by ref.
        correlator: Addr<Correlator>,
    },
    /// Envelope v1: unacked data, and the correlator of replies by id.
    Envelope {
        /// Unacked data, throttling.
        producer: Addr<Producer>,
        /// Pending requests by id.
        correlator: Addr<Correlator<Envelope>>,
    },
}

impl Peers {
    fn transport_up(&self, outbox: Outbox) {
        match self {
            Peers::Phoenix { subscription, .. } => subscription.do_send(TransportUp { outbox }),
            Peers::Envelope { producer, .. } => producer.do_send(TransportUp { outbox }),
        }
    }

    fn transport_down(&self, error: RequestError) {
        match self {
            Peers::Phoenix {
                subscription,
                correlator,
            } => {
                correlator.do_send(FailAll { error });
                subscription.do_send(TransportDown);
            }
            Peers::Envelope {
                producer,
                correlator,
            } => {
                correlator.do_send(FailAll { error });
                producer.do_send(TransportDown);
            }
        }
    }

    fn closed(&self) {
        self.transport_down(RequestError::Closed);
        match self {
            Peers::Phoenix { subscription, .. } => subscription.do_send(ConnectionClosed),
            Peers::Envelope { producer, .. } => producer.do_send(ConnectionClosed),
        }
    }
}

/// What the actor needs besides its config.
pub struct ConnectionParts {
    /// The connection's config.
    pub config: Arc<ConnectionConfig>,
    /// The actors its traffic goes to.
    pub peers: Peers,
    /// Status and events.
    pub announcer: Announcer,
    /// The switchboard-wide dial budget.
    pub budget: DialBudget,
    /// Ref counter shared with the subscription.
    pub refs: RefCounter,
    /// Live timer counts.
    pub gauges: Arc<TimerGauges>,
}

struct Link {
    outbox: Outbox,
    closer: Closer,
    stream: SpawnHandle,
    heartbeat: SpawnHandle,
    connected_at: Instant,
}

/// The actor of one outbound connection.
pub struct Connection {
    parts: ConnectionParts,
    backoff: Backoff,
    tokens: TokenCache,
    link: Option<Link>,
    generation: u64,
    redial: Option<SpawnHandle>,
    pending_heartbeat: Option<String>,
    partial: Option<BytesMut>,
    ever_connected: bool,
    failed_dials: u32,
    closed: bool,
    span: tracing::Span,
}

impl Connection {
    /// A connection that dials once started.
    pub fn new(parts: ConnectionParts) -> Connection {
        let span = tracing::info_span!("connection", url = %parts.config.url);
        Connection {
            backoff: Backoff::new(parts.config.reconnect),
            parts,
            tokens: TokenCache::default(),
            link: None,
            generation: 0,
            redial: None,
            pending_heartbeat: None,
            partial: None,
            ever_connected: false,
            failed_dials: 0,
            closed: false,
            span,
        }
    }

    fn dial_url(&self) -> String {
        let config = &self.parts.config;
        let mut params = config
            .params
            .as_ref()
            .map(|params| params())
            .unwrap_or_default();
        if config.protocol == WireProtocol::Phoenix {
            params.retain(|(key, _)| key != "vsn");
            params.push(("vsn".to_owned(), phoenix::VSN.to_owned()));
        }
        if params.is_empty() {
            return config.url.clone();
        }
        let query = serde_urlencoded::to_string(&params).unwrap_or_default();
        let separator = if config.url.contains('?') { '&' } else { '?' };
        format!("{}{separator}{query}", config.url)
    }

    fn schedule_dial(&mut self, delay: Duration, ctx: &mut Context<Self>) {
        if let Some(previous) = self.redial.take() {
            ctx.cancel_future(previous);
        }
        let now = Instant::now();
        let wait = self
            .parts
            .budget
            .reserve(now + delay)
            .saturating_duration_since(now);
        if self.ever_connected || self.failed_dials > 0 {
            self.parts.announcer.set_status(Status::Reconnecting);
            self.parts.announcer.emit(ConnectEvent::Reconnecting {
                attempt: self.backoff.attempt(),
                next_attempt_at: SystemTime::now() + wait,
            });
        } else {
            self.parts.announcer.set_status(Status::Connecting);
        }
        let guard = self.parts.gauges.dial_loop();
        let generation = self.generation;
        self.redial = Some(ctx.run_later(wait, move |connection, ctx| {
            connection.redial = None;
            if connection.generation == generation && !connection.closed {
                connection.dial(guard, ctx);
            }
        }));
    }

    fn dial(&mut self, guard: TimerGuard, ctx: &mut Context<Self>) {
        let config = self.parts.config.clone();
        let url = self.dial_url();
        let credential = self.tokens.resolve(&config.auth);
        let generation = self.generation;
        tracing::debug!(parent: &self.span, %url, "dialling");
        let attempt = async move {
            let credential = credential.await;
            let client = awc::Client::builder()
                .timeout(config.connect_timeout)
                .finish();
            let mut request = client.ws(url).max_frame_size(config.max_frame_bytes);
            request = match &credential {
                Credential::Nothing => request,
                Credential::Bearer(token) => request.bearer_auth(token),
                Credential::Basic(user, password) => request.basic_auth(user, Some(password)),
            };
            let connected = tokio::time::timeout(config.connect_timeout, request.connect()).await;
            let outcome = match connected {
                Ok(Ok((_, framed))) => Ok(framed),
                Ok(Err(error)) => Err(classify(error)),
                Err(_) => Err(DialError::Connect("timed out".to_owned())),
            };
            (credential, outcome)
        };
        ctx.spawn(
            attempt
                .into_actor(self)
                .map(move |(credential, outcome), connection, ctx| {
                    drop(guard);
                    if connection.generation != generation || connection.closed {
                        return;
                    }
                    match outcome {
                        Ok(framed) => {
                            connection.tokens.remember(&credential);
                            connection.linked(framed, ctx);
                        }
                        Err(error) => connection.dial_failed(error, ctx),
                    }
                }),
        );
    }

    fn linked(
        &mut self,
        framed: actix_codec::Framed<awc::BoxedSocket, awc::ws::Codec>,
        ctx: &mut Context<Self>,
    ) {
        self.generation += 1;
        let generation = self.generation;
        let (sink, stream) = framed.split();
        let config = &self.parts.config;
        let limits = OutboxLimits {
            max_frames: config.write_queue_frames,
            max_bytes: config.write_queue_bytes,
        };
        let (outbox, closer) = Outbox::spawn(sink, limits, ctx.address().recipient());
        let items = stream
            .map(move |item| LinkItem::Frame(generation, item))
            .chain(stream::once(async move { LinkItem::End(generation) }));
        let stream = ctx.add_stream(items);
        let guard = self.parts.gauges.heartbeat();
        let heartbeat = ctx.run_interval(config.heartbeat_interval, move |connection, ctx| {
            let _alive = &guard;
            connection.beat(generation, ctx);
        });
        self.link = Some(Link {
            outbox: outbox.clone(),
            closer,
            stream,
            heartbeat,
            connected_at: Instant::now(),
        });
        self.pending_heartbeat = None;
        self.partial = None;
        self.ever_connected = true;
        self.failed_dials = 0;
        tracing::info!(parent: &self.span, "connected");
        self.parts.announcer.set_status(Status::Connected);
        self.parts.announcer.emit(ConnectEvent::Connected);
        self.parts.peers.transport_up(outbox);
    }

    fn dial_failed(&mut self, error: DialError, ctx: &mut Context<Self>) {
        self.failed_dials += 1;
        metrics::counter!("switchboard_client_dial_failures_total").increment(1);
        tracing::info!(parent: &self.span, %error, "dial failed");
        let reason = error.to_string();
        self.parts.announcer.emit(ConnectEvent::Disconnected {
            reason: reason.clone(),
        });
        if !self.ever_connected && self.parts.config.fail_first_connect {
            return self.close_for_good(&format!("first connect failed: {reason}"), ctx);
        }
        self.retry(ctx);
    }

    fn retry(&mut self, ctx: &mut Context<Self>) {
        match self.backoff.next_delay() {
            Some(delay) => self.schedule_dial(delay, ctx),
            None => {
                let attempts = self.backoff.attempt();
                self.close_for_good(&format!("gave up after {attempts} attempts"), ctx);
            }
        }
    }

    /// Drops the live socket (if any) and tells the other actors.
    fn unlink(&mut self, reason: &str, code: CloseCode, ctx: &mut Context<Self>) -> bool {
        let Some(link) = self.link.take() else {
            return false;
        };
        self.generation += 1;
        ctx.cancel_future(link.stream);
        ctx.cancel_future(link.heartbeat);
        link.closer.close(CloseReason {
            code,
            description: None,
        });
        self.pending_heartbeat = None;
        self.partial = None;
        self.backoff.connection_dropped(link.connected_at.elapsed());
        tracing::info!(parent: &self.span, %reason, "disconnected");
        self.parts.peers.transport_down(RequestError::Disconnected);
        self.parts.announcer.emit(ConnectEvent::Disconnected {
            reason: reason.to_owned(),
        });
        true
    }

    fn lost(&mut self, reason: &str, ctx: &mut Context<Self>) {
        if self.unlink(reason, CloseCode::Away, ctx) && !self.closed {
            self.retry(ctx);
        }
    }

    fn close_for_good(&mut self, reason: &str, ctx: &mut Context<Self>) {
        if self.closed {
            return;
        }
        self.closed = true;
        if let Some(redial) = self.redial.take() {
            ctx.cancel_future(redial);
        }
        self.unlink(reason, CloseCode::Normal, ctx);
        self.parts.peers.closed();
        self.parts.announcer.set_status(Status::Closed);
        self.parts.announcer.emit(ConnectEvent::Closed {
            reason: reason.to_owned(),
        });
    }

    fn beat(&mut self, generation: u64, ctx: &mut Context<Self>) {
        if generation != self.generation {
            return;
        }
        if self.pending_heartbeat.is_some() {
            metrics::counter!("switchboard_client_heartbeat_timeouts_total").increment(1);
            return self.lost("heartbeat timeout", ctx);
        }
        let Some(link) = &self.link else { return };
        let msg_ref = self.parts.refs.next();
        if matches!(self.parts.peers, Peers::Envelope { .. }) {
            // Envelope v1 has no heartbeat message: a WebSocket ping carries the ref.
            let _ = link.outbox.ping(bytes::Bytes::from(msg_ref.clone()));
            self.pending_heartbeat = Some(msg_ref);
            return;
        }
        let frame = phoenix::encode_parts(
            None,
            Some(&msg_ref),
            phoenix::PHOENIX_TOPIC,
            phoenix::HEARTBEAT,
            &json!({}),
        );
        // A full write queue surfaces as SlowConsumer, which drops the socket.
        let _ = link.outbox.push(ByteString::from(frame));
        self.pending_heartbeat = Some(msg_ref);
    }

    fn on_text(&mut self, text: &str) {
        match &self.parts.peers {
            Peers::Phoenix {
                subscription,
                correlator,
            } => {
                let (subscription, correlator) = (subscription.clone(), correlator.clone());
                self.on_phoenix(text, &subscription, &correlator);
            }
            Peers::Envelope {
                producer,
                correlator,
            } => on_envelope(text, producer, correlator),
        }
    }

    fn on_phoenix(
        &mut self,
        text: &str,
        subscription: &Addr<Subscription>,
        correlator: &Addr<Correlator>,
    ) {
        let frame = match Frame::decode(text) {
            Ok(frame) => frame,
            Err(error) => {
                metrics::counter!("switchboard_client_invalid_frames_total", "reason" => error.reason())
                    .increment(1);
                tracing::debug!(parent: &self.span, %error, "dropped an invalid frame");
                return;
            }
        };
        if frame.event == phoenix::PHX_REPLY {
            if let Some(msg_ref) = frame.msg_ref.clone() {
                if frame.topic == phoenix::PHOENIX_TOPIC
                    && self.pending_heartbeat.as_deref() == Some(msg_ref.as_str())
                {
                    self.pending_heartbeat = None;
                    return;
                }
                match Reply::from_payload(&frame.payload) {
                    Ok(reply) => {
                        if correlator.try_send(Resolve { msg_ref, reply }).is_err() {
                            metrics::counter!("switchboard_client_replies_dropped_total")
                                .increment(1);
                        }
                    }
                    Err(error) => {
                        metrics::counter!("switchboard_client_invalid_frames_total", "reason" => error.reason())
                            .increment(1);
                    }
                }
                return;
            }
        }
        if subscription.try_send(Inbound(frame)).is_err() {
            metrics::counter!("switchboard_client_pushes_dropped_total", "reason" => "subscription_busy")
                .increment(1);
            tracing::warn!(parent: &self.span, "subscription mailbox full: push dropped");
        }
    }

    fn on_frame(&mut self, frame: WsFrame, ctx: &mut Context<Self>) {
        match frame {
            WsFrame::Text(bytes) => match std::str::from_utf8(&bytes) {
                Ok(text) => self.on_text(text),
                Err(_) => {
                    metrics::counter!("switchboard_client_invalid_frames_total", "reason" => "invalid_utf8")
                        .increment(1);
                }
            },
            WsFrame::Continuation(item) => self.on_continuation(item, ctx),
            WsFrame::Binary(_) => {
                metrics::counter!("switchboard_client_invalid_frames_total", "reason" => "binary")
                    .increment(1);
            }
            WsFrame::Ping(payload) => {
                if let Some(link) = &self.link {
                    let _ = link.outbox.pong(payload);
                }
            }
            WsFrame::Pong(payload) => {
                if self.pending_heartbeat.as_deref().map(str::as_bytes) == Some(&payload[..]) {
                    self.pending_heartbeat = None;
                }
            }
            WsFrame::Close(reason) => self.on_close(reason, ctx),
        }
    }

    fn on_continuation(&mut self, item: Item, ctx: &mut Context<Self>) {
        let limit = self.parts.config.max_frame_bytes;
        let (chunk, first, last) = match item {
            Item::FirstText(chunk) => (chunk, true, false),
            Item::FirstBinary(chunk) => (chunk, true, false),
            Item::Continue(chunk) => (chunk, false, false),
            Item::Last(chunk) => (chunk, false, true),
        };
        if first {
            self.partial = Some(BytesMut::new());
        }
        let Some(partial) = self.partial.as_mut() else {
            return self.lost("continuation without a first frame", ctx);
        };
        if partial.len() + chunk.len() > limit {
            return self.lost("reassembled message larger than max_frame_bytes", ctx);
        }
        partial.extend_from_slice(&chunk);
        if last {
            if let Some(whole) = self.partial.take() {
                self.on_frame(WsFrame::Text(whole.freeze()), ctx);
            }
        }
    }

    fn on_close(&mut self, reason: Option<CloseReason>, ctx: &mut Context<Self>) {
        let code = reason.as_ref().map(|reason| u16::from(reason.code));
        let words = match &reason {
            Some(reason) => format!(
                "server closed with {} {}",
                u16::from(reason.code),
                reason.description.as_deref().unwrap_or("")
            ),
            None => "server closed".to_owned(),
        };
        if code.is_some_and(is_terminal) {
            return self.close_for_good(words.trim_end(), ctx);
        }
        // Any other close, 1000 included, is one the user did not ask for.
        self.lost(words.trim_end(), ctx);
    }
}

/// Routes one envelope v1 frame: replies to the correlator, acks and
/// throttling to the producer; anything else is counted and dropped.
fn on_envelope(text: &str, producer: &Addr<Producer>, correlator: &Addr<Correlator<Envelope>>) {
    let message = match Envelope::decode(text) {
        Ok(message) => message,
        Err(error) => {
            metrics::counter!("switchboard_client_invalid_frames_total", "reason" => error.reason())
                .increment(1);
            return;
        }
    };
    let delivered = match message.body {
        Body::Ack => producer
            .try_send(Acked {
                id: message.id,
                result: Ok(()),
            })
            .is_ok(),
        Body::Nack { reason, error } => producer
            .try_send(Acked {
                id: message.id,
                result: Err((reason, error.unwrap_or_default())),
            })
            .is_ok(),
        Body::Slow(signal) => producer.try_send(Throttle(!signal.resumed)).is_ok(),
        Body::Reply(_) => correlator
            .try_send(Resolve {
                msg_ref: message.id.clone(),
                reply: message,
            })
            .is_ok(),
        Body::Data(_) | Body::Request { .. } => {
            metrics::counter!("switchboard_client_invalid_frames_total", "reason" => "unexpected_type")
                .increment(1);
            true
        }
    };
    if !delivered {
        metrics::counter!("switchboard_client_replies_dropped_total").increment(1);
    }
}

/// Close codes after which redialling cannot help (NET-9).
pub fn is_terminal(code: u16) -> bool {
    matches!(code, 1002 | 1003 | 1007 | 1008 | 1009 | 1010)
}

fn classify(error: WsClientError) -> DialError {
    match error {
        WsClientError::InvalidResponseStatus(status) => DialError::Refused {
            status: status.as_u16(),
        },
        other => DialError::Connect(other.to_string()),
    }
}

impl Actor for Connection {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if !self.closed {
            self.schedule_dial(Duration::ZERO, ctx);
        }
    }
}

impl Supervised for Connection {
    fn restarting(&mut self, ctx: &mut Context<Self>) {
        // The old context's timers and stream are gone; forget their handles.
        self.redial = None;
        if self.unlink("connection actor restarted", CloseCode::Restart, ctx) {
            metrics::counter!("switchboard_client_restarts_total").increment(1);
        }
    }
}

impl StreamHandler<LinkItem> for Connection {
    fn handle(&mut self, item: LinkItem, ctx: &mut Context<Self>) {
        let _entered = self.span.clone().entered();
        match item {
            LinkItem::Frame(generation, _) | LinkItem::End(generation)
                if generation != self.generation => {}
            LinkItem::Frame(_, Ok(frame)) => self.on_frame(frame, ctx),
            LinkItem::Frame(_, Err(error)) => self.lost(&format!("read error: {error}"), ctx),
            LinkItem::End(_) => self.lost("socket closed", ctx),
        }
    }

    fn finished(&mut self, _: &mut Context<Self>) {
        // Each link's stream ends with LinkItem::End; the actor lives on.
    }
}

impl Handler<SlowConsumer> for Connection {
    type Result = ();

    fn handle(&mut self, _: SlowConsumer, ctx: &mut Context<Self>) {
        self.lost("write queue full: the server is not reading", ctx);
    }
}

impl Handler<Shutdown> for Connection {
    type Result = ();

    fn handle(&mut self, _: Shutdown, ctx: &mut Context<Self>) {
        self.close_for_good("closed by the application", ctx);
    }
}

impl Handler<ForceRestart> for Connection {
    type Result = ();

    fn handle(&mut self, _: ForceRestart, ctx: &mut Context<Self>) {
        if !self.closed {
            ctx.stop();
        }
    }
}
