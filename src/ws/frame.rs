//! Frame headers (RFC 6455 section 5.2) and masking.

/// A parsed frame header. Parsing never fails on values: an analyzer reports odd values
/// (reserved opcodes, a set length MSB) rather than refusing them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// FIN: this frame ends its message (control frames must have it).
    pub fin: bool,
    /// RSV1, RSV2, RSV3 as bits 2, 1, 0 (so RSV1 is `4`). RSV1 marks a compressed message
    /// when permessage-deflate was negotiated (RFC 7692 §6); otherwise each must be 0.
    pub rsv: u8,
    /// The 4-bit opcode (§5.2, §11.8): 0 continuation, 1 text, 2 binary, 8 close, 9 ping,
    /// 10 pong; the others are reserved and left for the caller to report.
    pub opcode: u8,
    /// The masking key (§5.3), present when the MASK bit is set: clients must mask every
    /// frame, servers must not (§5.1).
    pub mask: Option<[u8; 4]>,
    /// Payload length in bytes, from the 7-bit, 16-bit or 64-bit big-endian form. The 64-bit
    /// form's most significant bit, which must be 0, is not checked.
    pub payload_len: u64,
    /// Bytes the header takes on the wire, mask key included (2 to [`Header::MAX_LEN`]); the
    /// payload starts right after.
    pub header_len: u8,
    /// The length used a longer encoding than needed (126 form for < 126, 127 for < 65536).
    pub non_minimal: bool,
}

impl Header {
    /// The longest header: 2 bytes, an 8-byte extended length and a 4-byte mask key.
    pub const MAX_LEN: usize = 14;

    /// Parses the header at the start of `d` (which may hold the payload and more after it).
    /// `None` when `d` ends before the header does ([`Header::needed`] says how much it needs).
    #[inline]
    pub fn parse(d: &[u8]) -> Option<Header> {
        if d.len() < 2 {
            return None;
        }
        let (b0, b1) = (d[0], d[1]);
        let masked = b1 & 0x80 != 0;
        let (payload_len, mut at, non_minimal) = match b1 & 0x7f {
            126 => {
                if d.len() < 4 {
                    return None;
                }
                let l = u16::from_be_bytes([d[2], d[3]]) as u64;
                (l, 4, l < 126)
            }
            127 => {
                if d.len() < 10 {
                    return None;
                }
                let mut b = [0u8; 8];
                b.copy_from_slice(&d[2..10]);
                let l = u64::from_be_bytes(b);
                (l, 10, l < 65536)
            }
            n => (n as u64, 2, false),
        };
        let mask = if masked {
            if d.len() < at + 4 {
                return None;
            }
            let m = [d[at], d[at + 1], d[at + 2], d[at + 3]];
            at += 4;
            Some(m)
        } else {
            None
        };
        Some(Header {
            fin: b0 & 0x80 != 0,
            rsv: (b0 >> 4) & 0x07,
            opcode: b0 & 0x0f,
            mask,
            payload_len,
            header_len: at as u8,
            non_minimal,
        })
    }

    /// Bytes this header needs in total, given its first two bytes.
    pub fn needed(b1: u8) -> usize {
        let base = match b1 & 0x7f {
            126 => 4,
            127 => 10,
            _ => 2,
        };
        base + if b1 & 0x80 != 0 { 4 } else { 0 }
    }

    /// Serialises a header in the minimal length encoding (`header_len` and `non_minimal`
    /// are ignored); used by tests and the sample generator.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(14);
        v.push((self.fin as u8) << 7 | (self.rsv & 7) << 4 | (self.opcode & 0x0f));
        let m = if self.mask.is_some() { 0x80 } else { 0 };
        if self.payload_len < 126 {
            v.push(m | self.payload_len as u8);
        } else if self.payload_len < 65536 {
            v.push(m | 126);
            v.extend_from_slice(&(self.payload_len as u16).to_be_bytes());
        } else {
            v.push(m | 127);
            v.extend_from_slice(&self.payload_len.to_be_bytes());
        }
        if let Some(k) = self.mask {
            v.extend_from_slice(&k);
        }
        v
    }
}

/// XORs `buf` with the masking key, `offset` being the position of `buf[0]` within the frame
/// payload. Eight bytes at a time: the key repeated to a u64 is the same for every aligned
/// step, so the loop is a plain XOR the compiler vectorises.
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: u64) {
    let rot = (offset % 4) as usize;
    let k = [
        key[rot],
        key[(rot + 1) % 4],
        key[(rot + 2) % 4],
        key[(rot + 3) % 4],
    ];
    let k8 = u64::from_ne_bytes([k[0], k[1], k[2], k[3], k[0], k[1], k[2], k[3]]);
    let mut chunks = buf.chunks_exact_mut(8);
    for c in &mut chunks {
        let v = u64::from_ne_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) ^ k8;
        c.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= k[i % 4];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(buf: &mut [u8], key: [u8; 4], offset: u64) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= key[((offset + i as u64) % 4) as usize];
        }
    }

    #[test]
    fn mask_matches_naive_at_every_offset_and_length() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        for off in 0..8u64 {
            for len in 0..70 {
                let orig: Vec<u8> = (0..len as u8).map(|i| i.wrapping_mul(31)).collect();
                let (mut a, mut b) = (orig.clone(), orig.clone());
                apply_mask(&mut a, key, off);
                naive(&mut b, key, off);
                assert_eq!(a, b, "off {off} len {len}");
            }
        }
    }

    #[test]
    fn rfc6455_masked_hello() {
        // RFC 6455 section 5.7: a single-frame masked text message "Hello".
        let f = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let h = Header::parse(&f).unwrap();
        assert_eq!(
            (h.fin, h.opcode, h.payload_len, h.header_len),
            (true, 1, 5, 6)
        );
        let mut p = f[6..].to_vec();
        apply_mask(&mut p, h.mask.unwrap(), 0);
        assert_eq!(&p, b"Hello");
    }

    #[test]
    fn length_encodings_at_boundaries() {
        for len in [0u64, 125, 126, 127, 65535, 65536, 1 << 32, u64::MAX >> 1] {
            for mask in [None, Some([1, 2, 3, 4])] {
                let h = Header {
                    fin: true,
                    rsv: 0,
                    opcode: 2,
                    mask,
                    payload_len: len,
                    header_len: 0,
                    non_minimal: false,
                };
                let enc = h.encode();
                let p = Header::parse(&enc).unwrap();
                assert_eq!(p.payload_len, len);
                assert_eq!(p.header_len as usize, enc.len());
                assert_eq!(Header::needed(enc[1]), enc.len());
                assert!(!p.non_minimal);
                // Every proper prefix asks for more bytes.
                for cut in 0..enc.len() {
                    assert_eq!(Header::parse(&enc[..cut]), None);
                }
            }
        }
        let expect = [(125u64, 2usize), (126, 4), (65535, 4), (65536, 10)];
        for (len, hl) in expect {
            let h = Header {
                fin: true,
                rsv: 0,
                opcode: 1,
                mask: None,
                payload_len: len,
                header_len: 0,
                non_minimal: false,
            };
            assert_eq!(h.encode().len(), hl, "len {len}");
        }
    }

    #[test]
    fn non_minimal_length_is_flagged() {
        assert!(Header::parse(&[0x82, 126, 0, 5]).unwrap().non_minimal);
        assert!(
            Header::parse(&[0x82, 127, 0, 0, 0, 0, 0, 0, 0, 5])
                .unwrap()
                .non_minimal
        );
    }
}
