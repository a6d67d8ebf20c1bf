//! Display filters, applied after decoding so they work the same live and offline.

use crate::capfilter::conn::ConnSelector;
use crate::event::{Dir, Event, EventKind, Opcode};
use regex::Regex;

/// Longest message text whose JSON string values `-e` also searches.
pub const GREP_JSON_MAX: usize = 1 << 20;
/// Most string values of one message `-e` searches.
const GREP_JSON_STRINGS: usize = 100_000;

/// The display filters of the command line, all of which an event must pass; the default
/// passes everything.
#[derive(Default)]
pub struct Filter {
    /// Only events of this direction (`--dir`); `None`: both.
    pub dir: Option<Dir>,
    /// Opcodes to keep (messages only pass when listed); empty = all.
    pub opcodes: Vec<Opcode>,
    /// Connection selector (see [`ConnSelector`]): a port, an address, `address:port`, a
    /// connection number or a label, matched against the client or the server.
    pub conn: Option<ConnSelector>,
    /// Messages whose text (or close reason) matches; when the text is JSON, also those with
    /// a string value that matches once its escapes (`\u00e9`) are decoded.
    pub grep: Option<Regex>,
    /// Messages whose text (or JSON string values) match are dropped: `grep -v` that takes a
    /// message with its reading, so no orphan `↳` line is left.
    pub exclude: Option<Regex>,
    /// Heartbeats are dropped: ping and pong control frames, and the messages an application
    /// protocol reads as its heartbeat (workerman's `{"type":"ping"}`).
    pub no_heartbeats: bool,
}

impl Filter {
    /// Whether message-content filters are set: then only messages pass.
    fn selects_messages(&self) -> bool {
        !self.opcodes.is_empty() || self.grep.is_some()
    }

    /// No filter is set: every event passes (callers skip filtering).
    pub fn is_empty(&self) -> bool {
        self.dir.is_none()
            && self.conn.is_none()
            && !self.selects_messages()
            && self.exclude.is_none()
            && !self.no_heartbeats
    }

    /// Whether `ev` is shown. Connection ends always pass, so printers can release the
    /// connection's state.
    pub fn passes(&self, ev: &Event<'_>) -> bool {
        if matches!(ev.kind, EventKind::End) {
            return true;
        }
        if let Some(sel) = &self.conn {
            let Some(c) = ev.conn else { return false };
            // A label selects a connection's events from the one that named it on.
            if !sel.matches(c.id, c.client, c.server, ev.label) {
                return false;
            }
        }
        if let Some(d) = self.dir
            && (ev.conn.is_none() || ev.dir != d)
        {
            return false;
        }
        if let EventKind::Message(m) = &ev.kind {
            if self.no_heartbeats && is_heartbeat(ev, m) {
                return false;
            }
            if let Some(re) = &self.exclude
                && text_matches(re, m)
            {
                return false;
            }
        }
        if !self.selects_messages() {
            return true;
        }
        let EventKind::Message(m) = &ev.kind else {
            return false;
        };
        if !self.opcodes.is_empty() && !self.opcodes.contains(&m.opcode) {
            return false;
        }
        if let Some(re) = &self.grep {
            return text_matches(re, m);
        }
        true
    }
}

/// A ping or pong control frame, or a message its protocol reads as a heartbeat.
pub fn is_heartbeat(ev: &Event<'_>, m: &crate::event::Message<'_>) -> bool {
    matches!(m.opcode, Opcode::Ping | Opcode::Pong) || ev.app.is_some_and(|a| a.heartbeat)
}

/// Whether `re` matches the message's text (or close reason), or one of its JSON strings.
fn text_matches(re: &Regex, m: &crate::event::Message<'_>) -> bool {
    let text = m.text().or(m.close_reason);
    text.is_some_and(|t| re.is_match(t) || json_strings_match(re, t))
}

/// Whether `text` is JSON with a string value (at any depth) that `re` matches, escapes
/// decoded: `{"nick":"J\u00fcrgen"}` matches `Jürgen`. Bounded: texts over
/// [`GREP_JSON_MAX`] bytes are not parsed, nesting is limited by serde_json (128 levels), and
/// at most [`GREP_JSON_STRINGS`] values are tried.
pub fn json_strings_match(re: &Regex, text: &str) -> bool {
    let start = text.trim_start().as_bytes().first();
    if text.len() > GREP_JSON_MAX || !matches!(start, Some(b'{' | b'[' | b'"')) {
        return false;
    }
    let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
        return false;
    };
    let mut stack = vec![&v];
    let mut tried = 0;
    while let Some(v) = stack.pop() {
        match v {
            serde_json::Value::String(s) => {
                if re.is_match(s) {
                    return true;
                }
                tried += 1;
                if tried >= GREP_JSON_STRINGS {
                    return false;
                }
            }
            serde_json::Value::Array(a) => stack.extend(a.iter().rev()),
            serde_json::Value::Object(o) => stack.extend(o.values().rev()),
            _ => {}
        }
    }
    false
}

/// Parses an `--opcode` value.
pub fn parse_opcode(s: &str) -> Option<Opcode> {
    Some(match s.to_ascii_lowercase().as_str() {
        "text" => Opcode::Text,
        "binary" => Opcode::Binary,
        "ping" => Opcode::Ping,
        "pong" => Opcode::Pong,
        "close" => Opcode::Close,
        "continuation" => Opcode::Continuation,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Annotation, ConnInfo, Message};

    fn msg(text: &str, opcode: Opcode) -> Message<'_> {
        Message {
            opcode,
            payload: text.as_bytes(),
            len: text.len() as u64,
            wire_len: text.len() as u64,
            compressed: false,
            frames: 1,
            truncated: false,
            incomplete: None,
            missing: Vec::new(),
            resync: false,
            valid_utf8: true,
            text: Some(text),
            close_code: None,
            close_reason: None,
        }
    }

    #[test]
    fn heartbeats_exclusion_and_labels() {
        let a: std::net::SocketAddr = "127.0.0.1:48832".parse().unwrap();
        let b: std::net::SocketAddr = "127.0.0.1:7272".parse().unwrap();
        let c = ConnInfo {
            id: 1,
            client: a,
            server: b,
        };
        let hb = Annotation {
            protocol: "workerman-chat",
            text: "heartbeat ping".into(),
            heartbeat: true,
            ..Default::default()
        };
        let ping = msg(r#"{"type":"ping"}"#, Opcode::Text);
        let ctl = msg("", Opcode::Ping);
        let say = msg(r#"{"type":"say","content":"hi"}"#, Opcode::Text);
        let ev = |m, app, label| Event {
            ts: Default::default(),
            conn: Some(&c),
            dir: Dir::S2C,
            kind: EventKind::Message(m),
            app,
            label,
        };
        let f = Filter {
            no_heartbeats: true,
            ..Filter::default()
        };
        assert!(!f.passes(&ev(&ping, Some(&hb), None)));
        assert!(!f.passes(&ev(&ctl, None, None)));
        assert!(f.passes(&ev(&say, None, None)));
        let f = Filter {
            exclude: Some(Regex::new("(?i)PING").unwrap()),
            ..Filter::default()
        };
        assert!(!f.passes(&ev(&ping, Some(&hb), None)));
        assert!(f.passes(&ev(&say, None, None)));
        let f = Filter {
            conn: Some(ConnSelector::parse("mynick").unwrap()),
            ..Filter::default()
        };
        assert!(f.passes(&ev(&say, None, Some("mynick"))));
        assert!(!f.passes(&ev(&say, None, Some("second"))));
        assert!(!f.passes(&ev(&say, None, None)));
    }

    #[test]
    fn grep_reads_json_string_values_unescaped() {
        let re = Regex::new("Jürgen").unwrap();
        let t = r#"{"type":"say","from":"J\u00fcrgen","to":["all"]}"#;
        assert!(!re.is_match(t));
        assert!(json_strings_match(&re, t));
        let re = Regex::new("(?i)^HELLO, 世界$").unwrap();
        assert!(json_strings_match(
            &re,
            r#"[1, {"m": "hello, \u4e16\u754c"}]"#
        ));
        // Not JSON, or no value matching: no.
        assert!(!json_strings_match(&re, "hello, 世界"));
        assert!(!json_strings_match(&re, r#"{"hello, 世界": 1}"#));
        assert!(!json_strings_match(&re, "{not json"));
    }
}
