//! `Switchboard`: the supervisor of every outbound connection of an app.
//!
//! `Open` starts a connection's three actors on the switchboard's arbiter:
//! its `Correlator` and `Subscription`, and the `Connection` itself under
//! `actix::Supervisor`, so a connection actor that stops is restarted and its
//! topics are rejoined. A `dashmap` directory lets actix-web handlers find a
//! connection and read its status without a round trip.

use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Arbiter, Context, Handler, Message, ResponseFuture, Supervisor};
use dashmap::DashMap;

use super::config::{ConnectionConfig, WireProtocol};
use super::connection::{Connection, ConnectionParts};
use super::error::{DialError, DialErrorKind, OpenError};
use super::events::{Announcer, ConnectEvent, ConnectionStatus};
use super::link::Shutdown;
use super::positions::Positions;
use super::refs::RefCounter;
use crate::client::connection::dial_budget::DialBudget;
use crate::client::gauges::TimerGauges;
use crate::client::handle::{ConnectionHandle, ConnectionId};
use crate::client::peers::Peers;
use crate::client::phoenix::direct::DirectWriters;
use crate::client::phoenix::handle::PhoenixHandle;
use crate::client::phoenix::subscription::Subscription;
use crate::client::producer::actor::Producer;
use crate::client::producer::handle::ProducerHandle;
use crate::transport::correlator::{Correlator, RequestSlots};

/// Opens a supervised connection.
#[derive(Message)]
#[rtype(result = "Result<PhoenixHandle, OpenError>")]
pub struct Open(pub ConnectionConfig);

/// Opens a supervised envelope v1 connection (the ingest client).
#[derive(Message)]
#[rtype(result = "Result<ProducerHandle, OpenError>")]
pub struct OpenProducer(pub ConnectionConfig);

/// Closes a connection for good and forgets it. Answers whether it existed.
#[derive(Debug, Message)]
#[rtype(result = "bool")]
pub struct Close(pub ConnectionId);

/// Lists every connection with its URL and status.
#[derive(Debug, Message)]
#[rtype(result = "Vec<(ConnectionId, String, ConnectionStatus)>")]
pub struct List;

/// The directory of open connections, readable from any thread.
pub type Directory = Arc<DashMap<ConnectionId, ConnectionHandle>>;

/// The supervisor of an application's outbound connections: [`Open`] a
/// Phoenix connection, [`OpenProducer`] an envelope producer, [`Close`] one,
/// [`List`] them. Connections it opens redial with backoff, paced by one
/// dial budget, and rejoin their topics.
///
/// ```no_run
/// use actix::Actor;
/// use switchboard::client::{ConnectionConfig, ConnectionStatus, List, Open, Switchboard};
///
/// # #[actix::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let board = Switchboard::default().start();
/// let url = "ws://127.0.0.1:4000/socket/websocket";
/// let connection = board.send(Open(ConnectionConfig::new(url))).await??;
/// for (id, url, status) in board.send(List).await? {
///     println!("{id} {url} {status:?}");
/// }
/// assert_ne!(connection.status(), ConnectionStatus::Closed);
/// # Ok(()) }
/// ```
pub struct Switchboard {
    directory: Directory,
    budget: DialBudget,
    next_id: ConnectionId,
}

impl Default for Switchboard {
    fn default() -> Self {
        Switchboard::new(Switchboard::DEFAULT_DIALS_PER_SECOND)
    }
}

impl Switchboard {
    /// Default pace of the dial budget: dials per second across all connections.
    pub const DEFAULT_DIALS_PER_SECOND: u32 = 500;

    /// A switchboard whose connections share a budget of `dials_per_second`.
    pub fn new(dials_per_second: u32) -> Switchboard {
        Switchboard {
            directory: Arc::new(DashMap::new()),
            budget: DialBudget::new(dials_per_second),
            next_id: 1,
        }
    }

    /// The directory, to clone into actix-web handlers before starting.
    pub fn directory(&self) -> Directory {
        self.directory.clone()
    }

    /// Starts the connection actor over `peers` and lists it in the directory.
    fn start_connection(&mut self, peers: Peers, parts: Shared) -> ConnectionHandle {
        let id = self.next_id;
        self.next_id += 1;
        let connection_parts = ConnectionParts {
            config: parts.config.clone(),
            peers,
            announcer: parts.announcer.clone(),
            budget: self.budget.clone(),
            refs: parts.refs,
            gauges: parts.gauges.clone(),
        };
        let connection = Supervisor::start(move |_| Connection::new(connection_parts));
        let link = ConnectionHandle {
            id,
            url: parts.config.url.clone(),
            shutdown: connection.clone().recipient(),
            restart: connection.recipient(),
            announcer: parts.announcer,
            gauges: parts.gauges,
        };
        self.directory.insert(id, link.clone());
        link
    }

    fn open_phoenix(&mut self, config: ConnectionConfig) -> PhoenixHandle {
        let shared = Shared::new(config);
        let correlator = Correlator::new(&shared.slots, "client").start();
        let direct = DirectWriters::default();
        let subscription = Subscription::start_for(
            shared.config.clone(),
            correlator.clone(),
            shared.slots.clone(),
            shared.refs.clone(),
            shared.announcer.clone(),
            direct.clone(),
            shared.positions.clone(),
        );
        let peers = Peers::Phoenix {
            subscription: subscription.clone(),
            correlator,
        };
        let (slots, refs, positions) = (
            shared.slots.clone(),
            shared.refs.clone(),
            shared.positions.clone(),
        );
        let join_wait = shared.config.buffer_deadline + shared.config.join_timeout;
        let producer = Arc::from(shared.config.producer.as_str());
        PhoenixHandle {
            link: self.start_connection(peers, shared),
            subscription,
            slots,
            join_wait,
            positions,
            producer,
            publish_order: Arc::default(),
            direct,
            refs,
        }
    }

    fn open_producer(&mut self, mut config: ConnectionConfig) -> ProducerHandle {
        config.protocol = WireProtocol::Envelope;
        let shared = Shared::new(config);
        let correlator = Correlator::new(&shared.slots, "client").start();
        let producer = Producer::new(
            shared.config.clone(),
            correlator.clone(),
            shared.slots.clone(),
        )
        .start();
        let peers = Peers::Envelope {
            producer: producer.clone(),
            correlator,
        };
        let positions = shared.positions.clone();
        let name = Arc::from(shared.config.producer.as_str());
        ProducerHandle {
            link: self.start_connection(peers, shared),
            producer,
            positions,
            name,
            publish_order: Arc::default(),
            identity: Arc::default(),
        }
    }
}

/// The pieces a connection's actors share, made from its config.
struct Shared {
    config: Arc<ConnectionConfig>,
    announcer: Announcer,
    gauges: Arc<TimerGauges>,
    slots: RequestSlots,
    refs: RefCounter,
    positions: Positions,
}

impl Shared {
    fn new(config: ConnectionConfig) -> Shared {
        Shared {
            positions: Positions::new(config.snapshotter.clone(), Arbiter::current()),
            slots: RequestSlots::new(config.max_concurrent_requests),
            config: Arc::new(config),
            announcer: Announcer::new(),
            gauges: Arc::default(),
            refs: RefCounter::default(),
        }
    }
}

/// Answers `handle` once the connection is usable: at once, or, with
/// `fail_first_connect`, once its first dial succeeded (else the error, and
/// the connection is closed and forgotten).
async fn opened<H: std::ops::Deref<Target = ConnectionHandle>>(
    handle: H,
    config_wait: Option<Duration>,
    directory: Directory,
) -> Result<H, OpenError> {
    let Some(wait) = config_wait else {
        return Ok(handle);
    };
    match first_connect(&handle.announcer, wait).await {
        Ok(()) => Ok(handle),
        Err(error) => {
            directory.remove(&handle.id);
            handle.shutdown.do_send(Shutdown);
            Err(error)
        }
    }
}

/// How long an open with `fail_first_connect` waits for the first dial.
fn first_connect_wait(config: &ConnectionConfig) -> Option<Duration> {
    config
        .fail_first_connect
        .then(|| config.connect_timeout + Duration::from_secs(1))
}

impl Actor for Switchboard {
    type Context = Context<Self>;
}

impl Handler<Open> for Switchboard {
    type Result = ResponseFuture<Result<PhoenixHandle, OpenError>>;

    fn handle(&mut self, msg: Open, _: &mut Context<Self>) -> Self::Result {
        let wait = first_connect_wait(&msg.0);
        let handle = self.open_phoenix(msg.0);
        Box::pin(opened(handle, wait, self.directory.clone()))
    }
}

impl Handler<OpenProducer> for Switchboard {
    type Result = ResponseFuture<Result<ProducerHandle, OpenError>>;

    fn handle(&mut self, msg: OpenProducer, _: &mut Context<Self>) -> Self::Result {
        let wait = first_connect_wait(&msg.0);
        let handle = self.open_producer(msg.0);
        Box::pin(opened(handle, wait, self.directory.clone()))
    }
}

/// Waits for the first dial's outcome: connected, or why it closed.
async fn first_connect(announcer: &Announcer, wait: Duration) -> Result<(), OpenError> {
    let mut events = announcer.subscribe();
    let mut status = announcer.watch_status();
    let outcome = tokio::time::timeout(wait, async {
        loop {
            match *status.borrow_and_update() {
                ConnectionStatus::Connected => return Ok(()),
                ConnectionStatus::Closed => break,
                _ => {}
            }
            if status.changed().await.is_err() {
                break;
            }
        }
        if let Some(error) = announcer.dial_error() {
            return Err(OpenError::FirstConnect(error));
        }
        let mut reason = "connection closed".to_owned();
        while let Ok(event) = events.try_recv() {
            if let ConnectEvent::Closed { reason: why } = event {
                reason = why;
            }
        }
        Err(OpenError::ClosedFirst { reason })
    });
    outcome.await.unwrap_or_else(|_| {
        let timeout = DialError::new(DialErrorKind::Timeout { after: wait });
        Err(OpenError::FirstConnect(timeout))
    })
}

impl Handler<Close> for Switchboard {
    type Result = bool;

    fn handle(&mut self, msg: Close, _: &mut Context<Self>) -> bool {
        match self.directory.remove(&msg.0) {
            Some((_, handle)) => {
                handle.shutdown.do_send(Shutdown);
                true
            }
            None => false,
        }
    }
}

impl Handler<List> for Switchboard {
    type Result = actix::MessageResult<List>;

    fn handle(&mut self, _: List, _: &mut Context<Self>) -> Self::Result {
        let mut list: Vec<_> = self
            .directory
            .iter()
            .map(|entry| (*entry.key(), entry.url.clone(), entry.status()))
            .collect();
        list.sort_by_key(|(id, _, _)| *id);
        actix::MessageResult(list)
    }
}
