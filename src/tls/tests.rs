//! Connection tests: synthetic handshakes built here (state machine paths), and real
//! captures with the peers' key logs (samples/tls-wss.pcap, samples/tls/*.pcap), whose
//! decrypted bytes must equal what the peers sent.

use super::handshake::tests::{
    alpn_ext, client_hello, flag_ext, msg, selected_version_ext, server_hello, sni_ext,
    versions_ext,
};
use super::handshake::{self as hs};
use super::record::tests::seal;
use super::record::{self as rec, Decrypter};
use super::*;
use crate::capture::file::CaptureFile;
use crate::packet;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::path::Path;

const C: Direction = Direction::ClientToServer;
const S: Direction = Direction::ServerToClient;

fn plain_record(t: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![t, 3, 3];
    v.extend_from_slice(&(body.len() as u16).to_be_bytes());
    v.extend_from_slice(body);
    v
}

/// Application data per direction, and the other events.
#[derive(Default)]
struct Seen {
    data: [Vec<u8>; 2],
    events: Vec<Event<'static>>,
}

impl Seen {
    fn feed(&mut self, conn: &mut Connection, dir: Direction, bytes: &[u8], keys: &KeyLog) {
        conn.feed(dir, bytes, keys, |e| match e {
            Event::ApplicationData { dir, data } => self.data[dir.index()].extend_from_slice(&data),
            e => self.events.push(e.into_owned()),
        });
    }
    fn has(&self, f: impl Fn(&Event<'static>) -> bool) -> bool {
        self.events.iter().any(f)
    }
}

fn keylog(lines: &[(&str, &ClientRandom, &[u8])]) -> KeyLog {
    let mut k = KeyLog::new();
    for (label, cr, secret) in lines {
        k.add_line(format!("{label} {} {}", keylog::hex(*cr), keylog::hex(secret)).as_bytes());
    }
    k
}

/// A synthetic TLS 1.3 connection: what each side sends, by suite.
struct Tls13 {
    cr: ClientRandom,
    suite: &'static Suite,
    secrets: [Vec<u8>; 4], // c hs, s hs, c ap0, s ap0
}

impl Tls13 {
    fn new(id: u16) -> Tls13 {
        let s = suite::suite(id).unwrap();
        let n = s.prf.output_len();
        Tls13 {
            cr: [0x42; 32],
            suite: s,
            secrets: [vec![1; n], vec![2; n], vec![3; n], vec![4; n]],
        }
    }
    fn keys(&self) -> KeyLog {
        keylog(&[
            (
                "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
                &self.cr,
                &self.secrets[0],
            ),
            (
                "SERVER_HANDSHAKE_TRAFFIC_SECRET",
                &self.cr,
                &self.secrets[1],
            ),
            ("CLIENT_TRAFFIC_SECRET_0", &self.cr, &self.secrets[2]),
            ("SERVER_TRAFFIC_SECRET_0", &self.cr, &self.secrets[3]),
        ])
    }
    fn enc(&self, i: usize) -> Decrypter {
        Decrypter::tls13(self.suite, &self.secrets[i]).unwrap()
    }
    fn client_hello(&self) -> Vec<u8> {
        plain_record(
            rec::HANDSHAKE,
            &msg(
                hs::CLIENT_HELLO,
                &client_hello(
                    self.cr,
                    &[0x1301, 0x1302, 0x1303],
                    &[
                        sni_ext("chat.example"),
                        alpn_ext(&["http/1.1"]),
                        versions_ext(&[0x0304, 0x0303]),
                    ],
                ),
            ),
        )
    }
    fn server_hello(&self, random: [u8; 32]) -> Vec<u8> {
        plain_record(
            rec::HANDSHAKE,
            &msg(
                hs::SERVER_HELLO,
                &server_hello(random, self.suite.id, &[selected_version_ext(0x0304)]),
            ),
        )
    }
}

fn encrypted_extensions_alpn(p: &str) -> Vec<u8> {
    let alpn = alpn_ext(&[p]);
    let mut b = (alpn.len() as u16).to_be_bytes().to_vec();
    b.extend(alpn);
    msg(hs::ENCRYPTED_EXTENSIONS, &b)
}

#[test]
fn tls13_full_flow_with_key_update_for_each_suite() {
    for id in [0x1301, 0x1302, 0x1303] {
        let t = Tls13::new(id);
        let keys = t.keys();
        let mut conn = Connection::new();
        let mut seen = Seen::default();
        seen.feed(&mut conn, C, &t.client_hello(), &keys);
        assert!(
            conn.memory() < 4096,
            "{} bytes before any data",
            conn.memory()
        );
        println!(
            "{}: memory() after the ClientHello {} bytes, size_of::<Connection>() {}",
            t.suite.name,
            conn.memory(),
            std::mem::size_of::<Connection>()
        );
        seen.feed(&mut conn, S, &t.server_hello([9; 32]), &keys);
        let (mut chs, mut shs, mut cap, mut sap) = (t.enc(0), t.enc(1), t.enc(2), t.enc(3));
        // Server flight under handshake keys, the certificate spanning two records.
        let flight = [
            encrypted_extensions_alpn("http/1.1"),
            msg(hs::CERTIFICATE, &vec![0x30; 20_000]),
            msg(15, &[0; 64]),
            msg(hs::FINISHED, &vec![0; t.suite.prf.output_len()]),
        ]
        .concat();
        let mut s_bytes = Vec::new();
        for part in flight.chunks(16_000) {
            s_bytes.extend(seal(&mut shs, rec::HANDSHAKE, part));
        }
        s_bytes.extend(seal(
            &mut sap,
            rec::HANDSHAKE,
            &msg(hs::NEW_SESSION_TICKET, &[0; 20]),
        ));
        seen.feed(&mut conn, S, &s_bytes, &keys);
        // Client: compatibility CCS, Finished, then a request.
        let mut c_bytes = plain_record(rec::CHANGE_CIPHER_SPEC, &[1]);
        c_bytes.extend(seal(&mut chs, rec::HANDSHAKE, &msg(hs::FINISHED, &[0; 32])));
        c_bytes.extend(seal(
            &mut cap,
            rec::APPLICATION_DATA,
            b"GET /ws HTTP/1.1\r\n\r\n",
        ));
        // Fed a byte at a time.
        for b in &c_bytes {
            seen.feed(&mut conn, C, std::slice::from_ref(b), &keys);
        }
        seen.feed(
            &mut conn,
            S,
            &seal(&mut sap, rec::APPLICATION_DATA, b"HTTP/1.1 101 \r\n\r\n"),
            &keys,
        );
        // KeyUpdate from the client: its next records use the derived secret.
        seen.feed(
            &mut conn,
            C,
            &seal(&mut cap, rec::HANDSHAKE, &msg(hs::KEY_UPDATE, &[1])),
            &keys,
        );
        let next = schedule::next_traffic_secret(t.suite.prf, &t.secrets[2]).unwrap();
        let mut cap1 = Decrypter::tls13(t.suite, &next).unwrap();
        seen.feed(
            &mut conn,
            C,
            &seal(&mut cap1, rec::APPLICATION_DATA, b"after update"),
            &keys,
        );
        seen.feed(&mut conn, C, &seal(&mut cap1, rec::ALERT, &[1, 0]), &keys);
        assert_eq!(
            seen.data[0], b"GET /ws HTTP/1.1\r\n\r\nafter update",
            "{}",
            t.suite.name
        );
        assert_eq!(seen.data[1], b"HTTP/1.1 101 \r\n\r\n");
        assert!(seen.has(|e| matches!(e, Event::ClientHello { sni: Some(s), version: 0x0304, .. } if s == "chat.example")));
        assert!(seen.has(|e| matches!(e, Event::ServerHello { version: 0x0304, hello_retry: false, suite, .. } if *suite == id)));
        assert!(seen.has(|e| matches!(e, Event::Alpn { protocol } if protocol == "http/1.1")));
        assert!(seen.has(|e| *e == Event::KeysFound));
        assert!(seen.has(|e| matches!(
            e,
            Event::KeyUpdate {
                dir: C,
                update_requested: true
            }
        )));
        assert!(seen.has(|e| matches!(e, Event::NewSessionTicket { dir: S })));
        assert!(seen.has(|e| *e == Event::CloseNotify { dir: C }));
        assert!(
            !seen.has(|e| matches!(e, Event::DecryptFailed { .. } | Event::Malformed { .. })),
            "{:?}",
            seen.events
        );
        assert_eq!(conn.version(), Some(0x0304));
        assert_eq!((conn.buffered(C), conn.buffered(S)), (0, 0));
    }
}

#[test]
fn tls13_hello_retry_then_wrong_key() {
    let t = Tls13::new(0x1301);
    let mut keys = t.keys();
    let mut conn = Connection::new();
    let mut seen = Seen::default();
    seen.feed(&mut conn, C, &t.client_hello(), &keys);
    seen.feed(&mut conn, S, &t.server_hello(hs::HELLO_RETRY_RANDOM), &keys);
    seen.feed(&mut conn, C, &t.client_hello(), &keys);
    seen.feed(&mut conn, S, &t.server_hello([8; 32]), &keys);
    assert!(seen.has(|e| matches!(
        e,
        Event::ServerHello {
            hello_retry: true,
            ..
        }
    )));
    // The log has another server handshake secret than the one used: tag failures.
    keys = keylog(&[("SERVER_HANDSHAKE_TRAFFIC_SECRET", &t.cr, &[7; 32])]);
    let mut conn2 = Connection::new();
    let mut seen2 = Seen::default();
    seen2.feed(&mut conn2, C, &t.client_hello(), &keys);
    seen2.feed(&mut conn2, S, &t.server_hello([8; 32]), &keys);
    let mut shs = t.enc(1);
    seen2.feed(
        &mut conn2,
        S,
        &seal(&mut shs, rec::HANDSHAKE, &msg(hs::FINISHED, &[0; 32])),
        &keys,
    );
    assert!(seen2.has(|e| *e == Event::DecryptFailed { dir: S, seq: 0 }));
    assert!(seen2.data[1].is_empty());
}

#[test]
fn tls13_only_application_secrets_logged() {
    // Some loggers write only the traffic secrets: the handshake is skipped, and the first
    // record that opens under the application key switches to it.
    let t = Tls13::new(0x1303);
    let keys = keylog(&[("SERVER_TRAFFIC_SECRET_0", &t.cr, &t.secrets[3])]);
    let mut conn = Connection::new();
    let mut seen = Seen::default();
    seen.feed(&mut conn, C, &t.client_hello(), &keys);
    seen.feed(&mut conn, S, &t.server_hello([8; 32]), &keys);
    let (mut shs, mut sap) = (t.enc(1), t.enc(3));
    let mut b = seal(&mut shs, rec::HANDSHAKE, &msg(hs::FINISHED, &[0; 32]));
    b.extend(seal(&mut sap, rec::APPLICATION_DATA, b"data"));
    seen.feed(&mut conn, S, &b, &keys);
    assert_eq!(seen.data[1], b"data");
    assert!(seen.has(|e| matches!(e, Event::NoKey { .. })));
}

#[test]
fn key_log_that_arrives_late_still_decrypts() {
    let t = Tls13::new(0x1301);
    let empty = KeyLog::new();
    let mut conn = Connection::new();
    let mut seen = Seen::default();
    seen.feed(&mut conn, C, &t.client_hello(), &empty);
    seen.feed(&mut conn, S, &t.server_hello([8; 32]), &empty);
    let (mut shs, mut sap) = (t.enc(1), t.enc(3));
    seen.feed(
        &mut conn,
        S,
        &seal(&mut shs, rec::HANDSHAKE, &msg(hs::FINISHED, &[0; 32])),
        &empty,
    );
    seen.feed(
        &mut conn,
        S,
        &seal(&mut sap, rec::APPLICATION_DATA, b"one"),
        &empty,
    );
    assert!(seen.has(
        |e| matches!(e, Event::NoKey { client_random } if *client_random == keylog::hex(&t.cr))
    ));
    assert!(seen.has(|e| matches!(e, Event::Undecrypted { dir: S, .. })));
    // The key log file grew: the next record decrypts (the handshake keys fail on it, the
    // application keys open it).
    seen.feed(
        &mut conn,
        S,
        &seal(&mut sap, rec::APPLICATION_DATA, b"two"),
        &t.keys(),
    );
    assert_eq!(seen.data[1], b"two");
}

/// A synthetic TLS 1.2 connection.
fn tls12_hellos(cr: ClientRandom, sr: [u8; 32], suite: u16, etm: bool) -> (Vec<u8>, Vec<u8>) {
    let mut ce = vec![flag_ext(23), sni_ext("x.test")];
    if etm {
        ce.push(flag_ext(22));
    }
    let ch = msg(hs::CLIENT_HELLO, &client_hello(cr, &[suite], &ce));
    let mut se = vec![flag_ext(23), alpn_ext(&["http/1.1"])];
    if etm {
        se.push(flag_ext(22));
    }
    let sh = msg(hs::SERVER_HELLO, &server_hello(sr, suite, &se));
    (ch, [sh, msg(11, &[0; 900]), msg(14, &[])].concat())
}

#[test]
fn tls12_flow_with_renegotiation() {
    for (id, etm) in [
        (0xc02f, false),
        (0xcca8, false),
        (0xc013, true),
        (0xc028, false),
        (0x009d, false),
    ] {
        let s = suite::suite(id).unwrap();
        let (cr1, sr1, cr2, sr2) = ([1u8; 32], [2u8; 32], [3u8; 32], [4u8; 32]);
        let (ms1, ms2) = ([0x11u8; 48], [0x22u8; 48]);
        let keys = keylog(&[("CLIENT_RANDOM", &cr1, &ms1), ("CLIENT_RANDOM", &cr2, &ms2)]);
        let kb1 = schedule::suite_key_block(s, &ms1, &sr1, &cr1).unwrap();
        let kb2 = schedule::suite_key_block(s, &ms2, &sr2, &cr2).unwrap();
        let mut conn = Connection::new();
        let mut seen = Seen::default();
        let (ch, sh) = tls12_hellos(cr1, sr1, id, etm);
        seen.feed(&mut conn, C, &plain_record(rec::HANDSHAKE, &ch), &keys);
        seen.feed(&mut conn, S, &plain_record(rec::HANDSHAKE, &sh), &keys);
        let mut ce = Decrypter::tls12(s, &kb1, true, etm).unwrap();
        let mut se = Decrypter::tls12(s, &kb1, false, etm).unwrap();
        let mut c = plain_record(rec::HANDSHAKE, &msg(16, &[0; 66]));
        c.extend(plain_record(rec::CHANGE_CIPHER_SPEC, &[1]));
        c.extend(seal(&mut ce, rec::HANDSHAKE, &msg(hs::FINISHED, &[0; 12])));
        seen.feed(&mut conn, C, &c, &keys);
        let mut sb = plain_record(rec::CHANGE_CIPHER_SPEC, &[1]);
        sb.extend(seal(&mut se, rec::HANDSHAKE, &msg(hs::FINISHED, &[0; 12])));
        seen.feed(&mut conn, S, &sb, &keys);
        seen.feed(
            &mut conn,
            C,
            &seal(&mut ce, rec::APPLICATION_DATA, b"first "),
            &keys,
        );
        seen.feed(
            &mut conn,
            S,
            &seal(&mut se, rec::APPLICATION_DATA, b"reply "),
            &keys,
        );
        // Renegotiation inside the encrypted stream, new randoms, new keys.
        let (ch2, sh2) = tls12_hellos(cr2, sr2, id, etm);
        seen.feed(&mut conn, C, &seal(&mut ce, rec::HANDSHAKE, &ch2), &keys);
        seen.feed(&mut conn, S, &seal(&mut se, rec::HANDSHAKE, &sh2), &keys);
        let mut ce2 = Decrypter::tls12(s, &kb2, true, etm).unwrap();
        let mut se2 = Decrypter::tls12(s, &kb2, false, etm).unwrap();
        let mut c = seal(&mut ce, rec::HANDSHAKE, &msg(16, &[0; 66]));
        c.extend(seal(&mut ce, rec::CHANGE_CIPHER_SPEC, &[1]));
        c.extend(seal(&mut ce2, rec::HANDSHAKE, &msg(hs::FINISHED, &[0; 12])));
        c.extend(seal(&mut ce2, rec::APPLICATION_DATA, b"second"));
        seen.feed(&mut conn, C, &c, &keys);
        let mut sb = seal(&mut se, rec::CHANGE_CIPHER_SPEC, &[1]);
        sb.extend(seal(&mut se2, rec::HANDSHAKE, &msg(hs::FINISHED, &[0; 12])));
        sb.extend(seal(&mut se2, rec::APPLICATION_DATA, b"again"));
        sb.extend(seal(&mut se2, rec::ALERT, &[2, 40]));
        seen.feed(&mut conn, S, &sb, &keys);
        assert_eq!(seen.data[0], b"first second", "{}", s.name);
        assert_eq!(seen.data[1], b"reply again", "{}", s.name);
        assert!(
            seen.has(|e| matches!(
                e,
                Event::ClientHello {
                    renegotiation: true,
                    ..
                }
            )),
            "{}",
            s.name
        );
        assert!(
            seen.has(|e| matches!(e, Event::ServerHello { alpn: Some(a), .. } if a == "http/1.1"))
        );
        assert!(seen.has(|e| matches!(
            e,
            Event::Alert {
                dir: S,
                level: 2,
                description: 40,
                name: "handshake_failure"
            }
        )));
        assert!(
            !seen.has(|e| matches!(e, Event::DecryptFailed { .. } | Event::Malformed { .. })),
            "{}: {:?}",
            s.name,
            seen.events
        );
    }
}

#[test]
fn unsupported_started_late_and_gaps() {
    // CCM suite: named, reported, not decrypted.
    let t = Tls13::new(0x1301);
    let keys = t.keys();
    let mut conn = Connection::new();
    let mut seen = Seen::default();
    seen.feed(&mut conn, C, &t.client_hello(), &keys);
    let sh = plain_record(
        rec::HANDSHAKE,
        &msg(
            hs::SERVER_HELLO,
            &server_hello([5; 32], 0x1304, &[selected_version_ext(0x0304)]),
        ),
    );
    seen.feed(&mut conn, S, &sh, &keys);
    assert!(seen.has(|e| *e
        == Event::UnsupportedSuite {
            suite: 0x1304,
            name: "TLS_AES_128_CCM_SHA256"
        }));
    // Started late: application data with no hello.
    let mut conn = Connection::new();
    let mut seen = Seen::default();
    let mut enc = t.enc(3);
    seen.feed(
        &mut conn,
        S,
        &seal(&mut enc, rec::APPLICATION_DATA, b"x"),
        &keys,
    );
    seen.feed(
        &mut conn,
        C,
        &seal(&mut enc, rec::APPLICATION_DATA, b"y"),
        &keys,
    );
    assert_eq!(
        seen.events
            .iter()
            .filter(|e| **e == Event::StartedLate)
            .count(),
        1
    );
    // A gap in the server's stream: records lost, the next one is found by trial.
    let mut conn = Connection::new();
    let mut seen = Seen::default();
    seen.feed(&mut conn, C, &t.client_hello(), &keys);
    seen.feed(&mut conn, S, &t.server_hello([8; 32]), &keys);
    let (mut shs, mut sap) = (t.enc(1), t.enc(3));
    seen.feed(
        &mut conn,
        S,
        &seal(&mut shs, rec::HANDSHAKE, &msg(hs::FINISHED, &[0; 32])),
        &keys,
    );
    let recs: Vec<Vec<u8>> = (0..5u8)
        .map(|i| seal(&mut sap, rec::APPLICATION_DATA, &[b'a' + i]))
        .collect();
    seen.feed(&mut conn, S, &recs[0], &keys);
    seen.feed(&mut conn, S, &recs[1][..10], &keys);
    conn.gap(S);
    seen.feed(&mut conn, S, &[&recs[2][7..], &recs[3][..]].concat(), &keys);
    seen.feed(&mut conn, S, &recs[4], &keys);
    assert_eq!(seen.data[1], b"ade");
    assert!(
        seen.has(|e| matches!(
            e,
            Event::Resynced {
                dir: S,
                records: 2,
                ..
            }
        )),
        "{:?}",
        seen.events
    );
}

#[test]
fn hostile_bytes_never_panic() {
    let t = Tls13::new(0x1301);
    let keys = t.keys();
    let mut x = 0x1234_5678u32;
    for round in 0..200 {
        let mut conn = Connection::new();
        if round % 2 == 0 {
            conn.feed(C, &t.client_hello(), &keys, |_| {});
            conn.feed(S, &t.server_hello([8; 32]), &keys, |_| {});
        }
        for _ in 0..20 {
            let mut bytes = Vec::new();
            let n = (x % 300) as usize;
            for _ in 0..n {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                bytes.push(x as u8);
            }
            // Plausible headers now and then.
            if x.is_multiple_of(3) {
                bytes.splice(0..0, [22 + (x % 3) as u8, 3, 3, 0, (x % 200) as u8]);
            }
            let dir = if x.is_multiple_of(2) { C } else { S };
            conn.feed(dir, &bytes, &keys, |_| {});
            if x.is_multiple_of(7) {
                conn.gap(dir);
            }
        }
        assert!(conn.memory() < 200_000);
    }
}

/// The TCP payloads of a capture, per connection (by client address) and direction, in
/// capture order, retransmissions dropped. `server_port` tells the sides apart.
type Payloads = Vec<(SocketAddr, Direction, Vec<u8>)>;

fn payloads(path: &Path, server_port: u16) -> Payloads {
    let mut cap = CaptureFile::open(std::fs::File::open(path).unwrap()).unwrap();
    let mut next: HashMap<(SocketAddr, SocketAddr), u32> = HashMap::new();
    let mut out = Vec::new();
    cap.for_each_packet(|p| {
        let Ok(seg) = packet::decode(p.linktype, p.data) else {
            return ControlFlow::Continue(());
        };
        let key = (seg.src, seg.dst);
        if seg.flags.syn() {
            next.insert(key, seg.seq.wrapping_add(1));
            return ControlFlow::Continue(());
        }
        if seg.payload.is_empty() {
            return ControlFlow::Continue(());
        }
        let expect = next.entry(key).or_insert(seg.seq);
        if seg.seq != *expect {
            return ControlFlow::Continue(()); // retransmission (none in these samples)
        }
        *expect = seg.seq.wrapping_add(seg.payload.len() as u32);
        let (client, dir) = if seg.dst.port() == server_port {
            (seg.src, C)
        } else {
            (seg.dst, S)
        };
        out.push((client, dir, seg.payload.to_vec()));
        ControlFlow::Continue(())
    })
    .unwrap();
    out
}

/// Decrypts every connection of a capture; per client address, in order of appearance.
fn decrypt_capture(pcap: &Path, keys: &KeyLog, port: u16) -> Vec<(SocketAddr, Seen, usize)> {
    let mut conns: Vec<(SocketAddr, Connection, Seen, usize)> = Vec::new();
    for (client, dir, bytes) in payloads(pcap, port) {
        let i = match conns.iter().position(|c| c.0 == client) {
            Some(i) => i,
            None => {
                conns.push((client, Connection::new(), Seen::default(), 0));
                conns.len() - 1
            }
        };
        let (_, conn, seen, peak) = &mut conns[i];
        seen.feed(conn, dir, &bytes, keys);
        *peak = (*peak).max(conn.memory());
    }
    conns.into_iter().map(|(a, _, s, p)| (a, s, p)).collect()
}

#[test]
fn sample_tls_wss_decrypts_to_the_upgrade() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    let keys = KeyLog::from_file(&root.join("tls-wss.keylog")).unwrap();
    let conns = decrypt_capture(&root.join("tls-wss.pcap"), &keys, 9007);
    assert_eq!(conns.len(), 1);
    let (_, seen, peak) = &conns[0];
    let c2s = String::from_utf8_lossy(&seen.data[0]);
    let s2c = String::from_utf8_lossy(&seen.data[1]);
    assert!(c2s.starts_with("GET "), "{c2s:?}");
    let head = c2s.split("\r\n\r\n").next().unwrap().to_ascii_lowercase();
    assert!(head.contains("upgrade: websocket"), "{head}");
    assert!(s2c.starts_with("HTTP/1.1 101 "), "{s2c:?}");
    assert!(s2c.to_ascii_lowercase().contains("upgrade: websocket"));
    assert!(seen.has(|e| matches!(e, Event::ClientHello { sni: Some(s), .. } if s == "localhost")));
    assert!(seen.has(|e| *e == Event::KeysFound));
    assert!(
        !seen.has(|e| matches!(
            e,
            Event::DecryptFailed { .. } | Event::Malformed { .. } | Event::NoKey { .. }
        )),
        "{:?}",
        seen.events
    );
    // The websocket frames follow the 101 in both directions.
    let end = s2c.find("\r\n\r\n").unwrap() + 4;
    assert!(seen.data[1].len() > end, "no frames after the 101");
    assert!(*peak < 64 * 1024, "peak {peak} bytes");
    println!("tls-wss: peak Connection::memory() {peak} bytes");
}

/// samples/tls: each capture's decrypted bytes equal what the peers sent (NAME.i.c2s and
/// NAME.i.s2c, written by the server as it sent and received them).
#[test]
fn samples_tls_match_what_the_peers_sent() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/tls");
    let mut checked = 0;
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            e.unwrap()
                .file_name()
                .to_str()?
                .strip_suffix(".pcap")
                .map(String::from)
        })
        .collect();
    names.sort();
    for name in names {
        let keys = KeyLog::from_file(&dir.join(format!("{name}.keylog"))).unwrap();
        let port = payloads(&dir.join(format!("{name}.pcap")), 0)
            .first()
            .map(|p| p.0.port())
            .unwrap();
        let conns = decrypt_capture(&dir.join(format!("{name}.pcap")), &keys, port);
        assert!(!conns.is_empty(), "{name}");
        for (i, (_, seen, _)) in conns.iter().enumerate() {
            let want_c = std::fs::read(dir.join(format!("{name}.{i}.c2s"))).unwrap();
            let want_s = std::fs::read(dir.join(format!("{name}.{i}.s2c"))).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&seen.data[0]),
                String::from_utf8_lossy(&want_c),
                "{name} #{i} c2s: {:?}",
                seen.events
            );
            assert_eq!(
                String::from_utf8_lossy(&seen.data[1]),
                String::from_utf8_lossy(&want_s),
                "{name} #{i} s2c"
            );
            assert!(
                !seen.has(|e| matches!(e, Event::DecryptFailed { .. } | Event::Malformed { .. })),
                "{name}: {:?}",
                seen.events
            );
            checked += 1;
            if std::env::var_os("TLS_EVENTS").is_some() {
                println!("{name} #{i}: {:?}", seen.events);
            }
            // What each capture is there for.
            let suite = |id: u16| {
                seen.has(|e| matches!(e, Event::ServerHello { suite, hello_retry: false, .. } if *suite == id))
            };
            let resumed = seen.has(|e| matches!(e, Event::ServerHello { resumed: true, .. }));
            assert_eq!(resumed, i > 0, "{name} #{i} resumption");
            let key_updates = seen
                .events
                .iter()
                .filter(|e| matches!(e, Event::KeyUpdate { .. }))
                .count();
            let want = match name.as_str() {
                "tls13-aes128" => suite(0x1301) && key_updates == 3,
                "tls13-aes256" => suite(0x1302),
                "tls13-chacha" => suite(0x1303),
                "tls13-hrr" => seen.has(|e| {
                    matches!(
                        e,
                        Event::ServerHello {
                            hello_retry: true,
                            ..
                        }
                    )
                }),
                "tls13-resume" => suite(0x1301),
                // Connection 1's request went as 0-RTT data.
                "tls13-early" => i == 0 || seen.data[0].starts_with(b"GET /early-data"),
                "tls12-aes128gcm" => {
                    suite(0xc02f)
                        && seen.has(|e| {
                            matches!(
                                e,
                                Event::ClientHello {
                                    renegotiation: true,
                                    ..
                                }
                            )
                        })
                }
                "tls12-aes256gcm" => suite(0xc030),
                "tls12-chacha" => suite(0xcca8),
                "tls12-cbc-etm" => suite(0xc013),
                "tls12-cbc-sha384" => suite(0xc028),
                "tls12-resume" | "tls12-resume-id" => suite(0xc02f),
                _ => true,
            };
            assert!(want, "{name} #{i}: {:?}", seen.events);
            if name.starts_with("tls12") {
                assert!(
                    !seen.has(|e| matches!(
                        e,
                        Event::ServerHello {
                            version: 0x0304,
                            ..
                        }
                    )),
                    "{name}"
                );
            }
        }
    }
    assert!(checked >= 10, "{checked} connections");
}

/// A small deterministic generator for the tests below.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn any_segmentation_gives_the_same_plaintext() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    let keys = KeyLog::from_file(&root.join("tls-wss.keylog")).unwrap();
    let packets = payloads(&root.join("tls-wss.pcap"), 9007);
    let whole = decrypt_capture(&root.join("tls-wss.pcap"), &keys, 9007);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..30 {
        let mut conn = Connection::new();
        let mut seen = Seen::default();
        for (_, dir, bytes) in &packets {
            let mut rest = &bytes[..];
            while !rest.is_empty() {
                let n = 1 + rng.below(rest.len().min(700));
                seen.feed(&mut conn, *dir, &rest[..n], &keys);
                rest = &rest[n..];
            }
        }
        assert_eq!(seen.data, whole[0].1.data);
    }
}

#[test]
fn a_corrupt_record_is_a_decrypt_failure_never_garbage() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/tls");
    let mut rng = Rng(42);
    for name in [
        "tls13-chacha",
        "tls12-aes128gcm",
        "tls12-cbc-etm",
        "tls12-cbc-sha384",
    ] {
        let keys = KeyLog::from_file(&dir.join(format!("{name}.keylog"))).unwrap();
        let packets = payloads(&dir.join(format!("{name}.pcap")), 0);
        let port = packets[0].0.port();
        let packets = payloads(&dir.join(format!("{name}.pcap")), port);
        let want_c = std::fs::read(dir.join(format!("{name}.0.c2s"))).unwrap();
        let mut failures = 0;
        for _ in 0..20 {
            // Flip one bit in a late client packet (past the handshake).
            let late: Vec<usize> = (0..packets.len())
                .filter(|&i| packets[i].1 == C)
                .skip(2)
                .collect();
            let victim = late[rng.below(late.len())];
            let mut conn = Connection::new();
            let mut seen = Seen::default();
            for (i, (_, d, bytes)) in packets.iter().enumerate() {
                let mut b = bytes.clone();
                if i == victim {
                    let at = 5 + rng.below(b.len() - 5);
                    b[at] ^= 1 << rng.below(8);
                }
                seen.feed(&mut conn, *d, &b, &keys);
            }
            // What did decrypt is a prefix-and-suffix of the truth with a record missing:
            // every byte given out is the peer's.
            let got = &seen.data[0];
            failures += seen.has(|e| matches!(e, Event::DecryptFailed { .. })) as usize;
            assert!(got.len() < want_c.len() || got == &want_c, "{name}");
            assert!(
                seen.has(|e| matches!(e, Event::DecryptFailed { .. } | Event::Malformed { .. }))
                    || got == &want_c,
                "{name}: {:?}",
                seen.events
            );
            for chunk in got.split(|&b| b == b'\n').filter(|c| !c.is_empty()) {
                assert!(
                    want_c.windows(chunk.len()).any(|w| w == chunk),
                    "{name}: garbage {chunk:?}"
                );
            }
        }
        assert!(
            failures >= 10,
            "{name}: {failures} of 20 flips seen as decrypt failures"
        );
    }
}

/// `cargo test --release --lib tls::tests::throughput -- --ignored --nocapture`
#[test]
#[ignore]
fn throughput() {
    let msg = vec![0x61u8; 16 * 1024];
    for id in [0x1301u16, 0x1302, 0x1303, 0xc02f, 0xcca8, 0xc013, 0xc028] {
        let s = suite::suite(id).unwrap();
        let make = || {
            match s.version {
                SuiteVersion::Tls13 => Decrypter::tls13(s, &[9; 48][..s.prf.output_len()]),
                SuiteVersion::Tls12 => {
                    let kb = schedule::suite_key_block(s, &[7; 48], &[1; 32], &[2; 32]).unwrap();
                    Decrypter::tls12(s, &kb, false, false)
                }
            }
            .unwrap()
        };
        let mut tx = make();
        let records: Vec<Vec<u8>> = (0..640)
            .map(|_| seal(&mut tx, rec::APPLICATION_DATA, &msg))
            .collect();
        let stream = records.concat();
        let mut rx = make();
        let mut conn_bytes = 0usize;
        let start = std::time::Instant::now();
        let mut reader = record::RecordReader::new();
        let mut out = Vec::new();
        for piece in stream.chunks(1448) {
            reader.push(piece);
            while let Some(r) = reader.next_record().unwrap() {
                rx.decrypt(&r.header, r.fragment, &mut out).unwrap();
                conn_bytes += out.len();
            }
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{:<45} {:>7.1} MB/s ({} MB in 1448-byte segments)",
            s.name,
            conn_bytes as f64 / secs / 1e6,
            conn_bytes / 1_000_000
        );
    }
}

/// A pcapng that carries its key log in a Decryption Secrets Block (made with
/// `editcap --inject-secrets tls,tls13-chacha.keylog tls13-chacha.pcap
/// tls13-chacha-dsb.pcapng`): the block's bytes are the key log.
#[test]
fn pcapng_decryption_secrets_block() {
    use pcap_parser::{Block, PcapBlockOwned, PcapNGSlice};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/tls");
    let file = std::fs::read(dir.join("tls13-chacha-dsb.pcapng")).unwrap();
    let mut keys = KeyLog::new();
    let mut blocks = 0;
    for b in PcapNGSlice::from_slice(&file).unwrap() {
        if let Ok(PcapBlockOwned::NG(Block::DecryptionSecrets(dsb))) = b {
            keys.add_dsb(dsb.secrets_type.0, dsb.data).unwrap();
            blocks += 1;
        }
    }
    assert_eq!(blocks, 1);
    assert_eq!(
        keys,
        KeyLog::from_file(&dir.join("tls13-chacha.keylog")).unwrap()
    );
    let conns = decrypt_capture(&dir.join("tls13-chacha-dsb.pcapng"), &keys, 9443);
    assert_eq!(
        conns[0].1.data[0],
        std::fs::read(dir.join("tls13-chacha.0.c2s")).unwrap()
    );
    assert_eq!(
        conns[0].1.data[1],
        std::fs::read(dir.join("tls13-chacha.0.s2c")).unwrap()
    );
}

#[test]
fn tls13_early_data_accepted_and_refused() {
    for accepted in [true, false] {
        // A PSK ClientHello offering 0-RTT for TLS_CHACHA20_POLY1305_SHA256 (the early
        // suite is found by trial: AES-128-GCM is offered first with the same hash).
        let t = Tls13::new(0x1303);
        let early = vec![5u8; 32];
        let mut keys = t.keys();
        keys.add_line(
            format!(
                "CLIENT_EARLY_TRAFFIC_SECRET {} {}",
                keylog::hex(&t.cr),
                keylog::hex(&early)
            )
            .as_bytes(),
        );
        let ch = plain_record(
            rec::HANDSHAKE,
            &msg(
                hs::CLIENT_HELLO,
                &client_hello(
                    t.cr,
                    &[0x1301, 0x1303],
                    &[versions_ext(&[0x0304]), flag_ext(42), flag_ext(41)],
                ),
            ),
        );
        let mut conn = Connection::new();
        let mut seen = Seen::default();
        let mut ed = Decrypter::tls13(t.suite, &early).unwrap();
        let mut c = ch;
        c.extend(plain_record(rec::CHANGE_CIPHER_SPEC, &[1]));
        c.extend(seal(&mut ed, rec::APPLICATION_DATA, b"GET /early "));
        seen.feed(&mut conn, C, &c, &keys);
        seen.feed(&mut conn, S, &t.server_hello([8; 32]), &keys);
        let (mut chs, mut shs, mut cap) = (t.enc(0), t.enc(1), t.enc(2));
        seen.feed(
            &mut conn,
            S,
            &seal(&mut shs, rec::HANDSHAKE, &msg(hs::FINISHED, &[0; 32])),
            &keys,
        );
        let mut c = Vec::new();
        if accepted {
            c.extend(seal(&mut ed, rec::APPLICATION_DATA, b"more early "));
            c.extend(seal(
                &mut ed,
                rec::HANDSHAKE,
                &msg(hs::END_OF_EARLY_DATA, &[]),
            ));
        }
        c.extend(seal(&mut chs, rec::HANDSHAKE, &msg(hs::FINISHED, &[0; 32])));
        c.extend(seal(&mut cap, rec::APPLICATION_DATA, b"after"));
        seen.feed(&mut conn, C, &c, &keys);
        let want: &[u8] = if accepted {
            b"GET /early more early after"
        } else {
            // A server that refused 0-RTT skipped it; the bytes were still sent.
            b"GET /early after"
        };
        assert_eq!(seen.data[0], want, "accepted {accepted}: {:?}", seen.events);
        assert!(
            !seen.has(|e| matches!(e, Event::DecryptFailed { .. })),
            "{:?}",
            seen.events
        );
    }
}
