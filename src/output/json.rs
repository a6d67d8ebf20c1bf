//! JSON lines: one flat object per event, tagged by `type`. The contract is in docs/json.md.

use super::{escape, time};
use crate::event::{Event, EventKind, Message, Notice, Opcode, Sink};
use std::fmt::Write as _;
use std::io::{self, Write};

#[derive(Clone, Copy, Debug, Default)]
pub struct JsonOptions {
    pub messages_only: bool,
    /// Every TCP segment and frame header too.
    pub verbose: bool,
}

pub struct JsonPrinter<W: Write> {
    out: W,
    opts: JsonOptions,
    line: String,
}

struct Obj<'a>(&'a mut String);

impl Obj<'_> {
    fn key(&mut self, k: &str) {
        self.0.push_str(",\"");
        self.0.push_str(k);
        self.0.push_str("\":");
    }
    fn str(&mut self, k: &str, v: &str) {
        self.key(k);
        escape::json_str(v, self.0);
    }
    fn num(&mut self, k: &str, v: impl std::fmt::Display) {
        self.key(k);
        let _ = write!(self.0, "{v}");
    }
    fn bool(&mut self, k: &str, v: bool) {
        self.key(k);
        self.0.push_str(if v { "true" } else { "false" });
    }
    fn opt_str(&mut self, k: &str, v: Option<&str>) {
        if let Some(v) = v {
            self.str(k, v);
        }
    }
    fn headers(&mut self, h: &[(String, String)]) {
        self.key("headers");
        self.0.push('[');
        for (i, (n, v)) in h.iter().enumerate() {
            if i > 0 {
                self.0.push(',');
            }
            self.0.push('[');
            escape::json_str(n, self.0);
            self.0.push(',');
            escape::json_str(v, self.0);
            self.0.push(']');
        }
        self.0.push(']');
    }
}

impl<W: Write> JsonPrinter<W> {
    pub fn new(out: W, opts: JsonOptions) -> Self {
        JsonPrinter {
            out,
            opts,
            line: String::with_capacity(4096),
        }
    }
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// `text` is `m.text()`, computed once by the caller (UTF-8 validation is not free).
fn message(o: &mut Obj<'_>, m: &Message<'_>, text: Option<&str>) {
    o.str("opcode", m.opcode.as_str());
    o.num("len", m.len);
    o.bool("compressed", m.compressed);
    match m.opcode {
        Opcode::Close => {
            if let Some(c) = m.close_code {
                o.num("close_code", c);
                o.str("close_reason", m.close_reason.unwrap_or(""));
            } else if !m.payload.is_empty() {
                o.key("base64");
                b64(m.payload, o.0);
            }
        }
        _ => match text {
            Some(t) if m.incomplete != Some(crate::event::Incomplete::InflateFailed) => {
                o.str("text", t)
            }
            _ => {
                o.key("base64");
                b64(m.payload, o.0);
                if m.opcode == Opcode::Text && !m.valid_utf8 {
                    o.bool("invalid_utf8", true);
                }
            }
        },
    }
    o.num("wire_len", m.wire_len);
    o.num("frames", m.frames);
    if m.truncated {
        o.bool("truncated", true);
    }
    if let Some(i) = m.incomplete {
        o.str("incomplete", i.as_str());
    }
    if !m.missing.is_empty() {
        o.key("missing");
        o.0.push('[');
        for (i, (a, b)) in m.missing.iter().enumerate() {
            if i > 0 {
                o.0.push(',');
            }
            let _ = write!(o.0, "[{a},{b}]");
        }
        o.0.push(']');
    }
    if m.resync {
        o.bool("resync", true);
    }
}

fn b64(b: &[u8], out: &mut String) {
    out.push('"');
    // SIMD (detected at run time): binary payloads are a quarter of a typical JSON run's
    // bytes, and the scalar encoder was the second hottest printer function.
    base64_simd::STANDARD.encode_append(b, out);
    out.push('"');
}

impl<W: Write> Sink for JsonPrinter<W> {
    fn event(&mut self, ev: &Event<'_>) -> io::Result<bool> {
        if !self.build(ev) {
            return Ok(true);
        }
        let r = self.out.write_all(self.line.as_bytes());
        self.line.clear();
        r.map(|_| true)
    }
    fn finish(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl<W: Write> JsonPrinter<W> {
    /// Appends `ev`'s line to `buf` instead of writing it (for printing on several threads).
    pub fn render(&mut self, ev: &Event<'_>, buf: &mut String) {
        std::mem::swap(&mut self.line, buf);
        self.build(ev);
        std::mem::swap(&mut self.line, buf);
    }

    /// Appends `ev`'s line to `self.line`; false when `ev` is not shown.
    fn build(&mut self, ev: &Event<'_>) -> bool {
        let ty = match &ev.kind {
            EventKind::End => return false,
            EventKind::Message(_) => "message",
            _ if self.opts.messages_only => return false,
            EventKind::Tcp(t) if !self.opts.verbose && !t.role.is_lifecycle() => return false,
            EventKind::Frame(_) if !self.opts.verbose => return false,
            EventKind::Tcp(_) => "tcp",
            EventKind::HttpRequest(_) => "http_request",
            EventKind::HttpResponse(_) => "http_response",
            EventKind::Frame(_) => "frame",
            EventKind::Gap(_) => "gap",
            EventKind::Violation(_) => "violation",
            EventKind::Notice(_) => "notice",
        };
        let l = &mut self.line;
        l.push_str("{\"type\":\"");
        l.push_str(ty);
        l.push_str("\",\"ts\":\"");
        time::rfc3339(ev.ts, l);
        l.push('"');
        let mut o = Obj(l);
        if let Some(c) = ev.conn {
            o.str("client", &c.client_str());
            o.str("server", &c.server_str());
            o.str("dir", ev.dir.as_str());
            o.num("conn", c.id);
        }
        match &ev.kind {
            EventKind::Message(m) => {
                let text = m.text();
                message(&mut o, m, text);
                if let Some(r) = ev.app {
                    o.str("chat", &r.text);
                }
            }
            EventKind::Tcp(t) => {
                o.str("role", t.role.as_str());
                let f = t.flags.to_string();
                o.str("flags", f.trim_start_matches('[').trim_end_matches(']'));
                o.num("seq", t.seq);
                o.num("ack", t.ack);
                if let Some(r) = t.rel_seq {
                    o.num("rel_seq", r);
                }
                if let Some(r) = t.rel_ack {
                    o.num("rel_ack", r);
                }
                o.num("win", t.window);
                o.num("len", t.payload_len);
                if t.captured_len < t.payload_len {
                    o.num("captured_len", t.captured_len);
                }
                let op = &t.options;
                if let Some(m) = op.mss {
                    o.num("mss", m);
                }
                if let Some(w) = op.wscale {
                    o.num("wscale", w);
                }
                if op.sack_permitted {
                    o.bool("sack_ok", true);
                }
                if let Some((v, e)) = op.timestamps {
                    o.num("ts_val", v);
                    o.num("ts_ecr", e);
                }
            }
            EventKind::HttpRequest(r) => {
                o.str("method", &r.method);
                o.str("path", &r.path);
                o.str("version", &format!("HTTP/1.{}", r.version));
                o.bool("websocket_upgrade", r.websocket_upgrade);
                o.opt_str("key", r.key.as_deref());
                o.headers(&r.headers);
            }
            EventKind::HttpResponse(r) => {
                o.num("status", r.status);
                o.str("reason", &r.reason);
                o.str("version", &format!("HTTP/1.{}", r.version));
                o.bool("upgraded", r.upgraded);
                o.opt_str("accept", r.accept.as_deref());
                o.opt_str("expected_accept", r.expected_accept.as_deref());
                if let Some(ok) = r.accept_ok() {
                    o.bool("accept_ok", ok);
                }
                o.opt_str("subprotocol", r.subprotocol.as_deref());
                o.opt_str("extensions", r.extensions.as_deref());
                if let Some(d) = r.deflate {
                    o.bool("server_no_context_takeover", d.server_no_context_takeover);
                    o.bool("client_no_context_takeover", d.client_no_context_takeover);
                    if let Some(b) = d.server_max_window_bits {
                        o.num("server_max_window_bits", b);
                    }
                    if let Some(b) = d.client_max_window_bits {
                        o.num("client_max_window_bits", b);
                    }
                }
                o.headers(&r.headers);
            }
            EventKind::Frame(f) => {
                o.bool("fin", f.fin);
                o.num("rsv", f.rsv);
                o.str("opcode", &Opcode::from_u8(f.opcode).to_string());
                o.bool("masked", f.mask.is_some());
                if let Some(k) = f.mask {
                    let mut h = String::new();
                    escape::hex(&k, &mut h);
                    o.str("mask_key", &h);
                }
                o.num("payload_len", f.payload_len);
                o.num("header_len", f.header_len);
                o.num("offset", f.stream_offset);
                if f.resync {
                    o.bool("resync", true);
                }
            }
            EventKind::Gap(g) => {
                o.num("offset", g.offset);
                o.num("len", g.len);
                o.str("reason", g.reason.as_str());
            }
            EventKind::Violation(v) => {
                o.str("kind", v.kind.as_str());
                o.str("detail", &v.detail);
            }
            EventKind::End => {}
            EventKind::Notice(n) => {
                o.str("kind", n.kind());
                match n {
                    Notice::BadPacket { why } => o.str("detail", why),
                    Notice::UnsupportedLinkType { linktype } => o.num("linktype", linktype),
                    Notice::TruncatedPacket { captured, declared } => {
                        o.num("captured", captured);
                        o.num("declared", declared);
                    }
                    Notice::Tls { detail } | Notice::Undecoded { detail } => {
                        o.str("detail", detail)
                    }
                    Notice::MidStream => {}
                    Notice::Resync { skipped, offset } => {
                        o.num("skipped", skipped);
                        o.num("offset", offset);
                    }
                    Notice::Evicted { reason } => o.str("detail", reason),
                    Notice::HistoryDropped => {}
                    Notice::Dropped { by, packets, bytes } => {
                        o.str("by", by);
                        o.num("packets", packets);
                        if let Some(b) = bytes {
                            o.num("bytes", b);
                        }
                    }
                }
            }
        }
        l.push_str("}\n");
        true
    }
}
