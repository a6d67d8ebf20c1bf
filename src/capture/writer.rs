//! Writes packets as a classic pcap file (what `tcpdump -w` writes), readable by tcpdump,
//! tshark and `wsdump -r`. Nanosecond precision when the source had it.

use super::{LinkType, RawPacket};
use std::io::{self, Write};

pub struct PcapWriter<W: Write> {
    out: W,
    nano: bool,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header. `snaplen` is informational for readers.
    pub fn new(mut out: W, linktype: LinkType, nano: bool, snaplen: u32) -> io::Result<Self> {
        let magic: u32 = if nano { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&magic.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&0i32.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&snaplen.to_le_bytes());
        h.extend_from_slice(&linktype.0.to_le_bytes());
        out.write_all(&h)?;
        Ok(PcapWriter { out, nano })
    }

    pub fn write(&mut self, p: &RawPacket<'_>) -> io::Result<()> {
        let frac = if self.nano {
            p.ts.nanos
        } else {
            p.ts.nanos / 1000
        };
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&(p.ts.secs as u32).to_le_bytes());
        h[4..8].copy_from_slice(&frac.to_le_bytes());
        h[8..12].copy_from_slice(&(p.data.len() as u32).to_le_bytes());
        h[12..16].copy_from_slice(&p.orig_len.max(p.data.len() as u32).to_le_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(p.data)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
