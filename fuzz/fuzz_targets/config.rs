//! The config loader on arbitrary text: TOML (what `Config::load` reads for
//! any file not ending in `.json`) and JSON, each parsed then validated.
//!
//! A config that parses is validated without panicking; one that passes
//! is written back out (JSON, and TOML) and reads back to the same config,
//! still valid.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use switchboard::config::Config;

/// A config as a comparable value.
fn shape(config: &Config) -> Value {
    serde_json::to_value(config).expect("a config serializes")
}

/// `toml_source`: the config was read from TOML, so it fits TOML's types
/// (JSON can carry integers past TOML's `i64`, which TOML cannot write).
fn check(config: Config, toml_source: bool) {
    let Ok(config) = config.validated() else {
        return;
    };
    let before = shape(&config);

    let json = serde_json::to_string(&config).expect("a config writes as JSON");
    let back = Config::from_json(&json).expect("a written config reads back");
    assert_eq!(shape(&back), before, "JSON round trip");
    back.validate()
        .expect("still valid after a JSON round trip");

    let toml_text = match toml::to_string(&config) {
        Ok(text) => text,
        Err(error) => {
            assert!(
                !toml_source,
                "a config read from TOML writes as TOML: {error}"
            );
            return;
        }
    };
    let back = Config::from_toml(&toml_text).expect("a written TOML config reads back");
    assert_eq!(shape(&back), before, "TOML round trip:\n{toml_text}");
    back.validate()
        .expect("still valid after a TOML round trip");
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks the format (`J` JSON, anything else TOML), the
    // rest is the file's text.
    let Some((&format, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let toml_source = format != b'J';
    let parsed = if toml_source {
        Config::from_toml(text)
    } else {
        Config::from_json(text)
    };
    match parsed {
        Ok(config) => check(config, toml_source),
        Err(message) => assert!(!message.is_empty(), "a parse error says something"),
    }
});
