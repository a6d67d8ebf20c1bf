//! IPv4 fragments back into datagrams (RFC 791 3.2), as tshark reassembles them: a TCP
//! segment that a router (or a tunnel's smaller MTU) fragmented is one packet again. The
//! fragments of a datagram wait, charged to the ledger's `reorder` pool, until it is whole.
//! A datagram still incomplete after [`MAX_WAIT`] packets, or the oldest when more than
//! [`MAX_DATAGRAMS`] wait, is given up: its bytes are then missing from the stream, and the
//! caller says so. IPv6 fragments are not reassembled.

use crate::memory::{Memory, Pool};

/// Datagrams reassembled at once.
const MAX_DATAGRAMS: usize = 64;
/// Packets after its first fragment that a datagram may take to complete.
const MAX_WAIT: u64 = 10_000;
/// What a waiting datagram costs beyond its bytes.
const DATAGRAM_COST: usize = 128;

/// A datagram given up before it was whole.
#[derive(Debug, PartialEq, Eq)]
pub struct GivenUp {
    /// The datagram's identification field.
    pub id: u16,
    /// Payload bytes that had arrived.
    pub have: usize,
    /// The datagram's payload length, if its last fragment came.
    pub total: Option<usize>,
}

struct Datagram {
    /// Source, destination, identification, protocol (RFC 791: what names a datagram).
    key: ([u8; 4], [u8; 4], u16, u8),
    /// The first fragment's header, once it has come.
    header: Option<Vec<u8>>,
    data: Vec<u8>,
    /// Byte ranges of `data` that arrived, sorted and merged.
    have: Vec<(usize, usize)>,
    /// The payload's length, once the last fragment (more-fragments clear) has come.
    total: Option<usize>,
    /// Packet number of its first fragment.
    born: u64,
}

impl Datagram {
    fn cost(&self) -> usize {
        DATAGRAM_COST + self.data.len() + self.header.as_ref().map_or(0, Vec::len)
    }

    fn received(&self) -> usize {
        self.have.iter().map(|(a, b)| b - a).sum()
    }

    fn add(&mut self, at: usize, bytes: &[u8]) {
        let end = at + bytes.len();
        if self.data.len() < end {
            self.data.resize(end, 0);
        }
        self.data[at..end].copy_from_slice(bytes);
        self.have.push((at, end));
        self.have.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(self.have.len());
        for &(a, b) in &self.have {
            match merged.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        self.have = merged;
    }

    fn whole(&self) -> bool {
        self.header.is_some() && self.total.is_some_and(|t| self.have == [(0, t)])
    }
}

/// The datagrams being reassembled.
#[derive(Default)]
pub struct Defrag {
    pending: Vec<Datagram>,
}

impl Defrag {
    /// Takes one IPv4 fragment (`ip`: the packet from its IP header on; `packet`: its number
    /// in the capture). Returns the whole datagram, header included, when this fragment
    /// completes it; `given_up` receives the datagrams that will not be.
    pub fn add(
        &mut self,
        ip: &[u8],
        packet: u64,
        mem: &mut Memory,
        given_up: &mut Vec<GivenUp>,
    ) -> Option<Vec<u8>> {
        self.expire(packet, mem, given_up);
        if ip.len() < 20 || ip[0] >> 4 != 4 {
            return None;
        }
        let ihl = (ip[0] & 0x0f) as usize * 4;
        let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
        if ihl < 20 || total < ihl || ip.len() < ihl {
            return None;
        }
        let end = total.min(ip.len());
        let frag = u16::from_be_bytes([ip[6], ip[7]]);
        let more = frag & 0x2000 != 0;
        let offset = (frag & 0x1fff) as usize * 8;
        let payload = &ip[ihl..end];
        if offset + payload.len() > 65_535 - 20 {
            return None;
        }
        let key = (
            <[u8; 4]>::try_from(&ip[12..16]).ok()?,
            <[u8; 4]>::try_from(&ip[16..20]).ok()?,
            u16::from_be_bytes([ip[4], ip[5]]),
            ip[9],
        );
        let i = match self.pending.iter().position(|d| d.key == key) {
            Some(i) => i,
            None => {
                if self.pending.len() >= MAX_DATAGRAMS {
                    let d = self.pending.remove(0);
                    self.give_up(d, mem, given_up);
                }
                self.pending.push(Datagram {
                    key,
                    header: None,
                    data: Vec::new(),
                    have: Vec::new(),
                    total: None,
                    born: packet,
                });
                self.pending.len() - 1
            }
        };
        let d = &mut self.pending[i];
        let before = if d.have.is_empty() && d.header.is_none() {
            0
        } else {
            d.cost()
        };
        d.add(offset, payload);
        if offset == 0 {
            d.header = Some(ip[..ihl].to_vec());
        }
        if !more {
            d.total = Some(offset + payload.len());
        }
        let after = d.cost();
        // Charged whatever the limit: a datagram is at most 64 KiB and 64 wait at most.
        mem.force(Pool::Reorder, after - before.min(after));
        if !d.whole() {
            return None;
        }
        let d = self.pending.remove(i);
        mem.refund(Pool::Reorder, d.cost());
        let mut header = d.header.expect("whole");
        let total = header.len() + d.data.len();
        header[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        // Not a fragment any more; the don't-fragment bit is kept.
        header[6] &= 0x40;
        header[7] = 0;
        header.extend_from_slice(&d.data);
        Some(header)
    }

    fn expire(&mut self, packet: u64, mem: &mut Memory, given_up: &mut Vec<GivenUp>) {
        while self
            .pending
            .first()
            .is_some_and(|d| packet.saturating_sub(d.born) > MAX_WAIT)
        {
            let d = self.pending.remove(0);
            self.give_up(d, mem, given_up);
        }
    }

    fn give_up(&mut self, d: Datagram, mem: &mut Memory, given_up: &mut Vec<GivenUp>) {
        mem.refund(Pool::Reorder, d.cost());
        given_up.push(GivenUp {
            id: d.key.2,
            have: d.received(),
            total: d.total,
        });
    }

    /// End of input: every datagram still waiting is given up.
    pub fn finish(&mut self, mem: &mut Memory, given_up: &mut Vec<GivenUp>) {
        for d in std::mem::take(&mut self.pending) {
            self.give_up(d, mem, given_up);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fragment(id: u16, offset: usize, more: bool, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        let total = (20 + payload.len()) as u16;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p[4..6].copy_from_slice(&id.to_be_bytes());
        let frag = (offset / 8) as u16 | if more { 0x2000 } else { 0 };
        p[6..8].copy_from_slice(&frag.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn fragments_in_any_order_make_the_datagram_and_give_their_memory_back() {
        let body: Vec<u8> = (0..100u8).collect();
        let mut mem = Memory::new(1 << 20);
        let mut lost = Vec::new();
        let mut d = Defrag::default();
        assert!(
            d.add(&fragment(7, 48, false, &body[48..]), 1, &mut mem, &mut lost)
                .is_none()
        );
        assert!(
            d.add(
                &fragment(7, 24, true, &body[24..48]),
                2,
                &mut mem,
                &mut lost
            )
            .is_none()
        );
        assert!(mem.used() > 0);
        let whole = d
            .add(&fragment(7, 0, true, &body[..24]), 3, &mut mem, &mut lost)
            .unwrap();
        assert_eq!(&whole[20..], &body[..]);
        assert_eq!(u16::from_be_bytes([whole[2], whole[3]]), 120);
        assert_eq!(whole[6] & 0x3f, 0);
        assert_eq!(whole[7], 0);
        assert_eq!(mem.used(), 0);
        assert!(lost.is_empty());
    }

    #[test]
    fn incomplete_datagrams_are_given_up_and_said() {
        let mut mem = Memory::new(1 << 20);
        let mut lost = Vec::new();
        let mut d = Defrag::default();
        for id in 0..(MAX_DATAGRAMS as u16 + 3) {
            d.add(
                &fragment(id, 0, true, &[1; 16]),
                id as u64,
                &mut mem,
                &mut lost,
            );
        }
        assert_eq!(lost.len(), 3);
        assert_eq!(
            lost[0],
            GivenUp {
                id: 0,
                have: 16,
                total: None
            }
        );
        d.add(
            &fragment(999, 8, false, &[2; 8]),
            100_000,
            &mut mem,
            &mut lost,
        );
        assert_eq!(lost.len(), 3 + MAX_DATAGRAMS);
        d.finish(&mut mem, &mut lost);
        assert_eq!(mem.used(), 0);
    }
}
