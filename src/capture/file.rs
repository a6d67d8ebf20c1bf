//! pcap and pcapng files through `pcap-parser` (pure Rust, no libpcap), streamed through a
//! bounded buffer so memory does not grow with the file.

use super::{LinkType, RawPacket, Timestamp};
use crate::engine::PacketSource;
use crate::tls::KeyStore;
use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{PcapBlockOwned, PcapError};
use std::fmt;
use std::io::Read;
use std::ops::ControlFlow;

/// The reader starts with this buffer and grows it for a larger record, up to `MAX_RECORD`.
const INITIAL_BUFFER: usize = 1 << 20;
/// Largest record accepted. libpcap's own limit for a snaplen is 256 KiB; pcapng writers
/// allow more, so leave room, but a record length beyond this is a lie, not a packet.
pub const MAX_RECORD: usize = 16 << 20;

/// Interface descriptions accepted per pcapng section.
const MAX_INTERFACES: usize = 65_536;

/// Why reading a capture file stopped early.
#[derive(Debug)]
pub enum CaptureError {
    /// The first bytes are neither a pcap nor a pcapng header.
    NotACapture,
    /// The file ends inside a record (or a header).
    Truncated {
        /// Byte offset in the file where the cut record (or the file header: 0) starts.
        offset: u64,
    },
    /// A record claims more bytes than any capture could hold ([`MAX_RECORD`]).
    RecordTooLarge {
        /// Byte offset in the file of the record.
        offset: u64,
        /// The length it claims, in bytes, its header included.
        len: usize,
    },
    /// A block that does not parse.
    Malformed {
        /// Byte offset in the file of the block.
        offset: u64,
        /// What is wrong with it, for a human.
        what: String,
    },
    /// A packet references an interface that was never described (pcapng).
    UnknownInterface {
        /// Byte offset in the file of the packet block.
        offset: u64,
        /// The interface id it names.
        iface: u32,
    },
    /// Reading the input failed (the OS error is not kept: the reader library drops it).
    Io(String),
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaptureError::NotACapture => {
                write!(
                    f,
                    "not a pcap or pcapng capture (unrecognised header at byte offset 0)"
                )
            }
            CaptureError::Truncated { offset } => {
                write!(
                    f,
                    "truncated capture: the last record starting at byte offset {offset} is cut short"
                )
            }
            CaptureError::RecordTooLarge { offset, len } => write!(
                f,
                "impossible record length {len} at byte offset {offset} (limit {MAX_RECORD}); the file is corrupt"
            ),
            CaptureError::Malformed { offset, what } => {
                write!(f, "malformed block at byte offset {offset}: {what}")
            }
            CaptureError::UnknownInterface { offset, iface } => write!(
                f,
                "packet at byte offset {offset} names interface {iface}, which no interface block describes"
            ),
            CaptureError::Io(e) => write!(f, "read error: {e}"),
        }
    }
}

impl std::error::Error for CaptureError {}

#[derive(Clone, Copy, Debug)]
struct Iface {
    linktype: LinkType,
    /// Units per second of the timestamps.
    resolution: u64,
    offset_secs: i64,
}

/// A capture file being read, packet by packet.
pub struct CaptureFile {
    reader: Box<dyn PcapReaderIterator + Send>,
    /// pcap: the one link type and precision; pcapng: interfaces of the current section.
    ifaces: Vec<Iface>,
    legacy: bool,
    big_endian: bool,
    /// The time of the last packet that had one: what a Simple Packet Block, which has none,
    /// is given.
    last_ts: Timestamp,
    /// TLS key logs from Decryption Secrets Blocks, added as the blocks are read.
    keys: KeyStore,
}

impl PacketSource for CaptureFile {
    type Error = CaptureError;
    fn for_each(
        &mut self,
        f: &mut dyn FnMut(&RawPacket<'_>) -> ControlFlow<()>,
    ) -> Result<(), CaptureError> {
        self.for_each_packet(f)
    }
    fn keys(&self) -> Option<KeyStore> {
        Some(self.keys.clone())
    }
}

/// The input, except that the second read after a first one that held a whole pcap file
/// header returns nothing. pcap-parser reads twice before it parses the header; on a pipe
/// (`tcpdump -U -w - | wsdump -r -`) the second read waits for more packets, so the ones
/// already there would not be shown until the next one comes.
struct OpenOnce<R> {
    inner: R,
    reads: u8,
    header_read: bool,
}

impl<R: Read> Read for OpenOnce<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.reads = self.reads.saturating_add(1);
        if self.reads == 2 && self.header_read {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if self.reads == 1 {
            let magic = buf.get(..4).filter(|_| n >= 24);
            self.header_read = magic.is_some_and(|m| {
                matches!(
                    m,
                    [0xd4, 0xc3, 0xb2, 0xa1]
                        | [0xa1, 0xb2, 0xc3, 0xd4]
                        | [0x4d, 0x3c, 0xb2, 0xa1]
                        | [0xa1, 0xb2, 0x3c, 0x4d]
                )
            });
        }
        Ok(n)
    }
}

impl CaptureFile {
    /// Starts reading a pcap or pcapng capture from `input` (a file, stdin, a pipe: it is
    /// read forward only). The format is told by the first block; pcapng sections and
    /// interfaces may change as the file goes on. Reading starts with a 1 MiB buffer, grown
    /// for a larger record up to [`MAX_RECORD`].
    ///
    /// # Errors
    /// [`CaptureError::NotACapture`] when the header is neither format's,
    /// [`CaptureError::Truncated`] (offset 0) when the input ends before a whole header,
    /// [`CaptureError::Io`] when it cannot be read.
    pub fn open<R: Read + Send + 'static>(input: R) -> Result<Self, CaptureError> {
        let input = OpenOnce {
            inner: input,
            reads: 0,
            header_read: false,
        };
        let reader = match pcap_parser::create_reader(INITIAL_BUFFER, input) {
            Ok(r) => r,
            Err(PcapError::Eof) => return Err(CaptureError::Truncated { offset: 0 }),
            Err(PcapError::Incomplete(_)) | Err(PcapError::UnexpectedEof) => {
                return Err(CaptureError::Truncated { offset: 0 });
            }
            Err(PcapError::ReadError) => return Err(CaptureError::Io("cannot read input".into())),
            Err(_) => return Err(CaptureError::NotACapture),
        };
        Ok(CaptureFile {
            reader,
            ifaces: Vec::new(),
            legacy: false,
            big_endian: false,
            last_ts: Timestamp::default(),
            keys: KeyStore::new(),
        })
    }

    /// Adds the secrets of the file's Decryption Secrets Blocks to `keys` (shared with a
    /// `--keylog`) instead of a store of the file's own.
    pub fn use_keys(&mut self, keys: KeyStore) {
        self.keys = keys;
    }

    /// Byte offset in the file of the next record.
    pub fn offset(&self) -> u64 {
        self.reader.consumed() as u64
    }

    /// Calls `f` for every packet until the end of the file, `f` breaking, or an error.
    /// Packets before an error have been delivered: the caller prints them, then the error.
    pub fn for_each_packet(
        &mut self,
        mut f: impl FnMut(&RawPacket<'_>) -> ControlFlow<()>,
    ) -> Result<(), CaptureError> {
        let mut buffer_size = INITIAL_BUFFER;
        loop {
            let at = self.reader.consumed() as u64;
            match self.reader.next() {
                Ok((len, block)) => {
                    let flow =
                        match block {
                            PcapBlockOwned::LegacyHeader(h) => {
                                self.legacy = true;
                                self.big_endian = h.is_bigendian();
                                let resolution = if h.is_nanosecond_precision() {
                                    1_000_000_000
                                } else {
                                    1_000_000
                                };
                                self.ifaces = vec![Iface {
                                    linktype: LinkType(h.network.0 as u32),
                                    resolution,
                                    offset_secs: 0,
                                }];
                                ControlFlow::Continue(())
                            }
                            PcapBlockOwned::Legacy(b) => {
                                let iface = self.ifaces.first().copied().ok_or(
                                    CaptureError::Malformed {
                                        offset: at,
                                        what: "record before the file header".into(),
                                    },
                                )?;
                                let ts = if iface.resolution == 1_000_000_000 {
                                    Timestamp::from_nanos(b.ts_sec as i64, b.ts_usec)
                                } else {
                                    Timestamp::from_micros(b.ts_sec as i64, b.ts_usec)
                                };
                                self.last_ts = ts;
                                f(&RawPacket {
                                    ts,
                                    linktype: iface.linktype,
                                    orig_len: b.origlen,
                                    data: b.data,
                                    iface: 0,
                                })
                            }
                            PcapBlockOwned::NG(Block::SectionHeader(shb)) => {
                                self.big_endian = shb.big_endian();
                                self.ifaces.clear();
                                ControlFlow::Continue(())
                            }
                            PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                                // A section describes a handful of interfaces; millions of
                                // interface blocks are a corrupt or hostile file.
                                if self.ifaces.len() >= MAX_INTERFACES {
                                    return Err(CaptureError::Malformed {
                                        offset: at,
                                        what: format!(
                                            "more than {MAX_INTERFACES} interfaces in one section"
                                        ),
                                    });
                                }
                                let resolution = idb.ts_resolution().unwrap_or(1_000_000).max(1);
                                self.ifaces.push(Iface {
                                    linktype: LinkType(idb.linktype.0 as u32),
                                    resolution,
                                    offset_secs: idb.ts_offset(),
                                });
                                ControlFlow::Continue(())
                            }
                            PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                                let iface = *self.ifaces.get(epb.if_id as usize).ok_or(
                                    CaptureError::UnknownInterface {
                                        offset: at,
                                        iface: epb.if_id,
                                    },
                                )?;
                                let raw = ((epb.ts_high as u64) << 32) | epb.ts_low as u64;
                                let ts = ng_timestamp(raw, iface);
                                // EPB data is padded to 32 bits; caplen says how much is packet.
                                let caplen = (epb.caplen as usize).min(epb.data.len());
                                self.last_ts = ts;
                                f(&RawPacket {
                                    ts,
                                    linktype: iface.linktype,
                                    orig_len: epb.origlen,
                                    data: &epb.data[..caplen],
                                    iface: epb.if_id,
                                })
                            }
                            PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                                // SPBs carry no timestamp and belong to interface 0. They
                                // are given the previous packet's time: time 0 (1970) would
                                // make their connection look idle for decades and be swept.
                                let iface =
                                    *self.ifaces.first().ok_or(CaptureError::UnknownInterface {
                                        offset: at,
                                        iface: 0,
                                    })?;
                                let caplen = (spb.origlen as usize).min(spb.data.len());
                                f(&RawPacket {
                                    ts: self.last_ts,
                                    linktype: iface.linktype,
                                    orig_len: spb.origlen,
                                    data: &spb.data[..caplen],
                                    iface: 0,
                                })
                            }
                            PcapBlockOwned::NG(Block::DecryptionSecrets(dsb)) => {
                                // Other kinds of secrets (WireGuard, SSH) are not ours.
                                let _ = self.keys.add_dsb(dsb.secrets_type.0, dsb.data);
                                ControlFlow::Continue(())
                            }
                            PcapBlockOwned::NG(_) => ControlFlow::Continue(()),
                        };
                    // Not `consume`, which moves the buffer's second half to the front each
                    // time it is half read (copying the file again); `refill` moves only
                    // the unread tail, when a record does not fit.
                    self.reader.consume_noshift(len);
                    if flow.is_break() {
                        return Ok(());
                    }
                }
                Err(PcapError::Eof) => return Ok(()),
                Err(PcapError::Incomplete(_)) => {
                    if self.reader.refill().is_err() {
                        return Err(CaptureError::Io("cannot read input".into()));
                    }
                }
                Err(PcapError::BufferTooSmall) => {
                    let need = self.record_len_hint();
                    if buffer_size >= MAX_RECORD || need > MAX_RECORD {
                        return Err(CaptureError::RecordTooLarge {
                            offset: at,
                            len: need,
                        });
                    }
                    buffer_size = (buffer_size * 2).min(MAX_RECORD);
                    self.reader.grow(buffer_size);
                    if self.reader.refill().is_err() {
                        return Err(CaptureError::Io("cannot read input".into()));
                    }
                }
                Err(PcapError::UnexpectedEof) => {
                    let need = self.record_len_hint();
                    if need > MAX_RECORD {
                        return Err(CaptureError::RecordTooLarge {
                            offset: at,
                            len: need,
                        });
                    }
                    return Err(CaptureError::Truncated { offset: at });
                }
                Err(PcapError::ReadError) => {
                    return Err(CaptureError::Io("cannot read input".into()));
                }
                Err(e) => {
                    let what = match e {
                        PcapError::NomError(_, k) | PcapError::OwnedNomError(_, k) => {
                            format!("{k:?}")
                        }
                        PcapError::HeaderNotRecognized => "unrecognised header".into(),
                        _ => "unparseable".into(),
                    };
                    return Err(CaptureError::Malformed { offset: at, what });
                }
            }
        }
    }

    /// The length the record at the read position claims, read straight from its header, so an
    /// absurd length is reported as such instead of as a short file.
    fn record_len_hint(&self) -> usize {
        let d = self.reader.data();
        if self.legacy {
            if d.len() >= 16 {
                return self.u32_at(&d[8..12]) as usize + 16;
            }
        } else if d.len() >= 8 {
            return self.u32_at(&d[4..8]) as usize;
        }
        0
    }

    fn u32_at(&self, b: &[u8]) -> u32 {
        let b = [b[0], b[1], b[2], b[3]];
        if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    }
}

fn ng_timestamp(raw: u64, iface: Iface) -> Timestamp {
    let secs = (raw / iface.resolution) as i64 + iface.offset_secs;
    let frac = raw % iface.resolution;
    let nanos = (frac as u128 * 1_000_000_000 / iface.resolution as u128) as u32;
    if iface.resolution > 1_000_000 {
        Timestamp::from_nanos(secs, nanos)
    } else {
        Timestamp {
            secs,
            nanos,
            nano_precision: false,
        }
    }
}
