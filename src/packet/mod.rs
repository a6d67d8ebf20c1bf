//! From a captured frame to a TCP segment: link layer (`link`), IPv4/IPv6 (`ip`), TCP (`tcp`).
//! Views over the captured bytes: nothing here copies payload.

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
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    pub window: u16,
    pub options: TcpOptions,
    /// The payload bytes that were captured.
    pub payload: &'a [u8],
    /// The payload length the IP header declares; larger than `payload.len()` when the
    /// capture cut the packet short (snaplen, a short live read buffer).
    pub payload_len: u32,
}

impl Segment<'_> {
    pub fn is_truncated(&self) -> bool {
        (self.payload.len() as u32) < self.payload_len
    }
}

/// Why a packet yields no TCP segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PacketError {
    /// Not TCP over IP (ARP, UDP, ICMP, ...): not an error, just not ours.
    NotTcp,
    /// An IP fragment: wsdump does not reassemble IP fragments (TCP rarely produces them).
    Fragment,
    UnsupportedLinkType(LinkType),
    /// The capture ends inside a header.
    Truncated {
        layer: &'static str,
        need: usize,
        have: usize,
    },
    /// A header field that cannot be right.
    Invalid {
        layer: &'static str,
        why: String,
    },
}

impl fmt::Display for PacketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PacketError::NotTcp => f.write_str("not TCP"),
            PacketError::Fragment => f.write_str("IP fragment (not reassembled)"),
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

/// Decodes a captured frame down to its TCP segment.
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
