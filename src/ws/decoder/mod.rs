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

mod checks;
mod message;
mod resync;

use message::MsgView;
use resync::Hunt;

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
    /// permessage-deflate (RFC 7692) was negotiated with these parameters: RSV1 marks a
    /// compressed message, and the window size comes from this direction's
    /// `*_max_window_bits`.
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

/// A control frame's payload as it arrives: kept up to `--max-message` (the bytes past 125,
/// which RFC 6455 5.5 forbids, charged to the ledger), its true length, and whether a hole
/// fell inside it.
#[derive(Default)]
struct Ctrl {
    buf: Vec<u8>,
    len: u64,
    gap: bool,
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

/// Decodes the frames (RFC 6455 5.2) and messages of one direction of one connection.
///
/// Feed it the direction's reassembled bytes in order ([`feed`](Self::feed)), report holes
/// ([`gap`](Self::gap)) and the end ([`finish`](Self::finish)); it emits frames, messages,
/// violations and notices through an [`Emit`] and charges what it buffers to the [`Memory`]
/// ledger. Call [`release`](Self::release) before dropping it so the ledger is refunded.
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
    /// The control frame being read (RFC 6455 5.5), boxed like `frame`: most of the time
    /// there is none.
    ctrl: Option<Box<Ctrl>>,
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

impl WsDecoder {
    /// A decoder for a stream that starts at a frame boundary (right after the upgrade
    /// response or request), at stream offset 0.
    ///
    /// `expect_masked` is `Some(true)` for the client's direction, `Some(false)` for the
    /// server's (RFC 6455 5.1), `None` while the roles are unknown; a frame that breaks it is
    /// a violation. `compression` is what the handshake negotiated.
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
            ctrl: None,
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
            mem.refund(Pool::Hunt, h.charged());
        }
        if let Some(m) = self.msg.take() {
            mem.refund(Pool::Messages, m.buf.len());
            if let Some(i) = m.inflater {
                i.done();
            }
        }
        self.frame = None;
        self.drop_window(mem);
        // What an oversized control frame holds past 125 bytes was charged.
        if let Some(c) = self.ctrl.take() {
            mem.refund(Pool::Messages, c.buf.len().saturating_sub(125));
        }
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
            h.dropped += h.buf.len() as u64;
            h.start_over(mem);
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
                let c = self.ctrl.get_or_insert_with(Box::default);
                c.len += len;
                c.gap = true;
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
        // The hole swallowed a frame boundary.
        self.boundary_lost(mem, em)
    }

    /// Bytes were lost and how many is not known (inside TLS: the plaintext of records that
    /// were not captured). No frame boundary after it can be trusted: what was in progress
    /// ends cut by a gap and the decoder hunts for the next header. Offsets go on counting
    /// the bytes delivered.
    pub fn lost(&mut self, mem: &mut Memory, em: &mut dyn Emit) -> io::Result<()> {
        if self.hunt.is_some() {
            return self.gap(0, mem, em);
        }
        self.boundary_lost(mem, em)
    }

    /// What was in progress is reported as it is, and the decoder hunts for the next header.
    fn boundary_lost(&mut self, mem: &mut Memory, em: &mut dyn Emit) -> io::Result<()> {
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
        self.finish_as(Incomplete::EndOfCapture, mem, em)
    }

    /// `finish`, a message cut short labelled with what ended the stream.
    pub fn finish_as(
        &mut self,
        why: Incomplete,
        mem: &mut Memory,
        em: &mut dyn Emit,
    ) -> io::Result<()> {
        // A candidate that could not be confirmed is the best there is now. Feeding from it
        // may start a new hunt further on (a false chain breaks); each round starts later.
        while let Some(mut h) = self.hunt.take() {
            let pos = self.best_unconfirmed(&h);
            let buf = std::mem::take(&mut h.buf);
            h.forget_candidates(mem);
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
                m.incomplete.get_or_insert(why);
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

    // ---- resynchronisation ----
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
    fn oversized_close_keeps_its_code_and_reason() {
        // RFC 6455 5.5 allows 125 bytes; this close has 2 + 300, split across feeds.
        let mut mem = Memory::default();
        let mut body = vec![0x03, 0xe8];
        body.extend(std::iter::repeat_n(b'C', 300));
        let s = frame(true, 0, 8, K, &body);
        let mut d = client();
        let mut r = Rec::default();
        for part in s.chunks(97) {
            d.feed(part, &mut mem, &mut r).unwrap();
        }
        assert_eq!(r.violations, vec![ViolationKind::ControlFrameTooLong]);
        assert_eq!(r.msgs.len(), 1);
        assert_eq!(r.msgs[0].close, Some(1000));
        assert_eq!(r.msgs[0].payload, body, "all of it, not cut at 125");
        assert_eq!(r.msgs[0].incomplete, None);
        assert!(mem.peak() >= 302 - 125, "the bytes past 125 were charged");
        assert_eq!(mem.used(), 0, "and given back");
        d.release(&mut mem);
        assert_eq!(mem.used(), 0);
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

    /// The hunt's cost is linear in the bytes fed: a mid-stream capture whose every segment
    /// starts with a header claiming 64 MiB (each an undecidable candidate) judges each
    /// position a bounded number of times, where rescanning from the oldest candidate on
    /// every segment judged each position once per later segment (quadratic).
    #[test]
    fn hunting_judges_each_position_a_bounded_number_of_times() {
        let mut d = WsDecoder::mid_stream(Dir::S2C, None, Limits::default(), 0);
        let mut t = Rec::default();
        let mut mem = Memory::default();
        let mut seg = vec![0x81, 127];
        seg.extend_from_slice(&0x3ff_ffffu64.to_be_bytes());
        seg.resize(100, b'x');
        resync::JUDGED.with(|j| j.set(0));
        let n = 3000;
        for _ in 0..n {
            d.feed(&seg, &mut mem, &mut t).unwrap();
        }
        let judged = resync::JUDGED.with(|j| j.get());
        assert!(
            judged <= 2 * 100 * n,
            "{judged} judgements for {} bytes",
            100 * n
        );
        d.finish(&mut mem, &mut t).unwrap();
        d.release(&mut mem);
        assert_eq!(mem.used(), 0);
    }

    /// A real stream after the hunt's junk is still found, and every open candidate's charge
    /// is given back.
    #[test]
    fn hunting_after_undecidable_candidates_still_finds_frames() {
        let mut d = WsDecoder::mid_stream(Dir::S2C, None, Limits::default(), 0);
        let mut t = Rec::default();
        let mut mem = Memory::default();
        let mut seg = vec![0x81, 127];
        seg.extend_from_slice(&0x3ff_ffffu64.to_be_bytes());
        seg.resize(100, b'x');
        for _ in 0..50 {
            d.feed(&seg, &mut mem, &mut t).unwrap();
        }
        for k in 0..4 {
            let text = format!("message number {k} after the junk");
            d.feed(&frame(true, 0, 1, None, text.as_bytes()), &mut mem, &mut t)
                .unwrap();
        }
        d.finish(&mut mem, &mut t).unwrap();
        let texts: Vec<_> = t.msgs.iter().map(|m| m.payload.clone()).collect();
        assert!(
            texts.contains(&b"message number 3 after the junk".to_vec()),
            "{:?}",
            texts
                .iter()
                .map(|p| String::from_utf8_lossy(p))
                .collect::<Vec<_>>()
        );
        d.release(&mut mem);
        assert_eq!(mem.used(), 0);
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
