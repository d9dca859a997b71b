//! Errors in words for logs and events: each error's message, then its
//! sources', each once (every error type here keeps its cause as its
//! source instead of repeating it in its message).

use std::error::Error as StdError;

/// `error` with its sources, each once: `a: b: c`.
pub(crate) fn with_sources(error: &(dyn StdError + 'static)) -> String {
    let mut words = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        words.push_str(": ");
        words.push_str(&cause.to_string());
        source = cause.source();
    }
    words
}
