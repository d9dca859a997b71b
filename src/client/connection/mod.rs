//! `Connection`: the actor that owns one outbound socket.
//!
//! It dials through its [`Transport`] (with fresh credentials and params
//! each time), answers pings, sends heartbeats and drops a socket whose
//! heartbeat goes unanswered for one interval, and redials with backoff,
//! paced by the switchboard's dial budget. Replies go to its correlator,
//! everything else to the actor of its protocol; both outlive a restart of
//! this actor, which runs under `actix::Supervisor`. Where the link is in
//! its life is one [`LinkState`](state::LinkState).

mod dial;
pub(crate) mod dial_budget;
mod state;
mod traffic;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use actix::{
    Actor, ActorContext, ActorFutureExt, AsyncContext, Context, Handler, StreamHandler, Supervised,
    WrapFuture,
};
use actix_ws::{CloseCode, CloseReason};
use futures_util::{stream, StreamExt};

use self::dial::{check_url, dial_request, dial_url};
use self::state::{DialHistory, Link, LinkState};
use super::config::ConnectionConfig;
use super::error::{DialError, DialErrorKind};
use super::events::{Announcer, ConnectEvent, ConnectionStatus};
use super::refs::RefCounter;
use crate::client::auth::{Credential, TokenCache};
use crate::client::backoff::Backoff;
use crate::client::connection::dial_budget::DialBudget;
use crate::client::gauges::{TimerGauges, TimerGuard};
use crate::client::link::{ForceRestart, Shutdown};
use crate::client::peers::Peers;
use crate::transport::outbox::{Outbox, OutboxLimits, SlowConsumer};
use crate::transport::{AwcTransport, Message, RequestError, Socket, Transport, TransportError};

/// An item of the socket's read half, tagged with the link it belongs to.
enum LinkItem {
    Message(u64, Result<Message, TransportError>),
    End(u64),
}

/// What the actor needs besides its config.
pub(crate) struct ConnectionParts {
    /// The connection's config.
    pub(crate) config: Arc<ConnectionConfig>,
    /// The actors its traffic goes to.
    pub(crate) peers: Peers,
    /// Status and events.
    pub(crate) announcer: Announcer,
    /// The switchboard-wide dial budget.
    pub(crate) budget: DialBudget,
    /// Ref counter shared with the subscription.
    pub(crate) refs: RefCounter,
    /// Live timer counts.
    pub(crate) gauges: Arc<TimerGauges>,
}

/// The actor of one outbound connection.
pub(crate) struct Connection {
    parts: ConnectionParts,
    backoff: Backoff,
    tokens: TokenCache,
    state: LinkState,
    history: DialHistory,
    /// Bumped whenever a link comes or goes: a timer, a dial or a stream
    /// item of an older generation is stale.
    generation: u64,
    span: tracing::Span,
    /// What dials: the config's, or awc with the config's TLS options.
    transport: Arc<dyn Transport>,
}

impl Connection {
    /// A connection that dials once started.
    pub(crate) fn new(parts: ConnectionParts) -> Connection {
        let span = tracing::info_span!("connection", url = %parts.config.url);
        let transport = match &parts.config.transport {
            Some(transport) => transport.clone(),
            None => Arc::new(AwcTransport::new(parts.config.tls.clone())),
        };
        Connection {
            backoff: Backoff::new(parts.config.reconnect),
            parts,
            tokens: TokenCache::default(),
            state: LinkState::Idle,
            history: DialHistory::default(),
            generation: 0,
            span,
            transport,
        }
    }

    /// Whether a timer or dial of `generation` still applies.
    fn current(&self, generation: u64) -> bool {
        self.generation == generation && !self.state.is_closed()
    }

    /// Schedules the next dial after `delay` (the backoff). The dial budget
    /// is consulted only when that delay is over, so a connection in a long
    /// backoff never holds back the others.
    fn schedule_dial(&mut self, delay: Duration, ctx: &mut Context<Self>) {
        match self.state.take() {
            LinkState::Waiting { timer } => {
                ctx.cancel_future(timer);
            }
            LinkState::Idle => {}
            other => {
                // Only an idle connection schedules a dial.
                self.state = other;
                return;
            }
        }
        let announcer = &self.parts.announcer;
        if self.history.is_reconnect() {
            announcer.set_status(ConnectionStatus::Reconnecting);
            announcer.emit(ConnectEvent::Reconnecting {
                attempt: self.backoff.attempt().max(1),
                next_attempt_at: SystemTime::now() + delay,
            });
        } else {
            announcer.set_status(ConnectionStatus::Connecting);
        }
        let guard = self.parts.gauges.dial_loop();
        let generation = self.generation;
        let timer = ctx.run_later(delay, move |connection, ctx| {
            if connection.current(generation) {
                connection.state = LinkState::Idle;
                connection.dial_within_budget(guard, ctx);
            }
        });
        self.state = LinkState::Waiting { timer };
    }

    /// Dials now, or at the budget's next free slot.
    fn dial_within_budget(&mut self, guard: TimerGuard, ctx: &mut Context<Self>) {
        let now = Instant::now();
        let slot = self.parts.budget.reserve(now);
        if slot <= now {
            return self.dial(guard, ctx);
        }
        let generation = self.generation;
        let timer = ctx.run_later(slot - now, move |connection, ctx| {
            if connection.current(generation) {
                connection.state = LinkState::Idle;
                connection.dial(guard, ctx);
            }
        });
        self.state = LinkState::Waiting { timer };
    }

    fn dial(&mut self, guard: TimerGuard, ctx: &mut Context<Self>) {
        let config = self.parts.config.clone();
        let url = dial_url(&config);
        if let Err(error) = check_url(&url) {
            drop(guard);
            return self.dial_failed(error, ctx);
        }
        let transport = self.transport.clone();
        let credential = self.tokens.resolve(&config.auth);
        let generation = self.generation;
        tracing::debug!(parent: &self.span, %url, "dialling");
        let timeout = config.connect_timeout;
        // One bound over the token provider and the connect together.
        let attempt = async move {
            let attempt = async {
                let credential = credential.await;
                let outcome = transport
                    .dial(dial_request(&config, url, &credential))
                    .await;
                (credential, outcome)
            };
            tokio::time::timeout(timeout, attempt)
                .await
                .unwrap_or_else(|_| {
                    let timed_out = DialError::new(DialErrorKind::Timeout { after: timeout });
                    (Credential::Nothing, Err(timed_out))
                })
        };
        let attempt = ctx.spawn(attempt.into_actor(self).map(
            move |(credential, outcome), connection, ctx| {
                drop(guard);
                let dialing = matches!(connection.state, LinkState::Dialing { .. });
                if !connection.current(generation) || !dialing {
                    return;
                }
                connection.state = LinkState::Idle;
                match outcome {
                    Ok(socket) => {
                        connection.tokens.remember(&credential);
                        connection.linked(socket, ctx);
                    }
                    Err(error) => connection.dial_failed(error, ctx),
                }
            },
        ));
        self.state = LinkState::Dialing { attempt };
    }

    fn linked(&mut self, socket: Socket, ctx: &mut Context<Self>) {
        self.generation += 1;
        let generation = self.generation;
        let Socket { sink, stream } = socket;
        let config = &self.parts.config;
        let limits = OutboxLimits {
            max_frames: config.write_queue_frames,
            max_bytes: config.write_queue_bytes,
        };
        let (outbox, closer) = Outbox::spawn(sink, limits, ctx.address().recipient());
        let items = stream
            .map(move |item| LinkItem::Message(generation, item))
            .chain(stream::once(async move { LinkItem::End(generation) }));
        let stream = ctx.add_stream(items);
        let guard = self.parts.gauges.heartbeat();
        let heartbeat = ctx.run_interval(config.heartbeat_interval, move |connection, ctx| {
            let _alive = &guard;
            connection.beat(generation, ctx);
        });
        self.state = LinkState::Linked(Link {
            outbox: outbox.clone(),
            closer,
            stream,
            heartbeat,
            connected_at: Instant::now(),
            progressed: false,
            pending_heartbeat: None,
        });
        self.history = DialHistory {
            ever_connected: true,
            failed_dials: 0,
        };
        tracing::info!(parent: &self.span, "connected");
        self.parts.announcer.set_status(ConnectionStatus::Connected);
        self.parts.announcer.emit(ConnectEvent::Connected);
        self.parts.peers.transport_up(outbox);
    }

    /// Drops the live socket (if any), cancelling its stream and heartbeat,
    /// and tells the other actors. Answers whether there was one.
    fn unlink(&mut self, reason: &str, code: CloseCode, ctx: &mut Context<Self>) -> bool {
        let Some(link) = self.state.link() else {
            return false;
        };
        ctx.cancel_future(link.stream);
        ctx.cancel_future(link.heartbeat);
        self.detach(reason, code)
    }

    /// Forgets the live socket (its timers are already gone or cancelled).
    fn detach(&mut self, reason: &str, code: CloseCode) -> bool {
        let Some(link) = self.state.take_link() else {
            return false;
        };
        self.generation += 1;
        link.closer.close(CloseReason {
            code,
            description: None,
        });
        self.backoff
            .connection_dropped(link.connected_at.elapsed(), link.progressed);
        tracing::info!(parent: &self.span, %reason, "disconnected");
        self.parts.peers.transport_down(RequestError::Disconnected);
        self.parts.announcer.emit(ConnectEvent::Disconnected {
            reason: reason.to_owned(),
        });
        true
    }

    fn lost(&mut self, reason: &str, ctx: &mut Context<Self>) {
        if self.unlink(reason, CloseCode::Away, ctx) {
            self.retry(ctx);
        }
    }

    fn close_for_good(&mut self, reason: &str, ctx: &mut Context<Self>) {
        match self.state.take() {
            LinkState::Closed => {
                self.state = LinkState::Closed;
                return;
            }
            LinkState::Waiting { timer } => {
                ctx.cancel_future(timer);
            }
            LinkState::Dialing { attempt } => {
                ctx.cancel_future(attempt);
            }
            linked @ LinkState::Linked(_) => {
                self.state = linked;
                self.unlink(reason, CloseCode::Normal, ctx);
            }
            LinkState::Idle => {}
        }
        self.state = LinkState::Closed;
        self.parts.peers.closed();
        self.parts.announcer.set_status(ConnectionStatus::Closed);
        self.parts.announcer.emit(ConnectEvent::Closed {
            reason: reason.to_owned(),
        });
    }
}

impl Actor for Connection {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if !self.state.is_closed() {
            self.schedule_dial(Duration::ZERO, ctx);
        }
    }
}

impl Supervised for Connection {
    fn restarting(&mut self, _: &mut Context<Self>) {
        // A restart cleared the old context's timers, stream and dial: forget
        // their handles, cancel nothing.
        if let LinkState::Waiting { .. } | LinkState::Dialing { .. } = self.state {
            self.state = LinkState::Idle;
        }
        if self.detach("connection actor restarted", CloseCode::Restart) {
            metrics::counter!("switchboard_client_restarts_total").increment(1);
        }
    }
}

impl StreamHandler<LinkItem> for Connection {
    fn handle(&mut self, item: LinkItem, ctx: &mut Context<Self>) {
        let _entered = self.span.clone().entered();
        match item {
            LinkItem::Message(generation, _) | LinkItem::End(generation)
                if generation != self.generation => {}
            LinkItem::Message(_, Ok(message)) => self.on_message(message, ctx),
            LinkItem::Message(_, Err(TransportError::TooLarge)) => {
                // Refused before it was read whole.
                metrics::counter!("switchboard_client_invalid_frames_total", "reason" => "too_large")
                    .increment(1);
                let why = "message larger than max_frame_bytes";
                if self.unlink(why, CloseCode::Size, ctx) {
                    self.retry(ctx);
                }
            }
            LinkItem::Message(_, Err(TransportError::InvalidText)) => {
                metrics::counter!("switchboard_client_invalid_frames_total", "reason" => "invalid_utf8")
                    .increment(1);
            }
            LinkItem::Message(_, Err(error)) => self.lost(&format!("read error: {error}"), ctx),
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
        if !self.state.is_closed() {
            ctx.stop();
        }
    }
}
