//! `SwitchboardBuilder`: how many arbiters a [`Switchboard`] spreads its
//! connections over, and how fast they may dial.

use std::num::NonZeroUsize;

use super::switchboard::Switchboard;

/// Builds a [`Switchboard`]; start from [`Switchboard::builder`].
///
/// A switchboard runs its connections on arbiters (threads, each with its
/// own event loop), by default one per core
/// ([`std::thread::available_parallelism`]): the one it was started on and
/// the others started with it. Each connection is placed whole on one of
/// them (its socket, topics and pending requests), the first on the
/// switchboard's own arbiter, the next on the next, in turn. The started
/// arbiters stop, and their threads end, once the switchboard stopped (its
/// last address dropped, or its system stopping) and no handle of its
/// connections is left (the directory's included): a connection whose
/// handle the application keeps goes on working after the switchboard's
/// address is dropped. Connections on the switchboard's own arbiter live,
/// as any actor there, until closed ([`Close`](crate::client::Close)) or
/// until their system stops. `arbiters(1)` runs every connection on the
/// switchboard's own arbiter; `arbiters(0)` counts as 1.
///
/// ```no_run
/// use actix::Actor;
/// use switchboard::client::{ConnectionConfig, Open, Switchboard};
///
/// # #[actix::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let board = Switchboard::builder()
///     .arbiters(4)
///     .dials_per_second(1000)
///     .build()
///     .start();
/// let url = "ws://127.0.0.1:4000/socket/websocket";
/// for _ in 0..8 {
///     // two connections on each of the four arbiters (this one and three more)
///     board.send(Open(ConnectionConfig::new(url))).await??;
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SwitchboardBuilder {
    arbiters: usize,
    dials_per_second: u32,
}

impl Default for SwitchboardBuilder {
    fn default() -> Self {
        SwitchboardBuilder {
            arbiters: std::thread::available_parallelism().map_or(1, NonZeroUsize::get),
            dials_per_second: Switchboard::DEFAULT_DIALS_PER_SECOND,
        }
    }
}

impl SwitchboardBuilder {
    /// How many arbiters the connections are spread over (default: the
    /// number of cores; 0 counts as 1).
    pub fn arbiters(mut self, count: usize) -> SwitchboardBuilder {
        self.arbiters = count.max(1);
        self
    }

    /// The pace of the dial budget every connection shares, in dials per
    /// second (default [`Switchboard::DEFAULT_DIALS_PER_SECOND`]; 0 counts
    /// as 1).
    pub fn dials_per_second(mut self, per_second: u32) -> SwitchboardBuilder {
        self.dials_per_second = per_second.max(1);
        self
    }

    /// The switchboard; its arbiters start when it does.
    pub fn build(self) -> Switchboard {
        Switchboard::from_parts(self.arbiters, self.dials_per_second)
    }
}
