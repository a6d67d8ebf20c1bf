//! Writes packets as a classic pcap file (what `tcpdump -w` writes), readable by tcpdump,
//! tshark and `wsdump -r`. Nanosecond precision when the source had it.

use super::{LinkType, RawPacket};
use std::io::{self, Write};

/// A classic pcap file being written: little-endian, version 2.4, one link type for the
/// whole file.
pub struct PcapWriter<W: Write> {
    out: W,
    nano: bool,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the 24-byte file header. `nano` picks the nanosecond magic (`a1b23c4d`) over the
    /// microsecond one; `snaplen` is informational for readers (records are not cut to it).
    ///
    /// # Errors
    /// Those of writing to `out`.
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

    /// Appends `p` as a record. Its link type is not checked against the file's: the caller
    /// writes one link type per file. Timestamps are cut to the format's fields: seconds to 32
    /// bits, and nanoseconds to microseconds in a microsecond file.
    ///
    /// # Errors
    /// Those of writing to the underlying writer; a record may then be half written.
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

    /// Flushes the underlying writer, so that a reader following the file sees whole records.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
