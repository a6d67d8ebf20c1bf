//! Resynchronisation: after a gap, or when the capture began mid-connection, the hunt for
//! the next frame boundary, and the evidence a candidate needs before it is believed (chains
//! that end on segment boundaries, consistent masks, a sequence RFC 6455 5.4 allows).

use super::checks::close_code_valid;
use super::*;
use crate::event::{Emit, EventKind, Opcode};
use crate::memory::Memory;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::io;

impl WsDecoder {
    pub(super) fn hunt_feed(
        &mut self,
        data: &[u8],
        mem: &mut Memory,
        em: &mut dyn Emit,
    ) -> io::Result<()> {
        let mut h = self.hunt.take().expect("hunting");
        let at = self.offset;
        self.offset += data.len() as u64;
        // The hunt buffer draws on the memory shared by all connections.
        let granted = mem.grant(Pool::Hunt, data.len());
        let data = if granted < data.len() {
            // Refused: what is buffered can no longer be joined to what comes. Start over with
            // the newest bytes that fit; the rest counts as skipped.
            h.dropped += (h.buf.len() + data.len() - granted) as u64;
            h.start_over(mem);
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
            match self.scan(&mut h, mem) {
                Some(pos) => {
                    let buf = std::mem::take(&mut h.buf);
                    h.forget_candidates(mem);
                    // Bytes from `pos` are re-fed: rewind the offset to there.
                    self.offset = h.start + pos as u64;
                    self.accept_resync(&h, pos, em)?;
                    let r = self.feed(&buf[pos..], mem, em);
                    mem.refund(Pool::Hunt, buf.len());
                    return r;
                }
                None => {
                    if h.buf.len() > HUNT_MAX {
                        h.cut_front(h.buf.len() - HUNT_MAX / 2, mem);
                        continue;
                    }
                    self.hunt = Some(h);
                    return Ok(());
                }
            }
        }
    }

    /// Drops what a false resynchronisation started and hunts again from `data`.
    pub(super) fn rehunt(
        &mut self,
        data: &[u8],
        mem: &mut Memory,
        em: &mut dyn Emit,
    ) -> io::Result<()> {
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

    pub(super) fn accept_resync(
        &mut self,
        h: &Hunt,
        pos: usize,
        em: &mut dyn Emit,
    ) -> io::Result<()> {
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
    /// more bytes to decide do not stop the scan: a confirmed chain further on wins.
    ///
    /// Linear in the bytes fed: each position is judged when it arrives, and again only when
    /// the bytes its verdict waits for have arrived (the end of the frame it reaches into, or
    /// of a header cut short: see [`WsDecoder::candidate`]). Rescanning every undecided
    /// position on every segment was quadratic: 12,000 segments each starting with a header
    /// that claims 64 MiB rescanned up to 256 KiB per segment (20 s for a 1.9 MB capture).
    pub(super) fn scan(&self, h: &mut Hunt, mem: &mut Memory) -> Option<usize> {
        let len = h.buf.len();
        let mut again = Vec::new();
        while let Some(&Reverse((need, pos))) = h.due.peek() {
            if need > len {
                break;
            }
            h.due.pop();
            if h.open.get(&pos) == Some(&need) {
                again.push(pos);
            }
        }
        again.sort_unstable();
        // The positions judged before (all below `h.scan`) come first, then the new ones.
        let fresh = h.scan..len;
        h.scan = len;
        for i in again.into_iter().chain(fresh) {
            let (verdict, need) = self.candidate(&h.buf, i, &h.starts);
            match verdict {
                Candidate::Confirmed => {
                    // An earlier frame whose chain leads exactly here is part of the same
                    // evidence (a message that could not be judged alone, before one that can).
                    let earliest = h
                        .open
                        .range(..i)
                        .map(|(&p, _)| p)
                        .take(64)
                        .find(|&p| self.chains_to(&h.buf, p, i))
                        .unwrap_or(i);
                    return Some(earliest);
                }
                Candidate::Undecided | Candidate::Weak => h.keep(i, need, mem),
                Candidate::No => h.drop_candidate(i, mem),
            }
        }
        None
    }

    /// Whether plausible frames, masked alike, lead from `from` exactly to `to`.
    pub(super) fn chains_to(&self, buf: &[u8], from: usize, to: usize) -> bool {
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

    /// The first candidate still open that ended on a boundary (every other position was
    /// ruled out for good).
    pub(super) fn best_unconfirmed(&self, h: &Hunt) -> Option<usize> {
        h.open
            .keys()
            .copied()
            .find(|&i| matches!(self.candidate(&h.buf, i, &h.starts).0, Candidate::Weak))
    }

    pub(super) fn plausible(&self, h: &Header) -> bool {
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
    ///
    /// With the verdict comes the buffer length from which it may change (`usize::MAX`:
    /// never): a chain that runs past the bytes there are is judged again only once the
    /// frame it reaches into is complete (or its cut header is), since more bytes before that
    /// point can only rule it out (a payload that stops being UTF-8), which can wait. A `No`
    /// is for good: no byte that comes can make those bytes a frame.
    pub(super) fn candidate(&self, buf: &[u8], i: usize, starts: &[usize]) -> (Candidate, usize) {
        let (verdict, need) = self.judge(buf, i, starts);
        debug_assert!(need > buf.len());
        (verdict, need)
    }

    fn judge(&self, buf: &[u8], i: usize, starts: &[usize]) -> (Candidate, usize) {
        #[cfg(test)]
        JUDGED.with(|j| j.set(j.get() + 1));
        const NEVER: usize = usize::MAX;
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
                        return (Candidate::No, NEVER);
                    }
                    // Judged again once the header is whole.
                    let need = at + d.get(1).map_or(2, |&b| Header::needed(b));
                    return if boundaries > 0 && opcoded {
                        (Candidate::Weak, need)
                    } else {
                        (Candidate::Undecided, need)
                    };
                }
                return (Candidate::No, NEVER);
            };
            if !self.plausible(&h) || !content_plausible(&h, &d[h.header_len as usize..]) {
                // Also when a frame that ended on a boundary is followed by no frame: a chain
                // of one proves little.
                return (Candidate::No, NEVER);
            }
            if masked.is_some_and(|m| m != h.mask.is_some()) {
                return (Candidate::No, NEVER);
            }
            masked = Some(h.mask.is_some());
            let op = Opcode::from_u8(h.opcode);
            if frames == 0 && h.payload_len == 0 && !op.is_control() {
                return (Candidate::No, NEVER);
            }
            if !sequence_makes_sense(&mut open, op, h.fin) {
                return (Candidate::No, NEVER);
            }
            frames += 1;
            first.get_or_insert((h, at + h.header_len as usize));
            opcoded |= op != Opcode::Continuation;
            let end = at as u64 + h.header_len as u64 + h.payload_len;
            if end > buf.len() as u64 {
                // Judged again once this frame is complete.
                let need = usize::try_from(end).unwrap_or(NEVER);
                return if boundaries > 0 && opcoded {
                    (Candidate::Weak, need)
                } else {
                    (Candidate::Undecided, need)
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
                    return (Candidate::Confirmed, NEVER);
                }
                if end == buf.len() {
                    // The next segment has not arrived: it decides.
                    return if opcoded {
                        (Candidate::Weak, end + 1)
                    } else {
                        (Candidate::Undecided, end + 1)
                    };
                }
            }
            at = end;
        }
        if boundaries > 0 && opcoded {
            (Candidate::Weak, NEVER)
        } else {
            (Candidate::No, NEVER)
        }
    }
}

#[derive(Default)]
pub(super) struct Hunt {
    pub(super) buf: Vec<u8>,
    /// Stream offset of `buf[0]`.
    pub(super) start: u64,
    /// Bytes dropped from the front of `buf` so far.
    pub(super) dropped: u64,
    /// Every position below this one has been judged.
    pub(super) scan: usize,
    /// Positions in `buf` where a TCP segment's bytes began: senders start frames there.
    pub(super) starts: Vec<usize>,
    /// The candidates not ruled out (undecided, or weak), by position, each with the buffer
    /// length at which it is judged again (`usize::MAX`: never). Each costs [`OPEN_COST`].
    pub(super) open: BTreeMap<usize, usize>,
    /// The same, soonest due first; entries whose candidate has gone or changed are stale.
    pub(super) due: BinaryHeap<Reverse<(usize, usize)>>,
}

#[cfg(test)]
thread_local! {
    /// Positions judged on this thread, for the tests of the hunt's cost.
    pub(super) static JUDGED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// What one open candidate costs the ledger (its entries in `open` and `due`).
const OPEN_COST: usize = 64;
/// Open candidates kept per hunt: past it the oldest is given up.
const MAX_OPEN: usize = 4096;

impl Hunt {
    /// What this hunt has charged to [`Pool::Hunt`].
    pub(super) fn charged(&self) -> usize {
        self.buf.len() + self.open.len() * OPEN_COST
    }

    /// Gives up the buffered bytes and the candidates (a hole, or no memory for more).
    pub(super) fn start_over(&mut self, mem: &mut Memory) {
        mem.refund(Pool::Hunt, self.buf.len());
        self.buf.clear();
        self.starts.clear();
        self.scan = 0;
        self.forget_candidates(mem);
    }

    pub(super) fn forget_candidates(&mut self, mem: &mut Memory) {
        mem.refund(Pool::Hunt, self.open.len() * OPEN_COST);
        self.open.clear();
        self.due.clear();
    }

    /// Keeps candidate `i`, judged again when the buffer reaches `need` bytes.
    fn keep(&mut self, i: usize, need: usize, mem: &mut Memory) {
        if !self.open.contains_key(&i) {
            if !mem.charge(Pool::Hunt, OPEN_COST) {
                // No memory for one more: this candidate is given up.
                return;
            }
            if self.open.len() >= MAX_OPEN && self.open.pop_first().is_some() {
                mem.refund(Pool::Hunt, OPEN_COST);
            }
        }
        self.open.insert(i, need);
        if need != usize::MAX {
            self.due.push(Reverse((need, i)));
        }
        if self.due.len() > 2 * self.open.len() + 64 {
            self.rebuild_due();
        }
    }

    fn drop_candidate(&mut self, i: usize, mem: &mut Memory) {
        if self.open.remove(&i).is_some() {
            mem.refund(Pool::Hunt, OPEN_COST);
        }
    }

    fn rebuild_due(&mut self) {
        self.due = self
            .open
            .iter()
            .filter(|&(_, &n)| n != usize::MAX)
            .map(|(&p, &n)| Reverse((n, p)))
            .collect();
    }

    /// Drops the first `cut` bytes (the hunt has held too many), and the candidates there.
    pub(super) fn cut_front(&mut self, cut: usize, mem: &mut Memory) {
        self.buf.drain(..cut);
        mem.refund(Pool::Hunt, cut);
        self.starts.retain(|&p| p >= cut);
        self.starts.iter_mut().for_each(|p| *p -= cut);
        self.dropped += cut as u64;
        self.start += cut as u64;
        self.scan = self.scan.saturating_sub(cut);
        let kept = self.open.split_off(&cut);
        mem.refund(Pool::Hunt, self.open.len() * OPEN_COST);
        self.open = kept
            .into_iter()
            .map(|(p, n)| (p - cut, if n == usize::MAX { n } else { n - cut }))
            .collect();
        self.rebuild_due();
    }
}

pub(super) enum Candidate {
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

/// Whether a frame with `op` and `fin` may follow in a chain where a fragmented message is
/// `open` (RFC 6455 5.4: continuations only inside a message, a new data frame only outside
/// one, control frames anywhere); moves `open` on.
pub(super) fn sequence_makes_sense(open: &mut Option<bool>, op: Opcode, fin: bool) -> bool {
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
