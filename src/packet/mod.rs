//! From a captured frame to a TCP segment: link layer (`link`), IPv4/IPv6 (`ip`), TCP (`tcp`).
//! Views over the captured bytes: nothing here copies payload.

pub mod defrag;
pub mod ip;
pub mod link;
pub mod tcp;

use crate::capture::LinkType;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
pub use tcp::{TcpFlags, TcpOptions};

/// A TCP segment as seen in one captured packet.
#[derive(Clone, Copy, Debug)]
pub struct Segment<'a> {
    /// Sender: the IP header's source address with the TCP source port.
    pub src: SocketAddr,
    /// Receiver: the IP header's destination address with the TCP destination port.
    pub dst: SocketAddr,
    /// The sequence number as on the wire (absolute, not relative to the ISN; it wraps).
    pub seq: u32,
    /// The acknowledgment number as on the wire; meaningful only when `flags.ack()`.
    pub ack: u32,
    /// The control bits of the TCP header.
    pub flags: TcpFlags,
    /// The window field as on the wire, before any window scaling (RFC 7323 §2) is applied.
    pub window: u16,
    /// The options this segment carries (only SYNs carry most of them).
    pub options: TcpOptions,
    /// The payload bytes that were captured.
    pub payload: &'a [u8],
    /// The payload length the IP header declares; larger than `payload.len()` when the
    /// capture cut the packet short (snaplen, a short live read buffer).
    pub payload_len: u32,
}

impl Segment<'_> {
    /// Whether the capture holds fewer payload bytes than the packet carried on the wire:
    /// the missing tail is a hole in the stream, not data that was never sent.
    pub fn is_truncated(&self) -> bool {
        (self.payload.len() as u32) < self.payload_len
    }

    /// The segment of a record captured whole (`orig_len`, the record's length on the wire,
    /// is no more than the `captured` bytes): an IP length longer than the packet is then a
    /// lie of the sender, not a snaplen cut, and the captured payload is all there is. (Taken
    /// for a cut, the bytes it claims would be skipped as a gap, and the stream's next bytes
    /// with them.)
    pub fn captured_whole(mut self, orig_len: u32, captured: usize) -> Self {
        if orig_len as usize <= captured {
            self.payload_len = self.payload.len() as u32;
        }
        self
    }
}

/// Why a packet yields no TCP segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PacketError {
    /// Not TCP over IP (ARP, UDP, ICMP, ...): not an error, just not ours.
    NotTcp,
    /// A fragment of an IP packet carrying TCP. IPv4 fragments are reassembled by the flow
    /// table ([`defrag`]); IPv6 fragments are not (the bytes they carry become a gap, which
    /// a notice explains).
    Fragment,
    /// A link-layer header type this reader does not strip (see [`link::strip`] for the
    /// supported ones): the whole capture is unreadable, not just this packet.
    UnsupportedLinkType(LinkType),
    /// The capture ends inside a header.
    Truncated {
        /// Which header was cut (`ether`, `vlan`, `sll`, `sll2`, `null`, `ip`, `ip6`, `tcp`),
        /// as tcpdump names it in `[|tcp]`.
        layer: &'static str,
        /// Bytes that header needs, counted from its own first byte.
        need: usize,
        /// Bytes the capture holds from that point.
        have: usize,
    },
    /// A header field that cannot be right.
    Invalid {
        /// Which header holds the field (`ip`, `ip6`, `tcp`).
        layer: &'static str,
        /// The field and its value, for a human (`data offset 16 < 20`).
        why: String,
    },
}

impl fmt::Display for PacketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PacketError::NotTcp => f.write_str("not TCP"),
            PacketError::Fragment => f.write_str(
                "IPv6 fragment of a TCP segment: IPv6 fragments are not reassembled, its bytes will be missing from the stream",
            ),
            PacketError::UnsupportedLinkType(l) => write!(f, "unsupported link type {}", l.0),
            PacketError::Truncated { layer, need, have } => {
                write!(
                    f,
                    "[|{layer}] truncated header: need {need} bytes, have {have}"
                )
            }
            PacketError::Invalid { layer, why } => write!(f, "[|{layer}] invalid: {why}"),
        }
    }
}

pub(crate) fn need(layer: &'static str, data: &[u8], n: usize) -> Result<(), PacketError> {
    if data.len() < n {
        Err(PacketError::Truncated {
            layer,
            need: n,
            have: data.len(),
        })
    } else {
        Ok(())
    }
}

#[inline]
pub(crate) fn be16(d: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([d[at], d[at + 1]])
}

#[inline]
pub(crate) fn be32(d: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([d[at], d[at + 1], d[at + 2], d[at + 3]])
}

/// Decodes a captured frame down to its TCP segment: strips the link header `linktype`
/// names, then IPv4/IPv6, then TCP. Checksums are not verified (captures taken on the sending
/// host carry offloaded, unfilled ones). The segment borrows its payload from `data`.
///
/// # Errors
/// [`PacketError::NotTcp`] and [`PacketError::Fragment`] for packets that are simply not
/// ours; the other variants for headers that are cut short or impossible.
pub fn decode(linktype: LinkType, data: &[u8]) -> Result<Segment<'_>, PacketError> {
    let l3 = link::strip(linktype, data)?;
    let ip = ip::parse(l3)?;
    let t = tcp::parse(ip.payload)?;
    // TCP header lengths count against the IP-declared length, not the captured one.
    let declared = ip.payload_len.saturating_sub(t.header_len as u32);
    Ok(Segment {
        src: SocketAddr::new(ip.src, t.src_port),
        dst: SocketAddr::new(ip.dst, t.dst_port),
        seq: t.seq,
        ack: t.ack,
        flags: t.flags,
        window: t.window,
        options: t.options,
        payload: t.payload,
        payload_len: declared.max(t.payload.len() as u32),
    })
}

/// Formats an address the way the JSON contract and the human view both use: `ip:port`,
/// IPv6 in brackets.
pub fn fmt_addr(a: &SocketAddr) -> String {
    match a.ip() {
        IpAddr::V4(v4) => format!("{v4}:{}", a.port()),
        IpAddr::V6(v6) => format!("[{v6}]:{}", a.port()),
    }
}
