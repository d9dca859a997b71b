//! Wire formats spoken by switchboard.
//!
//! Every codec here is pure: it turns text into typed values and back, never
//! panics on input from the network, and reports what was wrong through a typed
//! error ([`DecodeError`]).

pub(crate) mod clock;
pub mod content;
pub mod envelope;
pub(crate) mod error;
pub mod history;
mod payload;
pub mod phoenix;
pub mod resume;

pub use error::{ChannelErrorCode, DecodeError};
pub use payload::Payload;
