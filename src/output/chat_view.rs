//! `--chat`: one line per chat event, as the people in the chat lived it: who said what to
//! whom, logins and leaves, each once. The lines come from the application protocol's
//! readings (annotations made in the engine); this view only groups them.
//!
//! A chat server fans each event out: a client sends one message, the server sends a copy
//! to every member of the room (the sender included). Those copies are one event: the
//! server's messages that follow a client's message on the same server within
//! [`WINDOW_NS`], one per connection, are its deliveries; so are the identical copies of a
//! message the server sends on its own (a leave). The line is written when the fan-out is
//! over: when every open connection of that server has had its copy, when another event
//! begins, when a packet comes after the window, or at the end of the input. The verdicts of
//! [`super::verdict`] (refused, cut, reconnect) are lines of their own.

use super::texts::Lang;
use super::{Palette, escape, human, time, width};
use crate::capture::Timestamp;
use crate::event::{Dir, Event, EventKind, Opcode, Sink, TcpRole};
use std::collections::HashMap;
use std::io::{self, Write};
use std::net::SocketAddr;

/// How long after an event its copies may still come: a server sends its copies at once
/// (within a few milliseconds on the samples), well before anyone can answer.
pub const WINDOW_NS: i128 = 100_000_000;
/// Recipients named on a line; beyond, their count says the rest.
const MAX_NAMED: usize = 5;
/// Connections followed at once (bounded memory); beyond, all are forgotten.
const MAX_CONNS: usize = 65_536;

/// What `--chat` shows.
#[derive(Clone, Copy, Debug, Default)]
pub struct ChatOptions {
    /// Heartbeats too (`-v`).
    pub heartbeats: bool,
    /// Cut lines to this many columns (a terminal).
    pub width: Option<usize>,
    /// Language of the readings and verdicts.
    pub lang: Lang,
}

/// An event whose copies are still being counted.
struct Pending {
    ts: Timestamp,
    server: SocketAddr,
    /// The line without its recipients.
    text: String,
    /// Sent by the server on its own: only identical copies (by this hash of the payload and
    /// its length) are deliveries of it.
    copy_of: Option<(u64, usize)>,
    /// The sender's name, for an event a client began: the server's copies name it.
    about: Option<String>,
    /// What a client's message said (its reading after `: `): the server's copies end so.
    said: Option<String>,
    /// Connections that received a copy, and how they are named.
    to: Vec<(u64, String)>,
}

/// A websocket connection of the chat, while open: its server.
struct Member {
    server: SocketAddr,
}

/// The `--chat` [`Sink`]: groups the servers' fanned-out copies of each chat event and
/// writes one line per event to `W`.
pub struct ChatPrinter<W: Write> {
    out: W,
    pal: Palette,
    opts: ChatOptions,
    stamper: time::Stamper,
    pending: Option<Pending>,
    members: HashMap<u64, Member>,
    verdicts: super::verdict::Verdicts,
}

/// A cheap fingerprint of a payload, to tell the server's copies of one message apart from
/// another message (FNV-1a).
fn fingerprint(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// How a connection is named on a line: its label, else its client's address.
fn who(ev: &Event<'_>) -> String {
    let mut s = String::new();
    match (ev.label, ev.conn) {
        (Some(l), _) => human::label(l, &mut s),
        (None, Some(c)) => s.push_str(&c.client_str()),
        (None, None) => {}
    }
    s
}

impl<W: Write> ChatPrinter<W> {
    /// A printer writing to `out` in the colours of `pal`, each line stamped by `stamper`.
    pub fn new(out: W, pal: Palette, opts: ChatOptions, stamper: time::Stamper) -> Self {
        ChatPrinter {
            out,
            pal,
            opts,
            stamper,
            pending: None,
            members: HashMap::new(),
            // One printer sees every connection: reconnects can be told.
            verdicts: super::verdict::Verdicts::new(opts.lang, true),
        }
    }

    /// Takes note of an event a display filter hides: what the verdicts and the fan-out
    /// know of its connection stays true; nothing is printed.
    pub fn observe(&mut self, ev: &Event<'_>) {
        self.membership(ev);
        let _ = self.verdicts.observe(ev);
    }

    /// Flushes the writer; call it before the program exits, since `out` may be buffered.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Gives the writer back (tests read what was printed from it).
    pub fn into_inner(self) -> W {
        self.out
    }

    /// Writes the pending event's line.
    fn write_pending(&mut self) -> io::Result<()> {
        let Some(p) = self.pending.take() else {
            return Ok(());
        };
        let mut tail = String::new();
        if !p.to.is_empty() {
            let names: Vec<&str> =
                p.to.iter()
                    .take(MAX_NAMED)
                    .map(|(_, n)| n.as_str())
                    .collect();
            let mut list = names.join(", ");
            if p.to.len() > MAX_NAMED {
                list = format!("{}: {list}, …", p.to.len());
            }
            tail = self.opts.lang.fill("chat_seen_by", &[("names", &list)]);
        }
        self.write_line(p.ts, p.text, tail)
    }

    /// One line: the time, the text (cut to the terminal), and what is said of it.
    fn write_line(&mut self, ts: Timestamp, mut text: String, tail: String) -> io::Result<()> {
        let pal = self.pal;
        let mut stamp = String::new();
        self.stamper.stamp(ts, &mut stamp);
        if let Some(w) = self.opts.width {
            // The line fits the terminal: the message gives way, the recipients stay.
            let used = width::visible(&stamp)
                + 1
                + if tail.is_empty() {
                    0
                } else {
                    width::visible(&tail) + 3
                };
            let room = w.saturating_sub(used);
            if width::visible(&text) > room {
                text = format!("{}…", width::cut(&text, room.saturating_sub(1)));
            }
        }
        let mut line = String::with_capacity(stamp.len() + text.len() + tail.len() + 8);
        if !stamp.is_empty() {
            pal.paint(pal.time, &stamp, &mut line);
            line.push(' ');
        }
        line.push_str(&text);
        if !tail.is_empty() {
            line.push_str(" · ");
            pal.paint(pal.dim, &tail, &mut line);
        }
        line.push('\n');
        self.out.write_all(line.as_bytes())
    }

    /// Whether every open connection of the pending event's server has had its copy.
    fn fan_out_done(&self) -> bool {
        let Some(p) = &self.pending else {
            return false;
        };
        !p.to.is_empty()
            && self
                .members
                .iter()
                .filter(|(_, m)| m.server == p.server)
                .all(|(id, _)| p.to.iter().any(|(t, _)| t == id))
    }

    fn message(&mut self, ev: &Event<'_>) -> io::Result<()> {
        let (Some(c), EventKind::Message(m), Some(app)) = (ev.conn, &ev.kind, ev.app) else {
            return Ok(());
        };
        if app.heartbeat && !self.opts.heartbeats {
            return Ok(());
        }
        let mut text = String::new();
        let reading = super::reading_text(self.opts.lang, app);
        escape::text(&reading, &mut text);
        let name = who(ev);
        if app.heartbeat {
            // Heartbeats are per connection, never fanned out: a line each, and they do not
            // end the fan-out of the event before them.
            let line = match ev.dir {
                Dir::C2S => format!("{name}: {text}"),
                Dir::S2C => format!("{text} → {name}"),
            };
            return self.write_line(ev.ts, line, String::new());
        }
        match ev.dir {
            Dir::C2S => {
                self.write_pending()?;
                // The reading names its sender when it can; otherwise the line does.
                if ev.label.is_none_or(|l| !reading.contains(l)) {
                    text = format!("{name}: {text}");
                }
                let said = text.split_once(": ").map(|(_, said)| said.to_string());
                self.pending = Some(Pending {
                    ts: ev.ts,
                    server: c.server,
                    text,
                    said,
                    copy_of: None,
                    about: ev.label.map(str::to_string),

                    to: Vec::new(),
                });
            }
            Dir::S2C => {
                let print = fingerprint(m.payload);
                let copy = self.pending.as_ref().is_some_and(|p| {
                    p.server == c.server
                        && ev.ts.as_nanos() - p.ts.as_nanos() <= WINDOW_NS
                        && !p.to.iter().any(|(id, _)| *id == c.id)
                        && p.copy_of.is_none_or(|f| f == (print, m.payload.len()))
                        // The server's copy of a client's message names its sender, and
                        // ends with what was said (a private copy has a prefix before it).
                        && p.about.as_deref().is_none_or(|a| reading.contains(a))
                        && p.said.as_deref().is_none_or(|said| text.ends_with(said))
                });
                if !copy {
                    self.write_pending()?;
                    self.pending = Some(Pending {
                        ts: ev.ts,
                        server: c.server,
                        text,
                        copy_of: Some((print, m.payload.len())),
                        about: None,
                        said: None,
                        to: Vec::new(),
                    });
                }
                if let Some(p) = &mut self.pending {
                    p.to.push((c.id, name));
                }
                if self.fan_out_done() {
                    self.write_pending()?;
                }
            }
        }
        Ok(())
    }

    /// Follows which websocket connections of each server are open, and their names.
    fn membership(&mut self, ev: &Event<'_>) {
        let Some(c) = ev.conn else { return };
        let open = match &ev.kind {
            EventKind::HttpResponse(r) => r.upgraded,
            EventKind::Message(m) => m.opcode != Opcode::Close,
            EventKind::Tcp(t) => {
                if matches!(t.role, TcpRole::Fin | TcpRole::Rst) {
                    self.members.remove(&c.id);
                }
                false
            }
            EventKind::End => {
                self.members.remove(&c.id);
                false
            }
            _ => false,
        };
        if ev.dir == Dir::C2S
            && let EventKind::Message(m) = &ev.kind
            && m.opcode == Opcode::Close
        {
            self.members.remove(&c.id);
        }
        if open {
            if self.members.len() >= MAX_CONNS && !self.members.contains_key(&c.id) {
                // Bounded, in constant time: a fan-out is then only ended by time.
                self.members.clear();
            }
            self.members
                .entry(c.id)
                .or_insert(Member { server: c.server });
        }
    }
}

impl<W: Write> Sink for ChatPrinter<W> {
    fn event(&mut self, ev: &Event<'_>) -> io::Result<bool> {
        if self
            .pending
            .as_ref()
            .is_some_and(|p| ev.ts.as_nanos() - p.ts.as_nanos() > WINDOW_NS)
        {
            self.write_pending()?;
        }
        self.membership(ev);
        // Connections refused, sessions cut, reconnects: said between the chat's lines.
        if let Some(v) = self.verdicts.observe(ev)
            && matches!(ev.kind, EventKind::Tcp(_))
        {
            self.write_pending()?;
            let line = format!("{}: {v}", who(ev));
            self.write_line(ev.ts, line, String::new())?;
        }
        self.message(ev)?;
        Ok(true)
    }

    fn finish(&mut self) -> io::Result<()> {
        self.write_pending()?;
        self.out.flush()
    }
}
