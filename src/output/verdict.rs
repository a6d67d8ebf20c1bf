//! Verdicts: what a connection's packets mean, in words — a connection refused (SYN answered
//! by RST: nothing listening), a session cut without a close frame (and after a heartbeat the
//! client did not answer), a reconnect of the same client address to the same server. Made
//! from the events a printer sees; shared by the human view and `--chat`.

use super::texts::Lang;
use crate::capture::Timestamp;
use crate::event::{Dir, Event, EventKind, Notice, Opcode, TcpRole};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

/// Connections remembered for verdicts; beyond, all are forgotten (bounded memory).
const MAX_SEEN: usize = 65_536;
/// A new connection of the same client to the same server this soon after the previous one
/// ended is a reconnect.
const RECONNECT_NS: i128 = 5_000_000_000;

/// What the verdicts need to know of a connection's past.
#[derive(Clone, Copy, Debug, Default)]
struct Seen {
    syn: bool,
    syn_ack: bool,
    websocket: bool,
    close_frame: bool,
    /// Bytes were lost: a close frame may have been among them.
    gap: bool,
    /// A FIN or RST was seen: the teardown's verdict is said once.
    ended: bool,
    /// The server's last heartbeat that the client has not answered (nothing sent since).
    unanswered_ping: Option<Timestamp>,
}

/// The previous connections of a client address to a server: when the last one ended, and
/// how many followed one another closely.
#[derive(Clone, Copy, Debug)]
struct Attempts {
    ended: Timestamp,
    run: u32,
}

/// The state behind the verdicts, bounded.
pub struct Verdicts {
    lang: Lang,
    reconnects: bool,
    seen: HashMap<u64, Seen>,
    attempts: HashMap<(IpAddr, SocketAddr), Attempts>,
}

impl Verdicts {
    /// `reconnects`: also say when a connection is a reconnect. This looks across
    /// connections: only for a printer that sees them all (not one of several decoding
    /// threads, each of which sees its share).
    pub fn new(lang: Lang, reconnects: bool) -> Verdicts {
        Verdicts {
            lang,
            reconnects,
            seen: HashMap::new(),
            attempts: HashMap::new(),
        }
    }

    /// What the lines of `ev` say beyond the packet, in words: a refused connection, a
    /// reconnect, a session ended without a close frame. Remembers what it needs.
    pub fn observe(&mut self, ev: &Event<'_>) -> Option<String> {
        let c = ev.conn?;
        if matches!(ev.kind, EventKind::End) {
            self.seen.remove(&c.id);
            return None;
        }
        if self.seen.len() >= MAX_SEEN && !self.seen.contains_key(&c.id) {
            // Bounded, in constant time: forget them all. A forgotten connection gets no
            // verdict (its SYN and upgrade are unknown now), never a wrong one.
            self.seen.clear();
        }
        let lang = self.lang;
        let seen = self.seen.entry(c.id).or_default();
        let server = c.server_str();
        match &ev.kind {
            EventKind::Tcp(t) => match t.role {
                TcpRole::Syn => {
                    let first = !seen.syn;
                    seen.syn = true;
                    let key = (c.client.ip(), c.server);
                    let prev = self.attempts.get(&key).copied();
                    let since = prev.map(|a| ev.ts.as_nanos() - a.ended.as_nanos());
                    match (first && self.reconnects, prev, since) {
                        (true, Some(a), Some(ns)) if (0..=RECONNECT_NS).contains(&ns) => {
                            let n = a.run + 1;
                            let secs = format!("{:.3}", ns as f64 / 1e9);
                            Some(lang.fill(
                                "v_reconnect",
                                &[
                                    ("n", &n.to_string()),
                                    ("client", &c.client.ip().to_string()),
                                    ("server", &server),
                                    ("secs", &secs),
                                ],
                            ))
                        }
                        _ => None,
                    }
                }
                TcpRole::SynAck => {
                    seen.syn_ack = true;
                    None
                }
                TcpRole::Rst | TcpRole::Fin => {
                    let was = *seen;
                    seen.ended = true;
                    let key = (c.client.ip(), c.server);
                    let run = match self.attempts.get(&key) {
                        Some(a) if ev.ts.as_nanos() - a.ended.as_nanos() <= RECONNECT_NS => {
                            a.run + 1
                        }
                        _ => 0,
                    };
                    if !was.ended {
                        if self.attempts.len() >= MAX_SEEN {
                            self.attempts.clear();
                        }
                        self.attempts.insert(key, Attempts { ended: ev.ts, run });
                    }
                    if was.ended {
                        None
                    } else if t.role == TcpRole::Rst
                        && ev.dir == Dir::S2C
                        && was.syn
                        && !was.syn_ack
                    {
                        Some(lang.fill("v_refused", &[("server", &server)]))
                    } else if was.websocket && !was.close_frame && !was.gap {
                        let how = if t.role == TcpRole::Rst { "RST" } else { "FIN" };
                        match (ev.dir, was.unanswered_ping) {
                            (Dir::S2C, Some(at)) => {
                                let secs = (ev.ts.as_nanos() - at.as_nanos()) as f64 / 1e9;
                                let secs = format!("{secs:.1}");
                                Some(lang.fill("v_cut_heartbeat", &[("how", how), ("secs", &secs)]))
                            }
                            (Dir::S2C, None) => Some(lang.fill("v_cut_server", &[("how", how)])),
                            (Dir::C2S, _) => Some(lang.fill("v_cut_client", &[("how", how)])),
                        }
                    } else {
                        None
                    }
                }
                _ => None,
            },
            EventKind::HttpResponse(r) => {
                seen.websocket |= r.upgraded;
                None
            }
            EventKind::Notice(Notice::MidStream) => {
                seen.websocket = true;
                None
            }
            EventKind::Gap(_) => {
                seen.gap = true;
                None
            }
            EventKind::Message(m) => {
                seen.websocket = true;
                seen.close_frame |= m.opcode == Opcode::Close;
                match ev.dir {
                    Dir::C2S => seen.unanswered_ping = None,
                    Dir::S2C if super::filter::is_heartbeat(ev, m) && m.opcode != Opcode::Pong => {
                        seen.unanswered_ping.get_or_insert(ev.ts);
                    }
                    Dir::S2C => {}
                }
                None
            }
            _ => None,
        }
    }
}
