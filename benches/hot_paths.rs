//! Microbenchmarks of wsdump's hot paths: `cargo bench --bench hot_paths [FILTER]`.
//!
//! A plain std::time harness (no dependencies): each case runs for a warm-up, then in
//! batches of about 0.2 s; the median batch gives the figure. Throughput is input bytes per
//! second (for header parsing, headers per second as well). `WSDUMP_BENCH_SECS` sets the
//! total measuring time per case (default 1).

use flate2::{Compress, Compression, FlushCompress};
use std::hint::black_box;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use wsdump::capture::Timestamp;
use wsdump::event::{ConnInfo, Dir, Event, EventKind, Message, Opcode, Sink};
use wsdump::memory::Memory;
use wsdump::output::escape;
use wsdump::output::json::{JsonOptions, JsonPrinter};
use wsdump::reassembly::{Chunk, Stream};
use wsdump::ws::deflate::{Inflater, Output, Window};
use wsdump::ws::frame::{Header, apply_mask};

struct Bench {
    filter: Option<String>,
    secs: f64,
}

impl Bench {
    /// Runs `f` (which processes `bytes` bytes, or `items` items, per call) and prints the
    /// median rate.
    fn run(&self, name: &str, bytes: u64, items: u64, mut f: impl FnMut()) {
        if let Some(flt) = &self.filter
            && !name.contains(flt.as_str())
        {
            return;
        }
        // Calibrate: calls per ~0.2 s batch.
        let t = Instant::now();
        let mut calls = 0u64;
        while t.elapsed() < Duration::from_millis(100) {
            f();
            calls += 1;
        }
        let per_batch = (calls * 2).max(1);
        let batches = ((self.secs / 0.2).round() as usize).max(3);
        let mut rates: Vec<f64> = (0..batches)
            .map(|_| {
                let t = Instant::now();
                for _ in 0..per_batch {
                    f();
                }
                t.elapsed().as_secs_f64() / per_batch as f64
            })
            .collect();
        rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let per_call = rates[rates.len() / 2];
        let mut line = format!("{name:<44} {:>10}/call", fmt_time(per_call));
        if bytes > 0 {
            let gbs = bytes as f64 / per_call / 1e9;
            line += &format!("  {gbs:>8.3} GB/s");
        }
        if items > 0 {
            let m = items as f64 / per_call / 1e6;
            line += &format!("  {m:>8.1} M/s");
        }
        println!("{line}");
    }
}

fn fmt_time(s: f64) -> String {
    if s < 1e-6 {
        format!("{:.1} ns", s * 1e9)
    } else if s < 1e-3 {
        format!("{:.2} µs", s * 1e6)
    } else {
        format!("{:.2} ms", s * 1e3)
    }
}

/// A small deterministic generator (xorshift), so that every run sees the same data.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const WORDS: &[&str] = &[
    "alpha", "bravo", "charlie", "delta", "echo", "hello", "world", "message", "room", "user",
    "typing", "online", "price", "order", "status", "filled", "symbol", "volume",
];

/// Chat-like prose: ASCII words and spaces, no character that needs escaping.
fn prose(len: usize, rng: &mut Rng) -> String {
    let mut s = String::new();
    while s.len() < len {
        s.push_str(WORDS[rng.below(WORDS.len())]);
        s.push(' ');
    }
    s.truncate(len);
    s
}

/// A JSON document, as websocket applications send: a quote every few bytes.
fn json_doc(len: usize, rng: &mut Rng) -> String {
    let mut s = String::from("[");
    while s.len() < len {
        s.push_str(&format!(
            "{{\"id\":{},\"sym\":\"{}\",\"px\":{}.{},\"note\":\"{} {}\"}},",
            rng.next() % 1_000_000,
            WORDS[rng.below(WORDS.len())],
            rng.below(1000),
            rng.below(100),
            WORDS[rng.below(WORDS.len())],
            WORDS[rng.below(WORDS.len())],
        ));
    }
    s.push(']');
    s
}

/// Non-Latin text: Cyrillic and CJK with some ASCII.
fn unicode_text(len: usize, rng: &mut Rng) -> String {
    let parts = ["привет ", "мир ", "日本語の", "テキスト ", "hello ", "🚀 "];
    let mut s = String::new();
    while s.len() < len {
        s.push_str(parts[rng.below(parts.len())]);
    }
    s
}

/// A permessage-deflate sender (context takeover): sync flush, trailer stripped.
fn deflate_messages(msgs: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut c = Compress::new(Compression::default(), false);
    msgs.iter()
        .map(|m| {
            let mut out = Vec::with_capacity(m.len() + 64);
            let start = c.total_in();
            loop {
                let done = (c.total_in() - start) as usize;
                out.reserve(64 * 1024);
                c.compress_vec(&m[done..], &mut out, FlushCompress::Sync)
                    .unwrap();
                if (c.total_in() - start) as usize == m.len() && out.ends_with(&[0, 0, 0xff, 0xff])
                {
                    break;
                }
            }
            out.truncate(out.len() - 4);
            out
        })
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let b = Bench {
        filter: args.into_iter().find(|a| !a.starts_with('-')),
        secs: std::env::var("WSDUMP_BENCH_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1.0),
    };
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);

    // ---- unmasking ----
    for (size, offset) in [(64 * 1024, 0u64), (64 * 1024, 3), (1448, 1), (100, 0)] {
        let mut buf: Vec<u8> = (0..size).map(|i| i as u8).collect();
        b.run(
            &format!("apply_mask {size} B offset {offset}"),
            size as u64,
            0,
            || {
                apply_mask(
                    black_box(&mut buf),
                    black_box([0x37, 0xfa, 0x21, 0x3d]),
                    offset,
                )
            },
        );
    }

    // ---- frame headers ----
    {
        // A stream of headers of every length encoding, masked and not.
        let mut hdrs = Vec::new();
        let mut n = 0u64;
        for i in 0..1024u64 {
            let h = Header {
                fin: i % 3 != 0,
                rsv: if i % 2 == 0 { 4 } else { 0 },
                opcode: 1 + (i % 2) as u8,
                mask: (i % 2 == 1).then_some([1, 2, 3, 4]),
                payload_len: [5, 125, 300, 65535, 70000][i as usize % 5],
                header_len: 0,
                non_minimal: false,
            };
            hdrs.extend_from_slice(&h.encode());
            n += 1;
        }
        b.run("Header::parse (mixed encodings)", 0, n, || {
            let mut d = black_box(&hdrs[..]);
            let mut sum = 0u64;
            while let Some(h) = Header::parse(d) {
                sum += h.payload_len;
                d = &d[h.header_len as usize..];
            }
            black_box(sum);
        });
    }

    // ---- in-order reassembly ----
    for seg in [1448usize, 65483] {
        let total = 4 << 20;
        let data: Vec<u8> = (0..total).map(|i| (i * 7) as u8).collect();
        b.run(
            &format!("Stream::segment in order, {seg} B"),
            total as u64,
            0,
            || {
                let mut s = Stream::default();
                s.syn(1000);
                let mut budget = Memory::new(32 << 20);
                let mut got = 0usize;
                let mut seq = 1001u32;
                for c in data.chunks(seg) {
                    s.segment(
                        seq,
                        c,
                        c.len() as u32,
                        false,
                        &mut budget,
                        1 << 20,
                        &mut |ch, _| {
                            if let Chunk::Data { bytes, .. } = ch {
                                got += bytes.len();
                            }
                        },
                    );
                    seq = seq.wrapping_add(c.len() as u32);
                }
                assert_eq!(got, total);
            },
        );
    }

    // ---- JSON string escaping, terminal escaping ----
    let texts = [
        ("chat prose 200 B", prose(200, &mut rng)),
        ("prose 64 KiB", prose(64 * 1024, &mut rng)),
        ("JSON document 64 KiB", json_doc(64 * 1024, &mut rng)),
        ("Cyrillic/CJK 64 KiB", unicode_text(64 * 1024, &mut rng)),
    ];
    let mut out = String::new();
    for (name, t) in &texts {
        b.run(
            &format!("escape::json_str {name}"),
            t.len() as u64,
            0,
            || {
                out.clear();
                escape::json_str(black_box(t), &mut out);
                black_box(&out);
            },
        );
    }
    for (name, t) in &texts {
        b.run(&format!("escape::text {name}"), t.len() as u64, 0, || {
            out.clear();
            escape::text(black_box(t), &mut out);
            black_box(&out);
        });
    }

    // ---- the JSON printer: a text message line, a binary (base64) message line ----
    {
        let (client, server) = (
            "127.0.0.1:48832".parse::<SocketAddr>().unwrap(),
            "127.0.0.1:7272".parse::<SocketAddr>().unwrap(),
        );
        let conn = ConnInfo {
            id: 7,
            client,
            server,
        };
        let doc = json_doc(8 * 1024, &mut rng);
        let chat = prose(150, &mut rng);
        let bin: Vec<u8> = (0..16 * 1024).map(|_| rng.next() as u8).collect();
        let cases: [(&str, Opcode, &[u8]); 3] = [
            (
                "JSON printer: text message 150 B",
                Opcode::Text,
                chat.as_bytes(),
            ),
            (
                "JSON printer: text message 8 KiB JSON",
                Opcode::Text,
                doc.as_bytes(),
            ),
            ("JSON printer: binary message 16 KiB", Opcode::Binary, &bin),
        ];
        let mut p = JsonPrinter::new(io::sink(), JsonOptions::default());
        for (name, op, payload) in cases {
            let m = Message {
                opcode: op,
                payload,
                len: payload.len() as u64,
                wire_len: payload.len() as u64,
                compressed: false,
                frames: 1,
                truncated: false,
                incomplete: None,
                missing: Vec::new(),
                resync: false,
                valid_utf8: true,
                text: std::str::from_utf8(payload)
                    .ok()
                    .filter(|_| op == Opcode::Text),
                close_code: None,
                close_reason: None,
            };
            let ev = Event {
                ts: Timestamp {
                    secs: 1_700_000_000,
                    nanos: 123_456_000,
                    nano_precision: false,
                },
                conn: Some(&conn),
                dir: Dir::C2S,
                kind: EventKind::Message(&m),
                app: None,
                label: None,
            };
            b.run(name, payload.len() as u64, 1, || {
                p.event(black_box(&ev)).unwrap();
            });
        }
    }

    // ---- inflation (permessage-deflate, context takeover) ----
    {
        let chat: Vec<Vec<u8>> = (0..200)
            .map(|_| prose(60 + rng.below(200), &mut rng).into_bytes())
            .collect();
        let docs: Vec<Vec<u8>> = (0..16)
            .map(|_| json_doc(4096 + rng.below(60 * 1024), &mut rng).into_bytes())
            .collect();
        for (name, msgs) in [("chat messages", chat), ("JSON documents 4-64 KiB", docs)] {
            let enc = deflate_messages(&msgs);
            let plain: u64 = msgs.iter().map(|m| m.len() as u64).sum();
            let wire: u64 = enc.iter().map(|m| m.len() as u64).sum();
            let mut buf = Vec::new();
            b.run(
                &format!("Inflater {name} (x{:.1})", plain as f64 / wire as f64),
                plain,
                msgs.len() as u64,
                || {
                    // As the decoder does: an inflater per message, started from the window.
                    let mut window = Window::default();
                    for e in &enc {
                        buf.clear();
                        let mut inf = Inflater::start(Some(&window), 1 << 15);
                        let mut o = Output {
                            buf: &mut buf,
                            keep: 4 << 20,
                            produced: 0,
                            hard_limit: 64 << 20,
                        };
                        inf.feed(e, &mut o).unwrap();
                        inf.finish(&mut o).unwrap();
                        inf.done();
                        window.extend(&[&buf], 1 << 15);
                        black_box(&buf);
                    }
                },
            );
        }
    }
}
