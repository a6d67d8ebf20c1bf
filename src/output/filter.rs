//! Display filters, applied after decoding so they work the same live and offline.

use crate::event::{Dir, Event, EventKind, Opcode};
use regex::Regex;

#[derive(Default)]
pub struct Filter {
    pub dir: Option<Dir>,
    /// Opcodes to keep (messages only pass when listed); empty = all.
    pub opcodes: Vec<Opcode>,
    /// Connection selector: a port, an address, or `address:port`, matched against the client
    /// or the server.
    pub conn: Option<String>,
    /// Messages whose text (or close reason) matches.
    pub grep: Option<Regex>,
}

impl Filter {
    /// Whether message-content filters are set: then only messages pass.
    fn selects_messages(&self) -> bool {
        !self.opcodes.is_empty() || self.grep.is_some()
    }

    pub fn is_empty(&self) -> bool {
        self.dir.is_none() && self.conn.is_none() && !self.selects_messages()
    }

    pub fn passes(&self, ev: &Event<'_>) -> bool {
        if matches!(ev.kind, EventKind::End) {
            return true;
        }
        if let Some(sel) = &self.conn {
            let Some(c) = ev.conn else { return false };
            let hit = |a: &std::net::SocketAddr, s: &str| {
                s == a.port().to_string()
                    || s == a.ip().to_string()
                    || s == crate::packet::fmt_addr(a)
            };
            if !hit(&c.client, sel) && !hit(&c.server, sel) {
                return false;
            }
        }
        if let Some(d) = self.dir
            && (ev.conn.is_none() || ev.dir != d)
        {
            return false;
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
            let text = m.text().or(m.close_reason);
            return text.is_some_and(|t| re.is_match(t));
        }
        true
    }
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
