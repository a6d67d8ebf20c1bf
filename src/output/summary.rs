//! `--stats`: a per-connection summary at the end of the run, as a table or a JSON object.

use super::{escape, time};
use crate::annotate::latency_text;
use crate::capture::Timestamp;
use crate::event::{Dir, Event, EventKind, Notice, TcpRole};
use std::collections::HashMap;
use std::fmt::Write as _;

/// A connection this soon after the previous one of the same client address to the same
/// server ended is a reconnect.
pub const RECONNECT_NS: i128 = 5_000_000_000;
/// Rows kept; connections beyond are counted in a last line, so memory stays bounded.
const MAX_ROWS: usize = 10_000;

/// One row of the `--stats` table: one connection's counters. Arrays of two are indexed by
/// [`Dir::index`]: client to server first.
#[derive(Clone, Debug, Default)]
pub struct ConnSummary {
    /// The connection's id, as events carry it.
    pub id: u64,
    /// The client's address as printed (`ip:port`).
    pub client: String,
    /// The server's address as printed (`ip:port`).
    pub server: String,
    /// The name an application protocol gave the connection (a chat login).
    pub label: Option<String>,
    /// When its first event happened.
    pub first: Timestamp,
    /// When its latest event happened.
    pub last: Timestamp,
    /// Websocket messages per direction, control messages included.
    pub messages: [u64; 2],
    /// Their payload bytes per direction, after inflation.
    pub bytes: [u64; 2],
    /// Compressed messages: bytes on the wire and inflated.
    pub deflate_wire: [u64; 2],
    /// The inflated bytes of the compressed messages counted in `deflate_wire`.
    pub deflate_plain: [u64; 2],
    /// The close frames' status codes (RFC 6455 7.4), with who sent each, in order.
    pub close_codes: Vec<(Dir, u16)>,
    /// Holes in the captured streams (lost or uncaptured segments).
    pub gaps: u64,
    /// The bytes those holes span.
    pub gap_bytes: u64,
    /// RFC breaches reported on it.
    pub violations: u64,
    /// TLS that was not decrypted (its content is not in the other counters).
    pub tls: bool,
    /// The application protocol that read its messages (the last one that did).
    pub app: Option<&'static str>,
    /// Request/response latencies of that protocol (JSON-RPC ids, Socket.IO acks, …).
    pub latency: Latency,
    syn: bool,
    syn_ack: bool,
    websocket: bool,
    /// The first FIN or RST: its direction and whether it was a reset.
    ended: Option<(Dir, bool)>,
    /// A reconnect: the how-manieth in a row, and the time since the previous connection
    /// of the same client address to the same server ended.
    pub reconnect: Option<(u32, f64)>,
    /// The server's last heartbeat the client has not answered (nothing sent since).
    unanswered_ping: bool,
    client_ip: Option<std::net::IpAddr>,
    server_addr: Option<std::net::SocketAddr>,
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

impl ConnSummary {
    /// The verdict's key in the language tables: a refused connection, or a session ended
    /// without a close frame, and by whom.
    pub fn verdict(&self) -> Option<(&'static str, &'static str)> {
        let (dir, rst) = self.ended?;
        let how = if rst { "RST" } else { "FIN" };
        if rst && dir == Dir::S2C && self.syn && !self.syn_ack {
            return Some(("s_refused", how));
        }
        // After a gap, the close frame may have been among the lost bytes.
        if self.websocket && self.close_codes.is_empty() && self.gaps == 0 {
            return Some((
                match (dir, self.unanswered_ping) {
                    (Dir::S2C, true) => "s_cut_heartbeat",
                    (Dir::S2C, false) => "s_cut_server",
                    (Dir::C2S, _) => "s_cut_client",
                },
                how,
            ));
        }
        None
    }
}

/// The `--stats` collector: give it every event ([`observe`](Self::observe)), then print
/// [`human`](Self::human) or [`json`](Self::json). At most 10 000 rows are kept.
#[derive(Default)]
pub struct Summary {
    rows: Vec<ConnSummary>,
    index: HashMap<u64, usize>,
    /// For each client address and server: when its last connection ended, and how many
    /// connections followed one another within [`RECONNECT_NS`].
    ended: HashMap<(std::net::IpAddr, std::net::SocketAddr), (Timestamp, u32)>,
    /// The same for connection names (labels).
    names_ended: HashMap<String, (Timestamp, u32)>,
    /// Connections seen after the table was full: not in the rows, only counted.
    pub overflow: u64,
    /// Language of the table's verdicts.
    pub lang: super::texts::Lang,
}

impl Summary {
    /// A summary whose verdicts are in `lang`.
    pub fn in_lang(lang: super::texts::Lang) -> Summary {
        Summary {
            lang,
            ..Summary::default()
        }
    }

    /// Counts one event into its connection's row (events of no connection are ignored).
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
                    client_ip: Some(c.client.ip()),
                    server_addr: Some(c.server),
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
        if let Some(l) = ev.label
            && r.label.as_deref() != Some(l)
        {
            r.label = Some(l.to_string());
            // The same name again soon after its connection ended is a reconnect too (from
            // another address, e.g. behind a NAT or a new Wi-Fi).
            if r.reconnect.is_none()
                && let Some(&(ended, run)) = self.names_ended.get(l)
            {
                let ns = ev.ts.as_nanos() - ended.as_nanos();
                if (0..=RECONNECT_NS).contains(&ns) {
                    r.reconnect = Some((run + 1, ns as f64 / 1e9));
                }
            }
        }
        let d = ev.dir.index();
        match &ev.kind {
            EventKind::Message(m) => {
                r.websocket = true;
                if r.ended.is_none() {
                    match ev.dir {
                        Dir::C2S => r.unanswered_ping = false,
                        Dir::S2C
                            if super::filter::is_heartbeat(ev, m)
                                && m.opcode != crate::event::Opcode::Pong =>
                        {
                            r.unanswered_ping = true;
                        }
                        Dir::S2C => {}
                    }
                }
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
            EventKind::Notice(Notice::MidStream) => r.websocket = true,
            EventKind::HttpResponse(h) => r.websocket |= h.upgraded,
            EventKind::Tcp(t) => match t.role {
                TcpRole::Syn if !r.syn => {
                    r.syn = true;
                    let key = (c.client.ip(), c.server);
                    if let Some(&(ended, run)) = self.ended.get(&key) {
                        let ns = ev.ts.as_nanos() - ended.as_nanos();
                        if (0..=RECONNECT_NS).contains(&ns) {
                            r.reconnect = Some((run + 1, ns as f64 / 1e9));
                        }
                    }
                }
                TcpRole::SynAck => r.syn_ack = true,
                TcpRole::Fin | TcpRole::Rst if r.ended.is_none() => {
                    r.ended = Some((ev.dir, t.role == TcpRole::Rst));
                    if let (Some(ip), Some(srv)) = (r.client_ip, r.server_addr) {
                        let run = r.reconnect.map_or(0, |(n, _)| n);
                        if self.ended.len() >= MAX_ROWS {
                            self.ended.clear();
                        }
                        self.ended.insert((ip, srv), (ev.ts, run));
                    }
                    if let Some(l) = &r.label {
                        let run = r.reconnect.map_or(0, |(n, _)| n);
                        if self.names_ended.len() >= MAX_ROWS {
                            self.names_ended.clear();
                        }
                        self.names_ended.insert(l.clone(), (ev.ts, run));
                    }
                }
                _ => {}
            },
            _ => {}
        }
    }

    /// A row's verdicts in words.
    fn verdicts(&self, r: &ConnSummary) -> String {
        let mut v = Vec::new();
        if let Some((n, secs)) = r.reconnect {
            v.push(self.lang.fill(
                "s_reconnect",
                &[("n", &n.to_string()), ("secs", &format!("{secs:.3}"))],
            ));
        }
        if let Some((k, how)) = r.verdict() {
            v.push(self.lang.fill(k, &[("how", how)]));
        }
        v.join("; ")
    }

    /// The rows, in the order the connections were first seen.
    pub fn rows(&self) -> &[ConnSummary] {
        &self.rows
    }

    /// The table as text, one line per connection under a header, in [`lang`](Self::lang),
    /// then the overflow count and, when any request met its response, a latency table.
    pub fn human(&self) -> String {
        let mut o = String::new();
        let client = |r: &ConnSummary| {
            let mut s = String::new();
            if let Some(l) = &r.label {
                super::human::label(l, &mut s);
                s.push('@');
            }
            s.push_str(&r.client);
            s
        };
        let cw = self
            .rows
            .iter()
            .map(|r| super::width::visible(&client(r)))
            .max()
            .unwrap_or(0)
            .max(22);
        let _ = writeln!(
            o,
            "{:<4} {:<cw$} {:<22} {:>9} {:>14} {:>14} {:>7} {:<12} {:>4} {:>4} {}",
            self.lang.get("s_conn"),
            self.lang.get("s_client"),
            self.lang.get("s_server"),
            self.lang.get("s_secs"),
            self.lang.get("s_c2s"),
            self.lang.get("s_s2c"),
            self.lang.get("s_deflate"),
            self.lang.get("s_close"),
            self.lang.get("s_gaps"),
            self.lang.get("s_viol"),
            self.lang.get("s_verdict"),
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
            let c = client(r);
            let pad = cw.saturating_sub(super::width::visible(&c));
            let mut row = String::new();
            let _ = write!(
                row,
                "{:<4} {c}{:pad$} {:<22} {:>9.3} {:>14} {:>14} {:>7} {:<12} {:>4} {:>4} {}",
                r.id,
                "",
                r.server,
                secs,
                format!("{}/{}", r.messages[0], r.bytes[0]),
                format!("{}/{}", r.messages[1], r.bytes[1]),
                ratio,
                close,
                r.gaps,
                r.violations,
                self.verdicts(r),
            );
            o.push_str(row.trim_end());
            o.push('\n');
        }
        if self.overflow > 0 {
            let n = self.overflow.to_string();
            let _ = writeln!(o, "{}", self.lang.fill("s_overflow", &[("n", &n)]));
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
            if let Some(l) = &r.label {
                o.push_str(",\"label\":");
                escape::json_str(l, &mut o);
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ConnInfo, TcpEvent};
    use crate::packet::{TcpFlags, TcpOptions};

    fn conn(id: u64, client: &str) -> ConnInfo {
        let c: std::net::SocketAddr = client.parse().unwrap();
        let s: std::net::SocketAddr = "10.0.0.1:7272".parse().unwrap();
        ConnInfo {
            id,
            client: c,
            server: s,
        }
    }

    fn tcp(role: TcpRole) -> TcpEvent {
        TcpEvent {
            role,
            flags: TcpFlags(0),
            seq: 0,
            ack: 0,
            rel_seq: None,
            rel_ack: None,
            window: 0,
            options: TcpOptions::default(),
            payload_len: 0,
            captured_len: 0,
        }
    }

    /// A name that comes back from another address within seconds is a reconnect; the same
    /// address to the same server too.
    #[test]
    fn reconnects_by_name_and_by_address() {
        let mut s = Summary::default();
        let at = |secs| Timestamp {
            secs,
            ..Timestamp::default()
        };
        let ev = |c, ts, dir, kind, label| Event {
            ts,
            conn: Some(c),
            dir,
            kind,
            app: None,
            label,
        };
        let (a, b, c) = (
            conn(1, "192.0.2.1:5000"),
            conn(2, "198.51.100.7:6000"),
            conn(3, "198.51.100.7:6001"),
        );
        s.observe(&ev(
            &a,
            at(0),
            Dir::C2S,
            EventKind::Tcp(tcp(TcpRole::Syn)),
            None,
        ));
        s.observe(&ev(
            &a,
            at(1),
            Dir::C2S,
            EventKind::Tcp(tcp(TcpRole::Ack)),
            Some("mynick"),
        ));
        s.observe(&ev(
            &a,
            at(2),
            Dir::S2C,
            EventKind::Tcp(tcp(TcpRole::Rst)),
            Some("mynick"),
        ));
        // Another address, the same name, 3 s later.
        s.observe(&ev(
            &b,
            at(4),
            Dir::C2S,
            EventKind::Tcp(tcp(TcpRole::Syn)),
            None,
        ));
        s.observe(&ev(
            &b,
            at(5),
            Dir::C2S,
            EventKind::Tcp(tcp(TcpRole::Ack)),
            Some("mynick"),
        ));
        s.observe(&ev(
            &b,
            at(5),
            Dir::C2S,
            EventKind::Tcp(tcp(TcpRole::Fin)),
            Some("mynick"),
        ));
        // The same address again, after 20 s: not a reconnect.
        s.observe(&ev(
            &c,
            at(25),
            Dir::C2S,
            EventKind::Tcp(tcp(TcpRole::Syn)),
            None,
        ));
        let r = s.rows();
        assert_eq!(r[0].reconnect, None);
        assert_eq!(r[1].reconnect, Some((1, 3.0)));
        assert_eq!(r[2].reconnect, None);
        assert!(s.human().contains("reconnect #1 after 3.000 s"));
    }
}
