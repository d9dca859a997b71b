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

use super::config::ConnectionConfig;
use super::config::WireProtocol;
use super::connection::{Connection, ConnectionParts, Shutdown};
use super::correlator::{Correlator, PendingSlots};
use super::dial_budget::DialBudget;
use super::direct::DirectWriters;
use super::error::OpenError;
use super::events::{Announcer, ConnectEvent, ConnectionStatus};
use super::gauges::TimerGauges;
use super::handle::PhoenixHandle;
use super::link_handle::{ConnectionHandle, ConnectionId};
use super::peers::Peers;
use super::positions::Positions;
use super::producer::Producer;
use super::producer_handle::ProducerHandle;
use super::refs::RefCounter;
use super::subscription::Subscription;
use crate::protocol::envelope::Envelope;

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

/// The supervisor actor.
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

    fn open(&mut self, config: ConnectionConfig) -> PhoenixHandle {
        let id = self.next_id;
        self.next_id += 1;
        let positions = Positions::new(config.snapshotter.clone(), Arbiter::current());
        let config = Arc::new(config);
        let announcer = Announcer::new();
        let refs = RefCounter::default();
        let gauges = Arc::new(TimerGauges::default());
        let slots = PendingSlots::new(config.max_concurrent_requests);
        let correlator = Correlator::new(slots.clone()).start();
        let direct = DirectWriters::default();
        let subscription = Subscription::start_for(
            config.clone(),
            correlator.clone(),
            slots.clone(),
            refs.clone(),
            announcer.clone(),
            direct.clone(),
            positions.clone(),
        );
        let parts = ConnectionParts {
            config: config.clone(),
            peers: Peers::Phoenix {
                subscription: subscription.clone(),
                correlator,
            },
            announcer: announcer.clone(),
            budget: self.budget.clone(),
            refs: refs.clone(),
            gauges: gauges.clone(),
        };
        let connection = Supervisor::start(move |_| Connection::new(parts));
        let join_wait = config.buffer_deadline + config.join_timeout;
        let handle = PhoenixHandle {
            link: ConnectionHandle {
                id,
                url: config.url.clone(),
                connection,
                announcer,
                gauges,
            },
            subscription,
            slots,
            join_wait,
            positions,
            producer: Arc::from(config.producer.as_str()),
            publish_order: Arc::default(),
            direct,
            refs,
        };
        self.directory.insert(id, handle.link.clone());
        handle
    }
}

impl Actor for Switchboard {
    type Context = Context<Self>;
}

impl Handler<Open> for Switchboard {
    type Result = ResponseFuture<Result<PhoenixHandle, OpenError>>;

    fn handle(&mut self, msg: Open, _: &mut Context<Self>) -> Self::Result {
        let fail_first = msg.0.fail_first_connect;
        let wait = msg.0.connect_timeout + Duration::from_secs(1);
        let handle = self.open(msg.0);
        let directory = self.directory.clone();
        Box::pin(async move {
            if !fail_first {
                return Ok(handle);
            }
            let first = first_connect(&handle.announcer, wait).await;
            match first {
                Ok(()) => Ok(handle),
                Err(reason) => {
                    directory.remove(&handle.id);
                    handle.connection.do_send(Shutdown);
                    Err(OpenError::FirstConnect(reason))
                }
            }
        })
    }
}

impl Handler<OpenProducer> for Switchboard {
    type Result = ResponseFuture<Result<ProducerHandle, OpenError>>;

    fn handle(&mut self, msg: OpenProducer, _: &mut Context<Self>) -> Self::Result {
        let id = self.next_id;
        self.next_id += 1;
        let mut config = msg.0;
        config.protocol = WireProtocol::Envelope;
        let fail_first = config.fail_first_connect;
        let wait = config.connect_timeout + Duration::from_secs(1);
        let url = config.url.clone();
        let positions = Positions::new(config.snapshotter.clone(), Arbiter::current());
        let producer_name: Arc<str> = Arc::from(config.producer.as_str());
        let config = Arc::new(config);
        let announcer = Announcer::new();
        let gauges = Arc::new(TimerGauges::default());
        let slots = PendingSlots::new(config.max_concurrent_requests);
        let correlator = Correlator::<Envelope>::new(slots.clone()).start();
        let producer = Producer::new(config.clone(), correlator.clone(), slots).start();
        let parts = ConnectionParts {
            config,
            peers: Peers::Envelope {
                producer: producer.clone(),
                correlator,
            },
            announcer: announcer.clone(),
            budget: self.budget.clone(),
            refs: RefCounter::default(),
            gauges: gauges.clone(),
        };
        let connection = Supervisor::start(move |_| Connection::new(parts));
        let handle = ProducerHandle {
            positions,
            name: producer_name,
            publish_order: Arc::default(),
            identity: Arc::default(),
            link: ConnectionHandle {
                id,
                url,
                connection,
                announcer,
                gauges,
            },
            producer,
        };
        self.directory.insert(id, handle.link.clone());
        let directory = self.directory.clone();
        Box::pin(async move {
            if fail_first {
                if let Err(reason) = first_connect(&handle.announcer, wait).await {
                    directory.remove(&handle.id);
                    handle.connection.do_send(Shutdown);
                    return Err(OpenError::FirstConnect(reason));
                }
            }
            Ok(handle)
        })
    }
}

/// Waits for the first dial's outcome: connected, or the reason it closed.
async fn first_connect(announcer: &Announcer, wait: Duration) -> Result<(), String> {
    let mut events = announcer.subscribe();
    let mut status = announcer.watch_status();
    tokio::time::timeout(wait, async {
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
        let mut reason = "connection closed".to_owned();
        while let Ok(event) = events.try_recv() {
            if let ConnectEvent::Closed { reason: why } = event {
                reason = why;
            }
        }
        Err(reason)
    })
    .await
    .unwrap_or_else(|_| Err("no answer within the connect timeout".to_owned()))
}

impl Handler<Close> for Switchboard {
    type Result = bool;

    fn handle(&mut self, msg: Close, _: &mut Context<Self>) -> bool {
        match self.directory.remove(&msg.0) {
            Some((_, handle)) => {
                handle.connection.do_send(Shutdown);
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
