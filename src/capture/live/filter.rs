//! The capture filter in the kernel: a classic BPF program (`SO_ATTACH_FILTER`) accepting
//! only TCP over IPv4/IPv6 that the capture filter passes (the `--port` values, ANDed with
//! the tcpdump-style expression after the options; all TCP when neither is given), so the
//! kernel drops everything else before it is copied to us.
//!
//! The program is compiled by [`crate::capfilter::bpf`] for the interface's link layer: a
//! 14-byte Ethernet header for `ARPHRD_ETHER`/`ARPHRD_LOOPBACK`, the bare IP header for
//! `ARPHRD_NONE` (tun devices). IPv6 extension headers and IP fragments after the first are
//! not matched (like tcpdump's `tcp port N`); the analyzer filters by port again anyway.
//! What the program returns for a packet it accepts is the snapshot length (`-s`): the
//! kernel keeps that much of it.

use super::LiveError;
use super::socket::setsockopt;
use crate::capfilter::CaptureFilter;
use crate::capture::LinkType;
use std::io;

const SO_ATTACH_FILTER: libc::c_int = 26;

/// Compiles `filter` for `linktype` and attaches it to `fd`.
pub fn attach(
    fd: libc::c_int,
    name: &str,
    filter: &CaptureFilter,
    linktype: LinkType,
    snaplen: u32,
) -> Result<(), LiveError> {
    let prog = filter
        .compile(linktype, snaplen)
        .map_err(|e| LiveError::Os {
            what: format!("{name}: cannot build the BPF filter"),
            err: io::Error::other(e.to_string()),
        })?;
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    setsockopt(fd, libc::SOL_SOCKET, SO_ATTACH_FILTER, &fprog).map_err(|err| LiveError::Os {
        what: format!("{name}: cannot attach the BPF filter"),
        err,
    })
}

#[cfg(test)]
mod tests {
    use crate::capfilter::{CaptureFilter, bpf};
    use crate::capture::LinkType;

    const SNAPLEN: u32 = super::super::SNAPLEN;

    fn v4(proto: u8, frag: u16, ihl: u8, sport: u16, dport: u16) -> Vec<u8> {
        let mut p = vec![0u8; ihl as usize * 4 + 20];
        p[0] = 0x40 | ihl;
        p[6..8].copy_from_slice(&frag.to_be_bytes());
        p[9] = proto;
        let t = ihl as usize * 4;
        p[t..t + 2].copy_from_slice(&sport.to_be_bytes());
        p[t + 2..t + 4].copy_from_slice(&dport.to_be_bytes());
        p
    }

    fn v6(next: u8, sport: u16, dport: u16) -> Vec<u8> {
        let mut p = vec![0u8; 60];
        p[0] = 0x60;
        p[6] = next;
        p[40..42].copy_from_slice(&sport.to_be_bytes());
        p[42..44].copy_from_slice(&dport.to_be_bytes());
        p
    }

    fn eth(ethertype: u16, ip: Vec<u8>) -> Vec<u8> {
        let mut p = vec![0u8; 12];
        p.extend_from_slice(&ethertype.to_be_bytes());
        p.extend(ip);
        p
    }

    /// The `--port` list goes through the capture-filter compiler: 64 ports and more once
    /// made the old one panic ("BPF jump too long").
    #[test]
    fn filter_with_200_ports() {
        let ports: Vec<u16> = (7000..7200).collect();
        for lt in [LinkType::ETHERNET, LinkType::RAW] {
            let prog = CaptureFilter::ports(&ports).compile(lt, SNAPLEN).unwrap();
            bpf::validate(&prog).unwrap();
            let wrap = |t, ip: Vec<u8>| {
                if lt == LinkType::ETHERNET {
                    eth(t, ip)
                } else {
                    ip
                }
            };
            assert_eq!(
                bpf::run(&prog, &wrap(0x0800, v4(6, 0, 5, 7199, 1))),
                SNAPLEN
            );
            assert_eq!(
                bpf::run(&prog, &wrap(0x0800, v4(6, 0, 5, 1, 7000))),
                SNAPLEN
            );
            assert_eq!(bpf::run(&prog, &wrap(0x0800, v4(6, 0, 5, 1, 7200))), 0);
            assert_eq!(bpf::run(&prog, &wrap(0x0800, v4(6, 0x10, 5, 1, 7000))), 0);
            assert_eq!(bpf::run(&prog, &wrap(0x86dd, v6(6, 7100, 2))), SNAPLEN);
            assert_eq!(bpf::run(&prog, &wrap(0x86dd, v6(6, 6999, 2))), 0);
            assert_eq!(bpf::run(&prog, &wrap(0x86dd, v6(17, 7100, 2))), 0);
        }
    }
}
