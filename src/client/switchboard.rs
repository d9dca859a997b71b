//! `Switchboard`: the supervisor of every outbound connection of an app.
//!
//! `Open` places a connection on one of the switchboard's arbiters, in
//! turn, and starts its actors there (see `assembly`): its `Correlator`
//! and `Subscription`, and the `Connection` itself under
//! `actix::Supervisor`, so a connection actor that stops is restarted and
//! its topics are rejoined. A `dashmap` directory lets actix-web handlers
//! find a connection and read its status without a round trip; the dial
//! budget is shared by every arbiter. The arbiters stop once the
//! switchboard stopped and no handle of its connections is left.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Context, Handler, Message, ResponseFuture};
use dashmap::DashMap;
use tokio::sync::oneshot;

use super::arbiters::ConnectionArbiters;
use super::assembly::{self, Seat};
use super::config::ConnectionConfig;
use super::error::{DialError, DialErrorKind, OpenError};
use super::events::{Announcer, ConnectEvent, ConnectionStatus};
use super::link::Shutdown;
use super::switchboard_builder::SwitchboardBuilder;
use crate::client::connection::dial_budget::DialBudget;
use crate::client::handle::{ConnectionHandle, ConnectionId};
use crate::client::phoenix::handle::PhoenixHandle;
use crate::client::producer::handle::ProducerHandle;

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
/// dial budget, and rejoin their topics. They run on arbiters of the
/// switchboard's own, one per core unless [`Switchboard::builder`] says
/// otherwise.
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
    arbiter_count: usize,
    /// Started with the actor; held by it and by every connection handle.
    arbiters: Option<Arc<ConnectionArbiters>>,
}

impl Default for Switchboard {
    fn default() -> Self {
        Switchboard::builder().build()
    }
}

impl Switchboard {
    /// Default pace of the dial budget: dials per second across all connections.
    pub const DEFAULT_DIALS_PER_SECOND: u32 = 500;

    /// A switchboard whose connections share a budget of `dials_per_second`
    /// (on one arbiter per core).
    pub fn new(dials_per_second: u32) -> Switchboard {
        Switchboard::builder()
            .dials_per_second(dials_per_second)
            .build()
    }

    /// Starts building a switchboard: its arbiters and its dial budget.
    pub fn builder() -> SwitchboardBuilder {
        SwitchboardBuilder::default()
    }

    pub(crate) fn from_parts(arbiter_count: usize, dials_per_second: u32) -> Switchboard {
        Switchboard {
            directory: Arc::new(DashMap::new()),
            budget: DialBudget::new(dials_per_second),
            next_id: 1,
            arbiter_count: arbiter_count.max(1),
            arbiters: None,
        }
    }

    /// The directory, to clone into actix-web handlers before starting.
    pub fn directory(&self) -> Directory {
        self.directory.clone()
    }

    /// Runs `start` on the next arbiter with the new connection's seat, and
    /// answers what it made.
    fn on_next_arbiter<H, F>(&mut self, start: F) -> impl Future<Output = Result<H, OpenError>>
    where
        H: Send + 'static,
        F: FnOnce(Seat) -> H + Send + 'static,
    {
        let (made, answer) = oneshot::channel();
        let spawned = self.arbiters.clone().is_some_and(|arbiters| {
            let seat = Seat {
                id: self.next_id,
                budget: self.budget.clone(),
                directory: self.directory.clone(),
                arbiters: arbiters.clone(),
            };
            arbiters.next().spawn_fn(move || {
                let _ = made.send(start(seat));
            })
        });
        self.next_id += 1;
        async move {
            if !spawned {
                return Err(OpenError::Stopped);
            }
            answer.await.map_err(|_| OpenError::Stopped)
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

    fn started(&mut self, _: &mut Context<Self>) {
        let arbiters = ConnectionArbiters::start(self.arbiter_count);
        self.arbiters = Some(Arc::new(arbiters));
    }
}

impl Handler<Open> for Switchboard {
    type Result = ResponseFuture<Result<PhoenixHandle, OpenError>>;

    fn handle(&mut self, msg: Open, _: &mut Context<Self>) -> Self::Result {
        let wait = first_connect_wait(&msg.0);
        let started = self.on_next_arbiter(move |seat| assembly::phoenix(msg.0, seat));
        let directory = self.directory.clone();
        Box::pin(async move { opened(started.await?, wait, directory).await })
    }
}

impl Handler<OpenProducer> for Switchboard {
    type Result = ResponseFuture<Result<ProducerHandle, OpenError>>;

    fn handle(&mut self, msg: OpenProducer, _: &mut Context<Self>) -> Self::Result {
        let wait = first_connect_wait(&msg.0);
        let started = self.on_next_arbiter(move |seat| assembly::producer(msg.0, seat));
        let directory = self.directory.clone();
        Box::pin(async move { opened(started.await?, wait, directory).await })
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
