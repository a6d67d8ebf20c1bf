//! The human view: one line per event worth reading, tcpdump-like, client always on the left
//! and an arrow for the direction.

use super::texts::Lang;
use super::verdict::Verdicts;
use super::{Palette, escape, time, width};
use crate::event::{Dir, Event, EventKind, Message, Notice, Opcode, Sink, TcpRole};
use std::fmt::Write as _;
use std::io::{self, Write};

/// What the human view shows, from the command line; the default is one line per event worth
/// reading, payloads in full, no headers, English.
#[derive(Clone, Copy, Debug, Default)]
pub struct HumanOptions {
    /// Only websocket messages.
    pub messages_only: bool,
    /// Every TCP segment and every frame header too.
    pub verbose: bool,
    /// Hex and ASCII dump of binary payloads (`-X`).
    pub hex: bool,
    /// Cut payload previews and readings to this many columns (a terminal's width), with
    /// the true length shown; `None`: payloads in full.
    pub width: Option<usize>,
    /// The upgrade's headers under its line: 0 none, 1 with cookie and credential values
    /// masked, 2 as sent.
    pub headers: u8,
    /// Language of the verdicts.
    pub lang: Lang,
    /// Say when a connection is a reconnect of the same client address to the same server.
    /// This looks across connections: only for a printer that sees them all (not one of
    /// several decoding threads, each of which sees its share).
    pub reconnects: bool,
}

/// The default output: a [`Sink`] that writes the human view's lines to `W`.
pub struct HumanPrinter<W: Write> {
    out: W,
    pal: Palette,
    opts: HumanOptions,
    line: String,
    /// The line's timestamp as tcpdump's `-t` options print it; `None`: UTC time of day.
    stamper: Option<time::Stamper>,
    verdicts: Verdicts,
}

impl<W: Write> HumanPrinter<W> {
    /// A printer writing to `out` in the colours of `pal`, timestamps as UTC times of day
    /// (see [`with_time`](Self::with_time)).
    pub fn new(out: W, pal: Palette, opts: HumanOptions) -> Self {
        HumanPrinter {
            out,
            pal,
            opts,
            line: String::with_capacity(4096),
            stamper: None,
            verdicts: Verdicts::new(opts.lang, opts.reconnects),
        }
    }

    /// Timestamps as tcpdump prints them with `-t`...`-ttttt` (none given: the time of day),
    /// in `zone`, instead of the UTC time of day.
    pub fn with_time(mut self, format: time::TimeFormat, zone: time::Zone) -> Self {
        self.stamper = Some(time::Stamper::new(format, zone));
        self
    }

    /// Flushes the writer; call it before the program exits, since `out` may be buffered.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Gives the writer back (tests read what was printed from it).
    pub fn into_inner(self) -> W {
        self.out
    }

    /// The writer, to write around the printer's lines (a closing summary).
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
            match (ev.label, self.opts.width) {
                // On a terminal the name and the connection's number stand for the client's
                // address (the lines before the login show it): the payload gets the room.
                (Some(name), Some(_)) => {
                    let mut s = String::new();
                    label(name, &mut s);
                    let _ = write!(s, "#{}", c.id);
                    p.paint(p.addr, &s, &mut self.line);
                }
                (Some(name), None) => {
                    label(name, &mut self.line);
                    self.line.push('@');
                    p.paint(p.addr, &c.client_str(), &mut self.line);
                }
                (None, _) => p.paint(p.addr, &c.client_str(), &mut self.line),
            }
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
                    let name = match self.opts.lang {
                        Lang::En => close_name(code),
                        lang => Some(super::texts::close_meaning(lang, code)),
                    };
                    if let Some(name) = name {
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
                if m.close_code.is_some()
                    && m.close_reason.is_none()
                    && let Some(reason) = m.payload.get(2..).filter(|r| !r.is_empty())
                {
                    // A reason that is not UTF-8 (flagged): its bytes, as hex.
                    l.push_str(": 0x");
                    let n = reason.len().min(32);
                    escape::hex(&reason[..n], l);
                    if reason.len() > n {
                        l.push('…');
                    }
                }
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
        // On a terminal only the start of a long payload is escaped: the rest is cut anyway.
        let room = self.opts.width.map(|w| {
            let row = &l[l.rfind('\n').map_or(0, |i| i + 1)..];
            w.saturating_sub(width::visible(row))
        });
        // Without a width the preview goes straight into the line (whose buffer is kept
        // from line to line: a 100 KB payload costs no new allocation); with one, into a
        // scratch string that is cut.
        let start = l.len();
        if show_text && m.incomplete != Some(crate::event::Incomplete::InflateFailed) {
            // JSON payloads print compact (and still valid); the JSON output keeps them raw.
            match m.text().and_then(super::chat::compact_json) {
                Some(c) => escape::text(&c, l),
                None => {
                    let mut b = m.payload;
                    if let Some(r) = room {
                        b = &b[..b.len().min(width::preview_bytes(r))];
                    }
                    escape::bytes(b, l);
                }
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
        if let Some(r) = room
            && width::visible(&l[start..]) > r
        {
            let more = self
                .opts
                .lang
                .fill("cut_bytes", &[("n", &m.len.to_string())]);
            let keep = width::cut(&l[start..], r.saturating_sub(width::visible(&more) + 2));
            let keep = start + keep.trim_end_matches('…').len();
            l.truncate(keep);
            l.push_str("… ");
            p.paint(p.dim, &more, l);
        }
        if self.opts.hex && !show_text {
            l.push('\n');
            let mut dump = String::new();
            escape::hexdump(m.payload, "\t", &mut dump);
            l.push_str(dump.trim_end_matches('\n'));
        }
    }
}

/// A header value with its secrets hidden: cookie values and credentials are replaced by
/// their length (cookie names and the authorization scheme stay, they help and tell nothing).
pub fn masked(name: &str, value: &str) -> String {
    let hide = |v: &str| format!("<{} bytes hidden, -vv shows>", v.len());
    if name.eq_ignore_ascii_case("cookie") {
        let parts: Vec<String> = value
            .split(';')
            .map(|c| match c.split_once('=') {
                Some((n, v)) => format!("{n}={}", hide(v)),
                None => hide(c),
            })
            .collect();
        return parts.join(";");
    }
    if name.eq_ignore_ascii_case("set-cookie") {
        // The first pair is the cookie; the attributes after it (Path, Expires) are not secret.
        let (pair, attrs) = value.split_once(';').unwrap_or((value, ""));
        let pair = match pair.split_once('=') {
            Some((n, v)) => format!("{n}={}", hide(v)),
            None => hide(pair),
        };
        return if attrs.is_empty() {
            pair
        } else {
            format!("{pair};{attrs}")
        };
    }
    if name.eq_ignore_ascii_case("authorization")
        || name.eq_ignore_ascii_case("proxy-authorization")
    {
        return match value.trim_start().split_once(' ') {
            Some((scheme, cred)) => format!("{scheme} {}", hide(cred.trim())),
            None => hide(value),
        };
    }
    value.to_string()
}

/// A connection's name as lines show it, before its client's address (`mynick@…`): quoted
/// when it has spaces or characters that would read as part of the line.
pub fn label(name: &str, out: &mut String) {
    let plain = !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '@' | '"' | '→' | '←' | '\\'));
    if plain {
        escape::text(name, out);
    } else {
        out.push('"');
        escape::text(&name.replace('\\', "\\\\").replace('"', "\\\""), out);
        out.push('"');
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
    if matches!(m.opcode, Opcode::Text | Opcode::Close) && !m.valid_utf8 {
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

fn tcp_label(r: TcpRole, lang: Lang) -> &'static str {
    lang.get(match r {
        TcpRole::Syn => "l_hs1",
        TcpRole::SynAck => "l_hs2",
        TcpRole::HandshakeAck => "l_hs3",
        TcpRole::Fin => "l_fin",
        TcpRole::Rst => "l_rst",
        TcpRole::Data => "l_data",
        TcpRole::Ack => "l_ack",
        TcpRole::KeepAlive => "l_keepalive",
    })
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
    /// Appends a message as its line says it, after the time and addresses (`text 9: hi`),
    /// in this printer's palette: for one-line summaries elsewhere (pcapng comments).
    pub fn message_summary(&mut self, m: &Message<'_>, buf: &mut String) {
        std::mem::swap(&mut self.line, buf);
        self.message(m);
        std::mem::swap(&mut self.line, buf);
    }

    /// Takes note of an event a display filter hides: it prints nothing, but what the
    /// verdicts know of its connection stays true.
    pub fn observe(&mut self, ev: &Event<'_>) {
        let _ = self.verdicts.observe(ev);
    }

    /// Appends `ev`'s lines to `buf` instead of writing them (for printing on several
    /// threads).
    pub fn render(&mut self, ev: &Event<'_>, buf: &mut String) {
        std::mem::swap(&mut self.line, buf);
        self.build(ev);
        std::mem::swap(&mut self.line, buf);
    }

    /// An HTTP head's headers, one an indented line (`-v`), secrets masked below `-vv`.
    fn headers(&mut self, headers: &[(String, String)]) {
        if self.opts.headers == 0 {
            return;
        }
        for (name, value) in headers {
            self.line.push_str("\n    ");
            escape::text(name, &mut self.line);
            self.line.push_str(": ");
            let v = if self.opts.headers >= 2 {
                value.clone()
            } else {
                masked(name, value)
            };
            escape::text(&v, &mut self.line);
        }
    }

    /// Appends `ev`'s lines to `self.line`; false when `ev` is not shown.
    fn build(&mut self, ev: &Event<'_>) -> bool {
        let verdict = self.verdicts.observe(ev);
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
        let lang = self.opts.lang;
        match &ev.kind {
            EventKind::Tcp(t) => {
                let l = &mut self.line;
                p.paint(p.tcp, &format!("tcp {}", tcp_label(t.role, lang)), l);
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
                if let Some(v) = &verdict {
                    l.push_str(" — ");
                    p.paint(p.warn, v, l);
                }
            }
            EventKind::HttpRequest(r) => {
                let l = &mut self.line;
                let mut s = format!("http {} ", r.method);
                escape::text(&r.path, &mut s);
                let _ = write!(s, " HTTP/1.{}", r.version);
                p.paint(p.http, &s, l);
                if r.websocket_upgrade {
                    let _ = write!(l, " [{}", lang.get("l_upgrade"));
                    if let Some(k) = &r.key {
                        let _ = write!(l, ", {} ", lang.get("l_key"));
                        escape::text(k, l);
                    }
                    for (name, label) in [
                        ("sec-websocket-version", "l_version"),
                        ("sec-websocket-protocol", "l_protocols"),
                        ("sec-websocket-extensions", "l_offers"),
                    ] {
                        if let Some(v) = r.header(name) {
                            let _ = write!(l, ", {} ", lang.get(label));
                            escape::text(v, l);
                        }
                    }
                    l.push(']');
                }
                self.headers(&r.headers);
            }
            EventKind::HttpResponse(r) => {
                let l = &mut self.line;
                let mut s = format!("http HTTP/1.{} {} ", r.version, r.status);
                escape::text(&r.reason, &mut s);
                p.paint(p.http, &s, l);
                if r.upgraded {
                    let _ = write!(l, " [{}", lang.get("l_accepted"));
                    match r.accept_ok() {
                        Some(true) => {
                            let _ = write!(l, ", {}", lang.get("l_accept_ok"));
                        }
                        Some(false) => {
                            p.paint(p.warn, &format!(", {}", lang.get("l_accept_bad")), l)
                        }
                        None => {}
                    }
                    match &r.extensions {
                        Some(e) => {
                            let _ = write!(l, ", {} ", lang.get("l_extensions"));
                            escape::text(e, l);
                        }
                        None => {
                            let _ = write!(l, ", {}", lang.get("l_no_ext"));
                        }
                    }
                    if let Some(sp) = &r.subprotocol {
                        let _ = write!(l, ", {} ", lang.get("l_subprotocol"));
                        escape::text(sp, l);
                    }
                    l.push(']');
                } else if r.key.is_some() && r.status != 101 {
                    // A 101 that is not a websocket switch is explained by the violation or
                    // notice that follows it.
                    p.paint(p.warn, &format!(" [{}]", lang.get("l_refused")), l);
                }
                self.headers(&r.headers);
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
                // What the payload's cut could not shorten (a long close reason, the
                // address of a long name) is cut as a whole row.
                if let Some(w) = self.opts.width {
                    let start = self.line.rfind('\n').map_or(0, |i| i + 1);
                    if width::visible(&self.line[start..]) > w {
                        let keep = width::cut_painted(&self.line[start..], w.saturating_sub(1));
                        self.line.truncate(start + keep);
                        if self.pal.enabled {
                            self.line.push_str("\x1b[0m");
                        }
                        self.line.push('…');
                    }
                }
                // The application protocol's reading, under the raw line.
                if let (Some(r), false) = (ev.app, self.opts.messages_only) {
                    self.line.push_str("\n    ↳ ");
                    let mut safe = String::new();
                    escape::text(&super::reading_text(self.opts.lang, r), &mut safe);
                    if let Some(w) = self.opts.width
                        && width::visible(&safe) + 6 > w
                    {
                        safe = format!("{}…", width::cut(&safe, w.saturating_sub(7)));
                    }
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
                    Notice::Tls { detail, .. } | Notice::Undecoded { detail } => detail.clone(),
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
                    Notice::AppDropped => "application protocol reading of this connection \
                        given up to stay within the memory budget (--max-memory): its later \
                        messages are not read"
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
