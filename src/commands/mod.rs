//! What the `switchboard` binary's client subcommands do, as library calls.

pub mod publish;
pub mod send;
pub mod tail;
