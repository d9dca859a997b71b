//! A connection's actors, put together on the arbiter that runs them: its
//! `Correlator`, its `Subscription` (or `Producer`), the `Connection` under
//! `actix::Supervisor`, and, when first needed, its in-memory snapshotter.
//! All of them start on the current arbiter, so their messages to each
//! other never leave its thread.

use std::sync::Arc;

use actix::{Actor, Arbiter, Supervisor};

use super::arbiters::ConnectionArbiters;
use super::config::{ConnectionConfig, WireProtocol};
use super::connection::dial_budget::DialBudget;
use super::connection::{Connection, ConnectionParts};
use super::events::Announcer;
use super::gauges::TimerGauges;
use super::handle::{ConnectionHandle, ConnectionId};
use super::peers::Peers;
use super::phoenix::direct::DirectWriters;
use super::phoenix::handle::PhoenixHandle;
use super::phoenix::subscription::Subscription;
use super::positions::Positions;
use super::producer::actor::Producer;
use super::producer::handle::ProducerHandle;
use super::refs::RefCounter;
use super::switchboard::Directory;
use crate::transport::correlator::{Correlator, RequestSlots};

/// What a new connection takes from its switchboard: its id, the dial
/// budget every connection shares, the directory it is listed in, and the
/// arbiters its handles keep running.
pub(crate) struct Seat {
    pub(crate) id: ConnectionId,
    pub(crate) budget: DialBudget,
    pub(crate) directory: Directory,
    pub(crate) arbiters: Arc<ConnectionArbiters>,
}

/// Starts a Phoenix connection on the current arbiter.
pub(crate) fn phoenix(config: ConnectionConfig, seat: Seat) -> PhoenixHandle {
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
        link: start_connection(peers, shared, seat),
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

/// Starts an envelope v1 connection on the current arbiter.
pub(crate) fn producer(mut config: ConnectionConfig, seat: Seat) -> ProducerHandle {
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
        link: start_connection(peers, shared, seat),
        producer,
        positions,
        name,
        publish_order: Arc::default(),
        identity: Arc::default(),
    }
}

/// Starts the connection actor over `peers` and lists it in the directory.
fn start_connection(peers: Peers, parts: Shared, seat: Seat) -> ConnectionHandle {
    let connection_parts = ConnectionParts {
        config: parts.config.clone(),
        peers,
        announcer: parts.announcer.clone(),
        budget: seat.budget,
        refs: parts.refs,
        gauges: parts.gauges.clone(),
    };
    let connection = Supervisor::start(move |_| Connection::new(connection_parts));
    let link = ConnectionHandle {
        id: seat.id,
        url: parts.config.url.clone(),
        shutdown: connection.clone().recipient(),
        restart: connection.recipient(),
        announcer: parts.announcer,
        gauges: parts.gauges,
        _arbiters: seat.arbiters,
    };
    seat.directory.insert(seat.id, link.clone());
    link
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
