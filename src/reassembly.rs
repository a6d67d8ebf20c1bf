//! One direction of a TCP connection turned back into a byte stream.
//!
//! Positions are `u64` stream offsets (offset 0 = first byte after the SYN, or the first byte
//! seen when the capture began mid-connection); 32-bit sequence numbers are mapped onto them
//! relative to the next expected offset, so wrap-around is invisible above this module.
//! In-order data — the common case — is handed on straight from the packet, never copied.

use crate::event::GapReason;
use std::collections::BTreeMap;

/// What the stream hands to the layer above, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum Chunk<'a> {
    Data(&'a [u8]),
    /// Bytes that will never arrive.
    Gap {
        len: u64,
        reason: GapReason,
    },
    /// The sender's FIN, after its last byte.
    Fin,
}

/// Something the stream noticed about the segments it was given.
#[derive(Debug, PartialEq, Eq)]
pub enum Anomaly {
    /// A retransmission carried bytes that differ from the ones first delivered, somewhere in
    /// `offset..offset + len` (the range compared).
    RetransmissionDiffers { offset: u64, len: u64 },
}

/// Shared accounting of out-of-order bytes across all streams.
#[derive(Debug)]
pub struct Budget {
    pub used: usize,
    pub max: usize,
    /// Limit for one direction of one connection.
    pub per_stream: usize,
}

/// How many delivered bytes are remembered to check retransmissions against.
const HISTORY: usize = 16 * 1024;

/// What one buffered segment costs beyond its bytes (B-tree slot, `Vec` header, allocator
/// rounding), charged to the budget so that a flood of tiny (or snaplen-empty) out-of-order
/// segments is bounded by memory, not by payload bytes.
const SEGMENT_COST: usize = 128;

fn cost(p: &Pending) -> usize {
    p.data.len() + SEGMENT_COST
}

#[derive(Default)]
pub struct Stream {
    /// Sequence number of stream offset 0; `None` until the first segment.
    base: Option<u32>,
    pub isn: Option<u32>,
    /// Next offset to deliver.
    next: u64,
    ooo: BTreeMap<u64, Pending>,
    ooo_bytes: usize,
    fin_at: Option<u64>,
    fin_delivered: bool,
    /// Ring of the last delivered bytes: `hist[i % HISTORY]` holds offset i for the last
    /// `HISTORY` offsets.
    hist: Vec<u8>,
    /// `hist_start..hist_end`: the stream offsets whose bytes were delivered contiguously
    /// (no gap since); only those can be compared with a retransmission.
    hist_start: u64,
    hist_end: u64,
    pub anomalies: Vec<Anomaly>,
}

struct Pending {
    data: Vec<u8>,
    /// Declared length; longer than `data` for a packet cut by snaplen.
    declared: u64,
}

impl Stream {
    /// Marks the SYN: data starts at `isn + 1`.
    pub fn syn(&mut self, isn: u32) {
        if self.base.is_none() || self.next == 0 {
            self.isn = Some(isn);
            self.base = Some(isn.wrapping_add(1));
        }
    }

    pub fn next_offset(&self) -> u64 {
        self.next
    }
    pub fn has_base(&self) -> bool {
        self.base.is_some()
    }
    pub fn is_finished(&self) -> bool {
        self.fin_delivered
    }
    /// Memory held by out-of-order segments: their bytes plus [`SEGMENT_COST`] each.
    pub fn buffered(&self) -> usize {
        self.ooo_bytes
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
    /// FIN flag; delivers whatever is now in order.
    pub fn segment(
        &mut self,
        seq: u32,
        data: &[u8],
        declared: u32,
        fin: bool,
        budget: &mut Budget,
        out: &mut dyn FnMut(Chunk<'_>),
    ) {
        let base = *self.base.get_or_insert(seq);
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
        if self.fin_delivered
            && let Some(f) = self.fin_at
        {
            // The stream has ended: bytes beyond its FIN belong to nothing (found by fuzzing:
            // they were buffered and forced out as a gap after the FIN). Retransmissions of
            // earlier bytes are still compared.
            if start >= f {
                return;
            }
            declared = declared.min(f - start);
            data = &data[..data.len().min(declared as usize)];
        }
        let end = start + declared;
        if fin && self.fin_at.is_none() {
            self.fin_at = Some(end);
        }
        if declared > 0 {
            if start <= self.next {
                self.deliver(start, data, declared, out);
                self.drain(budget, out);
            } else {
                self.buffer(start, data, declared, budget);
                if budget.used > budget.max {
                    self.force(budget, GapReason::BufferLimit, out);
                }
                // One force releases one run of segments; with several holes buffered, the
                // stream could stay over its limit (found by fuzzing): force until under.
                while self.ooo_bytes > budget.per_stream && !self.ooo.is_empty() {
                    self.force(budget, GapReason::BufferLimit, out);
                }
            }
        }
        self.release_fin(budget, out);
    }

    /// Frees the buffers of a stream that is over; sequence numbers stay known.
    pub fn release(&mut self) {
        self.ooo = BTreeMap::new();
        self.ooo_bytes = 0;
        self.hist = Vec::new();
    }

    /// The peer acknowledged everything before `ack`: bytes below it that were never seen
    /// were lost by the capture, not by the network, and will not come again.
    pub fn acked(&mut self, ack: u32, budget: &mut Budget, out: &mut dyn FnMut(Chunk<'_>)) {
        let Some(base) = self.base else { return };
        let mut upto = self.offset_of(base, ack);
        if let Some(f) = self.fin_at {
            upto = upto.min(f as i64);
        }
        if upto <= self.next as i64 || upto - self.next as i64 > i32::MAX as i64 {
            return;
        }
        let upto = upto as u64;
        let hole_end = self.ooo.keys().next().map_or(upto, |&k| k.min(upto));
        if hole_end > self.next {
            out(Chunk::Gap {
                len: hole_end - self.next,
                reason: GapReason::NotCaptured,
            });
            self.next = hole_end;
            self.drop_below_next(budget);
            self.drain(budget, out);
            self.release_fin(budget, out);
        }
    }

    /// The connection is over (RST, end of capture, eviction): whatever is buffered is
    /// delivered with explicit gaps.
    pub fn flush(&mut self, budget: &mut Budget, out: &mut dyn FnMut(Chunk<'_>)) {
        while !self.ooo.is_empty() {
            self.force(budget, GapReason::Unfilled, out);
        }
        if let Some(f) = self.fin_at
            && f > self.next
        {
            out(Chunk::Gap {
                len: f - self.next,
                reason: GapReason::Unfilled,
            });
            self.next = f;
        }
        self.release_fin(budget, out);
    }

    fn release_fin(&mut self, budget: &mut Budget, out: &mut dyn FnMut(Chunk<'_>)) {
        if let Some(f) = self.fin_at
            && !self.fin_delivered
            && self.next >= f
        {
            self.fin_delivered = true;
            budget.used -= self.ooo_bytes;
            self.ooo_bytes = 0;
            self.ooo.clear();
            out(Chunk::Fin);
        }
    }

    /// Skips to the first buffered segment, reporting the hole, and delivers from there.
    fn force(&mut self, budget: &mut Budget, reason: GapReason, out: &mut dyn FnMut(Chunk<'_>)) {
        if let Some(&first) = self.ooo.keys().next()
            && first > self.next
        {
            out(Chunk::Gap {
                len: first - self.next,
                reason,
            });
            self.next = first;
        }
        self.drop_below_next(budget);
        self.drain(budget, out);
    }

    fn buffer(&mut self, start: u64, data: &[u8], declared: u64, budget: &mut Budget) {
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
        if let Some(old) = self.ooo.insert(start, p) {
            self.ooo_bytes -= cost(&old);
            budget.used -= cost(&old);
        }
        self.ooo_bytes += c;
        budget.used += c;
    }

    fn drop_below_next(&mut self, budget: &mut Budget) {
        // Segments wholly before the delivery point can never be delivered.
        while let Some((&k, p)) = self.ooo.iter().next() {
            if k + p.declared > self.next {
                break;
            }
            self.ooo_bytes -= cost(p);
            budget.used -= cost(p);
            self.ooo.remove(&k);
        }
    }

    fn drain(&mut self, budget: &mut Budget, out: &mut dyn FnMut(Chunk<'_>)) {
        while let Some(entry) = self.ooo.first_entry() {
            if *entry.key() > self.next {
                break;
            }
            let (start, p) = entry.remove_entry();
            self.ooo_bytes -= cost(&p);
            budget.used -= cost(&p);
            self.deliver(start, &p.data, p.declared, out);
        }
    }

    /// Delivers the part of a segment at `start` that lies at or beyond `next`.
    fn deliver(&mut self, start: u64, data: &[u8], declared: u64, out: &mut dyn FnMut(Chunk<'_>)) {
        let end = start + declared;
        if end <= self.next {
            self.compare(start, data);
            return;
        }
        let skip = (self.next - start) as usize;
        if skip > 0 {
            self.compare(start, &data[..skip.min(data.len())]);
        }
        if skip < data.len() {
            let fresh = &data[skip..];
            self.remember(self.next, fresh);
            out(Chunk::Data(fresh));
            self.next += fresh.len() as u64;
        }
        if end > self.next {
            // Declared but not captured: snaplen cut this packet.
            out(Chunk::Gap {
                len: end - self.next,
                reason: GapReason::Snaplen,
            });
            self.next = end;
        }
    }

    fn remember(&mut self, at: u64, bytes: &[u8]) {
        if self.hist.is_empty() {
            self.hist = vec![0; HISTORY];
        }
        if at != self.hist_end {
            // A gap lies behind: what the ring holds from before it is not these offsets.
            self.hist_start = at;
        }
        self.hist_end = at + bytes.len() as u64;
        let tail = if bytes.len() > HISTORY {
            &bytes[bytes.len() - HISTORY..]
        } else {
            bytes
        };
        let mut pos = ((at + (bytes.len() - tail.len()) as u64) % HISTORY as u64) as usize;
        let mut rest = tail;
        while !rest.is_empty() {
            let n = rest.len().min(HISTORY - pos);
            self.hist[pos..pos + n].copy_from_slice(&rest[..n]);
            rest = &rest[n..];
            pos = (pos + n) % HISTORY;
        }
    }

    /// Checks retransmitted bytes at `start` against what was delivered, where remembered.
    fn compare(&mut self, start: u64, bytes: &[u8]) {
        if self.hist.is_empty() || bytes.is_empty() {
            return;
        }
        // Only offsets delivered as data since the last gap (found with adversarial captures:
        // segments from inside a gap were compared with unrelated ring contents).
        let oldest = self
            .hist_end
            .saturating_sub(HISTORY as u64)
            .max(self.hist_start);
        let lo = start.max(oldest);
        let hi = (start + bytes.len() as u64).min(self.hist_end);
        if lo >= hi {
            return;
        }
        let differs = (lo..hi)
            .any(|off| self.hist[(off % HISTORY as u64) as usize] != bytes[(off - start) as usize]);
        if differs {
            self.anomalies.push(Anomaly::RetransmissionDiffers {
                offset: lo,
                len: hi - lo,
            });
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
    }

    fn budget() -> Budget {
        Budget {
            used: 0,
            max: 1 << 30,
            per_stream: 1 << 30,
        }
    }

    fn feed(s: &mut Stream, b: &mut Budget, seq: u32, data: &[u8], fin: bool, got: &mut Got) {
        s.segment(seq, data, data.len() as u32, fin, b, &mut |c| match c {
            Chunk::Data(d) => got.bytes.extend_from_slice(d),
            Chunk::Gap { len, reason } => got.gaps.push((len, reason)),
            Chunk::Fin => got.fin = true,
        });
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
        assert_eq!(b.used, 0);
    }

    #[test]
    fn duplicates_dropped_and_differing_retransmission_reported() {
        let mut s = Stream::default();
        s.syn(1000);
        let (mut b, mut g) = (budget(), Got::default());
        feed(&mut s, &mut b, 1001, b"hello", false, &mut g);
        feed(&mut s, &mut b, 1001, b"hello", false, &mut g);
        assert!(s.anomalies.is_empty());
        feed(&mut s, &mut b, 1003, b"LLo world", false, &mut g);
        assert_eq!(g.bytes, b"hello world");
        assert_eq!(
            s.anomalies,
            vec![Anomaly::RetransmissionDiffers { offset: 2, len: 3 }]
        );
    }

    #[test]
    fn ack_beyond_a_hole_means_the_capture_lost_it() {
        let mut s = Stream::default();
        s.syn(0);
        let (mut b, mut g) = (budget(), Got::default());
        feed(&mut s, &mut b, 1, b"abc", false, &mut g);
        feed(&mut s, &mut b, 10, b"xyz", false, &mut g);
        s.acked(13, &mut b, &mut |c| match c {
            Chunk::Data(d) => g.bytes.extend_from_slice(d),
            Chunk::Gap { len, reason } => g.gaps.push((len, reason)),
            Chunk::Fin => g.fin = true,
        });
        assert_eq!(g.bytes, b"abcxyz");
        assert_eq!(g.gaps, vec![(6, GapReason::NotCaptured)]);
    }

    #[test]
    fn buffer_limit_forces_a_gap() {
        let mut s = Stream::default();
        s.syn(0);
        let mut b = Budget {
            used: 0,
            max: 1 << 30,
            per_stream: 8,
        };
        let mut g = Got::default();
        feed(&mut s, &mut b, 101, b"12345", false, &mut g);
        feed(&mut s, &mut b, 106, b"6789", false, &mut g);
        assert_eq!(g.gaps, vec![(100, GapReason::BufferLimit)]);
        assert_eq!(g.bytes, b"123456789");
        assert_eq!(b.used, 0);
    }

    #[test]
    fn snaplen_cut_segment_is_a_gap_not_misread() {
        let mut s = Stream::default();
        s.syn(0);
        let (mut b, mut g) = (budget(), Got::default());
        s.segment(1, b"abc", 10, false, &mut b, &mut |c| match c {
            Chunk::Data(d) => g.bytes.extend_from_slice(d),
            Chunk::Gap { len, reason } => g.gaps.push((len, reason)),
            Chunk::Fin => g.fin = true,
        });
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
        s.flush(&mut b, &mut |c| match c {
            Chunk::Data(d) => g.bytes.extend_from_slice(d),
            Chunk::Gap { len, reason } => g.gaps.push((len, reason)),
            Chunk::Fin => g.fin = true,
        });
        assert_eq!(g.gaps, vec![(4, GapReason::Unfilled)]);
        assert_eq!(g.bytes, b"efg");
        assert!(g.fin);
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
            }
            prop_assert_eq!(&g.bytes, &data);
            prop_assert!(g.gaps.is_empty());
            prop_assert!(g.fin);
            prop_assert_eq!(b.used, 0);
            prop_assert!(s.anomalies.is_empty());
        }
    }
}
