//! TLS record layer: cutting a direction's TCP byte stream into records
//! ([`RecordReader`]), and removing record protection ([`Decrypter`]).

use super::schedule::{self, KeyBlock, TrafficKeys};
use super::suite::{Cipher, Hash, Suite, SuiteVersion};
use aes::cipher::{BlockCipherDecrypt, KeyInit};
use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes128Gcm, Aes256Gcm};
use chacha20poly1305::ChaCha20Poly1305;
use std::fmt;

// ContentType values: the first byte of a record header (RFC 8446 5.1, RFC 6520).

/// ContentType change_cipher_spec (TLS 1.2: the sender's next records are protected).
pub const CHANGE_CIPHER_SPEC: u8 = 20;
/// ContentType alert.
pub const ALERT: u8 = 21;
/// ContentType handshake.
pub const HANDSHAKE: u8 = 22;
/// ContentType application_data (also the outer type of every TLS 1.3 protected record).
pub const APPLICATION_DATA: u8 = 23;
/// ContentType heartbeat (RFC 6520).
pub const HEARTBEAT: u8 = 24;

/// Largest TLSCiphertext.length allowed (RFC 5246 §6.2.3: 2^14 + 2048).
pub const MAX_CIPHERTEXT: usize = (1 << 14) + 2048;
/// Largest length a resynchronisation accepts as a record start (TLS 1.3's limit, 2^14 + 256).
pub const MAX_PLAUSIBLE: usize = (1 << 14) + 256;
/// Header bytes of a record.
pub const HEADER_LEN: usize = 5;

/// A record header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// ContentType (see the constants above).
    pub content_type: u8,
    /// `legacy_record_version` as on the wire (0x0303 for TLS 1.2, and for TLS 1.3
    /// records after the first ClientHello).
    pub version: u16,
    /// Length of the fragment that follows the 5 header bytes.
    pub len: u16,
}

impl Header {
    /// Reads a header from the first 5 bytes; None if fewer.
    pub fn parse(b: &[u8]) -> Option<Header> {
        let b: &[u8; 5] = b.get(..HEADER_LEN)?.try_into().ok()?;
        Some(Header {
            content_type: b[0],
            version: u16::from_be_bytes([b[1], b[2]]),
            len: u16::from_be_bytes([b[3], b[4]]),
        })
    }

    /// The header as on the wire (TLS 1.3 authenticates these 5 bytes as the record's
    /// additional data, RFC 8446 5.2).
    pub fn bytes(&self) -> [u8; 5] {
        let v = self.version.to_be_bytes();
        let l = self.len.to_be_bytes();
        [self.content_type, v[0], v[1], l[0], l[1]]
    }

    /// Type 20..=24 and version 3.0..=3.4: a TLS record header and not something else.
    pub fn is_tls(&self) -> bool {
        (CHANGE_CIPHER_SPEC..=HEARTBEAT).contains(&self.content_type)
            && (0x0300..=0x0304).contains(&self.version)
    }

    /// What a resynchronisation takes for a record start.
    pub fn plausible(&self) -> bool {
        (CHANGE_CIPHER_SPEC..=HEARTBEAT).contains(&self.content_type)
            && (0x0301..=0x0304).contains(&self.version)
            && self.len as usize <= MAX_PLAUSIBLE
    }
}

/// One record as it is on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// Its 5-byte header.
    pub header: Header,
    /// The `header.len` bytes after it, still protected when the record is.
    pub fragment: &'a [u8],
}

/// Why the stream is not (or no longer) a sequence of records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordError {
    /// The length field is larger than any record may be.
    TooLong {
        /// The length field, in bytes (the limit is [`MAX_CIPHERTEXT`]).
        len: usize,
    },
    /// Not a TLS record header (content type or version out of range).
    NotTls {
        /// The five bytes that were read as a header.
        header: [u8; 5],
    },
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::TooLong { len } => {
                write!(f, "TLS record length {len} exceeds {MAX_CIPHERTEXT}")
            }
            RecordError::NotTls { header } => {
                write!(f, "not a TLS record header: {}", super::keylog::hex(header))
            }
        }
    }
}

impl std::error::Error for RecordError {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReaderState {
    InSync,
    /// After an error: nothing more until `resync` or `gap`.
    Failed,
    /// Looking for a plausible header.
    Hunting,
}

/// Cuts one direction's in-order TCP bytes into records. Holds at most one partial record
/// between calls (plus what the last `push` brought and `next` has not consumed yet).
#[derive(Clone, Debug)]
pub struct RecordReader {
    buf: Vec<u8>,
    start: usize,
    state: ReaderState,
    skipped: u64,
}

impl Default for RecordReader {
    fn default() -> Self {
        RecordReader::new()
    }
}

impl RecordReader {
    /// A reader at a record boundary, holding nothing.
    pub fn new() -> RecordReader {
        RecordReader {
            buf: Vec::new(),
            start: 0,
            state: ReaderState::InSync,
            skipped: 0,
        }
    }

    /// Appends stream bytes.
    pub fn push(&mut self, data: &[u8]) {
        if self.state == ReaderState::Failed {
            return;
        }
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// The next complete record, None when more bytes are needed. After an error, None until
    /// [`resync`](Self::resync) or [`gap`](Self::gap).
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, RecordError> {
        if self.state == ReaderState::Hunting && !self.hunt() {
            return Ok(None);
        }
        if self.state == ReaderState::Failed {
            return Ok(None);
        }
        let rest = &self.buf[self.start..];
        let Some(h) = Header::parse(rest) else {
            self.release();
            return Ok(None);
        };
        if !h.is_tls() {
            self.state = ReaderState::Failed;
            let header = h.bytes();
            return Err(RecordError::NotTls { header });
        }
        let len = h.len as usize;
        if len > MAX_CIPHERTEXT {
            self.state = ReaderState::Failed;
            return Err(RecordError::TooLong { len });
        }
        if rest.len() < HEADER_LEN + len {
            self.release();
            return Ok(None);
        }
        let at = self.start;
        self.start += HEADER_LEN + len;
        Ok(Some(Record {
            header: h,
            fragment: &self.buf[at + HEADER_LEN..at + HEADER_LEN + len],
        }))
    }

    /// Bytes were lost before what comes next: drop what is buffered and look for the next
    /// plausible record header.
    pub fn gap(&mut self) {
        self.skipped += (self.buf.len() - self.start) as u64;
        self.buf.clear();
        self.start = 0;
        self.state = ReaderState::Hunting;
    }

    /// After an error: skip forward to the next plausible record header (the bad header's
    /// first byte is skipped at least).
    pub fn resync(&mut self) {
        if self.state == ReaderState::Failed {
            if self.start < self.buf.len() {
                self.start += 1;
                self.skipped += 1;
            }
            self.state = ReaderState::Hunting;
        }
    }

    /// Bytes skipped by resynchronisation since the last call.
    pub fn take_skipped(&mut self) -> u64 {
        std::mem::take(&mut self.skipped)
    }

    /// Bytes waiting for the rest of their record.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Heap bytes held.
    pub fn memory(&self) -> usize {
        self.buf.capacity()
    }

    fn hunt(&mut self) -> bool {
        let rest = &self.buf[self.start..];
        let found = (0..rest.len().saturating_sub(HEADER_LEN - 1))
            .find(|&i| Header::parse(&rest[i..]).is_some_and(|h| h.plausible()));
        match found {
            Some(i) => {
                self.start += i;
                self.skipped += i as u64;
                self.state = ReaderState::InSync;
                true
            }
            None => {
                // Keep the last 4 bytes: they may begin a header.
                let keep = rest.len().min(HEADER_LEN - 1);
                let drop = rest.len() - keep;
                self.start += drop;
                self.skipped += drop as u64;
                self.release();
                false
            }
        }
    }

    /// Gives a large buffer back (one `push` of many records grew it) once what is left
    /// is less than a record.
    fn release(&mut self) {
        if self.buf.capacity() > 2 * (HEADER_LEN + MAX_CIPHERTEXT) {
            let rest = self.buf[self.start..].to_vec();
            self.buf = rest;
            self.start = 0;
        }
    }
}

/// Why a record did not decrypt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecryptError {
    /// The AEAD tag or the MAC (or CBC padding) did not verify: wrong key, wrong sequence
    /// number, or a corrupt record. No plaintext is given out.
    BadRecordMac,
    /// Shorter than its nonce, tag, MAC or IV; or CBC not a whole number of blocks.
    TooShort,
    /// TLS 1.3: the inner plaintext was all padding, no content type.
    NoContentType,
    /// Plaintext longer than 2^14 (+1 for TLS 1.3's content type).
    TooLong,
}

impl fmt::Display for DecryptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DecryptError::BadRecordMac => "wrong key or corrupt record",
            DecryptError::TooShort => "record too short for its protection",
            DecryptError::NoContentType => "TLS 1.3 record without content type",
            DecryptError::TooLong => "decrypted record too long",
        })
    }
}

impl std::error::Error for DecryptError {}

enum Aead {
    Aes128(Aes128Gcm),
    Aes256(Aes256Gcm),
    ChaCha(ChaCha20Poly1305),
}

impl Aead {
    fn new(cipher: Cipher, key: &[u8]) -> Option<Aead> {
        Some(match cipher {
            Cipher::Aes128Gcm => Aead::Aes128(Aes128Gcm::new_from_slice(key).ok()?),
            Cipher::Aes256Gcm => Aead::Aes256(Aes256Gcm::new_from_slice(key).ok()?),
            Cipher::ChaCha20Poly1305 => Aead::ChaCha(ChaCha20Poly1305::new_from_slice(key).ok()?),
            _ => return None,
        })
    }

    /// Decrypts `buf` (ciphertext) in place, checking `tag`.
    fn open(&self, nonce: &[u8; 12], aad: &[u8], buf: &mut [u8], tag: &[u8]) -> bool {
        let Ok(tag) = <&[u8; 16]>::try_from(tag) else {
            return false;
        };
        let nonce = (*nonce).into();
        let tag = (*tag).into();
        match self {
            Aead::Aes128(a) => a.decrypt_inout_detached(&nonce, aad, buf.into(), &tag),
            Aead::Aes256(a) => a.decrypt_inout_detached(&nonce, aad, buf.into(), &tag),
            Aead::ChaCha(a) => a.decrypt_inout_detached(&nonce, aad, buf.into(), &tag),
        }
        .is_ok()
    }

    #[cfg(test)]
    fn seal(&self, nonce: &[u8; 12], aad: &[u8], buf: &mut [u8]) -> [u8; 16] {
        let nonce = (*nonce).into();
        let tag = match self {
            Aead::Aes128(a) => a.encrypt_inout_detached(&nonce, aad, buf.into()),
            Aead::Aes256(a) => a.encrypt_inout_detached(&nonce, aad, buf.into()),
            Aead::ChaCha(a) => a.encrypt_inout_detached(&nonce, aad, buf.into()),
        };
        tag.unwrap().into()
    }
}

enum Block {
    Aes128(aes::Aes128),
    Aes256(aes::Aes256),
}

impl Block {
    fn new(cipher: Cipher, key: &[u8]) -> Option<Block> {
        Some(match cipher {
            Cipher::Aes128Cbc => Block::Aes128(aes::Aes128::new_from_slice(key).ok()?),
            Cipher::Aes256Cbc => Block::Aes256(aes::Aes256::new_from_slice(key).ok()?),
            _ => return None,
        })
    }

    /// CBC-decrypts `data` (whole blocks) with `iv` into `out`.
    fn cbc_decrypt(&self, iv: &[u8], data: &[u8], out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(data);
        let (blocks, _) = aes::Block::slice_as_chunks_mut(out);
        match self {
            Block::Aes128(c) => c.decrypt_blocks(blocks),
            Block::Aes256(c) => c.decrypt_blocks(blocks),
        }
        for (i, chunk) in out.chunks_exact_mut(16).enumerate() {
            let prev = if i == 0 {
                iv
            } else {
                &data[(i - 1) * 16..i * 16]
            };
            for (b, p) in chunk.iter_mut().zip(prev) {
                *b ^= p;
            }
        }
    }
}

enum Protection {
    /// TLS 1.3 AEAD: nonce = iv XOR seq; AAD = record header.
    Tls13 { aead: Aead, iv: [u8; 12] },
    /// TLS 1.2 AES-GCM: 4-byte salt + 8-byte explicit nonce from the record.
    Tls12Gcm { aead: Aead, salt: [u8; 4] },
    /// TLS 1.2 ChaCha20-Poly1305 (RFC 7905): nonce = iv XOR seq.
    Tls12ChaCha { aead: Aead, iv: [u8; 12] },
    /// TLS 1.2 AES-CBC with HMAC, MAC-then-encrypt or encrypt-then-MAC (RFC 7366).
    Tls12Cbc {
        block: Block,
        mac: Hash,
        mac_key: Vec<u8>,
        etm: bool,
    },
}

/// Removes the record protection of one direction; counts its sequence number.
pub struct Decrypter {
    prot: Protection,
    seq: u64,
}

impl fmt::Debug for Decrypter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.prot {
            Protection::Tls13 { .. } => "tls13",
            Protection::Tls12Gcm { .. } => "tls12-gcm",
            Protection::Tls12ChaCha { .. } => "tls12-chacha20",
            Protection::Tls12Cbc { etm: false, .. } => "tls12-cbc",
            Protection::Tls12Cbc { etm: true, .. } => "tls12-cbc-etm",
        };
        write!(f, "Decrypter({kind}, seq {})", self.seq)
    }
}

fn xor_seq(iv: &[u8; 12], seq: u64) -> [u8; 12] {
    let mut n = *iv;
    for (b, s) in n[4..].iter_mut().zip(seq.to_be_bytes()) {
        *b ^= s;
    }
    n
}

fn tls12_aad(seq: u64, h: &Header, len: usize) -> [u8; 13] {
    let mut a = [0u8; 13];
    a[..8].copy_from_slice(&seq.to_be_bytes());
    a[8] = h.content_type;
    a[9..11].copy_from_slice(&h.version.to_be_bytes());
    a[11..].copy_from_slice(&(len as u16).to_be_bytes());
    a
}

/// Largest plaintext (RFC 8446 §5.1, RFC 5246 §6.2.1).
const MAX_PLAINTEXT: usize = 1 << 14;

impl Decrypter {
    /// TLS 1.3 decrypter from a traffic secret; None for an unsupported suite or a secret of
    /// the wrong size.
    pub fn tls13(suite: &Suite, secret: &[u8]) -> Option<Decrypter> {
        let keys = schedule::traffic_keys(suite, secret)?;
        Decrypter::tls13_keys(suite, &keys)
    }

    /// TLS 1.3 decrypter from a derived key and IV.
    pub fn tls13_keys(suite: &Suite, keys: &TrafficKeys) -> Option<Decrypter> {
        if suite.version != SuiteVersion::Tls13 {
            return None;
        }
        Some(Decrypter {
            prot: Protection::Tls13 {
                aead: Aead::new(suite.cipher, &keys.key)?,
                iv: keys.iv,
            },
            seq: 0,
        })
    }

    /// TLS 1.2 decrypter for the client's (`client` true) or the server's records.
    /// `encrypt_then_mac`: both hellos carried the extension (only matters for CBC).
    pub fn tls12(
        suite: &Suite,
        keys: &KeyBlock,
        client: bool,
        encrypt_then_mac: bool,
    ) -> Option<Decrypter> {
        if suite.version != SuiteVersion::Tls12 || !suite.supported {
            return None;
        }
        let (key, iv, mac_key) = if client {
            (&keys.client_key, &keys.client_iv, &keys.client_mac)
        } else {
            (&keys.server_key, &keys.server_iv, &keys.server_mac)
        };
        let prot = match suite.cipher {
            Cipher::Aes128Gcm | Cipher::Aes256Gcm => Protection::Tls12Gcm {
                aead: Aead::new(suite.cipher, key)?,
                salt: iv.as_slice().try_into().ok()?,
            },
            Cipher::ChaCha20Poly1305 => Protection::Tls12ChaCha {
                aead: Aead::new(suite.cipher, key)?,
                iv: iv.as_slice().try_into().ok()?,
            },
            Cipher::Aes128Cbc | Cipher::Aes256Cbc => {
                let mac = suite.mac?;
                if mac_key.len() != mac.output_len() {
                    return None;
                }
                Protection::Tls12Cbc {
                    block: Block::new(suite.cipher, key)?,
                    mac,
                    mac_key: mac_key.clone(),
                    etm: encrypt_then_mac,
                }
            }
            Cipher::Other => return None,
        };
        Some(Decrypter { prot, seq: 0 })
    }

    /// Sequence number of the next record.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Sets the sequence number of the next record, when records of this key went by before
    /// the decrypter existed (a key logged late) or were lost: the nonce and the MAC depend
    /// on it.
    pub fn set_seq(&mut self, seq: u64) {
        self.seq = seq;
    }

    /// Whether this is TLS 1.3 protection (content type inside the encryption).
    pub fn is_tls13(&self) -> bool {
        matches!(self.prot, Protection::Tls13 { .. })
    }

    /// Heap bytes held beyond the struct itself.
    pub fn memory(&self) -> usize {
        match &self.prot {
            Protection::Tls12Cbc { mac_key, .. } => mac_key.capacity(),
            _ => 0,
        }
    }

    /// Decrypts a record at the current sequence number into `out` (cleared first) and
    /// returns the content type: TLS 1.3's inner type, or the header's for TLS 1.2. The
    /// sequence number advances only on success.
    pub fn decrypt(
        &mut self,
        header: &Header,
        fragment: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<u8, DecryptError> {
        let t = self.decrypt_at(self.seq, header, fragment, out)?;
        self.seq += 1;
        Ok(t)
    }

    /// After records were lost: tries sequence numbers seq, seq+1, ..., seq+max_skip; the
    /// one whose tag verifies is right. Returns the content type and how many records were
    /// skipped; the sequence number continues from there.
    pub fn try_resync(
        &mut self,
        header: &Header,
        fragment: &[u8],
        max_skip: u64,
        out: &mut Vec<u8>,
    ) -> Result<(u8, u64), DecryptError> {
        let mut last = DecryptError::BadRecordMac;
        for k in 0..=max_skip {
            let Some(seq) = self.seq.checked_add(k) else {
                break;
            };
            match self.decrypt_at(seq, header, fragment, out) {
                Ok(t) => {
                    self.seq = seq + 1;
                    return Ok((t, k));
                }
                Err(DecryptError::BadRecordMac) => {}
                // Independent of the sequence number: no point trying others.
                Err(e) => {
                    last = e;
                    break;
                }
            }
        }
        out.clear();
        Err(last)
    }

    fn decrypt_at(
        &self,
        seq: u64,
        h: &Header,
        fragment: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<u8, DecryptError> {
        out.clear();
        let r = self.open(seq, h, fragment, out);
        if r.is_err() {
            out.clear();
        }
        r
    }

    fn open(
        &self,
        seq: u64,
        h: &Header,
        fragment: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<u8, DecryptError> {
        match &self.prot {
            Protection::Tls13 { aead, iv } => {
                let body = fragment
                    .len()
                    .checked_sub(16)
                    .ok_or(DecryptError::TooShort)?;
                if body > MAX_PLAINTEXT + 256 {
                    return Err(DecryptError::TooLong);
                }
                out.extend_from_slice(&fragment[..body]);
                if !aead.open(&xor_seq(iv, seq), &h.bytes(), out, &fragment[body..]) {
                    return Err(DecryptError::BadRecordMac);
                }
                let Some(end) = out.iter().rposition(|&b| b != 0) else {
                    return Err(DecryptError::NoContentType);
                };
                let ct = out[end];
                out.truncate(end);
                if end > MAX_PLAINTEXT {
                    return Err(DecryptError::TooLong);
                }
                Ok(ct)
            }
            Protection::Tls12Gcm { aead, salt } => {
                if fragment.len() < 8 + 16 {
                    return Err(DecryptError::TooShort);
                }
                let body = fragment.len() - 16;
                let mut nonce = [0u8; 12];
                nonce[..4].copy_from_slice(salt);
                nonce[4..].copy_from_slice(&fragment[..8]);
                out.extend_from_slice(&fragment[8..body]);
                let aad = tls12_aad(seq, h, out.len());
                if !aead.open(&nonce, &aad, out, &fragment[body..]) {
                    return Err(DecryptError::BadRecordMac);
                }
                Ok(h.content_type)
            }
            Protection::Tls12ChaCha { aead, iv } => {
                let body = fragment
                    .len()
                    .checked_sub(16)
                    .ok_or(DecryptError::TooShort)?;
                out.extend_from_slice(&fragment[..body]);
                let aad = tls12_aad(seq, h, body);
                if !aead.open(&xor_seq(iv, seq), &aad, out, &fragment[body..]) {
                    return Err(DecryptError::BadRecordMac);
                }
                Ok(h.content_type)
            }
            Protection::Tls12Cbc {
                block,
                mac,
                mac_key,
                etm,
            } => {
                let ml = mac.output_len();
                if *etm {
                    // IV ‖ ciphertext ‖ MAC; the MAC covers IV ‖ ciphertext.
                    let body = fragment
                        .len()
                        .checked_sub(ml)
                        .ok_or(DecryptError::TooShort)?;
                    let (enc, tag) = fragment.split_at(body);
                    if enc.len() < 32 || !enc.len().is_multiple_of(16) {
                        return Err(DecryptError::TooShort);
                    }
                    let aad = tls12_aad(seq, h, enc.len());
                    if schedule::hmac(*mac, mac_key, &[&aad, enc]) != tag {
                        return Err(DecryptError::BadRecordMac);
                    }
                    block.cbc_decrypt(&enc[..16], &enc[16..], out);
                    let plain = strip_padding(out).ok_or(DecryptError::BadRecordMac)?;
                    out.truncate(plain);
                } else {
                    // IV ‖ E(plaintext ‖ MAC ‖ padding).
                    if fragment.len() < 16 + 16 || !fragment.len().is_multiple_of(16) {
                        return Err(DecryptError::TooShort);
                    }
                    block.cbc_decrypt(&fragment[..16], &fragment[16..], out);
                    let unpadded = strip_padding(out).ok_or(DecryptError::BadRecordMac)?;
                    let plain = unpadded.checked_sub(ml).ok_or(DecryptError::BadRecordMac)?;
                    let aad = tls12_aad(seq, h, plain);
                    if schedule::hmac(*mac, mac_key, &[&aad, &out[..plain]]) != out[plain..unpadded]
                    {
                        return Err(DecryptError::BadRecordMac);
                    }
                    out.truncate(plain);
                }
                if out.len() > MAX_PLAINTEXT {
                    return Err(DecryptError::TooLong);
                }
                Ok(h.content_type)
            }
        }
    }
}

/// CBC padding: the last byte n, and n bytes before it all equal n. Returns the length
/// without padding.
fn strip_padding(b: &[u8]) -> Option<usize> {
    let n = *b.last()? as usize;
    let start = b.len().checked_sub(n + 1)?;
    b[start..].iter().all(|&x| x as usize == n).then_some(start)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::tls::schedule::tests::h;
    use crate::tls::suite::suite;

    /// Test-only encryption, the mirror of `open`.
    pub(crate) fn seal(d: &mut Decrypter, content_type: u8, plain: &[u8]) -> Vec<u8> {
        use aes::cipher::BlockCipherEncrypt;
        let seq = d.seq;
        d.seq += 1;
        let mut rec = Vec::new();
        match &d.prot {
            Protection::Tls13 { aead, iv } => {
                let mut body = plain.to_vec();
                body.push(content_type);
                body.extend_from_slice(&[0, 0, 0]); // padding
                let hdr = Header {
                    content_type: APPLICATION_DATA,
                    version: 0x0303,
                    len: (body.len() + 16) as u16,
                };
                let tag = aead.seal(&xor_seq(iv, seq), &hdr.bytes(), &mut body);
                rec.extend_from_slice(&hdr.bytes());
                rec.extend_from_slice(&body);
                rec.extend_from_slice(&tag);
            }
            Protection::Tls12Gcm { aead, salt } => {
                let explicit = (seq ^ 0x5555).to_be_bytes();
                let mut nonce = [0u8; 12];
                nonce[..4].copy_from_slice(salt);
                nonce[4..].copy_from_slice(&explicit);
                let mut hdr = Header {
                    content_type,
                    version: 0x0303,
                    len: plain.len() as u16,
                };
                let mut body = plain.to_vec();
                let tag = aead.seal(&nonce, &tls12_aad(seq, &hdr, plain.len()), &mut body);
                hdr.len = (8 + body.len() + 16) as u16;
                rec.extend_from_slice(&hdr.bytes());
                rec.extend_from_slice(&explicit);
                rec.extend_from_slice(&body);
                rec.extend_from_slice(&tag);
            }
            Protection::Tls12ChaCha { aead, iv } => {
                let mut hdr = Header {
                    content_type,
                    version: 0x0303,
                    len: plain.len() as u16,
                };
                let mut body = plain.to_vec();
                let tag = aead.seal(
                    &xor_seq(iv, seq),
                    &tls12_aad(seq, &hdr, plain.len()),
                    &mut body,
                );
                hdr.len = (body.len() + 16) as u16;
                rec.extend_from_slice(&hdr.bytes());
                rec.extend_from_slice(&body);
                rec.extend_from_slice(&tag);
            }
            Protection::Tls12Cbc {
                block,
                mac,
                mac_key,
                etm,
            } => {
                let iv: [u8; 16] = std::array::from_fn(|i| (seq as u8).wrapping_add(i as u8));
                let mut hdr = Header {
                    content_type,
                    version: 0x0303,
                    len: 0,
                };
                let mut data = plain.to_vec();
                if !*etm {
                    data.extend(schedule::hmac(
                        *mac,
                        mac_key,
                        &[&tls12_aad(seq, &hdr, plain.len()), plain],
                    ));
                }
                let pad = 15 - data.len() % 16;
                data.extend(std::iter::repeat_n(pad as u8, pad + 1));
                let mut prev = iv;
                let mut enc = iv.to_vec();
                for chunk in data.chunks_exact(16) {
                    let mut b: [u8; 16] = std::array::from_fn(|i| chunk[i] ^ prev[i]);
                    let mut blk: aes::Block = b.into();
                    match block {
                        Block::Aes128(c) => c.encrypt_block(&mut blk),
                        Block::Aes256(c) => c.encrypt_block(&mut blk),
                    }
                    b = blk.into();
                    enc.extend_from_slice(&b);
                    prev = b;
                }
                if *etm {
                    let t =
                        schedule::hmac(*mac, mac_key, &[&tls12_aad(seq, &hdr, enc.len()), &enc]);
                    enc.extend(t);
                }
                hdr.len = enc.len() as u16;
                rec.extend_from_slice(&hdr.bytes());
                rec.extend_from_slice(&enc);
            }
        }
        rec
    }

    fn open(d: &mut Decrypter, rec: &[u8]) -> Result<(u8, Vec<u8>), DecryptError> {
        let hdr = Header::parse(rec).unwrap();
        let mut out = Vec::new();
        let t = d.decrypt(&hdr, &rec[5..], &mut out)?;
        Ok((t, out))
    }

    // RFC 8448 §3: the client's Finished (handshake keys) and application data record.
    const CLIENT_HS_SECRET: &str =
        "b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21";
    const CLIENT_FINISHED_RECORD: &str = "17 03 03 00 35 75 ec 4d c2 38 cc e6 0b 29 80 44
        a7 1e 21 9c 56 cc 77 b0 51 7f e9 b9 3c 7a 4b fc 44 d8 7f 38 f8 03 38 ac 98 fc 46 de
        b3 84 bd 1c ae ac ab 68 67 d7 26 c4 05 46";
    const CLIENT_AP_SECRET: &str =
        "9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5";
    const CLIENT_APP_RECORD: &str = "17 03 03 00 43 a2 3f 70 54 b6 2c 94 d0 af fa fe 82
        28 ba 55 cb ef ac ea 42 f9 14 aa 66 bc ab 3f 2b 98 19 a8 a5 b4 6b 39 5b d5 4a 9a 20
        44 1e 2b 62 97 4e 1f 5a 62 92 a2 97 70 14 bd 1e 3d ea e6 3a ee bb 21 69 49 15 e4";

    #[test]
    fn rfc8448_records_decrypt() {
        let s = suite(0x1301).unwrap();
        let mut d = Decrypter::tls13(s, &h(CLIENT_HS_SECRET)).unwrap();
        let (t, fin) = open(&mut d, &h(CLIENT_FINISHED_RECORD)).unwrap();
        assert_eq!(t, HANDSHAKE);
        assert_eq!(&fin[..4], &[20, 0, 0, 32]);
        assert_eq!(fin.len(), 36);
        let mut d = Decrypter::tls13(s, &h(CLIENT_AP_SECRET)).unwrap();
        let rec = h(CLIENT_APP_RECORD);
        // At the wrong sequence number the tag fails: a distinct error, no plaintext.
        d.set_seq(1);
        assert_eq!(open(&mut d, &rec), Err(DecryptError::BadRecordMac));
        assert_eq!(d.seq(), 1);
        d.set_seq(0);
        let (t, data) = open(&mut d, &rec).unwrap();
        assert_eq!(t, APPLICATION_DATA);
        assert_eq!(data, (0u8..50).collect::<Vec<_>>());
        assert_eq!(d.seq(), 1);
        // Under the handshake key it is a wrong key.
        let mut wrong = Decrypter::tls13(s, &h(CLIENT_HS_SECRET)).unwrap();
        assert_eq!(open(&mut wrong, &rec), Err(DecryptError::BadRecordMac));
    }

    fn tls12_keys(suite: &Suite) -> KeyBlock {
        let ms = [7u8; 48];
        schedule::suite_key_block(suite, &ms, &[1; 32], &[2; 32]).unwrap()
    }

    #[test]
    fn every_supported_suite_round_trips_and_rejects_a_flipped_bit() {
        let msg = b"GET /chat HTTP/1.1\r\nUpgrade: websocket\r\n\r\n".repeat(7);
        for s in crate::tls::suite::SUITES.iter().filter(|s| s.supported) {
            for etm in [false, true] {
                let make = || {
                    match s.version {
                        SuiteVersion::Tls13 => Decrypter::tls13(s, &[9; 48][..s.prf.output_len()]),
                        SuiteVersion::Tls12 => Decrypter::tls12(s, &tls12_keys(s), true, etm),
                    }
                    .unwrap()
                };
                let (mut tx, mut rx) = (make(), make());
                for (i, len) in [0usize, 1, 15, 16, 17, 100, msg.len()]
                    .into_iter()
                    .enumerate()
                {
                    let rec = seal(&mut tx, APPLICATION_DATA, &msg[..len]);
                    let (t, out) =
                        open(&mut rx, &rec).unwrap_or_else(|e| panic!("{}: {e}", s.name));
                    assert_eq!((t, &out[..]), (APPLICATION_DATA, &msg[..len]), "{}", s.name);
                    assert_eq!(rx.seq(), i as u64 + 1);
                }
                let mut rec = seal(&mut tx, APPLICATION_DATA, &msg);
                let last = rec.len() - 20;
                rec[last] ^= 1;
                assert_eq!(
                    open(&mut rx, &rec),
                    Err(DecryptError::BadRecordMac),
                    "{}",
                    s.name
                );
                // Client keys do not open server records.
                if s.version == SuiteVersion::Tls12 {
                    let mut server = Decrypter::tls12(s, &tls12_keys(s), false, etm).unwrap();
                    server.set_seq(tx.seq());
                    let rec = seal(&mut tx, APPLICATION_DATA, b"x");
                    assert_eq!(open(&mut server, &rec), Err(DecryptError::BadRecordMac));
                }
            }
        }
    }

    #[test]
    fn try_resync_finds_the_sequence_after_lost_records() {
        for id in [0x1301u16, 0xcca8, 0xc02f, 0xc013] {
            let s = suite(id).unwrap();
            let make = || {
                match s.version {
                    SuiteVersion::Tls13 => Decrypter::tls13(s, &[3; 32]),
                    SuiteVersion::Tls12 => Decrypter::tls12(s, &tls12_keys(s), false, false),
                }
                .unwrap()
            };
            let (mut tx, mut rx) = (make(), make());
            let recs: Vec<Vec<u8>> = (0..10u8)
                .map(|i| seal(&mut tx, APPLICATION_DATA, &[i; 20]))
                .collect();
            open(&mut rx, &recs[0]).unwrap();
            let r = &recs[4]; // records 1..=3 lost
            let hdr = Header::parse(r).unwrap();
            let mut out = Vec::new();
            // The AAD or MAC covers the sequence number in every suite, so only the right
            // one verifies.
            assert_eq!(
                rx.try_resync(&hdr, &r[5..], 2, &mut out),
                Err(DecryptError::BadRecordMac)
            );
            assert_eq!(rx.seq(), 1);
            assert_eq!(
                rx.try_resync(&hdr, &r[5..], 8, &mut out),
                Ok((APPLICATION_DATA, 3))
            );
            assert_eq!(out, [4; 20]);
            open(&mut rx, &recs[5]).unwrap();
        }
    }

    #[test]
    fn hostile_fragments_never_panic() {
        for s in crate::tls::suite::SUITES.iter().filter(|s| s.supported) {
            for etm in [false, true] {
                let mut d = match s.version {
                    SuiteVersion::Tls13 => Decrypter::tls13(s, &[9; 48][..s.prf.output_len()]),
                    SuiteVersion::Tls12 => Decrypter::tls12(s, &tls12_keys(s), true, etm),
                }
                .unwrap();
                for len in 0..80 {
                    let frag: Vec<u8> = (0..len).map(|i| (i * 37) as u8).collect();
                    let hdr = Header {
                        content_type: APPLICATION_DATA,
                        version: 0x0303,
                        len: len as u16,
                    };
                    let mut out = Vec::new();
                    assert!(d.decrypt(&hdr, &frag, &mut out).is_err());
                    assert!(out.is_empty(), "no garbage plaintext");
                    assert!(d.try_resync(&hdr, &frag, 3, &mut out).is_err());
                }
            }
        }
    }

    #[test]
    fn strip_padding_checks_every_byte() {
        assert_eq!(strip_padding(&[1, 2, 3, 0]), Some(3));
        assert_eq!(strip_padding(&[1, 2, 2, 2]), Some(1));
        assert_eq!(strip_padding(&[1, 3, 2, 2]), None);
        assert_eq!(strip_padding(&[3, 3, 3]), None);
        assert_eq!(strip_padding(&[]), None);
    }

    fn rec(t: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![t, 3, 3];
        v.extend_from_slice(&(body.len() as u16).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn reader_splits_and_joins_segments() {
        let mut stream = Vec::new();
        for (i, n) in [10usize, 0, 300, 16384, 1].into_iter().enumerate() {
            stream.extend(rec(22 + (i % 2) as u8, &vec![i as u8; n]));
        }
        for cut in [1usize, 3, 5, 7, 1000, 100_000] {
            let mut r = RecordReader::new();
            let mut got = Vec::new();
            for piece in stream.chunks(cut) {
                r.push(piece);
                while let Some(rec) = r.next_record().unwrap() {
                    got.push((rec.header.content_type, rec.fragment.to_vec()));
                }
            }
            assert_eq!(got.len(), 5, "cut {cut}");
            assert_eq!(got[3].1.len(), 16384);
            assert_eq!(r.buffered(), 0);
            assert_eq!(r.take_skipped(), 0);
        }
    }

    #[test]
    fn reader_rejects_then_resyncs() {
        let mut r = RecordReader::new();
        let mut data = vec![23, 3, 3, 0xff, 0xff]; // 65535: too long
        data.extend_from_slice(b"garbage \x17\x03\x09 more");
        data.extend(rec(23, b"hello"));
        r.push(&data);
        assert_eq!(r.next_record(), Err(RecordError::TooLong { len: 65535 }));
        assert_eq!(r.next_record(), Ok(None));
        r.push(b"ignored while failed");
        r.resync();
        let got = r.next_record().unwrap().unwrap();
        assert_eq!(got.fragment, b"hello");
        assert_eq!(r.take_skipped(), (data.len() - 10) as u64);
        // Plain HTTP on the port: not TLS.
        let mut r = RecordReader::new();
        r.push(b"GET / HTTP/1.1\r\n");
        assert!(matches!(r.next_record(), Err(RecordError::NotTls { .. })));
        // A gap: what is buffered is dropped, then the next plausible header is found.
        let mut r = RecordReader::new();
        r.push(&rec(23, &[1; 100])[..50]);
        assert_eq!(r.next_record(), Ok(None));
        r.gap();
        let mut after = vec![0u8; 30];
        after.extend(rec(23, b"next"));
        for b in after.chunks(2) {
            r.push(b);
            if let Some(rec) = r.next_record().unwrap() {
                assert_eq!(rec.fragment, b"next");
            }
        }
        assert_eq!(r.take_skipped(), 80);
        // Random bytes never panic, and the buffer stays bounded while hunting.
        let mut r = RecordReader::new();
        r.gap();
        let junk: Vec<u8> = (0..200_000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        for piece in junk.chunks(1500) {
            r.push(piece);
            loop {
                match r.next_record() {
                    Ok(Some(_)) => continue,
                    Ok(None) => break,
                    Err(_) => r.resync(),
                }
            }
            assert!(r.buffered() <= MAX_CIPHERTEXT + 1500 + HEADER_LEN);
        }
    }
}
