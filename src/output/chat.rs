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
    let mut out = String::with_capacity(text.len());
    let (mut in_str, mut escaped) = (false, false);
    for c in text.chars() {
        if in_str {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
        } else if c == '"' {
            in_str = true;
            out.push(c);
        } else if !matches!(c, ' ' | '\n' | '\r' | '\t') {
            out.push(c);
        }
    }
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
