//! The raw baseline: a minimal tokio-tungstenite server and client, no
//! actors, no protocol beyond WebSocket text frames.

pub mod client;
pub mod server;
pub mod thread;

use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Read buffer of every baseline socket: 4 KiB (tungstenite's default is
/// 128 KiB), so the baseline's memory per connection is an honest floor.
pub const READ_BUFFER: usize = 4 * 1024;

/// The WebSocket settings of every baseline socket, server and client.
pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(READ_BUFFER)
}
