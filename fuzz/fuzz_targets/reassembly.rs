//! The reassembler fed arbitrary segment sequences. The bytes of the "true" stream are a
//! function of their sequence number, so every byte delivered can be checked: delivered data
//! must be exactly the stream's bytes, in order, with gaps accounted, and buffered bytes must
//! respect the per-stream limit; the ledger's `reorder` and `retransmit` pools must hold
//! exactly what the stream holds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsdump::memory::{Memory, Pool};
use wsdump::reassembly::{Chunk, Stream};

fn byte_at(seq: u32) -> u8 {
    (seq.wrapping_mul(2_654_435_761) >> 24) as u8
}

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, r)) => {
                self.0 = r;
                b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input(data);
    let per_stream = 64usize << (inp.u8() % 8);
    // A ledger a little larger than one stream's limit: both limits are reached.
    let mut mem = Memory::new(per_stream * 2 + wsdump::reassembly::HISTORY * 2);
    let mut s = Stream::default();
    let first = inp.u32();
    let mut base: Option<u32> = None;
    if inp.u8() & 1 == 1 {
        s.syn(first);
        base = Some(first.wrapping_add(1));
    }
    let mut pos: u64 = 0;
    let mut fin_seen = false;
    let mut seg = Vec::new();
    while !inp.0.is_empty() {
        let op = inp.u8();
        let mut check = |c: Chunk<'_>, pos: &mut u64, base: Option<u32>| {
            assert!(!fin_seen, "chunk after FIN: {c:?}");
            match c {
                Chunk::Data { at, bytes: d } => {
                    assert_eq!(at, *pos, "data chunk at the wrong offset");
                    assert!(!d.is_empty());
                    let b = base.expect("data before any segment");
                    for (i, &x) in d.iter().enumerate() {
                        let seq = b.wrapping_add((*pos + i as u64) as u32);
                        assert_eq!(
                            x,
                            byte_at(seq),
                            "wrong byte at stream offset {}",
                            *pos + i as u64
                        );
                    }
                    *pos += d.len() as u64;
                }
                Chunk::Gap { at, len, .. } => {
                    assert_eq!(at, *pos, "gap at the wrong offset");
                    assert!(len > 0);
                    *pos += len;
                }
                Chunk::Fin { at } => {
                    assert_eq!(at, *pos, "FIN at the wrong offset");
                    fin_seen = true
                }
                // Every segment carries the true bytes: no retransmission can differ.
                Chunk::Differs { at, len } => panic!("false anomaly at {at}+{len}"),
            }
        };
        match op % 4 {
            0 | 3 => {
                let mode = inp.u8();
                let seq = if mode & 1 == 1 {
                    inp.u32()
                } else {
                    base.unwrap_or(first).wrapping_add(inp.u16() as u32)
                };
                let len = inp.u8() as usize;
                let extra = if mode & 2 != 0 { inp.u8() as u32 } else { 0 };
                let extra = if mode & 8 != 0 { extra << 16 } else { extra };
                let fin = mode & 4 != 0;
                seg.clear();
                seg.extend((0..len as u32).map(|i| byte_at(seq.wrapping_add(i))));
                base.get_or_insert(seq);
                let mut cb = |c: Chunk<'_>, _: &mut Memory| check(c, &mut pos, base);
                s.segment(
                    seq,
                    &seg,
                    len as u32 + extra,
                    fin,
                    &mut mem,
                    per_stream,
                    &mut cb,
                );
            }
            1 => {
                let ack = if op & 4 != 0 {
                    inp.u32()
                } else {
                    base.unwrap_or(first).wrapping_add(inp.u16() as u32)
                };
                // An ACK before any segment of this direction says where its stream
                // continues (`Stream::peer_expects`): offset 0 is there.
                let base = *base.get_or_insert(ack);
                let mut cb = |c: Chunk<'_>, _: &mut Memory| check(c, &mut pos, Some(base));
                s.acked(ack, &mut mem, &mut cb);
            }
            _ => {
                let mut cb = |c: Chunk<'_>, _: &mut Memory| check(c, &mut pos, base);
                s.flush(&mut mem, &mut cb);
                assert_eq!(s.buffered(), 0, "bytes still buffered after flush");
            }
        }
        assert_eq!(
            s.next_offset(),
            pos,
            "next offset disagrees with what was delivered"
        );
        assert_eq!(
            mem.used_by(Pool::Reorder),
            s.buffered(),
            "reorder pool drifted"
        );
        assert_eq!(
            mem.used_by(Pool::Retransmit),
            s.history_capacity(),
            "retransmit pool drifted"
        );
        assert!(
            s.buffered() <= per_stream,
            "{} bytes buffered, limit {per_stream}",
            s.buffered()
        );
    }
    s.flush(&mut mem, &mut |_, _| {});
    s.release(&mut mem);
    assert_eq!(mem.used(), 0, "ledger not back at zero");
});
