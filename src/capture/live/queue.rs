//! The bounded queue between capture and decoding.
//!
//! Reader threads copy packets out of the kernel's ring into chunks — fixed buffers of
//! records, each a packet with its timestamp and lengths — and hand full chunks to the
//! decoding thread, which gives them back when it is done. Chunks are allocated as needed,
//! up to a budget the decoding thread sets from its memory ledger (what the ledger can
//! spare, at most `--capture-queue`), and charged to the ledger as they are: so when decoding
//! or printing falls behind, the reader does not wait (the kernel would then drop) but
//! drops the packet itself, counts it, and puts a record of what it dropped (packets and
//! their bytes on the wire) at that place in the stream as soon as it has a chunk again:
//! the decoder reports it there, so nothing is lost silently.
//!
//! A reader sends a chunk that is not full only when the decoder has taken every chunk
//! sent before (it is idle or about to be): quiet traffic is decoded at once, and a busy
//! decoder gets full chunks, so the queue's bytes hold packets, not half-empty chunks.

use crate::capture::Timestamp;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A record's header: captured length, wire length, seconds, nanoseconds, interface, kind.
const HEADER: usize = 24;
const KIND_PACKET: u16 = 0;
const KIND_QUEUE_DROP: u16 = 1;
const KIND_KERNEL_DROP: u16 = 2;
/// The largest chunk: a reader never holds more than this unsent.
const CHUNK_MAX: usize = 1 << 20;

/// What the capture lost at one place in the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dropped {
    /// wsdump's own queue was full: decoding or printing fell behind. The bytes are the
    /// packets' lengths on the wire.
    Queue {
        /// How many packets were dropped.
        packets: u64,
        /// Their lengths on the wire, summed.
        bytes: u64,
    },
    /// The kernel's ring was full (the reader fell behind): the kernel counts packets only.
    Kernel {
        /// How many packets the kernel dropped.
        packets: u64,
    },
}

/// One record of a chunk.
#[derive(Debug)]
pub enum Item<'a> {
    /// A captured packet.
    Packet {
        /// The interface it came from, an index into [`super::Capture::interfaces`].
        iface: usize,
        /// When the kernel received it.
        ts: Timestamp,
        /// Its length on the wire, in bytes; `data` may be shorter (snapshot length, copy
        /// limit).
        orig_len: u32,
        /// The bytes kept, from the start of the link-layer header.
        data: &'a [u8],
    },
    /// Packets lost since the previous record of this interface.
    Dropped {
        /// The interface that lost them, an index into [`super::Capture::interfaces`].
        iface: usize,
        /// When the first dropped packet arrived (for the kernel: when the loss was noticed).
        ts: Timestamp,
        /// Where they were lost, and how many.
        dropped: Dropped,
    },
}

/// A buffer of records on its way to the decoder.
#[derive(Debug)]
pub struct Chunk {
    buf: Vec<u8>,
}

impl Chunk {
    /// The records, in the order they were captured.
    pub fn items(&self) -> Items<'_> {
        Items {
            buf: &self.buf,
            at: 0,
        }
    }

    /// The chunk holds no record (a reader flushed with nothing to send).
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// Iterator over a chunk's records.
pub struct Items<'a> {
    buf: &'a [u8],
    at: usize,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_ne_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

impl<'a> Iterator for Items<'a> {
    type Item = Item<'a>;
    fn next(&mut self) -> Option<Item<'a>> {
        let b = self.buf;
        let h = self.at;
        if h + HEADER > b.len() {
            return None;
        }
        let caplen = u32_at(b, h) as usize;
        let orig_len = u32_at(b, h + 4);
        let ts = Timestamp::from_nanos(u64_at(b, h + 8) as i64, u32_at(b, h + 16));
        let iface = u16::from_ne_bytes([b[h + 20], b[h + 21]]) as usize;
        let kind = u16::from_ne_bytes([b[h + 22], b[h + 23]]);
        let data = &b[h + HEADER..h + HEADER + caplen];
        self.at = h + HEADER + padded(caplen);
        Some(match kind {
            KIND_PACKET => Item::Packet {
                iface,
                ts,
                orig_len,
                data,
            },
            KIND_QUEUE_DROP => Item::Dropped {
                iface,
                ts,
                dropped: Dropped::Queue {
                    packets: u64_at(data, 0),
                    bytes: u64_at(data, 8),
                },
            },
            _ => Item::Dropped {
                iface,
                ts,
                dropped: Dropped::Kernel {
                    packets: u64_at(data, 0),
                },
            },
        })
    }
}

fn padded(n: usize) -> usize {
    (n + 7) & !7
}

/// The chunks, shared by the readers and the decoder.
#[derive(Debug)]
pub struct Buffers {
    chunk_bytes: usize,
    count: usize,
    free: Mutex<Vec<Vec<u8>>>,
    allocated: AtomicUsize,
    /// Chunks that may be allocated now (at most `count`): the ledger's say.
    allowed: AtomicUsize,
    /// Chunks sent and not yet taken by the decoder.
    pending: AtomicUsize,
}

impl Buffers {
    /// Chunks for a queue of about `bytes` holding packets of up to `snaplen` bytes: at
    /// least two, each large enough for the largest packet.
    pub fn new(bytes: usize, snaplen: u32) -> Buffers {
        // The largest packet, and the records of drops that may have to precede it.
        let smallest = HEADER + padded(snaplen as usize) + 2 * (HEADER + 16);
        let chunk_bytes = (bytes / 8).clamp(smallest, CHUNK_MAX.max(smallest));
        let count = (bytes / chunk_bytes).max(2);
        Buffers {
            chunk_bytes,
            count,
            free: Mutex::new(Vec::new()),
            allocated: AtomicUsize::new(0),
            allowed: AtomicUsize::new(count),
            pending: AtomicUsize::new(0),
        }
    }

    /// What the queue can hold at most, in bytes.
    pub fn bytes(&self) -> usize {
        self.chunk_bytes * self.count
    }

    /// The chunks allocated now, in bytes: what the ledger must be charged.
    pub fn held(&self) -> usize {
        self.allocated.load(Ordering::Acquire) * self.chunk_bytes
    }

    /// Lets the queue hold up to `bytes` (never more than [`Buffers::bytes`]); chunks beyond
    /// are freed as they come back.
    pub fn set_budget(&self, bytes: usize) {
        let n = (bytes / self.chunk_bytes).min(self.count);
        self.allowed.store(n, Ordering::Release);
    }

    fn take(&self) -> Option<Vec<u8>> {
        if let Some(b) = self.free.lock().expect("queue").pop() {
            return Some(b);
        }
        // Allocated only when first needed: a quiet capture never holds the whole queue.
        let n = self.allocated.fetch_add(1, Ordering::AcqRel);
        if n < self.allowed.load(Ordering::Acquire) {
            Some(Vec::with_capacity(self.chunk_bytes))
        } else {
            self.allocated.fetch_sub(1, Ordering::AcqRel);
            None
        }
    }

    /// The decoder has received a chunk.
    pub fn taken(&self) {
        self.pending.fetch_sub(1, Ordering::AcqRel);
    }

    /// Undoes [`Buffers::taken`] for a chunk that is still waiting to be decoded.
    pub fn untaken(&self) {
        self.pending.fetch_add(1, Ordering::AcqRel);
    }

    /// The decoder is done with a chunk: it can be filled again.
    pub fn give_back(&self, chunk: Chunk) {
        let mut buf = chunk.buf;
        if self.allocated.load(Ordering::Acquire) > self.allowed.load(Ordering::Acquire) {
            self.allocated.fetch_sub(1, Ordering::AcqRel);
            return;
        }
        buf.clear();
        self.free.lock().expect("queue").push(buf);
    }
}

/// A reader's side of the queue: the chunk it is filling and what it has had to drop.
pub struct Filler<'a> {
    buffers: &'a Buffers,
    iface: u16,
    current: Option<Vec<u8>>,
    /// Dropped since the last record of it: packets, bytes, when the first arrived.
    lost: Option<(u64, u64, Timestamp)>,
    kernel_lost: Option<(u64, Timestamp)>,
}

impl<'a> Filler<'a> {
    /// The filler of the reader of interface `iface` (an index into
    /// [`super::Capture::interfaces`]; stored in 16 bits).
    pub fn new(buffers: &'a Buffers, iface: usize) -> Self {
        Filler {
            buffers,
            iface: iface as u16,
            current: None,
            lost: None,
            kernel_lost: None,
        }
    }

    /// Queues one packet (or drops and counts it); `send` is given chunks that are full.
    /// Returns whether the packet was queued.
    pub fn packet(
        &mut self,
        ts: Timestamp,
        orig_len: u32,
        data: &[u8],
        send: &mut dyn FnMut(Chunk),
    ) -> bool {
        if !self.room(HEADER + padded(data.len()), send) {
            let l = self.lost.get_or_insert((0, 0, ts));
            l.0 += 1;
            l.1 += orig_len as u64;
            return false;
        }
        self.write(KIND_PACKET, ts, orig_len, data);
        true
    }

    /// The kernel says it dropped `packets` (noticed at `ts`): recorded at this place.
    pub fn kernel_dropped(&mut self, ts: Timestamp, packets: u64, send: &mut dyn FnMut(Chunk)) {
        if packets == 0 {
            return;
        }
        let k = self.kernel_lost.get_or_insert((0, ts));
        k.0 += packets;
        let _ = self.room(0, send);
    }

    /// Makes room for `need` more bytes in the current chunk, first writing the records of
    /// what was dropped; false if there is no chunk to be had.
    fn room(&mut self, need: usize, send: &mut dyn FnMut(Chunk)) -> bool {
        let marks = self.lost.is_some() as usize + self.kernel_lost.is_some() as usize;
        let want = need + marks * (HEADER + 16);
        if let Some(c) = &self.current
            && c.len() + want > self.buffers.chunk_bytes
        {
            self.send_current(send);
        }
        if self.current.is_none() {
            self.current = self.buffers.take();
        }
        if self.current.is_none() {
            return false;
        }
        if let Some((packets, bytes, ts)) = self.lost.take() {
            let mut d = [0u8; 16];
            d[..8].copy_from_slice(&packets.to_ne_bytes());
            d[8..].copy_from_slice(&bytes.to_ne_bytes());
            self.write(KIND_QUEUE_DROP, ts, 0, &d);
        }
        if let Some((packets, ts)) = self.kernel_lost.take() {
            let mut d = [0u8; 16];
            d[..8].copy_from_slice(&packets.to_ne_bytes());
            self.write(KIND_KERNEL_DROP, ts, 0, &d);
        }
        true
    }

    fn write(&mut self, kind: u16, ts: Timestamp, orig_len: u32, data: &[u8]) {
        let c = self.current.as_mut().expect("room made");
        c.extend_from_slice(&(data.len() as u32).to_ne_bytes());
        c.extend_from_slice(&orig_len.to_ne_bytes());
        c.extend_from_slice(&(ts.secs as u64).to_ne_bytes());
        c.extend_from_slice(&ts.nanos.to_ne_bytes());
        c.extend_from_slice(&self.iface.to_ne_bytes());
        c.extend_from_slice(&kind.to_ne_bytes());
        c.extend_from_slice(data);
        c.resize(c.len() + padded(data.len()) - data.len(), 0);
        debug_assert!(c.len() <= self.buffers.chunk_bytes, "a chunk never grows");
    }

    fn send_current(&mut self, send: &mut dyn FnMut(Chunk)) {
        if let Some(buf) = self.current.take() {
            if buf.is_empty() {
                self.current = Some(buf);
                return;
            }
            self.buffers.pending.fetch_add(1, Ordering::AcqRel);
            send(Chunk { buf });
        }
    }

    /// Sends the chunk being filled if the decoder has nothing else waiting.
    pub fn flush_if_idle(&mut self, send: &mut dyn FnMut(Chunk)) {
        if self.buffers.pending.load(Ordering::Acquire) == 0 {
            self.flush(send);
        }
    }

    /// Sends the chunk being filled, and records drops still unrecorded if a chunk can be
    /// had for them.
    pub fn flush(&mut self, send: &mut dyn FnMut(Chunk)) {
        if self.lost.is_some() || self.kernel_lost.is_some() {
            let _ = self.room(0, send);
        }
        self.send_current(send);
    }

    /// Drops not yet recorded in the stream (no chunk could be had).
    pub fn unrecorded(&self) -> bool {
        self.lost.is_some() || self.kernel_lost.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_nanos(s, 7)
    }

    /// A queue of two chunks that nobody empties: what does not fit is dropped, counted
    /// with its wire bytes, and recorded in the stream before the next packet once a chunk
    /// comes back.
    #[test]
    fn a_full_queue_drops_and_says_so_in_place() {
        let b = Buffers::new(0, 1000);
        assert_eq!(b.count, 2);
        let mut sent = Vec::new();
        let mut send = |c: Chunk| sent.push(c);
        let mut f = Filler::new(&b, 3);
        let pkt = [0xabu8; 1000];
        let mut queued = 0;
        let mut dropped = 0;
        for i in 0..10 {
            if f.packet(ts(i), 1500, &pkt, &mut send) {
                queued += 1;
            } else {
                dropped += 1;
            }
        }
        // One packet per chunk (each holds one 1000-byte packet): two chunks, both sent
        // when full, none to be had for the rest.
        assert_eq!((queued, dropped), (2, 8));
        assert_eq!(sent.len(), 2);
        let first = sent.remove(0);
        let items: Vec<_> = first.items().collect();
        assert!(matches!(
            items[..],
            [Item::Packet { iface: 3, orig_len: 1500, data, .. }] if data == &pkt[..]
        ));
        b.taken();
        b.give_back(first);
        let mut sent = Vec::new();
        let mut send = |c: Chunk| sent.push(c);
        assert!(f.packet(ts(20), 60, &pkt[..60], &mut send));
        f.flush(&mut send);
        let items: Vec<Vec<String>> = sent
            .iter()
            .map(|c| c.items().map(|i| format!("{i:?}")).collect())
            .collect();
        assert_eq!(items.len(), 1, "{items:?}");
        assert_eq!(items[0].len(), 2, "{items:?}");
        assert!(
            items[0][0].contains("Queue { packets: 8, bytes: 12000 }")
                && items[0][0].contains("secs: 2,"),
            "the drop, at the first dropped packet's time: {items:?}"
        );
        assert!(items[0][1].contains("orig_len: 60"), "{items:?}");
    }

    /// The budget bounds what is allocated; a smaller one frees chunks as they come back.
    #[test]
    fn the_budget_bounds_the_chunks() {
        let b = Buffers::new(8 << 20, 1500);
        let chunk = b.bytes() / b.count;
        b.set_budget(2 * chunk);
        let mut sent = Vec::new();
        let mut send = |c: Chunk| sent.push(c);
        let mut f = Filler::new(&b, 0);
        let pkt = vec![7u8; chunk / 2];
        let queued = (0..10)
            .filter(|&i| f.packet(ts(i), 1, &pkt, &mut send))
            .count();
        assert_eq!(queued, 2, "one packet per chunk, two chunks");
        assert_eq!(b.held(), 2 * chunk);
        b.set_budget(chunk);
        for c in sent {
            b.taken();
            b.give_back(c);
        }
        assert_eq!(b.held(), chunk, "the chunk beyond the budget was freed");
    }

    #[test]
    fn partial_chunks_go_only_to_an_idle_decoder() {
        let b = Buffers::new(64 << 10, 1500);
        let mut sent = 0;
        let mut send = |_c: Chunk| sent += 1;
        let mut f = Filler::new(&b, 0);
        assert!(f.packet(ts(1), 100, &[1; 100], &mut send));
        f.flush_if_idle(&mut send);
        assert!(f.packet(ts(2), 100, &[1; 100], &mut send));
        f.flush_if_idle(&mut send);
        assert_eq!(sent, 1, "the first chunk is not taken yet: keep filling");
        assert!(
            b.bytes() <= 64 << 10 && b.bytes() >= 32 << 10,
            "{}",
            b.bytes()
        );
    }

    #[test]
    fn kernel_drops_are_recorded_in_place() {
        let b = Buffers::new(64 << 10, 1500);
        let mut sent = Vec::new();
        let mut send = |c: Chunk| sent.push(c);
        let mut f = Filler::new(&b, 0);
        assert!(f.packet(ts(1), 100, &[1; 100], &mut send));
        f.kernel_dropped(ts(2), 5, &mut send);
        assert!(f.packet(ts(3), 100, &[1; 100], &mut send));
        f.flush(&mut send);
        let kinds: Vec<String> = sent[0].items().map(|i| format!("{i:?}")).collect();
        assert_eq!(kinds.len(), 3);
        assert!(kinds[1].contains("Kernel { packets: 5 }"), "{kinds:?}");
        assert!(!f.unrecorded());
    }
}
