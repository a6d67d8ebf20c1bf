//! One direction of a websocket connection: bytes in, frames and messages out.
//!
//! The decoder is an analyzer, not an endpoint: every breach of the RFC is reported and
//! decoding goes on. After a gap (or when the capture began mid-connection) it hunts for the
//! next frame boundary and marks what it decodes until the stream is known good again.

use super::deflate::{InflateError, Inflater, Output, Window};
use super::frame::{Header, apply_mask};
use crate::event::{
    DeflateParams, Dir, Emit, EventKind, FrameInfo, Incomplete, Message, Notice, Opcode, Violation,
    ViolationKind,
};
use crate::memory::{Memory, Pool};
use std::io;

/// Resource limits, each reported when hit.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest message payload kept whole; beyond it the message is reported truncated.
    pub max_message: usize,
    /// Largest inflated size of one message before inflation stops (decompression bombs).
    pub max_inflate: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message: 4 << 20,
            max_inflate: 64 << 20,
        }
    }
}

/// What is known of compression in this direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// The handshake was seen and negotiated nothing: RSV1 is a violation.
    Off,
    Deflate(DeflateParams),
    /// No handshake seen: RSV1 on a data frame means permessage-deflate.
    Unknown,
}

/// Masked payload is unmasked in blocks of this many bytes, on the stack.
const UNMASK_BLOCK: usize = 4096;

/// Largest frame a resynchronisation will believe in.
const PLAUSIBLE_FRAME: u64 = 1 << 26;
/// Bytes kept while hunting for a frame boundary.
const HUNT_MAX: usize = 256 * 1024;
/// Frames that must follow the resynchronised one cleanly (each header where the previous
/// frame ended) before the stream is trusted again.
const TRUST_AFTER: u32 = 1;

struct FrameState {
    h: Header,
    remaining: u64,
    /// Payload bytes seen so far (mask position).
    pos: u64,
    stream_offset: u64,
    head_wire: [u8; 16],
    head_plain: [u8; 16],
    head_len: u8,
    resync: bool,
    /// The payload belongs to no message (reserved opcode, orphan continuation): skip it.
    discard: bool,
}

struct MsgState {
    opcode: Opcode,
    compressed: bool,
    buf: Vec<u8>,
    len: u64,
    wire_len: u64,
    frames: u32,
    incomplete: Option<Incomplete>,
    missing: Vec<(u64, u64)>,
    resync: bool,
    /// Inflation of this message stopped (error, limit, gap).
    inflate_dead: bool,
    /// Most payload bytes this message may keep: `max_message`, or less once the shared
    /// buffer limit refused more.
    cap: usize,
    /// While a compressed message is inflated.
    inflater: Option<Box<Inflater>>,
}

/// A frame header that arrived in pieces, kept inline (no allocation per connection).
#[derive(Clone, Copy, Default)]
struct HeaderBytes {
    b: [u8; Header::MAX_LEN],
    n: u8,
}

impl HeaderBytes {
    fn is_empty(&self) -> bool {
        self.n == 0
    }
    fn len(&self) -> usize {
        self.n as usize
    }
    fn as_slice(&self) -> &[u8] {
        &self.b[..self.n as usize]
    }
    fn extend_from_slice(&mut self, d: &[u8]) {
        let at = self.len();
        let n = d.len().min(Header::MAX_LEN - at);
        self.b[at..at + n].copy_from_slice(&d[..n]);
        self.n += n as u8;
    }
    fn clear(&mut self) {
        self.n = 0;
    }
}

pub struct WsDecoder {
    dir: Dir,
    /// Frames in this direction must be masked (client) or not (server); `None` while the
    /// roles are unknown.
    expect_masked: Option<bool>,
    compression: Compression,
    limits: Limits,
    /// Stream offset of the next byte.
    offset: u64,
    hdr: HeaderBytes,
    /// The frame being read. Boxed, like `msg` and `hunt`: a decoder between frames keeps
    /// only the pointers.
    frame: Option<Box<FrameState>>,
    /// Boxed: a connection between messages (most of them, most of the time) keeps only
    /// the pointer.
    msg: Option<Box<MsgState>>,
    ctrl: Vec<u8>,
    ctrl_len: u64,
    /// The sender's compression window (context takeover), and its largest size.
    window: Window,
    window_max: usize,
    /// The inflater's window misses bytes (mid-stream start, gap): failures are expected.
    history_lost: bool,
    hunt: Option<Box<Hunt>>,
    /// Decoding after a resynchronisation, not yet trusted.
    resync_active: bool,
    clean_frames: u32,
    /// The next header was found by hunting, not by following the previous frame.
    next_is_resync: bool,
    closed: bool,
    /// Frames are being followed: from the start (after a handshake) or since a
    /// resynchronisation found evidence. A mid-stream decoder that never syncs found no
    /// websocket.
    synced: bool,
}

#[derive(Default)]
struct Hunt {
    buf: Vec<u8>,
    /// Stream offset of `buf[0]`.
    start: u64,
    /// Bytes dropped from the front of `buf` so far.
    dropped: u64,
    /// Position to resume scanning from.
    scan: usize,
    /// Positions in `buf` where a TCP segment's bytes began: senders start frames there.
    starts: Vec<usize>,
}

enum Candidate {
    No,
    /// Plausible so far; the bytes that would decide have not arrived.
    Undecided,
    /// Plausible, and it ended on a segment boundary once: the best there is when the stream
    /// ends, not enough while more may come.
    Weak,
    /// A chain of plausible frames that ends on segment boundaries, evidence random bytes
    /// almost never give (see [`WsDecoder::candidate`]).
    Confirmed,
}

impl WsDecoder {
    pub fn new(
        dir: Dir,
        expect_masked: Option<bool>,
        compression: Compression,
        limits: Limits,
    ) -> Self {
        let bits = match compression {
            Compression::Deflate(p) => match dir {
                Dir::C2S => p.client_max_window_bits,
                Dir::S2C => p.server_max_window_bits,
            },
            _ => None,
        };
        WsDecoder {
            dir,
            expect_masked,
            compression,
            limits,
            offset: 0,
            hdr: HeaderBytes::default(),
            frame: None,
            msg: None,
            ctrl: Vec::new(),
            ctrl_len: 0,
            window: Window::default(),
            window_max: 1 << bits.unwrap_or(15).clamp(8, 15),
            history_lost: false,
            hunt: None,
            resync_active: false,
            clean_frames: 0,
            next_is_resync: false,
            closed: false,
            synced: true,
        }
    }

    /// A decoder that joins the stream at an unknown position: it hunts for a frame first.
    pub fn mid_stream(dir: Dir, expect_masked: Option<bool>, limits: Limits, offset: u64) -> Self {
        let mut d = WsDecoder::new(dir, expect_masked, Compression::Unknown, limits);
        d.offset = offset;
        d.history_lost = true;
        d.synced = false;
        d.hunt = Some(Box::new(Hunt {
            start: offset,
            ..Hunt::default()
        }));
        d
    }

    /// Whether frames were ever followed (see `synced`).
    pub fn synced(&self) -> bool {
        self.synced
    }

    /// Gives back everything this decoder holds (the connection is over or dropped).
    pub fn release(&mut self, mem: &mut Memory) {
        if let Some(h) = self.hunt.take() {
            mem.refund(Pool::Hunt, h.buf.len());
        }
        if let Some(m) = self.msg.take() {
            mem.refund(Pool::Messages, m.buf.len());
            if let Some(i) = m.inflater {
                i.done();
            }
        }
        self.frame = None;
        self.drop_window(mem);
        self.ctrl = Vec::new();
    }

    fn drop_window(&mut self, mem: &mut Memory) {
        mem.refund(Pool::Compression, self.window.capacity());
        self.window.clear();
    }

    /// Feeds the next in-order bytes of this direction.
    pub fn feed(&mut self, mut data: &[u8], mem: &mut Memory, em: &mut dyn Emit) -> io::Result<()> {
        while !data.is_empty() {
            if self.hunt.is_some() {
                self.hunt_feed(data, mem, em)?;
                return Ok(());
            }
            if self.frame.is_none() {
                let h = if self.hdr.is_empty() {
                    match Header::parse(data) {
                        Some(h) if self.resync_active && !self.plausible(&h) => {
                            // Not trusted yet and the chain breaks: the resynchronisation was
                            // a false one. Hunt again from here.
                            return self.rehunt(data, mem, em);
                        }
                        Some(h) => {
                            data = &data[h.header_len as usize..];
                            h
                        }
                        None => {
                            self.hdr.extend_from_slice(data);
                            self.offset += data.len() as u64;
                            return Ok(());
                        }
                    }
                } else {
                    let need = if self.hdr.len() >= 2 {
                        Header::needed(self.hdr.as_slice()[1])
                    } else {
                        2
                    };
                    let take = (need - self.hdr.len()).min(data.len());
                    self.hdr.extend_from_slice(&data[..take]);
                    self.offset += take as u64;
                    data = &data[take..];
                    match Header::parse(self.hdr.as_slice()) {
                        Some(h) if self.resync_active && !self.plausible(&h) => {
                            let mut bytes = self.hdr.as_slice().to_vec();
                            self.hdr.clear();
                            self.offset -= bytes.len() as u64;
                            bytes.extend_from_slice(data);
                            return self.rehunt(&bytes, mem, em);
                        }
                        Some(h) => {
                            // The header's bytes were counted as they came in.
                            self.offset -= h.header_len as u64;
                            self.hdr.clear();
                            h
                        }
                        None => continue,
                    }
                };
                let at = self.offset;
                self.offset += h.header_len as u64;
                let resync = std::mem::take(&mut self.next_is_resync);
                if !self.start_frame(h, at, resync, mem, em)? {
                    continue;
                }
                // Fast path: a whole unmasked, uncompressed, unfragmented data frame in this
                // chunk is a message borrowed straight from the packet.
                if self.msg.is_none()
                    && h.fin
                    && h.mask.is_none()
                    && h.rsv == 0
                    && (h.opcode == 1 || h.opcode == 2)
                    && h.payload_len <= data.len() as u64
                    && h.payload_len <= self.limits.max_message as u64
                    && !self.resync_active
                    && !em.wants_frames()
                {
                    let n = h.payload_len as usize;
                    let payload = &data[..n];
                    data = &data[n..];
                    self.offset += n as u64;
                    self.frame = None;
                    self.clean_frames += 1;
                    let opcode = Opcode::from_u8(h.opcode);
                    self.emit_message(
                        MsgView {
                            opcode,
                            payload,
                            len: n as u64,
                            wire_len: n as u64,
                            compressed: false,
                            frames: 1,
                            truncated: false,
                            incomplete: None,
                            missing: Vec::new(),
                            resync: false,
                        },
                        em,
                    )?;
                    continue;
                }
            }
            let remaining = self.frame.as_ref().map_or(0, |f| f.remaining);
            let take = remaining.min(data.len() as u64) as usize;
            let (chunk, rest) = data.split_at(take);
            data = rest;
            self.payload(chunk, mem, em)?;
            if self.frame.as_ref().is_some_and(|f| f.remaining == 0) {
                self.end_frame(mem, em)?;
            }
        }
        Ok(())
    }

    /// Bytes that will never arrive.
    pub fn gap(&mut self, len: u64, mem: &mut Memory, em: &mut dyn Emit) -> io::Result<()> {
        self.offset += len;
        if let Some(h) = &mut self.hunt {
            // Bytes on either side of a hole are not contiguous: start over after it.
            mem.refund(Pool::Hunt, h.buf.len());
            h.dropped += h.buf.len() as u64;
            h.buf.clear();
            h.starts.clear();
            h.scan = 0;
            h.start = self.offset;
            return Ok(());
        }
        if let Some(f) = &mut self.frame
            && len < f.remaining
            && self.hdr.is_empty()
        {
            // The hole lies inside this frame's payload: the frame boundary is still known.
            f.remaining -= len;
            f.pos += len;
            let control = Opcode::from_u8(f.h.opcode).is_control();
            let discard = f.discard;
            if control {
                self.ctrl_len += len;
            } else if let (Some(m), false) = (&mut self.msg, discard) {
                m.incomplete.get_or_insert(Incomplete::Gap);
                if m.compressed {
                    m.inflate_dead = true;
                } else {
                    m.missing.push((m.len, m.len + len));
                    m.len += len;
                }
                m.wire_len += len;
            }
            return Ok(());
        }
        // The hole swallowed a frame boundary: what was in progress is reported as it is, and
        // the decoder hunts for the next header.
        self.hdr.clear();
        self.frame = None;
        if let Some(mut m) = self.msg.take() {
            m.incomplete.get_or_insert(Incomplete::Gap);
            self.finish_message(m, mem, em)?;
        }
        self.lose_history(mem);
        self.hunt = Some(Box::new(Hunt {
            start: self.offset,
            ..Hunt::default()
        }));
        Ok(())
    }

    /// The stream ended (FIN, RST, end of capture): report a message cut short, and accept a
    /// pending resynchronisation candidate that could not be confirmed.
    pub fn finish(&mut self, mem: &mut Memory, em: &mut dyn Emit) -> io::Result<()> {
        // A candidate that could not be confirmed is the best there is now. Feeding from it
        // may start a new hunt further on (a false chain breaks); each round starts later.
        while let Some(mut h) = self.hunt.take() {
            let pos = self.best_unconfirmed(&h);
            let buf = std::mem::take(&mut h.buf);
            let r = match pos {
                Some(pos) => self
                    .accept_resync(&h, pos, em)
                    .and_then(|_| self.feed(&buf[pos..], mem, em)),
                None => Ok(()),
            };
            mem.refund(Pool::Hunt, buf.len());
            r?;
        }
        if self.frame.is_some() || self.msg.is_some() {
            self.frame = None;
            if let Some(mut m) = self.msg.take() {
                m.incomplete.get_or_insert(Incomplete::EndOfCapture);
                self.finish_message(m, mem, em)?;
            }
        }
        Ok(())
    }

    fn lose_history(&mut self, mem: &mut Memory) {
        self.drop_window(mem);
        self.history_lost = true;
    }

    fn violation(&self, kind: ViolationKind, detail: String, em: &mut dyn Emit) -> io::Result<()> {
        em.emit(self.dir, EventKind::Violation(&Violation { kind, detail }))
    }

    /// Validates a header and sets up the frame. Returns false when the frame's payload is
    /// already done with (zero length).
    fn start_frame(
        &mut self,
        h: Header,
        at: u64,
        resync: bool,
        mem: &mut Memory,
        em: &mut dyn Emit,
    ) -> io::Result<bool> {
        let op = Opcode::from_u8(h.opcode);
        let mut discard = false;
        if let Some(m) = self.expect_masked {
            if m && h.mask.is_none() {
                self.violation(
                    ViolationKind::UnmaskedClientFrame,
                    format!("frame at offset {at}"),
                    em,
                )?;
            } else if !m && h.mask.is_some() {
                self.violation(
                    ViolationKind::MaskedServerFrame,
                    format!("frame at offset {at}"),
                    em,
                )?;
            }
        }
        if h.non_minimal {
            self.violation(
                ViolationKind::NonMinimalLength,
                format!("length {} in a longer encoding than needed", h.payload_len),
                em,
            )?;
        }
        if h.payload_len >> 63 != 0 {
            self.violation(
                ViolationKind::LengthMsbSet,
                format!(
                    "64-bit length {:#x} has its most significant bit set",
                    h.payload_len
                ),
                em,
            )?;
        }
        let rsv1_ok = matches!(op, Opcode::Text | Opcode::Binary)
            && self.msg.is_none()
            && self.compression != Compression::Off;
        if h.rsv & 0b011 != 0 || (h.rsv & 0b100 != 0 && !rsv1_ok) {
            self.violation(
                ViolationKind::ReservedBits,
                format!("RSV bits {:03b} on a {op} frame", h.rsv),
                em,
            )?;
        }
        if op.is_control() {
            if !h.fin {
                self.violation(
                    ViolationKind::FragmentedControlFrame,
                    format!("{op} without FIN"),
                    em,
                )?;
            }
            if h.payload_len > 125 {
                self.violation(
                    ViolationKind::ControlFrameTooLong,
                    format!("{op} with {} payload bytes (limit 125)", h.payload_len),
                    em,
                )?;
            }
        }
        if self.closed && !matches!(op, Opcode::Close) {
            self.violation(
                ViolationKind::DataAfterClose,
                format!("{op} frame after close"),
                em,
            )?;
        }
        match op {
            Opcode::Reserved(r) => {
                self.violation(ViolationKind::ReservedOpcode, format!("opcode {r:#x}"), em)?;
                discard = true;
            }
            Opcode::Text | Opcode::Binary => {
                if let Some(mut old) = self.msg.take() {
                    self.violation(
                        ViolationKind::ExpectedContinuation,
                        format!(
                            "new {op} message while a {} message was unfinished",
                            old.opcode
                        ),
                        em,
                    )?;
                    old.incomplete.get_or_insert(Incomplete::Gap);
                    self.finish_message(old, mem, em)?;
                }
                if self.resync_active && self.clean_frames >= TRUST_AFTER {
                    self.resync_active = false;
                }
                let compressed = h.rsv & 0b100 != 0;
                let inflater = compressed.then(|| {
                    let window = (!self.no_context_takeover()).then_some(&self.window);
                    Inflater::start(window, self.window_max)
                });
                self.msg = Some(Box::new(MsgState {
                    opcode: op,
                    compressed,
                    buf: mem.buffer(),
                    len: 0,
                    wire_len: 0,
                    frames: 0,
                    incomplete: None,
                    missing: Vec::new(),
                    resync: self.resync_active || resync,
                    inflate_dead: false,
                    cap: self.limits.max_message,
                    inflater,
                }));
            }
            Opcode::Continuation => {
                if self.msg.is_none() {
                    if resync || self.resync_active {
                        // Joined in the middle of a fragmented message: its start is gone.
                        self.msg = Some(Box::new(MsgState {
                            opcode: Opcode::Continuation,
                            compressed: false,
                            buf: Vec::new(),
                            len: 0,
                            wire_len: 0,
                            frames: 0,
                            incomplete: Some(Incomplete::StartMissing),
                            missing: Vec::new(),
                            resync: true,
                            inflate_dead: false,
                            cap: self.limits.max_message,
                            inflater: None,
                        }));
                    } else {
                        self.violation(
                            ViolationKind::UnexpectedContinuation,
                            "continuation frame with no message in progress".into(),
                            em,
                        )?;
                        discard = true;
                    }
                }
            }
            Opcode::Close | Opcode::Ping | Opcode::Pong => {
                self.ctrl.clear();
                self.ctrl_len = 0;
            }
        }
        if let Some(m) = &mut self.msg
            && !op.is_control()
            && !discard
        {
            m.frames += 1;
        }
        self.frame = Some(Box::new(FrameState {
            h,
            remaining: h.payload_len,
            pos: 0,
            stream_offset: at,
            head_wire: [0; 16],
            head_plain: [0; 16],
            head_len: 0,
            resync,
            discard,
        }));
        if h.payload_len == 0 {
            self.end_frame(mem, em)?;
            return Ok(false);
        }
        Ok(true)
    }

    /// This direction's sender resets its compressor after each message.
    fn no_context_takeover(&self) -> bool {
        matches!(self.compression, Compression::Deflate(p) if p.no_context_takeover(self.dir))
    }

    fn payload(&mut self, chunk: &[u8], mem: &mut Memory, em: &mut dyn Emit) -> io::Result<()> {
        let Some(key) = self.frame.as_ref().and_then(|f| f.h.mask) else {
            return self.payload_plain(chunk, chunk, mem, em);
        };
        // Unmasked a block at a time on the stack: no per-connection buffer that grows to the
        // largest segment ever seen.
        for piece in chunk.chunks(UNMASK_BLOCK) {
            let mut block = [0u8; UNMASK_BLOCK];
            let plain = &mut block[..piece.len()];
            plain.copy_from_slice(piece);
            apply_mask(plain, key, self.frame.as_ref().map_or(0, |f| f.pos));
            self.payload_plain(piece, plain, mem, em)?;
        }
        Ok(())
    }

    /// Payload bytes as sent (`wire`) and unmasked (`plain`, the same when not masked).
    fn payload_plain(
        &mut self,
        wire: &[u8],
        plain: &[u8],
        mem: &mut Memory,
        em: &mut dyn Emit,
    ) -> io::Result<()> {
        let Some(f) = &mut self.frame else {
            return Ok(());
        };
        let chunk = wire;
        let n = chunk.len();
        f.remaining -= n as u64;
        self.offset += n as u64;
        if (f.head_len as usize) < 16 {
            let h = f.head_len as usize;
            let k = (16 - h).min(n);
            f.head_wire[h..h + k].copy_from_slice(&chunk[..k]);
            f.head_plain[h..h + k].copy_from_slice(&plain[..k]);
            f.head_len += k as u8;
        }
        f.pos += n as u64;
        let op = Opcode::from_u8(f.h.opcode);
        let discard = f.discard;
        let mut result = Ok(());
        if op.is_control() {
            // A control payload is at most 125 bytes (RFC 6455 5.5); a longer one is a
            // violation, reported, and kept only that far.
            let room = 125usize.saturating_sub(self.ctrl.len());
            self.ctrl.extend_from_slice(&plain[..room.min(n)]);
            self.ctrl_len += n as u64;
        } else if !discard && let Some(m) = &mut self.msg {
            let before = m.buf.len();
            result = append(m, plain, &self.limits);
            let grown = m.buf.len() - before;
            if grown > 0 {
                let granted = mem.grant(Pool::Messages, grown);
                if granted < grown {
                    // Memory for unfinished messages is spent: keep what we have, count the rest.
                    m.buf.truncate(before + granted);
                    m.cap = m.buf.len();
                }
            }
        }
        if let Err(e) = result {
            self.inflate_failed(e, em)?;
        }
        Ok(())
    }

    fn inflate_failed(&mut self, e: InflateError, em: &mut dyn Emit) -> io::Result<()> {
        let Some(m) = &mut self.msg else {
            return Ok(());
        };
        m.inflate_dead = true;
        match e {
            InflateError::Limit => {
                m.incomplete = Some(Incomplete::InflateLimit);
                let limit = self.limits.max_inflate;
                self.violation(
                    ViolationKind::InflateLimit,
                    format!("message inflates past {limit} bytes; decompression stopped"),
                    em,
                )?;
            }
            InflateError::Data(why) => {
                m.incomplete.get_or_insert(Incomplete::InflateFailed);
                if !self.history_lost {
                    self.violation(ViolationKind::InflateError, why, em)?;
                }
            }
        }
        // What follows in this direction may refer back to what could not be inflated.
        self.history_lost = true;
        Ok(())
    }

    fn end_frame(&mut self, mem: &mut Memory, em: &mut dyn Emit) -> io::Result<()> {
        let Some(f) = self.frame.take() else {
            return Ok(());
        };
        if f.resync {
            self.clean_frames = 0;
        } else {
            self.clean_frames += 1;
        }
        if em.wants_frames() {
            let info = FrameInfo {
                fin: f.h.fin,
                rsv: f.h.rsv,
                opcode: f.h.opcode,
                mask: f.h.mask,
                payload_len: f.h.payload_len,
                header_len: f.h.header_len,
                stream_offset: f.stream_offset,
                head_wire: f.head_wire,
                head_plain: f.head_plain,
                head_len: f.head_len,
                resync: f.resync,
            };
            em.emit(self.dir, EventKind::Frame(&info))?;
        }
        let op = Opcode::from_u8(f.h.opcode);
        if op.is_control() {
            self.control_message(op, f.h.payload_len, em)?;
        } else if f.h.fin
            && !f.discard
            && let Some(m) = self.msg.take()
        {
            self.finish_message(m, mem, em)?;
        }
        Ok(())
    }

    fn control_message(&mut self, op: Opcode, wire_len: u64, em: &mut dyn Emit) -> io::Result<()> {
        let ctrl = std::mem::take(&mut self.ctrl);
        let complete = ctrl.len() as u64 == self.ctrl_len;
        let mut close_code = None;
        let mut close_reason = None;
        let mut valid_utf8 = true;
        if op == Opcode::Close && complete {
            self.closed = true;
            match ctrl.len() {
                0 => {}
                1 => self.violation(
                    ViolationKind::InvalidClosePayload,
                    "close payload of one byte (a code needs two)".into(),
                    em,
                )?,
                _ => {
                    let code = u16::from_be_bytes([ctrl[0], ctrl[1]]);
                    close_code = Some(code);
                    if !close_code_valid(code) {
                        self.violation(
                            ViolationKind::InvalidCloseCode,
                            format!("close code {code} may not be sent"),
                            em,
                        )?;
                    }
                    match std::str::from_utf8(&ctrl[2..]) {
                        Ok(r) => close_reason = Some(r),
                        Err(_) => {
                            valid_utf8 = false;
                            self.violation(
                                ViolationKind::InvalidUtf8,
                                "close reason is not UTF-8".into(),
                                em,
                            )?;
                        }
                    }
                }
            }
        }
        let msg = Message {
            opcode: op,
            payload: &ctrl,
            len: self.ctrl_len,
            wire_len,
            compressed: false,
            frames: 1,
            truncated: !complete && self.ctrl_len > ctrl.len() as u64,
            incomplete: None,
            missing: Vec::new(),
            resync: self.resync_active,
            valid_utf8,
            text: None,
            close_code,
            close_reason,
        };
        let r = em.emit(self.dir, EventKind::Message(&msg));
        self.ctrl = ctrl;
        r
    }

    fn finish_message(
        &mut self,
        mut m: Box<MsgState>,
        mem: &mut Memory,
        em: &mut dyn Emit,
    ) -> io::Result<()> {
        if m.compressed && !m.inflate_dead {
            let inf = m
                .inflater
                .as_mut()
                .expect("a compressed message has an inflater");
            let before = m.buf.len();
            let mut out = Output {
                buf: &mut m.buf,
                keep: m.cap,
                produced: m.len,
                hard_limit: self.limits.max_inflate,
            };
            let r = inf.finish(&mut out);
            m.len = out.produced;
            let grown = m.buf.len() - before;
            let granted = if grown > 0 {
                mem.grant(Pool::Messages, grown)
            } else {
                0
            };
            if granted < grown {
                m.buf.truncate(before + granted);
                m.cap = m.buf.len();
            }
            match r {
                Err(e) => {
                    self.msg = Some(m);
                    self.inflate_failed(e, em)?;
                    m = self.msg.take().expect("message put back above");
                }
                Ok(()) if !self.no_context_takeover() => self.keep_window(&m, mem, em)?,
                Ok(()) => {}
            }
        }
        if m.compressed && m.inflate_dead {
            // Whatever state the window is in, it no longer matches the sender's.
            self.drop_window(mem);
        }
        if let Some(i) = m.inflater.take() {
            i.done();
        }
        let truncated = m.len > m.buf.len() as u64 && m.incomplete.is_none();
        if truncated {
            let (len, kept) = (m.len, m.buf.len());
            let why = if m.cap < self.limits.max_message {
                "the buffer limit for unfinished messages (--max-buffer) was reached".to_string()
            } else {
                format!("--max-message is {}", self.limits.max_message)
            };
            self.violation(
                ViolationKind::MessageTooLarge,
                format!("message of {len} bytes; the first {kept} kept ({why})"),
                em,
            )?;
        }
        let view = MsgView {
            opcode: m.opcode,
            payload: &m.buf,
            len: m.len,
            wire_len: m.wire_len,
            compressed: m.compressed,
            frames: m.frames,
            truncated,
            incomplete: m.incomplete,
            missing: std::mem::take(&mut m.missing),
            resync: m.resync,
        };
        let r = self.emit_message(view, em);
        mem.refund(Pool::Messages, m.buf.len());
        mem.recycle(m.buf);
        r
    }

    /// Moves the compression window past a message that inflated: its output, as far as it
    /// is known, becomes what the next message may refer back to.
    fn keep_window(&mut self, m: &MsgState, mem: &mut Memory, em: &mut dyn Emit) -> io::Result<()> {
        let Some(inf) = m.inflater.as_ref() else {
            return Ok(());
        };
        let (t1, t2) = inf.tail();
        let discarded = inf.discarded();
        // Output between what the message kept and what was discarded is lost when the
        // memory budget cut the message short; the window is then unknown, unless what
        // followed fills it.
        let known =
            m.len == m.buf.len() as u64 + discarded || (t1.len() + t2.len()) >= self.window_max;
        let parts: [&[u8]; 3] = [&m.buf, t1, t2];
        let before = self.window.capacity();
        let need = self.window.needed_after(&parts, self.window_max);
        if !known || !mem.charge(Pool::Compression, need.saturating_sub(before)) {
            self.lose_history(mem);
            return em.emit(self.dir, EventKind::Notice(&Notice::HistoryDropped));
        }
        self.window.extend(&parts, self.window_max);
        let after = self.window.capacity();
        let charged = before.max(need);
        if after > charged {
            mem.force(Pool::Compression, after - charged);
        } else {
            mem.refund(Pool::Compression, charged - after);
        }
        Ok(())
    }

    fn emit_message(&mut self, v: MsgView<'_>, em: &mut dyn Emit) -> io::Result<()> {
        let mut payload = v.payload;
        let mut valid_utf8 = true;
        let mut text = None;
        let text_like = matches!(v.opcode, Opcode::Text | Opcode::Continuation);
        if text_like {
            // The one check of a text message's bytes (printers rely on it), so the SIMD one:
            // several times faster than std's on non-ASCII text.
            match simdutf8::compat::from_utf8(payload) {
                Ok(t) => text = Some(t),
                Err(e) if e.error_len().is_none() && (v.truncated || v.incomplete.is_some()) => {
                    // Cut in the middle of a character by a limit, not bad UTF-8.
                    payload = &payload[..e.valid_up_to()];
                    text = std::str::from_utf8(payload).ok();
                }
                Err(_) => {
                    valid_utf8 = false;
                    if v.opcode == Opcode::Text && v.incomplete.is_none() {
                        self.violation(
                            ViolationKind::InvalidUtf8,
                            "text message is not valid UTF-8".into(),
                            em,
                        )?;
                    }
                }
            }
        }
        let msg = Message {
            opcode: v.opcode,
            payload,
            len: v.len,
            wire_len: v.wire_len,
            compressed: v.compressed,
            frames: v.frames,
            truncated: v.truncated,
            incomplete: v.incomplete,
            missing: v.missing,
            resync: v.resync,
            valid_utf8,
            text: text.filter(|_| v.opcode == Opcode::Text),
            close_code: None,
            close_reason: None,
        };
        em.emit(self.dir, EventKind::Message(&msg))
    }

    // ---- resynchronisation ----

    fn hunt_feed(&mut self, data: &[u8], mem: &mut Memory, em: &mut dyn Emit) -> io::Result<()> {
        let mut h = self.hunt.take().expect("hunting");
        let at = self.offset;
        self.offset += data.len() as u64;
        // The hunt buffer draws on the memory shared by all connections.
        let granted = mem.grant(Pool::Hunt, data.len());
        let data = if granted < data.len() {
            // Refused: what is buffered can no longer be joined to what comes. Start over with
            // the newest bytes that fit; the rest counts as skipped.
            mem.refund(Pool::Hunt, h.buf.len());
            h.dropped += (h.buf.len() + data.len() - granted) as u64;
            h.buf.clear();
            h.starts.clear();
            h.scan = 0;
            h.start = at + (data.len() - granted) as u64;
            &data[data.len() - granted..]
        } else {
            data
        };
        if h.starts.len() < 4096 {
            h.starts.push(h.buf.len());
        }
        h.buf.extend_from_slice(data);
        loop {
            match self.scan(&mut h) {
                Some(pos) => {
                    let buf = std::mem::take(&mut h.buf);
                    // Bytes from `pos` are re-fed: rewind the offset to there.
                    self.offset = h.start + pos as u64;
                    self.accept_resync(&h, pos, em)?;
                    let r = self.feed(&buf[pos..], mem, em);
                    mem.refund(Pool::Hunt, buf.len());
                    return r;
                }
                None => {
                    if h.buf.len() > HUNT_MAX {
                        let cut = h.buf.len() - HUNT_MAX / 2;
                        h.buf.drain(..cut);
                        mem.refund(Pool::Hunt, cut);
                        h.starts.retain(|&p| p >= cut);
                        h.starts.iter_mut().for_each(|p| *p -= cut);
                        h.dropped += cut as u64;
                        h.start += cut as u64;
                        h.scan = h.scan.saturating_sub(cut);
                        continue;
                    }
                    self.hunt = Some(h);
                    return Ok(());
                }
            }
        }
    }

    /// Drops what a false resynchronisation started and hunts again from `data`.
    fn rehunt(&mut self, data: &[u8], mem: &mut Memory, em: &mut dyn Emit) -> io::Result<()> {
        self.frame = None;
        if let Some(m) = self.msg.take() {
            mem.refund(Pool::Messages, m.buf.len());
            if let Some(i) = m.inflater {
                i.done();
            }
        }
        self.hunt = Some(Box::new(Hunt {
            start: self.offset,
            ..Hunt::default()
        }));
        self.hunt_feed(data, mem, em)
    }

    fn accept_resync(&mut self, h: &Hunt, pos: usize, em: &mut dyn Emit) -> io::Result<()> {
        let skipped = h.dropped + pos as u64;
        self.hunt = None;
        self.offset = h.start + pos as u64;
        if skipped > 0 {
            em.emit(
                self.dir,
                EventKind::Notice(&Notice::Resync {
                    skipped,
                    offset: self.offset,
                }),
            )?;
        }
        self.resync_active = true;
        self.clean_frames = 0;
        self.next_is_resync = true;
        self.synced = true;
        Ok(())
    }

    /// Position of the first confirmed frame header in the hunt buffer. Candidates that need
    /// more bytes to decide do not stop the scan: a confirmed chain further on wins, and the
    /// next scan resumes at the first undecided one.
    fn scan(&self, h: &mut Hunt) -> Option<usize> {
        let mut first_undecided = None;
        let mut open: Vec<usize> = Vec::new();
        for i in h.scan..h.buf.len() {
            match self.candidate(&h.buf, i, &h.starts) {
                Candidate::Confirmed => {
                    // An earlier frame whose chain leads exactly here is part of the same
                    // evidence (a message that could not be judged alone, before one that can).
                    let earliest = open
                        .iter()
                        .copied()
                        .find(|&p| self.chains_to(&h.buf, p, i))
                        .unwrap_or(i);
                    return Some(earliest);
                }
                Candidate::Undecided | Candidate::Weak => {
                    first_undecided.get_or_insert(i);
                    if open.len() < 64 {
                        open.push(i);
                    }
                }
                Candidate::No => {}
            }
        }
        h.scan = first_undecided.unwrap_or(h.buf.len());
        None
    }

    /// Whether plausible frames, masked alike, lead from `from` exactly to `to`.
    fn chains_to(&self, buf: &[u8], from: usize, to: usize) -> bool {
        let mut at = from;
        let mut masked = None;
        let mut open = None;
        for _ in 0..6 {
            if at == to {
                return true;
            }
            let Some(h) = Header::parse(&buf[at..]) else {
                return false;
            };
            if !self.plausible(&h)
                || !sequence_makes_sense(&mut open, Opcode::from_u8(h.opcode), h.fin)
                || masked.is_some_and(|m| m != h.mask.is_some())
                || !content_plausible(&h, &buf[at + h.header_len as usize..])
            {
                return false;
            }
            masked = Some(h.mask.is_some());
            let end = at as u64 + h.header_len as u64 + h.payload_len;
            if end > to as u64 {
                return false;
            }
            at = end as usize;
        }
        at == to
    }

    fn best_unconfirmed(&self, h: &Hunt) -> Option<usize> {
        (h.scan..h.buf.len())
            .find(|&i| matches!(self.candidate(&h.buf, i, &h.starts), Candidate::Weak))
    }

    fn plausible(&self, h: &Header) -> bool {
        let op = Opcode::from_u8(h.opcode);
        if matches!(op, Opcode::Reserved(_)) || h.rsv & 0b011 != 0 || h.non_minimal {
            return false;
        }
        if h.rsv & 0b100 != 0
            && (!matches!(op, Opcode::Text | Opcode::Binary)
                || self.compression == Compression::Off)
        {
            return false;
        }
        if op.is_control() && (!h.fin || h.payload_len > 125) {
            return false;
        }
        if let Some(m) = self.expect_masked
            && m != h.mask.is_some()
        {
            return false;
        }
        h.payload_len <= PLAUSIBLE_FRAME
    }

    /// Judges a possible frame header at `buf[i..]`. Senders write a frame (or a few) per
    /// segment, so a true header starts a chain of plausible frames, all masked alike (one
    /// direction is one role, RFC 6455 5.1), each ending where a segment ends or the next
    /// frame begins. Evidence is a chain across two segment boundaries, or three frames to
    /// one: inside other protocols' bytes a header whose length lands exactly on a segment
    /// end is a matter of chance (about one small segment in a thousand), two in a row are
    /// not. Each header must also carry a payload that fits its opcode (UTF-8 text, a valid
    /// close code), and a chain may not start with an empty data frame (two zero bytes are a
    /// "frame" in any protocol).
    fn candidate(&self, buf: &[u8], i: usize, starts: &[usize]) -> Candidate {
        const CHAIN: usize = 6;
        let mut at = i;
        let mut masked = None;
        let mut frames = 0;
        let mut boundaries = 0;
        // Continuation frames (first byte 0x00 or 0x80, common in any binary protocol) are
        // no evidence alone: a chain must hold a frame with an opcode of its own.
        let mut opcoded = false;
        // Whether a fragmented message is open at this point of the chain (`None`: unknown,
        // the chain may start inside one).
        let mut open: Option<bool> = None;
        // The chain's first frame and where its payload starts: it may prove itself.
        let mut first: Option<(Header, usize)> = None;
        for _ in 0..CHAIN {
            let d = &buf[at..];
            let Some(h) = Header::parse(d) else {
                if d.is_empty()
                    || (d.len() < Header::MAX_LEN
                        && Header::needed(d.get(1).copied().unwrap_or(0)) > d.len())
                {
                    let op = Opcode::from_u8(d.first().copied().unwrap_or(0));
                    if matches!(op, Opcode::Reserved(_)) || d.first().is_some_and(|b| b & 0x30 != 0)
                    {
                        return Candidate::No;
                    }
                    return if boundaries > 0 && opcoded {
                        Candidate::Weak
                    } else {
                        Candidate::Undecided
                    };
                }
                return Candidate::No;
            };
            if !self.plausible(&h) || !content_plausible(&h, &d[h.header_len as usize..]) {
                // Also when a frame that ended on a boundary is followed by no frame: a chain
                // of one proves little.
                return Candidate::No;
            }
            if masked.is_some_and(|m| m != h.mask.is_some()) {
                return Candidate::No;
            }
            masked = Some(h.mask.is_some());
            let op = Opcode::from_u8(h.opcode);
            if frames == 0 && h.payload_len == 0 && !op.is_control() {
                return Candidate::No;
            }
            if !sequence_makes_sense(&mut open, op, h.fin) {
                return Candidate::No;
            }
            frames += 1;
            first.get_or_insert((h, at + h.header_len as usize));
            opcoded |= op != Opcode::Continuation;
            let end = at as u64 + h.header_len as u64 + h.payload_len;
            if end > buf.len() as u64 {
                return if boundaries > 0 && opcoded {
                    Candidate::Weak
                } else {
                    Candidate::Undecided
                };
            }
            let end = end as usize;
            if end == buf.len() || starts.binary_search(&end).is_ok() {
                boundaries += 1;
                let alone = || {
                    first.is_some_and(|(h, body)| {
                        reads_as_text(&h, &buf[body..]) || inflates_cleanly(&h, &buf[body..])
                    })
                };
                // A chain that starts inside a segment (where any offset may be tried) needs
                // one frame more: starting at a segment start is itself evidence.
                let at_start = starts.binary_search(&i).is_ok();
                let chained = if at_start {
                    boundaries >= 2 || frames >= 3
                } else {
                    boundaries >= 2 && frames >= 3
                };
                if opcoded && (chained || alone()) {
                    return Candidate::Confirmed;
                }
                if end == buf.len() {
                    // The next segment has not arrived: it decides.
                    return if opcoded {
                        Candidate::Weak
                    } else {
                        Candidate::Undecided
                    };
                }
            }
            at = end;
        }
        if boundaries > 0 && opcoded {
            Candidate::Weak
        } else {
            Candidate::No
        }
    }
}

/// Whether a frame with `op` and `fin` may follow in a chain where a fragmented message is
/// `open` (RFC 6455 5.4: continuations only inside a message, a new data frame only outside
/// one, control frames anywhere); moves `open` on.
fn sequence_makes_sense(open: &mut Option<bool>, op: Opcode, fin: bool) -> bool {
    match op {
        Opcode::Continuation => {
            if *open == Some(false) {
                return false;
            }
            *open = Some(!fin);
        }
        Opcode::Text | Opcode::Binary => {
            if *open == Some(true) {
                return false;
            }
            *open = Some(!fin);
        }
        _ => {}
    }
    true
}

/// A frame that is evidence on its own: an uncompressed text frame, final, whose payload (at
/// least 8 bytes, all of it captured here) is printable UTF-8 — random or binary bytes of that
/// length almost never are, and the header's length must also land on a segment end.
fn reads_as_text(h: &Header, payload: &[u8]) -> bool {
    if Opcode::from_u8(h.opcode) != Opcode::Text || h.rsv != 0 || !h.fin {
        return false;
    }
    if h.payload_len < 8 || (payload.len() as u64) < h.payload_len.min(64) {
        return false;
    }
    let n = h.payload_len.min(64) as usize;
    let mut p = [0u8; 64];
    p[..n].copy_from_slice(&payload[..n]);
    if let Some(k) = h.mask {
        apply_mask(&mut p[..n], k, 0);
    }
    let text = match std::str::from_utf8(&p[..n]) {
        Ok(t) => t,
        Err(e) if e.error_len().is_none() && e.valid_up_to() >= 8 => {
            std::str::from_utf8(&p[..e.valid_up_to()]).unwrap_or("")
        }
        Err(_) => return false,
    };
    text.chars()
        .all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'))
}

/// A compressed frame that is evidence on its own: final, all of it here, and its payload
/// inflates from an empty window without error to at least 8 bytes. Bytes that are not
/// DEFLATE fail within a few symbols (the first back-reference points before the start); a
/// real message that refers to history the capture lacks fails too, and is then confirmed by
/// the frames that follow it instead.
fn inflates_cleanly(h: &Header, payload: &[u8]) -> bool {
    use flate2::{Decompress, FlushDecompress};
    if h.rsv & 0b100 == 0 || !h.fin || (payload.len() as u64) < h.payload_len {
        return false;
    }
    let n = (h.payload_len as usize).min(4096);
    let mut p = payload[..n].to_vec();
    if let Some(k) = h.mask {
        apply_mask(&mut p, k, 0);
    }
    if n == h.payload_len as usize {
        p.extend_from_slice(&[0, 0, 0xff, 0xff]);
    }
    let mut z = Decompress::new(false);
    let mut out = vec![0u8; 4096];
    match z.decompress(&p, &mut out, FlushDecompress::Sync) {
        Ok(_) => z.total_out() >= 8,
        Err(_) => false,
    }
}

/// What the start of a candidate frame's payload must look like: text that is UTF-8 (when
/// uncompressed), a close code that may be sent.
fn content_plausible(h: &Header, payload: &[u8]) -> bool {
    let n = payload.len().min(h.payload_len.min(64) as usize);
    let mut p = [0u8; 64];
    p[..n].copy_from_slice(&payload[..n]);
    if let Some(k) = h.mask {
        apply_mask(&mut p[..n], k, 0);
    }
    let p = &p[..n];
    match Opcode::from_u8(h.opcode) {
        Opcode::Text if h.rsv & 0b100 == 0 => match std::str::from_utf8(p) {
            Ok(_) => true,
            Err(e) => e.error_len().is_none(),
        },
        Opcode::Close => match h.payload_len {
            0 => true,
            1 => false,
            _ => n < 2 || close_code_valid(u16::from_be_bytes([p[0], p[1]])),
        },
        _ => true,
    }
}

/// A finished message, before UTF-8 checking.
struct MsgView<'a> {
    opcode: Opcode,
    payload: &'a [u8],
    len: u64,
    wire_len: u64,
    compressed: bool,
    frames: u32,
    truncated: bool,
    incomplete: Option<Incomplete>,
    missing: Vec<(u64, u64)>,
    resync: bool,
}

fn append(m: &mut MsgState, plain: &[u8], limits: &Limits) -> Result<(), InflateError> {
    m.wire_len += plain.len() as u64;
    if m.compressed {
        if m.inflate_dead {
            return Ok(());
        }
        let Some(inf) = m.inflater.as_mut() else {
            return Ok(());
        };
        let mut out = Output {
            buf: &mut m.buf,
            keep: m.cap,
            produced: m.len,
            hard_limit: limits.max_inflate,
        };
        let r = inf.feed(plain, &mut out);
        m.len = out.produced;
        r
    } else {
        let room = m.cap.saturating_sub(m.buf.len());
        m.buf.extend_from_slice(&plain[..room.min(plain.len())]);
        m.len += plain.len() as u64;
        Ok(())
    }
}

/// RFC 6455 section 7.4: codes an endpoint may put on the wire.
fn close_code_valid(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::deflate::tests::Deflater;
    use proptest::prelude::*;

    #[derive(Debug, Clone, PartialEq)]
    struct M {
        op: Opcode,
        payload: Vec<u8>,
        compressed: bool,
        incomplete: Option<Incomplete>,
        resync: bool,
        close: Option<u16>,
    }

    #[derive(Default)]
    struct Rec {
        msgs: Vec<M>,
        violations: Vec<ViolationKind>,
        resyncs: Vec<u64>,
    }

    impl Emit for Rec {
        fn emit(&mut self, _dir: Dir, kind: EventKind<'_>) -> io::Result<()> {
            match kind {
                EventKind::Message(m) => self.msgs.push(M {
                    op: m.opcode,
                    payload: m.payload.to_vec(),
                    compressed: m.compressed,
                    incomplete: m.incomplete,
                    resync: m.resync,
                    close: m.close_code,
                }),
                EventKind::Violation(v) => self.violations.push(v.kind),
                EventKind::Notice(Notice::Resync { skipped, .. }) => self.resyncs.push(*skipped),
                _ => {}
            }
            Ok(())
        }
        fn wants_frames(&self) -> bool {
            false
        }
    }

    fn frame(fin: bool, rsv: u8, op: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
        let h = Header {
            fin,
            rsv,
            opcode: op,
            mask,
            payload_len: payload.len() as u64,
            header_len: 0,
            non_minimal: false,
        };
        let mut v = h.encode();
        let mut p = payload.to_vec();
        if let Some(k) = mask {
            apply_mask(&mut p, k, 0);
        }
        v.extend_from_slice(&p);
        v
    }

    fn client() -> WsDecoder {
        WsDecoder::new(Dir::C2S, Some(true), Compression::Off, Limits::default())
    }

    const K: Option<[u8; 4]> = Some([0xa1, 0xb2, 0xc3, 0xd4]);

    #[test]
    fn fragmented_text_with_ping_between_fragments() {
        let mut mem = Memory::default();
        let mut s = frame(false, 0, 1, K, b"Hello, ");
        s.extend(frame(true, 0, 9, K, b"hb"));
        s.extend(frame(false, 0, 0, K, b"fragmented "));
        s.extend(frame(true, 0, 0, K, b"world"));
        s.extend(frame(true, 0, 8, K, &[0x03, 0xe8, b'o', b'k']));
        let mut d = client();
        let mut r = Rec::default();
        d.feed(&s, &mut mem, &mut r).unwrap();
        assert_eq!(r.msgs.len(), 3);
        assert_eq!(
            (r.msgs[0].op, &r.msgs[0].payload[..]),
            (Opcode::Ping, &b"hb"[..])
        );
        assert_eq!(r.msgs[1].payload, b"Hello, fragmented world");
        assert_eq!(r.msgs[2].close, Some(1000));
        assert!(r.violations.is_empty());
    }

    #[test]
    fn masking_by_direction_is_checked() {
        let mut mem = Memory::default();
        let mut r = Rec::default();
        client()
            .feed(&frame(true, 0, 1, None, b"x"), &mut mem, &mut r)
            .unwrap();
        let mut server = WsDecoder::new(Dir::S2C, Some(false), Compression::Off, Limits::default());
        server
            .feed(&frame(true, 0, 1, K, b"y"), &mut mem, &mut r)
            .unwrap();
        assert_eq!(
            r.violations,
            vec![
                ViolationKind::UnmaskedClientFrame,
                ViolationKind::MaskedServerFrame
            ]
        );
        // Decoded all the same.
        assert_eq!(r.msgs.len(), 2);
        assert_eq!(r.msgs[1].payload, b"y");
    }

    #[test]
    fn huge_declared_length_costs_nothing() {
        let mut mem = Memory::default();
        let mut s = vec![0x82, 0xff];
        s.extend_from_slice(&(1u64 << 63).to_be_bytes());
        s.extend_from_slice(&[1, 2, 3, 4]);
        s.extend_from_slice(&[0u8; 1000]);
        let mut d = client();
        let mut r = Rec::default();
        d.feed(&s, &mut mem, &mut r).unwrap();
        d.finish(&mut mem, &mut r).unwrap();
        assert!(r.violations.contains(&ViolationKind::LengthMsbSet));
        assert_eq!(r.msgs.len(), 1);
        assert_eq!(r.msgs[0].payload.len(), 1000);
        assert_eq!(r.msgs[0].incomplete, Some(Incomplete::EndOfCapture));
    }

    #[test]
    fn gap_inside_a_frame_keeps_sync() {
        let mut mem = Memory::default();
        let f1 = frame(true, 0, 1, K, b"0123456789");
        let f2 = frame(true, 0, 1, K, b"after");
        let mut d = client();
        let mut r = Rec::default();
        d.feed(&f1[..8], &mut mem, &mut r).unwrap();
        d.gap(4, &mut mem, &mut r).unwrap();
        d.feed(&f1[12..], &mut mem, &mut r).unwrap();
        d.feed(&f2, &mut mem, &mut r).unwrap();
        assert_eq!(r.msgs[0].payload, b"016789");
        assert_eq!(r.msgs[0].incomplete, Some(Incomplete::Gap));
        assert_eq!(r.msgs[1].payload, b"after");
        assert!(!r.msgs[1].resync);
    }

    #[test]
    fn gap_across_a_boundary_resynchronises_and_marks() {
        let mut mem = Memory::default();
        let mut s = frame(true, 0, 1, K, b"first message");
        let second = frame(true, 0, 1, K, b"second message");
        let third = frame(true, 0, 1, K, b"third message");
        let fourth = frame(true, 0, 1, K, b"fourth message");
        let mut d = client();
        let mut r = Rec::default();
        d.feed(&s, &mut mem, &mut r).unwrap();
        d.gap(5, &mut mem, &mut r).unwrap();
        s = second[5..].to_vec();
        s.extend(&third);
        s.extend(&fourth);
        s.extend(frame(true, 0, 1, K, b"fifth"));
        d.feed(&s, &mut mem, &mut r).unwrap();
        let texts: Vec<&[u8]> = r.msgs.iter().map(|m| &m.payload[..]).collect();
        assert_eq!(
            texts,
            vec![
                &b"first message"[..],
                b"third message",
                b"fourth message",
                b"fifth"
            ]
        );
        assert_eq!(r.resyncs, vec![second.len() as u64 - 5]);
        assert!(r.msgs[1].resync);
        assert!(!r.msgs[3].resync, "trusted again after clean frames");
    }

    #[test]
    fn mid_stream_compressed_without_history_is_never_garbage() {
        let mut mem = Memory::default();
        let mut z = Deflater::new(true);
        let early = z.message(b"the same words, the same words, the same words");
        let late = z.message(b"the same words again");
        let _ = early;
        let fresh = z.message(b"zq9 unrelated xk7 bytes");
        let mut s = frame(true, 4, 1, None, &late);
        s.extend(frame(true, 4, 1, None, &fresh));
        let mut d = WsDecoder::mid_stream(Dir::S2C, Some(false), Limits::default(), 0);
        let mut r = Rec::default();
        d.feed(&s, &mut mem, &mut r).unwrap();
        d.finish(&mut mem, &mut r).unwrap();
        assert_eq!(r.msgs[0].incomplete, Some(Incomplete::InflateFailed));
        assert!(
            r.violations.is_empty(),
            "expected with missing history: {:?}",
            r.violations
        );
        // Whatever inflated is a prefix of the real text, never invented bytes.
        assert!(b"the same words again".starts_with(&r.msgs[0].payload));
    }

    #[test]
    fn hunting_draws_on_the_shared_buffer_and_gives_it_back() {
        let mut d = WsDecoder::mid_stream(Dir::S2C, Some(false), Limits::default(), 0);
        let mut t = Rec::default();
        let mut mem = Memory::new(100);
        // 300 bytes that never form a frame chain: the hunt may hold at most 100 of them.
        let junk: Vec<u8> = (0..300u32).map(|i| (i * 7 % 251) as u8 | 0x30).collect();
        for c in junk.chunks(50) {
            d.feed(c, &mut mem, &mut t).unwrap();
        }
        assert!(mem.used() <= 100);
        d.feed(
            &frame(true, 0, 1, None, b"after the junk"),
            &mut mem,
            &mut t,
        )
        .unwrap();
        d.finish(&mut mem, &mut t).unwrap();
        assert_eq!(mem.used(), 0, "every byte given back");
        assert_eq!(t.msgs.last().unwrap().payload, b"after the junk");
    }

    #[test]
    fn shared_buffer_limit_truncates_and_is_given_back() {
        let body = vec![b'x'; 5000];
        let mut s = frame(false, 0, 1, K, &body[..3000]);
        s.extend(frame(true, 0, 0, K, &body[3000..]));
        s.extend(frame(true, 0, 1, K, b"small"));
        let mut d = client();
        let mut t = Rec::default();
        let mut mem = Memory::new(1000);
        d.feed(&s, &mut mem, &mut t).unwrap();
        assert_eq!(t.msgs[0].payload.len(), 1000);
        assert!(t.violations.contains(&ViolationKind::MessageTooLarge));
        assert_eq!(t.msgs[1].payload, b"small");
        assert_eq!(mem.used(), 0, "every byte given back");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Any chunking of a websocket byte stream yields the same messages, and compressed
        /// and uncompressed encodings of the same messages decode equal.
        #[test]
        fn chunking_and_compression_do_not_matter(
            msgs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..8),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..20),
            fragment in 1usize..200,
            takeover in any::<bool>(),
        ) {
            let mut plain = Vec::new();
            let mut packed = Vec::new();
            let mut z = Deflater::new(takeover);
            for m in &msgs {
                // Plain: fragmented every `fragment` bytes.
                let parts: Vec<&[u8]> = if m.is_empty() { vec![&m[..]] } else { m.chunks(fragment).collect() };
                for (i, p) in parts.iter().enumerate() {
                    plain.extend(frame(i + 1 == parts.len(), 0, if i == 0 { 2 } else { 0 }, K, p));
                }
                packed.extend(frame(true, 4, 2, K, &z.message(m)));
            }
            let params = DeflateParams { client_no_context_takeover: !takeover, ..DeflateParams::default() };
            for (stream, comp) in [(&plain, Compression::Off), (&packed, Compression::Deflate(params))] {
                let mut points: Vec<usize> = cuts.iter().map(|c| c.index(stream.len())).collect();
                points.push(0);
                points.push(stream.len());
                points.sort_unstable();
                let mut d = WsDecoder::new(Dir::C2S, Some(true), comp, Limits::default());
                let mut r = Rec::default();
                let mut mem = Memory::new(1 << 30);
                for w in points.windows(2) {
                    d.feed(&stream[w[0]..w[1]], &mut mem, &mut r).unwrap();
                }
                d.release(&mut mem);
                prop_assert_eq!(mem.used(), 0);
                let got: Vec<Vec<u8>> = r.msgs.iter().map(|m| m.payload.clone()).collect();
                prop_assert_eq!(&got, &msgs);
                prop_assert!(r.violations.is_empty());
                prop_assert!(r.msgs.iter().all(|m| m.incomplete.is_none() && !m.resync));
            }
        }
    }
}
