//! TLS as a session layer (wss://): the connection's two streams go through a
//! [`tls::Connection`], and the application data it decrypts feeds a nested plaintext
//! [`Conversation`] — HTTP upgrade, then websocket, exactly as on a plain connection. When it
//! cannot decrypt, it says why once, in words, with what would fix it, and decodes nothing.

use super::Conversation;
use crate::event::{Dir, Emit, EventKind, Incomplete, Notice, TlsInfo};
use crate::memory::{Memory, Pool};
use crate::tls::{self, ClientRandom, Connection, Direction, KeyLog, KeyStore, keylog};
use crate::ws::Limits;
use std::io;

/// What a TLS session costs the ledger just by existing (its boxed state).
pub(super) const SESSION_COST: usize = std::mem::size_of::<TlsSession>() + 16;

pub(super) struct TlsSession {
    conn: Connection,
    rest: State,
}

/// Everything but the TLS connection, so its events can be handled while it is borrowed.
struct State {
    /// The decrypted conversation.
    inner: Conversation,
    keys: Option<KeyStore>,
    /// Decrypted bytes delivered per direction: the inner conversation's stream offsets.
    at: [u64; 2],
    info: TlsInfo,
    client_random: Option<ClientRandom>,
    /// What the verdict notice said: None before it, then whether the keys open it.
    decrypted: Option<bool>,
    /// The key log has this handshake's secrets, and no record has shown yet whether they
    /// are right: the verdict waits for the first record they open (or fail to). True when
    /// they came after the key log first had none.
    pending: Option<bool>,
    /// The direction being fed (events that do not say theirs).
    feeding: Dir,
    /// Look up whether the key log has this connection's secrets once the feed is done.
    mark: bool,
    /// HTTP/2 inside: application data is not decoded.
    h2: bool,
    /// Nothing more can come of this connection: the state was dropped.
    done: bool,
    /// Notices said once per connection (bits of `SAID_*`, per direction where it matters).
    said: u32,
    /// What `conn` is charged to [`Pool::Tls`].
    charged: usize,
}

const SAID_FAILED: u32 = 1;
const SAID_MALFORMED: u32 = 4;
const SAID_LATE: u32 = 16;

impl TlsSession {
    pub(super) fn new(port_hint: bool, limits: Limits, keys: Option<KeyStore>) -> TlsSession {
        TlsSession {
            conn: Connection::new(),
            rest: State {
                inner: Conversation::new(false, port_hint, limits),
                keys,
                at: [0; 2],
                info: TlsInfo::default(),
                client_random: None,
                decrypted: None,
                pending: None,
                feeding: Dir::C2S,
                mark: false,
                h2: false,
                done: false,
                said: 0,
                charged: 0,
            },
        }
    }

    /// Whether a key log that grows could still open this connection: its handshake was
    /// seen, its keys were not found (yet).
    pub(super) fn wants_keys(&self) -> bool {
        let r = &self.rest;
        !r.done
            && r.client_random.is_some()
            && r.decrypted != Some(true)
            && r.keys.as_ref().is_some_and(KeyStore::follows)
    }

    /// The decrypted conversation has seen websocket.
    pub(super) fn websocket(&self) -> bool {
        self.rest.inner.websocket
    }

    /// In-order bytes of `dir`.
    pub(super) fn data(
        &mut self,
        dir: Dir,
        data: &[u8],
        mem: &mut Memory,
        em: &mut dyn Emit,
    ) -> io::Result<()> {
        if self.rest.done {
            return Ok(());
        }
        let keys = self.rest.keys.clone();
        self.rest.feeding = dir;
        let TlsSession { conn, rest } = self;
        let mut result = Ok(());
        let mut feed = |log: &KeyLog| {
            conn.feed(direction(dir), data, log, |ev| {
                if result.is_ok() {
                    result = rest.on_event(ev, mem, em);
                }
            })
        };
        match &keys {
            Some(k) => k.with(&mut feed),
            None => feed(&KeyLog::new()),
        }
        if std::mem::take(&mut self.rest.mark)
            && let (Some(k), Some(r)) = (&keys, &self.rest.client_random)
            && k.with(|l| l.get(r).is_some())
        {
            k.mark_used(r);
        }
        self.settle(mem);
        result
    }

    /// Bytes of `dir` were lost: TLS finds the next record (and its sequence number) by
    /// itself; how much plaintext was lost is unknown, so the websocket decoder hunts.
    pub(super) fn gap(&mut self, dir: Dir, mem: &mut Memory, em: &mut dyn Emit) -> io::Result<()> {
        if self.rest.done {
            return Ok(());
        }
        self.conn.gap(direction(dir));
        let r = &mut self.rest;
        if r.decrypted == Some(true) {
            r.inner.lost(dir, mem, em)?;
        }
        Ok(())
    }

    pub(super) fn end(
        &mut self,
        dir: Dir,
        why: Incomplete,
        mem: &mut Memory,
        em: &mut dyn Emit,
    ) -> io::Result<()> {
        if self.rest.pending.take().is_some() {
            let r = &mut self.rest;
            r.decrypted = Some(false);
            let detail = format!(
                "{}: the key log has the secrets of client random {}, but no record they open followed",
                r.describe(),
                r.random_hex()
            );
            r.verdict(dir, detail, em)?;
        }
        let cut = self.conn.buffered(direction(dir));
        if cut > 0 && !self.rest.done {
            self.rest.notice(
                dir,
                format!(
                    "TLS stream from the {} ends inside a record ({cut} bytes of it captured)",
                    side(dir)
                ),
                em,
            )?;
        }
        self.rest.inner.end_as(dir, why, mem, em)
    }

    pub(super) fn release(&mut self, mem: &mut Memory) {
        self.rest.inner.release(mem);
        self.conn = Connection::new();
        mem.refund(Pool::Tls, self.rest.charged);
        self.rest.charged = 0;
    }

    /// Charges the connection's state as it is now; drops it when nothing more can come of it.
    fn settle(&mut self, mem: &mut Memory) {
        if self.rest.done {
            self.conn = Connection::new();
        }
        let now = self.conn.memory();
        if now != self.rest.charged {
            mem.force(Pool::Tls, now);
            mem.refund(Pool::Tls, self.rest.charged);
            self.rest.charged = now;
        }
    }
}

impl State {
    fn on_event(
        &mut self,
        ev: tls::Event<'_>,
        mem: &mut Memory,
        em: &mut dyn Emit,
    ) -> io::Result<()> {
        use tls::Event as E;
        match ev {
            E::ClientHello {
                version,
                sni,
                alpn,
                client_random,
                renegotiation,
            } => {
                self.client_random = Some(client_random);
                self.mark_used_if_logged();
                if renegotiation {
                    return self.notice(
                        Dir::C2S,
                        "TLS renegotiation: a new handshake inside the encrypted connection".into(),
                        em,
                    );
                }
                self.info.sni = sni;
                let mut s = format!("TLS ClientHello: offers {}", version_name(version));
                if let Some(n) = &self.info.sni {
                    s.push_str(&format!(", SNI {n}"));
                }
                if !alpn.is_empty() {
                    s.push_str(&format!(", ALPN {}", alpn.join(" ")));
                }
                self.notice(Dir::C2S, s, em)
            }
            E::ServerHello {
                version,
                suite_name,
                alpn,
                hello_retry,
                resumed,
                ..
            } => {
                if hello_retry {
                    return self.notice(
                        Dir::S2C,
                        "TLS HelloRetryRequest: the server asks the client for another key share"
                            .into(),
                        em,
                    );
                }
                if self.decrypted.is_some() {
                    // A renegotiation: the connection was already described.
                    return Ok(());
                }
                self.info.version = Some(version_name(version));
                self.info.suite = Some(suite_name);
                self.info.resumed = resumed;
                if let Some(p) = alpn {
                    self.alpn(p, em)?;
                }
                Ok(())
            }
            E::Alpn { protocol } => {
                self.confirm(Dir::S2C, em)?;
                self.alpn(protocol, em)
            }
            E::KeysFound => {
                self.mark_used_if_logged();
                if self.decrypted != Some(true) && self.pending.is_none() {
                    self.pending = Some(self.decrypted == Some(false));
                }
                Ok(())
            }
            E::NoKey { client_random } => {
                if self.decrypted.is_some() {
                    return Ok(());
                }
                self.decrypted = Some(false);
                let detail = match &self.keys {
                    Some(k) if !k.sources().is_empty() => format!(
                        "{}: not decrypted: {} has no line for client random {client_random}; the client must log its keys (SSLKEYLOGFILE) while it connects",
                        self.describe(),
                        k.sources()
                    ),
                    _ => {
                        // Nothing can come later: no key log, no secrets in the capture.
                        self.done = true;
                        format!(
                            "{}: encrypted; to decrypt it give wsdump the client's key log: --keylog FILE (the file SSLKEYLOGFILE names)",
                            self.describe()
                        )
                    }
                };
                self.verdict(Dir::S2C, detail, em)
            }
            E::UnsupportedSuite { suite, name } => {
                self.done = true;
                self.decrypted = Some(false);
                let detail = format!(
                    "{}: not decrypted: wsdump does not decrypt cipher suite {name} ({suite:#06x}); it decrypts AES-GCM, ChaCha20-Poly1305 and AES-CBC suites",
                    self.describe()
                );
                self.verdict(Dir::S2C, detail, em)
            }
            E::UnsupportedVersion { version } => {
                self.done = true;
                self.decrypted = Some(false);
                let detail = format!(
                    "{}: not decrypted: {} is not decrypted, only TLS 1.2 and TLS 1.3",
                    self.describe(),
                    version_name(version)
                );
                self.verdict(Dir::S2C, detail, em)
            }
            E::StartedLate => {
                if self.said & SAID_LATE != 0 {
                    return Ok(());
                }
                self.said |= SAID_LATE;
                self.done = true;
                self.decrypted = Some(false);
                let dir = self.feeding;
                self.verdict(
                    dir,
                    "TLS records without their handshake: the capture began after it, so the client random that finds this connection's keys in a key log is unknown; not decrypted (start the capture before the client connects)".into(),
                    em,
                )
            }
            E::Alert {
                dir,
                level,
                description,
                name,
            } => {
                let level = match level {
                    1 => "warning",
                    2 => "fatal",
                    _ => "level?",
                };
                let d = dir_of(dir);
                self.notice(
                    d,
                    format!(
                        "TLS alert from the {}: {level} {name} ({description})",
                        side(d)
                    ),
                    em,
                )
            }
            E::CloseNotify { dir } => {
                let d = dir_of(dir);
                self.notice(d, format!("TLS close_notify from the {}", side(d)), em)
            }
            E::ApplicationData { dir, data } => {
                self.confirm(dir_of(dir), em)?;
                if self.h2 {
                    return Ok(());
                }
                let d = dir_of(dir);
                let at = self.at[d.index()];
                self.at[d.index()] += data.len() as u64;
                self.inner.data(d, at, &data, mem, em)
            }
            E::DecryptFailed { dir, seq } => {
                let d = dir_of(dir);
                let bit = SAID_FAILED << d.index();
                if self.said & bit != 0 {
                    return Ok(());
                }
                self.said |= bit;
                let cr = self.random_hex();
                let detail = format!(
                    "TLS record {seq} from the {} does not authenticate with the logged secrets (AEAD tag or MAC): the key log's line for client random {cr} is not this connection's (from another run?) or the capture is corrupt; records that do not authenticate are not decoded",
                    side(d)
                );
                if self.pending.take().is_some() {
                    // The keys never opened a record: this is the verdict.
                    self.decrypted = Some(false);
                    self.info.decrypted = false;
                    let detail = format!("{}: not decrypted: {detail}", self.describe());
                    return self.verdict(d, detail, em);
                }
                self.notice(d, detail, em)
            }
            E::Resynced {
                dir,
                bytes,
                records,
            } => {
                let d = dir_of(dir);
                let mut s = format!("TLS from the {}:", side(d));
                if bytes > 0 {
                    s.push_str(&format!(
                        " skipped {bytes} bytes to the next record boundary"
                    ));
                }
                if records > 0 {
                    if bytes > 0 {
                        s.push(';');
                    }
                    let plural = if records == 1 { "record" } else { "records" };
                    s.push_str(&format!(
                        " {records} {plural} lost (by their sequence numbers)"
                    ));
                }
                self.notice(d, s, em)
            }
            E::Undecrypted { dir, reason } => {
                // No key, started late, unsupported: the verdict said so already.
                if self.decrypted.is_some() && reason != "TLS 1.3 early data" {
                    return Ok(());
                }
                let d = dir_of(dir);
                self.notice(
                    d,
                    format!("TLS records from the {} not decrypted: {reason}", side(d)),
                    em,
                )
            }
            E::Malformed { dir, what } => {
                let d = dir_of(dir);
                let bit = SAID_MALFORMED << d.index();
                if self.said & bit != 0 {
                    return Ok(());
                }
                self.said |= bit;
                self.notice(
                    d,
                    format!(
                        "not TLS from the {}: {what}; looking for the next record",
                        side(d)
                    ),
                    em,
                )
            }
            // TLS 1.3 sends both encrypted (a TLS 1.2 ticket comes before ChangeCipherSpec,
            // in the clear: no proof that the keys are right).
            E::KeyUpdate { dir, .. } => self.confirm(dir_of(dir), em),
            E::NewSessionTicket { dir } if self.info.version == Some("TLS 1.3") => {
                self.confirm(dir_of(dir), em)
            }
            E::NewSessionTicket { .. } => Ok(()),
        }
    }

    /// The key log's lines for this connection go into a pcapng copy (`-w`) as soon as they
    /// are known: when the ClientHello shows the client random, or when the key log gains
    /// them, so that the Decryption Secrets Block comes before the packets that need it.
    /// Done after the bytes were fed (the key log is locked while they are).
    fn mark_used_if_logged(&mut self) {
        self.mark = true;
    }

    /// A record opened with the logged secrets: the connection is decrypted (said once).
    fn confirm(&mut self, dir: Dir, em: &mut dyn Emit) -> io::Result<()> {
        let Some(again) = self.pending.take() else {
            return Ok(());
        };
        self.decrypted = Some(true);
        self.info.decrypted = true;
        let cr = self.random_hex();
        let from = self
            .keys
            .as_ref()
            .map(KeyStore::sources)
            .unwrap_or_default();
        let detail = if again {
            format!(
                "{}: the key log now has the secrets of client random {cr}: decrypted from here on",
                self.describe()
            )
        } else {
            format!(
                "{}: decrypted with the secrets of client random {cr} ({from})",
                self.describe()
            )
        };
        self.verdict(dir, detail, em)
    }

    fn alpn(&mut self, protocol: String, em: &mut dyn Emit) -> io::Result<()> {
        let h2 = protocol == "h2";
        self.info.alpn = Some(protocol);
        if h2 && !self.h2 {
            self.h2 = true;
            return self.notice(
                Dir::S2C,
                "ALPN h2: the connection carries HTTP/2, which wsdump does not decode (websocket over HTTP/2, RFC 8441, is not supported)".into(),
                em,
            );
        }
        Ok(())
    }

    /// "TLS 1.3 TLS_AES_128_GCM_SHA256, SNI localhost, resumed".
    fn describe(&self) -> String {
        let mut s = self.info.version.unwrap_or("TLS").to_string();
        if let Some(suite) = self.info.suite {
            s.push(' ');
            s.push_str(suite);
        }
        if let Some(n) = &self.info.sni {
            s.push_str(", SNI ");
            s.push_str(n);
        }
        if let Some(a) = &self.info.alpn {
            s.push_str(", ALPN ");
            s.push_str(a);
        }
        if self.info.resumed {
            s.push_str(", resumed");
        }
        s
    }

    fn random_hex(&self) -> String {
        self.client_random
            .as_ref()
            .map_or_else(|| "(unknown)".into(), |r| keylog::hex(r))
    }

    /// The notice with the `tls` object, in the direction of the record that decided it.
    fn verdict(&mut self, dir: Dir, detail: String, em: &mut dyn Emit) -> io::Result<()> {
        let info = Some(Box::new(self.info.clone()));
        em.emit(dir, EventKind::Notice(&Notice::Tls { detail, info }))
    }

    fn notice(&mut self, dir: Dir, detail: String, em: &mut dyn Emit) -> io::Result<()> {
        em.emit(dir, EventKind::Notice(&Notice::Tls { detail, info: None }))
    }
}

fn direction(d: Dir) -> Direction {
    match d {
        Dir::C2S => Direction::ClientToServer,
        Dir::S2C => Direction::ServerToClient,
    }
}

fn dir_of(d: Direction) -> Dir {
    match d {
        Direction::ClientToServer => Dir::C2S,
        Direction::ServerToClient => Dir::S2C,
    }
}

fn side(d: Dir) -> &'static str {
    match d {
        Dir::C2S => "client",
        Dir::S2C => "server",
    }
}

fn version_name(v: u16) -> &'static str {
    match v {
        0x0304 => "TLS 1.3",
        0x0303 => "TLS 1.2",
        0x0302 => "TLS 1.1",
        0x0301 => "TLS 1.0",
        0x0300 => "SSL 3.0",
        _ => "an unknown TLS version",
    }
}

/// Whether a direction's first bytes are TLS records: a handshake record (a ClientHello or
/// ServerHello), or — joined after the handshake — change_cipher_spec, alert or
/// application_data with a length a record may have (RFC 8446 5.2).
pub(super) fn starts_like_tls(d: &[u8]) -> bool {
    if d.len() >= 6 && d[0] == 0x16 && d[1] == 0x03 && d[2] <= 0x04 {
        return true;
    }
    d.len() >= 5
        && (0x14..=0x17).contains(&d[0])
        && d[1] == 0x03
        && d[2] <= 0x04
        && u16::from_be_bytes([d[3], d[4]]) as usize <= (1 << 14) + 2048
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::file::CaptureFile;
    use crate::tls::KeyLog;
    use std::ops::ControlFlow;
    use std::path::Path;

    /// Events as words: "notice tls: ...", "message", "http_request", ...
    #[derive(Default)]
    struct Seen(Vec<String>);

    impl Emit for Seen {
        fn emit(&mut self, _dir: Dir, kind: EventKind<'_>) -> io::Result<()> {
            self.0.push(match kind {
                EventKind::Notice(Notice::Tls { detail, info }) => {
                    format!("tls {} {detail}", info.is_some())
                }
                EventKind::Message(m) => format!("message {:?}", m.text()),
                EventKind::HttpRequest(_) => "http_request".into(),
                EventKind::HttpResponse(_) => "http_response".into(),
                other => format!("{other:?}"),
            });
            Ok(())
        }
    }

    /// samples/tls-wss.pcap's payloads in capture order (the sample has no retransmission).
    fn payloads() -> Vec<(Dir, Vec<u8>)> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/tls-wss.pcap");
        let mut cap = CaptureFile::open(std::fs::File::open(path).unwrap()).unwrap();
        let mut out = Vec::new();
        cap.for_each_packet(|p| {
            if let Ok(seg) = crate::packet::decode(p.linktype, p.data)
                && !seg.payload.is_empty()
            {
                let d = if seg.src.port() == 9007 {
                    Dir::S2C
                } else {
                    Dir::C2S
                };
                out.push((d, seg.payload.to_vec()));
            }
            ControlFlow::Continue(())
        })
        .unwrap();
        out
    }

    fn run(keys: Option<KeyStore>) -> (Vec<String>, Memory) {
        let mut mem = Memory::new(1 << 24);
        let mut seen = Seen::default();
        let mut conv = Conversation::new(false, false, Limits::default()).with_keys(keys);
        let mut at = [0u64; 2];
        for (d, p) in payloads() {
            conv.data(d, at[d.index()], &p, &mut mem, &mut seen)
                .unwrap();
            at[d.index()] += p.len() as u64;
        }
        conv.end(Dir::C2S, &mut mem, &mut seen).unwrap();
        conv.end(Dir::S2C, &mut mem, &mut seen).unwrap();
        assert!(mem.peak() > 0);
        conv.release(&mut mem);
        (seen.0, mem)
    }

    #[test]
    fn decrypted_bytes_are_a_conversation_of_their_own() {
        let log = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/tls-wss.keylog");
        let store = KeyStore::from_log(KeyLog::from_file(&log).unwrap());
        let (seen, mem) = run(Some(store.clone()));
        let messages: Vec<&String> = seen.iter().filter(|s| s.starts_with("message")).collect();
        assert_eq!(messages.len(), 8, "{seen:#?}");
        assert_eq!(messages[0], "message Some(\"secret one\")");
        assert!(seen.contains(&"http_request".to_string()));
        assert!(seen.contains(&"http_response".to_string()));
        let verdicts: Vec<&String> = seen.iter().filter(|s| s.starts_with("tls true")).collect();
        assert_eq!(verdicts.len(), 1);
        assert!(verdicts[0].contains("decrypted with the secrets"));
        assert_eq!(mem.used(), 0, "every pool is back at zero");
        // The connection's secrets are what a pcapng copy would carry.
        let lines = String::from_utf8(store.used_lines()).unwrap();
        assert!(lines.contains("CLIENT_HANDSHAKE_TRAFFIC_SECRET 404044b6"));
    }

    #[test]
    fn without_keys_only_the_handshake_is_described() {
        let (seen, mem) = run(None);
        assert_eq!(seen.len(), 2, "{seen:#?}");
        assert!(seen[0].starts_with("tls false TLS ClientHello: offers TLS 1.3, SNI localhost"));
        assert!(seen[1].contains("--keylog FILE"));
        assert_eq!(mem.used(), 0);
    }

    #[test]
    fn what_starts_like_tls() {
        assert!(starts_like_tls(&[0x16, 3, 1, 2, 0, 1]));
        assert!(starts_like_tls(&[0x17, 3, 3, 0x40, 0x11]));
        assert!(
            !starts_like_tls(&[0x17, 3, 3, 0x50, 0x00]),
            "longer than a record"
        );
        assert!(!starts_like_tls(b"GET / HTTP/1.1"));
        assert!(!starts_like_tls(&[0x81, 0x05]));
    }
}
