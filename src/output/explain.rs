//! `--explain`: the annotated walkthrough a teacher would otherwise write by hand between the
//! lines of a tcpdump capture. Every number in the text is a number on the wire.

use super::human::{HumanOptions, HumanPrinter};
use super::texts::{Lang, close_meaning};
use super::{Palette, escape, time};
use crate::event::{
    ConnInfo, Dir, Event, EventKind, FrameInfo, Message, Opcode, Sink, TcpEvent, TcpRole,
};
use crate::http::WS_GUID;
use base64::Engine;
use sha1::{Digest, Sha1};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::net::IpAddr;

const WIDTH: usize = 96;

#[derive(Default)]
struct Notes {
    client_isn: Option<u32>,
    server_isn: Option<u32>,
    close_from: Option<Dir>,
    /// The last request asked for a websocket upgrade (its response refuses it or not).
    asked_upgrade: bool,
    websocket: bool,
    gap: bool,
    /// A FIN or RST was explained: what it means for the session is said once.
    ended: bool,
}

/// A connection this soon after the previous one of the same client address to the same
/// server ended is a reconnect.
const RECONNECT_NS: i128 = 5_000_000_000;

/// The `--explain` [`Sink`]: the human view's lines with comment blocks between them that
/// explain, in `lang`, what each packet does.
pub struct ExplainPrinter<W: Write> {
    out: W,
    lang: Lang,
    hex: bool,
    human: HumanPrinter<Vec<u8>>,
    conns: HashMap<u64, Notes>,
    /// When the last connection of a client address to a server ended, and how many
    /// reconnects led to it.
    ended: HashMap<(IpAddr, std::net::SocketAddr), (crate::capture::Timestamp, u32)>,
    legend_done: bool,
    /// The tcpdump line of the last data segment, printed under the comments it explains.
    pending: Option<String>,
    buf: String,
    started: bool,
    /// The last line written was a comment (the next block needs no blank line before it).
    last_comment: bool,
}

impl<W: Write> ExplainPrinter<W> {
    /// A printer writing to `out` in `lang`; `hex` adds the hex and ASCII dump of binary
    /// payloads (`-X`).
    pub fn new(out: W, lang: Lang, hex: bool) -> Self {
        let opts = HumanOptions {
            messages_only: false,
            verbose: true,
            hex,
            lang,
            reconnects: true,
            ..HumanOptions::default()
        };
        ExplainPrinter {
            out,
            lang,
            hex,
            human: HumanPrinter::new(Vec::new(), Palette::plain(), opts),
            conns: HashMap::new(),
            ended: HashMap::new(),
            legend_done: false,
            pending: None,
            buf: String::new(),
            started: false,
            last_comment: false,
        }
    }

    /// Writes what is still held (the text waits for the next event, which may add to its
    /// comment) and flushes the writer; call it at the end of the run.
    pub fn flush(&mut self) -> io::Result<()> {
        self.flush_pending();
        let r = self.out.write_all(self.buf.as_bytes());
        self.buf.clear();
        r?;
        self.out.flush()
    }

    fn flush_pending(&mut self) {
        if let Some(p) = self.pending.take() {
            self.line(&p);
        }
    }

    /// A line that is not a comment (it ends the current comment block).
    fn line(&mut self, l: &str) {
        self.buf.push_str(l);
        self.started = true;
        self.last_comment = false;
    }

    /// A comment paragraph, wrapped, each line starting with `# `; a block of them is
    /// preceded by an empty line.
    fn comment(&mut self, text: &str) {
        if self.started && !self.last_comment {
            self.buf.push('\n');
        }
        self.started = true;
        self.last_comment = true;
        let mut line = String::from("#");
        let mut len = 1;
        for word in text.split(' ') {
            let w = word.chars().count();
            if len + 1 + w > WIDTH && len > 2 {
                self.buf.push_str(&line);
                self.buf.push('\n');
                line = String::from("#  ");
                len = 3;
            }
            line.push(' ');
            line.push_str(word);
            len += 1 + w;
        }
        self.buf.push_str(&line);
        self.buf.push('\n');
    }

    fn who(&self, dir: Dir) -> String {
        self.lang
            .get(if dir == Dir::C2S { "client" } else { "server" })
            .to_string()
    }

    /// The human printer's line for an event, without its trailing newline.
    fn human_line(&mut self, ev: &Event<'_>) -> String {
        let _ = self.human.event(ev);
        let v = std::mem::take(self.human.get_mut());
        String::from_utf8_lossy(&v)
            .trim_end_matches('\n')
            .to_string()
    }

    fn tcp(&mut self, ev: &Event<'_>, c: &ConnInfo, t: &TcpEvent) {
        let lang = self.lang;
        let notes = self.conns.entry(c.id).or_default();
        let mut comments: Vec<String> = Vec::new();
        match t.role {
            TcpRole::Syn => {
                notes.client_isn = Some(t.seq);
                comments.push(lang.fill(
                    "conn",
                    &[
                        ("id", &c.id.to_string()),
                        ("client", &c.client_str()),
                        ("server", &c.server_str()),
                    ],
                ));
                comments.push(lang.fill(
                    "syn",
                    &[
                        ("cport", &c.client.port().to_string()),
                        ("sport", &c.server.port().to_string()),
                        ("isn", &t.seq.to_string()),
                    ],
                ));
                if let Some(&(at, n)) = self.ended.get(&(c.client.ip(), c.server)) {
                    let ns = ev.ts.as_nanos() - at.as_nanos();
                    if (0..=RECONNECT_NS).contains(&ns) {
                        comments.push(lang.fill(
                            "reconnect",
                            &[
                                ("n", &(n + 1).to_string()),
                                ("client", &c.client.ip().to_string()),
                                ("secs", &format!("{:.3}", ns as f64 / 1e9)),
                            ],
                        ));
                    }
                }
            }
            TcpRole::SynAck => {
                notes.server_isn = Some(t.seq);
                let cisn = notes
                    .client_isn
                    .map_or_else(|| t.ack.wrapping_sub(1).to_string(), |i| i.to_string());
                comments.push(lang.fill(
                    "synack",
                    &[
                        ("isn", &t.seq.to_string()),
                        ("ack", &t.ack.to_string()),
                        ("cisn", &cisn),
                    ],
                ));
            }
            TcpRole::HandshakeAck => {
                let sisn = notes.server_isn.unwrap_or(t.ack.wrapping_sub(1));
                comments.push(lang.fill(
                    "hsack",
                    &[
                        ("ack", &t.ack.to_string()),
                        ("sisn", &sisn.to_string()),
                        ("rel", &t.rel_seq.unwrap_or(1).to_string()),
                        ("abs", &t.seq.to_string()),
                    ],
                ));
            }
            TcpRole::Fin | TcpRole::Rst => {
                let refused = t.role == TcpRole::Rst
                    && ev.dir == Dir::S2C
                    && notes.client_isn.is_some()
                    && notes.server_isn.is_none();
                let who = if ev.dir == Dir::C2S {
                    "client"
                } else {
                    "server"
                };
                let who = lang.get(who).to_string();
                if refused {
                    comments.push(lang.fill("rst_refused", &[("server", &c.server_str())]));
                } else if t.role == TcpRole::Fin {
                    comments.push(lang.fill("fin", &[("who", &who)]));
                } else {
                    comments.push(lang.fill("rst", &[("who", &who)]));
                }
                if !notes.ended && notes.websocket && notes.close_from.is_none() && !notes.gap {
                    comments.push(lang.fill("cut", &[("who", &who)]));
                }
                if !notes.ended {
                    notes.ended = true;
                    let key = (c.client.ip(), c.server);
                    let run = match self.ended.get(&key) {
                        Some(&(at, n)) if ev.ts.as_nanos() - at.as_nanos() <= RECONNECT_NS => n + 1,
                        _ => 0,
                    };
                    if self.ended.len() >= 65_536 {
                        self.ended.clear();
                    }
                    self.ended.insert(key, (ev.ts, run));
                }
            }
            TcpRole::Data | TcpRole::Ack | TcpRole::KeepAlive => {}
        }
        if matches!(t.role, TcpRole::Syn | TcpRole::SynAck) && !t.options.is_empty() {
            let o = &t.options;
            let mut parts = Vec::new();
            if let Some(v) = o.mss {
                parts.push(lang.fill("opt_mss", &[("v", &v.to_string())]));
            }
            if let Some(v) = o.wscale {
                parts.push(lang.fill(
                    "opt_ws",
                    &[
                        ("v", &v.to_string()),
                        ("mul", &(1u64 << v.min(14)).to_string()),
                    ],
                ));
            }
            if o.sack_permitted {
                parts.push(lang.get("opt_sack").to_string());
            }
            if let Some((v, _)) = o.timestamps {
                parts.push(lang.fill("opt_ts", &[("v", &v.to_string())]));
            }
            comments.push(lang.fill("options", &[("opts", &parts.join(", "))]));
        }
        let line = tcpdump_line(ev, c, t);
        if t.role == TcpRole::Data {
            // Its comments come from what it carries: keep it until they are written.
            self.pending = Some(line);
            return;
        }
        if !self.legend_done && !comments.is_empty() {
            self.legend_done = true;
            let l = lang.get("legend").to_string();
            self.comment(&l);
            self.buf.push_str("#\n");
        }
        for cm in &comments {
            self.comment(cm);
        }
        self.line(&line);
    }

    fn frame(&mut self, ev: &Event<'_>, f: &FrameInfo) {
        let lang = self.lang;
        let op = Opcode::from_u8(f.opcode);
        let b0 = (f.fin as u8) << 7 | (f.rsv & 7) << 4 | (f.opcode & 15);
        let len7: u8 = match f.header_len - if f.mask.is_some() { 4 } else { 0 } {
            2 => f.payload_len as u8,
            4 => 126,
            _ => 127,
        };
        let b1 = (f.mask.is_some() as u8) << 7 | len7;
        let enc = match len7 {
            126 => "enc16",
            127 => "enc64",
            _ => "enc7",
        };
        let text = lang.fill(
            "frame",
            &[
                ("who", &self.who(ev.dir)),
                ("b0", &format!("0x{b0:02x}")),
                ("fin", &(f.fin as u8).to_string()),
                (
                    "fintext",
                    lang.get(if f.fin { "fin_last" } else { "fin_more" }),
                ),
                ("rsv", &format!("{:03b}", f.rsv)),
                ("op", &f.opcode.to_string()),
                ("opname", &op.to_string()),
                ("b1", &format!("0x{b1:02x}")),
                ("mask", &(f.mask.is_some() as u8).to_string()),
                ("len", &f.payload_len.to_string()),
                ("enc", lang.get(enc)),
            ],
        );
        self.comment(&text);
        let n = f.head_len as usize;
        match f.mask {
            Some(k) => {
                let mut key = String::new();
                escape::hex(&k, &mut key);
                let (mut wire, mut plain) = (String::new(), String::new());
                spaced_hex(&f.head_wire[..n], &mut wire);
                spaced_hex(&f.head_plain[..n], &mut plain);
                let mut shown = String::new();
                escape::bytes(&f.head_plain[..n], &mut shown);
                let t = lang.fill(
                    "masked",
                    &[
                        ("key", &key),
                        ("wire", &wire),
                        ("plain", &format!("{plain} \"{shown}\"")),
                    ],
                );
                self.comment(&t);
            }
            None if ev.dir == Dir::S2C => {
                let t = lang.get("unmasked").to_string();
                self.comment(&t);
            }
            None => {}
        }
    }

    fn message(&mut self, ev: &Event<'_>, c: &ConnInfo, m: &Message<'_>) {
        let lang = self.lang;
        if m.compressed {
            let t = lang.fill(
                "compressed",
                &[
                    ("wire", &m.wire_len.to_string()),
                    ("len", &m.len.to_string()),
                ],
            );
            self.comment(&t);
        }
        if m.frames > 1 {
            let t = lang.fill("fragments", &[("n", &m.frames.to_string())]);
            self.comment(&t);
        }
        match m.opcode {
            Opcode::Ping => {
                let t = lang.get("ping").to_string();
                self.comment(&t);
            }
            Opcode::Pong => {
                let t = lang.get("pong").to_string();
                self.comment(&t);
            }
            Opcode::Close => {
                let notes = self.conns.entry(c.id).or_default();
                let first = notes.close_from.is_none();
                if first {
                    notes.close_from = Some(ev.dir);
                }
                let t = match m.close_code {
                    Some(code) => {
                        let meaning = close_meaning(lang, code);
                        let key = if first { "close_first" } else { "close_reply" };
                        lang.fill(
                            key,
                            &[
                                ("who", &self.who(ev.dir)),
                                ("code", &code.to_string()),
                                ("meaning", meaning),
                            ],
                        )
                    }
                    None => lang.get("close_empty").to_string(),
                };
                self.comment(&t);
            }
            _ => {}
        }
        self.flush_pending();
        let line = self.human_line(ev);
        self.line(&format!("    {line}\n"));
        if m.opcode == Opcode::Binary && !self.hex && !m.payload.is_empty() {
            let t = lang.get("binary").to_string();
            self.comment(&t);
            let mut dump = String::new();
            escape::hexdump(m.payload, "\t", &mut dump);
            self.line(&dump);
        }
    }
}

fn spaced_hex(b: &[u8], out: &mut String) {
    for (i, x) in b.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let _ = write!(out, "{x:02x}");
    }
}

fn ip_port(a: &std::net::SocketAddr) -> String {
    format!("{}.{}", a.ip(), a.port())
}

/// The line tcpdump -n would print for this segment.
fn tcpdump_line(ev: &Event<'_>, c: &ConnInfo, t: &TcpEvent) -> String {
    let (src, dst) = match ev.dir {
        Dir::C2S => (&c.client, &c.server),
        Dir::S2C => (&c.server, &c.client),
    };
    let ipv = if matches!(src.ip(), IpAddr::V6(_)) {
        "IP6"
    } else {
        "IP"
    };
    let mut s = String::new();
    time::clock(ev.ts, &mut s);
    let _ = write!(
        s,
        " {ipv} {} > {}: Flags {}",
        ip_port(src),
        ip_port(dst),
        t.flags
    );
    let syn = t.flags.syn();
    let seq = if syn {
        t.seq
    } else {
        t.rel_seq.unwrap_or(t.seq)
    };
    if t.payload_len > 0 {
        let _ = write!(s, ", seq {}:{}", seq, seq.wrapping_add(t.payload_len));
    } else if syn || t.flags.fin() || t.flags.rst() {
        let _ = write!(s, ", seq {seq}");
    }
    if t.flags.ack() {
        let a = if syn {
            t.ack
        } else {
            t.rel_ack.unwrap_or(t.ack)
        };
        let _ = write!(s, ", ack {a}");
    }
    let _ = write!(s, ", win {}", t.window);
    if !t.options.is_empty() {
        let o = t.options.to_string();
        let _ = write!(
            s,
            ", options [{}]",
            o.trim_start_matches('<').trim_end_matches('>')
        );
    }
    let _ = writeln!(s, ", length {}", t.payload_len);
    s
}

impl<W: Write> Sink for ExplainPrinter<W> {
    fn finish(&mut self) -> io::Result<()> {
        self.flush()
    }

    fn event(&mut self, ev: &Event<'_>) -> io::Result<bool> {
        let lang = self.lang;
        match (&ev.kind, ev.conn) {
            (EventKind::Tcp(t), Some(c)) => {
                self.flush_pending();
                self.tcp(ev, c, t);
            }
            (EventKind::HttpRequest(r), Some(c)) => {
                self.conns.entry(c.id).or_default().asked_upgrade = r.websocket_upgrade;
                let key = if r.websocket_upgrade {
                    "request"
                } else {
                    "request_plain"
                };
                // The size of the head as parsed from the wire, not reckoned from its parts.
                let t = lang.fill(key, &[("len", &r.head_len.to_string())]);
                self.comment(&t);
                if r.websocket_upgrade {
                    let t = lang.get("h_upgrade").to_string();
                    self.comment(&format!("  - {t}"));
                }
                for (h, k) in [
                    ("sec-websocket-key", "h_key"),
                    ("sec-websocket-version", "h_version"),
                    ("sec-websocket-extensions", "h_ext"),
                    ("sec-websocket-protocol", "h_proto"),
                    ("origin", "h_origin"),
                ] {
                    if let Some(v) = r.header(h) {
                        let mut safe = String::new();
                        escape::text(v, &mut safe);
                        let t = lang.fill(k, &[("v", &safe)]);
                        self.comment(&format!("  - {t}"));
                    }
                }
                self.flush_pending();
                let line = self.human_line(ev);
                self.line(&format!("    {line}\n"));
            }
            (EventKind::HttpResponse(r), Some(c)) => {
                let asked = self.conns.get(&c.id).is_some_and(|n| n.asked_upgrade);
                let mut reason = String::new();
                escape::text(&r.reason, &mut reason);
                if r.upgraded {
                    let t = lang.fill(
                        "response_101",
                        &[("status", &r.status.to_string()), ("reason", &reason)],
                    );
                    self.comment(&t);
                    if let Some(key) = &r.key {
                        let mut h = Sha1::new();
                        h.update(key.as_bytes());
                        h.update(WS_GUID.as_bytes());
                        let digest = h.finalize();
                        let mut hex = String::new();
                        escape::hex(&digest, &mut hex);
                        let b64 = base64::engine::general_purpose::STANDARD.encode(digest);
                        let mut safe_key = String::new();
                        escape::text(key, &mut safe_key);
                        let t = lang.fill(
                            "accept",
                            &[("guid", WS_GUID), ("sha1", &hex), ("b64", &b64)],
                        );
                        self.comment(&format!("{safe_key}: {t}"));
                        if let Some(got) = &r.accept {
                            let mut g = String::new();
                            escape::text(got, &mut g);
                            let k = if *got == b64 {
                                "accept_ok"
                            } else {
                                "accept_bad"
                            };
                            let t = lang.fill(k, &[("got", &g)]);
                            self.comment(&t);
                        }
                    }
                    match (&r.extensions, r.deflate) {
                        (Some(e), Some(d)) => {
                            let mut safe = String::new();
                            escape::text(e, &mut safe);
                            let t = lang.fill("ext_deflate", &[("v", &safe)]);
                            self.comment(&t);
                            for (dir, reset) in [
                                (Dir::C2S, d.client_no_context_takeover),
                                (Dir::S2C, d.server_no_context_takeover),
                            ] {
                                let t = lang.fill(
                                    if reset { "ctx_reset" } else { "ctx_keep" },
                                    &[("side", &self.who(dir))],
                                );
                                self.comment(&t);
                            }
                        }
                        _ => {
                            let t = lang.get("ext_none").to_string();
                            self.comment(&t);
                        }
                    }
                } else {
                    let key = if r.status == 101 {
                        "response_101_other"
                    } else if asked {
                        "response_other"
                    } else {
                        "response_plain"
                    };
                    let t = lang.fill(
                        key,
                        &[("status", &r.status.to_string()), ("reason", &reason)],
                    );
                    self.comment(&t);
                }
                self.flush_pending();
                let line = self.human_line(ev);
                self.line(&format!("    {line}\n"));
            }
            (EventKind::Frame(f), Some(_)) => self.frame(ev, f),
            (EventKind::Message(m), Some(c)) => {
                self.conns.entry(c.id).or_default().websocket = true;
                self.message(ev, c, m);
            }
            (EventKind::End, Some(c)) => {
                self.conns.remove(&c.id);
            }
            (EventKind::Gap(_), Some(c)) => {
                self.conns.entry(c.id).or_default().gap = true;
                self.flush_pending();
                let line = self.human_line(ev);
                self.line(&format!("    {line}\n"));
            }
            _ => {
                self.flush_pending();
                let line = self.human_line(ev);
                self.line(&format!("    {line}\n"));
            }
        }
        if self.buf.len() > 64 * 1024 {
            self.out.write_all(self.buf.as_bytes())?;
            self.buf.clear();
        }
        Ok(true)
    }
}
