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
    /// A retransmission carried bytes that differ from the ones first delivered.
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
                if self.ooo_bytes > budget.per_stream || budget.used > budget.max {
                    self.force(budget, GapReason::BufferLimit, out);
                }
            }
        }
        self.release_fin(budget, out);
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
        if let Some(old) = self.ooo.insert(
            start,
            Pending {
                data: data.to_vec(),
                declared,
            },
        ) {
            self.ooo_bytes -= old.data.len();
            budget.used -= old.data.len();
        }
        self.ooo_bytes += data.len();
        budget.used += data.len();
    }

    fn drop_below_next(&mut self, budget: &mut Budget) {
        // Segments wholly before the delivery point can never be delivered.
        while let Some((&k, p)) = self.ooo.iter().next() {
            if k + p.declared > self.next {
                break;
            }
            self.ooo_bytes -= p.data.len();
            budget.used -= p.data.len();
            self.ooo.remove(&k);
        }
    }

    fn drain(&mut self, budget: &mut Budget, out: &mut dyn FnMut(Chunk<'_>)) {
        while let Some(entry) = self.ooo.first_entry() {
            if *entry.key() > self.next {
                break;
            }
            let (start, p) = entry.remove_entry();
            self.ooo_bytes -= p.data.len();
            budget.used -= p.data.len();
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
        let oldest = self.next.saturating_sub(HISTORY as u64);
        let lo = start.max(oldest);
        let hi = (start + bytes.len() as u64).min(self.next);
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
