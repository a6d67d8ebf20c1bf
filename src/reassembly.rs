//! One direction of a TCP connection turned back into a byte stream.
//!
//! Positions are `u64` stream offsets (offset 0 = first byte after the SYN, or the first byte
//! seen when the capture began mid-connection); 32-bit sequence numbers are mapped onto them
//! relative to the next expected offset, so wrap-around is invisible above this module.
//! In-order data — the common case — is handed on straight from the packet, never copied.
//!
//! Memory: out-of-order segments are copied and charged to [`Pool::Reorder`]; delivered bytes
//! the peer has not acknowledged yet are kept (up to [`HISTORY`]) to compare retransmissions
//! with, charged to [`Pool::Retransmit`] and freed as soon as the peer acknowledges them, so
//! an idle connection keeps none.

use crate::event::GapReason;
use crate::memory::{Memory, Pool};
use std::collections::{BTreeMap, VecDeque};

/// What the stream hands to the layer above, in order; `at` is the stream offset of the
/// chunk's first byte.
#[derive(Debug, PartialEq, Eq)]
pub enum Chunk<'a> {
    /// In-order bytes. Each one starts where a TCP segment's new bytes start (resynchronisation
    /// relies on that: senders start frames at segment boundaries).
    Data {
        /// Stream offset of `bytes[0]`.
        at: u64,
        /// The bytes, borrowed from the packet or from the out-of-order buffer.
        bytes: &'a [u8],
    },
    /// Bytes that will never arrive.
    Gap {
        /// Stream offset of the first missing byte.
        at: u64,
        /// How many bytes are missing.
        len: u64,
        /// Why they will not arrive.
        reason: GapReason,
    },
    /// The sender's FIN, after its last byte.
    Fin {
        /// Stream offset just past the last byte: the length of the stream.
        at: u64,
    },
    /// Not data: a retransmission carried bytes that differ from the ones first delivered,
    /// somewhere in `at..at + len` (the range compared).
    Differs {
        /// Stream offset where the compared range starts.
        at: u64,
        /// Length of the compared range in bytes.
        len: u64,
    },
}

/// Most unacknowledged delivered bytes remembered to check retransmissions against.
pub const HISTORY: usize = 16 * 1024;

/// What one buffered segment costs beyond its bytes (B-tree slot, `Vec` header, allocator
/// rounding), charged to the ledger so that a flood of tiny (or snaplen-empty) out-of-order
/// segments is bounded by memory, not by payload bytes.
const SEGMENT_COST: usize = 128;

fn cost(p: &Pending) -> usize {
    p.data.len() + SEGMENT_COST
}

/// How a stream's offset 0 was chosen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Base {
    #[default]
    Unknown,
    /// From a segment without payload: a keep-alive probe sits one below the real next byte,
    /// so the first data may correct it by one.
    Weak(u32),
    Known(u32),
}

/// One direction of a connection: maps its sequence numbers to stream offsets, holds the
/// out-of-order segments and the retransmission-compare history, and delivers [`Chunk`]s.
/// A new stream allocates nothing.
#[derive(Default)]
pub struct Stream {
    /// Sequence number of stream offset 0.
    base: Base,
    /// The initial sequence number of this direction's SYN; `None` while no SYN was seen (a
    /// connection the capture joined mid-way).
    pub isn: Option<u32>,
    /// Next offset to deliver.
    next: u64,
    ooo: Reorder,
    ooo_bytes: usize,
    fin_at: Option<u64>,
    fin_delivered: bool,
    /// Delivered bytes not yet acknowledged: `hist[0]` is offset `hist_start`. Only offsets
    /// delivered as data since the last gap; empty (and unallocated) once all is acknowledged.
    hist: VecDeque<u8>,
    hist_start: u64,
}

struct Pending {
    data: Vec<u8>,
    /// Declared length; longer than `data` for a packet cut by snaplen.
    declared: u64,
}

/// Out-of-order segments by stream offset. Boxed, and only while there are some: most
/// streams of a busy server never hold one, and every connection has two streams.
// Boxed on purpose: the inline field is what every stream pays.
#[allow(clippy::box_collection)]
#[derive(Default)]
struct Reorder(Option<Box<BTreeMap<u64, Pending>>>);

impl Reorder {
    fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(|m| m.is_empty())
    }
    fn first_key(&self) -> Option<u64> {
        self.0.as_ref()?.keys().next().copied()
    }
    fn first(&self) -> Option<(&u64, &Pending)> {
        self.0.as_ref()?.iter().next()
    }
    fn get(&self, k: &u64) -> Option<&Pending> {
        self.0.as_ref()?.get(k)
    }
    fn insert(&mut self, k: u64, p: Pending) -> Option<Pending> {
        self.0.get_or_insert_with(Box::default).insert(k, p)
    }
    fn remove(&mut self, k: &u64) -> Option<Pending> {
        let m = self.0.as_mut()?;
        let p = m.remove(k);
        if m.is_empty() {
            self.0 = None;
        }
        p
    }
    /// Takes the first segment if it starts at or before `upto`.
    fn pop_first_upto(&mut self, upto: u64) -> Option<(u64, Pending)> {
        let m = self.0.as_mut()?;
        let e = m.first_entry()?;
        if *e.key() > upto {
            return None;
        }
        let r = e.remove_entry();
        if m.is_empty() {
            self.0 = None;
        }
        Some(r)
    }
    fn clear(&mut self) {
        self.0 = None;
    }
    /// Takes the segments at offsets `at` and beyond.
    fn split_off(&mut self, at: &u64) -> BTreeMap<u64, Pending> {
        let Some(m) = self.0.as_mut() else {
            return BTreeMap::new();
        };
        let beyond = m.split_off(at);
        if m.is_empty() {
            self.0 = None;
        }
        beyond
    }
}

impl Stream {
    /// Marks the SYN: data starts at `isn + 1`.
    pub fn syn(&mut self, isn: u32) {
        if !matches!(self.base, Base::Known(_)) || self.next == 0 {
            self.isn = Some(isn);
            self.base = Base::Known(isn.wrapping_add(1));
        }
    }

    /// The peer acknowledged up to `ack` before this direction's first segment was seen:
    /// the receiver's view says where this stream continues (a keep-alive probe, one below,
    /// is then no data).
    pub fn peer_expects(&mut self, ack: u32) {
        if !matches!(self.base, Base::Known(_)) && self.next == 0 && self.ooo.is_empty() {
            self.base = Base::Known(ack);
        }
    }

    /// A segment without payload: its sequence number is where data continues, unless it is
    /// a keep-alive probe (one below), which is why the first data segment may move the base
    /// by one.
    pub fn empty_segment(&mut self, seq: u32) {
        if self.base == Base::Unknown {
            self.base = Base::Weak(seq);
        }
    }

    /// Stream offset of the next byte to deliver: how many bytes (gaps included) have been
    /// handed on.
    pub fn next_offset(&self) -> u64 {
        self.next
    }
    /// Whether a sequence number has been tied to offset 0 yet (a SYN, an acknowledgment from
    /// the peer, any segment of this direction).
    pub fn has_base(&self) -> bool {
        self.base != Base::Unknown
    }
    /// Whether the sender's FIN has been delivered: nothing more will come in this direction.
    pub fn is_finished(&self) -> bool {
        self.fin_delivered
    }
    /// Memory held by out-of-order segments: their bytes plus a fixed 128-byte overhead each
    /// (what is charged to [`Pool::Reorder`]).
    pub fn buffered(&self) -> usize {
        self.ooo_bytes
    }
    /// Memory held to compare retransmissions.
    pub fn history_capacity(&self) -> usize {
        self.hist.capacity()
    }

    /// The sequence number the next in-order byte will carry, when known.
    pub fn next_seq(&self) -> Option<u32> {
        match self.base {
            Base::Known(b) => Some(b.wrapping_add(self.next as u32)),
            _ => None,
        }
    }

    /// Sequence number to stream offset, choosing the offset nearest the delivery point.
    /// Negative when the sequence number lies before the stream's start.
    fn offset_of(&self, base: u32, seq: u32) -> i64 {
        let at_next = base.wrapping_add(self.next as u32);
        self.next as i64 + seq.wrapping_sub(at_next) as i32 as i64
    }

    /// The relative sequence number of `seq`, tcpdump style, when the ISN is known.
    pub fn relative(&self, seq: u32) -> Option<u32> {
        self.isn.map(|i| seq.wrapping_sub(i))
    }

    /// Takes one segment's payload (`declared` bytes on the wire, `data` captured) and its
    /// FIN flag; delivers whatever is now in order. `max_ooo` bounds this direction's
    /// out-of-order bytes; all directions' together are bounded by `mem`.
    #[allow(clippy::too_many_arguments)]
    pub fn segment(
        &mut self,
        seq: u32,
        data: &[u8],
        declared: u32,
        fin: bool,
        mem: &mut Memory,
        max_ooo: usize,
        out: &mut dyn FnMut(Chunk<'_>, &mut Memory),
    ) {
        let base = match self.base {
            Base::Known(b) => b,
            // Data one past a keep-alive probe: the probe was not data.
            Base::Weak(w) if seq == w.wrapping_add(1) && declared > 0 => seq,
            Base::Weak(w) => w,
            Base::Unknown => seq,
        };
        self.base = Base::Known(base);
        let mut start = self.offset_of(base, seq);
        let mut data = data;
        let mut declared = declared as u64;
        if start < 0 {
            // Bytes before the stream began (e.g. data on a SYN we treat as offset 0).
            let cut = (-start) as u64;
            if cut >= declared {
                return;
            }
            let c = (cut as usize).min(data.len());
            data = &data[c..];
            declared -= cut;
            start = 0;
        }
        let start = start as u64;
        if let Some(f) = self.fin_at {
            // The stream ends at its FIN: bytes beyond it belong to nothing (found by fuzzing:
            // once the FIN was delivered, they were buffered and forced out as a gap after
            // it; before, a segment reaching past the FIN was delivered whole, and the FIN
            // then came after bytes that followed it). Retransmissions of earlier bytes are
            // still compared.
            if start >= f {
                return;
            }
            declared = declared.min(f - start);
            data = &data[..data.len().min(declared as usize)];
        }
        let end = start + declared;
        // A FIN behind what was delivered (the stream went on past it, e.g. across a forced
        // gap) is an old segment's, as a receiver takes it (RFC 9293 3.10.7.4): not the end.
        if fin && self.fin_at.is_none() && end >= self.next {
            self.fin_at = Some(end);
            // Segments buffered beyond the FIN, before it was known, belong to nothing.
            let beyond = self.ooo.split_off(&end);
            for p in beyond.values() {
                self.ooo_bytes -= cost(p);
                mem.refund(Pool::Reorder, cost(p));
            }
        }
        if declared > 0 {
            if start <= self.next {
                self.deliver(start, data, declared, mem, out);
                self.drain(mem, out);
            } else {
                self.buffer(start, data, declared, mem);
                // One force releases one run of segments; with several holes buffered, the
                // stream could stay over its limit (found by fuzzing): force until under.
                while (self.ooo_bytes > max_ooo || mem.over()) && !self.ooo.is_empty() {
                    self.force(mem, GapReason::BufferLimit, out);
                }
            }
        }
        self.release_fin(mem, out);
    }

    /// Frees the buffers of a stream that is over; sequence numbers stay known.
    pub fn release(&mut self, mem: &mut Memory) {
        mem.refund(Pool::Reorder, self.ooo_bytes);
        self.ooo = Reorder::default();
        self.ooo_bytes = 0;
        self.forget_history(mem);
    }

    fn forget_history(&mut self, mem: &mut Memory) {
        mem.refund(Pool::Retransmit, self.hist.capacity());
        self.hist = VecDeque::new();
        self.hist_start = self.next;
    }

    /// The peer acknowledged everything before `ack`: bytes below it that were never seen
    /// were lost by the capture, not by the network, and will not come again; bytes kept to
    /// compare retransmissions with are no longer needed.
    pub fn acked(
        &mut self,
        ack: u32,
        mem: &mut Memory,
        out: &mut dyn FnMut(Chunk<'_>, &mut Memory),
    ) {
        let Base::Known(base) = self.base else {
            self.peer_expects(ack);
            return;
        };
        let mut upto = self.offset_of(base, ack);
        if let Some(f) = self.fin_at {
            upto = upto.min(f as i64);
        }
        if upto > self.hist_start as i64 && !self.hist.is_empty() {
            let drop = ((upto as u64 - self.hist_start) as usize).min(self.hist.len());
            if drop == self.hist.len() {
                self.forget_history(mem);
                self.hist_start = upto as u64;
            } else {
                self.hist.drain(..drop);
                self.hist_start += drop as u64;
            }
        }
        if upto <= self.next as i64 || upto - self.next as i64 > i32::MAX as i64 {
            return;
        }
        let upto = upto as u64;
        let hole_end = self.ooo.first_key().map_or(upto, |k| k.min(upto));
        if hole_end > self.next {
            out(
                Chunk::Gap {
                    at: self.next,
                    len: hole_end - self.next,
                    reason: GapReason::NotCaptured,
                },
                mem,
            );
            self.next = hole_end;
            self.drop_below_next(mem);
            self.drain(mem, out);
            self.release_fin(mem, out);
        }
    }

    /// The connection is over (RST, end of capture, eviction): whatever is buffered is
    /// delivered with explicit gaps.
    pub fn flush(&mut self, mem: &mut Memory, out: &mut dyn FnMut(Chunk<'_>, &mut Memory)) {
        while !self.ooo.is_empty() {
            self.force(mem, GapReason::Unfilled, out);
        }
        if let Some(f) = self.fin_at
            && f > self.next
        {
            out(
                Chunk::Gap {
                    at: self.next,
                    len: f - self.next,
                    reason: GapReason::Unfilled,
                },
                mem,
            );
            self.next = f;
        }
        self.release_fin(mem, out);
    }

    fn release_fin(&mut self, mem: &mut Memory, out: &mut dyn FnMut(Chunk<'_>, &mut Memory)) {
        if let Some(f) = self.fin_at
            && !self.fin_delivered
            && self.next >= f
        {
            self.fin_delivered = true;
            mem.refund(Pool::Reorder, self.ooo_bytes);
            self.ooo_bytes = 0;
            self.ooo.clear();
            out(Chunk::Fin { at: f }, mem);
        }
    }

    /// Skips to the first buffered segment, reporting the hole, and delivers from there.
    fn force(
        &mut self,
        mem: &mut Memory,
        reason: GapReason,
        out: &mut dyn FnMut(Chunk<'_>, &mut Memory),
    ) {
        if let Some(first) = self.ooo.first_key()
            && first > self.next
        {
            out(
                Chunk::Gap {
                    at: self.next,
                    len: first - self.next,
                    reason,
                },
                mem,
            );
            self.next = first;
        }
        self.drop_below_next(mem);
        self.drain(mem, out);
    }

    fn buffer(&mut self, start: u64, data: &[u8], declared: u64, mem: &mut Memory) {
        if let Some(p) = self.ooo.get(&start)
            && p.declared >= declared
        {
            return;
        }
        let p = Pending {
            data: data.to_vec(),
            declared,
        };
        let c = cost(&p);
        // Charged even past the limit: the caller forces the stream forward right after,
        // which frees it again (a refused segment would be a hole with nothing to show).
        mem.force(Pool::Reorder, c);
        if let Some(old) = self.ooo.insert(start, p) {
            self.ooo_bytes -= cost(&old);
            mem.refund(Pool::Reorder, cost(&old));
        }
        self.ooo_bytes += c;
    }

    fn drop_below_next(&mut self, mem: &mut Memory) {
        // Segments wholly before the delivery point can never be delivered.
        while let Some((&k, p)) = self.ooo.first() {
            if k + p.declared > self.next {
                break;
            }
            self.ooo_bytes -= cost(p);
            mem.refund(Pool::Reorder, cost(p));
            self.ooo.remove(&k);
        }
    }

    fn drain(&mut self, mem: &mut Memory, out: &mut dyn FnMut(Chunk<'_>, &mut Memory)) {
        while let Some((start, p)) = self.ooo.pop_first_upto(self.next) {
            self.ooo_bytes -= cost(&p);
            mem.refund(Pool::Reorder, cost(&p));
            self.deliver(start, &p.data, p.declared, mem, out);
        }
    }

    /// Delivers the part of a segment at `start` that lies at or beyond `next`.
    fn deliver(
        &mut self,
        start: u64,
        data: &[u8],
        declared: u64,
        mem: &mut Memory,
        out: &mut dyn FnMut(Chunk<'_>, &mut Memory),
    ) {
        // Nothing is delivered past the FIN (a segment buffered across it).
        let declared = match self.fin_at {
            Some(f) if start + declared > f => f.saturating_sub(start),
            _ => declared,
        };
        let data = &data[..data.len().min(declared as usize)];
        let end = start + declared;
        if end <= self.next {
            self.compare(start, data, mem, out);
            return;
        }
        let skip = (self.next - start) as usize;
        if skip > 0 {
            self.compare(start, &data[..skip.min(data.len())], mem, out);
        }
        if skip < data.len() {
            let fresh = &data[skip..];
            self.remember(self.next, fresh, mem);
            out(
                Chunk::Data {
                    at: self.next,
                    bytes: fresh,
                },
                mem,
            );
            self.next += fresh.len() as u64;
        }
        if end > self.next {
            // Declared but not captured: snaplen cut this packet.
            out(
                Chunk::Gap {
                    at: self.next,
                    len: end - self.next,
                    reason: GapReason::Snaplen,
                },
                mem,
            );
            self.next = end;
        }
    }

    fn remember(&mut self, at: u64, bytes: &[u8], mem: &mut Memory) {
        let end = at + bytes.len() as u64;
        if at != self.hist_start + self.hist.len() as u64 {
            // A gap lies behind: what is kept from before it is not these offsets.
            self.hist.clear();
        }
        // The newest HISTORY bytes are kept: retransmissions come within a round trip.
        let tail = &bytes[bytes.len().saturating_sub(HISTORY)..];
        let excess = (self.hist.len() + tail.len()).saturating_sub(HISTORY);
        self.hist.drain(..excess);
        let need = self.hist.len() + tail.len();
        self.hist_start = end - need as u64;
        let before = self.hist.capacity();
        if need > before {
            // Grown to what is needed, charged first; refused, the bytes are not kept and
            // retransmissions of them are not compared.
            let cap = need.next_power_of_two().clamp(256, HISTORY);
            if !mem.charge(Pool::Retransmit, cap - before) {
                self.forget_history(mem);
                self.hist_start = end;
                return;
            }
            self.hist.reserve_exact(cap - self.hist.len());
            // The allocator may give more than asked: charge what was really given.
            mem.force(Pool::Retransmit, self.hist.capacity().saturating_sub(cap));
        }
        self.hist.extend(tail);
    }

    /// Checks retransmitted bytes at `start` against what was delivered, where remembered.
    fn compare(
        &mut self,
        start: u64,
        bytes: &[u8],
        mem: &mut Memory,
        out: &mut dyn FnMut(Chunk<'_>, &mut Memory),
    ) {
        if self.hist.is_empty() || bytes.is_empty() {
            return;
        }
        let hist_end = self.hist_start + self.hist.len() as u64;
        let lo = start.max(self.hist_start);
        let hi = (start + bytes.len() as u64).min(hist_end);
        if lo >= hi {
            return;
        }
        let differs = (lo..hi).any(|off| {
            self.hist[(off - self.hist_start) as usize] != bytes[(off - start) as usize]
        });
        if differs {
            out(
                Chunk::Differs {
                    at: lo,
                    len: hi - lo,
                },
                mem,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Default, PartialEq)]
    struct Got {
        bytes: Vec<u8>,
        gaps: Vec<(u64, GapReason)>,
        fin: bool,
        differs: Vec<(u64, u64)>,
    }

    fn budget() -> Memory {
        Memory::new(1 << 30)
    }

    const MAX_OOO: usize = 1 << 30;

    fn record(g: &mut Got) -> impl FnMut(Chunk<'_>, &mut Memory) + '_ {
        |c, _| match c {
            Chunk::Data { bytes, .. } => g.bytes.extend_from_slice(bytes),
            Chunk::Gap { len, reason, .. } => g.gaps.push((len, reason)),
            Chunk::Fin { .. } => g.fin = true,
            Chunk::Differs { at, len } => g.differs.push((at, len)),
        }
    }

    fn feed(s: &mut Stream, b: &mut Memory, seq: u32, data: &[u8], fin: bool, got: &mut Got) {
        s.segment(
            seq,
            data,
            data.len() as u32,
            fin,
            b,
            MAX_OOO,
            &mut record(got),
        );
    }

    #[test]
    fn out_of_order_released_in_order_across_sequence_wrap() {
        let isn = u32::MAX - 5;
        let mut s = Stream::default();
        s.syn(isn);
        let (mut b, mut g) = (budget(), Got::default());
        let base = isn.wrapping_add(1);
        feed(
            &mut s,
            &mut b,
            base.wrapping_add(10),
            b"KLMNO",
            true,
            &mut g,
        );
        feed(
            &mut s,
            &mut b,
            base.wrapping_add(5),
            b"FGHIJ",
            false,
            &mut g,
        );
        assert!(g.bytes.is_empty());
        feed(&mut s, &mut b, base, b"ABCDE", false, &mut g);
        assert_eq!(g.bytes, b"ABCDEFGHIJKLMNO");
        assert!(g.fin);
        assert_eq!(b.used_by(Pool::Reorder), 0);
    }

    /// A FIN seen before the bytes in front of it: a later segment that reaches past the
    /// FIN delivers only up to it, and the FIN comes right after the last byte (found by
    /// the reassembly fuzz target: the FIN came 516 bytes after bytes that followed it).
    #[test]
    fn nothing_is_delivered_past_a_fin_not_yet_delivered() {
        let mut s = Stream::default();
        s.syn(0);
        let (mut b, mut g) = (budget(), Got::default());
        feed(&mut s, &mut b, 6, b"fgh", true, &mut g);
        assert!(g.bytes.is_empty());
        let mut at_fin = None;
        s.segment(
            1,
            b"abcdefghijklmnop",
            16,
            false,
            &mut b,
            MAX_OOO,
            &mut |c, _| match c {
                Chunk::Data { bytes, .. } => g.bytes.extend_from_slice(bytes),
                Chunk::Fin { at } => at_fin = Some(at),
                _ => {}
            },
        );
        assert_eq!(g.bytes, b"abcdefgh");
        assert_eq!(at_fin, Some(8));
        assert_eq!(s.next_offset(), 8);
        assert_eq!(b.used_by(Pool::Reorder), 0);
    }

    /// A FIN whose sequence number lies behind what was already delivered (past a forced
    /// gap) is an old segment's: it does not end the stream behind its own bytes (found by
    /// the reassembly fuzz target: a FIN at 512 after bytes up to 1,028).
    #[test]
    fn a_fin_behind_the_delivered_bytes_ends_nothing() {
        let mut s = Stream::default();
        s.syn(0);
        let (mut b, mut g) = (budget(), Got::default());
        // A hole, then bytes past it, released by the buffer limit as a gap.
        s.segment(1025, b"late", 4, false, &mut b, 0, &mut record(&mut g));
        assert_eq!(s.next_offset(), 1028);
        feed(&mut s, &mut b, 500, b"old", true, &mut g);
        assert!(!g.fin, "{g:?}");
        feed(&mut s, &mut b, 1029, b"end", true, &mut g);
        assert!(g.fin);
        assert_eq!(s.next_offset(), 1031);
    }

    /// Segments buffered beyond a FIN before the FIN was known are dropped when it comes:
    /// a forced gap must not carry the stream past its FIN (found by the fuzz target).
    #[test]
    fn segments_buffered_past_a_later_fin_are_dropped() {
        let mut s = Stream::default();
        s.syn(0);
        let (mut b, mut g) = (budget(), Got::default());
        feed(&mut s, &mut b, 100, b"beyond", false, &mut g);
        feed(&mut s, &mut b, 10, b"end", true, &mut g);
        assert_eq!(b.used_by(Pool::Reorder), s.buffered());
        s.flush(&mut b, &mut record(&mut g));
        assert!(g.fin);
        assert_eq!(s.next_offset(), 12);
        assert!(g.bytes.ends_with(b"end"), "{g:?}");
        assert_eq!(b.used_by(Pool::Reorder), 0);
    }

    #[test]
    fn duplicates_dropped_and_differing_retransmission_reported() {
        let mut s = Stream::default();
        s.syn(1000);
        let (mut b, mut g) = (budget(), Got::default());
        feed(&mut s, &mut b, 1001, b"hello", false, &mut g);
        feed(&mut s, &mut b, 1001, b"hello", false, &mut g);
        assert!(g.differs.is_empty());
        feed(&mut s, &mut b, 1003, b"LLo world", false, &mut g);
        assert_eq!(g.bytes, b"hello world");
        assert_eq!(g.differs, vec![(2, 3)]);
    }

    #[test]
    fn ack_beyond_a_hole_means_the_capture_lost_it() {
        let mut s = Stream::default();
        s.syn(0);
        let (mut b, mut g) = (budget(), Got::default());
        feed(&mut s, &mut b, 1, b"abc", false, &mut g);
        feed(&mut s, &mut b, 10, b"xyz", false, &mut g);
        s.acked(13, &mut b, &mut record(&mut g));
        assert_eq!(g.bytes, b"abcxyz");
        assert_eq!(g.gaps, vec![(6, GapReason::NotCaptured)]);
    }

    #[test]
    fn buffer_limit_forces_a_gap() {
        let mut s = Stream::default();
        s.syn(0);
        let mut b = budget();
        let mut g = Got::default();
        for (seq, d) in [(101, &b"12345"[..]), (106, b"6789")] {
            s.segment(
                seq,
                d,
                d.len() as u32,
                false,
                &mut b,
                8,
                &mut record(&mut g),
            );
        }
        assert_eq!(g.gaps, vec![(100, GapReason::BufferLimit)]);
        assert_eq!(g.bytes, b"123456789");
        assert_eq!(b.used_by(Pool::Reorder), 0);
    }

    #[test]
    fn snaplen_cut_segment_is_a_gap_not_misread() {
        let mut s = Stream::default();
        s.syn(0);
        let (mut b, mut g) = (budget(), Got::default());
        s.segment(1, b"abc", 10, false, &mut b, MAX_OOO, &mut record(&mut g));
        feed(&mut s, &mut b, 11, b"next", false, &mut g);
        assert_eq!(g.bytes, b"abcnext");
        assert_eq!(g.gaps, vec![(7, GapReason::Snaplen)]);
    }

    #[test]
    fn flush_reports_unfilled_holes() {
        let mut s = Stream::default();
        s.syn(0);
        let (mut b, mut g) = (budget(), Got::default());
        feed(&mut s, &mut b, 5, b"efg", true, &mut g);
        s.flush(&mut b, &mut record(&mut g));
        assert_eq!(g.gaps, vec![(4, GapReason::Unfilled)]);
        assert_eq!(g.bytes, b"efg");
        assert!(g.fin);
    }

    #[test]
    fn acknowledged_bytes_are_forgotten_and_retransmissions_of_them_not_compared() {
        let mut s = Stream::default();
        s.syn(0);
        let (mut b, mut g) = (budget(), Got::default());
        feed(&mut s, &mut b, 1, b"hello", false, &mut g);
        assert!(b.used_by(Pool::Retransmit) > 0);
        s.acked(4, &mut b, &mut record(&mut g));
        assert!(
            b.used_by(Pool::Retransmit) > 0,
            "two bytes still unacknowledged"
        );
        s.acked(6, &mut b, &mut record(&mut g));
        assert_eq!(
            b.used_by(Pool::Retransmit),
            0,
            "all acknowledged: nothing kept"
        );
        assert_eq!(s.history_capacity(), 0);
        // A keep-alive probe: one garbage byte at the last acknowledged offset - 1.
        feed(&mut s, &mut b, 5, b"\0", false, &mut g);
        assert!(g.differs.is_empty());
        feed(&mut s, &mut b, 6, b" world", false, &mut g);
        assert_eq!(g.bytes, b"hello world");
    }

    #[test]
    fn mid_stream_keepalive_first_is_not_data() {
        // The peer's ACK came first: it says where this direction continues.
        let mut s = Stream::default();
        let (mut b, mut g) = (budget(), Got::default());
        s.acked(1000, &mut b, &mut record(&mut g));
        feed(&mut s, &mut b, 999, b"\0", false, &mut g);
        feed(&mut s, &mut b, 1000, b"data", false, &mut g);
        assert_eq!((g.bytes.as_slice(), g.gaps.len()), (&b"data"[..], 0));
        // A zero-length probe first (Linux sends those): the data one above corrects it.
        let mut s = Stream::default();
        let mut g = Got::default();
        s.empty_segment(4999);
        feed(&mut s, &mut b, 5000, b"more", false, &mut g);
        s.acked(5004, &mut b, &mut record(&mut g));
        assert_eq!((g.bytes.as_slice(), g.gaps.len()), (&b"more"[..], 0));
    }

    #[test]
    fn history_refused_by_the_ledger_is_not_kept() {
        let mut s = Stream::default();
        s.syn(0);
        let mut b = Memory::new(100);
        let mut g = Got::default();
        feed(&mut s, &mut b, 1, b"abc", false, &mut g);
        assert_eq!(b.used(), 0, "256 bytes of history do not fit in 100");
        feed(&mut s, &mut b, 1, b"xyz", false, &mut g);
        assert!(g.differs.is_empty(), "nothing kept, nothing compared");
        assert_eq!(g.bytes, b"abc");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// Any splitting, permutation, duplication and overlap of a stream's segments
        /// reassembles to the original bytes, with no gap, wherever the ISN sits.
        #[test]
        fn any_segmentation_reassembles(
            data in proptest::collection::vec(any::<u8>(), 1..2000),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..30),
            extra in proptest::collection::vec((any::<prop::sample::Index>(), 1usize..200), 0..10),
            order in any::<prop::sample::Index>(),
            isn in any::<u32>(),
        ) {
            let mut points: Vec<usize> = cuts.iter().map(|i| i.index(data.len())).collect();
            points.push(0);
            points.push(data.len());
            points.sort_unstable();
            points.dedup();
            let mut segs: Vec<(usize, usize)> = points.windows(2).map(|w| (w[0], w[1])).collect();
            // Overlapping and duplicate segments.
            for (at, len) in &extra {
                let s = at.index(data.len());
                segs.push((s, (s + len).min(data.len())));
            }
            // A deterministic shuffle driven by `order`.
            let n = segs.len();
            let mut k = order.index(usize::MAX / 2) | 1;
            for i in (1..n).rev() {
                k = k.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                segs.swap(i, (k >> 33) % (i + 1));
            }
            let mut s = Stream::default();
            s.syn(isn);
            let (mut b, mut g) = (budget(), Got::default());
            for (a, e) in segs {
                let fin = e == data.len();
                feed(&mut s, &mut b, isn.wrapping_add(1).wrapping_add(a as u32), &data[a..e], fin, &mut g);
                prop_assert_eq!(b.used_by(Pool::Retransmit), s.history_capacity(), "after {}..{}", a, e);
            }
            prop_assert_eq!(&g.bytes, &data);
            prop_assert!(g.gaps.is_empty());
            prop_assert!(g.fin);
            prop_assert_eq!(b.used_by(Pool::Reorder), 0);
            s.release(&mut b);
            prop_assert_eq!(b.used(), 0, "{:?}", Pool::ALL.map(|p| b.used_by(p)));
            prop_assert!(g.differs.is_empty());
        }
    }
}
