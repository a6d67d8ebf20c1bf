//! Writes packets as pcapng (what dumpcap writes): one section, an Interface Description
//! Block for each (link type, interface) on its first packet, Enhanced Packet Blocks with an
//! optional comment each, and Decryption Secrets Blocks carrying a TLS key log so that
//! Wireshark decrypts wss:// without being given the key file.
//!
//! Blocks are written in host byte order; the Section Header's byte-order magic tells
//! readers which that is. Timestamps keep the source's precision: an interface whose first
//! packet has nanosecond precision gets `if_tsresol` 9, otherwise 6.
//!
//! Format: draft-ietf-opsawg-pcapng (sections 4.1 SHB, 4.2 IDB, 4.3 EPB, 4.7 DSB).

use super::{LinkType, RawPacket};
use std::io::{self, Write};

const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 0x0000_0001;
const EPB: u32 = 0x0000_0006;
const DSB: u32 = 0x0000_000A;
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;
/// Secrets type of a DSB holding NSS key log text.
pub const SECRETS_TLS_KEY_LOG: u32 = 0x544C_534B;

const OPT_END: u16 = 0;
const OPT_COMMENT: u16 = 1;
const SHB_USERAPPL: u16 = 4;
const IF_TSRESOL: u16 = 9;

/// One interface of the section, in IDB order (its index is the EPB's interface id).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Iface {
    linktype: LinkType,
    /// The source's interface number ([`RawPacket::iface`]).
    source: u32,
    nano: bool,
}

/// A pcapng file being written (see the module documentation for its layout).
pub struct PcapngWriter<W: Write> {
    out: W,
    snaplen: u32,
    ifaces: Vec<Iface>,
    block: Vec<u8>,
}

impl<W: Write> PcapngWriter<W> {
    /// Writes the Section Header Block. `snaplen` goes into each interface's description
    /// (0: no limit).
    pub fn new(out: W, snaplen: u32) -> io::Result<Self> {
        let mut w = PcapngWriter {
            out,
            snaplen,
            ifaces: Vec::new(),
            block: Vec::with_capacity(2048),
        };
        w.begin(SHB);
        w.u32(BYTE_ORDER_MAGIC);
        w.u16(1); // major version
        w.u16(0); // minor version
        w.block.extend_from_slice(&(-1i64).to_ne_bytes()); // section length: not given
        let app = concat!("wsdump ", env!("CARGO_PKG_VERSION"));
        w.option(SHB_USERAPPL, app.as_bytes());
        w.end_options();
        w.finish_block()?;
        Ok(w)
    }

    /// Writes `p` as an Enhanced Packet Block, describing its interface first if new.
    pub fn write(&mut self, p: &RawPacket<'_>) -> io::Result<()> {
        self.write_with_comment(p, None)
    }

    /// Same, with `comment` (UTF-8, already escaped as the caller wants it shown) as the
    /// packet's `opt_comment`: Wireshark's `frame.comment`.
    pub fn write_with_comment(
        &mut self,
        p: &RawPacket<'_>,
        comment: Option<&str>,
    ) -> io::Result<()> {
        self.write_with_comments(p, comment.as_slice())
    }

    /// Same, with one `opt_comment` per element (Wireshark lists each; tshark's
    /// `frame.comment` field repeats).
    pub fn write_with_comments<S: AsRef<str>>(
        &mut self,
        p: &RawPacket<'_>,
        comments: &[S],
    ) -> io::Result<()> {
        let (id, nano) = self.interface(p)?;
        let ts = if nano {
            p.ts.as_nanos()
        } else {
            p.ts.as_nanos().div_euclid(1000)
        };
        // pcapng timestamps are unsigned: nothing before 1970.
        let ts = ts.clamp(0, u64::MAX as i128) as u64;
        let caplen = p.data.len() as u32;
        self.begin(EPB);
        self.u32(id);
        self.u32((ts >> 32) as u32);
        self.u32(ts as u32);
        self.u32(caplen);
        self.u32(p.orig_len.max(caplen));
        self.block.extend_from_slice(p.data);
        self.pad();
        for c in comments {
            self.option(OPT_COMMENT, c.as_ref().as_bytes());
        }
        if !comments.is_empty() {
            self.end_options();
        }
        self.finish_block()
    }

    /// Writes a Decryption Secrets Block with TLS key log text (`CLIENT_RANDOM ...` lines,
    /// as SSLKEYLOGFILE holds them). It must come before the packets it decrypts.
    pub fn write_tls_keys(&mut self, keylog: &[u8]) -> io::Result<()> {
        self.write_secrets(SECRETS_TLS_KEY_LOG, keylog)
    }

    /// Writes a Decryption Secrets Block with the key log lines of the connections `keys`
    /// has found secrets for since the last call, if there are any. Called before each
    /// packet is written (and after it was decoded), it puts each connection's secrets in
    /// front of the first packet that needs them. Returns whether a block was written.
    pub fn write_new_keys(&mut self, keys: &crate::tls::KeyStore) -> io::Result<bool> {
        let lines = keys.take_new_used();
        if lines.is_empty() {
            return Ok(false);
        }
        self.write_tls_keys(&lines)?;
        Ok(true)
    }

    /// A Decryption Secrets Block of any secrets type.
    pub fn write_secrets(&mut self, secrets_type: u32, data: &[u8]) -> io::Result<()> {
        let len = u32::try_from(data.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "secrets over 4 GiB"))?;
        self.begin(DSB);
        self.u32(secrets_type);
        self.u32(len);
        self.block.extend_from_slice(data);
        self.pad();
        self.finish_block()
    }

    /// Flushes the underlying writer. Every block is handed to it whole as soon as it is
    /// written, so nothing is held back here.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Gives back the underlying writer (without flushing it).
    pub fn into_inner(self) -> W {
        self.out
    }

    /// The IDB index for `p`'s (link type, interface), writing the IDB the first time.
    fn interface(&mut self, p: &RawPacket<'_>) -> io::Result<(u32, bool)> {
        if let Some(i) = self
            .ifaces
            .iter()
            .position(|f| f.linktype == p.linktype && f.source == p.iface)
        {
            return Ok((i as u32, self.ifaces[i].nano));
        }
        let linktype = u16::try_from(p.linktype.0).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("link type {} does not fit pcapng's 16 bits", p.linktype.0),
            )
        })?;
        let nano = p.ts.nano_precision;
        self.begin(IDB);
        self.u16(linktype);
        self.u16(0); // reserved
        self.u32(self.snaplen);
        self.option(IF_TSRESOL, &[if nano { 9 } else { 6 }]);
        self.end_options();
        self.finish_block()?;
        self.ifaces.push(Iface {
            linktype: p.linktype,
            source: p.iface,
            nano,
        });
        Ok((self.ifaces.len() as u32 - 1, nano))
    }

    fn begin(&mut self, kind: u32) {
        self.block.clear();
        self.u32(kind);
        self.u32(0); // total length, filled in by finish_block
    }

    fn u16(&mut self, v: u16) {
        self.block.extend_from_slice(&v.to_ne_bytes());
    }

    fn u32(&mut self, v: u32) {
        self.block.extend_from_slice(&v.to_ne_bytes());
    }

    fn pad(&mut self) {
        while !self.block.len().is_multiple_of(4) {
            self.block.push(0);
        }
    }

    /// An option. Its length field has 16 bits: longer values (a comment over 64 KiB) are
    /// cut at 65532 bytes, comments at a character boundary.
    fn option(&mut self, code: u16, value: &[u8]) {
        let mut v = &value[..value.len().min(65532)];
        if code == OPT_COMMENT {
            // Do not cut a character in half.
            while let Err(e) = std::str::from_utf8(v) {
                v = &v[..e.valid_up_to()];
            }
        }
        self.u16(code);
        self.u16(v.len() as u16);
        self.block.extend_from_slice(v);
        self.pad();
    }

    fn end_options(&mut self) {
        self.u16(OPT_END);
        self.u16(0);
    }

    fn finish_block(&mut self) -> io::Result<()> {
        let total = self.block.len() as u32 + 4;
        self.block[4..8].copy_from_slice(&total.to_ne_bytes());
        self.block.extend_from_slice(&total.to_ne_bytes());
        self.out.write_all(&self.block)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::Timestamp;

    fn packet(data: &[u8], iface: u32, nano: bool) -> RawPacket<'_> {
        RawPacket {
            ts: if nano {
                Timestamp::from_nanos(1_764_056_651, 123_456_789)
            } else {
                Timestamp::from_micros(1_764_056_651, 341_570)
            },
            linktype: LinkType::ETHERNET,
            orig_len: data.len() as u32 + 10,
            data,
            iface,
        }
    }

    fn blocks(b: &[u8]) -> Vec<(u32, &[u8])> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < b.len() {
            let kind = u32::from_ne_bytes(b[at..at + 4].try_into().unwrap());
            let len = u32::from_ne_bytes(b[at + 4..at + 8].try_into().unwrap()) as usize;
            assert_eq!(len % 4, 0, "block length is a multiple of 4");
            let trailer = u32::from_ne_bytes(b[at + len - 4..at + len].try_into().unwrap());
            assert_eq!(
                trailer as usize, len,
                "trailing length repeats the leading one"
            );
            out.push((kind, &b[at..at + len]));
            at += len;
        }
        out
    }

    #[test]
    fn block_structure() {
        let mut w = PcapngWriter::new(Vec::new(), 262_144).unwrap();
        w.write_tls_keys(b"CLIENT_RANDOM 00 11\n").unwrap();
        w.write_with_comment(&packet(b"abcde", 0, false), Some("héllo"))
            .unwrap();
        w.write(&packet(b"xyz", 0, false)).unwrap();
        w.write(&packet(b"q", 3, true)).unwrap();
        let out = w.into_inner();
        let b = blocks(&out);
        let kinds: Vec<u32> = b.iter().map(|x| x.0).collect();
        assert_eq!(kinds, [SHB, DSB, IDB, EPB, EPB, IDB, EPB]);
        assert_eq!(&b[0].1[8..12], &BYTE_ORDER_MAGIC.to_ne_bytes());
        // DSB: type, length, text padded to 4.
        assert_eq!(&b[1].1[8..12], &SECRETS_TLS_KEY_LOG.to_ne_bytes());
        assert_eq!(&b[1].1[12..16], &20u32.to_ne_bytes());
        // IDBs: if_tsresol 6 then 9.
        assert_eq!(&b[2].1[16..21], &[9, 0, 1, 0, 6][..]);
        assert_eq!(b[5].1[20], 9);
        // EPB 1: interface 0, caplen 5, orig 15, data padded, then the comment option.
        let e = b[3].1;
        assert_eq!(&e[8..12], &0u32.to_ne_bytes());
        assert_eq!(&e[20..24], &5u32.to_ne_bytes());
        assert_eq!(&e[24..28], &15u32.to_ne_bytes());
        assert_eq!(&e[28..36], b"abcde\0\0\0");
        assert_eq!(&e[36..38], &OPT_COMMENT.to_ne_bytes());
        assert_eq!(&e[38..40], &6u16.to_ne_bytes());
        assert_eq!(&e[40..46], "héllo".as_bytes());
        // The third packet is on the second interface.
        assert_eq!(&b[6].1[8..12], &1u32.to_ne_bytes());
        // Microsecond timestamp on a microsecond interface.
        let ts = (u32::from_ne_bytes(e[12..16].try_into().unwrap()) as u64) << 32
            | u32::from_ne_bytes(e[16..20].try_into().unwrap()) as u64;
        assert_eq!(ts, 1_764_056_651_341_570);
    }
}
