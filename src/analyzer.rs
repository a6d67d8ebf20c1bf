//! The pipeline's spine: packets in, events out. Decodes each packet to TCP, finds its
//! connection (keyed by 4-tuple), tracks the TCP lifecycle, reassembles each direction and
//! hands the bytes to the connection's [`Conversation`].

use crate::capture::{RawPacket, Timestamp};
use crate::conversation::Conversation;
use crate::event::{
    ConnInfo, Dir, Emit, Event, EventKind, Gap, Notice, Sink, TcpEvent, TcpRole, Violation,
    ViolationKind,
};
use crate::packet::{self, PacketError, Segment, fmt_addr};
use crate::reassembly::{Anomaly, Budget, Chunk, Stream};
use crate::ws::Limits;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;

#[derive(Clone, Debug)]
pub struct Config {
    /// Only connections with one of these ports (either side); empty = all TCP.
    pub ports: Vec<u16>,
    pub limits: Limits,
    /// Out-of-order bytes buffered per direction before the hole is declared a gap.
    pub max_ooo_per_stream: usize,
    /// Out-of-order bytes buffered across all connections.
    pub max_ooo_total: usize,
    /// Payload bytes of unfinished messages held across all connections; beyond, messages are
    /// kept truncated (with their true length).
    pub max_held_messages: usize,
    /// Connections tracked at once; beyond, the least recently active are dropped.
    pub max_conns: usize,
    /// A connection silent this long (capture time) is closed and forgotten.
    pub idle_timeout_secs: i64,
    /// Emit frame events (costs a little; printers that do not show frames turn it off).
    pub frames: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            ports: Vec::new(),
            limits: Limits::default(),
            max_ooo_per_stream: 1 << 20,
            max_ooo_total: 32 << 20,
            max_held_messages: 32 << 20,
            max_conns: 10_000,
            idle_timeout_secs: 600,
            frames: true,
        }
    }
}

/// Counters for the end-of-run summary.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub packets: u64,
    pub bytes: u64,
    pub not_tcp: u64,
    pub filtered: u64,
    pub bad_packets: u64,
    pub truncated_packets: u64,
    pub connections: u64,
    pub websocket_connections: u64,
    pub messages: u64,
    pub gaps: u64,
    pub gap_bytes: u64,
    pub violations: u64,
    pub evicted: u64,
    pub unsupported_link: Option<u32>,
}

type Key = (SocketAddr, SocketAddr);

/// One of several analyzers that read the same capture, each decoding its share of the
/// connections (see [`Analyzer::with_share`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Share {
    pub index: usize,
    pub count: usize,
}

/// Which of `count` shares decodes the connection between `a` and `b` (either order): a
/// fixed hash of the 4-tuple, the same on every run and machine.
pub fn share_of(a: SocketAddr, b: SocketAddr, count: usize) -> usize {
    if count <= 1 {
        return 0;
    }
    let (x, y) = key(a, b);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for s in [x, y] {
        match s.ip() {
            std::net::IpAddr::V4(ip) => eat(&ip.octets()),
            std::net::IpAddr::V6(ip) => eat(&ip.octets()),
        }
        eat(&s.port().to_be_bytes());
    }
    // FNV-1a's low bit is the parity of the bytes' low bits: consecutive client ports would
    // alternate between two shares, and a client that opens its connections in a pattern
    // (every other one compressed, say) would give one thread all the heavy ones. A full
    // avalanche (MurmurHash3's finaliser), then the high bits by multiply-shift.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    ((h as u128 * count as u128) >> 64) as usize
}

/// How long (capture time) a closed connection's entry stays, for its last ACKs, before it is
/// forgotten; also how often the table is swept.
const CLOSED_LINGER_SECS: i64 = 5;

fn key(a: SocketAddr, b: SocketAddr) -> Key {
    if a <= b { (a, b) } else { (b, a) }
}

struct Conn {
    info: ConnInfo,
    streams: [Stream; 2],
    conv: Conversation,
    syn_ack_seen: bool,
    handshake_done: bool,
    fin: [bool; 2],
    rst: bool,
    last_seen: i64,
    counted_ws: bool,
    /// Closed, drained, and its buffers and decoders freed: only the entry lingers, so late
    /// ACKs and retransmissions still belong to it.
    released: bool,
    /// Client and server were guessed from the port numbers (no SYN, no `--port`): the first
    /// payload may correct them.
    roles_guessed: bool,
    /// Decoded by this analyzer (always, unless it has a [`Share`]): otherwise only its TCP
    /// lifecycle is followed, so that numbering and sweeps agree with the other shares.
    owned: bool,
}

impl Conn {
    /// Client becomes server and server client. Only before any payload was delivered.
    fn swap_roles(&mut self) {
        let i = &mut self.info;
        std::mem::swap(&mut i.client, &mut i.server);
        std::mem::swap(&mut i.client_str, &mut i.server_str);
        self.streams.swap(0, 1);
    }

    fn closed(&self) -> bool {
        self.rst || (self.fin[0] && self.fin[1])
    }
}

pub struct Analyzer {
    cfg: Config,
    map: HashMap<Key, usize>,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    budget: Budget,
    next_id: u64,
    pub stats: Stats,
    last_sweep: i64,
    /// Payload bytes of unfinished messages held now (see [`Config::max_held_messages`]).
    held: usize,
    share: Option<Share>,
    /// Message buffers kept for reuse (see [`Emit::buffer`]).
    pool: Vec<Vec<u8>>,
}

/// The analyzer's [`Emit`]: stamps events with time and connection, counts them.
struct Ctx<'a> {
    ts: Timestamp,
    conn: &'a ConnInfo,
    sink: &'a mut dyn Sink,
    stats: &'a mut Stats,
    frames: bool,
    /// Message bytes held across connections, and the limit.
    held: &'a mut usize,
    max_held: usize,
    pool: &'a mut Vec<Vec<u8>>,
}

/// Buffers kept for reuse, and the largest kept: what they can hold stays small (1 MiB)
/// whatever the number of connections.
const POOL_BUFFERS: usize = 4;
const POOL_BUFFER_MAX: usize = 256 << 10;

impl Emit for Ctx<'_> {
    fn emit(&mut self, dir: Dir, kind: EventKind<'_>) -> io::Result<()> {
        match &kind {
            EventKind::Message(_) => self.stats.messages += 1,
            EventKind::Gap(g) => {
                self.stats.gaps += 1;
                self.stats.gap_bytes += g.len;
            }
            EventKind::Violation(_) => self.stats.violations += 1,
            _ => {}
        }
        self.sink.event(&Event {
            ts: self.ts,
            conn: Some(self.conn),
            dir,
            kind,
        })
    }
    fn wants_frames(&self) -> bool {
        self.frames
    }
    fn keep(&mut self, n: usize) -> usize {
        let granted = n.min(self.max_held.saturating_sub(*self.held));
        *self.held += granted;
        granted
    }
    fn release(&mut self, n: usize) {
        *self.held = self.held.saturating_sub(n);
    }
    fn buffer(&mut self) -> Vec<u8> {
        self.pool.pop().unwrap_or_default()
    }
    fn recycle(&mut self, mut buf: Vec<u8>) {
        if buf.capacity() <= POOL_BUFFER_MAX && self.pool.len() < POOL_BUFFERS {
            buf.clear();
            self.pool.push(buf);
        }
    }
}

/// Whether `payload` starts with a plausible websocket frame header, and if so whether it is
/// masked. Plausible: a defined opcode, RSV2/RSV3 clear, a control frame short and final.
fn frame_start_masked(payload: &[u8]) -> Option<bool> {
    let (&b0, &b1) = (payload.first()?, payload.get(1)?);
    let opcode = b0 & 0x0f;
    let control = opcode >= 8;
    let ok = matches!(opcode, 0 | 1 | 2 | 8 | 9 | 10)
        && b0 & 0x30 == 0
        && (!control || (b0 & 0x80 != 0 && b1 & 0x7f <= 125));
    ok.then_some(b1 & 0x80 != 0)
}

/// Hands one reassembled chunk of `dir` to the conversation; `off` follows the stream offset so
/// a gap can say where it lies.
fn deliver(
    conv: &mut Conversation,
    ctx: &mut Ctx<'_>,
    dir: Dir,
    c: Chunk<'_>,
    off: &mut u64,
) -> io::Result<()> {
    let at = *off;
    match c {
        Chunk::Data(b) => {
            *off += b.len() as u64;
            conv.data(dir, b, ctx)
        }
        Chunk::Gap { len, reason } => {
            *off += len;
            ctx.emit(
                dir,
                EventKind::Gap(Gap {
                    offset: at,
                    len,
                    reason,
                }),
            )?;
            conv.gap(dir, len, ctx)
        }
        Chunk::Fin => conv.end(dir, ctx),
    }
}

impl Analyzer {
    pub fn new(cfg: Config) -> Self {
        let budget = Budget {
            used: 0,
            max: cfg.max_ooo_total,
            per_stream: cfg.max_ooo_per_stream,
        };
        Analyzer {
            cfg,
            map: HashMap::new(),
            conns: Vec::new(),
            free: Vec::new(),
            budget,
            next_id: 1,
            stats: Stats::default(),
            last_sweep: i64::MIN,
            held: 0,
            share: None,
            pool: Vec::new(),
        }
    }

    /// An analyzer for one of `share.count` threads that each read the whole capture. Each
    /// follows every connection's TCP lifecycle, so that all number connections and sweep
    /// their tables alike, but decodes and reports only the connections [`share_of`] gives
    /// it; packet-level notices and counters are left to share 0. The buffer budgets of
    /// `cfg` are this share's alone.
    pub fn with_share(cfg: Config, share: Share) -> Self {
        Analyzer {
            share: Some(share),
            ..Analyzer::new(cfg)
        }
    }

    pub fn tracked(&self) -> usize {
        self.map.len()
    }

    pub fn buffered(&self) -> usize {
        self.budget.used
    }

    /// Payload bytes of unfinished messages, hunt buffers and HTTP heads held now.
    pub fn held(&self) -> usize {
        self.held
    }

    /// Decodes one captured packet.
    pub fn packet(&mut self, p: &RawPacket<'_>, sink: &mut dyn Sink) -> io::Result<()> {
        if self.decode(p, sink)? {
            self.tick(p.ts, sink)?;
        }
        Ok(())
    }

    /// [`Analyzer::packet`] without the housekeeping that follows; returns whether
    /// [`Analyzer::tick`] must follow (the packet was TCP and passed the port filter). For
    /// callers that tell the packet's own events from the sweep's.
    pub fn decode(&mut self, p: &RawPacket<'_>, sink: &mut dyn Sink) -> io::Result<bool> {
        let first = self.share.is_none_or(|s| s.index == 0);
        if first {
            self.stats.packets += 1;
            self.stats.bytes += p.data.len() as u64;
        }
        let seg = match packet::decode(p.linktype, p.data) {
            Ok(s) => s,
            Err(_) if !first => return Ok(false),
            Err(PacketError::NotTcp) | Err(PacketError::Fragment) => {
                self.stats.not_tcp += 1;
                return Ok(false);
            }
            Err(PacketError::UnsupportedLinkType(l)) => {
                if self.stats.unsupported_link.is_none() {
                    self.stats.unsupported_link = Some(l.0);
                    let n = Notice::UnsupportedLinkType { linktype: l.0 };
                    sink.event(&Event {
                        ts: p.ts,
                        conn: None,
                        dir: Dir::C2S,
                        kind: EventKind::Notice(&n),
                    })?;
                }
                self.stats.bad_packets += 1;
                return Ok(false);
            }
            Err(e) => {
                self.stats.bad_packets += 1;
                let n = Notice::BadPacket { why: e.to_string() };
                sink.event(&Event {
                    ts: p.ts,
                    conn: None,
                    dir: Dir::C2S,
                    kind: EventKind::Notice(&n),
                })?;
                return Ok(false);
            }
        };
        if !self.cfg.ports.is_empty()
            && !self.cfg.ports.contains(&seg.src.port())
            && !self.cfg.ports.contains(&seg.dst.port())
        {
            if first {
                self.stats.filtered += 1;
            }
            return Ok(false);
        }
        self.segment(p.ts, &seg, sink)?;
        Ok(true)
    }

    /// The table's housekeeping after a TCP packet at `ts`: every few seconds of capture time
    /// (and when over the connection limit), idle connections and closed ones whose linger
    /// is over are forgotten, in connection order.
    pub fn tick(&mut self, ts: Timestamp, sink: &mut dyn Sink) -> io::Result<()> {
        // The schedule depends on timestamps alone, so analyzers sharing a capture sweep at
        // the same packets.
        let due = ts.secs >= self.last_sweep.saturating_add(CLOSED_LINGER_SECS);
        if due {
            self.last_sweep = ts.secs;
        }
        if due || self.map.len() > self.cfg.max_conns {
            self.sweep(ts, sink)?;
        }
        Ok(())
    }

    fn segment(&mut self, ts: Timestamp, seg: &Segment<'_>, sink: &mut dyn Sink) -> io::Result<()> {
        let k = key(seg.src, seg.dst);
        let fresh_syn = seg.flags.syn() && !seg.flags.ack();
        let idx = match self.map.get(&k).copied() {
            Some(i) => {
                let c = self.conns[i].as_ref().expect("mapped slot is live");
                // A SYN with the ISN already seen is a retransmission, or the same packet
                // captured on a second interface (pcapng with lo and any): not a new
                // connection. Any other SYN starts a new incarnation of the 4-tuple.
                let reused = fresh_syn
                    && match c.streams[Dir::C2S.index()].isn {
                        Some(isn) => seg.src != c.info.client || isn != seg.seq,
                        None => true,
                    };
                if reused {
                    self.close(i, ts, sink)?;
                    self.open(k, seg)
                } else {
                    i
                }
            }
            None => self.open(k, seg),
        };
        let cfg_frames = self.cfg.frames;
        let max_held = self.cfg.max_held_messages;
        let conn = self.conns[idx].as_mut().expect("live connection");
        conn.last_seen = ts.secs;
        if conn.roles_guessed && !seg.payload.is_empty() {
            // Joined mid-stream with no port to go by: the first bytes decide. A frame header
            // with the MASK bit comes from the client (RFC 6455 section 5.1).
            conn.roles_guessed = false;
            if let Some(masked) = frame_start_masked(seg.payload)
                && masked != (seg.src == conn.info.client)
            {
                conn.swap_roles();
            }
        }
        let dir = if seg.src == conn.info.client {
            Dir::C2S
        } else {
            Dir::S2C
        };
        let d = dir.index();
        let o = dir.flip().index();

        // TCP lifecycle.
        let f = seg.flags;
        if f.syn() {
            conn.streams[d].syn(seg.seq);
        }
        let role = if f.rst() {
            TcpRole::Rst
        } else if f.syn() && !f.ack() {
            TcpRole::Syn
        } else if f.syn() {
            conn.syn_ack_seen = true;
            TcpRole::SynAck
        } else if f.fin() {
            TcpRole::Fin
        } else if dir == Dir::C2S
            && conn.syn_ack_seen
            && !conn.handshake_done
            && f.ack()
            && conn.streams[o]
                .isn
                .is_some_and(|i| seg.ack == i.wrapping_add(1))
        {
            conn.handshake_done = true;
            TcpRole::HandshakeAck
        } else if seg.payload_len > 0 {
            TcpRole::Data
        } else {
            TcpRole::Ack
        };
        if !conn.owned {
            // Another share decodes it: only what decides its entry's life.
            if f.fin() {
                conn.fin[d] = true;
            }
            if f.rst() {
                conn.rst = true;
            }
            if conn.closed() {
                conn.released = true;
            }
            return Ok(());
        }
        let tev = TcpEvent {
            role,
            flags: f,
            seq: seg.seq,
            ack: seg.ack,
            rel_seq: conn.streams[d].relative(seg.seq),
            rel_ack: if f.ack() {
                conn.streams[o].relative(seg.ack)
            } else {
                None
            },
            window: seg.window,
            options: seg.options,
            payload_len: seg.payload_len,
            captured_len: seg.payload.len() as u32,
        };
        let Conn {
            info,
            streams,
            conv,
            ..
        } = conn;
        let mut ctx = Ctx {
            ts,
            conn: info,
            sink,
            stats: &mut self.stats,
            frames: cfg_frames,
            held: &mut self.held,
            max_held,
            pool: &mut self.pool,
        };
        ctx.emit(dir, EventKind::Tcp(tev))?;
        if seg.is_truncated() {
            ctx.stats.truncated_packets += 1;
            ctx.emit(
                dir,
                EventKind::Notice(&Notice::TruncatedPacket {
                    captured: seg.payload.len() as u32,
                    declared: seg.payload_len,
                }),
            )?;
        }

        let mut result = Ok(());
        let budget = &mut self.budget;
        {
            let (a, b) = streams.split_at_mut(1);
            let (this, other) = if d == 0 {
                (&mut a[0], &mut b[0])
            } else {
                (&mut b[0], &mut a[0])
            };
            if seg.payload_len > 0 || f.fin() {
                let seq = if f.syn() {
                    seg.seq.wrapping_add(1)
                } else {
                    seg.seq
                };
                let mut off = this.next_offset();
                this.segment(
                    seq,
                    seg.payload,
                    seg.payload_len,
                    f.fin(),
                    budget,
                    &mut |c| {
                        if result.is_ok() {
                            result = deliver(conv, &mut ctx, dir, c, &mut off);
                        }
                    },
                );
            } else if !this.has_base() {
                this.segment(seg.seq, &[], 0, false, budget, &mut |_| {});
            }
            if f.ack() && !f.rst() {
                let mut off = other.next_offset();
                other.acked(seg.ack, budget, &mut |c| {
                    if result.is_ok() {
                        result = deliver(conv, &mut ctx, dir.flip(), c, &mut off);
                    }
                });
            }
            for (s, sd) in [(&mut *this, dir), (&mut *other, dir.flip())] {
                for a in s.anomalies.drain(..) {
                    let Anomaly::RetransmissionDiffers { offset, len } = a;
                    let v = Violation {
                        kind: ViolationKind::RetransmissionDiffers,
                        detail: format!(
                            "a retransmission of stream offsets {offset}..{} carries different bytes than the first copy",
                            offset + len
                        ),
                    };
                    if result.is_ok() {
                        result = ctx.emit(sd, EventKind::Violation(&v));
                    }
                }
            }
        }
        result?;
        if f.fin() {
            conn.fin[d] = true;
        }
        if conv.websocket && !conn.counted_ws {
            conn.counted_ws = true;
            self.stats.websocket_connections += 1;
        }
        if f.rst() {
            conn.rst = true;
        }
        if conn.closed() && !conn.released {
            // Closed both ways (or reset): deliver what is left, then free what the
            // connection holds; the entry lingers briefly for the last ACKs.
            self.flush(idx, ts, sink)?;
            if let Some(c) = self.conns[idx].as_mut() {
                c.released = true;
                for s in &mut c.streams {
                    self.budget.used -= s.buffered();
                    s.release();
                }
                c.conv.release();
            }
        }
        Ok(())
    }

    fn open(&mut self, k: Key, seg: &Segment<'_>) -> usize {
        let f = seg.flags;
        let ports = &self.cfg.ports;
        // Client: the SYN sender; else the side not on a --port port; else the higher port.
        let src_is_client = if f.syn() {
            !f.ack()
        } else if ports.contains(&seg.dst.port()) != ports.contains(&seg.src.port()) {
            ports.contains(&seg.dst.port())
        } else {
            seg.src.port() > seg.dst.port()
                || (seg.src.port() == seg.dst.port() && seg.src > seg.dst)
        };
        let (client, server) = if src_is_client {
            (seg.src, seg.dst)
        } else {
            (seg.dst, seg.src)
        };
        let owned = self
            .share
            .is_none_or(|s| share_of(client, server, s.count) == s.index);
        let mid_stream = !f.syn();
        let port_hint = ports.contains(&server.port());
        let roles_guessed = mid_stream && !ports.contains(&seg.src.port()) && !port_hint;
        let conn = Conn {
            info: ConnInfo {
                id: self.next_id,
                client,
                server,
                client_str: fmt_addr(&client),
                server_str: fmt_addr(&server),
            },
            streams: [Stream::default(), Stream::default()],
            conv: Conversation::new(mid_stream, port_hint, self.cfg.limits),
            syn_ack_seen: false,
            handshake_done: false,
            fin: [false; 2],
            rst: false,
            last_seen: 0,
            counted_ws: false,
            released: false,
            roles_guessed,
            owned,
        };
        self.next_id += 1;
        if owned {
            self.stats.connections += 1;
        }
        let idx = match self.free.pop() {
            Some(i) => {
                self.conns[i] = Some(conn);
                i
            }
            None => {
                self.conns.push(Some(conn));
                self.conns.len() - 1
            }
        };
        self.map.insert(k, idx);
        idx
    }

    /// Delivers what is buffered in both directions (with gaps) and ends the decoders.
    fn flush(&mut self, idx: usize, ts: Timestamp, sink: &mut dyn Sink) -> io::Result<()> {
        let frames = self.cfg.frames;
        let max_held = self.cfg.max_held_messages;
        let Some(conn) = self.conns[idx].as_mut() else {
            return Ok(());
        };
        let Conn {
            info,
            streams,
            conv,
            ..
        } = conn;
        let mut ctx = Ctx {
            ts,
            conn: info,
            sink,
            stats: &mut self.stats,
            frames,
            held: &mut self.held,
            max_held,
            pool: &mut self.pool,
        };
        let mut result = Ok(());
        for dir in [Dir::C2S, Dir::S2C] {
            let s = &mut streams[dir.index()];
            let finished = s.is_finished();
            let mut off = s.next_offset();
            s.flush(&mut self.budget, &mut |c| {
                if result.is_ok() {
                    result = deliver(conv, &mut ctx, dir, c, &mut off);
                }
            });
            std::mem::replace(&mut result, Ok(()))?;
            if !finished && !s.is_finished() {
                conv.end(dir, &mut ctx)?;
            }
        }
        Ok(())
    }

    fn close(&mut self, idx: usize, ts: Timestamp, sink: &mut dyn Sink) -> io::Result<()> {
        let owned = self.conns[idx].as_ref().is_some_and(|c| c.owned);
        if owned {
            self.flush(idx, ts, sink)?;
        }
        if let Some(c) = self.conns[idx].take() {
            if owned {
                sink.event(&Event {
                    ts,
                    conn: Some(&c.info),
                    dir: Dir::C2S,
                    kind: EventKind::End,
                })?;
            }
            for s in &c.streams {
                self.budget.used -= s.buffered();
            }
            self.map.remove(&key(c.info.client, c.info.server));
            self.free.push(idx);
        }
        Ok(())
    }

    /// Forgets idle connections, and the least recently active ones when over the limit.
    fn sweep(&mut self, ts: Timestamp, sink: &mut dyn Sink) -> io::Result<()> {
        let deadline = ts.secs.saturating_sub(self.cfg.idle_timeout_secs);
        let closed_deadline = ts.secs.saturating_sub(CLOSED_LINGER_SECS);
        // (id, slot, evicted while open)
        let mut gone: Vec<(u64, usize, bool)> = Vec::new();
        let mut live: Vec<(bool, i64, u64, usize)> = Vec::new();
        for (i, c) in self.conns.iter().enumerate() {
            if let Some(c) = c {
                if c.last_seen < deadline || (c.released && c.last_seen < closed_deadline) {
                    gone.push((c.info.id, i, false));
                } else {
                    live.push((!c.closed(), c.last_seen, c.info.id, i));
                }
            }
        }
        if live.len() > self.cfg.max_conns {
            // Closed connections first, then the longest silent; evict an eighth at once so
            // the sweep's cost is shared by many new connections.
            let excess = live.len() - self.cfg.max_conns + self.cfg.max_conns / 8;
            live.sort_unstable();
            gone.extend(
                live.iter()
                    .take(excess)
                    .map(|&(open, _, id, i)| (id, i, open)),
            );
        }
        // In connection order, not table order: what a sweep says must not depend on how
        // slots were reused, nor on how connections are shared among threads.
        gone.sort_unstable();
        for (_, i, evicted) in gone {
            if let Some(c) = &self.conns[i]
                && evicted
                && c.owned
            {
                self.stats.evicted += 1;
                let n = Notice::Evicted {
                    reason: "connection table full",
                };
                let info = c.info.clone();
                sink.event(&Event {
                    ts,
                    conn: Some(&info),
                    dir: Dir::C2S,
                    kind: EventKind::Notice(&n),
                })?;
            }
            self.close(i, ts, sink)?;
        }
        Ok(())
    }

    /// End of input: every connection delivers what it holds.
    pub fn finish(&mut self, ts: Timestamp, sink: &mut dyn Sink) -> io::Result<()> {
        let mut order: Vec<(u64, usize)> = self
            .conns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.as_ref().map(|c| (c.info.id, i)))
            .collect();
        order.sort_unstable();
        for (_, i) in order {
            self.close(i, ts, sink)?;
        }
        Ok(())
    }
}
