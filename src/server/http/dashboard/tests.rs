//! The dashboard's pure parts: tags, escaping.

use super::*;

#[test]
fn tags_match_lists_weak_tags_and_the_star() {
    assert!(matches("\"a\"", "\"a\""));
    assert!(matches("\"b\", W/\"a\"", "\"a\""));
    assert!(matches("*", "\"a\""));
    assert!(!matches("\"ab\"", "\"a\""));
}

#[test]
fn the_base_path_is_escaped_in_the_page() {
    assert_eq!(escape_attribute("/a\"<b>&'"), "/a&quot;&lt;b&gt;&amp;&#39;");
}
