//! Where packets come from: capture files (`file`), the live wire (`live`), and where they
//! go when saved (`writer`). Everything downstream sees only [`RawPacket`].

pub mod file;
pub mod live;
pub mod pcapng_writer;
pub mod writer;

use std::fmt;

/// Link-layer header types, as numbered by tcpdump.org's LINKTYPE_ registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LinkType(pub u32);

impl LinkType {
    pub const NULL: LinkType = LinkType(0);
    pub const ETHERNET: LinkType = LinkType(1);
    /// DLT_RAW has two numbers on the wire: 101 (LINKTYPE_RAW) and 12/14 on some BSDs.
    pub const RAW: LinkType = LinkType(101);
    pub const RAW_BSD12: LinkType = LinkType(12);
    pub const RAW_BSD14: LinkType = LinkType(14);
    pub const LOOP: LinkType = LinkType(108);
    pub const LINUX_SLL: LinkType = LinkType(113);
    pub const IPV4: LinkType = LinkType(228);
    pub const IPV6: LinkType = LinkType(229);
    pub const LINUX_SLL2: LinkType = LinkType(276);

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
    pub secs: i64,
    pub nanos: u32,
    pub nano_precision: bool,
}

impl Timestamp {
    pub fn from_micros(secs: i64, micros: u32) -> Self {
        Timestamp {
            secs,
            nanos: micros.saturating_mul(1000).min(999_999_999),
            nano_precision: false,
        }
    }
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
    pub ts: Timestamp,
    pub linktype: LinkType,
    /// Bytes on the wire; `data.len()` is what was captured (snaplen may cut it short).
    pub orig_len: u32,
    pub data: &'a [u8],
    /// Interface number in the source (pcapng IDB index or live ifindex); 0 for plain pcap.
    pub iface: u32,
}
