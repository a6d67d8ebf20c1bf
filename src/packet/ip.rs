//! IPv4 and IPv6 headers. IPv6 extension headers are skipped; fragments are refused here
//! (IPv4 fragments are reassembled by `defrag`, from the flow table).

use super::{PacketError, be16, need};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const PROTO_TCP: u8 = 6;

/// An IPv4 or IPv6 packet carrying TCP, with its header (and IPv6 extension headers) removed.
pub struct IpPacket<'a> {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Captured bytes of the IP payload (never beyond what the header declares).
    pub payload: &'a [u8],
    /// Payload length the header declares, in bytes: IPv4 total length minus the header,
    /// IPv6 payload length minus the extension headers. When the length field is 0 (TSO/GSO
    /// captures on Linux, IPv6 jumbograms) it is what was captured.
    pub payload_len: u32,
}

/// Parses the IP header at the start of `d`, choosing IPv4 or IPv6 by the version nibble.
///
/// # Errors
/// [`PacketError::NotTcp`] when the protocol (or the last IPv6 next header) is not TCP or is
/// an extension header this parser does not walk; [`PacketError::Fragment`] for any fragment
/// (IPv4 MF or offset, IPv6 fragment header with an offset or M set), since fragments are not
/// reassembled; `Truncated` and `Invalid` for a cut or impossible header.
pub fn parse(d: &[u8]) -> Result<IpPacket<'_>, PacketError> {
    need("ip", d, 1)?;
    match d[0] >> 4 {
        4 => v4(d),
        6 => v6(d),
        v => Err(PacketError::Invalid {
            layer: "ip",
            why: format!("version {v}"),
        }),
    }
}

fn v4(d: &[u8]) -> Result<IpPacket<'_>, PacketError> {
    need("ip", d, 20)?;
    let ihl = (d[0] & 0x0f) as usize * 4;
    if ihl < 20 {
        return Err(PacketError::Invalid {
            layer: "ip",
            why: format!("header length {ihl} < 20"),
        });
    }
    need("ip", d, ihl)?;
    let mut total = be16(d, 2) as usize;
    // Linux captures of TSO/GSO packets can carry total length 0: trust the capture then.
    if total == 0 {
        total = d.len();
    }
    if total < ihl {
        return Err(PacketError::Invalid {
            layer: "ip",
            why: format!("total length {total} < header length {ihl}"),
        });
    }
    if d[9] != PROTO_TCP {
        return Err(PacketError::NotTcp);
    }
    let frag = be16(d, 6);
    if frag & 0x3fff != 0 {
        return Err(PacketError::Fragment);
    }
    let src = IpAddr::V4(Ipv4Addr::new(d[12], d[13], d[14], d[15]));
    let dst = IpAddr::V4(Ipv4Addr::new(d[16], d[17], d[18], d[19]));
    // Ethernet pads short frames: the header's length, not the frame's, ends the packet.
    let end = total.min(d.len());
    Ok(IpPacket {
        src,
        dst,
        payload: &d[ihl..end],
        payload_len: (total - ihl) as u32,
    })
}

fn v6(d: &[u8]) -> Result<IpPacket<'_>, PacketError> {
    need("ip6", d, 40)?;
    let mut plen = be16(d, 4) as usize;
    if plen == 0 {
        // Jumbogram or GSO: take what was captured.
        plen = d.len() - 40;
    }
    let src = IpAddr::V6(Ipv6Addr::from(
        <[u8; 16]>::try_from(&d[8..24]).unwrap_or([0; 16]),
    ));
    let dst = IpAddr::V6(Ipv6Addr::from(
        <[u8; 16]>::try_from(&d[24..40]).unwrap_or([0; 16]),
    ));
    let mut next = d[6];
    let mut at = 40usize;
    let end_declared = 40 + plen;
    loop {
        match next {
            PROTO_TCP => break,
            // Hop-by-hop, routing, destination options: length in 8-octet units, not counting
            // the first 8.
            0 | 43 | 60 => {
                need("ip6", d, at + 2)?;
                next = d[at];
                at += (d[at + 1] as usize + 1) * 8;
            }
            44 => {
                need("ip6", d, at + 8)?;
                let off_m = be16(d, at + 2);
                if off_m & 0xfff9 != 0 {
                    // A fragment of something else is not ours either.
                    return Err(if d[at] == PROTO_TCP {
                        PacketError::Fragment
                    } else {
                        PacketError::NotTcp
                    });
                }
                next = d[at];
                at += 8;
            }
            // Authentication header: length in 4-octet units, minus 2.
            51 => {
                need("ip6", d, at + 2)?;
                next = d[at];
                at += (d[at + 1] as usize + 2) * 4;
            }
            _ => return Err(PacketError::NotTcp),
        }
        if at > end_declared {
            return Err(PacketError::Invalid {
                layer: "ip6",
                why: "extension headers run past the payload length".into(),
            });
        }
    }
    need("ip6", d, at)?;
    let end = end_declared.min(d.len());
    Ok(IpPacket {
        src,
        dst,
        payload: &d[at..end],
        payload_len: (end_declared - at) as u32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4_header(total: u16, frag: u16) -> Vec<u8> {
        let mut h = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, 6, 0, 0, 127, 0, 0, 1, 127, 0, 0, 2,
        ];
        h[2..4].copy_from_slice(&total.to_be_bytes());
        h[6..8].copy_from_slice(&frag.to_be_bytes());
        h
    }

    #[test]
    fn v4_truncated_payload_keeps_declared_length() {
        let mut p = v4_header(1000, 0x4000);
        p.extend_from_slice(&[1, 2, 3]);
        let ip = parse(&p).unwrap();
        assert_eq!(ip.payload, &[1, 2, 3]);
        assert_eq!(ip.payload_len, 980);
    }

    #[test]
    fn v4_ethernet_padding_is_not_payload() {
        let mut p = v4_header(22, 0);
        p.extend_from_slice(&[9, 9, 0, 0, 0, 0]);
        assert_eq!(parse(&p).unwrap().payload, &[9, 9]);
    }

    #[test]
    fn v4_impossible_lengths() {
        let mut p = v4_header(10, 0);
        assert!(matches!(parse(&p), Err(PacketError::Invalid { .. })));
        p[0] = 0x43;
        assert!(matches!(parse(&p), Err(PacketError::Invalid { .. })));
        assert!(matches!(
            parse(&v4_header(40, 0x2000)),
            Err(PacketError::Fragment)
        ));
    }

    #[test]
    fn v6_skips_extension_headers() {
        let mut p = vec![0x60, 0, 0, 0, 0, 12, 0, 64];
        p.extend_from_slice(&[0; 32]);
        // hop-by-hop (8 bytes) -> TCP
        p.extend_from_slice(&[6, 0, 0, 0, 0, 0, 0, 0]);
        p.extend_from_slice(&[0xaa, 0xbb, 0xcc, 0xdd]);
        let ip = parse(&p).unwrap();
        assert_eq!(ip.payload, &[0xaa, 0xbb, 0xcc, 0xdd]);
        assert_eq!(ip.payload_len, 4);
    }

    #[test]
    fn v6_extension_past_end_is_invalid() {
        let mut p = vec![0x60, 0, 0, 0, 0, 4, 0, 64];
        p.extend_from_slice(&[0; 32]);
        p.extend_from_slice(&[6, 200, 0, 0]);
        assert!(parse(&p).is_err());
    }
}
