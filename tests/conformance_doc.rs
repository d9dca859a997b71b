//! docs/conformance.md and the tests stay in step: every conformance id cited
//! under tests/ or src/ is listed there, every listed behaviour names a test,
//! and every test it names exists.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

const PREFIXES: [&str; 6] = ["PHX-S", "PHX-C", "SEQ-", "NET-", "SEC-", "CL-"];
const DOC: &str = "docs/conformance.md";
const THIS_FILE: &str = "tests/conformance_doc.rs";

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Every `.rs` file under `dir`, in a stable order.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() && name != "node_modules" && !name.starts_with('.') {
            rust_files(&path, out);
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

/// Ids spelled out as whole words (`PHX-S6`), and ids in function names
/// (`fn phx_s6_...` is PHX-S6, `fn seq_2_and_seq_3_...` SEQ-2 and SEQ-3).
fn ids(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let word_before = |at: usize| text[..at].chars().next_back().is_some_and(is_word);
    for prefix in PREFIXES {
        for (at, _) in text
            .match_indices(prefix)
            .filter(|&(at, _)| !word_before(at))
        {
            let rest = &text[at + prefix.len()..];
            let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
            if !digits.is_empty() && !rest[digits.len()..].starts_with(is_word) {
                found.push(format!("{prefix}{digits}"));
            }
        }
    }
    for (at, _) in text
        .match_indices("fn ")
        .filter(|&(at, _)| !word_before(at))
    {
        let name: String = text[at + 3..].chars().take_while(|&c| is_word(c)).collect();
        let parts: Vec<&str> = name.split('_').collect();
        for pair in parts.windows(2) {
            let (family, number) = (pair[0], pair[1]);
            let phx = number.starts_with('s') || number.starts_with('c');
            if family == "phx" && phx && is_number(&number[1..]) {
                found.push(format!("PHX-{}", number.to_uppercase()));
            } else if (family == "net" || family == "seq") && is_number(number) {
                found.push(format!("{}-{number}", family.to_uppercase()));
            }
        }
    }
    found
}

/// The `tests/<file>.rs::<fn>` and `src/<path>.rs::<fn>` references in a line.
fn test_refs(line: &str) -> Vec<(String, String)> {
    let is_path = |c: char| c.is_ascii_alphanumeric() || "_/.-".contains(c);
    let mut refs = Vec::new();
    for (at, _) in line.match_indices("::") {
        let before = &line[..at];
        let start = before
            .char_indices()
            .rev()
            .find(|&(_, c)| !is_path(c))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let path = &before[start..];
        let name: String = line[at + 2..].chars().take_while(|&c| is_word(c)).collect();
        let rooted = path.starts_with("tests/") || path.starts_with("src/");
        if rooted && path.ends_with(".rs") && !name.is_empty() {
            refs.push((path.to_owned(), name));
        }
    }
    refs
}

#[test]
fn every_cited_id_is_listed() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("tests"), &mut files);
    rust_files(&root.join("src"), &mut files);
    let mut cited: BTreeMap<String, PathBuf> = BTreeMap::new();
    for file in files.into_iter().filter(|file| !file.ends_with(THIS_FILE)) {
        for id in ids(&read(&file)) {
            let shown = file
                .strip_prefix(&root)
                .unwrap_or(file.as_path())
                .to_path_buf();
            cited.entry(id).or_insert(shown);
        }
    }
    assert!(!cited.is_empty(), "no conformance id under tests/ or src/");
    let listed = ids(&read(&root.join(DOC)));
    let missing: Vec<String> = cited
        .iter()
        .filter(|(id, _)| !listed.contains(*id))
        .map(|(id, file)| format!("{id} (cited in {})", file.display()))
        .collect();
    assert!(missing.is_empty(), "{DOC} lacks:\n{}", missing.join("\n"));
}

#[test]
fn every_listed_behaviour_names_tests_that_exist() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut problems = Vec::new();
    for (index, line) in read(&root.join(DOC)).lines().enumerate() {
        let refs = test_refs(line);
        if line.starts_with("- **") && refs.is_empty() {
            problems.push(format!("line {}: names no test", index + 1));
        }
        for (path, name) in refs {
            let file = root.join(&path);
            if !file.is_file() {
                problems.push(format!("line {}: {path} does not exist", index + 1));
            } else if !read(&file).contains(&format!("fn {name}(")) {
                problems.push(format!("line {}: {path} has no fn {name}", index + 1));
            }
        }
    }
    assert!(problems.is_empty(), "{DOC}:\n{}", problems.join("\n"));
}
