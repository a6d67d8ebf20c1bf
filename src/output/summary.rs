//! `--stats`: a per-connection summary at the end of the run, as a table or a JSON object.

use super::{escape, time};
use crate::annotate::latency_text;
use crate::capture::Timestamp;
use crate::event::{Dir, Event, EventKind, Notice};
use std::collections::HashMap;
use std::fmt::Write as _;

/// Rows kept; connections beyond are counted in a last line, so memory stays bounded.
const MAX_ROWS: usize = 10_000;

#[derive(Clone, Debug, Default)]
pub struct ConnSummary {
    pub id: u64,
    pub client: String,
    pub server: String,
    pub first: Timestamp,
    pub last: Timestamp,
    pub messages: [u64; 2],
    pub bytes: [u64; 2],
    /// Compressed messages: bytes on the wire and inflated.
    pub deflate_wire: [u64; 2],
    pub deflate_plain: [u64; 2],
    pub close_codes: Vec<(Dir, u16)>,
    pub gaps: u64,
    pub gap_bytes: u64,
    pub violations: u64,
    pub tls: bool,
    /// The application protocol that read its messages (the last one that did).
    pub app: Option<&'static str>,
    /// Request/response latencies of that protocol (JSON-RPC ids, Socket.IO acks, …).
    pub latency: Latency,
}

/// Request/response latencies, summed up: count, total, least, most (nanoseconds).
#[derive(Clone, Copy, Debug, Default)]
pub struct Latency {
    /// Responses whose request was seen.
    pub pairs: u64,
    /// Their latencies, summed.
    pub total: u128,
    /// The least.
    pub min: u64,
    /// The most.
    pub max: u64,
}

impl Latency {
    fn add(&mut self, ns: u64) {
        self.min = if self.pairs == 0 {
            ns
        } else {
            self.min.min(ns)
        };
        self.max = self.max.max(ns);
        self.pairs += 1;
        self.total += u128::from(ns);
    }

    fn mean(&self) -> u64 {
        (self.total / u128::from(self.pairs.max(1))) as u64
    }
}

#[derive(Default)]
pub struct Summary {
    rows: Vec<ConnSummary>,
    index: HashMap<u64, usize>,
    pub overflow: u64,
}

impl Summary {
    pub fn observe(&mut self, ev: &Event<'_>) {
        let Some(c) = ev.conn else { return };
        if matches!(ev.kind, EventKind::End) {
            self.index.remove(&c.id);
            return;
        }
        let i = match self.index.get(&c.id) {
            Some(&i) => i,
            None => {
                if self.rows.len() >= MAX_ROWS {
                    self.overflow += 1;
                    return;
                }
                self.rows.push(ConnSummary {
                    id: c.id,
                    client: c.client_str().to_string(),
                    server: c.server_str().to_string(),
                    first: ev.ts,
                    ..Default::default()
                });
                self.index.insert(c.id, self.rows.len() - 1);
                self.rows.len() - 1
            }
        };
        let r = &mut self.rows[i];
        r.last = r.last.max(ev.ts);
        let d = ev.dir.index();
        match &ev.kind {
            EventKind::Message(m) => {
                r.messages[d] += 1;
                r.bytes[d] += m.len;
                if m.compressed {
                    r.deflate_wire[d] += m.wire_len;
                    r.deflate_plain[d] += m.len;
                }
                if let Some(code) = m.close_code {
                    r.close_codes.push((ev.dir, code));
                }
                if let Some(a) = ev.app {
                    r.app = Some(a.protocol);
                    if let Some(ns) = a.latency_ns {
                        r.latency.add(ns);
                    }
                }
            }
            EventKind::Gap(g) => {
                r.gaps += 1;
                r.gap_bytes += g.len;
            }
            EventKind::Violation(_) => r.violations += 1,
            // A connection is "TLS" in the table while it is not decrypted.
            EventKind::Notice(Notice::Tls { info: Some(i), .. }) => r.tls = !i.decrypted,
            _ => {}
        }
    }

    pub fn rows(&self) -> &[ConnSummary] {
        &self.rows
    }

    pub fn human(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "{:<4} {:<22} {:<22} {:>9} {:>14} {:>14} {:>7} {:<12} {:>4} {:>4}",
            "conn",
            "client",
            "server",
            "secs",
            "c2s msg/bytes",
            "s2c msg/bytes",
            "deflate",
            "close",
            "gaps",
            "viol"
        );
        for r in &self.rows {
            let secs = (r.last.as_nanos() - r.first.as_nanos()) as f64 / 1e9;
            let ratio = {
                let (w, p) = (
                    r.deflate_wire[0] + r.deflate_wire[1],
                    r.deflate_plain[0] + r.deflate_plain[1],
                );
                if p > 0 {
                    format!("{:.0}%", 100.0 * w as f64 / p as f64)
                } else {
                    "-".into()
                }
            };
            let closes: Vec<String> = r
                .close_codes
                .iter()
                .map(|(d, c)| format!("{}{c}", if *d == Dir::C2S { "→" } else { "←" }))
                .collect();
            let close = if r.tls {
                "TLS".to_string()
            } else if closes.is_empty() {
                "-".into()
            } else {
                closes.join(" ")
            };
            let _ = writeln!(
                o,
                "{:<4} {:<22} {:<22} {:>9.3} {:>14} {:>14} {:>7} {:<12} {:>4} {:>4}",
                r.id,
                r.client,
                r.server,
                secs,
                format!("{}/{}", r.messages[0], r.bytes[0]),
                format!("{}/{}", r.messages[1], r.bytes[1]),
                ratio,
                close,
                r.gaps,
                r.violations
            );
        }
        if self.overflow > 0 {
            let _ = writeln!(
                o,
                "... and events of {} more connections not tabulated",
                self.overflow
            );
        }
        if self.rows.iter().any(|r| r.latency.pairs > 0) {
            let _ = writeln!(
                o,
                "\nrequest → response latency\n{:<4} {:<20} {:>6} {:>12} {:>12} {:>12}",
                "conn", "protocol", "pairs", "min", "mean", "max"
            );
            for r in self.rows.iter().filter(|r| r.latency.pairs > 0) {
                let l = &r.latency;
                let _ = writeln!(
                    o,
                    "{:<4} {:<20} {:>6} {:>12} {:>12} {:>12}",
                    r.id,
                    r.app.unwrap_or("-"),
                    l.pairs,
                    latency_text(l.min),
                    latency_text(l.mean()),
                    latency_text(l.max)
                );
            }
        }
        o
    }

    /// One `summary` JSON object per connection.
    pub fn json(&self) -> String {
        let mut o = String::new();
        for r in &self.rows {
            o.push_str("{\"type\":\"summary\",\"conn\":");
            let _ = write!(o, "{}", r.id);
            o.push_str(",\"client\":");
            escape::json_str(&r.client, &mut o);
            o.push_str(",\"server\":");
            escape::json_str(&r.server, &mut o);
            o.push_str(",\"first\":\"");
            time::rfc3339(r.first, &mut o);
            o.push_str("\",\"last\":\"");
            time::rfc3339(r.last, &mut o);
            let secs = (r.last.as_nanos() - r.first.as_nanos()) as f64 / 1e9;
            let _ = write!(
                o,
                "\",\"duration\":{secs:.6},\"c2s_messages\":{},\"c2s_bytes\":{},\"s2c_messages\":{},\"s2c_bytes\":{},\"c2s_deflate_wire\":{},\"c2s_deflate_bytes\":{},\"s2c_deflate_wire\":{},\"s2c_deflate_bytes\":{},\"gaps\":{},\"gap_bytes\":{},\"violations\":{},\"tls\":{}",
                r.messages[0],
                r.bytes[0],
                r.messages[1],
                r.bytes[1],
                r.deflate_wire[0],
                r.deflate_plain[0],
                r.deflate_wire[1],
                r.deflate_plain[1],
                r.gaps,
                r.gap_bytes,
                r.violations,
                r.tls
            );
            o.push_str(",\"close_codes\":[");
            for (i, (d, c)) in r.close_codes.iter().enumerate() {
                if i > 0 {
                    o.push(',');
                }
                let _ = write!(o, "{{\"dir\":\"{}\",\"code\":{c}}}", d.as_str());
            }
            o.push(']');
            if let Some(a) = r.app {
                o.push_str(",\"app\":");
                escape::json_str(a, &mut o);
            }
            let l = &r.latency;
            if l.pairs > 0 {
                let us = |ns: u64| (ns / 1000) as f64 / 1000.0;
                let _ = write!(
                    o,
                    ",\"latency\":{{\"pairs\":{},\"min_ms\":{},\"mean_ms\":{},\"max_ms\":{}}}",
                    l.pairs,
                    us(l.min),
                    us(l.mean()),
                    us(l.max)
                );
            }
            o.push_str("}\n");
        }
        o
    }
}
