//! Cipher suites: IANA id → name, protocol version, record protection, hash.

/// The hash of a suite: HKDF/PRF hash, and for CBC suites also the record MAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hash {
    /// SHA-1: only as the record MAC of TLS 1.2 `_SHA` CBC suites.
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-384 (`_SHA384` suites).
    Sha384,
}

impl Hash {
    /// Output length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            Hash::Sha1 => 20,
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
        }
    }
}

/// Bulk cipher of a suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cipher {
    /// AES-128 in GCM (RFC 5288, RFC 8446), an AEAD.
    Aes128Gcm,
    /// AES-256 in GCM, an AEAD.
    Aes256Gcm,
    /// ChaCha20-Poly1305 (RFC 7905, RFC 8439), an AEAD.
    ChaCha20Poly1305,
    /// AES-128 in CBC mode with a separate HMAC (TLS 1.2 and earlier).
    Aes128Cbc,
    /// AES-256 in CBC mode with a separate HMAC (TLS 1.2 and earlier).
    Aes256Cbc,
    /// Named, but not decrypted here (CCM, 3DES, RC4, ARIA, Camellia, NULL, ...).
    Other,
}

impl Cipher {
    /// Its key size in bytes; 0 for [`Cipher::Other`].
    pub fn key_len(self) -> usize {
        match self {
            Cipher::Aes128Gcm | Cipher::Aes128Cbc => 16,
            Cipher::Aes256Gcm | Cipher::ChaCha20Poly1305 | Cipher::Aes256Cbc => 32,
            Cipher::Other => 0,
        }
    }
    /// An AEAD cipher: the record carries a tag and no separate MAC.
    pub fn is_aead(self) -> bool {
        matches!(
            self,
            Cipher::Aes128Gcm | Cipher::Aes256Gcm | Cipher::ChaCha20Poly1305
        )
    }
}

/// Which protocol versions a suite belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SuiteVersion {
    /// TLS 1.3 suites (0x13xx): cipher + HKDF hash only.
    Tls13,
    /// TLS 1.2 (and earlier) suites: key exchange + cipher + MAC/PRF hash.
    Tls12,
}

/// One row of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Suite {
    /// The IANA code point (0x1301 is TLS_AES_128_GCM_SHA256).
    pub id: u16,
    /// The IANA name (`TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`).
    pub name: &'static str,
    /// Which versions' key schedule and record layout it uses.
    pub version: SuiteVersion,
    /// How its records are protected.
    pub cipher: Cipher,
    /// TLS 1.3: HKDF hash. TLS 1.2: PRF hash (SHA-256 unless the name ends in SHA384).
    pub prf: Hash,
    /// CBC suites: the record MAC. AEAD suites: None.
    pub mac: Option<Hash>,
    /// Whether this crate decrypts it.
    pub supported: bool,
}

const fn s13(id: u16, name: &'static str, cipher: Cipher, prf: Hash, supported: bool) -> Suite {
    Suite {
        id,
        name,
        version: SuiteVersion::Tls13,
        cipher,
        prf,
        mac: None,
        supported,
    }
}

const fn aead(id: u16, name: &'static str, cipher: Cipher, prf: Hash) -> Suite {
    Suite {
        id,
        name,
        version: SuiteVersion::Tls12,
        cipher,
        prf,
        mac: None,
        supported: true,
    }
}

const fn cbc(id: u16, name: &'static str, cipher: Cipher, mac: Hash) -> Suite {
    Suite {
        id,
        name,
        version: SuiteVersion::Tls12,
        cipher,
        prf: match mac {
            Hash::Sha384 => Hash::Sha384,
            _ => Hash::Sha256,
        },
        mac: Some(mac),
        supported: true,
    }
}

const fn other(id: u16, name: &'static str) -> Suite {
    Suite {
        id,
        name,
        version: SuiteVersion::Tls12,
        cipher: Cipher::Other,
        prf: Hash::Sha256,
        mac: None,
        supported: false,
    }
}

use Cipher::*;
use Hash::*;

/// Every suite this crate names. Sorted by id.
pub static SUITES: &[Suite] = &[
    other(0x0000, "TLS_NULL_WITH_NULL_NULL"),
    other(0x0004, "TLS_RSA_WITH_RC4_128_MD5"),
    other(0x0005, "TLS_RSA_WITH_RC4_128_SHA"),
    other(0x000a, "TLS_RSA_WITH_3DES_EDE_CBC_SHA"),
    other(0x0016, "TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA"),
    cbc(0x002f, "TLS_RSA_WITH_AES_128_CBC_SHA", Aes128Cbc, Sha1),
    cbc(0x0033, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA", Aes128Cbc, Sha1),
    cbc(0x0035, "TLS_RSA_WITH_AES_256_CBC_SHA", Aes256Cbc, Sha1),
    cbc(0x0039, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA", Aes256Cbc, Sha1),
    cbc(0x003c, "TLS_RSA_WITH_AES_128_CBC_SHA256", Aes128Cbc, Sha256),
    cbc(0x003d, "TLS_RSA_WITH_AES_256_CBC_SHA256", Aes256Cbc, Sha256),
    other(0x0041, "TLS_RSA_WITH_CAMELLIA_128_CBC_SHA"),
    cbc(
        0x0067,
        "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256",
        Aes128Cbc,
        Sha256,
    ),
    cbc(
        0x006b,
        "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256",
        Aes256Cbc,
        Sha256,
    ),
    other(0x0084, "TLS_RSA_WITH_CAMELLIA_256_CBC_SHA"),
    other(0x008c, "TLS_PSK_WITH_AES_128_CBC_SHA"),
    aead(0x009c, "TLS_RSA_WITH_AES_128_GCM_SHA256", Aes128Gcm, Sha256),
    aead(0x009d, "TLS_RSA_WITH_AES_256_GCM_SHA384", Aes256Gcm, Sha384),
    aead(
        0x009e,
        "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
        Aes128Gcm,
        Sha256,
    ),
    aead(
        0x009f,
        "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
        Aes256Gcm,
        Sha384,
    ),
    aead(0x00a8, "TLS_PSK_WITH_AES_128_GCM_SHA256", Aes128Gcm, Sha256),
    aead(0x00a9, "TLS_PSK_WITH_AES_256_GCM_SHA384", Aes256Gcm, Sha384),
    other(0x00ff, "TLS_EMPTY_RENEGOTIATION_INFO_SCSV"),
    s13(0x1301, "TLS_AES_128_GCM_SHA256", Aes128Gcm, Sha256, true),
    s13(0x1302, "TLS_AES_256_GCM_SHA384", Aes256Gcm, Sha384, true),
    s13(
        0x1303,
        "TLS_CHACHA20_POLY1305_SHA256",
        ChaCha20Poly1305,
        Sha256,
        true,
    ),
    s13(0x1304, "TLS_AES_128_CCM_SHA256", Other, Sha256, false),
    s13(0x1305, "TLS_AES_128_CCM_8_SHA256", Other, Sha256, false),
    other(0x5600, "TLS_FALLBACK_SCSV"),
    cbc(
        0xc009,
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
        Aes128Cbc,
        Sha1,
    ),
    cbc(
        0xc00a,
        "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
        Aes256Cbc,
        Sha1,
    ),
    other(0xc011, "TLS_ECDHE_RSA_WITH_RC4_128_SHA"),
    other(0xc012, "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA"),
    cbc(
        0xc013,
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
        Aes128Cbc,
        Sha1,
    ),
    cbc(
        0xc014,
        "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
        Aes256Cbc,
        Sha1,
    ),
    cbc(
        0xc023,
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
        Aes128Cbc,
        Sha256,
    ),
    cbc(
        0xc024,
        "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
        Aes256Cbc,
        Sha384,
    ),
    cbc(
        0xc027,
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
        Aes128Cbc,
        Sha256,
    ),
    cbc(
        0xc028,
        "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
        Aes256Cbc,
        Sha384,
    ),
    aead(
        0xc02b,
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        Aes128Gcm,
        Sha256,
    ),
    aead(
        0xc02c,
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        Aes256Gcm,
        Sha384,
    ),
    aead(
        0xc02f,
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        Aes128Gcm,
        Sha256,
    ),
    aead(
        0xc030,
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        Aes256Gcm,
        Sha384,
    ),
    other(0xc09c, "TLS_RSA_WITH_AES_128_CCM"),
    other(0xc09d, "TLS_RSA_WITH_AES_256_CCM"),
    other(0xc0ac, "TLS_ECDHE_ECDSA_WITH_AES_128_CCM"),
    other(0xc0ad, "TLS_ECDHE_ECDSA_WITH_AES_256_CCM"),
    aead(
        0xcca8,
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        ChaCha20Poly1305,
        Sha256,
    ),
    aead(
        0xcca9,
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        ChaCha20Poly1305,
        Sha256,
    ),
    aead(
        0xccaa,
        "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        ChaCha20Poly1305,
        Sha256,
    ),
    aead(
        0xccab,
        "TLS_PSK_WITH_CHACHA20_POLY1305_SHA256",
        ChaCha20Poly1305,
        Sha256,
    ),
];

/// Looks a suite up by id; None for ids the table does not name.
pub fn suite(id: u16) -> Option<&'static Suite> {
    SUITES
        .binary_search_by_key(&id, |s| s.id)
        .ok()
        .map(|i| &SUITES[i])
}

/// GREASE values (RFC 8701): 0x0a0a, 0x1a1a, ... 0xfafa.
pub fn is_grease(id: u16) -> bool {
    id & 0x0f0f == 0x0a0a && id >> 12 == (id >> 4) & 0xf
}

/// A name for any id: the table's, "GREASE", or "0x1234".
pub fn suite_name(id: u16) -> String {
    match suite(id) {
        Some(s) => s.name.to_string(),
        None if is_grease(id) => "GREASE".to_string(),
        None => format!("{id:#06x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_consistent() {
        assert!(SUITES.windows(2).all(|w| w[0].id < w[1].id));
        for s in SUITES {
            assert_eq!(
                s.version == SuiteVersion::Tls13,
                s.id >> 8 == 0x13,
                "{}",
                s.name
            );
            if s.supported {
                assert!(s.cipher != Cipher::Other, "{}", s.name);
                assert_eq!(s.cipher.is_aead(), s.mac.is_none(), "{}", s.name);
                let want = if s.name.ends_with("SHA384") {
                    Hash::Sha384
                } else {
                    Hash::Sha256
                };
                assert_eq!(s.prf, want, "{}", s.name);
                let key = if s.name.contains("128") { 16 } else { 32 };
                assert_eq!(s.cipher.key_len(), key, "{}", s.name);
            }
        }
    }

    #[test]
    fn lookups() {
        assert_eq!(suite(0x1301).unwrap().name, "TLS_AES_128_GCM_SHA256");
        assert_eq!(suite(0xc02f).unwrap().cipher, Cipher::Aes128Gcm);
        assert!(!suite(0x1304).unwrap().supported);
        assert!(suite(0x1306).is_none());
        assert_eq!(suite_name(0x2a2a), "GREASE");
        assert_eq!(suite_name(0x1306), "0x1306");
        assert!(is_grease(0xfafa) && !is_grease(0x0a1a));
    }
}
