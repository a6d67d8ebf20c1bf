//! Helpers the human views share for chat-like payloads. The protocol reading itself is an
//! annotation made in the engine ([`crate::annotate`]); printers only show it.

/// A pretty-printed JSON text without its insignificant whitespace (keys, order and escapes as
/// sent): it then fits one line.
pub fn compact_json(text: &str) -> Option<String> {
    let t = text.trim_start();
    // Only pretty-printed (multi-line) JSON is rewritten: one-line JSON is already readable,
    // and checking it would cost a parse of every message.
    if !(t.starts_with('{') || t.starts_with('[')) || !text.contains('\n') {
        return None;
    }
    let out = crate::app::json_without_whitespace(text, usize::MAX);
    if out.len() == text.len() || serde_json::from_str::<serde::de::IgnoredAny>(&out).is_err() {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod compact_tests {
    use super::compact_json;

    #[test]
    fn compacts_only_valid_json_with_whitespace() {
        assert_eq!(
            compact_json("{\n  \"a\": [1, 2],\n  \"b\": \"x y\\\" z\"\n}").as_deref(),
            Some("{\"a\":[1,2],\"b\":\"x y\\\" z\"}")
        );
        assert_eq!(compact_json("{\"a\":1}"), None);
        assert_eq!(compact_json("{ not json }"), None);
        assert_eq!(compact_json("plain text"), None);
    }
}
