//! Key derivation: TLS 1.3 HKDF-Expand-Label (RFC 8446 §7.1, §7.2, §7.3) and the TLS 1.2
//! PRF (RFC 5246 §5, §6.3, §8.1; RFC 7627 extended master secret).

use super::suite::{Hash, Suite};
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Sha256, Sha384};

/// HMAC over the concatenation of `parts`. Any key length is valid for HMAC.
pub fn hmac(hash: Hash, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    macro_rules! run {
        ($h:ty) => {{
            // HMAC takes keys of any length; an error here cannot happen, and would only
            // make the MAC compare unequal.
            let Ok(mut m) = <Hmac<$h> as KeyInit>::new_from_slice(key) else {
                return Vec::new();
            };
            for p in parts {
                m.update(p);
            }
            m.finalize().into_bytes().to_vec()
        }};
    }
    match hash {
        Hash::Sha1 => run!(Sha1),
        Hash::Sha256 => run!(Sha256),
        Hash::Sha384 => run!(Sha384),
    }
}

/// HKDF-Expand (RFC 5869 §2.3) with PRK `prk`. None when `len` exceeds 255 hash lengths
/// or the PRK is shorter than the hash (no logged secret is).
pub fn hkdf_expand(hash: Hash, prk: &[u8], info: &[u8], len: usize) -> Option<Vec<u8>> {
    let mut out = vec![0u8; len];
    let ok = match hash {
        Hash::Sha1 => hkdf::Hkdf::<Sha1>::from_prk(prk)
            .ok()?
            .expand(info, &mut out)
            .is_ok(),
        Hash::Sha256 => hkdf::Hkdf::<Sha256>::from_prk(prk)
            .ok()?
            .expand(info, &mut out)
            .is_ok(),
        Hash::Sha384 => hkdf::Hkdf::<Sha384>::from_prk(prk)
            .ok()?
            .expand(info, &mut out)
            .is_ok(),
    };
    ok.then_some(out)
}

/// HKDF-Expand-Label(secret, label, context, length) with the "tls13 " prefix.
/// None for lengths the HkdfLabel structure cannot carry.
pub fn hkdf_expand_label(
    hash: Hash,
    secret: &[u8],
    label: &[u8],
    context: &[u8],
    len: usize,
) -> Option<Vec<u8>> {
    let full = 6 + label.len();
    if len > u16::MAX as usize || full > 255 || context.len() > 255 {
        return None;
    }
    let mut info = Vec::with_capacity(4 + full + context.len());
    info.extend_from_slice(&(len as u16).to_be_bytes());
    info.push(full as u8);
    info.extend_from_slice(b"tls13 ");
    info.extend_from_slice(label);
    info.push(context.len() as u8);
    info.extend_from_slice(context);
    hkdf_expand(hash, secret, &info, len)
}

/// Record protection key and IV (RFC 8446 §7.3).
#[derive(Clone, PartialEq, Eq)]
pub struct TrafficKeys {
    /// The AEAD key, [`Cipher::key_len`](super::suite::Cipher::key_len) bytes.
    pub key: Vec<u8>,
    /// The static IV, XORed with the record's sequence number to make its nonce (RFC 8446
    /// 5.3).
    pub iv: [u8; 12],
}

impl std::fmt::Debug for TrafficKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TrafficKeys(..)")
    }
}

/// TLS 1.3: the write key and IV from a traffic secret. None for a suite that is not a
/// supported AEAD or a secret shorter than the hash (what a key log line can hold).
pub fn traffic_keys(suite: &Suite, secret: &[u8]) -> Option<TrafficKeys> {
    if !suite.supported || !suite.cipher.is_aead() || secret.len() < suite.prf.output_len() {
        return None;
    }
    let key = hkdf_expand_label(suite.prf, secret, b"key", b"", suite.cipher.key_len())?;
    let iv = hkdf_expand_label(suite.prf, secret, b"iv", b"", 12)?;
    Some(TrafficKeys {
        key,
        iv: iv.try_into().ok()?,
    })
}

/// TLS 1.3 KeyUpdate: application_traffic_secret_N+1 (RFC 8446 §7.2).
pub fn next_traffic_secret(hash: Hash, secret: &[u8]) -> Option<Vec<u8>> {
    hkdf_expand_label(hash, secret, b"traffic upd", b"", hash.output_len())
}

/// TLS 1.2 P_hash (RFC 5246 §5) of `secret` and `label ‖ seed`, filling `out`.
pub fn prf(hash: Hash, secret: &[u8], label: &[u8], seed: &[u8], out: &mut [u8]) {
    let mut a = hmac(hash, secret, &[label, seed]);
    let mut at = 0;
    while at < out.len() {
        let block = hmac(hash, secret, &[&a, label, seed]);
        let n = block.len().min(out.len() - at);
        out[at..at + n].copy_from_slice(&block[..n]);
        at += n;
        a = hmac(hash, secret, &[&a]);
    }
}

/// TLS 1.2 master secret from the pre-master secret (RFC 5246 §8.1).
pub fn master_secret(
    hash: Hash,
    pre_master: &[u8],
    client_random: &[u8; 32],
    server_random: &[u8; 32],
) -> [u8; 48] {
    let mut seed = [0u8; 64];
    seed[..32].copy_from_slice(client_random);
    seed[32..].copy_from_slice(server_random);
    let mut out = [0u8; 48];
    prf(hash, pre_master, b"master secret", &seed, &mut out);
    out
}

/// RFC 7627 extended master secret: seeded by the handshake hash up to ClientKeyExchange.
pub fn extended_master_secret(hash: Hash, pre_master: &[u8], session_hash: &[u8]) -> [u8; 48] {
    let mut out = [0u8; 48];
    prf(
        hash,
        pre_master,
        b"extended master secret",
        session_hash,
        &mut out,
    );
    out
}

/// TLS 1.2 key block, split (RFC 5246 §6.3). `iv` is the implicit part: 4 bytes for GCM
/// (the salt), 12 for ChaCha20-Poly1305 (RFC 7905), 0 for CBC (explicit per record).
#[derive(Clone, PartialEq, Eq)]
pub struct KeyBlock {
    /// The client's MAC key (CBC suites; empty for AEAD suites).
    pub client_mac: Vec<u8>,
    /// The server's MAC key (CBC suites; empty for AEAD suites).
    pub server_mac: Vec<u8>,
    /// The client's write key: decrypts client-to-server records.
    pub client_key: Vec<u8>,
    /// The server's write key: decrypts server-to-client records.
    pub server_key: Vec<u8>,
    /// The client's implicit IV (see above for its length).
    pub client_iv: Vec<u8>,
    /// The server's implicit IV.
    pub server_iv: Vec<u8>,
}

impl std::fmt::Debug for KeyBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyBlock(..)")
    }
}

/// TLS 1.2 "key expansion" of a master secret.
pub fn key_block(
    hash: Hash,
    master: &[u8],
    server_random: &[u8; 32],
    client_random: &[u8; 32],
    mac_len: usize,
    key_len: usize,
    iv_len: usize,
) -> KeyBlock {
    let mut seed = [0u8; 64];
    seed[..32].copy_from_slice(server_random);
    seed[32..].copy_from_slice(client_random);
    let mut block = vec![0u8; 2 * (mac_len + key_len + iv_len)];
    prf(hash, master, b"key expansion", &seed, &mut block);
    let mut rest = &block[..];
    let mut take = |n: usize| {
        let (a, b) = rest.split_at(n);
        rest = b;
        a.to_vec()
    };
    KeyBlock {
        client_mac: take(mac_len),
        server_mac: take(mac_len),
        client_key: take(key_len),
        server_key: take(key_len),
        client_iv: take(iv_len),
        server_iv: take(iv_len),
    }
}

/// The key block of a suite: its MAC, key and implicit IV lengths. None for suites not
/// decrypted here.
pub fn suite_key_block(
    suite: &Suite,
    master: &[u8],
    server_random: &[u8; 32],
    client_random: &[u8; 32],
) -> Option<KeyBlock> {
    use super::suite::Cipher;
    if !suite.supported || suite.version != super::suite::SuiteVersion::Tls12 {
        return None;
    }
    let (mac_len, iv_len) = match suite.cipher {
        Cipher::Aes128Gcm | Cipher::Aes256Gcm => (0, 4),
        Cipher::ChaCha20Poly1305 => (0, 12),
        Cipher::Aes128Cbc | Cipher::Aes256Cbc => (suite.mac?.output_len(), 0),
        Cipher::Other => return None,
    };
    Some(key_block(
        suite.prf,
        master,
        server_random,
        client_random,
        mac_len,
        suite.cipher.key_len(),
        iv_len,
    ))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::tls::keylog::unhex;
    use crate::tls::suite::suite;

    pub(crate) fn h(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        unhex(s.as_bytes()).unwrap()
    }

    // RFC 8448 §3 (Simple 1-RTT Handshake), TLS_AES_128_GCM_SHA256.
    const SERVER_HS: &str = "b6 7b 7d 69 0c c1 6c 4e 75 e5 42 13 cb 2d 37 b4 e9 c9 12 bc
        de d9 10 5d 42 be fd 59 d3 91 ad 38";
    const CLIENT_HS: &str = "b3 ed db 12 6e 06 7f 35 a7 80 b3 ab f4 5e 2d 8f 3b 1a 95 07
        38 f5 2e 96 00 74 6a 0e 27 a5 5a 21";
    const SERVER_AP: &str = "a1 1a f9 f0 55 31 f8 56 ad 47 11 6b 45 a9 50 32 82 04 b4 f4
        4b fb 6b 3a 4b 4f 1f 3f cb 63 16 43";
    const CLIENT_AP: &str = "9e 40 64 6c e7 9a 7f 9d c0 5a f8 88 9b ce 65 52 87 5a fa 0b
        06 df 00 87 f7 92 eb b7 c1 75 04 a5";

    #[test]
    fn rfc8448_traffic_keys() {
        let s = suite(0x1301).unwrap();
        let cases = [
            (
                SERVER_HS,
                "3f ce 51 60 09 c2 17 27 d0 f2 e4 e8 6e e4 03 bc",
                "5d 31 3e b2 67 12 76 ee 13 00 0b 30",
            ),
            (
                CLIENT_HS,
                "db fa a6 93 d1 76 2c 5b 66 6a f5 d9 50 25 8d 01",
                "5b d3 c7 1b 83 6e 0b 76 bb 73 26 5f",
            ),
            (
                SERVER_AP,
                "9f 02 28 3b 6c 9c 07 ef c2 6b b9 f2 ac 92 e3 56",
                "cf 78 2b 88 dd 83 54 9a ad f1 e9 84",
            ),
            (
                CLIENT_AP,
                "17 42 2d da 59 6e d5 d9 ac d8 90 e3 c6 3f 50 51",
                "5b 78 92 3d ee 08 57 90 33 e5 23 d9",
            ),
        ];
        for (secret, key, iv) in cases {
            let k = traffic_keys(s, &h(secret)).unwrap();
            assert_eq!(k.key, h(key));
            assert_eq!(k.iv.to_vec(), h(iv));
        }
    }

    // The values below were computed by scripts/tls_vectors.py (Python hmac/hashlib, written
    // independently of this code); the SHA-384 PRF also agrees with `openssl kdf TLS1-PRF`.

    #[test]
    fn key_update_and_sha384_labels() {
        assert_eq!(
            next_traffic_secret(Hash::Sha256, &h(SERVER_AP)).unwrap(),
            h("51921b8aa3001976eb401d0a4319a8516416a6c56001a357e5d162031e84f916")
        );
        let s = suite(0x1302).unwrap();
        let secret: Vec<u8> = (0..48).collect();
        let k = traffic_keys(s, &secret).unwrap();
        assert_eq!(
            k.key,
            h("6877d022f1c61d24ebb7487c16752d9a4798e40431c75b39320e537c90e23225")
        );
        assert_eq!(k.iv.to_vec(), h("42822531a0fe88648fc09e9f"));
        assert_eq!(
            next_traffic_secret(Hash::Sha384, &secret).unwrap().len(),
            48
        );
    }

    #[test]
    fn tls12_prf_sha256_ietf_vector() {
        // The TLS WG's P_SHA256 vector; the full 100 bytes also come out of an independent
        // Python implementation (scripts/tls_vectors.py).
        let mut out = [0u8; 100];
        prf(
            Hash::Sha256,
            &h("9b be 43 6b a9 40 f0 17 b1 76 52 84 9a 71 db 35"),
            b"test label",
            &h("a0 ba 9f 93 6c da 31 18 27 a6 f7 96 ff d5 19 8c"),
            &mut out,
        );
        assert_eq!(
            out.to_vec(),
            h(
                "e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a
               6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab
               4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff701
               87347b66"
            )
        );
    }

    #[test]
    fn tls12_prf_sha384_master_secrets_key_block() {
        let mut out = [0u8; 80];
        let secret: Vec<u8> = (0..48).collect();
        let seed: Vec<u8> = (100..164).collect();
        prf(Hash::Sha384, &secret, b"test label", &seed, &mut out);
        assert_eq!(
            out.to_vec(),
            h(
                "34e1bc25892a958fabddb5848ccd59452f263c57eeb9225745c711f6d2176131
               43b88bf058cccdb17f74f7cde991dd4622093ea2c4628472227464ea6ed45370
               f11e0fff2a1c94a90359d3f760125e71"
            )
        );
        let mut pm = vec![3u8, 3];
        pm.extend(0..46u8);
        let cr: [u8; 32] = std::array::from_fn(|i| i as u8);
        let sr: [u8; 32] = std::array::from_fn(|i| 32 + i as u8);
        let ms = master_secret(Hash::Sha256, &pm, &cr, &sr);
        assert_eq!(
            ms.to_vec(),
            h(
                "d2c76cb7c4c86a909737874ceccddc57f2c211e2a4c6f44532306227ba517308
               9e3a96968874bb7e9ff14f3ed8c6a41a"
            )
        );
        use sha2::Digest;
        let session_hash = sha2::Sha256::digest(b"handshake");
        assert_eq!(
            extended_master_secret(Hash::Sha384, &pm, &session_hash).to_vec(),
            h(
                "792c11ddae9a634debdc5fbae5cdd9f27b45b278dc7dd4729d686621f81d9df3
               3596d62b810a80d5fe7dacd1dbeedb10"
            )
        );
        let kb = key_block(Hash::Sha256, &ms, &sr, &cr, 20, 16, 0);
        let want = h(
            "cbd61a5bf8df1c58323cd4d603a37b7c08f8084d9e8217b4029be73d5640a3a4
                      4a1b2db43eac77d52d632a6f77b617aa8114066249251a25c33c7f6a5fcecb67
                      af573e43fe17701f",
        );
        assert_eq!(kb.client_mac, want[..20]);
        assert_eq!(kb.server_mac, want[20..40]);
        assert_eq!(kb.client_key, want[40..56]);
        assert_eq!(kb.server_key, want[56..72]);
        assert!(kb.client_iv.is_empty());
    }

    #[test]
    fn hkdf_expand_label_rejects_what_cannot_be_encoded() {
        assert!(hkdf_expand_label(Hash::Sha256, &[1; 32], &[b'a'; 250], b"", 16).is_none());
        assert!(hkdf_expand_label(Hash::Sha256, &[1; 32], b"key", &[0; 256], 16).is_none());
        assert!(hkdf_expand_label(Hash::Sha256, &[1; 32], b"key", b"", 255 * 32 + 1).is_none());
        assert!(traffic_keys(suite(0x1301).unwrap(), &[1; 31]).is_none());
        assert!(traffic_keys(suite(0x1304).unwrap(), &[1; 32]).is_none());
        assert!(traffic_keys(suite(0x1302).unwrap(), &[1; 48]).is_some());
    }
}
