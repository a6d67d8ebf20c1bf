//! TLS decryption with an NSS key log (SSLKEYLOGFILE), for wss:// (issue 17).
//!
//! Engine-independent: a [`Connection`] is fed each direction's in-order TCP bytes and
//! calls back with [`Event`]s — the hellos, key log hits and misses, alerts, and the
//! decrypted application data, which borrows the connection's plaintext buffer so the
//! caller can hand it straight to its HTTP/websocket decoder.
//!
//! - [`keylog`]: the key log and a reader that follows a growing file.
//! - [`schedule`]: HKDF-Expand-Label, the TLS 1.2 PRF, key blocks.
//! - [`record`]: records out of the byte stream, record decryption.
//! - [`handshake`]: ClientHello/ServerHello and the other messages by type.
//! - [`suite`]: the cipher suite table.
//! - [`store`]: the key log a run shares across connections and threads.
//!
//! ```
//! use wsdump::tls::{Connection, Direction, Event, KeyLog, KeyLogReader};
//!
//! let mut keys = KeyLog::new();
//! let mut follow = KeyLogReader::new("/nonexistent/sslkeylog.txt");
//! follow.poll(&mut keys).unwrap(); // between packets: picks up newly logged secrets
//! let mut conn = Connection::new();
//! let client_hello_start = [0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00];
//! conn.feed(Direction::ClientToServer, &client_hello_start, &keys, |event| match event {
//!     Event::ApplicationData { dir, data } => { /* hand `data` to the HTTP decoder */ }
//!     other => { /* report */ }
//! });
//! assert!(conn.memory() < 4096);
//! ```

pub mod handshake;
pub mod keylog;
pub mod record;
pub mod schedule;
pub mod store;
pub mod suite;

use handshake::{ClientHello, HandshakeReader, Message, ServerHello};
pub use keylog::{ClientRandom, KeyLog, KeyLogReader};
use record::{Decrypter, RecordReader};
use schedule::KeyBlock;
use std::borrow::Cow;
pub use store::KeyStore;
use suite::{Suite, SuiteVersion};

/// Which way bytes travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the peer that sent the ClientHello.
    ClientToServer,
    /// From the peer that answers it.
    ServerToClient,
}

impl Direction {
    fn index(self) -> usize {
        match self {
            Direction::ClientToServer => 0,
            Direction::ServerToClient => 1,
        }
    }
    fn of(index: usize) -> Direction {
        if index == 0 {
            Direction::ClientToServer
        } else {
            Direction::ServerToClient
        }
    }
}

/// Records tried after a gap to find the sequence number again.
pub const MAX_RESYNC_RECORDS: u64 = 64;

/// What the connection reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// The client's ClientHello (RFC 8446 4.1.2, RFC 5246 7.4.1.2).
    ClientHello {
        /// Highest version offered, as on the wire (0x0303 TLS 1.2, 0x0304 TLS 1.3), from
        /// `supported_versions` when present.
        version: u16,
        /// The server_name extension's host name (RFC 6066 3).
        sni: Option<String>,
        /// The application protocols offered (ALPN, RFC 7301), in the client's order.
        alpn: Vec<String>,
        /// Its 32-byte random: the key under which the key log files this connection's
        /// secrets.
        client_random: ClientRandom,
        /// A ClientHello inside an established TLS 1.2 connection.
        renegotiation: bool,
    },
    /// The server's ServerHello (or HelloRetryRequest).
    ServerHello {
        /// The version chosen, as on the wire (0x0304 from `supported_versions`).
        version: u16,
        /// The cipher suite chosen, its IANA code point.
        suite: u16,
        /// IANA name, or "unknown".
        suite_name: &'static str,
        /// TLS 1.2 ALPN (TLS 1.3 sends it in EncryptedExtensions: [`Event::Alpn`]).
        alpn: Option<String>,
        /// A HelloRetryRequest (RFC 8446 4.1.4): the client sends a second ClientHello.
        hello_retry: bool,
        /// TLS 1.2 session ID or ticket resumption, TLS 1.3 PSK.
        resumed: bool,
    },
    /// The protocol the server chose, from TLS 1.3 EncryptedExtensions.
    Alpn {
        /// The protocol name as sent (`http/1.1`).
        protocol: String,
    },
    /// The key log has the secrets of this handshake.
    KeysFound,
    /// The key log has no (usable) secret for this client random (hex). Looked up again
    /// on later records, so a key log that grows later still works.
    NoKey {
        /// 64 lower-case hex digits, as the key log writes it.
        client_random: String,
    },
    /// The negotiated suite is not decrypted here.
    UnsupportedSuite {
        /// The suite's IANA code point.
        suite: u16,
        /// Its IANA name, or "unknown".
        name: &'static str,
    },
    /// Not TLS 1.2 or 1.3.
    UnsupportedVersion {
        /// The version the ServerHello chose, as on the wire (0x0302 is TLS 1.1).
        version: u16,
    },
    /// Encrypted data without a ClientHello before it: the capture started after the
    /// handshake, so the client random (the key log's key) is unknown. Once per connection.
    StartedLate,
    /// An alert other than close_notify (RFC 8446 6, RFC 5246 7.2), plaintext or decrypted.
    Alert {
        /// Who sent it.
        dir: Direction,
        /// 1 warning, 2 fatal.
        level: u8,
        /// The AlertDescription code.
        description: u8,
        /// Its name in the RFCs ([`alert_name`]).
        name: &'static str,
    },
    /// A close_notify alert (RFC 8446 6.1): the sender will send no more data.
    CloseNotify {
        /// Who sent it.
        dir: Direction,
    },
    /// Decrypted application data, in order.
    ApplicationData {
        /// Who sent it.
        dir: Direction,
        /// The plaintext of one record; borrowed from the connection during
        /// [`Connection::feed`] (see [`Event::into_owned`]).
        data: Cow<'a, [u8]>,
    },
    /// A record whose tag or MAC did not verify: wrong key or corrupt record.
    DecryptFailed {
        /// Whose record it was.
        dir: Direction,
        /// The record's sequence number in its direction (from 0 after each key change).
        seq: u64,
    },
    /// A TLS 1.3 KeyUpdate (RFC 8446 4.6.3): the sender's traffic keys change from the
    /// next record on, and are followed.
    KeyUpdate {
        /// Who sent it.
        dir: Direction,
        /// `update_requested`: the peer is asked to update its keys too.
        update_requested: bool,
    },
    /// A NewSessionTicket (RFC 8446 4.6.1, RFC 5077): the server lets the client resume.
    NewSessionTicket {
        /// Who sent it (the server, unless the peers misbehave).
        dir: Direction,
    },
    /// The stream was not records for a while (or bytes were lost): this many bytes were
    /// skipped to the next plausible record, and `records` records were found lost by
    /// their sequence numbers.
    Resynced {
        /// The direction that lost its way.
        dir: Direction,
        /// Bytes skipped.
        bytes: u64,
        /// Records missing by their sequence numbers.
        records: u64,
    },
    /// Records that cannot be decrypted for a reason already reported (no key, unsupported
    /// suite, started late, TLS 1.3 early data): counted, reported once per reason.
    Undecrypted {
        /// Whose records.
        dir: Direction,
        /// Why, in words ("TLS 1.3 early data").
        reason: &'static str,
    },
    /// The byte stream is not TLS records, or a handshake message does not parse.
    Malformed {
        /// The direction at fault.
        dir: Direction,
        /// What did not parse, in words.
        what: String,
    },
}

impl Event<'_> {
    /// The same event owning its data.
    pub fn into_owned(self) -> Event<'static> {
        match self {
            Event::ApplicationData { dir, data } => Event::ApplicationData {
                dir,
                data: Cow::Owned(data.into_owned()),
            },
            Event::ClientHello {
                version,
                sni,
                alpn,
                client_random,
                renegotiation,
            } => Event::ClientHello {
                version,
                sni,
                alpn,
                client_random,
                renegotiation,
            },
            Event::ServerHello {
                version,
                suite,
                suite_name,
                alpn,
                hello_retry,
                resumed,
            } => Event::ServerHello {
                version,
                suite,
                suite_name,
                alpn,
                hello_retry,
                resumed,
            },
            Event::Alpn { protocol } => Event::Alpn { protocol },
            Event::KeysFound => Event::KeysFound,
            Event::NoKey { client_random } => Event::NoKey { client_random },
            Event::UnsupportedSuite { suite, name } => Event::UnsupportedSuite { suite, name },
            Event::UnsupportedVersion { version } => Event::UnsupportedVersion { version },
            Event::StartedLate => Event::StartedLate,
            Event::Alert {
                dir,
                level,
                description,
                name,
            } => Event::Alert {
                dir,
                level,
                description,
                name,
            },
            Event::CloseNotify { dir } => Event::CloseNotify { dir },
            Event::DecryptFailed { dir, seq } => Event::DecryptFailed { dir, seq },
            Event::KeyUpdate {
                dir,
                update_requested,
            } => Event::KeyUpdate {
                dir,
                update_requested,
            },
            Event::NewSessionTicket { dir } => Event::NewSessionTicket { dir },
            Event::Resynced {
                dir,
                bytes,
                records,
            } => Event::Resynced {
                dir,
                bytes,
                records,
            },
            Event::Undecrypted { dir, reason } => Event::Undecrypted { dir, reason },
            Event::Malformed { dir, what } => Event::Malformed { dir, what },
        }
    }
}

/// Alert description names (RFC 8446 §6, RFC 5246 §7.2).
pub fn alert_name(description: u8) -> &'static str {
    match description {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        21 => "decryption_failed",
        22 => "record_overflow",
        30 => "decompression_failure",
        40 => "handshake_failure",
        41 => "no_certificate",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        49 => "access_denied",
        50 => "decode_error",
        51 => "decrypt_error",
        60 => "export_restriction",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        100 => "no_renegotiation",
        109 => "missing_extension",
        110 => "unsupported_extension",
        111 => "certificate_unobtainable",
        112 => "unrecognized_name",
        113 => "bad_certificate_status_response",
        114 => "bad_certificate_hash_value",
        115 => "unknown_psk_identity",
        116 => "certificate_required",
        120 => "no_application_protocol",
        _ => "unknown",
    }
}

/// Which keys protect a direction's records now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Epoch {
    /// Not encrypted (yet).
    Plain,
    /// TLS 1.3 client early traffic keys (0-RTT), until EndOfEarlyData.
    Early13,
    /// TLS 1.3 handshake traffic keys.
    Handshake13,
    /// TLS 1.3 application traffic secret N.
    Application13(usize),
    /// TLS 1.2 keys since the last ChangeCipherSpec.
    Tls12,
}

/// One direction.
#[derive(Debug, Default)]
struct Half {
    records: RecordReader,
    handshake: HandshakeReader,
    epoch: Option<Epoch>,
    dec: Option<Box<Decrypter>>,
    /// TLS 1.3: decrypters tried on a record that fails under (or has no) current keys,
    /// with the epoch each one means: in the handshake epoch application secret 0 (a
    /// Finished not decrypted); in the early epoch the early secret under each offered
    /// suite (the suite is not known before the ServerHello), and the handshake keys (the
    /// server refused the early data).
    fallback: Vec<(Epoch, Box<Decrypter>)>,
    /// TLS 1.3: the current application traffic secret, for KeyUpdate.
    traffic_secret: Option<Vec<u8>>,
    /// Records of this epoch seen before a decrypter existed: its first sequence number.
    undecrypted_in_epoch: u64,
    /// Bytes were lost: find the sequence number by trial.
    lost: bool,
    /// Reasons already reported by Undecrypted.
    reported: u8,
}

impl Half {
    fn epoch(&self) -> Epoch {
        self.epoch.unwrap_or(Epoch::Plain)
    }
    fn enter(&mut self, epoch: Epoch) {
        self.epoch = Some(epoch);
        self.dec = None;
        self.fallback = Vec::new();
        self.undecrypted_in_epoch = 0;
        self.reported = 0;
    }
}

/// Per-handshake state.
#[derive(Debug, Default)]
struct Hello {
    client_random: Option<ClientRandom>,
    client_session_id: Vec<u8>,
    client_ems: bool,
    client_etm: bool,
    early_data: bool,
    /// Suites the ClientHello offered (for 0-RTT, whose suite the ServerHello tells later).
    offered: Vec<u16>,
    server_random: Option<[u8; 32]>,
    version: Option<u16>,
    suite: Option<&'static Suite>,
    etm: bool,
    /// TLS 1.2: the key block for the next ChangeCipherSpec of each direction.
    pending: Option<Box<KeyBlock>>,
    keys_reported: bool,
    no_key_reported: bool,
}

/// One TLS connection, seen from the side. Drive it with [`feed`](Self::feed).
#[derive(Debug, Default)]
pub struct Connection {
    halves: [Half; 2],
    hello: Hello,
    /// A ClientHello was seen at all.
    saw_client_hello: bool,
    /// A handshake completed (TLS 1.2 renegotiation detection).
    established: bool,
    /// Unsupported version or suite: nothing more to decrypt.
    hopeless: bool,
    started_late_reported: bool,
    /// Plaintext of the current record; the data events borrow it.
    plain: Vec<u8>,
    messages: Vec<Result<Message, handshake::HandshakeError>>,
}

const REASON_NO_KEY: u8 = 1;
const REASON_LATE: u8 = 2;
const REASON_UNSUPPORTED: u8 = 4;
const REASON_EARLY: u8 = 8;

impl Connection {
    /// A connection that has seen nothing: it expects a ClientHello first, and reports
    /// [`Event::StartedLate`] if encrypted records come instead.
    pub fn new() -> Connection {
        Connection::default()
    }

    /// Feeds in-order TCP payload bytes of one direction. Events go to `sink`; data events
    /// borrow this connection's buffer for the duration of the call.
    pub fn feed(
        &mut self,
        dir: Direction,
        bytes: &[u8],
        keys: &KeyLog,
        mut sink: impl FnMut(Event<'_>),
    ) {
        self.feed_dyn(dir, bytes, keys, &mut sink);
    }

    /// Convenience: like [`feed`](Self::feed), returning owned events.
    pub fn feed_collect(
        &mut self,
        dir: Direction,
        bytes: &[u8],
        keys: &KeyLog,
    ) -> Vec<Event<'static>> {
        let mut v = Vec::new();
        self.feed(dir, bytes, keys, |e| v.push(e.into_owned()));
        v
    }

    /// Bytes of this direction were lost (a TCP gap) before the next `feed`: the record
    /// boundary and the sequence number are found again by trial.
    pub fn gap(&mut self, dir: Direction) {
        let h = &mut self.halves[dir.index()];
        h.records.gap();
        h.handshake = HandshakeReader::new();
        h.lost = true;
    }

    /// Heap bytes held by this connection, for the engine's memory ledger.
    pub fn memory(&self) -> usize {
        let half = |h: &Half| {
            h.records.memory()
                + h.handshake.memory()
                + h.dec
                    .iter()
                    .chain(h.fallback.iter().map(|f| &f.1))
                    .map(|d| std::mem::size_of::<Decrypter>() + d.memory())
                    .sum::<usize>()
                + h.fallback.capacity() * std::mem::size_of::<(Epoch, Box<Decrypter>)>()
                + h.traffic_secret.as_ref().map_or(0, |s| s.capacity())
        };
        let kb = self.hello.pending.as_ref().map_or(0, |k| {
            std::mem::size_of::<KeyBlock>()
                + k.client_key.capacity()
                + k.server_key.capacity()
                + k.client_mac.capacity()
                + k.server_mac.capacity()
                + k.client_iv.capacity()
                + k.server_iv.capacity()
        });
        half(&self.halves[0])
            + half(&self.halves[1])
            + kb
            + self.hello.client_session_id.capacity()
            + self.plain.capacity()
            + self.messages.capacity()
                * std::mem::size_of::<Result<Message, handshake::HandshakeError>>()
    }

    /// Bytes of a direction waiting for the rest of their record (at the end of a
    /// connection: a cut-off last record).
    pub fn buffered(&self, dir: Direction) -> usize {
        self.halves[dir.index()].records.buffered()
    }

    /// The client random of the current handshake, once its ClientHello was seen.
    pub fn client_random(&self) -> Option<&ClientRandom> {
        self.hello.client_random.as_ref()
    }

    /// Negotiated version (0x0303, 0x0304), once the ServerHello was seen.
    pub fn version(&self) -> Option<u16> {
        self.hello.version
    }

    /// Negotiated cipher suite.
    pub fn suite(&self) -> Option<&'static Suite> {
        self.hello.suite
    }

    fn feed_dyn(
        &mut self,
        dir: Direction,
        bytes: &[u8],
        keys: &KeyLog,
        sink: &mut dyn FnMut(Event<'_>),
    ) {
        let d = dir.index();
        self.halves[d].records.push(bytes);
        loop {
            if self.halves[d].dec.is_none() && self.halves[d].epoch() != Epoch::Plain {
                self.install(d, keys, sink);
            }
            // TLS 1.3: if a record fails under the handshake keys it may be the first under
            // the application keys (the Finished was not decrypted, or not logged).
            if self.halves[d].fallback.is_empty() {
                self.halves[d].fallback = self.candidates(d, keys);
            }
            let Connection { halves, plain, .. } = self;
            let half = &mut halves[d];
            let outcome = match half.records.next_record() {
                Ok(Some(rec)) => {
                    let epoch = half.epoch.unwrap_or(Epoch::Plain);
                    let protection = Protection {
                        epoch,
                        dec: half.dec.as_deref_mut(),
                        lost: &mut half.lost,
                    };
                    open(protection, &rec, plain, &mut half.fallback)
                }
                Ok(None) => break,
                Err(e) => {
                    sink(Event::Malformed {
                        dir,
                        what: e.to_string(),
                    });
                    half.records.resync();
                    continue;
                }
            };
            let skipped = half.records.take_skipped();
            let lost = match outcome {
                Opened::Plain(_, lost) | Opened::Promoted(_, lost, _) => lost,
                _ => 0,
            };
            if skipped > 0 || lost > 0 {
                sink(Event::Resynced {
                    dir,
                    bytes: skipped,
                    records: lost,
                });
            }
            if let Opened::Promoted(_, _, i) = outcome {
                let (epoch, dec) = half.fallback.swap_remove(i);
                let secret = self.logged_traffic_secret(d, 0, keys);
                let h = &mut self.halves[d];
                h.enter(epoch);
                if epoch == Epoch::Application13(0) {
                    h.traffic_secret = secret;
                }
                h.dec = Some(dec);
                if !self.hello.keys_reported {
                    self.hello.keys_reported = true;
                    sink(Event::KeysFound);
                }
            }
            let plain = std::mem::take(&mut self.plain);
            self.on_record(dir, outcome, &plain, keys, sink);
            self.plain = plain;
        }
    }

    fn on_record(
        &mut self,
        dir: Direction,
        outcome: Opened,
        plain: &[u8],
        keys: &KeyLog,
        sink: &mut dyn FnMut(Event<'_>),
    ) {
        let d = dir.index();
        let content_type = match outcome {
            Opened::Plain(t, _) | Opened::Promoted(t, _, _) => t,
            Opened::Failed(seq) => {
                self.on_failure(d, seq, sink);
                return;
            }
            Opened::NoDecrypter => {
                let h = &mut self.halves[d];
                h.undecrypted_in_epoch += 1;
                let reason = if d == 0
                    && self.hello.early_data
                    && matches!(h.epoch(), Epoch::Plain | Epoch::Early13)
                {
                    // After a ClientHello offering 0-RTT, before the ServerHello.
                    (REASON_EARLY, "TLS 1.3 early data")
                } else if !self.saw_client_hello {
                    if !self.started_late_reported {
                        self.started_late_reported = true;
                        sink(Event::StartedLate);
                    }
                    (REASON_LATE, "capture started after the handshake")
                } else if self.hopeless {
                    (REASON_UNSUPPORTED, "unsupported version or cipher suite")
                } else {
                    (REASON_NO_KEY, "no key")
                };
                if h.reported & reason.0 == 0 {
                    h.reported |= reason.0;
                    sink(Event::Undecrypted {
                        dir,
                        reason: reason.1,
                    });
                }
                return;
            }
        };
        match content_type {
            record::HANDSHAKE => {
                let mut messages = std::mem::take(&mut self.messages);
                self.halves[d].handshake.push(plain, &mut messages);
                for m in messages.drain(..) {
                    match m {
                        Ok(m) => self.on_message(dir, m, keys, sink),
                        Err(e) => sink(Event::Malformed {
                            dir,
                            what: e.to_string(),
                        }),
                    }
                }
                self.messages = messages;
            }
            record::APPLICATION_DATA if !plain.is_empty() => {
                sink(Event::ApplicationData {
                    dir,
                    data: Cow::Borrowed(plain),
                });
            }
            record::ALERT => {
                for a in plain.chunks_exact(2) {
                    if a[1] == 0 {
                        sink(Event::CloseNotify { dir });
                    } else {
                        sink(Event::Alert {
                            dir,
                            level: a[0],
                            description: a[1],
                            name: alert_name(a[1]),
                        });
                    }
                }
            }
            // TLS 1.3 sends ChangeCipherSpec for middlebox compatibility only; it changes
            // nothing there.
            record::CHANGE_CIPHER_SPEC if self.hello.version == Some(0x0303) && !self.hopeless => {
                self.halves[d].enter(Epoch::Tls12);
                self.install(d, keys, sink);
            }
            _ => {}
        }
    }

    /// A record that did not verify.
    fn on_failure(&mut self, d: usize, seq: u64, sink: &mut dyn FnMut(Event<'_>)) {
        let dir = Direction::of(d);
        // From the client under handshake keys, with 0-RTT offered: early data, whose keys
        // this crate does not use.
        if matches!(self.halves[d].epoch(), Epoch::Handshake13 | Epoch::Early13)
            && d == 0
            && self.hello.early_data
        {
            let h = &mut self.halves[d];
            if h.reported & REASON_EARLY == 0 {
                h.reported |= REASON_EARLY;
                sink(Event::Undecrypted {
                    dir,
                    reason: "TLS 1.3 early data",
                });
            }
            return;
        }
        sink(Event::DecryptFailed { dir, seq });
    }

    fn on_message(
        &mut self,
        dir: Direction,
        m: Message,
        keys: &KeyLog,
        sink: &mut dyn FnMut(Event<'_>),
    ) {
        let d = dir.index();
        match m {
            Message::ClientHello(ch) if dir == Direction::ClientToServer => {
                self.on_client_hello(&ch, sink);
            }
            Message::ServerHello(sh) if dir == Direction::ServerToClient => {
                self.on_server_hello(&sh, keys, sink);
            }
            Message::EncryptedExtensions {
                alpn: Some(protocol),
                ..
            } => sink(Event::Alpn { protocol }),
            Message::Finished => {
                if self.halves[d].epoch() == Epoch::Handshake13 {
                    self.halves[d].enter(Epoch::Application13(0));
                    self.install(d, keys, sink);
                }
                if dir == Direction::ClientToServer {
                    self.established = true;
                }
            }
            Message::KeyUpdate { update_requested } => {
                if let Epoch::Application13(n) = self.halves[d].epoch() {
                    let next = self.hello.suite.and_then(|s| {
                        let cur = self.halves[d].traffic_secret.as_deref()?;
                        schedule::next_traffic_secret(s.prf, cur)
                    });
                    let h = &mut self.halves[d];
                    h.enter(Epoch::Application13(n + 1));
                    h.traffic_secret = next;
                    self.install(d, keys, sink);
                }
                sink(Event::KeyUpdate {
                    dir,
                    update_requested,
                });
            }
            Message::NewSessionTicket => sink(Event::NewSessionTicket { dir }),
            Message::Other {
                msg_type: handshake::END_OF_EARLY_DATA,
            } if self.halves[d].epoch() == Epoch::Early13 => {
                self.halves[d].enter(Epoch::Handshake13);
                self.install(d, keys, sink);
            }
            _ => {}
        }
    }

    fn on_client_hello(&mut self, ch: &ClientHello, sink: &mut dyn FnMut(Event<'_>)) {
        let renegotiation = self.established && self.hello.version == Some(0x0303);
        let retry = self.hello.client_random == Some(ch.random);
        if !retry {
            self.hello = Hello::default();
        }
        self.saw_client_hello = true;
        self.hopeless = false;
        let h = &mut self.hello;
        h.client_random = Some(ch.random);
        h.client_session_id = ch.session_id.clone();
        h.client_ems = ch.extended_master_secret;
        h.client_etm = ch.encrypt_then_mac;
        h.early_data = ch.early_data && ch.psk;
        h.offered = ch.cipher_suites.clone();
        if h.early_data {
            self.halves[0].enter(Epoch::Early13);
        }
        sink(Event::ClientHello {
            version: ch.max_version(),
            sni: ch.sni.clone(),
            alpn: ch.alpn.clone(),
            client_random: ch.random,
            renegotiation,
        });
    }

    fn on_server_hello(
        &mut self,
        sh: &ServerHello,
        keys: &KeyLog,
        sink: &mut dyn FnMut(Event<'_>),
    ) {
        let version = sh.version();
        let found = suite::suite(sh.cipher_suite);
        let resumed = if version == 0x0304 {
            sh.psk
        } else {
            !sh.session_id.is_empty() && sh.session_id == self.hello.client_session_id
        };
        sink(Event::ServerHello {
            version,
            suite: sh.cipher_suite,
            suite_name: found.map_or("unknown", |s| s.name),
            alpn: sh.alpn.clone(),
            hello_retry: sh.hello_retry_request,
            resumed,
        });
        if sh.hello_retry_request {
            return;
        }
        if self.hello.client_random.is_none() {
            if !self.started_late_reported {
                self.started_late_reported = true;
                sink(Event::StartedLate);
            }
            self.hopeless = true;
            return;
        }
        if version != 0x0303 && version != 0x0304 {
            sink(Event::UnsupportedVersion { version });
            self.hopeless = true;
            return;
        }
        let want = if version == 0x0304 {
            SuiteVersion::Tls13
        } else {
            SuiteVersion::Tls12
        };
        let Some(s) = found.filter(|s| s.supported && s.version == want) else {
            sink(Event::UnsupportedSuite {
                suite: sh.cipher_suite,
                name: found.map_or("unknown", |s| s.name),
            });
            self.hopeless = true;
            return;
        };
        let h = &mut self.hello;
        h.version = Some(version);
        h.suite = Some(s);
        h.server_random = Some(sh.random);
        h.etm = h.client_etm && sh.encrypt_then_mac;
        if version == 0x0304 {
            for d in 0..2 {
                let h = &mut self.halves[d];
                if d == 0 && h.epoch() == Epoch::Early13 && h.dec.is_some() {
                    // 0-RTT data goes on until EndOfEarlyData; if the server refused it, the
                    // handshake keys take over on the first record they open.
                    h.fallback = Vec::new();
                    continue;
                }
                h.enter(Epoch::Handshake13);
                h.traffic_secret = None;
            }
            self.install(1, keys, sink);
            self.install(0, keys, sink);
        } else {
            self.hello.pending = None;
            self.tls12_key_block(keys, sink);
        }
    }

    /// TLS 1.2: the key block of the current handshake, from the master secret.
    fn tls12_key_block(&mut self, keys: &KeyLog, sink: &mut dyn FnMut(Event<'_>)) -> bool {
        let h = &mut self.hello;
        if h.pending.is_some() {
            return true;
        }
        let (Some(cr), Some(sr), Some(s)) = (h.client_random, h.server_random, h.suite) else {
            return false;
        };
        let kb = keys
            .get(&cr)
            .and_then(|x| x.master_secret.as_deref())
            .and_then(|ms| schedule::suite_key_block(s, ms, &sr, &cr));
        match kb {
            Some(kb) => {
                h.pending = Some(Box::new(kb));
                if !h.keys_reported {
                    h.keys_reported = true;
                    sink(Event::KeysFound);
                }
                true
            }
            None => {
                if !h.no_key_reported {
                    h.no_key_reported = true;
                    sink(Event::NoKey {
                        client_random: keylog::hex(&cr),
                    });
                }
                false
            }
        }
    }

    fn logged_traffic_secret(&self, d: usize, n: usize, keys: &KeyLog) -> Option<Vec<u8>> {
        let secrets = keys.get(self.hello.client_random.as_ref()?)?;
        if d == 0 {
            secrets.client_traffic(n)
        } else {
            secrets.server_traffic(n)
        }
        .map(<[u8]>::to_vec)
    }

    /// The decrypters [`Half::fallback`] holds for the current epoch.
    fn candidates(&self, d: usize, keys: &KeyLog) -> Vec<(Epoch, Box<Decrypter>)> {
        let mut v = Vec::new();
        match self.halves[d].epoch() {
            Epoch::Handshake13 => {
                if let Some(dec) = self.tls13_decrypter(d, 0, keys) {
                    v.push((Epoch::Application13(0), Box::new(dec)));
                }
            }
            Epoch::Early13 => {
                let secrets = self
                    .hello
                    .client_random
                    .as_ref()
                    .and_then(|cr| keys.get(cr));
                if self.halves[d].dec.is_none()
                    && let Some(early) = secrets.and_then(|x| x.client_early_traffic.as_deref())
                {
                    for id in &self.hello.offered {
                        if let Some(s) = suite::suite(*id).filter(|s| {
                            s.version == SuiteVersion::Tls13 && s.prf.output_len() == early.len()
                        }) && let Some(dec) = Decrypter::tls13(s, early)
                        {
                            v.push((Epoch::Early13, Box::new(dec)));
                        }
                    }
                }
                if let (Some(s), Some(hs)) = (
                    self.hello.suite,
                    secrets.and_then(|x| x.client_handshake_traffic.as_deref()),
                ) && let Some(dec) = Decrypter::tls13(s, hs)
                {
                    v.push((Epoch::Handshake13, Box::new(dec)));
                }
            }
            _ => {}
        }
        v
    }

    fn tls13_decrypter(&self, d: usize, n: usize, keys: &KeyLog) -> Option<Decrypter> {
        Decrypter::tls13(self.hello.suite?, &self.logged_traffic_secret(d, n, keys)?)
    }

    /// Builds the decrypter of a direction's current epoch from the key log, if it can.
    fn install(&mut self, d: usize, keys: &KeyLog, sink: &mut dyn FnMut(Event<'_>)) {
        if self.hopeless || self.halves[d].dec.is_some() {
            return;
        }
        let dec = match self.halves[d].epoch() {
            // Decided by trial (`candidates`): the suite is not known yet.
            Epoch::Plain | Epoch::Early13 => return,
            Epoch::Tls12 => {
                if !self.tls12_key_block(keys, sink) {
                    return;
                }
                let (Some(s), Some(kb)) = (self.hello.suite, self.hello.pending.as_deref()) else {
                    return;
                };
                Decrypter::tls12(s, kb, d == 0, self.hello.etm)
            }
            Epoch::Handshake13 | Epoch::Application13(_) => {
                let epoch = self.halves[d].epoch();
                let (Some(s), Some(cr)) = (self.hello.suite, self.hello.client_random) else {
                    return;
                };
                let secrets = keys.get(&cr);
                let secret: Option<Vec<u8>> = match epoch {
                    Epoch::Handshake13 => secrets.and_then(|x| {
                        if d == 0 {
                            x.client_handshake_traffic.clone()
                        } else {
                            x.server_handshake_traffic.clone()
                        }
                    }),
                    Epoch::Application13(n) => {
                        let logged = secrets.and_then(|x| {
                            if d == 0 {
                                x.client_traffic(n)
                            } else {
                                x.server_traffic(n)
                            }
                            .map(<[u8]>::to_vec)
                        });
                        logged.or_else(|| self.halves[d].traffic_secret.clone())
                    }
                    _ => None,
                };
                let Some(secret) = secret else {
                    if !self.hello.no_key_reported {
                        self.hello.no_key_reported = true;
                        sink(Event::NoKey {
                            client_random: keylog::hex(&cr),
                        });
                    }
                    return;
                };
                if let Epoch::Application13(_) = epoch {
                    self.halves[d].traffic_secret = Some(secret.clone());
                }
                Decrypter::tls13(s, &secret)
            }
        };
        let Some(mut dec) = dec else {
            return;
        };
        let h = &mut self.halves[d];
        dec.set_seq(h.undecrypted_in_epoch);
        if h.undecrypted_in_epoch > 0 {
            // Records went by before the key: the count may be off, find it by trial.
            h.lost = true;
        }
        h.dec = Some(Box::new(dec));
        if !self.hello.keys_reported {
            self.hello.keys_reported = true;
            sink(Event::KeysFound);
        }
    }
}

/// How a record came out of [`open`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Opened {
    /// Plaintext in the buffer, with its content type; and records found lost.
    Plain(u8, u64),
    /// Protected, but no decrypter for it.
    NoDecrypter,
    /// The tag or MAC failed at this sequence number.
    Failed(u64),
    /// TLS 1.3: opened by fallback decrypter `.2`, not the current keys.
    Promoted(u8, u64, usize),
}

/// Removes the protection of a record, or copies a plaintext record.
/// The parts of a [`Half`] that [`open`] needs (its record reader is borrowed by the record).
struct Protection<'a> {
    epoch: Epoch,
    dec: Option<&'a mut Decrypter>,
    lost: &'a mut bool,
}

fn open(
    half: Protection<'_>,
    rec: &record::Record<'_>,
    plain: &mut Vec<u8>,
    fallback: &mut [(Epoch, Box<Decrypter>)],
) -> Opened {
    let epoch = half.epoch;
    let t = rec.header.content_type;
    let protected = match epoch {
        Epoch::Plain => false,
        // TLS 1.3 protects only records of outer type 23; a CCS or an alert sent before the
        // peer had keys is plaintext.
        Epoch::Early13 | Epoch::Handshake13 | Epoch::Application13(_) => {
            t == record::APPLICATION_DATA
        }
        Epoch::Tls12 => true,
    };
    if !protected {
        plain.clear();
        plain.extend_from_slice(rec.fragment);
        // Application data where no keys were ever set up: captured mid-connection.
        if t == record::APPLICATION_DATA && epoch == Epoch::Plain {
            plain.clear();
            return Opened::NoDecrypter;
        }
        return Opened::Plain(t, 0);
    }
    let mut try_fallback = |plain: &mut Vec<u8>| {
        for (i, (_, f)) in fallback.iter_mut().enumerate() {
            if let Ok((t, lost)) = f.try_resync(&rec.header, rec.fragment, 4, plain) {
                return Some(Opened::Promoted(t, lost, i));
            }
        }
        None
    };
    let Some(dec) = half.dec else {
        return try_fallback(plain).unwrap_or(Opened::NoDecrypter);
    };
    let seq = dec.seq();
    let r = if *half.lost {
        dec.try_resync(&rec.header, rec.fragment, MAX_RESYNC_RECORDS, plain)
    } else {
        dec.decrypt(&rec.header, rec.fragment, plain)
            .map(|t| (t, 0))
    };
    match r {
        Ok((t, lost)) => {
            *half.lost = false;
            Opened::Plain(t, lost)
        }
        // Any failure (tag, MAC, padding, a record too short for its protection) is a
        // wrong key or a corrupt record; another epoch's keys may still open it.
        Err(_) => try_fallback(plain).unwrap_or(Opened::Failed(seq)),
    }
}

#[cfg(test)]
mod tests;
