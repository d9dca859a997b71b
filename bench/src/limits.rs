//! The open-file limit, raised as far as the machine allows so the
//! 10,000-connection runs can hold their sockets.

use rlimit::Resource;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the soft limit
/// now in force (children inherit it).
pub fn raise_open_files() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(error) => {
            eprintln!("warning: cannot raise the open-file limit: {error}");
            Resource::NOFILE.get().map_or(1024, |(soft, _)| soft)
        }
    }
}
