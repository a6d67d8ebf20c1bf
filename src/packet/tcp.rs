//! TCP header and the options a reader of a handshake cares about.

use super::{PacketError, be16, be32, need};
use std::fmt;

/// The control bits: byte 13 of the TCP header (RFC 9293 §3.1, with ECE and CWR from
/// RFC 3168 §23.2), kept as the raw byte so that unusual combinations stay visible.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// No more data from the sender.
    pub const FIN: u8 = 0x01;
    /// Synchronize sequence numbers: opens a connection.
    pub const SYN: u8 = 0x02;
    /// Reset: aborts the connection.
    pub const RST: u8 = 0x04;
    /// Push.
    pub const PSH: u8 = 0x08;
    /// The acknowledgment number is valid.
    pub const ACK: u8 = 0x10;
    /// The urgent pointer is valid.
    pub const URG: u8 = 0x20;
    /// ECN-Echo (RFC 3168).
    pub const ECE: u8 = 0x40;
    /// Congestion Window Reduced (RFC 3168).
    pub const CWR: u8 = 0x80;
    /// FIN is set.
    pub fn fin(self) -> bool {
        self.0 & Self::FIN != 0
    }
    /// SYN is set.
    pub fn syn(self) -> bool {
        self.0 & Self::SYN != 0
    }
    /// RST is set.
    pub fn rst(self) -> bool {
        self.0 & Self::RST != 0
    }
    /// PSH is set.
    pub fn psh(self) -> bool {
        self.0 & Self::PSH != 0
    }
    /// ACK is set.
    pub fn ack(self) -> bool {
        self.0 & Self::ACK != 0
    }
}

/// tcpdump's notation: `S` SYN, `F` FIN, `P` PSH, `R` RST, `U` URG, `E` ECE, `W` CWR,
/// `.` ACK.
impl fmt::Display for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::with_capacity(8);
        for (bit, c) in [
            (Self::SYN, 'S'),
            (Self::FIN, 'F'),
            (Self::PSH, 'P'),
            (Self::RST, 'R'),
            (Self::URG, 'U'),
            (Self::ECE, 'E'),
            (Self::CWR, 'W'),
        ] {
            if self.0 & bit != 0 {
                s.push(c);
            }
        }
        if self.ack() {
            s.push('.');
        }
        if s.is_empty() {
            s.push_str("none");
        }
        write!(f, "[{s}]")
    }
}

/// The options that shape a connection, as offered in this segment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpOptions {
    /// Maximum segment size in bytes (kind 2, RFC 9293 §3.2).
    pub mss: Option<u16>,
    /// Window scale shift count (kind 3, RFC 7323 §2): the peer's window fields are to be
    /// shifted left by this many bits. Only valid on a SYN.
    pub wscale: Option<u8>,
    /// SACK permitted (kind 4, RFC 2018).
    pub sack_permitted: bool,
    /// (TSval, TSecr) of the timestamps option (kind 8, RFC 7323 §3).
    pub timestamps: Option<(u32, u32)>,
    /// How many SACK blocks (kind 5, RFC 2018; 8 bytes each) the segment reports.
    pub sack_blocks: u8,
    /// The option list ran past the header or had a bad length.
    pub malformed: bool,
}

impl TcpOptions {
    /// No option was recognised and nothing was malformed.
    pub fn is_empty(&self) -> bool {
        *self == TcpOptions::default()
    }
}

/// tcpdump-like rendering: `<mss 65495,sackOK,TS val 1 ecr 0,wscale 7>`.
impl fmt::Display for TcpOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        if let Some(m) = self.mss {
            parts.push(format!("mss {m}"));
        }
        if self.sack_permitted {
            parts.push("sackOK".into());
        }
        if let Some((v, e)) = self.timestamps {
            parts.push(format!("TS val {v} ecr {e}"));
        }
        if let Some(w) = self.wscale {
            parts.push(format!("wscale {w}"));
        }
        if self.sack_blocks > 0 {
            parts.push(format!("sack {}", self.sack_blocks));
        }
        if self.malformed {
            parts.push("malformed".into());
        }
        write!(f, "<{}>", parts.join(","))
    }
}

/// A parsed TCP header (RFC 9293 §3.1) and the captured bytes after it.
pub struct TcpHeader<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number, as on the wire.
    pub seq: u32,
    /// Acknowledgment number, as on the wire; meaningful only when `flags.ack()`.
    pub ack: u32,
    /// Header length in bytes, options included (the data offset field times 4; 20 to 60).
    pub header_len: usize,
    /// Control bits.
    pub flags: TcpFlags,
    /// Window field, unscaled.
    pub window: u16,
    /// Options found between byte 20 and `header_len`.
    pub options: TcpOptions,
    /// Captured bytes after the header. This runs to the end of what it was given: the
    /// caller bounds it by the IP length.
    pub payload: &'a [u8],
}

/// Parses the TCP header at the start of `d`. Fields are big-endian on the wire. A bad
/// option list does not fail the parse; it sets [`TcpOptions::malformed`].
///
/// # Errors
/// `Truncated` when `d` is shorter than 20 bytes or than the data offset says;
/// `Invalid` when the data offset is below 5 words.
pub fn parse(d: &[u8]) -> Result<TcpHeader<'_>, PacketError> {
    need("tcp", d, 20)?;
    let header_len = (d[12] >> 4) as usize * 4;
    if header_len < 20 {
        return Err(PacketError::Invalid {
            layer: "tcp",
            why: format!("data offset {header_len} < 20"),
        });
    }
    need("tcp", d, header_len)?;
    Ok(TcpHeader {
        src_port: be16(d, 0),
        dst_port: be16(d, 2),
        seq: be32(d, 4),
        ack: be32(d, 8),
        header_len,
        flags: TcpFlags(d[13]),
        window: be16(d, 14),
        options: options(&d[20..header_len]),
        payload: &d[header_len..],
    })
}

fn options(mut o: &[u8]) -> TcpOptions {
    let mut out = TcpOptions::default();
    while let Some(&kind) = o.first() {
        match kind {
            0 => break,
            1 => {
                o = &o[1..];
                continue;
            }
            _ => {}
        }
        let Some(&len) = o.get(1) else {
            out.malformed = true;
            break;
        };
        let len = len as usize;
        if len < 2 || len > o.len() {
            out.malformed = true;
            break;
        }
        let body = &o[2..len];
        match (kind, body.len()) {
            (2, 2) => out.mss = Some(be16(body, 0)),
            (3, 1) => out.wscale = Some(body[0]),
            (4, 0) => out.sack_permitted = true,
            (5, n) => out.sack_blocks = (n / 8) as u8,
            (8, 8) => out.timestamps = Some((be32(body, 0), be32(body, 4))),
            _ => {}
        }
        o = &o[len..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syn_options_like_linux() {
        let mut h = vec![
            0xbe, 0xc0, 0x1c, 0x68, 0, 0, 0, 1, 0, 0, 0, 0, 0xa0, 0x02, 0xff, 0xd7,
        ];
        h.extend_from_slice(&[0, 0, 0, 0]);
        h.extend_from_slice(&[
            2, 4, 0xff, 0xd7, 4, 2, 8, 10, 0, 0, 0, 7, 0, 0, 0, 0, 1, 3, 3, 7,
        ]);
        let t = parse(&h).unwrap();
        assert_eq!((t.src_port, t.dst_port), (48832, 7272));
        assert_eq!(t.flags.to_string(), "[S]");
        assert_eq!(
            t.options.to_string(),
            "<mss 65495,sackOK,TS val 7 ecr 0,wscale 7>"
        );
    }

    #[test]
    fn option_length_past_header_is_malformed_not_a_panic() {
        let mut h = vec![0u8; 12];
        h.extend_from_slice(&[0x60, 0x10, 0, 0, 0, 0, 0, 0, 2, 40, 0, 0]);
        assert!(parse(&h).unwrap().options.malformed);
    }

    #[test]
    fn data_offset_below_five_is_invalid() {
        let mut h = vec![0u8; 20];
        h[12] = 0x40;
        assert!(matches!(parse(&h), Err(PacketError::Invalid { .. })));
    }
}
