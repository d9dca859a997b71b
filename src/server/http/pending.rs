//! Connections accepted and still without a request head, bounded in
//! number and in time.
//!
//! Every connection counts from the moment it is accepted until its first
//! request head has arrived (then it is an HTTP request like any other, or
//! an upgraded socket under `max_connections`) or it goes away. Past
//! `server.max_pending_upgrades` a new connection is refused: shut at once,
//! and marked so that a request it still manages to send (already in the
//! kernel's or the TLS layer's buffers) is answered 503 and closed, never
//! handled; counted. A connection must send its head within
//! `server.upgrade_timeout` (actix-web's client request timeout: 408, then
//! closed), which bounds each one in time.
//! Applies where the hub runs its own HTTP server ([`RunningHub`]);
//! an app that mounts the hub on its own server sets its own limits. Under
//! TLS a connection counts once its handshake is done (actix-web bounds
//! handshakes in time and in number per worker).
//!
//! [`RunningHub`]: crate::server::RunningHub

use std::any::Any;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use actix_web::dev::Extensions;
use actix_web::rt::net::TcpStream;

use crate::server::stats::{HubStats, Refusal};

/// The count of connections not yet upgraded, shared by every worker.
#[derive(Debug, Clone)]
pub(crate) struct PendingUpgrades {
    open: Arc<AtomicUsize>,
    limit: usize,
    stats: Arc<HubStats>,
}

/// One accepted connection's place in the count, kept in the connection's
/// data; freed when its first request head arrived or when it is dropped.
#[derive(Debug)]
pub(crate) struct PendingUpgrade {
    open: Arc<AtomicUsize>,
    counted: AtomicBool,
}

impl PendingUpgrades {
    /// At most `limit` connections pending at once.
    pub(crate) fn new(limit: usize, stats: Arc<HubStats>) -> PendingUpgrades {
        PendingUpgrades {
            open: Arc::new(AtomicUsize::new(0)),
            limit,
            stats,
        }
    }

    /// Connections accepted and not upgraded.
    #[cfg(test)]
    fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Counts a new connection: its place when there is room, `None` (and a
    /// counted refusal) when the limit is reached.
    pub(crate) fn admit(&self) -> Option<PendingUpgrade> {
        let admitted = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < self.limit).then_some(open + 1)
            });
        if admitted.is_err() {
            self.stats.refused(Refusal::PendingUpgrades);
            return None;
        }
        Some(PendingUpgrade {
            open: self.open.clone(),
            counted: AtomicBool::new(true),
        })
    }

    /// The callback of `HttpServer::on_connect`: counts the connection, or
    /// shuts it at once when too many are pending.
    pub(crate) fn on_connect(&self, io: &dyn Any, data: &mut Extensions) {
        match self.admit() {
            Some(place) => {
                data.insert(place);
            }
            None => {
                data.insert(RefusedConnection);
                if let Some(stream) = tcp_of(io) {
                    // Both ways: nothing more is read or written on it.
                    let _ = socket2::SockRef::from(stream).shutdown(std::net::Shutdown::Both);
                }
                tracing::debug!("refused a connection: too many pending upgrades");
            }
        }
    }
}

/// The TCP stream of a plain or TLS connection as `on_connect` lends it.
fn tcp_of(io: &dyn Any) -> Option<&TcpStream> {
    if let Some(plain) = io.downcast_ref::<TcpStream>() {
        return Some(plain);
    }
    let secure = io.downcast_ref::<actix_tls::accept::rustls_0_23::TlsStream<TcpStream>>()?;
    Some(secure.get_ref().0)
}

/// Marks a connection refused at accept: whatever it sends is answered 503.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RefusedConnection;

impl PendingUpgrade {
    /// The connection's first request head arrived: it no longer counts.
    pub(crate) fn head_received(&self) {
        if self.counted.swap(false, Ordering::AcqRel) {
            self.open.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Drop for PendingUpgrade {
    fn drop(&mut self) {
        self.head_received();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_freed_on_a_request_head_or_drop_and_refused_past_the_limit() {
        let stats = Arc::new(HubStats::default());
        let pending = PendingUpgrades::new(2, stats.clone());
        let first = pending.admit().expect("room");
        let second = pending.admit().expect("room");
        assert!(pending.admit().is_none(), "the third is over the limit");
        assert_eq!(stats.refusals(Refusal::PendingUpgrades), 1);
        first.head_received();
        first.head_received();
        assert_eq!(pending.open(), 1, "a request head frees its place once");
        drop(first);
        assert_eq!(
            pending.open(),
            1,
            "and dropping it later frees nothing more"
        );
        drop(second);
        assert_eq!(pending.open(), 0);
        assert!(pending.admit().is_some());
    }
}
