//! Community ID flow hashes (Corelight's spec, version 1): one string per connection that Zeek,
//! Suricata, tshark and others compute the same way, so a connection found here can be found
//! in their logs.
//!
//! `1:` + base64(SHA-1(seed ‖ src ip ‖ dst ip ‖ proto ‖ 0 ‖ src port ‖ dst port)), all in
//! network byte order, with the endpoints ordered so that the smaller one comes first: the
//! smaller address, or for equal addresses the smaller port.

use base64::Engine;
use sha1::{Digest, Sha1};
use std::net::{IpAddr, SocketAddr};

const PROTO_TCP: u8 = 6;

/// The Community ID of the TCP connection between `a` and `b`, in either order.
///
/// `seed` is the spec's optional seed (0 unless every tool that compares IDs agrees on
/// another). Addresses of different families are hashed as given, each at its own length;
/// a real connection never mixes them.
pub fn community_id(a: SocketAddr, b: SocketAddr, seed: u16) -> String {
    community_id_proto(a, b, PROTO_TCP, seed)
}

/// Same, for any transport with ports (6 TCP, 17 UDP, 132 SCTP).
pub fn community_id_proto(a: SocketAddr, b: SocketAddr, proto: u8, seed: u16) -> String {
    let (ka, kb) = (key(a.ip()), key(b.ip()));
    // The spec compares the addresses as byte strings in network order, then the ports.
    let (src, dst, sport, dport) = if (ka.as_slice(), a.port()) <= (kb.as_slice(), b.port()) {
        (ka, kb, a.port(), b.port())
    } else {
        (kb, ka, b.port(), a.port())
    };
    let mut h = Sha1::new();
    h.update(seed.to_be_bytes());
    h.update(src.as_slice());
    h.update(dst.as_slice());
    h.update([proto, 0]);
    h.update(sport.to_be_bytes());
    h.update(dport.to_be_bytes());
    let digest = h.finalize();
    let mut out = String::with_capacity(30);
    out.push_str("1:");
    base64::engine::general_purpose::STANDARD.encode_string(digest, &mut out);
    out
}

/// An address as the bytes the hash takes: 4 for IPv4, 16 for IPv6.
struct Key {
    bytes: [u8; 16],
    len: usize,
}

impl Key {
    fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

fn key(ip: IpAddr) -> Key {
    let mut bytes = [0u8; 16];
    match ip {
        IpAddr::V4(v4) => {
            bytes[..4].copy_from_slice(&v4.octets());
            Key { bytes, len: 4 }
        }
        IpAddr::V6(v6) => {
            bytes.copy_from_slice(&v6.octets());
            Key { bytes, len: 16 }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(ip: &str, port: u16) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), port)
    }

    /// TCP vectors from the spec's own baseline: corelight/community-id-spec,
    /// baseline/baseline_deflt.json (seed 0) and baseline/baseline_seed1.json (seed 1),
    /// commit b1fe530faa0c6edc56fad01abf0bfe71f01134ed.
    const VECTORS: &[(&str, u16, &str, u16, u16, &str)] = &[
        (
            "128.232.110.120",
            34855,
            "66.35.250.204",
            80,
            0,
            "1:LQU9qZlK+B5F3KDmev6m5PMibrg=",
        ),
        (
            "2001:470:e5bf:dead:4957:2174:e82c:4887",
            63943,
            "2607:f8b0:400c:c03::1a",
            25,
            0,
            "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=",
        ),
        (
            "2001:470:e5bf:dead:4957:2174:e82c:4887",
            63943,
            "2607:f8b0:400c:c03::1a",
            25,
            1,
            "1:eJYTW6AOzFLlSUoESovMjnu7rMw=",
        ),
        (
            "128.232.110.120",
            34855,
            "66.35.250.204",
            80,
            1,
            "1:3V71V58M3Ksw/yuFALMcW0LAHvc=",
        ),
    ];

    #[test]
    fn spec_baseline_vectors_both_directions() {
        for &(s, sp, d, dp, seed, want) in VECTORS {
            assert_eq!(
                community_id(sa(s, sp), sa(d, dp), seed),
                want,
                "{s}:{sp} {d}:{dp}"
            );
            assert_eq!(
                community_id(sa(d, dp), sa(s, sp), seed),
                want,
                "{d}:{dp} {s}:{sp}"
            );
        }
    }

    #[test]
    fn equal_addresses_order_by_port() {
        // Loopback conversations (every sample here) share the address: ports decide.
        let a = community_id(sa("127.0.0.1", 48832), sa("127.0.0.1", 7272), 0);
        let b = community_id(sa("127.0.0.1", 7272), sa("127.0.0.1", 48832), 0);
        assert_eq!(a, b);
        assert!(a.starts_with("1:") && a.len() == 30, "{a}");
    }
}
