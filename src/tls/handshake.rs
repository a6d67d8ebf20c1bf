//! Handshake messages out of (decrypted) handshake records: the hellos in detail, the rest
//! by type. Messages span records; large messages nobody reads here (certificates) are
//! skipped as they pass, not buffered.

use std::fmt;

// HandshakeType values: the first byte of a handshake message (RFC 8446 4, RFC 5246 7.4).

/// HandshakeType hello_request (TLS 1.2 only: the server asks for renegotiation).
pub const HELLO_REQUEST: u8 = 0;
/// HandshakeType client_hello.
pub const CLIENT_HELLO: u8 = 1;
/// HandshakeType server_hello (also a HelloRetryRequest in TLS 1.3).
pub const SERVER_HELLO: u8 = 2;
/// HandshakeType new_session_ticket.
pub const NEW_SESSION_TICKET: u8 = 4;
/// HandshakeType end_of_early_data (TLS 1.3: the client's 0-RTT data ends).
pub const END_OF_EARLY_DATA: u8 = 5;
/// HandshakeType encrypted_extensions (TLS 1.3; carries the chosen ALPN).
pub const ENCRYPTED_EXTENSIONS: u8 = 8;
/// HandshakeType certificate.
pub const CERTIFICATE: u8 = 11;
/// HandshakeType finished.
pub const FINISHED: u8 = 20;
/// HandshakeType key_update (TLS 1.3).
pub const KEY_UPDATE: u8 = 24;

/// ServerHello.random of a HelloRetryRequest (RFC 8446 §4.1.3): SHA-256("HelloRetryRequest").
pub const HELLO_RETRY_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// Largest message body kept for parsing (hellos with many extensions are a few KB).
pub const MAX_MESSAGE: usize = 1 << 16;

const EXT_SERVER_NAME: u16 = 0;
const EXT_ALPN: u16 = 16;
const EXT_ENCRYPT_THEN_MAC: u16 = 22;
const EXT_EXTENDED_MASTER_SECRET: u16 = 23;
const EXT_SESSION_TICKET: u16 = 35;
const EXT_PRE_SHARED_KEY: u16 = 41;
const EXT_EARLY_DATA: u16 = 42;
const EXT_SUPPORTED_VERSIONS: u16 = 43;
const EXT_KEY_SHARE: u16 = 51;

/// The fields of a ClientHello (RFC 8446 4.1.2) that decryption and the reports use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientHello {
    /// The `legacy_version` field (0x0303 even from TLS 1.3 clients).
    pub legacy_version: u16,
    /// Its 32-byte random: the key log's key for this connection.
    pub random: [u8; 32],
    /// `legacy_session_id`; a TLS 1.2 server echoes it to resume that session.
    pub session_id: Vec<u8>,
    /// The suites offered, IANA code points in the client's order (GREASE values kept).
    pub cipher_suites: Vec<u16>,
    /// The server_name extension's host name (RFC 6066 3).
    pub sni: Option<String>,
    /// The ALPN protocols offered (RFC 7301), in order.
    pub alpn: Vec<String>,
    /// The supported_versions extension (RFC 8446 4.2.1), as sent; empty without it.
    pub supported_versions: Vec<u16>,
    /// Groups the client sent a key share for.
    pub key_share_groups: Vec<u16>,
    /// A pre_shared_key extension: the client tries TLS 1.3 resumption.
    pub psk: bool,
    /// An early_data extension: 0-RTT data may follow the ClientHello.
    pub early_data: bool,
    /// A non-empty session_ticket extension: TLS 1.2 ticket resumption attempt.
    pub session_ticket: bool,
    /// The extended_master_secret extension was offered (RFC 7627).
    pub extended_master_secret: bool,
    /// The encrypt_then_mac extension was offered (RFC 7366).
    pub encrypt_then_mac: bool,
}

impl ClientHello {
    /// Highest version offered (supported_versions, else legacy_version), GREASE ignored.
    pub fn max_version(&self) -> u16 {
        self.supported_versions
            .iter()
            .copied()
            .filter(|&v| !super::suite::is_grease(v))
            .max()
            .unwrap_or(self.legacy_version)
    }
}

/// The fields of a ServerHello (RFC 8446 4.1.3, RFC 5246 7.4.1.3) that decryption and the
/// reports use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerHello {
    /// The `legacy_version` field (the TLS 1.2 version; 0x0303 under TLS 1.3).
    pub legacy_version: u16,
    /// Its 32-byte random (the TLS 1.2 key block is derived from both randoms).
    pub random: [u8; 32],
    /// `legacy_session_id_echo`: in TLS 1.2, the ClientHello's id again means resumption.
    pub session_id: Vec<u8>,
    /// The suite chosen, its IANA code point.
    pub cipher_suite: u16,
    /// supported_versions: 0x0304 for TLS 1.3.
    pub selected_version: Option<u16>,
    /// Its random is [`HELLO_RETRY_RANDOM`]: a HelloRetryRequest, not a ServerHello.
    pub hello_retry_request: bool,
    /// The group of the server's key_share.
    pub key_share_group: Option<u16>,
    /// A pre_shared_key extension: the server accepted TLS 1.3 resumption.
    pub psk: bool,
    /// The extended_master_secret extension was accepted (RFC 7627): the TLS 1.2 master
    /// secret is derived from the session hash.
    pub extended_master_secret: bool,
    /// The encrypt_then_mac extension was accepted (RFC 7366): CBC records are MACed after
    /// encryption.
    pub encrypt_then_mac: bool,
    /// TLS 1.2 puts ALPN in the ServerHello (1.3 in EncryptedExtensions).
    pub alpn: Option<String>,
}

impl ServerHello {
    /// The negotiated version.
    pub fn version(&self) -> u16 {
        self.selected_version.unwrap_or(self.legacy_version)
    }
}

/// One handshake message, as [`HandshakeReader`] returns it. The hellos are boxed: they
/// are large and rare next to the others.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A ClientHello, parsed.
    ClientHello(Box<ClientHello>),
    /// A ServerHello or HelloRetryRequest, parsed.
    ServerHello(Box<ServerHello>),
    /// A NewSessionTicket; its body is not kept.
    NewSessionTicket,
    /// TLS 1.3 EncryptedExtensions (RFC 8446 4.3.1).
    EncryptedExtensions {
        /// The ALPN protocol the server chose.
        alpn: Option<String>,
        /// The server accepted the client's 0-RTT data.
        early_data: bool,
    },
    /// A Finished: the sender's handshake is over.
    Finished,
    /// TLS 1.3 KeyUpdate (RFC 8446 4.6.3): the sender's next records use new keys.
    KeyUpdate {
        /// The sender asks the peer to update its keys too.
        update_requested: bool,
    },
    /// Any other type (Certificate, ServerKeyExchange, ...), body not kept.
    Other {
        /// Its HandshakeType (see the constants above).
        msg_type: u8,
    },
}

/// Why a handshake message could not be read; the reader goes on with the next one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HandshakeError {
    /// A message that does not parse; names the message and what was wrong.
    Malformed(&'static str),
    /// A hello longer than [`MAX_MESSAGE`].
    TooLarge {
        /// Its HandshakeType.
        msg_type: u8,
        /// Its length as the message header gives it, in bytes.
        len: usize,
    },
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::Malformed(what) => write!(f, "malformed handshake message: {what}"),
            HandshakeError::TooLarge { msg_type, len } => {
                write!(
                    f,
                    "handshake message type {msg_type} of {len} bytes is too large"
                )
            }
        }
    }
}

impl std::error::Error for HandshakeError {}

/// Reads with bounds checks; every read is an Option.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.bytes(1)?[0])
    }
    fn u16(&mut self) -> Option<u16> {
        let b = self.bytes(2)?;
        Some(u16::from_be_bytes([b[0], b[1]]))
    }
    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()? as usize;
        self.bytes(n)
    }
    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()? as usize;
        self.bytes(n)
    }
    fn random(&mut self) -> Option<[u8; 32]> {
        self.bytes(32)?.try_into().ok()
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Extensions as (type, body); None if the block is malformed.
fn extensions(block: &[u8]) -> Option<Vec<(u16, &[u8])>> {
    let mut c = Cursor(block);
    let mut v = Vec::new();
    while !c.is_empty() {
        let t = c.u16()?;
        v.push((t, c.vec16()?));
    }
    Some(v)
}

fn alpn_list(body: &[u8]) -> Option<Vec<String>> {
    let mut c = Cursor(Cursor(body).vec16()?);
    let mut v = Vec::new();
    while !c.is_empty() {
        v.push(String::from_utf8_lossy(c.vec8()?).into_owned());
    }
    Some(v)
}

fn sni(body: &[u8]) -> Option<Option<String>> {
    let mut c = Cursor(Cursor(body).vec16()?);
    while !c.is_empty() {
        let t = c.u8()?;
        let name = c.vec16()?;
        if t == 0 {
            return Some(Some(String::from_utf8_lossy(name).into_owned()));
        }
    }
    Some(None)
}

fn u16_list(list: &[u8]) -> Option<Vec<u16>> {
    if !list.len().is_multiple_of(2) {
        return None;
    }
    Some(
        list.chunks_exact(2)
            .map(|p| u16::from_be_bytes([p[0], p[1]]))
            .collect(),
    )
}

/// Parses a ClientHello body (after the 4-byte handshake header).
pub fn parse_client_hello(body: &[u8]) -> Result<ClientHello, HandshakeError> {
    let bad = HandshakeError::Malformed;
    let mut c = Cursor(body);
    let mut ch = ClientHello {
        legacy_version: c.u16().ok_or(bad("ClientHello version"))?,
        random: c.random().ok_or(bad("ClientHello random"))?,
        session_id: c.vec8().ok_or(bad("ClientHello session id"))?.to_vec(),
        ..ClientHello::default()
    };
    ch.cipher_suites = u16_list(c.vec16().ok_or(bad("ClientHello cipher suites"))?)
        .ok_or(bad("ClientHello cipher suites"))?;
    c.vec8().ok_or(bad("ClientHello compression methods"))?;
    if c.is_empty() {
        return Ok(ch);
    }
    let exts = c
        .vec16()
        .and_then(extensions)
        .ok_or(bad("ClientHello extensions"))?;
    for (t, e) in exts {
        match t {
            EXT_SERVER_NAME if !e.is_empty() => {
                ch.sni = sni(e).ok_or(bad("ClientHello server_name"))?;
            }
            EXT_ALPN => ch.alpn = alpn_list(e).ok_or(bad("ClientHello ALPN"))?,
            EXT_SUPPORTED_VERSIONS => {
                ch.supported_versions = Cursor(e)
                    .vec8()
                    .and_then(u16_list)
                    .ok_or(bad("ClientHello supported_versions"))?;
            }
            EXT_KEY_SHARE => {
                let mut k = Cursor(Cursor(e).vec16().ok_or(bad("ClientHello key_share"))?);
                while !k.is_empty() {
                    let g = k.u16().ok_or(bad("ClientHello key_share"))?;
                    k.vec16().ok_or(bad("ClientHello key_share"))?;
                    ch.key_share_groups.push(g);
                }
            }
            EXT_PRE_SHARED_KEY => ch.psk = true,
            EXT_EARLY_DATA => ch.early_data = true,
            EXT_SESSION_TICKET => ch.session_ticket = !e.is_empty(),
            EXT_EXTENDED_MASTER_SECRET => ch.extended_master_secret = true,
            EXT_ENCRYPT_THEN_MAC => ch.encrypt_then_mac = true,
            _ => {}
        }
    }
    Ok(ch)
}

/// Parses a ServerHello (or HelloRetryRequest) body.
pub fn parse_server_hello(body: &[u8]) -> Result<ServerHello, HandshakeError> {
    let bad = HandshakeError::Malformed;
    let mut c = Cursor(body);
    let mut sh = ServerHello {
        legacy_version: c.u16().ok_or(bad("ServerHello version"))?,
        random: c.random().ok_or(bad("ServerHello random"))?,
        session_id: c.vec8().ok_or(bad("ServerHello session id"))?.to_vec(),
        cipher_suite: c.u16().ok_or(bad("ServerHello cipher suite"))?,
        ..ServerHello::default()
    };
    sh.hello_retry_request = sh.random == HELLO_RETRY_RANDOM;
    c.u8().ok_or(bad("ServerHello compression method"))?;
    if c.is_empty() {
        return Ok(sh);
    }
    let exts = c
        .vec16()
        .and_then(extensions)
        .ok_or(bad("ServerHello extensions"))?;
    for (t, e) in exts {
        match t {
            EXT_SUPPORTED_VERSIONS => {
                sh.selected_version = Some(
                    Cursor(e)
                        .u16()
                        .ok_or(bad("ServerHello supported_versions"))?,
                );
            }
            EXT_KEY_SHARE => {
                sh.key_share_group = Some(Cursor(e).u16().ok_or(bad("ServerHello key_share"))?);
            }
            EXT_ALPN => {
                sh.alpn = alpn_list(e)
                    .ok_or(bad("ServerHello ALPN"))?
                    .into_iter()
                    .next();
            }
            EXT_PRE_SHARED_KEY => sh.psk = true,
            EXT_EXTENDED_MASTER_SECRET => sh.extended_master_secret = true,
            EXT_ENCRYPT_THEN_MAC => sh.encrypt_then_mac = true,
            _ => {}
        }
    }
    Ok(sh)
}

fn parse_body(msg_type: u8, body: &[u8]) -> Result<Message, HandshakeError> {
    let bad = HandshakeError::Malformed;
    Ok(match msg_type {
        CLIENT_HELLO => Message::ClientHello(Box::new(parse_client_hello(body)?)),
        SERVER_HELLO => Message::ServerHello(Box::new(parse_server_hello(body)?)),
        NEW_SESSION_TICKET => Message::NewSessionTicket,
        FINISHED => Message::Finished,
        KEY_UPDATE => match body {
            [0] => Message::KeyUpdate {
                update_requested: false,
            },
            [1] => Message::KeyUpdate {
                update_requested: true,
            },
            _ => return Err(bad("KeyUpdate")),
        },
        ENCRYPTED_EXTENSIONS => {
            let mut c = Cursor(body);
            let exts = c
                .vec16()
                .and_then(extensions)
                .ok_or(bad("EncryptedExtensions"))?;
            let mut alpn = None;
            let mut early_data = false;
            for (t, e) in exts {
                match t {
                    EXT_ALPN => {
                        alpn = alpn_list(e)
                            .ok_or(bad("EncryptedExtensions ALPN"))?
                            .into_iter()
                            .next()
                    }
                    EXT_EARLY_DATA => early_data = true,
                    _ => {}
                }
            }
            Message::EncryptedExtensions { alpn, early_data }
        }
        t => Message::Other { msg_type: t },
    })
}

/// Whether a message body is parsed (and so buffered) rather than skipped.
fn wanted(msg_type: u8) -> bool {
    matches!(
        msg_type,
        CLIENT_HELLO | SERVER_HELLO | ENCRYPTED_EXTENSIONS | KEY_UPDATE
    )
}

/// Reassembles the handshake messages of one direction across records.
#[derive(Clone, Debug, Default)]
pub struct HandshakeReader {
    buf: Vec<u8>,
    /// Skipping the body of a message not parsed: bytes still to skip.
    skip: usize,
}

impl HandshakeReader {
    /// A reader at a message boundary, holding nothing.
    pub fn new() -> HandshakeReader {
        HandshakeReader::default()
    }

    /// Adds the plaintext of a handshake record and returns the messages it completes
    /// (in order) to `out`. A malformed message is reported in its place; the reader goes
    /// on with the next.
    pub fn push(&mut self, mut data: &[u8], out: &mut Vec<Result<Message, HandshakeError>>) {
        loop {
            if self.skip > 0 {
                let n = self.skip.min(data.len());
                self.skip -= n;
                data = &data[n..];
                if self.skip > 0 {
                    return;
                }
            }
            if data.is_empty() {
                return;
            }
            // Fast path: whole messages straight from `data` when nothing is buffered.
            let (src, from_buf): (&[u8], bool) = if self.buf.is_empty() {
                (data, false)
            } else {
                let need = self.needed().saturating_sub(self.buf.len());
                let n = need.min(data.len());
                self.buf.extend_from_slice(&data[..n]);
                data = &data[n..];
                (&self.buf[..], true)
            };
            if src.len() < 4 {
                if !from_buf {
                    // Here `src` is `data`.
                    self.buf.extend_from_slice(data);
                    data = &[];
                }
                if data.is_empty() {
                    return;
                }
                continue;
            }
            let msg_type = src[0];
            let len = u32::from_be_bytes([0, src[1], src[2], src[3]]) as usize;
            if !wanted(msg_type) || len > MAX_MESSAGE {
                // Report at the header, skip the body as it passes.
                out.push(if wanted(msg_type) {
                    Err(HandshakeError::TooLarge { msg_type, len })
                } else {
                    Ok(parse_body(msg_type, &[]).unwrap_or(Message::Other { msg_type }))
                });
                let have = src.len() - 4;
                if from_buf {
                    self.buf.clear();
                    self.skip = len.saturating_sub(have);
                } else {
                    let n = len.min(have);
                    data = &data[4 + n..];
                    self.skip = len - n;
                }
                continue;
            }
            if src.len() < 4 + len {
                if !from_buf {
                    self.buf.extend_from_slice(data);
                    data = &[];
                }
                if data.is_empty() {
                    return;
                }
                continue;
            }
            out.push(parse_body(msg_type, &src[4..4 + len]));
            if from_buf {
                self.buf.clear();
                self.buf.shrink_to(256);
            } else {
                data = &data[4 + len..];
            }
        }
    }

    /// Bytes the buffered message needs in all (header first).
    fn needed(&self) -> usize {
        if self.buf.len() < 4 {
            4
        } else {
            let len = u32::from_be_bytes([0, self.buf[1], self.buf[2], self.buf[3]]) as usize;
            if wanted(self.buf[0]) && len <= MAX_MESSAGE {
                4 + len
            } else {
                4
            }
        }
    }

    /// Whether a message is partly read.
    pub fn in_message(&self) -> bool {
        !self.buf.is_empty() || self.skip > 0
    }

    /// Heap bytes held.
    pub fn memory(&self) -> usize {
        self.buf.capacity()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::tls::schedule::tests::h;

    /// Builds a handshake message.
    pub(crate) fn msg(t: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![t];
        v.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        v.extend_from_slice(body);
        v
    }

    fn ext(t: u16, body: &[u8]) -> Vec<u8> {
        let mut v = t.to_be_bytes().to_vec();
        v.extend_from_slice(&(body.len() as u16).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    fn v16(body: &[u8]) -> Vec<u8> {
        let mut v = (body.len() as u16).to_be_bytes().to_vec();
        v.extend_from_slice(body);
        v
    }

    /// A ClientHello body with the given random and extensions.
    pub(crate) fn client_hello(random: [u8; 32], suites: &[u16], exts: &[Vec<u8>]) -> Vec<u8> {
        let mut b = vec![3, 3];
        b.extend_from_slice(&random);
        b.push(32);
        b.extend_from_slice(&[0xee; 32]);
        let s: Vec<u8> = suites.iter().flat_map(|s| s.to_be_bytes()).collect();
        b.extend(v16(&s));
        b.extend_from_slice(&[1, 0]);
        b.extend(v16(&exts.concat()));
        b
    }

    pub(crate) fn server_hello(random: [u8; 32], suite: u16, exts: &[Vec<u8>]) -> Vec<u8> {
        let mut b = vec![3, 3];
        b.extend_from_slice(&random);
        b.push(0);
        b.extend_from_slice(&suite.to_be_bytes());
        b.push(0);
        b.extend(v16(&exts.concat()));
        b
    }

    pub(crate) fn sni_ext(name: &str) -> Vec<u8> {
        let mut entry = vec![0];
        entry.extend(v16(name.as_bytes()));
        ext(0, &v16(&entry))
    }
    pub(crate) fn alpn_ext(names: &[&str]) -> Vec<u8> {
        let mut l = Vec::new();
        for n in names {
            l.push(n.len() as u8);
            l.extend_from_slice(n.as_bytes());
        }
        ext(16, &v16(&l))
    }
    pub(crate) fn versions_ext(v: &[u16]) -> Vec<u8> {
        let mut l = vec![(v.len() * 2) as u8];
        l.extend(v.iter().flat_map(|x| x.to_be_bytes()));
        ext(43, &l)
    }
    pub(crate) fn selected_version_ext(v: u16) -> Vec<u8> {
        ext(43, &v.to_be_bytes())
    }
    pub(crate) fn flag_ext(t: u16) -> Vec<u8> {
        ext(t, &[])
    }

    #[test]
    fn client_hello_fields() {
        let mut ks = 0x001du16.to_be_bytes().to_vec();
        ks.extend(v16(&[9; 32]));
        let body = client_hello(
            [7; 32],
            &[0x1301, 0xc02f, 0x3a3a],
            &[
                sni_ext("example.com"),
                alpn_ext(&["http/1.1", "h2"]),
                versions_ext(&[0x7a7a, 0x0304, 0x0303]),
                ext(51, &v16(&ks)),
                flag_ext(23),
                flag_ext(22),
                ext(35, &[1, 2, 3]),
                ext(41, &[0; 10]),
                ext(0xffff, &[1]),
            ],
        );
        let ch = parse_client_hello(&body).unwrap();
        assert_eq!(ch.random, [7; 32]);
        assert_eq!(ch.session_id, [0xee; 32]);
        assert_eq!(ch.cipher_suites, [0x1301, 0xc02f, 0x3a3a]);
        assert_eq!(ch.sni.as_deref(), Some("example.com"));
        assert_eq!(ch.alpn, ["http/1.1", "h2"]);
        assert_eq!(ch.max_version(), 0x0304);
        assert_eq!(ch.key_share_groups, [0x001d]);
        assert!(ch.extended_master_secret && ch.encrypt_then_mac && ch.session_ticket && ch.psk);
        assert!(!ch.early_data);
    }

    #[test]
    fn server_hello_fields_and_hello_retry() {
        let sh = parse_server_hello(&server_hello(
            [1; 32],
            0x1302,
            &[selected_version_ext(0x0304), ext(51, &[0, 0x1d, 0, 1, 5])],
        ))
        .unwrap();
        assert_eq!((sh.version(), sh.cipher_suite), (0x0304, 0x1302));
        assert_eq!(sh.key_share_group, Some(0x1d));
        assert!(!sh.hello_retry_request);
        let hrr = parse_server_hello(&server_hello(
            HELLO_RETRY_RANDOM,
            0x1301,
            &[selected_version_ext(0x0304), ext(51, &[0, 0x17])],
        ))
        .unwrap();
        assert!(hrr.hello_retry_request);
        let tls12 = parse_server_hello(&server_hello(
            [2; 32],
            0xc02f,
            &[flag_ext(23), flag_ext(22), alpn_ext(&["http/1.1"])],
        ))
        .unwrap();
        assert_eq!(tls12.version(), 0x0303);
        assert!(tls12.extended_master_secret && tls12.encrypt_then_mac);
        assert_eq!(tls12.alpn.as_deref(), Some("http/1.1"));
        // The HelloRetryRequest random is SHA-256 of "HelloRetryRequest".
        use sha2::Digest;
        assert_eq!(
            sha2::Sha256::digest(b"HelloRetryRequest").to_vec(),
            HELLO_RETRY_RANDOM.to_vec()
        );
    }

    #[test]
    fn truncations_are_errors_never_panics() {
        let body = client_hello([7; 32], &[0x1301], &[sni_ext("a.b"), alpn_ext(&["x"])]);
        for n in 0..body.len() {
            let _ = parse_client_hello(&body[..n]);
            let _ = parse_server_hello(&body[..n]);
            let mut r = HandshakeReader::new();
            let mut out = Vec::new();
            r.push(&msg(CLIENT_HELLO, &body[..n]), &mut out);
        }
        assert!(parse_client_hello(&body[..body.len() - 1]).is_err());
        // Impossible inner lengths.
        let mut bad = body.clone();
        let at = bad.len() - 3;
        bad[at] = 0xff;
        assert!(parse_client_hello(&bad).is_err());
        assert!(parse_client_hello(&h("0303")).is_err());
    }

    #[test]
    fn reader_spans_records_and_skips_certificates() {
        let ch = msg(
            CLIENT_HELLO,
            &client_hello([3; 32], &[0x1301], &[sni_ext("x")]),
        );
        let cert = msg(CERTIFICATE, &vec![0xab; 100_000]);
        let ku = msg(KEY_UPDATE, &[1]);
        let fin = msg(FINISHED, &[0; 32]);
        let stream = [ch, cert, ku, fin].concat();
        for cut in [1usize, 2, 3, 4, 5, 100, 16384, 1 << 20] {
            let mut r = HandshakeReader::new();
            let mut out = Vec::new();
            for piece in stream.chunks(cut) {
                r.push(piece, &mut out);
                assert!(r.memory() <= 2 * MAX_MESSAGE, "certificate buffered");
            }
            let out: Vec<Message> = out.into_iter().map(Result::unwrap).collect();
            assert!(matches!(&out[0], Message::ClientHello(c) if c.sni.as_deref() == Some("x")));
            assert_eq!(
                out[1],
                Message::Other {
                    msg_type: CERTIFICATE
                }
            );
            assert_eq!(
                out[2],
                Message::KeyUpdate {
                    update_requested: true
                }
            );
            assert_eq!(out[3], Message::Finished);
            assert_eq!(out.len(), 4, "cut {cut}");
            assert!(!r.in_message());
        }
        // A hello claiming 16 MB is refused at its header, and its body skipped.
        let mut r = HandshakeReader::new();
        let mut out = Vec::new();
        r.push(&[1, 0xff, 0xff, 0xff, 0, 0], &mut out);
        assert_eq!(
            out,
            [Err(HandshakeError::TooLarge {
                msg_type: 1,
                len: 0xff_ffff
            })]
        );
        assert!(r.in_message());
    }
}
