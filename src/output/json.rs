//! JSON lines: one flat object per event, tagged by `type`. The contract is in docs/json.md.

use super::{escape, time};
use crate::event::{Event, EventKind, Message, Notice, Opcode, Sink, TlsInfo};
use std::fmt::Write as _;
use std::io::{self, Write};

/// What `--json` writes; the default is every event but TCP segments and frame headers.
#[derive(Clone, Copy, Debug, Default)]
pub struct JsonOptions {
    /// Only websocket messages (`type: "message"`).
    pub messages_only: bool,
    /// Every TCP segment and frame header too.
    pub verbose: bool,
    /// Seed of each connection's `community_id`.
    pub community_id_seed: u16,
    /// Header values, query values and payloads left out ([`super::redact`]).
    pub redact: bool,
    /// Payloads cut to this many bytes, marked `payload_cut`.
    pub max_payload: Option<usize>,
}

/// The `--json` [`Sink`]: one JSON object per line per event, as docs/json.md specifies.
pub struct JsonPrinter<W: Write> {
    out: W,
    opts: JsonOptions,
    line: String,
    /// Community IDs of recent connections, by connection number modulo its size: a SHA-1
    /// per connection rather than per event when connections interleave; bounded.
    community_ids: Vec<(u64, String)>,
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
    /// The handshake's summary, as an object: `{"version":"TLS 1.3",...,"decrypted":true}`.
    fn tls(&mut self, i: &TlsInfo) {
        self.key("tls");
        let mut inner = String::new();
        let mut t = Obj(&mut inner);
        t.opt_str("version", i.version);
        t.opt_str("suite", i.suite);
        t.opt_str("sni", i.sni.as_deref());
        t.opt_str("alpn", i.alpn.as_deref());
        t.bool("resumed", i.resumed);
        t.bool("decrypted", i.decrypted);
        self.0.push('{');
        self.0.push_str(&inner[1..]);
        self.0.push('}');
    }
    fn headers(&mut self, h: &[(String, String)], redact: bool) {
        self.key("headers");
        self.0.push('[');
        for (i, (n, v)) in h.iter().enumerate() {
            if i > 0 {
                self.0.push(',');
            }
            self.0.push('[');
            escape::json_str(n, self.0);
            self.0.push(',');
            let v = if redact {
                super::redact::header_value(n, v)
            } else {
                v
            };
            escape::json_str(v, self.0);
            self.0.push(']');
        }
        self.0.push(']');
    }
}

/// A JSON value, its strings escaped as every other string of the output (DEL too).
fn value(v: &serde_json::Value, out: &mut String) {
    use serde_json::Value as V;
    match v {
        V::Null => out.push_str("null"),
        V::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        V::Number(n) => {
            let _ = write!(out, "{n}");
        }
        V::String(s) => escape::json_str(s, out),
        V::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                value(x, out);
            }
            out.push(']');
        }
        V::Object(m) => {
            out.push('{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                escape::json_str(k, out);
                out.push(':');
                value(x, out);
            }
            out.push('}');
        }
    }
}

impl<W: Write> JsonPrinter<W> {
    /// A printer writing JSON lines to `out`.
    pub fn new(out: W, opts: JsonOptions) -> Self {
        JsonPrinter {
            out,
            opts,
            line: String::with_capacity(4096),
            community_ids: Vec::new(),
        }
    }
    /// Flushes the writer; call it before the program exits, since `out` may be buffered.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Gives the writer back (tests read what was printed from it).
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// `text` is `m.text()`, computed once by the caller (UTF-8 validation is not free).
fn message(o: &mut Obj<'_>, m: &Message<'_>, text: Option<&str>, opts: &JsonOptions) {
    o.str("opcode", m.opcode.as_str());
    o.num("len", m.len);
    o.bool("compressed", m.compressed);
    // --max-payload: the first bytes (text cut at a character boundary).
    let cap = opts.max_payload.filter(|&n| n < m.payload.len());
    let payload = &m.payload[..cap.unwrap_or(m.payload.len())];
    let text = text.map(|t| {
        let mut end = payload.len();
        while !t.is_char_boundary(end) {
            end -= 1;
        }
        &t[..end]
    });
    if opts.redact && !m.payload.is_empty() {
        if let Some(c) = m.close_code {
            o.num("close_code", c);
        }
        o.bool("redacted", true);
    } else {
        match m.opcode {
            Opcode::Close => {
                if let Some(c) = m.close_code {
                    o.num("close_code", c);
                    match (m.close_reason, m.payload.get(2..)) {
                        // A reason that is not UTF-8 is no JSON string: its bytes, as sent.
                        (None, Some(reason)) if !reason.is_empty() => {
                            o.key("close_reason_base64");
                            b64(reason, o.0);
                            o.bool("invalid_utf8", true);
                        }
                        (r, _) => o.str("close_reason", r.unwrap_or("")),
                    }
                } else if !m.payload.is_empty() {
                    o.key("base64");
                    b64(payload, o.0);
                }
            }
            _ => payload_fields(o, m, payload, text),
        }
        if cap.is_some() && m.opcode != Opcode::Close {
            o.bool("payload_cut", true);
        }
    }
    message_tail(o, m);
}

fn payload_fields(o: &mut Obj<'_>, m: &Message<'_>, payload: &[u8], text: Option<&str>) {
    {
        match text {
            Some(t) if m.incomplete != Some(crate::event::Incomplete::InflateFailed) => {
                o.str("text", t)
            }
            _ => {
                o.key("base64");
                b64(payload, o.0);
                if m.opcode == Opcode::Text && !m.valid_utf8 {
                    o.bool("invalid_utf8", true);
                }
            }
        }
    }
}

fn message_tail(o: &mut Obj<'_>, m: &Message<'_>) {
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
            const SLOTS: usize = 256;
            if self.community_ids.is_empty() {
                // Connection numbers start at 1: slot 0's 0 is never a hit by mistake.
                self.community_ids = vec![(0, String::new()); SLOTS];
            }
            let slot = &mut self.community_ids[(c.id % SLOTS as u64) as usize];
            if slot.0 != c.id {
                let seed = self.opts.community_id_seed;
                *slot = (
                    c.id,
                    super::community_id::community_id(c.client, c.server, seed),
                );
            }
            o.str("community_id", &slot.1);
            // A name comes from the payload (a login): redacted with it.
            if let Some(l) = ev.label.filter(|_| !self.opts.redact) {
                o.str("label", l);
            }
        }
        match &ev.kind {
            EventKind::Message(m) => {
                let text = m.text();
                message(&mut o, m, text, &self.opts);
                // An annotation reads the payload: redacted with it.
                if let Some(r) = ev.app.filter(|_| !self.opts.redact) {
                    // `chat` is older than `app` and stays what it was: workerman-chat's sentence.
                    if r.protocol == "workerman-chat" {
                        o.str("chat", &r.text);
                    }
                    if r.json.is_object() {
                        o.key("app");
                        value(&r.json, o.0);
                    }
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
                if self.opts.redact {
                    o.str("path", &super::redact::target(&r.path));
                } else {
                    o.str("path", &r.path);
                }
                o.str("version", &format!("HTTP/1.{}", r.version));
                o.bool("websocket_upgrade", r.websocket_upgrade);
                if !self.opts.redact {
                    o.opt_str("key", r.key.as_deref());
                }
                o.headers(&r.headers, self.opts.redact);
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
                o.headers(&r.headers, self.opts.redact);
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
                    Notice::Tls { detail, info } => {
                        o.str("detail", detail);
                        if let Some(i) = info {
                            o.tls(i);
                        }
                    }
                    Notice::Undecoded { detail } => o.str("detail", detail),
                    Notice::MidStream => {}
                    Notice::Resync { skipped, offset } => {
                        o.num("skipped", skipped);
                        o.num("offset", offset);
                    }
                    Notice::Evicted { reason } => o.str("detail", reason),
                    Notice::HistoryDropped | Notice::AppDropped => {}
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
