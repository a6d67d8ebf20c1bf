//! The human view: one line per event worth reading, tcpdump-like, client always on the left
//! and an arrow for the direction.

use super::{Palette, escape, time};
use crate::event::{Dir, Event, EventKind, Message, Notice, Opcode, Sink, TcpRole};
use std::fmt::Write as _;
use std::io::{self, Write};

#[derive(Clone, Copy, Debug, Default)]
pub struct HumanOptions {
    /// Only websocket messages.
    pub messages_only: bool,
    /// Every TCP segment and every frame header too.
    pub verbose: bool,
    /// Hex and ASCII dump of binary payloads (`-X`).
    pub hex: bool,
}

pub struct HumanPrinter<W: Write> {
    out: W,
    pal: Palette,
    opts: HumanOptions,
    line: String,
    /// The line's timestamp as tcpdump's `-t` options print it; `None`: UTC time of day.
    stamper: Option<time::Stamper>,
}

impl<W: Write> HumanPrinter<W> {
    pub fn new(out: W, pal: Palette, opts: HumanOptions) -> Self {
        HumanPrinter {
            out,
            pal,
            opts,
            line: String::with_capacity(4096),
            stamper: None,
        }
    }

    /// Timestamps as tcpdump prints them with `-t`...`-ttttt` (none given: the time of day),
    /// in `zone`, instead of the UTC time of day.
    pub fn with_time(mut self, format: time::TimeFormat, zone: time::Zone) -> Self {
        self.stamper = Some(time::Stamper::new(format, zone));
        self
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn into_inner(self) -> W {
        self.out
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    fn prefix(&mut self, ev: &Event<'_>) {
        let p = self.pal;
        let mut t = String::with_capacity(32);
        match &mut self.stamper {
            Some(s) => s.stamp(ev.ts, &mut t),
            None => time::clock(ev.ts, &mut t),
        }
        // `-t`: no timestamp, and no space before the rest (as tcpdump).
        if !t.is_empty() {
            p.paint(p.time, &t, &mut self.line);
            self.line.push(' ');
        }
        if let Some(c) = ev.conn {
            p.paint(p.addr, &c.client_str(), &mut self.line);
            match ev.dir {
                Dir::C2S => p.paint(p.c2s, " → ", &mut self.line),
                Dir::S2C => p.paint(p.s2c, " ← ", &mut self.line),
            }
            p.paint(p.addr, &c.server_str(), &mut self.line);
            self.line.push(' ');
        }
    }

    fn message(&mut self, m: &Message<'_>) {
        let p = self.pal;
        let l = &mut self.line;
        let style = if m.opcode.is_control() {
            p.control
        } else {
            p.opcode
        };
        p.paint(style, m.opcode.as_str(), l);
        match m.opcode {
            Opcode::Close => {
                if let Some(code) = m.close_code {
                    let _ = write!(l, " {code}");
                    if let Some(name) = close_name(code) {
                        let _ = write!(l, " ({name})");
                    }
                }
                if let Some(r) = m.close_reason
                    && !r.is_empty()
                {
                    l.push_str(" \"");
                    escape::text(r, l);
                    l.push('"');
                }
                if m.close_code.is_none() && m.close_reason.is_none() && !m.payload.is_empty() {
                    l.push_str(" 0x");
                    escape::hex(m.payload, l);
                }
                flags(m, &p, l);
                return;
            }
            _ => {
                let _ = write!(l, " {}", m.len);
            }
        }
        flags(m, &p, l);
        if m.payload.is_empty() {
            return;
        }
        l.push_str(": ");
        let show_text = match m.opcode {
            Opcode::Text => m.valid_utf8,
            // Ping/pong payloads are usually short ASCII; show them as text when they are.
            Opcode::Ping | Opcode::Pong | Opcode::Continuation => {
                std::str::from_utf8(m.payload).is_ok_and(|s| !s.chars().any(char::is_control))
            }
            _ => false,
        };
        if show_text && m.incomplete != Some(crate::event::Incomplete::InflateFailed) {
            // JSON payloads print compact (and still valid); the JSON output keeps them raw.
            match m.text().and_then(super::chat::compact_json) {
                Some(c) => escape::text(&c, l),
                None => escape::bytes(m.payload, l),
            }
        } else {
            // Binary, or bytes that must not pass for text: hex, shortened.
            l.push_str("0x");
            let n = m.payload.len().min(32);
            escape::hex(&m.payload[..n], l);
            if m.payload.len() > n {
                l.push('…');
            }
        }
        if self.opts.hex && !show_text {
            l.push('\n');
            let mut dump = String::new();
            escape::hexdump(m.payload, "\t", &mut dump);
            l.push_str(dump.trim_end_matches('\n'));
        }
    }
}

fn flags(m: &Message<'_>, p: &Palette, l: &mut String) {
    let mut f: Vec<String> = Vec::new();
    if m.compressed {
        f.push(format!("deflated {}", m.wire_len));
    }
    if m.frames > 1 {
        f.push(format!("{} frames", m.frames));
    }
    if m.resync {
        f.push("resync".into());
    }
    if let Some(i) = m.incomplete {
        f.push(format!("incomplete: {}", i.as_str().replace('_', " ")));
    }
    for (a, b) in &m.missing {
        f.push(format!("missing {a}..{b}"));
    }
    if m.truncated {
        f.push(format!("truncated to {}", m.payload.len()));
    }
    if m.opcode == Opcode::Text && !m.valid_utf8 {
        f.push("invalid utf-8".into());
    }
    if !f.is_empty() {
        l.push(' ');
        let warn = m.incomplete.is_some() || m.truncated || m.resync || !m.valid_utf8;
        p.paint(
            if warn { p.warn } else { p.flag },
            &format!("[{}]", f.join(", ")),
            l,
        );
    }
}

/// RFC 6455 section 7.4.1 names.
pub fn close_name(code: u16) -> Option<&'static str> {
    Some(match code {
        1000 => "normal closure",
        1001 => "going away",
        1002 => "protocol error",
        1003 => "unsupported data",
        1005 => "no status received",
        1006 => "abnormal closure",
        1007 => "invalid payload data",
        1008 => "policy violation",
        1009 => "message too big",
        1010 => "mandatory extension",
        1011 => "internal error",
        1012 => "service restart",
        1013 => "try again later",
        1014 => "bad gateway",
        1015 => "TLS handshake",
        _ => return None,
    })
}

fn tcp_label(r: TcpRole) -> &'static str {
    match r {
        TcpRole::Syn => "handshake 1/3",
        TcpRole::SynAck => "handshake 2/3",
        TcpRole::HandshakeAck => "handshake 3/3",
        TcpRole::Fin => "teardown",
        TcpRole::Rst => "reset",
        TcpRole::Data => "data",
        TcpRole::Ack => "ack",
        TcpRole::KeepAlive => "keep-alive",
    }
}

impl<W: Write> Sink for HumanPrinter<W> {
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

impl<W: Write> HumanPrinter<W> {
    /// Appends `ev`'s lines to `buf` instead of writing them (for printing on several
    /// threads).
    pub fn render(&mut self, ev: &Event<'_>, buf: &mut String) {
        std::mem::swap(&mut self.line, buf);
        self.build(ev);
        std::mem::swap(&mut self.line, buf);
    }

    /// Appends `ev`'s lines to `self.line`; false when `ev` is not shown.
    fn build(&mut self, ev: &Event<'_>) -> bool {
        let show = match &ev.kind {
            EventKind::End => false,
            EventKind::Message(_) => true,
            _ if self.opts.messages_only => false,
            EventKind::Tcp(t) => self.opts.verbose || t.role.is_lifecycle(),
            EventKind::Frame(_) => self.opts.verbose,
            _ => true,
        };
        if !show {
            return false;
        }
        self.prefix(ev);
        let p = self.pal;
        match &ev.kind {
            EventKind::Tcp(t) => {
                let l = &mut self.line;
                p.paint(p.tcp, &format!("tcp {}", tcp_label(t.role)), l);
                let _ = write!(l, " {}", t.flags);
                let syn = t.flags.syn();
                let seq = if syn {
                    Some(t.seq)
                } else {
                    t.rel_seq.or(Some(t.seq))
                };
                if let Some(s) = seq {
                    if t.payload_len > 0 {
                        let _ = write!(l, " seq {}:{}", s, s.wrapping_add(t.payload_len));
                    } else {
                        let _ = write!(l, " seq {s}");
                    }
                }
                if t.flags.ack() {
                    let a = if syn {
                        t.ack
                    } else {
                        t.rel_ack.unwrap_or(t.ack)
                    };
                    let _ = write!(l, " ack {a}");
                }
                let _ = write!(l, " win {}", t.window);
                if !t.options.is_empty() {
                    let _ = write!(l, " {}", t.options);
                }
                let _ = write!(l, " length {}", t.payload_len);
            }
            EventKind::HttpRequest(r) => {
                let l = &mut self.line;
                let mut s = format!("http {} ", r.method);
                escape::text(&r.path, &mut s);
                let _ = write!(s, " HTTP/1.{}", r.version);
                p.paint(p.http, &s, l);
                if r.websocket_upgrade {
                    l.push_str(" [websocket upgrade");
                    if let Some(k) = &r.key {
                        l.push_str(", key ");
                        escape::text(k, l);
                    }
                    for (name, label) in [
                        ("sec-websocket-version", "version"),
                        ("sec-websocket-protocol", "protocols"),
                        ("sec-websocket-extensions", "offers"),
                    ] {
                        if let Some(v) = r.header(name) {
                            let _ = write!(l, ", {label} ");
                            escape::text(v, l);
                        }
                    }
                    l.push(']');
                }
            }
            EventKind::HttpResponse(r) => {
                let l = &mut self.line;
                let mut s = format!("http HTTP/1.{} {} ", r.version, r.status);
                escape::text(&r.reason, &mut s);
                p.paint(p.http, &s, l);
                if r.upgraded {
                    l.push_str(" [websocket accepted");
                    match r.accept_ok() {
                        Some(true) => l.push_str(", accept ok"),
                        Some(false) => p.paint(p.warn, ", accept MISMATCH", l),
                        None => {}
                    }
                    match &r.extensions {
                        Some(e) => {
                            l.push_str(", extensions ");
                            escape::text(e, l);
                        }
                        None => l.push_str(", no extensions"),
                    }
                    if let Some(sp) = &r.subprotocol {
                        l.push_str(", subprotocol ");
                        escape::text(sp, l);
                    }
                    l.push(']');
                } else if r.key.is_some() {
                    p.paint(p.warn, " [websocket upgrade refused]", l);
                }
            }
            EventKind::Frame(f) => {
                let l = &mut self.line;
                let op = Opcode::from_u8(f.opcode);
                let _ = write!(l, "frame {}{}", if f.fin { "FIN " } else { "" }, op);
                if f.rsv != 0 {
                    let _ = write!(l, " rsv {:03b}", f.rsv);
                }
                if let Some(k) = f.mask {
                    l.push_str(" mask ");
                    escape::hex(&k, l);
                }
                let enc = match f.header_len - if f.mask.is_some() { 4 } else { 0 } {
                    2 => "7-bit",
                    4 => "16-bit",
                    _ => "64-bit",
                };
                let _ = write!(l, " len {} ({enc}) at {}", f.payload_len, f.stream_offset);
                if f.resync {
                    p.paint(p.warn, " [resync]", l);
                }
            }
            EventKind::Message(m) => {
                self.message(m);
                // The chat view: the application protocol's reading, under the raw line.
                if let (Some(r), false) = (ev.app, self.opts.messages_only) {
                    self.line.push_str("\n    ↳ ");
                    let mut safe = String::new();
                    escape::text(&r.text, &mut safe);
                    p.paint(
                        if r.heartbeat { p.dim } else { p.flag },
                        &safe,
                        &mut self.line,
                    );
                }
            }
            EventKind::Gap(g) => {
                let s = format!(
                    "gap {} bytes at offset {} ({})",
                    g.len,
                    g.offset,
                    g.reason.as_str().replace('_', " ")
                );
                p.paint(p.warn, &s, &mut self.line);
            }
            EventKind::Violation(v) => {
                let l = &mut self.line;
                p.paint(p.warn, &format!("violation {}", v.kind.as_str()), l);
                l.push_str(": ");
                escape::text(&v.detail, l);
            }
            EventKind::End => {}
            EventKind::Notice(n) => {
                let l = &mut self.line;
                p.paint(p.dim, &format!("notice {}", n.kind()), l);
                let detail = match n {
                    Notice::BadPacket { why } => why.clone(),
                    Notice::UnsupportedLinkType { linktype } => {
                        format!("link type {linktype} is not decoded")
                    }
                    Notice::TruncatedPacket { captured, declared } => {
                        format!("payload cut by the capture: {captured} of {declared} bytes")
                    }
                    Notice::Tls { detail } | Notice::Undecoded { detail } => detail.clone(),
                    Notice::MidStream => {
                        "no handshake seen; decoding websocket from the middle of the stream".into()
                    }
                    Notice::Resync { skipped, offset } => {
                        format!("skipped {skipped} bytes to the next frame at offset {offset}")
                    }
                    Notice::Evicted { reason } => (*reason).into(),
                    Notice::HistoryDropped => "compression history of this direction given up \
                        to stay within the memory budget (--max-memory): compressed messages \
                        that refer back to it cannot be inflated"
                        .into(),
                    Notice::Dropped { by, packets, bytes } => {
                        let why = if *by == "kernel" {
                            "the kernel's ring was full (-B)".to_string()
                        } else {
                            format!(
                                "{} bytes on the wire; decoding or printing fell behind \
                                 (--capture-queue)",
                                bytes.unwrap_or(0)
                            )
                        };
                        format!("{packets} packets dropped by {by} here: {why}")
                    }
                };
                l.push_str(": ");
                escape::text(&detail, l);
            }
        }
        self.line.push('\n');
        true
    }
}
