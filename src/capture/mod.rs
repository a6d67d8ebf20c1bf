//! Where packets come from: capture files (`file`), the live wire (`live`), and where they
//! go when saved (`writer`). Everything downstream sees only [`RawPacket`].

pub mod file;
pub mod live;
pub mod pcapng_writer;
pub mod writer;

use std::fmt;

/// Link-layer header types, as numbered by tcpdump.org's LINKTYPE_ registry (the pcap file
/// header's and the pcapng IDB's link type field). Any number is representable, so a capture
/// of an unsupported type can still be named in an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LinkType(pub u32);

impl LinkType {
    /// BSD loopback: a 4-byte address family in the capturing host's byte order, then IP.
    pub const NULL: LinkType = LinkType(0);
    /// Ethernet II (and 802.1Q/802.1ad tagged frames): a 14-byte header, then the ethertype's
    /// payload.
    pub const ETHERNET: LinkType = LinkType(1);
    /// Raw IP, version told by the first nibble. DLT_RAW has three numbers in files: 101
    /// (LINKTYPE_RAW) and the platform DLT values 12 and 14 that some BSD writers leave there.
    pub const RAW: LinkType = LinkType(101);
    /// Raw IP as DLT_RAW 12 (most BSDs).
    pub const RAW_BSD12: LinkType = LinkType(12);
    /// Raw IP as DLT_RAW 14 (OpenBSD).
    pub const RAW_BSD14: LinkType = LinkType(14);
    /// OpenBSD loopback: like [`LinkType::NULL`], but the family is in network byte order.
    pub const LOOP: LinkType = LinkType(108);
    /// Linux cooked capture v1: a 16-byte pseudo-header ending in the ethertype.
    pub const LINUX_SLL: LinkType = LinkType(113);
    /// Raw IPv4 only.
    pub const IPV4: LinkType = LinkType(228);
    /// Raw IPv6 only.
    pub const IPV6: LinkType = LinkType(229);
    /// Linux cooked capture v2: a 20-byte pseudo-header starting with the ethertype and
    /// carrying the interface index.
    pub const LINUX_SLL2: LinkType = LinkType(276);

    /// The name tcpdump gives the type (`tcpdump -L`, `-y`): `EN10MB`, `LINUX_SLL`, ...;
    /// `unknown` for any type wsdump cannot strip.
    pub fn name(self) -> &'static str {
        match self {
            Self::NULL => "NULL",
            Self::ETHERNET => "EN10MB",
            Self::RAW | Self::RAW_BSD12 | Self::RAW_BSD14 => "RAW",
            Self::LOOP => "LOOP",
            Self::LINUX_SLL => "LINUX_SLL",
            Self::IPV4 => "IPV4",
            Self::IPV6 => "IPV6",
            Self::LINUX_SLL2 => "LINUX_SLL2",
            _ => "unknown",
        }
    }

    /// Whether [`crate::packet::link::strip`] can reach the IP header of this type's frames.
    pub fn is_supported(self) -> bool {
        self.name() != "unknown"
    }
}

impl fmt::Display for LinkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.0)
    }
}

/// A capture timestamp: seconds since the Unix epoch plus nanoseconds, and the precision the
/// source actually had, so printers show microseconds for a microsecond pcap and never invent
/// digits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp {
    /// Whole seconds since 1970-01-01 00:00:00 UTC (negative before it: a pcapng interface
    /// offset can take it there).
    pub secs: i64,
    /// Nanoseconds into the second, 0 to 999,999,999, whatever the precision.
    pub nanos: u32,
    /// The source had nanosecond resolution (a nanosecond pcap, pcapng `if_tsresol` finer
    /// than microseconds, a live socket); otherwise microseconds or coarser, and digits of
    /// `nanos` past the microsecond mean nothing.
    pub nano_precision: bool,
}

impl Timestamp {
    /// A microsecond-precision time. An out-of-range `micros` (a corrupt record) is clamped
    /// into the second instead of carrying over.
    pub fn from_micros(secs: i64, micros: u32) -> Self {
        Timestamp {
            secs,
            nanos: micros.saturating_mul(1000).min(999_999_999),
            nano_precision: false,
        }
    }
    /// A nanosecond-precision time; an out-of-range `nanos` is clamped as in
    /// [`Timestamp::from_micros`].
    pub fn from_nanos(secs: i64, nanos: u32) -> Self {
        Timestamp {
            secs,
            nanos: nanos.min(999_999_999),
            nano_precision: true,
        }
    }
    /// Nanoseconds since the epoch, for differences (relative times, durations).
    pub fn as_nanos(self) -> i128 {
        self.secs as i128 * 1_000_000_000 + self.nanos as i128
    }
}

/// One captured frame as it came from the source, borrowed from the source's buffer.
#[derive(Clone, Copy, Debug)]
pub struct RawPacket<'a> {
    /// When the packet was captured, as the source recorded it.
    pub ts: Timestamp,
    /// How to read `data`'s first header (per packet: a pcapng file can mix interfaces).
    pub linktype: LinkType,
    /// Bytes on the wire; `data.len()` is what was captured (snaplen may cut it short).
    pub orig_len: u32,
    /// The captured bytes, from the link-layer header on.
    pub data: &'a [u8],
    /// Interface number in the source (pcapng IDB index or live ifindex); 0 for plain pcap.
    pub iface: u32,
}
