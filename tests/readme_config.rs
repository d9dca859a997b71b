//! The configuration block of README.md is the defaults, as the code has
//! them: it parses, validates, and equals `Config::default()` (lines
//! commented out there are options without a default).

use switchboard::config::{ClusterConfig, Config};

#[test]
fn the_readme_config_block_is_the_defaults() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let section = readme
        .find("\n## Configuration")
        .expect("a configuration section");
    let start = readme[section..]
        .find("```toml\n")
        .expect("a toml block there")
        + 8;
    let block = &readme[section + start..];
    let block = &block[..block.find("```").expect("the block ends")];
    let config = Config::from_toml(block)
        .unwrap_or_else(|error| panic!("README's config block: {error}"))
        .validated()
        .expect("README's config block validates");
    let shown = serde_json::to_value(&config).expect("serializable");
    let defaults = serde_json::to_value(Config::default()).expect("serializable");
    let mut differences = Vec::new();
    for (section, values) in defaults.as_object().expect("an object") {
        if shown.get(section).is_none_or(|shown| shown == values) {
            continue;
        }
        differences.push(format!(
            "[{section}] README {} vs default {values}",
            shown[section]
        ));
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

#[test]
fn the_cluster_block_of_docs_cluster_md_is_the_defaults() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/cluster.md"))
        .expect("docs/cluster.md");
    let start = doc.find("```toml\n[cluster]").expect("a [cluster] block") + 8;
    let block = &doc[start..];
    let block = &block[..block.find("```").expect("the block ends")];
    let config = Config::from_toml(block)
        .unwrap_or_else(|error| panic!("docs/cluster.md's block: {error}"))
        .validated()
        .expect("docs/cluster.md's block validates");
    assert_eq!(config.cluster, Some(ClusterConfig::default()));
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/cluster.toml");
    Config::load(std::path::Path::new(example)).expect("examples/cluster.toml is a valid config");
}
