//! Link-layer headers: strips them and hands back the IP packet.

use super::{PacketError, be16, need};
use crate::capture::LinkType;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;

/// Returns the network-layer bytes of a frame of link type `linktype`.
///
/// Supported: Ethernet (with any number of 802.1Q / 802.1ad VLAN tags), Linux cooked v1 and
/// v2, BSD loopback (NULL and LOOP) and raw IP link types.
///
/// # Errors
/// [`PacketError::NotTcp`] for frames that carry something other than IP (ARP, a loopback
/// family other than inet/inet6); [`PacketError::UnsupportedLinkType`] for any other link
/// type; `Truncated` when the link header is cut.
pub fn strip(linktype: LinkType, d: &[u8]) -> Result<&[u8], PacketError> {
    match linktype {
        LinkType::ETHERNET => ethernet(d),
        LinkType::LINUX_SLL => {
            // 16 bytes: packet type, ARPHRD, address length, 8 address bytes, protocol.
            need("sll", d, 16)?;
            by_ethertype(be16(d, 14), &d[16..])
        }
        LinkType::LINUX_SLL2 => {
            // 20 bytes: protocol, reserved, ifindex, ARPHRD, packet type, address length, address.
            need("sll2", d, 20)?;
            by_ethertype(be16(d, 0), &d[20..])
        }
        LinkType::NULL | LinkType::LOOP => {
            // A 4-byte address family, in the byte order of the capturing host (NULL) or
            // network order (LOOP). AF_INET is 2 everywhere; AF_INET6 is 10, 24, 28 or 30.
            need("null", d, 4)?;
            let le = u32::from_le_bytes([d[0], d[1], d[2], d[3]]);
            let be = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
            let fam = if linktype == LinkType::LOOP {
                be
            } else {
                le.min(be)
            };
            match fam {
                2 | 10 | 24 | 28 | 30 => Ok(&d[4..]),
                _ => Err(PacketError::NotTcp),
            }
        }
        LinkType::RAW
        | LinkType::RAW_BSD12
        | LinkType::RAW_BSD14
        | LinkType::IPV4
        | LinkType::IPV6 => Ok(d),
        other => Err(PacketError::UnsupportedLinkType(other)),
    }
}

fn ethernet(d: &[u8]) -> Result<&[u8], PacketError> {
    need("ether", d, 14)?;
    let mut ethertype = be16(d, 12);
    let mut at = 14;
    // 802.1Q and QinQ: each tag is 4 bytes, TPID then TCI; the inner ethertype follows.
    while matches!(
        ethertype,
        ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD
    ) {
        need("vlan", d, at + 4)?;
        ethertype = be16(d, at + 2);
        at += 4;
    }
    by_ethertype(ethertype, &d[at..])
}

fn by_ethertype(ethertype: u16, rest: &[u8]) -> Result<&[u8], PacketError> {
    match ethertype {
        ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => Ok(rest),
        _ => Err(PacketError::NotTcp),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ethernet_with_qinq_tags() {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x88, 0xa8, 0x00, 0x64, 0x81, 0x00, 0x00, 0x0a, 0x08, 0x00]);
        f.extend_from_slice(&[0x45, 0, 0, 20]);
        assert_eq!(strip(LinkType::ETHERNET, &f).unwrap(), &[0x45, 0, 0, 20]);
    }

    #[test]
    fn truncated_vlan_tag_is_reported() {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x81, 0x00, 0x00]);
        assert!(matches!(
            strip(LinkType::ETHERNET, &f),
            Err(PacketError::Truncated { .. })
        ));
    }

    #[test]
    fn null_link_both_byte_orders() {
        assert!(strip(LinkType::NULL, &[2, 0, 0, 0, 0x45]).is_ok());
        assert!(strip(LinkType::NULL, &[0, 0, 0, 2, 0x45]).is_ok());
        assert!(strip(LinkType::NULL, &[30, 0, 0, 0, 0x60]).is_ok());
        assert_eq!(
            strip(LinkType::NULL, &[7, 0, 0, 0]),
            Err(PacketError::NotTcp)
        );
    }

    #[test]
    fn unknown_link_type() {
        assert_eq!(
            strip(LinkType(147), &[0; 40]),
            Err(PacketError::UnsupportedLinkType(LinkType(147)))
        );
    }
}
