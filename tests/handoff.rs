//! The hand-offs through the binary (`--har`, `-w`, `--json`'s `community_id`, `--redact`),
//! checked against what other tools make of the same traffic: the HAR Chromium's own
//! DevTools saved of the workerman-chat session in samples/har/, haralyzer, tshark.
//!
//! tshark and haralyzer are installed by `.ci/run`; without them those tests say SKIPPED,
//! and under CI=true they fail. The live tests need CAP_NET_RAW (root) in the same way.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_wsdump");

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples")
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Whether `cmd args` runs here; if not, a loud SKIPPED (a failure under CI=true).
fn have(test: &str, cmd: &str, args: &[&str], install: &str) -> bool {
    let ok = Command::new(cmd)
        .args(args)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        let msg = format!("{test}: SKIPPED: needs {install}");
        assert!(!ci(), "{msg}; CI=true does not accept skipping");
        let _ = writeln!(std::io::stderr(), "\n!!!!!!!! {msg} !!!!!!!!\n");
    }
    ok
}

fn have_tshark(test: &str) -> bool {
    have(
        test,
        "tshark",
        &["--version"],
        "tshark (apt-get install tshark)",
    )
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wsdump-handoff-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

/// Runs wsdump; it must succeed with nothing on stderr.
fn wsdump(args: &[&str]) -> Vec<u8> {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "wsdump {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn tshark(args: &[&str]) -> String {
    let out: Output = Command::new("tshark").args(args).output().unwrap();
    assert!(out.status.success(), "tshark {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn entries(h: &Value) -> &Vec<Value> {
    h["log"]["entries"].as_array().unwrap()
}

fn is_ws(e: &Value) -> bool {
    e["_resourceType"] == "websocket"
}

/// Every path in `v` with the JSON type found there: `/request/headers[]/name: string`.
/// Array elements are merged, so the shape does not depend on how many there are.
fn shape(v: &Value, path: &str, out: &mut BTreeMap<String, &'static str>) {
    let ty = match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    if !path.is_empty() {
        out.insert(path.to_string(), ty);
    }
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                shape(x, &format!("{path}/{k}"), out);
            }
        }
        Value::Array(a) => {
            for x in a {
                shape(x, &format!("{path}[]"), out);
            }
        }
        _ => {}
    }
}

fn paths(v: &Value) -> BTreeMap<String, &'static str> {
    let mut m = BTreeMap::new();
    shape(v, "", &mut m);
    m
}

fn header_set(v: &Value) -> BTreeSet<(String, String)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["name"].as_str().unwrap().to_ascii_lowercase(),
                h["value"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn started(e: &Value) -> f64 {
    let s = e["startedDateTime"].as_str().unwrap();
    // 2026-12-02T13:53:03.321229Z: seconds of the day are enough within one capture.
    let t = &s[11..s.len() - 1];
    let f: Vec<f64> = t.split(':').map(|x| x.parse().unwrap()).collect();
    f[0] * 3600.0 + f[1] * 60.0 + f[2]
}

/// What DevTools writes and a capture cannot know: facts of the page and the browser
/// (who started the request, its priority, its page, the service worker), and, for a
/// websocket, DevTools' own accounting of the 101 (transfer size 0, "compression" equal to
/// the head's size). samples/har/README.md says why each differs.
const PAGE_SIDE: &[&str] = &[
    "/_initiator",
    "/_initiator/stack",
    "/_initiator/stack/callFrames",
    "/_initiator/stack/callFrames[]",
    "/_initiator/stack/callFrames[]/columnNumber",
    "/_initiator/stack/callFrames[]/functionName",
    "/_initiator/stack/callFrames[]/lineNumber",
    "/_initiator/stack/callFrames[]/scriptId",
    "/_initiator/stack/callFrames[]/url",
    "/_initiator/type",
    "/_initiator/url",
    "/_initiator/lineNumber",
    "/_priority",
    "/_resourceType",
    "/pageref",
    "/response/_fetchedViaServiceWorker",
    "/timings/_workerStart",
    "/timings/_workerReady",
    "/timings/_workerFetchStart",
    "/timings/_workerRespondWithSettled",
];
const WS_DEVTOOLS_ACCOUNTING: &[&str] =
    &["/response/_transferSize", "/response/content/compression"];

/// The shape of DevTools' entry, minus the page-side fields, is in ours with the same types.
fn assert_shape(ours: &Value, theirs: &Value, what: &str) {
    let (o, t) = (paths(ours), paths(theirs));
    let mut missing = Vec::new();
    for (p, ty) in &t {
        match o.get(p) {
            Some(oty) => assert_eq!(oty, ty, "{what}: {p} is {oty} in ours, {ty} in DevTools'"),
            None => missing.push(p.as_str()),
        }
    }
    let allowed: BTreeSet<&str> = PAGE_SIDE
        .iter()
        .chain(if is_ws(theirs) {
            WS_DEVTOOLS_ACCOUNTING
        } else {
            &[]
        })
        .copied()
        .collect();
    let unexplained: Vec<&&str> = missing.iter().filter(|p| !allowed.contains(**p)).collect();
    assert!(
        unexplained.is_empty(),
        "{what}: DevTools has {unexplained:?}, ours not"
    );
}

/// The HAR wsdump writes of the capture of the reference workerman-chat session has the
/// shape of the HAR Chromium's DevTools saved of it, field for field; the values agree
/// except where the two sides see different things (each such field checked here, so that
/// a change on either side is noticed).
#[test]
fn har_of_workerman_chat_has_the_shape_of_chromiums() {
    let dir = samples().join("har");
    let file = scratch("workerman-chat.har");
    wsdump(&[
        "-r",
        dir.join("workerman-chat.pcap").to_str().unwrap(),
        "--har",
        file.to_str().unwrap(),
        "-m",
    ]);
    let ours = read_json(&file);
    let ours_ws: Vec<&Value> = entries(&ours).iter().filter(|e| is_ws(e)).collect();
    assert_eq!(ours_ws.len(), 2, "two websocket connections");
    let mut worst: f64 = 0.0;
    let mut plain_checked = 0;
    let mut messages = 0;
    let mut matched_plain = BTreeSet::new();
    for nick in ["mynick", "second"] {
        let theirs = read_json(&dir.join(format!("workerman-chat.{nick}.chromium.har")));
        assert_eq!(theirs["log"]["creator"]["name"], "WebInspector");
        let t = entries(&theirs).iter().find(|e| is_ws(e)).unwrap();
        let login = format!("\"client_name\":\"{nick}\"");
        let o = ours_ws
            .iter()
            .find(|e| {
                e["_webSocketMessages"][0]["data"]
                    .as_str()
                    .is_some_and(|d| d.contains(&login))
            })
            .unwrap_or_else(|| panic!("no websocket entry of {nick}"));
        assert_shape(o, t, nick);
        // Equal values.
        for f in [
            "method",
            "url",
            "httpVersion",
            "queryString",
            "cookies",
            "bodySize",
        ] {
            assert_eq!(o["request"][f], t["request"][f], "{nick}: request.{f}");
        }
        for f in [
            "status",
            "statusText",
            "httpVersion",
            "cookies",
            "redirectURL",
            "headersSize",
        ] {
            assert_eq!(o["response"][f], t["response"][f], "{nick}: response.{f}");
        }
        for f in ["size", "mimeType"] {
            assert_eq!(o["response"]["content"][f], t["response"]["content"][f]);
        }
        assert_eq!(o["cache"], t["cache"]);
        for f in ["blocked", "dns", "ssl", "send", "_blocked_queueing"] {
            assert_eq!(o["timings"][f], t["timings"][f], "{nick}: timings.{f}");
        }
        assert_eq!(o["response"]["_error"], t["response"]["_error"]);
        assert_eq!(
            header_set(&o["request"]["headers"]),
            header_set(&t["request"]["headers"])
        );
        assert_eq!(
            header_set(&o["response"]["headers"]),
            header_set(&t["response"]["headers"])
        );
        // Every message, in order; times from two clocks (the capture's, Chromium's).
        let (om, tm) = (
            o["_webSocketMessages"].as_array().unwrap(),
            t["_webSocketMessages"].as_array().unwrap(),
        );
        assert_eq!(om.len(), tm.len(), "{nick}: {om:?}\n{tm:?}");
        for (a, b) in om.iter().zip(tm) {
            for f in ["type", "opcode", "data"] {
                assert_eq!(a[f], b[f], "{nick}: {f}: {a} vs {b}");
            }
            let d = (a["time"].as_f64().unwrap() - b["time"].as_f64().unwrap()).abs();
            worst = worst.max(d);
        }
        messages += om.len();
        assert!(
            (started(o) - started(t)).abs() < 0.5,
            "{nick}: startedDateTime"
        );
        // Known differences.
        let url = t["request"]["url"].as_str().unwrap();
        let origin = &url[..url[5..].find('/').unwrap() + 5];
        assert_eq!(
            t["request"]["headersSize"].as_u64().unwrap(),
            o["request"]["headersSize"].as_u64().unwrap() + origin.len() as u64,
            "{nick}: DevTools counts a request line with the absolute URL {origin}"
        );
        assert_eq!(
            t["response"]["bodySize"].as_i64().unwrap(),
            -t["response"]["headersSize"].as_i64().unwrap()
        );
        assert_eq!(o["response"]["bodySize"], 0);
        assert_eq!(t["serverIPAddress"], "");
        assert_eq!(o["serverIPAddress"], "127.0.0.1");
        assert_eq!(t["timings"]["connect"], -1);
        assert!(o["timings"]["connect"].as_f64().unwrap() >= 0.0);

        // The page's plain HTTP requests that went over the wire (the others failed in
        // DNS: the namespace has no network).
        for te in entries(&theirs).iter().filter(|e| !is_ws(e)) {
            let url = te["request"]["url"].as_str().unwrap();
            if !url.starts_with("http://127.0.0.1:55151/") {
                continue;
            }
            let (i, oe) = entries(&ours)
                .iter()
                .enumerate()
                .filter(|(_, e)| e["request"]["url"] == url)
                .min_by(|a, b| {
                    let d = |e: &Value| (started(e) - started(te)).abs();
                    d(a.1).total_cmp(&d(b.1))
                })
                .unwrap_or_else(|| panic!("{url}: not in ours"));
            assert!((started(oe) - started(te)).abs() < 0.5, "{url}");
            assert!(matched_plain.insert(i), "{url} matched twice");
            assert_shape(oe, te, url);
            for f in ["method", "url", "httpVersion", "queryString", "bodySize"] {
                assert_eq!(oe["request"][f], te["request"][f], "{url}: request.{f}");
            }
            for f in [
                "status",
                "statusText",
                "httpVersion",
                "redirectURL",
                "headersSize",
                "bodySize",
                "_transferSize",
                "_error",
            ] {
                assert_eq!(oe["response"][f], te["response"][f], "{url}: response.{f}");
            }
            for f in ["size", "compression"] {
                assert_eq!(oe["response"]["content"][f], te["response"]["content"][f]);
            }
            assert_eq!(
                header_set(&oe["request"]["headers"]),
                header_set(&te["request"]["headers"]),
                "{url}"
            );
            assert_eq!(
                header_set(&oe["response"]["headers"]),
                header_set(&te["response"]["headers"]),
                "{url}"
            );
            assert_eq!(oe["serverIPAddress"], te["serverIPAddress"]);
            // Known differences: DevTools leaves the head's final CRLF out of the request's
            // headersSize, and the parameters out of mimeType (HAR 1.2 keeps the charset).
            assert_eq!(
                te["request"]["headersSize"].as_u64().unwrap() + 2,
                oe["request"]["headersSize"].as_u64().unwrap(),
                "{url}"
            );
            let mime = oe["response"]["content"]["mimeType"].as_str().unwrap();
            assert_eq!(
                te["response"]["content"]["mimeType"],
                mime.split(';').next().unwrap()
            );
            // HAR's `connection` may be either port: DevTools gives the server's (its own
            // connection ID is `_connectionId`), ours the client's, unique per connection.
            assert_eq!(te["connection"], "55151");
            assert_ne!(oe["connection"], "55151");
            plain_checked += 1;
        }
    }
    // What ours has besides: DevTools' own request for its workspace settings (not the
    // page's, so not in the page's HAR).
    for (i, e) in entries(&ours).iter().enumerate() {
        if !is_ws(e) && !matched_plain.contains(&i) {
            let url = e["request"]["url"].as_str().unwrap();
            assert!(
                url.ends_with("/.well-known/appspecific/com.chrome.devtools.json"),
                "{url} is in ours only"
            );
        }
    }
    assert!(worst < 0.5, "message times differ by {worst} s");
    assert!(
        plain_checked >= 19,
        "{plain_checked} plain entries compared"
    );
    eprintln!(
        "Chromium agreement: 2 websocket entries, {messages} messages (worst time difference \
         {:.1} ms), {plain_checked} plain HTTP entries",
        worst * 1000.0
    );
}

/// haralyzer, a maintained HAR library, reads the HAR wsdump writes: both websocket
/// connections with every message DevTools listed.
#[test]
fn haralyzer_loads_both_websockets_and_every_message() {
    if !have(
        "haralyzer_loads_both_websockets_and_every_message",
        "python3",
        &["-c", "import haralyzer"],
        "python3 with haralyzer (pip install haralyzer)",
    ) {
        return;
    }
    let dir = samples().join("har");
    let file = scratch("haralyzer.har");
    wsdump(&[
        "-r",
        dir.join("workerman-chat.pcap").to_str().unwrap(),
        "--har",
        file.to_str().unwrap(),
        "-q",
    ]);
    let script = r#"
import json, sys
from haralyzer import HarEntry, HarParser
ours = HarParser.from_file(sys.argv[1])
ws = [HarEntry(e) for e in ours.har_data["entries"] if e.get("_resourceType") == "websocket"]
assert len(ws) == 2, len(ws)
n = 0
for path in sys.argv[2:]:
    theirs = HarParser.from_file(path)
    t = [e for e in theirs.har_data["entries"] if e.get("_resourceType") == "websocket"][0]
    key = lambda m: (m["type"], m["opcode"], m["data"])
    mine = [e for e in ws if key(e.raw_entry["_webSocketMessages"][0]) == key(t["_webSocketMessages"][0])]
    assert len(mine) == 1
    e = mine[0]
    assert e.request.method == "GET" and e.response.status == 101
    assert e.request.get_header_value("Upgrade") == "websocket"
    assert e.startTime is not None
    assert [key(m) for m in e.raw_entry["_webSocketMessages"]] == [key(m) for m in t["_webSocketMessages"]]
    n += len(t["_webSocketMessages"])
plain = [HarEntry(e) for e in ours.har_data["entries"] if e.get("_resourceType") != "websocket"]
assert all(e.response.status in (200, 404) for e in plain)
print(len(ws), "websocket entries,", n, "messages,", len(plain), "plain entries read by haralyzer")
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(&file)
        .arg(dir.join("workerman-chat.mynick.chromium.har"))
        .arg(dir.join("workerman-chat.second.chromium.har"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.starts_with("2 websocket entries, 14 messages"),
        "{text}"
    );
    eprint!("{text}");
}

/// A valid HAR however the run stops: at `-c`, and when standard output is closed under
/// it (`| head -1`); and `--har -` writes it to standard output instead of the view.
#[test]
fn har_is_complete_on_every_way_out_of_a_file() {
    let cap = samples().join("node-fragmented.pcap");
    let cap = cap.to_str().unwrap();
    let full = scratch("full.har");
    wsdump(&["-r", cap, "--har", full.to_str().unwrap()]);
    let full = read_json(&full);
    let all = full["log"]["entries"][0]["_webSocketMessages"]
        .as_array()
        .unwrap()
        .len();

    let cut = scratch("count.har");
    wsdump(&["-r", cap, "--har", cut.to_str().unwrap(), "-c", "3", "-m"]);
    let cut = read_json(&cut);
    let n = cut["log"]["entries"][0]["_webSocketMessages"]
        .as_array()
        .unwrap()
        .len();
    assert!((1..all).contains(&n), "-c 3: {n} of {all} messages");

    let piped = scratch("pipe.har");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{BIN} -r {cap} -v -X --har {} | head -1",
            piped.display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout.iter().filter(|&&b| b == b'\n').count(), 1);
    // Complete JSON, with what was decoded before the pipe closed (how far that got
    // depends on when `head` exits).
    let piped = read_json(&piped);
    assert!(entries(&piped).len() <= 1, "{piped}");

    let stdout = wsdump(&["-r", cap, "--har", "-"]);
    let v: Value = serde_json::from_slice(&stdout).expect("--har - writes only the HAR");
    assert_eq!(v["log"]["entries"], full["log"]["entries"]);
}

/// tshark's reading of the comments in a -w pcapng (as tcpdump -w takes a name; pcapng by
/// the extension).
fn comments(pcapng: &Path) -> Vec<Vec<String>> {
    let out = tshark(&[
        "-r",
        pcapng.to_str().unwrap(),
        "-T",
        "json",
        "-e",
        "frame.comment",
    ]);
    let v: Value = serde_json::from_str(&out).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| {
            p["_source"]["layers"]["frame.comment"]
                .as_array()
                .map(|a| a.iter().map(|c| c.as_str().unwrap().to_string()).collect())
                .unwrap_or_default()
        })
        .collect()
}

fn frames(path: &Path) -> String {
    tshark(&[
        "-r",
        path.to_str().unwrap(),
        "-T",
        "fields",
        "-e",
        "frame.time_epoch",
        "-e",
        "frame.len",
        "-e",
        "frame.cap_len",
        "-e",
        "frame.protocols",
    ])
}

/// Every packet's timestamp, link type, lengths and bytes, as wsdump's reader gives them.
fn packet_bytes(path: &Path) -> Vec<(i128, u32, u32, Vec<u8>)> {
    use wsdump::engine::PacketSource;
    let mut f =
        wsdump::capture::file::CaptureFile::open(std::fs::File::open(path).unwrap()).unwrap();
    let mut v = Vec::new();
    f.for_each(&mut |p| {
        v.push((p.ts.as_nanos(), p.linktype.0, p.orig_len, p.data.to_vec()));
        std::ops::ControlFlow::Continue(())
    })
    .unwrap();
    v
}

/// `-r CAPTURE -w out.pcapng`: tshark sees the packets as they were, each message's
/// comment on the packet that completed it, in order; wsdump reads the file back as the
/// original.
#[test]
fn pcapng_comments_in_tshark_and_the_same_packets() {
    if !have_tshark("pcapng_comments_in_tshark_and_the_same_packets") {
        return;
    }
    let mut total = 0;
    for name in [
        "workerman-chat.pcap",
        "har/workerman-chat.pcap",
        "python-deflate.pcap",
        "node-fragmented.pcap",
        "nanosecond.pcap",
        "dumpcap-multi.pcapng",
        "sll2-any.pcap",
    ] {
        let src = samples().join(name);
        let s = src.to_str().unwrap();
        let out = scratch(&format!("{}.pcapng", name.replace('/', "-")));
        let o = out.to_str().unwrap();
        let json = wsdump(&["-r", s, "-w", o, "--json", "-m"]);
        let msgs: Vec<Value> = String::from_utf8(json)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            &std::fs::read(&out).unwrap()[..4],
            b"\x0a\x0d\x0d\x0a",
            "{name}"
        );
        assert_eq!(frames(&out), frames(&src), "{name}: packets differ");
        assert_eq!(
            packet_bytes(&out),
            packet_bytes(&src),
            "{name}: packet bytes"
        );
        let cs: Vec<String> = comments(&out).into_iter().flatten().collect();
        assert_eq!(cs.len(), msgs.len(), "{name}: a comment per message");
        for (c, m) in cs.iter().zip(&msgs) {
            let mut want = format!(
                "{} {}",
                m["dir"].as_str().unwrap(),
                m["opcode"].as_str().unwrap()
            );
            if m["opcode"] == "close" {
                if let Some(code) = m["close_code"].as_u64() {
                    want += &format!(" {code}");
                }
            } else {
                want += &format!(" {}", m["len"]);
            }
            assert!(c.starts_with(&want), "{name}: {c:?} is not {want:?}…");
            if let Some(t) = m["text"].as_str()
                && t.len() < 200
                && !t.chars().any(char::is_control)
                && !t.contains(": ")
            {
                assert!(c.contains(t), "{name}: {c:?} lacks {t:?}");
            }
        }
        total += cs.len();
        // wsdump reads its pcapng back as the original, in every view.
        for view in [
            &["--json"][..],
            &["-v"][..],
            &["-m", "--color", "never"][..],
        ] {
            let a = wsdump(&[&["-r", s][..], view].concat());
            let b = wsdump(&[&["-r", o][..], view].concat());
            assert_eq!(
                String::from_utf8_lossy(&a),
                String::from_utf8_lossy(&b),
                "{name} {view:?}"
            );
        }
    }
    eprintln!("pcapng: {total} comments read by tshark");
}

/// `-w` keeps writing pcap (tcpdump's format) unless pcapng is asked for, by name, by
/// tshark's `-F pcapng` or by `--pcapng`; a pcap cannot hold two link types and says so.
#[test]
fn write_formats() {
    let multi = samples().join("dumpcap-multi.pcapng");
    let chat = samples().join("workerman-chat.pcap");
    let magic = |p: &Path| std::fs::read(p).unwrap()[..4].to_vec();
    let pcap = scratch("out.pcap");
    wsdump(&[
        "-r",
        chat.to_str().unwrap(),
        "-w",
        pcap.to_str().unwrap(),
        "-q",
    ]);
    assert_eq!(magic(&pcap), 0xa1b2_c3d4u32.to_le_bytes());
    let a = wsdump(&["-r", chat.to_str().unwrap(), "--json"]);
    let b = wsdump(&["-r", pcap.to_str().unwrap(), "--json"]);
    assert_eq!(a, b);
    for (flag, name) in [("-F", "f.cap"), ("--pcapng", "p.cap")] {
        let f = scratch(name);
        let mut args = vec![
            "-r",
            chat.to_str().unwrap(),
            "-w",
            f.to_str().unwrap(),
            "-q",
        ];
        args.extend(if flag == "-F" {
            vec!["-F", "pcapng"]
        } else {
            vec![flag]
        });
        wsdump(&args);
        assert_eq!(magic(&f), b"\x0a\x0d\x0d\x0a", "{flag}");
    }
    let forced = scratch("forced.pcapng");
    wsdump(&[
        "-r",
        chat.to_str().unwrap(),
        "-w",
        forced.to_str().unwrap(),
        "-F",
        "pcap",
        "-q",
    ]);
    assert_eq!(magic(&forced), 0xa1b2_c3d4u32.to_le_bytes());
    let bad = scratch("multi.pcap");
    let out = Command::new(BIN)
        .args([
            "-r",
            multi.to_str().unwrap(),
            "-w",
            bad.to_str().unwrap(),
            "-q",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("one link type") && err.contains("pcapng"),
        "{err}"
    );
}

/// tshark's Community ID of each connection, by its endpoints.
fn tshark_community_ids(cap: &Path, seed: u16) -> BTreeMap<BTreeSet<String>, String> {
    let seed = format!("communityid.seed:{seed}");
    let out = tshark(&[
        "-r",
        cap.to_str().unwrap(),
        "--enable-protocol",
        "communityid",
        "-o",
        &seed,
        "-Y",
        "tcp",
        "-T",
        "fields",
        "-e",
        "ip.src",
        "-e",
        "ipv6.src",
        "-e",
        "tcp.srcport",
        "-e",
        "ip.dst",
        "-e",
        "ipv6.dst",
        "-e",
        "tcp.dstport",
        "-e",
        "communityid",
    ]);
    let mut ids = BTreeMap::new();
    for line in out.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let addr = |v4: &str, v6: &str, port: &str| -> String {
            let ip = if v6.is_empty() { v4 } else { v6 };
            let ip: std::net::IpAddr = ip.rsplit(',').next().unwrap().parse().unwrap();
            SocketAddr::new(ip, port.parse().unwrap()).to_string()
        };
        let key = BTreeSet::from([addr(f[0], f[1], f[2]), addr(f[3], f[4], f[5])]);
        ids.insert(key, f[6].to_string());
    }
    ids
}

/// `--json | jq .community_id`: the flow ID tshark computes for the same packets, with the
/// default seed and another, on every event of every connection of the samples.
#[test]
fn json_community_id_is_tsharks() {
    if !have_tshark("json_community_id_is_tsharks") {
        return;
    }
    let mut checked = 0;
    for name in [
        "workerman-chat.pcap",
        "har/workerman-chat.pcap",
        "ipv6.pcap",
        "dumpcap-multi.pcapng",
        "sll2-any.pcap",
        "tls-wss.pcap",
    ] {
        let cap = samples().join(name);
        for seed in [0u16, 4242] {
            let theirs = tshark_community_ids(&cap, seed);
            let seed_s = seed.to_string();
            let out = Command::new(BIN)
                .args(["-r", cap.to_str().unwrap(), "--json"])
                .args(["--community-id-seed", &seed_s])
                .output()
                .unwrap();
            for line in String::from_utf8(out.stdout).unwrap().lines() {
                let v: Value = serde_json::from_str(line).unwrap();
                let Some(client) = v["client"].as_str() else {
                    continue;
                };
                let key = BTreeSet::from([
                    client.to_string(),
                    v["server"].as_str().unwrap().to_string(),
                ]);
                let want = theirs
                    .get(&key)
                    .unwrap_or_else(|| panic!("{name}: tshark has no flow {key:?}"));
                assert_eq!(
                    v["community_id"],
                    want.as_str(),
                    "{name} seed {seed}: {line}"
                );
                checked += 1;
            }
            // The HAR's _communityId, with the same seed: its client port is `connection`.
            let har = scratch(&format!("cid-{seed}.har"));
            let _ = Command::new(BIN)
                .args(["-r", cap.to_str().unwrap(), "-q", "--har"])
                .arg(&har)
                .args(["--community-id-seed", &seed_s])
                .output()
                .unwrap();
            for e in entries(&read_json(&har)) {
                let port = format!(":{}", e["connection"].as_str().unwrap());
                let want: Vec<&String> = theirs
                    .iter()
                    .filter(|(k, _)| k.iter().any(|a| a.ends_with(&port)))
                    .map(|(_, v)| v)
                    .collect();
                assert_eq!(want.len(), 1, "{name}: {port}");
                assert_eq!(e["_communityId"], want[0].as_str(), "{name} seed {seed}");
                checked += 1;
            }
        }
    }
    eprintln!("community_id: {checked} JSON events agree with tshark");
}

/// `--redact`: no header value (but Host), query value or payload in the JSON or the HAR;
/// `--max-payload`: payloads cut, true lengths kept.
#[test]
fn redact_and_payload_cap() {
    let cap = samples().join("workerman-chat.pcap");
    let c = cap.to_str().unwrap();
    let plain = String::from_utf8(wsdump(&["-r", c, "--json"])).unwrap();
    let har = scratch("redacted.har");
    let json = String::from_utf8(wsdump(&[
        "-r",
        c,
        "--json",
        "--redact",
        "--har",
        har.to_str().unwrap(),
    ]))
    .unwrap();
    let har = std::fs::read_to_string(&har).unwrap();
    // Secrets and payloads as they are in the unredacted output.
    let mut secrets = vec!["hi, all !".to_string(), "mynick".to_string()];
    for line in plain.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        if let Some(k) = v["key"].as_str() {
            secrets.push(k.to_string());
        }
        if let Some(h) = v["headers"].as_array() {
            for p in h {
                if p[0] == "User-Agent" || p[0] == "Sec-WebSocket-Key" {
                    secrets.push(p[1].as_str().unwrap().to_string());
                }
            }
        }
    }
    assert!(secrets.len() >= 5, "{secrets:?}");
    for s in &secrets {
        assert!(!json.contains(s.as_str()), "--json --redact shows {s:?}");
        assert!(!har.contains(s.as_str()), "--har --redact shows {s:?}");
    }
    let mut redacted = 0;
    for line in json.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        if v["type"] == "message" {
            assert!(v["len"].as_u64().unwrap() > 0);
            assert_eq!(v["redacted"], true, "{line}");
            redacted += 1;
        }
        if v["type"] == "http_request" {
            let host = v["headers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|h| h[0] == "Host");
            assert_eq!(host.unwrap()[1], "127.0.0.1:7272");
        }
    }
    assert_eq!(redacted, 19);
    let h: Value = serde_json::from_str(&har).unwrap();
    assert_eq!(entries(&h)[0]["_webSocketMessages"][0]["data"], "REDACTED");

    let cut = String::from_utf8(wsdump(&["-r", c, "--json", "-m", "--max-payload", "10"])).unwrap();
    let whole: Vec<Value> = String::from_utf8(wsdump(&["-r", c, "--json", "-m"]))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (line, w) in cut.lines().zip(&whole) {
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["len"], w["len"]);
        if let (Some(t), Some(wt)) = (v["text"].as_str(), w["text"].as_str()) {
            assert!(t.len() <= 10 && wt.starts_with(t), "{t:?}");
            assert_eq!(v["payload_cut"].as_bool().unwrap_or(false), wt.len() > 10);
        }
    }
}

// Live capture: the HAR and the pcapng when wsdump is stopped by a signal with a
// connection still open.

fn can_capture(test: &str) -> bool {
    // SAFETY: plain socket(2); closed right away.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW,
            (libc::ETH_P_ALL as u16).to_be() as i32,
        )
    };
    if fd >= 0 {
        unsafe { libc::close(fd) };
        return true;
    }
    let msg = format!("{test}: SKIPPED: needs CAP_NET_RAW (run the tests as root)");
    assert!(!ci(), "{msg}; CI=true does not accept skipping");
    eprintln!("\n!!!!!!!! {msg} !!!!!!!!\n");
    false
}

/// Starts a live wsdump on lo for `port` and waits for it to listen; its stdout (JSON
/// message lines) is read into a channel.
fn live(port: u16, extra: &[&str]) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    let port = port.to_string();
    let mut child = Command::new(BIN)
        .args(["-i", "lo", "--port", &port, "--json", "-m"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.contains("listening on"), "{line}");
    std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = err.read_to_string(&mut rest);
    });
    let (tx, rx) = std::sync::mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    (child, rx)
}

fn stop(mut child: std::process::Child, sig: i32) -> i32 {
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, sig) };
    let t = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code().unwrap_or(-1);
        }
        if t.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("wsdump did not stop on signal {sig}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_lines(rx: &std::sync::mpsc::Receiver<String>, n: usize) {
    let t = Instant::now();
    let mut got = 0;
    while got < n {
        let left = Duration::from_secs(10).saturating_sub(t.elapsed());
        rx.recv_timeout(left)
            .unwrap_or_else(|_| panic!("{got} of {n} messages seen live"));
        got += 1;
    }
}

/// Ctrl-C (SIGINT) and SIGTERM with a websocket still open: the HAR is complete and holds
/// the connection with every message so far; the pcapng holds the comments.
#[test]
fn live_har_and_pcapng_valid_after_a_signal() {
    if !can_capture("live_har_and_pcapng_valid_after_a_signal") {
        return;
    }
    let texts = ["one", "two", "three"];
    for (sig, name) in [(libc::SIGINT, "int"), (libc::SIGTERM, "term")] {
        let har = scratch(&format!("live-{name}.har"));
        let png = scratch(&format!("live-{name}.pcapng"));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (child, rx) = live(
            port,
            &["--har", har.to_str().unwrap(), "-w", png.to_str().unwrap()],
        );
        let server = std::thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            let mut ws = tungstenite::accept(s).unwrap();
            while let Ok(m) = ws.read() {
                if m.is_text() && ws.send(m).is_err() {
                    break;
                }
            }
        });
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (mut ws, _) = tungstenite::client(format!("ws://127.0.0.1:{port}/live"), s).unwrap();
        for t in texts {
            ws.send(tungstenite::Message::text(t)).unwrap();
            ws.read().unwrap();
        }
        wait_lines(&rx, 2 * texts.len());
        assert_eq!(stop(child, sig), 0, "signal {name}");
        drop(ws);
        let _ = server.join();
        let h = read_json(&har);
        let e = entries(&h);
        assert_eq!(e.len(), 1, "{h}");
        let m: Vec<(&str, &str)> = e[0]["_webSocketMessages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["type"].as_str().unwrap(), m["data"].as_str().unwrap()))
            .collect();
        let want: Vec<(&str, &str)> = texts
            .iter()
            .flat_map(|t| [("send", *t), ("receive", *t)])
            .collect();
        assert_eq!(m, want, "SIG{name}");
        if have_tshark("live_har_and_pcapng_valid_after_a_signal") {
            let cs: Vec<String> = comments(&png).into_iter().flatten().collect();
            assert_eq!(cs.len(), 6, "{cs:?}");
            assert_eq!(cs[0], "c2s text 3: one");
            assert_eq!(cs[1], "s2c text 3: one");
        }
    }
}

/// Ctrl-C while a capture is read (here from standard input, fed by the test): wsdump stops
/// at the next packet and finishes the HAR, instead of dying with half a file.
#[test]
fn sigint_while_reading_a_file_finishes_the_har() {
    let bytes = std::fs::read(samples().join("node-fragmented.pcap")).unwrap();
    // Record boundaries: a 24-byte header, then 16-byte record headers with the caplen.
    let mut ends = Vec::new();
    let mut at = 24;
    while at < bytes.len() {
        let caplen = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        at += 16 + caplen;
        ends.push(at);
    }
    let all = {
        let f = scratch("sigint-full.har");
        wsdump(&[
            "-r",
            samples().join("node-fragmented.pcap").to_str().unwrap(),
            "--har",
            f.to_str().unwrap(),
        ]);
        read_json(&f)["log"]["entries"][0]["_webSocketMessages"]
            .as_array()
            .unwrap()
            .len()
    };
    let har = scratch("sigint.har");
    let mut child = Command::new(BIN)
        .args(["-r", "-", "--json", "-m", "--har", har.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // The first record past half the bytes: the reader reads ahead, so it needs a fair
    // part of the file before it hands packets over.
    let half = *ends.iter().find(|&&e| e > bytes.len() / 2).unwrap();
    stdin.write_all(&bytes[..half]).unwrap();
    stdin.flush().unwrap();
    // A message line says wsdump is decoding; it then waits for more input.
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.contains("\"type\":\"message\""), "{line}");
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    // The rest arrives after the signal: wsdump must not decode it.
    let _ = stdin.write_all(&bytes[half..]);
    drop(stdin);
    let mut rest = String::new();
    let _ = out.read_to_string(&mut rest);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
    let h = read_json(&har);
    let n = h["log"]["entries"][0]["_webSocketMessages"]
        .as_array()
        .unwrap()
        .len();
    assert!(
        n >= 1 && n < all,
        "{n} of {all} messages in the HAR after SIGINT"
    );
}
