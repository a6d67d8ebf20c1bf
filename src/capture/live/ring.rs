//! The kernel's memory-mapped receive ring (`PACKET_RX_RING`, `TPACKET_V3`), as libpcap
//! reads it on Linux.
//!
//! The kernel writes packets straight into blocks of memory shared with us and hands each
//! block over when it is full or has waited [`RETIRE_MS`]; reading a block is walking its
//! packets, and giving it back is one store. Compared with one `recvfrom` per packet this
//! saves a system call and a copy per packet, and a burst waits in a ring of `-B` bytes
//! (tcpdump's flag) instead of the socket's receive buffer.
//!
//! Each packet in a block carries its receive timestamp (nanoseconds), its length on the
//! wire (`tp_len`) and what was kept of it (`tp_snaplen`, at most the BPF filter's snapshot
//! length), so truncation is known exactly.

use super::socket::{SOL_PACKET, setsockopt};
use crate::capture::Timestamp;
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};

const PACKET_RX_RING: libc::c_int = 5;
const PACKET_VERSION: libc::c_int = 10;
const TPACKET_V3: libc::c_int = 2;
const TP_STATUS_KERNEL: u32 = 0;
const TP_STATUS_USER: u32 = 1;
/// Set on a packet when the kernel has dropped packets since the counters were last read.
pub const TP_STATUS_LOSING: u32 = 1 << 2;

/// How long the kernel keeps a block that is not full before handing it over: the latency
/// of quiet traffic (libpcap uses the capture timeout here).
pub const RETIRE_MS: u32 = 10;

/// Offsets in `struct tpacket_block_desc` (version, offset_to_priv, then `tpacket_hdr_v1`).
const BLOCK_STATUS: usize = 8;
const BLOCK_NUM_PKTS: usize = 12;
const BLOCK_FIRST: usize = 16;
/// The block header's size as the kernel lays it out (`BLK_PLUS_PRIV(0)`, aligned to 8).
const BLOCK_HEADER: usize = 48;
/// `struct tpacket3_hdr` and the `sockaddr_ll` after it: what precedes a packet's bytes.
const PACKET_HEADER: usize = 68 + 32;

#[repr(C)]
struct TpacketReq3 {
    block_size: u32,
    block_nr: u32,
    frame_size: u32,
    frame_nr: u32,
    retire_blk_tov: u32,
    sizeof_priv: u32,
    feature_req_word: u32,
}

/// A mapped receive ring on a packet socket.
pub struct Ring {
    map: *mut u8,
    len: usize,
    block_size: usize,
    blocks: usize,
    next: usize,
}

// SAFETY: the mapping is owned by the Ring and only read through &mut self.
unsafe impl Send for Ring {}

/// One packet in a block handed over by the kernel.
pub struct Packet<'a> {
    /// When the kernel received it (`tp_sec`, `tp_nsec`).
    pub ts: Timestamp,
    /// Its length on the wire.
    pub wire_len: u32,
    /// The packet's `tp_status` flags (`TP_STATUS_*`, linux/if_packet.h), e.g.
    /// [`TP_STATUS_LOSING`]: the kernel dropped packets on this socket.
    pub status: u32,
    /// The bytes the kernel kept (`tp_snaplen` of them), from the link-layer header.
    pub data: &'a [u8],
}

/// The block size for a snapshot length: the kernel cuts a packet to what fits in one
/// block, so a block holds the largest packet kept, with its headers.
pub fn block_size_for(snaplen: u32) -> usize {
    let need = snaplen as usize + PACKET_HEADER + BLOCK_HEADER + 64;
    need.next_power_of_two().max(page_size())
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as usize } else { 4096 }
}

impl Ring {
    /// Switches `fd` to `TPACKET_V3` and maps a ring of about `bytes` (at least two blocks).
    pub fn new(fd: libc::c_int, bytes: usize, snaplen: u32) -> io::Result<Ring> {
        setsockopt(fd, SOL_PACKET, PACKET_VERSION, &TPACKET_V3)?;
        let block_size = block_size_for(snaplen);
        let blocks = (bytes / block_size).max(2);
        // The kernel checks frame_nr against blocks × (block / frame); V3 does not use frames.
        let frame_size = 2048u32.min(block_size as u32);
        let req = TpacketReq3 {
            block_size: block_size as u32,
            block_nr: blocks as u32,
            frame_size,
            frame_nr: (block_size as u32 / frame_size) * blocks as u32,
            retire_blk_tov: RETIRE_MS,
            sizeof_priv: 0,
            feature_req_word: 0,
        };
        setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req)?;
        let len = block_size * blocks;
        // SAFETY: mapping the ring the kernel just allocated for this socket.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Ring {
            map: map.cast(),
            len,
            block_size,
            blocks,
            next: 0,
        })
    }

    /// The ring's size in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the ring has no blocks (never: at least two are mapped).
    pub fn is_empty(&self) -> bool {
        self.blocks == 0
    }

    fn status(&self, block: usize) -> &AtomicU32 {
        // SAFETY: the status word of a block inside the mapping, 4-aligned (blocks are
        // page-aligned); the kernel and we access it only atomically.
        unsafe { AtomicU32::from_ptr(self.map.add(block * self.block_size + BLOCK_STATUS).cast()) }
    }

    /// Whether the next block is ours to read.
    pub fn ready(&self) -> bool {
        self.status(self.next).load(Ordering::Acquire) & TP_STATUS_USER != 0
    }

    /// Calls `f` for each packet of the next block, if the kernel has handed it over, then
    /// gives the block back. Returns whether there was a block.
    pub fn read_block(&mut self, mut f: impl FnMut(Packet<'_>)) -> bool {
        if !self.ready() {
            return false;
        }
        let base = self.next * self.block_size;
        // SAFETY: the block is ours until its status is set back to TP_STATUS_KERNEL; the
        // kernel wrote the block within its bounds, and every offset is checked against them.
        let block = unsafe { std::slice::from_raw_parts(self.map.add(base), self.block_size) };
        let u32_at = |at: usize| -> Option<u32> {
            block
                .get(at..at + 4)
                .map(|b| u32::from_ne_bytes(b.try_into().expect("4 bytes")))
        };
        let n = u32_at(BLOCK_NUM_PKTS).unwrap_or(0);
        let mut at = u32_at(BLOCK_FIRST).unwrap_or(0) as usize;
        for _ in 0..n {
            let (Some(next), Some(sec), Some(nsec), Some(snap), Some(len), Some(status)) = (
                u32_at(at),
                u32_at(at + 4),
                u32_at(at + 8),
                u32_at(at + 12),
                u32_at(at + 16),
                u32_at(at + 20),
            ) else {
                break;
            };
            let mac = block
                .get(at + 24..at + 26)
                .map_or(0, |b| u16::from_ne_bytes([b[0], b[1]])) as usize;
            let Some(data) = block.get(at + mac..at + mac + snap as usize) else {
                break;
            };
            f(Packet {
                ts: Timestamp::from_nanos(sec as i64, nsec),
                wire_len: len,
                status,
                data,
            });
            if next == 0 {
                break;
            }
            at += next as usize;
        }
        self.status(self.next)
            .store(TP_STATUS_KERNEL, Ordering::Release);
        self.next = (self.next + 1) % self.blocks;
        true
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: unmapping what new() mapped.
        unsafe { libc::munmap(self.map.cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_holds_the_largest_packet_kept() {
        for snap in [64, 1514, 65535, 262144] {
            let b = block_size_for(snap);
            assert!(b >= snap as usize + PACKET_HEADER + BLOCK_HEADER);
            assert!(b.is_power_of_two());
        }
    }
}
