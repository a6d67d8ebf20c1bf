//! The HAR writer driven by the analyzer's events over real captures, checked against the
//! peers' own logs, the HAR 1.2 JSON Schema, a HAR reader (haralyzer) and a HAR that
//! DevTools' exporter makes of the same Chromium session (samples/har/).
//!
//! The schema and haralyzer checks need node with har-schema + ajv, and python3 with
//! haralyzer; without them they are skipped, loudly.

mod common;

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::Command;
use wsdump::analyzer::Config;
use wsdump::capture::file::CaptureFile;
use wsdump::capture::{RawPacket, Timestamp};
use wsdump::engine::{PacketSource, Pipeline};
use wsdump::event::{Event, Sink};
use wsdump::output::har::{HarOptions, HarWriter};

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples")
}

/// A capture read only up to its `n`th packet: what a run stopped there (Ctrl-C, -c) saw.
struct Cut(CaptureFile, Option<usize>);

impl PacketSource for Cut {
    type Error = wsdump::capture::file::CaptureError;
    fn for_each(
        &mut self,
        f: &mut dyn FnMut(&RawPacket<'_>) -> ControlFlow<()>,
    ) -> Result<(), Self::Error> {
        let mut n = 0;
        let stop = self.1;
        self.0.for_each(&mut |p| {
            n += 1;
            if stop.is_some_and(|s| n > s) {
                return ControlFlow::Break(());
            }
            f(p)
        })
    }
}

/// The HAR of a capture; `stop_after` packets, if given, as if the capture were cut there.
fn har_bytes(capture: &Path, opts: HarOptions, stop_after: Option<usize>) -> Vec<u8> {
    har_bytes_with(capture, opts, stop_after, Config::default())
}

fn har_bytes_with(
    capture: &Path,
    opts: HarOptions,
    stop_after: Option<usize>,
    cfg: Config,
) -> Vec<u8> {
    let cap = CaptureFile::open(std::fs::File::open(capture).unwrap()).unwrap();
    let mut w = HarWriter::new(Vec::new(), opts).unwrap();
    Pipeline::run(&mut Cut(cap, stop_after), cfg, &mut w).unwrap();
    w.into_inner().unwrap()
}

fn har(capture: &Path, opts: HarOptions) -> Value {
    serde_json::from_slice(&har_bytes(capture, opts, None)).expect("the HAR is valid JSON")
}

fn write_scratch(name: &str, bytes: &[u8]) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wsdump-har-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    let p = d.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn skipped(test: &str, why: &str) {
    // Straight to stderr: the harness captures eprintln! of passing tests, and a skip must
    // be seen.
    let _ = io::Write::write_all(
        &mut io::stderr(),
        format!("\n!!!!!!!! SKIPPED {test}: {why} !!!!!!!!\n").as_bytes(),
    );
}

/// (client, server, dir) → messages in `_webSocketMessages` form, from a peer log.
fn peer_messages(path: &Path, control: bool) -> BTreeMap<(String, String), Vec<Value>> {
    let mut m: BTreeMap<(String, String), Vec<Value>> = BTreeMap::new();
    for line in std::fs::read_to_string(path).unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let (opcode, data) = match v["opcode"].as_str().unwrap() {
            "text" => (1, v["text"].clone()),
            "binary" => (2, v["base64"].clone()),
            "ping" if control => (9, v["base64"].clone()),
            "pong" if control => (10, v["base64"].clone()),
            "close" if control => {
                // The close payload: the code (big-endian) then the reason.
                let mut b = Vec::new();
                if let Some(code) = v["close_code"].as_u64() {
                    b.extend_from_slice(&(code as u16).to_be_bytes());
                    b.extend_from_slice(v["close_reason"].as_str().unwrap_or("").as_bytes());
                }
                use base64::Engine;
                (
                    8,
                    json!(base64::engine::general_purpose::STANDARD.encode(b)),
                )
            }
            _ => continue,
        };
        let ty = if v["dir"] == "c2s" { "send" } else { "receive" };
        let key = (
            v["client"].as_str().unwrap().to_string(),
            v["dir"].as_str().unwrap().to_string(),
        );
        m.entry(key)
            .or_default()
            .push(json!({"type": ty, "opcode": opcode, "data": data, "ts": v.get("ts")}));
    }
    m
}

/// The same grouping of a HAR's websocket entries (by client address, from the Host-less
/// `connection` port and the server address).
fn har_messages(h: &Value) -> BTreeMap<(String, String), Vec<Value>> {
    let mut m: BTreeMap<(String, String), Vec<Value>> = BTreeMap::new();
    for e in h["log"]["entries"].as_array().unwrap() {
        if e["_resourceType"] != "websocket" {
            continue;
        }
        let client = format!("127.0.0.1:{}", e["connection"].as_str().unwrap());
        for msg in e["_webSocketMessages"].as_array().unwrap() {
            let dir = if msg["type"] == "send" { "c2s" } else { "s2c" };
            m.entry((client.clone(), dir.to_string()))
                .or_default()
                .push(msg.clone());
        }
    }
    m
}

fn assert_same_messages(
    name: &str,
    peers: &BTreeMap<(String, String), Vec<Value>>,
    got: &BTreeMap<(String, String), Vec<Value>>,
) -> usize {
    assert_eq!(
        peers.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>(),
        "{name}: flows"
    );
    let mut n = 0;
    for (k, want) in peers {
        let have = &got[k];
        assert_eq!(have.len(), want.len(), "{name} {k:?}: message count");
        for (h, w) in have.iter().zip(want) {
            for f in ["type", "opcode", "data"] {
                assert_eq!(h[f], w[f], "{name} {k:?}: {f} of {h} vs {w}");
            }
            // The peers' clocks (workerman-chat logs them) and the capture's agree to
            // well within a second: this catches a time in ms or an off-by-epoch.
            if let Some(ts) = w["ts"].as_str() {
                let t = h["time"].as_f64().unwrap();
                let mut s = String::new();
                wsdump::output::time::rfc3339(
                    Timestamp::from_micros(t.trunc() as i64, (t.fract() * 1e6).round() as u32),
                    &mut s,
                );
                assert_eq!(&s[..19], &ts[..19], "{name}: time {t} vs {ts}");
            }
            n += 1;
        }
    }
    n
}

#[test]
fn workerman_chat_messages_equal_the_peers_logs() {
    let cap = samples().join("workerman-chat.pcap");
    let peers = samples().join("workerman-chat.peer.jsonl");
    let h = har(&cap, HarOptions::default());
    let entries = h["log"]["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "one entry per websocket connection");
    for e in entries {
        assert_eq!(e["_resourceType"], "websocket");
        assert_eq!(e["request"]["method"], "GET");
        assert!(
            e["request"]["url"].as_str().unwrap().starts_with("ws://"),
            "{}",
            e["request"]["url"]
        );
        assert_eq!(e["response"]["status"], 101);
        // Workerman's own words ("Switching Protocol"), as sent.
        assert_eq!(e["response"]["statusText"], "Switching Protocol");
        assert!(e["timings"]["connect"].as_f64().unwrap() >= 0.0);
        assert!(e["timings"]["wait"].as_f64().unwrap() >= 0.0);
        assert!(e["_communityId"].as_str().unwrap().starts_with("1:"));
        let hdr = e["request"]["headers"].as_array().unwrap();
        assert!(hdr.iter().any(|x| x["name"] == "Sec-WebSocket-Key"));
    }
    // DevTools' form: data messages only.
    let n = assert_same_messages(
        "workerman-chat",
        &peer_messages(&peers, false),
        &har_messages(&h),
    );
    // With control frames too (the close each way).
    let all = har(
        &cap,
        HarOptions {
            control_frames: true,
            ..Default::default()
        },
    );
    let m = assert_same_messages(
        "workerman-chat +control",
        &peer_messages(&peers, true),
        &har_messages(&all),
    );
    eprintln!(
        "HAR: {n} data messages (+{} control) equal the peers' logs",
        m - n
    );
}

#[test]
fn every_peer_sample_matches_through_the_har() {
    // The same equality for every sample with ground truth, over the small spill limit
    // so that the spool file is exercised on real traffic.
    let mut total = 0;
    for entry in std::fs::read_dir(samples()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let Some(stem) = name.strip_suffix(".peer.jsonl") else {
            continue;
        };
        let Some(cap) = ["pcap", "pcapng"]
            .iter()
            .map(|e| samples().join(format!("{stem}.{e}")))
            .find(|p| p.exists())
        else {
            continue;
        };
        let opts = HarOptions {
            control_frames: true,
            memory_limit: 1024,
            ..Default::default()
        };
        // wss samples: decrypted with their key log, as tests/peers.rs does (tls-wss's
        // peer.jsonl is what is seen without it).
        let keylog = samples().join(format!("{stem}.keylog"));
        let inside = samples().join(format!("{stem}.decrypted.jsonl"));
        let keys = (keylog.exists() && !inside.exists()).then(|| {
            wsdump::tls::KeyStore::from_log(wsdump::tls::KeyLog::from_file(&keylog).unwrap())
        });
        let cfg = Config {
            keys,
            ..Config::default()
        };
        let h: Value = serde_json::from_slice(&har_bytes_with(&cap, opts, None, cfg)).unwrap();
        let mut peers = peer_messages(&path, true);
        let mut got = har_messages(&h);
        // The IPv6 sample's client is [::1]: har_messages assumes 127.0.0.1.
        if stem == "ipv6" {
            let fix = |m: BTreeMap<(String, String), Vec<Value>>| {
                m.into_iter()
                    .map(|((c, d), v)| ((c.rsplit(':').next().unwrap().to_string(), d), v))
                    .collect::<BTreeMap<_, _>>()
            };
            peers = fix(peers);
            got = fix(got);
        }
        // dumpcap-multi has every packet twice, on two interfaces: wsdump follows one.
        total += assert_same_messages(stem, &peers, &got);
    }
    assert!(total > 100, "{total}");
}

#[test]
fn cut_short_capture_still_gives_valid_har() {
    // As if Ctrl-C came in the middle of the second connection: finish() closes the open
    // entries and the JSON.
    let cap = samples().join("workerman-chat.pcap");
    for stop in [1, 5, 20, 30, 40] {
        let bytes = har_bytes(&cap, HarOptions::default(), Some(stop));
        let v: Value =
            serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("after {stop} packets: {e}"));
        assert_eq!(v["log"]["version"], "1.2");
    }
}

fn node_modules() -> Option<String> {
    let path = std::env::var("WSDUMP_HAR_NODE_PATH")
        .or_else(|_| std::env::var("NODE_PATH"))
        .ok()?;
    let ok = Command::new("node")
        .args(["-e", "require('har-schema'); require('ajv')"])
        .env("NODE_PATH", &path)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    ok.then_some(path)
}

#[test]
fn har_passes_the_har_1_2_json_schema() {
    let Some(modules) = node_modules() else {
        skipped(
            "har_passes_the_har_1_2_json_schema",
            "needs node and `npm i --prefix DIR har-schema ajv ajv-formats` with \
             WSDUMP_HAR_NODE_PATH=DIR/node_modules",
        );
        return;
    };
    let mut files = Vec::new();
    // Every sample capture.
    let mut names: Vec<String> = Vec::new();
    for dir in ["", "har/", "app/", "tls/", "noise/"] {
        for e in std::fs::read_dir(samples().join(dir)).unwrap() {
            let n = e.unwrap().file_name().into_string().unwrap();
            let opens =
                || CaptureFile::open(std::fs::File::open(samples().join(dir).join(&n)).unwrap());
            // The crash-* reproducers are not all readable captures.
            if (n.ends_with(".pcap") || n.ends_with(".pcapng")) && opens().is_ok() {
                names.push(format!("{dir}{n}"));
            }
        }
    }
    names.sort();
    assert!(names.len() > 15, "{names:?}");
    for name in &names {
        let bytes = har_bytes(&samples().join(name), HarOptions::default(), None);
        files.push(write_scratch(
            &format!("{}.har", name.replace('/', "-")),
            &bytes,
        ));
    }
    let cut = har_bytes(
        &samples().join("workerman-chat.pcap"),
        HarOptions::default(),
        Some(30),
    );
    files.push(write_scratch("cut.har", &cut));
    let out = Command::new("node")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/har-validate.js"))
        .args(&files)
        .env("NODE_PATH", modules)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    eprint!("{text}");
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn haralyzer_reads_the_har() {
    let have = Command::new("python3")
        .args(["-c", "import haralyzer"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !have {
        skipped(
            "haralyzer_reads_the_har",
            "needs python3 with haralyzer (pip)",
        );
        return;
    }
    let bytes = har_bytes(
        &samples().join("workerman-chat.pcap"),
        HarOptions::default(),
        None,
    );
    let file = write_scratch("haralyzer.har", &bytes);
    let script = r#"
import json, sys
from haralyzer import HarEntry, HarParser
p = HarParser.from_file(sys.argv[1])
n = 0
for raw in p.har_data["entries"]:
    e = HarEntry(raw)
    assert e.request.method == "GET", e.request.method
    assert e.request.url.startswith("ws://"), e.request.url
    assert e.response.status == 101
    assert e.request.get_header_value("Upgrade").lower() == "websocket"
    assert e.startTime is not None
    n += 1
print(n, "entries read by haralyzer")
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(&file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    eprint!("{text}");
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with("2 entries"), "{text}");
}

fn headers(v: &Value) -> Vec<(String, String)> {
    let mut h: Vec<(String, String)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["name"].as_str().unwrap().to_ascii_lowercase(),
                x["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    h.sort();
    h
}

/// samples/har: a real Chromium session, captured on the wire and reported by DevTools at
/// once. What wsdump writes from the capture must agree with what DevTools' exporter
/// writes from its events, field by field, except where they are known to differ
/// (samples/har/README.md lists both).
#[test]
fn agrees_with_devtools_on_a_chromium_session() {
    let dir = samples().join("har");
    let ours = har(&dir.join("chromium-ws.pcap"), HarOptions::default());
    let theirs: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("chromium-ws.devtools.har")).unwrap(),
    )
    .unwrap();
    let (o, t) = (&ours["log"]["entries"][0], &theirs["log"]["entries"][0]);
    assert_eq!(ours["log"]["entries"].as_array().unwrap().len(), 1);
    // Equal.
    assert_eq!(o["_resourceType"], t["_resourceType"]);
    for f in [
        "method",
        "url",
        "httpVersion",
        "queryString",
        "cookies",
        "bodySize",
    ] {
        assert_eq!(o["request"][f], t["request"][f], "request.{f}");
    }
    for f in [
        "status",
        "statusText",
        "httpVersion",
        "cookies",
        "redirectURL",
    ] {
        assert_eq!(o["response"][f], t["response"][f], "response.{f}");
    }
    assert_eq!(
        o["response"]["content"]["size"],
        t["response"]["content"]["size"]
    );
    assert_eq!(
        o["response"]["content"]["mimeType"],
        t["response"]["content"]["mimeType"]
    );
    // The same headers with the same values; DevTools' come from a map, so its order is
    // not the wire's (ours is).
    assert_eq!(
        headers(&o["request"]["headers"]),
        headers(&t["request"]["headers"])
    );
    assert_eq!(
        headers(&o["response"]["headers"]),
        headers(&t["response"]["headers"])
    );
    // The same messages in the same order; times from two clocks (the capture's and
    // Chromium's pseudo wall time) a few milliseconds apart.
    let (om, tm) = (
        o["_webSocketMessages"].as_array().unwrap(),
        t["_webSocketMessages"].as_array().unwrap(),
    );
    assert_eq!(om.len(), tm.len(), "{om:?}\n{tm:?}");
    let mut worst: f64 = 0.0;
    for (a, b) in om.iter().zip(tm) {
        for f in ["type", "opcode", "data"] {
            assert_eq!(a[f], b[f], "{f}: {a} vs {b}");
        }
        let d = (a["time"].as_f64().unwrap() - b["time"].as_f64().unwrap()).abs();
        worst = worst.max(d);
    }
    assert!(worst < 0.25, "message times differ by {worst} s");
    // Started within the same quarter second (ours: the SYN; DevTools': the request).
    let start = |v: &Value| v["startedDateTime"].as_str().unwrap()[..19].to_string();
    assert_eq!(start(o), start(t));
    // Known differences, checked so that a change on either side is noticed.
    assert_eq!(
        t["serverIPAddress"], "",
        "DevTools has no address for websockets"
    );
    assert_eq!(o["serverIPAddress"], "127.0.0.1");
    assert_eq!(t["timings"]["connect"], -1);
    assert!(o["timings"]["connect"].as_f64().unwrap() >= 0.0);
    assert!(t["response"]["bodySize"].as_i64().unwrap() < 0);
    assert_eq!(o["response"]["bodySize"], 0);
    eprintln!(
        "DevTools agreement: {} messages, worst time difference {:.1} ms",
        om.len(),
        worst * 1000.0
    );
}

#[test]
fn plain_http_on_a_kept_alive_connection() {
    // Two exchanges on one connection, then a refused upgrade: three ordinary entries
    // (the last marked websocket, as DevTools marks a failed one), no bodies kept.
    let mut c = common::Capture::new();
    c.send(true, b"GET /api?x=1&y HTTP/1.1\r\nHost: h:8080\r\n\r\n");
    c.send(
        false,
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok",
    );
    c.send(
        true,
        b"POST /form HTTP/1.1\r\nHost: h:8080\r\nContent-Length: 3\r\n\r\na=b",
    );
    c.send(
        false,
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
    );
    c.send(
        true,
        b"GET /ws HTTP/1.1\r\nHost: h:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    c.send(
        false,
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
    );
    c.fin();
    let path = write_scratch("plain-http.pcap", &c.pcap(wsdump::capture::LinkType::RAW));
    let h = har(&path, HarOptions::default());
    let e = h["log"]["entries"].as_array().unwrap();
    assert_eq!(e.len(), 3, "{h:#}");
    assert_eq!(e[0]["request"]["url"], "http://h:8080/api?x=1&y");
    assert_eq!(
        e[0]["request"]["queryString"],
        json!([{"name": "x", "value": "1"}, {"name": "y", "value": ""}])
    );
    assert_eq!(e[0]["response"]["status"], 200);
    assert_eq!(
        e[0]["response"]["content"],
        json!({"size": 2, "mimeType": "text/plain", "compression": 0})
    );
    // Packets are a second apart: SYN at 0, handshake ACK at 2, request 3, response 4.
    assert_eq!(e[0]["timings"]["connect"].as_f64(), Some(2000.0));
    assert_eq!(e[0]["timings"]["wait"].as_f64(), Some(1000.0));
    assert_eq!(e[0]["startedDateTime"], "2023-11-14T22:13:20.000000Z");
    assert!(e[0].get("_resourceType").is_none());
    assert_eq!(e[1]["request"]["method"], "POST");
    assert_eq!(e[1]["request"]["bodySize"], 3);
    assert_eq!(e[1]["response"]["status"], 404);
    assert_eq!(
        e[1]["timings"]["connect"], -1,
        "the connection was already up"
    );
    assert_eq!(e[2]["_resourceType"], "websocket");
    assert_eq!(e[2]["request"]["url"], "ws://h:8080/ws");
    assert_eq!(e[2]["response"]["status"], 403);
    assert!(e[2].get("_webSocketMessages").is_none());
}

#[test]
fn many_open_connections_stay_within_the_memory_limit() {
    // 40 websocket connections open at once to the end, their packets interleaved, 150
    // messages each (both ways): the JSON held must stay within the limit, and every
    // message come back in order from the spool.
    const CONNS: u16 = 40;
    const MSGS: usize = 150;
    let mut caps: Vec<common::Capture> = (0..CONNS)
        .map(|i| {
            let mut c = common::Capture::between(([10, 0, 0, 1], 30000 + i), common::SERVER);
            c.upgrade("/many");
            c
        })
        .collect();
    for k in 0..MSGS {
        for (i, c) in caps.iter_mut().enumerate() {
            let text = format!("conn {i} message {k} {}", "x".repeat(150));
            c.frame(k % 2 == 0, 1, text.as_bytes(), None);
        }
    }
    // Round-robin the connections' packets, each connection's in its own order.
    let mut all = common::Capture::mid_stream(common::CLIENT, common::SERVER);
    let longest = caps.iter().map(|c| c.packets.len()).max().unwrap();
    for n in 0..longest {
        for c in &caps {
            if let Some(p) = c.packets.get(n) {
                all.packets.push(p.clone());
            }
        }
    }
    let path = write_scratch("many.pcap", &all.pcap(wsdump::capture::LinkType::RAW));

    struct Peak<'a>(&'a mut HarWriter<Vec<u8>>, usize);
    impl Sink for Peak<'_> {
        fn event(&mut self, ev: &Event<'_>) -> io::Result<bool> {
            self.0.event(ev)?;
            self.1 = self.1.max(self.0.held());
            Ok(true)
        }
    }
    let limit = 32 << 10;
    let mut w = HarWriter::new(
        Vec::new(),
        HarOptions {
            memory_limit: limit,
            ..Default::default()
        },
    )
    .unwrap();
    let mut cap = CaptureFile::open(std::fs::File::open(&path).unwrap()).unwrap();
    let mut sink = Peak(&mut w, 0);
    Pipeline::run(&mut cap, Config::default(), &mut sink).unwrap();
    let peak = sink.1;
    let total = CONNS as usize * MSGS * 250;
    assert!(
        peak <= limit + 512,
        "held {peak} bytes with a {limit} limit"
    );
    let h: Value = serde_json::from_slice(&w.into_inner().unwrap()).unwrap();
    let entries = h["log"]["entries"].as_array().unwrap();
    assert_eq!(entries.len(), CONNS as usize);
    for e in entries {
        let port: u16 = e["connection"].as_str().unwrap().parse().unwrap();
        let i = port - 30000;
        let m = e["_webSocketMessages"].as_array().unwrap();
        assert_eq!(m.len(), MSGS);
        for (k, msg) in m.iter().enumerate() {
            let want = format!("conn {i} message {k} {}", "x".repeat(150));
            assert_eq!(msg["data"], want);
            assert_eq!(msg["type"], if k % 2 == 0 { "send" } else { "receive" });
        }
    }
    eprintln!("{CONNS} open connections: at most {peak} of ~{total} bytes held");
}
