//! Helpers for client tests: a switchboard, fast configs, event waits.

use std::time::Duration;

use actix::{Actor, Addr};
use switchboard::client::{ConnectEvent, ConnectionConfig, Open, PhoenixHandle, Switchboard};
use tokio::sync::broadcast;

use super::WAIT;

/// A switchboard with a generous dial budget.
pub fn switchboard() -> Addr<Switchboard> {
    Switchboard::new(10_000).start()
}

/// A connection config with short timers, for `url` (a hub's socket URL).
pub fn fast_config(url: &str) -> ConnectionConfig {
    let mut config = ConnectionConfig::new(url);
    config.heartbeat_interval = Duration::from_millis(200);
    config.reconnect.initial_interval = Duration::from_millis(20);
    config.reconnect.max_interval = Duration::from_millis(200);
    config.reconnect.stable_after = Duration::from_millis(100);
    config.connect_timeout = Duration::from_secs(2);
    config.push_timeout = Duration::from_secs(2);
    config.join_timeout = Duration::from_secs(2);
    config
}

/// Opens a connection.
pub async fn open(board: &Addr<Switchboard>, config: ConnectionConfig) -> PhoenixHandle {
    board
        .send(Open(config))
        .await
        .expect("switchboard alive")
        .expect("opened")
}

/// Waits for the first event that `pick` accepts; panics after [`WAIT`].
pub async fn wait_for<T>(
    events: &mut broadcast::Receiver<ConnectEvent>,
    mut pick: impl FnMut(&ConnectEvent) -> Option<T>,
) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            match events.recv().await {
                Ok(event) => {
                    if let Some(found) = pick(&event) {
                        return found;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => panic!("event stream closed"),
            }
        }
    })
    .await
    .expect("the event arrives in time")
}

/// Waits until the connection reports `Connected`.
pub async fn wait_connected(handle: &PhoenixHandle) {
    let mut status = handle.watch_status();
    tokio::time::timeout(WAIT, async {
        while *status.borrow_and_update() != switchboard::client::ConnectionStatus::Connected {
            status.changed().await.expect("status watch alive");
        }
    })
    .await
    .expect("connected in time");
}
