//! The connection table: packets in, events out. Decodes each packet to TCP, finds its
//! connection (keyed by 4-tuple), tracks the TCP lifecycle, reassembles each direction and
//! hands the bytes to the connection's [`Conversation`]. Everything that grows with the
//! input is charged to one [`Memory`] ledger; connections are limited by it, not by a count.

use crate::annotate::{AppMode, ConnAnnotator};
use crate::capture::LinkType;
use crate::capture::{RawPacket, Timestamp};
use crate::conversation::Conversation;
use crate::event::{
    Annotation, ConnInfo, Dir, Emit, Event, EventKind, Gap, Incomplete, Notice, Sink, TcpEvent,
    TcpRole, Violation, ViolationKind,
};
use crate::memory::{Memory, Pool};
use crate::packet::defrag::{Defrag, GivenUp};
use crate::packet::{self, PacketError, Segment};
use crate::reassembly::{Chunk, Stream};
use crate::ws::Limits;
use hashbrown::HashTable;
use std::hash::{BuildHasher, RandomState};
use std::io;
use std::net::SocketAddr;

/// What the flow table decodes and within which limits.
#[derive(Clone, Debug)]
pub struct Config {
    /// Only connections with one of these ports (either side); empty = all TCP.
    pub ports: Vec<u16>,
    /// A capture-filter expression (`host 10.0.0.1 and port 80`): segments it refuses are
    /// dropped before decoding, as tcpdump's filter drops packets (counted as `filtered`).
    pub filter: Option<crate::capfilter::CaptureFilter>,
    /// The websocket decoders' limits (message size, inflation).
    pub limits: Limits,
    /// Out-of-order bytes buffered per direction before the hole is declared a gap.
    pub max_ooo_per_stream: usize,
    /// Everything that grows with the input, across all connections: their state,
    /// out-of-order segments, retransmission checks, compression history, HTTP heads,
    /// hunts, unfinished messages (see [`Memory`]).
    pub max_memory: usize,
    /// Connections tracked at once (0: as many as the memory budget holds); beyond, the
    /// least recently active are dropped.
    pub max_conns: usize,
    /// A connection silent this long (capture time) is closed and forgotten, with a notice;
    /// 0: never (the memory budget still gives up the least recently active).
    pub idle_timeout_secs: i64,
    /// Emit frame events (costs a little; printers that do not show frames turn it off).
    pub frames: bool,
    /// Secrets to decrypt TLS with (`--keylog`, the capture's Decryption Secrets Blocks).
    /// Without, TLS connections are described and not decoded.
    pub keys: Option<crate::tls::KeyStore>,
    /// Which application protocols annotate messages (`--app`).
    pub app: AppMode,
}

/// The default idle timeout: two hours, Linux's `tcp_keepalive_time` (a connection silent
/// that long would have been probed by its endpoints). Chat rooms sit idle for hours between
/// messages; 600 s forgot them.
pub const DEFAULT_IDLE_TIMEOUT: i64 = 7200;

/// The default memory budget: a busy chat server's 100,000 connections (about 900 bytes
/// each when idle), with room for their messages in flight.
pub const DEFAULT_MEMORY: usize = 112 << 20;

impl Default for Config {
    fn default() -> Self {
        Config {
            ports: Vec::new(),
            filter: None,
            limits: Limits::default(),
            max_ooo_per_stream: 1 << 20,
            max_memory: DEFAULT_MEMORY,
            max_conns: 0,
            idle_timeout_secs: DEFAULT_IDLE_TIMEOUT,
            frames: true,
            keys: None,
            app: AppMode::Auto,
        }
    }
}

/// Counters for the end-of-run summary.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Packets read.
    pub packets: u64,
    /// Their captured bytes.
    pub bytes: u64,
    /// Packets that are not TCP over IPv4/IPv6.
    pub not_tcp: u64,
    /// Segments the capture filter or `--port` refused.
    pub filtered: u64,
    /// Packets that could not be decoded down to TCP.
    pub bad_packets: u64,
    /// Segments whose payload the capture cut short (snaplen).
    pub truncated_packets: u64,
    /// Connections followed.
    pub connections: u64,
    /// Of those, the ones that carried websocket (upgraded, or synced mid-stream).
    pub websocket_connections: u64,
    /// Websocket messages decoded (control frames included).
    pub messages: u64,
    /// Holes in the streams.
    pub gaps: u64,
    /// Bytes in those holes.
    pub gap_bytes: u64,
    /// Protocol and limit breaches reported.
    pub violations: u64,
    /// Open connections given up to make room (memory budget or `--max-conns`).
    pub evicted: u64,
    /// Directions whose compression history was given up to stay within the budget.
    pub history_dropped: u64,
    /// A link type met that wsdump does not decode (the first one).
    pub unsupported_link: Option<u32>,
    /// The most the memory ledger held at once.
    pub peak_memory: usize,
}

impl std::ops::AddAssign<&Stats> for Stats {
    /// Sums the counters of analyzers that shared a capture (peaks too: they ran at once).
    fn add_assign(&mut self, s: &Stats) {
        self.packets += s.packets;
        self.bytes += s.bytes;
        self.not_tcp += s.not_tcp;
        self.filtered += s.filtered;
        self.bad_packets += s.bad_packets;
        self.truncated_packets += s.truncated_packets;
        self.connections += s.connections;
        self.websocket_connections += s.websocket_connections;
        self.messages += s.messages;
        self.gaps += s.gaps;
        self.gap_bytes += s.gap_bytes;
        self.violations += s.violations;
        self.evicted += s.evicted;
        self.history_dropped += s.history_dropped;
        self.unsupported_link = self.unsupported_link.or(s.unsupported_link);
        self.peak_memory += s.peak_memory;
    }
}

type Key = (SocketAddr, SocketAddr);

/// One of several analyzers that read the same capture, each decoding its share of the
/// connections (see [`Analyzer::with_share`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Share {
    /// This analyzer's share, from 0.
    pub index: usize,
    /// How many analyzers share the capture.
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

/// How far past what its peer acknowledged an RST's sequence number may lie and still be
/// believed: the largest window a peer could have open (65,535 scaled by 2^8; Linux scales
/// by 2^7).
const RST_WINDOW: i32 = 1 << 24;

/// How long (capture time) a closed connection's entry stays, for its last ACKs, before it is
/// forgotten; also how often the table is swept.
const CLOSED_LINGER_SECS: i64 = 5;

fn key(a: SocketAddr, b: SocketAddr) -> Key {
    if a <= b { (a, b) } else { (b, a) }
}

/// The key of an occupied slot (the index only points at occupied slots).
fn slot_key(c: &Option<Conn>) -> Key {
    let c = c.as_ref().expect("indexed slot is live");
    key(c.info.client, c.info.server)
}

/// Where a connection is in its TCP life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TcpState {
    /// Before the client's ACK of the SYN+ACK (or joined mid-stream: never seen).
    Opening {
        syn_ack_seen: bool,
    },
    Established,
    /// Closed both ways or reset: drained, and its buffers and decoders freed. Only the
    /// entry lingers, so late ACKs and retransmissions still belong to it.
    Released,
}

struct Conn {
    info: ConnInfo,
    /// What decodes it; `None` when another share decodes it (see [`Share`]): then only its
    /// TCP lifecycle is followed, so that numbering and sweeps agree with the other shares.
    work: Option<Box<Work>>,
    state: TcpState,
    fin: [bool; 2],
    rst: bool,
    last_seen: i64,
    /// Client and server were guessed (no SYN): the first payload may correct them.
    roles_guessed: Option<Guess>,
    /// The client's ISN, to tell a SYN retransmission from a new incarnation of the 4-tuple.
    client_isn: Option<u32>,
    /// The last acknowledgment number each direction sent (0: none seen), which an RST from
    /// the other direction must be near to be believed. Kept on every thread, as the
    /// lifecycle is.
    acked: [u32; 2],
}

/// How client and server were guessed when no SYN said it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Guess {
    /// The side on a `--port` port is the server.
    Port,
    /// The higher port is the client's.
    HigherPort,
}

/// The decoding part of a connection: its streams, what they carry, and its reading.
struct Work {
    streams: [Stream; 2],
    conv: Conversation,
    app: ConnAnnotator,
    /// What the annotator's state was last charged (it is bounded; reconciled after each
    /// segment, since readings happen while the decoders hold the ledger).
    app_charged: usize,
    counted_ws: bool,
}

/// What a tracked connection costs the ledger before it holds any data: its entry, its table
/// slot and map entry, its decoding state. An idle connection costs this and no more.
/// The table itself (its slots and its map, charged by capacity, as they really grow) is
/// charged apart, in [`Analyzer::charge_table`]; this is the boxed decoding state, its
/// allocation overhead, and the sweep's scratch entry.
const CONN_COST: usize = std::mem::size_of::<Work>() + 16 + SWEEP_ENTRY;
/// A connection another share decodes: only its sweep entry (its slot is in the table).
const SHADOW_COST: usize = SWEEP_ENTRY;
/// What the sweep lists per connection while it runs.
const SWEEP_ENTRY: usize = 40;
/// One slot of the connection table, and one bucket of its index (slot number, control byte).
const SLOT_BYTES: usize = std::mem::size_of::<Option<Conn>>();
const BUCKET_BYTES: usize = std::mem::size_of::<u32>() + 1;

impl Conn {
    /// Client becomes server and server client. Only before any payload was delivered.
    fn swap_roles(&mut self) {
        let i = &mut self.info;
        std::mem::swap(&mut i.client, &mut i.server);
        if let Some(w) = &mut self.work {
            w.streams.swap(0, 1);
        }
    }

    fn closed(&self) -> bool {
        self.rst || (self.fin[0] && self.fin[1])
    }

    fn cost(&self) -> usize {
        if self.work.is_some() {
            CONN_COST
        } else {
            SHADOW_COST
        }
    }
}

/// The flow table: connections keyed by 4-tuple, their TCP lifecycle and decoders. The
/// [`crate::engine::Pipeline`] drives it; most programs use that, not this.
pub struct Analyzer {
    cfg: Config,
    /// Slot numbers by 4-tuple. Only the number is stored: the key is the slot's own
    /// addresses, so a connection's 64 bytes of addresses are held once, not twice (every
    /// decoding thread has a table of every connection).
    map: HashTable<u32>,
    hasher: RandomState,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    mem: Memory,
    next_id: u64,
    /// What was counted so far.
    pub stats: Stats,
    last_sweep: i64,
    /// The time of the previous TCP packet: the sweep goes by the earlier of it and the
    /// current packet's (see [`Analyzer::tick`]).
    prev_ts: Option<Timestamp>,
    share: Option<Share>,
    /// The sink said stop (`-c N`): no further event is delivered.
    stopped: bool,
    /// What the table's slots and map were last charged (by their capacity).
    table_charged: usize,
    /// IPv4 fragments waiting for the rest of their datagram.
    defrag: Defrag,
    /// Packets seen, on every share alike (the fragments' clock).
    seen: u64,
}

/// Delivers one event to the sink unless the run was stopped; a sink's "stop" is remembered.
fn send(sink: &mut dyn Sink, stopped: &mut bool, ev: &Event<'_>) -> io::Result<()> {
    if *stopped {
        return Ok(());
    }
    if !sink.event(ev)? {
        *stopped = true;
    }
    Ok(())
}

/// The table's [`Emit`]: stamps events with time, connection and annotation, counts them.
struct Ctx<'a> {
    ts: Timestamp,
    conn: &'a ConnInfo,
    app: &'a mut ConnAnnotator,
    sink: &'a mut dyn Sink,
    stopped: &'a mut bool,
    stats: &'a mut Stats,
    frames: bool,
}

impl Emit for Ctx<'_> {
    fn emit(&mut self, dir: Dir, kind: EventKind<'_>) -> io::Result<()> {
        let mut app: Option<Annotation> = None;
        match &kind {
            EventKind::Message(m) => {
                self.stats.messages += 1;
                app = self.app.read(dir, m, self.ts);
            }
            EventKind::HttpRequest(r) => self.app.request(r),
            EventKind::HttpResponse(r) => self.app.response(r),
            EventKind::Gap(g) => {
                self.stats.gaps += 1;
                self.stats.gap_bytes += g.len;
            }
            EventKind::Violation(_) => self.stats.violations += 1,
            EventKind::Notice(Notice::HistoryDropped) => self.stats.history_dropped += 1,
            _ => {}
        }
        let ev = Event {
            ts: self.ts,
            conn: Some(self.conn),
            dir,
            kind,
            app: app.as_ref(),
            label: self.app.label(),
        };
        send(self.sink, self.stopped, &ev)
    }
    fn wants_frames(&self) -> bool {
        self.frames
    }
}

/// Hands one reassembled chunk of `dir` to the conversation.
fn deliver(
    conv: &mut Conversation,
    mem: &mut Memory,
    ctx: &mut Ctx<'_>,
    dir: Dir,
    c: Chunk<'_>,
) -> io::Result<()> {
    match c {
        Chunk::Data { at, bytes } => conv.data(dir, at, bytes, mem, ctx),
        Chunk::Gap { at, len, reason } => {
            ctx.emit(
                dir,
                EventKind::Gap(Gap {
                    offset: at,
                    len,
                    reason,
                }),
            )?;
            conv.gap(dir, at, len, mem, ctx)
        }
        Chunk::Fin { .. } => conv.end(dir, mem, ctx),
        Chunk::Differs { at, len } => {
            let v = Violation {
                kind: ViolationKind::RetransmissionDiffers,
                detail: format!(
                    "a retransmission of stream offsets {at}..{} carries different bytes than the first copy",
                    at + len
                ),
            };
            ctx.emit(dir, EventKind::Violation(&v))
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

/// Whether `payload` is whole websocket frames (the last may run past the segment), each
/// plausible and all masked alike, and if so whether they are masked: evidence strong enough
/// to overrule a port guess.
fn frames_fill_masked(payload: &[u8]) -> Option<bool> {
    let mut at = 0usize;
    let mut masked = None;
    let mut frames = 0;
    while at < payload.len() {
        let p = &payload[at..];
        let m = frame_start_masked(p)?;
        if masked.is_some_and(|x| x != m) {
            return None;
        }
        masked = Some(m);
        let (len, ext) = match p[1] & 0x7f {
            126 => (u16::from_be_bytes([*p.get(2)?, *p.get(3)?]) as u64, 2),
            127 => (u64::from_be_bytes(p.get(2..10)?.try_into().ok()?), 8),
            n => (n as u64, 0),
        };
        let header = 2 + ext + if m { 4 } else { 0 };
        frames += 1;
        let end = (at as u64).saturating_add(header).saturating_add(len);
        if end >= payload.len() as u64 {
            // Ends with the segment, or a frame the next segments continue (then only after
            // another frame ended exactly where it began).
            return (end == payload.len() as u64 || frames > 1).then_some(m);
        }
        at = end as usize;
    }
    None
}

impl Analyzer {
    /// An empty table decoding every connection, with `cfg`'s limits and budget.
    pub fn new(cfg: Config) -> Self {
        let mem = Memory::new(cfg.max_memory);
        Analyzer {
            cfg,
            map: HashTable::new(),
            hasher: RandomState::new(),
            conns: Vec::new(),
            free: Vec::new(),
            mem,
            next_id: 1,
            stats: Stats::default(),
            last_sweep: i64::MIN,
            prev_ts: None,
            share: None,
            stopped: false,
            table_charged: 0,
            defrag: Defrag::default(),
            seen: 0,
        }
    }

    /// An analyzer for one of `share.count` threads that each read the whole capture. Each
    /// follows every connection's TCP lifecycle, so that all number connections and sweep
    /// their tables alike, but decodes and reports only the connections [`share_of`] gives
    /// it; packet-level notices and counters are left to share 0. The memory budget of
    /// `cfg` is this share's alone.
    pub fn with_share(cfg: Config, share: Share) -> Self {
        Analyzer {
            share: Some(share),
            ..Analyzer::new(cfg)
        }
    }

    /// Connections tracked now.
    pub fn tracked(&self) -> usize {
        self.map.len()
    }

    /// The memory ledger (what is charged now, per pool, and the peak).
    pub fn memory(&self) -> &Memory {
        &self.mem
    }

    /// The memory ledger, to charge what the caller holds for this analyzer.
    pub fn memory_mut(&mut self) -> &mut Memory {
        &mut self.mem
    }

    /// Whether a sink asked to stop.
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// Decodes one captured packet.
    pub fn packet(&mut self, p: &RawPacket<'_>, sink: &mut dyn Sink) -> io::Result<()> {
        if self.decode(p, sink)? {
            self.tick(p.ts, sink)?;
        }
        Ok(())
    }

    /// A packet-level notice from the source (live capture's drops), said once: by the
    /// first of several shares.
    pub fn source_notice(
        &mut self,
        ts: Timestamp,
        n: &Notice,
        sink: &mut dyn Sink,
    ) -> io::Result<()> {
        if self.share.is_none_or(|s| s.index == 0) && !self.stopped {
            self.notice(ts, n, sink)?;
        }
        Ok(())
    }

    fn notice(&mut self, ts: Timestamp, n: &Notice, sink: &mut dyn Sink) -> io::Result<()> {
        let ev = Event {
            ts,
            conn: None,
            dir: Dir::C2S,
            kind: EventKind::Notice(n),
            app: None,
            label: None,
        };
        send(sink, &mut self.stopped, &ev)
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
        self.seen += 1;
        let datagram;
        let decoded = match packet::decode(p.linktype, p.data) {
            Err(PacketError::Fragment) => {
                // Reassembled on every share alike (the lifecycle needs the segment).
                let v4 = packet::link::strip(p.linktype, p.data)
                    .ok()
                    .filter(|l3| l3.first().is_some_and(|b| b >> 4 == 4));
                match v4 {
                    Some(l3) => {
                        let mut lost = Vec::new();
                        let whole = self.defrag.add(l3, self.seen, &mut self.mem, &mut lost);
                        self.fragments_lost(p.ts, &lost, sink)?;
                        let Some(whole) = whole else {
                            return Ok(false);
                        };
                        datagram = whole;
                        packet::decode(LinkType::RAW, &datagram)
                            .map(|s| s.captured_whole(datagram.len() as u32, datagram.len()))
                    }
                    None => Err(PacketError::Fragment),
                }
            }
            r => r.map(|s| s.captured_whole(p.orig_len, p.data.len())),
        };
        let seg = match decoded {
            Ok(s) => s,
            Err(_) if !first => return Ok(false),
            Err(PacketError::NotTcp) => {
                self.stats.not_tcp += 1;
                return Ok(false);
            }
            Err(PacketError::UnsupportedLinkType(l)) => {
                if self.stats.unsupported_link.is_none() {
                    self.stats.unsupported_link = Some(l.0);
                    let n = Notice::UnsupportedLinkType { linktype: l.0 };
                    self.notice(p.ts, &n, sink)?;
                }
                self.stats.bad_packets += 1;
                return Ok(false);
            }
            Err(e) => {
                self.stats.bad_packets += 1;
                let n = Notice::BadPacket { why: e.to_string() };
                self.notice(p.ts, &n, sink)?;
                return Ok(false);
            }
        };
        let port_out = !self.cfg.ports.is_empty()
            && !self.cfg.ports.contains(&seg.src.port())
            && !self.cfg.ports.contains(&seg.dst.port());
        if port_out
            || self
                .cfg
                .filter
                .as_ref()
                .is_some_and(|f| !f.matches_segment(&seg))
        {
            if first {
                self.stats.filtered += 1;
            }
            return Ok(false);
        }
        self.segment(p.ts, &seg, sink)?;
        Ok(true)
    }

    /// Whether a capture filter (`--port` or an expression) selects packets.
    pub fn filtering(&self) -> bool {
        !self.cfg.ports.is_empty() || self.cfg.filter.is_some()
    }

    /// Datagrams whose fragments never all came: said once each (by share 0).
    fn fragments_lost(
        &mut self,
        ts: Timestamp,
        lost: &[GivenUp],
        sink: &mut dyn Sink,
    ) -> io::Result<()> {
        if self.share.is_some_and(|s| s.index != 0) {
            return Ok(());
        }
        for g in lost {
            let of = g.total.map_or_else(|| "?".to_string(), |t| t.to_string());
            let n = Notice::BadPacket {
                why: format!(
                    "IPv4 fragments of datagram {}: {} of {of} bytes came, never completed; not decoded (their bytes are missing from the stream)",
                    g.id, g.have
                ),
            };
            self.notice(ts, &n, sink)?;
        }
        Ok(())
    }

    /// The table's housekeeping after a TCP packet at `ts`: every few seconds of capture time
    /// (and when over the connection limit or the memory budget), idle connections and closed
    /// ones whose linger is over are forgotten, in connection order.
    ///
    /// The sweep's clock is the earlier of this packet's time and the previous one's: one
    /// record stamped a day ahead (a clock jump, a corrupt timestamp) then forgets nothing,
    /// where it used to make every open connection look idle; a real silence in the capture
    /// is believed one packet later, once a second packet confirms the new time.
    pub fn tick(&mut self, ts: Timestamp, sink: &mut dyn Sink) -> io::Result<()> {
        let now = self.prev_ts.map_or(ts, |p| p.min(ts));
        self.prev_ts = Some(ts);
        let ts = now;
        // The schedule depends on timestamps alone, so analyzers sharing a capture sweep at
        // the same packets.
        let due = ts.secs >= self.last_sweep.saturating_add(CLOSED_LINGER_SECS);
        if due {
            self.last_sweep = ts.secs;
        }
        let over_count = self.cfg.max_conns > 0 && self.map.len() > self.cfg.max_conns;
        if due || over_count || self.mem.over() {
            self.sweep(ts, sink)?;
        }
        Ok(())
    }

    /// The connection `seg` belongs to: found, opened, or opened anew when a SYN starts a new
    /// incarnation of its 4-tuple.
    fn lookup(
        &mut self,
        ts: Timestamp,
        seg: &Segment<'_>,
        sink: &mut dyn Sink,
    ) -> io::Result<usize> {
        let k = key(seg.src, seg.dst);
        let fresh_syn = seg.flags.syn() && !seg.flags.ack();
        Ok(match self.find(&k) {
            Some(i) => {
                let c = self.conns[i].as_ref().expect("mapped slot is live");
                // A SYN with the ISN already seen is a retransmission, or the same packet
                // captured on a second interface (pcapng with lo and any): not a new
                // connection. Any other SYN starts a new incarnation of the 4-tuple.
                // A SYN from the other side before any SYN+ACK is a simultaneous open
                // (RFC 9293 3.5, figure 8): the same connection, roles as the first SYN set
                // them.
                let simultaneous = seg.src != c.info.client
                    && c.state
                        == (TcpState::Opening {
                            syn_ack_seen: false,
                        })
                    && c.client_isn.is_some();
                let reused = fresh_syn
                    && !simultaneous
                    && match c.client_isn {
                        Some(isn) => seg.src != c.info.client || isn != seg.seq,
                        None => true,
                    };
                if reused {
                    self.close(i, ts, false, sink)?;
                    self.open(k, seg)
                } else {
                    i
                }
            }
            None => self.open(k, seg),
        })
    }

    fn segment(&mut self, ts: Timestamp, seg: &Segment<'_>, sink: &mut dyn Sink) -> io::Result<()> {
        let idx = self.lookup(ts, seg, sink)?;
        let conn = self.conns[idx].as_mut().expect("live connection");
        conn.last_seen = ts.secs;
        if conn.roles_guessed.is_some() && !seg.payload.is_empty() {
            // Joined mid-stream: the first bytes decide who is the client, the ports only
            // when they say nothing. A request line comes from the client, a status line from
            // the server, and a frame header with the MASK bit from the client (RFC 6455
            // section 5.1). Against a `--port` guess a lone header is not enough (random
            // bytes look like one often): the frames must end where the segment does.
            let by_port = conn.roles_guessed == Some(Guess::Port);
            conn.roles_guessed = None;
            let sender_is_client = if crate::conversation::starts_like_request(seg.payload) {
                Some(true)
            } else if seg.payload.starts_with(b"HTTP/1.") {
                Some(false)
            } else if by_port {
                frames_fill_masked(seg.payload)
            } else {
                frame_start_masked(seg.payload)
            };
            if let Some(client) = sender_is_client
                && client != (seg.src == conn.info.client)
            {
                conn.swap_roles();
            }
        }
        let dir = if seg.src == conn.info.client {
            Dir::C2S
        } else {
            Dir::S2C
        };
        let f = seg.flags;
        if f.syn() && !f.ack() && dir == Dir::C2S {
            conn.client_isn = Some(seg.seq);
        }
        let role = tcp_role(conn, dir, seg);
        if f.fin() {
            conn.fin[dir.index()] = true;
        }
        // An RST ends the connection only if it lies in the window its peer has open (RFC
        // 5961 3.2): one far from what the peer acknowledged is ignored by the endpoints,
        // and decoding goes on.
        let mut rst_ignored = None;
        if f.rst() {
            let peer_ack = conn.acked[dir.flip().index()];
            let off = seg.seq.wrapping_sub(peer_ack) as i32;
            if peer_ack != 0 && !(-1..RST_WINDOW).contains(&off) {
                rst_ignored = Some(peer_ack);
            } else {
                conn.rst = true;
            }
        }
        if f.ack() && seg.ack != 0 {
            conn.acked[dir.index()] = seg.ack;
        }
        if conn.work.is_some() {
            self.decode_segment(idx, ts, dir, role, seg, rst_ignored, sink)?;
        }
        let conn = self.conns[idx].as_mut().expect("live connection");
        if conn.closed() && conn.state != TcpState::Released {
            // Closed both ways (or reset): deliver what is left, then free what the
            // connection holds; the entry lingers briefly for the last ACKs.
            self.flush(idx, ts, false, sink)?;
            self.release(idx);
        }
        Ok(())
    }

    /// The decoding half of a segment: its TCP event, its bytes through the stream into the
    /// conversation, and the ACK's news for the other direction.
    #[allow(clippy::too_many_arguments)]
    fn decode_segment(
        &mut self,
        idx: usize,
        ts: Timestamp,
        dir: Dir,
        role: TcpRole,
        seg: &Segment<'_>,
        rst_ignored: Option<u32>,
        sink: &mut dyn Sink,
    ) -> io::Result<()> {
        let frames = self.cfg.frames;
        let max_ooo = self.cfg.max_ooo_per_stream;
        let conn = self.conns[idx].as_mut().expect("live connection");
        let released = conn.state == TcpState::Released;
        let Some(work) = conn.work.as_deref_mut() else {
            return Ok(());
        };
        let (d, o) = (dir.index(), dir.flip().index());
        let f = seg.flags;
        if f.syn() {
            work.streams[d].syn(seg.seq);
        }
        let tev = TcpEvent {
            role,
            flags: f,
            seq: seg.seq,
            ack: seg.ack,
            rel_seq: work.streams[d].relative(seg.seq),
            rel_ack: if f.ack() {
                work.streams[o].relative(seg.ack)
            } else {
                None
            },
            window: seg.window,
            options: seg.options,
            payload_len: seg.payload_len,
            captured_len: seg.payload.len() as u32,
        };
        let Work {
            streams, conv, app, ..
        } = work;
        let mut ctx = Ctx {
            ts,
            conn: &conn.info,
            app,
            sink,
            stopped: &mut self.stopped,
            stats: &mut self.stats,
            frames,
        };
        ctx.emit(dir, EventKind::Tcp(tev))?;
        if let Some(expected) = rst_ignored {
            ctx.emit(
                dir,
                EventKind::Violation(&Violation {
                    kind: ViolationKind::RstOutOfWindow,
                    detail: format!(
                        "RST with sequence number {} where the peer acknowledged {expected}: outside any window, ignored (as the endpoints ignore it)",
                        seg.seq
                    ),
                }),
            )?;
        }
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
        if released {
            // Late packets of a closed connection: shown, not decoded.
            return Ok(());
        }
        if conv.wants_keys()
            && let Some(k) = &self.cfg.keys
        {
            // A browser appends its secrets to the key log as it connects: read what it
            // added before the bytes that may need it.
            k.refresh();
        }
        let mem = &mut self.mem;
        let mut result = Ok(());
        let (a, b) = streams.split_at_mut(1);
        let (this, other) = if d == 0 {
            (&mut a[0], &mut b[0])
        } else {
            (&mut b[0], &mut a[0])
        };
        if role == TcpRole::KeepAlive {
            // TCP's own housekeeping (RFC 9293 3.8.4): no data, nothing to compare.
        } else if seg.payload_len > 0 || f.fin() {
            let seq = if f.syn() {
                seg.seq.wrapping_add(1)
            } else {
                seg.seq
            };
            this.segment(
                seq,
                seg.payload,
                seg.payload_len,
                f.fin(),
                mem,
                max_ooo,
                &mut |c, mem| {
                    if result.is_ok() {
                        result = deliver(conv, mem, &mut ctx, dir, c);
                    }
                },
            );
        } else if !this.has_base() {
            this.empty_segment(seg.seq);
        }
        if f.ack() && !f.rst() {
            other.acked(seg.ack, mem, &mut |c, mem| {
                if result.is_ok() {
                    result = deliver(conv, mem, &mut ctx, dir.flip(), c);
                }
            });
        }
        result?;
        // The readings' state, charged after the fact (it grew while the decoders held the
        // ledger). Growth the budget cannot hold is given up with the reading of this
        // connection; what stays (its name) is bounded.
        let charged = &mut work.app_charged;
        let now = ctx.app.memory();
        if now > *charged && !mem.charge(Pool::Views, now - *charged) {
            ctx.app.give_up();
            ctx.emit(dir, EventKind::Notice(&Notice::AppDropped))?;
            let now = ctx.app.memory();
            mem.force(Pool::Views, now);
            mem.refund(Pool::Views, *charged);
            *charged = now;
        } else if now != *charged {
            if now < *charged {
                mem.refund(Pool::Views, *charged - now);
            }
            *charged = now;
        }
        let counted = &mut work.counted_ws;
        if conv.websocket && !*counted {
            *counted = true;
            self.stats.websocket_connections += 1;
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
        // The connection touches a `--port` port: its unknown bytes are hunted as websocket,
        // whichever side the evidence later makes the server.
        let port_hint = ports.contains(&server.port()) || ports.contains(&client.port());
        let by_port = ports.contains(&server.port()) != ports.contains(&client.port());
        let roles_guessed = mid_stream.then_some(if by_port {
            Guess::Port
        } else {
            Guess::HigherPort
        });
        let work = owned.then(|| {
            Box::new(Work {
                streams: [Stream::default(), Stream::default()],
                conv: Conversation::new(mid_stream, port_hint, self.cfg.limits)
                    .with_keys(self.cfg.keys.clone()),
                app: ConnAnnotator::new(self.cfg.app),
                app_charged: 0,
                counted_ws: false,
            })
        });
        let conn = Conn {
            info: ConnInfo {
                id: self.next_id,
                client,
                server,
            },
            work,
            state: TcpState::Opening {
                syn_ack_seen: false,
            },
            fin: [false; 2],
            rst: false,
            last_seen: 0,
            roles_guessed,
            client_isn: None,
            acked: [0; 2],
        };
        // Charged whatever the limit: the sweep after this packet evicts to make room.
        self.mem.force(Pool::Connections, conn.cost());
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
        let hasher = &self.hasher;
        let conns = &self.conns;
        self.map
            .insert_unique(hasher.hash_one(k), idx as u32, |&i| {
                hasher.hash_one(slot_key(&conns[i as usize]))
            });
        self.charge_table();
        idx
    }

    /// The slot of the connection with key `k`.
    fn find(&self, k: &Key) -> Option<usize> {
        let conns = &self.conns;
        self.map
            .find(self.hasher.hash_one(k), |&i| {
                slot_key(&conns[i as usize]) == *k
            })
            .map(|&i| i as usize)
    }

    /// Charges the table's slots and map as they are allocated: by capacity (they grow by
    /// doubling and never shrink), not by the entries in use.
    fn charge_table(&mut self) {
        // hashbrown's capacity is 7/8 of its buckets.
        let now = self.conns.capacity() * SLOT_BYTES + self.map.capacity() * 8 / 7 * BUCKET_BYTES;
        if now != self.table_charged {
            self.mem.force(Pool::Connections, now);
            self.mem.refund(Pool::Connections, self.table_charged);
            self.table_charged = now;
        }
    }

    /// Delivers what is buffered in both directions (with gaps) and ends the decoders;
    /// `evicted`: the connection is given up while open.
    fn flush(
        &mut self,
        idx: usize,
        ts: Timestamp,
        evicted: bool,
        sink: &mut dyn Sink,
    ) -> io::Result<()> {
        let frames = self.cfg.frames;
        let Some(conn) = self.conns[idx].as_mut() else {
            return Ok(());
        };
        // What a message left open is said to be cut by.
        let why = if evicted {
            Incomplete::Evicted
        } else if conn.rst {
            Incomplete::ConnectionReset
        } else {
            Incomplete::EndOfCapture
        };
        let Some(work) = conn.work.as_deref_mut() else {
            return Ok(());
        };
        let Work {
            streams, conv, app, ..
        } = work;
        let mut ctx = Ctx {
            ts,
            conn: &conn.info,
            app,
            sink,
            stopped: &mut self.stopped,
            stats: &mut self.stats,
            frames,
        };
        let mut result = Ok(());
        for dir in [Dir::C2S, Dir::S2C] {
            let s = &mut streams[dir.index()];
            let finished = s.is_finished();
            s.flush(&mut self.mem, &mut |c, mem| {
                if result.is_ok() {
                    result = deliver(conv, mem, &mut ctx, dir, c);
                }
            });
            std::mem::replace(&mut result, Ok(()))?;
            if !finished && !s.is_finished() {
                conv.end_as(dir, why, &mut self.mem, &mut ctx)?;
            }
        }
        // Frames found only at the end (a mid-stream hunt settled by the end of the stream).
        if conv.websocket && !work.counted_ws {
            work.counted_ws = true;
            self.stats.websocket_connections += 1;
        }
        Ok(())
    }

    /// Frees what a closed, flushed connection holds; its entry stays for its last ACKs.
    fn release(&mut self, idx: usize) {
        let Some(c) = self.conns[idx].as_mut() else {
            return;
        };
        c.state = TcpState::Released;
        if let Some(w) = c.work.as_deref_mut() {
            for s in &mut w.streams {
                s.release(&mut self.mem);
            }
            w.conv.release(&mut self.mem);
        }
    }

    fn close(
        &mut self,
        idx: usize,
        ts: Timestamp,
        evicted: bool,
        sink: &mut dyn Sink,
    ) -> io::Result<()> {
        self.flush(idx, ts, evicted, sink)?;
        self.release(idx);
        if let Some(c) = self.conns[idx].take() {
            if c.work.is_some() {
                let ev = Event {
                    ts,
                    conn: Some(&c.info),
                    dir: Dir::C2S,
                    kind: EventKind::End,
                    app: None,
                    label: c.work.as_ref().and_then(|w| w.app.label()),
                };
                send(sink, &mut self.stopped, &ev)?;
            }
            if let Some(w) = &c.work {
                self.mem.refund(Pool::Views, w.app_charged);
            }
            self.mem.refund(Pool::Connections, c.cost());
            let h = self.hasher.hash_one(key(c.info.client, c.info.server));
            if let Ok(e) = self.map.find_entry(h, |&i| i as usize == idx) {
                e.remove();
            }
            self.free.push(idx);
        }
        Ok(())
    }

    /// Forgets idle connections, and the least recently active ones when over the connection
    /// limit or the memory budget.
    fn sweep(&mut self, ts: Timestamp, sink: &mut dyn Sink) -> io::Result<()> {
        let deadline = if self.cfg.idle_timeout_secs > 0 {
            ts.secs.saturating_sub(self.cfg.idle_timeout_secs)
        } else {
            i64::MIN
        };
        let closed_deadline = ts.secs.saturating_sub(CLOSED_LINGER_SECS);
        let released = |c: &Conn| c.state == TcpState::Released;
        // (id, slot, why it is given up while open)
        let mut gone: Vec<(u64, usize, Option<&'static str>)> = Vec::new();
        let mut live: Vec<(bool, i64, u64, usize)> = Vec::new();
        for (i, c) in self.conns.iter().enumerate() {
            if let Some(c) = c {
                if released(c) && c.last_seen < closed_deadline {
                    gone.push((c.info.id, i, None));
                } else if c.last_seen < deadline {
                    let why = (!c.closed()).then_some(
                        "idle longer than --idle-timeout (capture time): forgotten while open",
                    );
                    gone.push((c.info.id, i, why));
                } else {
                    live.push((!c.closed(), c.last_seen, c.info.id, i));
                }
            }
        }
        let max = self.cfg.max_conns;
        let mut excess = if max > 0 && live.len() > max {
            live.len() - max + max / 8
        } else {
            0
        };
        if self.mem.over() {
            // Over the memory budget: give up the least recently active connections, a
            // sixteenth of them at once so the cost of sorting is shared by many new ones.
            excess = excess.max(live.len() / 16 + 1);
        }
        let mut reason = "connection table full (--max-conns)";
        if excess > 0 {
            if self.mem.over() {
                reason = "memory budget full (--max-memory): connection state given up";
            }
            // Closed connections first, then the longest silent.
            live.sort_unstable();
            gone.extend(
                live.iter()
                    .take(excess)
                    .map(|&(open, _, id, i)| (id, i, open.then_some(reason))),
            );
        }
        // In connection order, not table order: what a sweep says must not depend on how
        // slots were reused, nor on how connections are shared among threads.
        gone.sort_unstable();
        for (_, i, evicted) in gone {
            if let Some(c) = &self.conns[i]
                && let Some(reason) = evicted
                && c.work.is_some()
            {
                self.stats.evicted += 1;
                let n = Notice::Evicted { reason };
                let info = c.info.clone();
                let ev = Event {
                    ts,
                    conn: Some(&info),
                    dir: Dir::C2S,
                    kind: EventKind::Notice(&n),
                    app: None,
                    label: c.work.as_ref().and_then(|w| w.app.label()),
                };
                send(sink, &mut self.stopped, &ev)?;
            }
            self.close(i, ts, evicted.is_some(), sink)?;
        }
        Ok(())
    }

    /// End of input: every connection delivers what it holds.
    pub fn finish(&mut self, ts: Timestamp, sink: &mut dyn Sink) -> io::Result<()> {
        let mut lost = Vec::new();
        self.defrag.finish(&mut self.mem, &mut lost);
        self.fragments_lost(ts, &lost, sink)?;
        let mut order: Vec<(u64, usize)> = self
            .conns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.as_ref().map(|c| (c.info.id, i)))
            .collect();
        order.sort_unstable();
        for (_, i) in order {
            self.close(i, ts, false, sink)?;
        }
        // The table is empty: give back its slots and map too.
        self.map = HashTable::new();
        self.conns = Vec::new();
        self.free = Vec::new();
        self.charge_table();
        self.stats.peak_memory = self.mem.peak();
        Ok(())
    }
}

/// What a segment does in its connection's life; moves the lifecycle on.
fn tcp_role(conn: &mut Conn, dir: Dir, seg: &Segment<'_>) -> TcpRole {
    let f = seg.flags;
    if f.rst() {
        return TcpRole::Rst;
    }
    if f.syn() && !f.ack() {
        return TcpRole::Syn;
    }
    if f.syn() {
        if let TcpState::Opening { syn_ack_seen } = &mut conn.state {
            *syn_ack_seen = true;
        }
        return TcpRole::SynAck;
    }
    if f.fin() {
        return TcpRole::Fin;
    }
    let o = dir.flip().index();
    let peer_isn = conn.work.as_ref().and_then(|w| w.streams[o].isn);
    if dir == Dir::C2S
        && conn.state == (TcpState::Opening { syn_ack_seen: true })
        && f.ack()
        && peer_isn.is_some_and(|i| seg.ack == i.wrapping_add(1))
    {
        conn.state = TcpState::Established;
        return TcpRole::HandshakeAck;
    }
    // A keep-alive probe: no more than one byte, one below the next expected sequence number
    // (RFC 9293 3.8.4; tshark's tcp.analysis.keep_alive).
    let d = dir.index();
    if seg.payload_len <= 1
        && let Some(next) = conn.work.as_ref().and_then(|w| w.streams[d].next_seq())
        && seg.seq == next.wrapping_sub(1)
    {
        return TcpRole::KeepAlive;
    }
    if seg.payload_len > 0 {
        TcpRole::Data
    } else {
        TcpRole::Ack
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    /// What a busy chat server's idle connection costs: the memory benchmark's 100,000
    /// connections must fit the default budget with room for their messages.
    #[test]
    fn an_idle_connection_fits_the_budget() {
        // With the table's slots and map grown (by doubling) to hold them all.
        let idle = CONN_COST + 2 * crate::conversation::DECODER_COST;
        let n: usize = 100_000;
        let table =
            n.next_power_of_two() * SLOT_BYTES + (n * 8 / 7).next_power_of_two() * BUCKET_BYTES;
        assert!(idle <= 800, "an idle connection's state costs {idle} bytes");
        assert!(n * idle + table < DEFAULT_MEMORY, "{n} x {idle} + {table}");
    }

    #[test]
    fn addresses_print_as_the_json_contract_says() {
        for a in [
            "10.0.0.1:80",
            "[::1]:7272",
            "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535",
        ] {
            let s: SocketAddr = a.parse().unwrap();
            assert_eq!(crate::event::AddrText::new(&s).as_str(), a);
            assert_eq!(
                crate::event::AddrText::new(&s).as_str(),
                crate::packet::fmt_addr(&s)
            );
        }
    }
}
