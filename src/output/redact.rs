//! `--redact`: what stays out of records shipped to shared systems. Header values (but
//! Host, which names the server as the addresses do), the values of a request target's
//! query, and payloads are replaced; names, lengths, opcodes, addresses and times stay.

/// What a redacted value reads as.
pub const REDACTED: &str = "REDACTED";

/// The value to show for header `name`.
pub fn header_value<'a>(name: &str, value: &'a str) -> &'a str {
    if name.eq_ignore_ascii_case("host") {
        value
    } else {
        REDACTED
    }
}

/// A request target with each query value replaced: `/chat?token=REDACTED&room=REDACTED`.
pub fn target(path: &str) -> String {
    let Some((base, query)) = path.split_once('?') else {
        return path.to_string();
    };
    let (query, frag) = match query.split_once('#') {
        Some((q, f)) => (q, Some(f)),
        None => (query, None),
    };
    let mut out = String::with_capacity(path.len());
    out.push_str(base);
    out.push('?');
    for (i, kv) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        match kv.split_once('=') {
            Some((k, _)) => {
                out.push_str(k);
                out.push('=');
                out.push_str(REDACTED);
            }
            None => out.push_str(kv),
        }
    }
    if frag.is_some() {
        out.push('#');
        out.push_str(REDACTED);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_and_header_values_go() {
        assert_eq!(target("/chat"), "/chat");
        assert_eq!(
            target("/c?token=s3cret&x&room=1#frag"),
            "/c?token=REDACTED&x&room=REDACTED#REDACTED"
        );
        assert_eq!(header_value("Host", "h:1"), "h:1");
        assert_eq!(header_value("Cookie", "sid=1"), REDACTED);
    }
}
