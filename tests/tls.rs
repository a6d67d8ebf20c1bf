//! wss:// end to end: the recorded TLS samples decrypted with their key logs (and with the
//! key log inside a pcapng), the cases where wsdump cannot decrypt (no key log, another
//! run's key log, a wrong secret, a capture that began after the handshake, a suite it does
//! not decrypt, lost records) — each says why and prints no message — and tshark's reading
//! of the same captures with the same key logs.
//!
//! The tshark checks are skipped (loudly) without tshark, except under CI=true.

use serde_json::Value;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use wsdump::capture::RawPacket;
use wsdump::capture::file::CaptureFile;
use wsdump::capture::writer::PcapWriter;

const BIN: &str = env!("CARGO_BIN_EXE_wsdump");

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples")
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wsdump-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// wsdump's JSON lines for `capture` with `args`, and its exit status.
fn run(capture: &Path, args: &[&str]) -> (Vec<Value>, i32) {
    let out = Command::new(BIN)
        .arg("-r")
        .arg(capture)
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.stderr.is_empty(),
        "{}: {}",
        capture.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("valid JSON line"))
        .collect();
    (lines, out.status.code().unwrap())
}

fn of_type<'a>(lines: &'a [Value], t: &str) -> Vec<&'a Value> {
    lines.iter().filter(|v| v["type"] == t).collect()
}

fn tls_notices(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .filter(|v| v["type"] == "notice" && v["kind"] == "tls")
        .map(|v| v["detail"].as_str().unwrap().to_string())
        .collect()
}

/// The fields the peers can vouch for, per flow, in order.
fn flows(msgs: &[&Value]) -> std::collections::BTreeMap<String, Vec<Value>> {
    const FIELDS: [&str; 8] = [
        "opcode",
        "len",
        "compressed",
        "text",
        "base64",
        "close_code",
        "close_reason",
        "dir",
    ];
    let mut m: std::collections::BTreeMap<String, Vec<Value>> = Default::default();
    for v in msgs {
        let p: serde_json::Map<String, Value> = FIELDS
            .iter()
            .filter_map(|f| v.get(*f).map(|x| (f.to_string(), x.clone())))
            .collect();
        m.entry(format!("{} {} {}", v["client"], v["server"], v["dir"]))
            .or_default()
            .push(Value::Object(p));
    }
    m
}

fn peer_log(name: &str) -> Vec<Value> {
    std::fs::read_to_string(samples().join(name))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Rewrites a capture keeping the packets `keep` says yes to (by index).
fn rewrite(from: &Path, to: &Path, mut keep: impl FnMut(usize, &RawPacket<'_>) -> bool) {
    let mut cap = CaptureFile::open(std::fs::File::open(from).unwrap()).unwrap();
    let mut w: Option<PcapWriter<io::BufWriter<std::fs::File>>> = None;
    let mut i = 0;
    cap.for_each_packet(|p| {
        let w = w.get_or_insert_with(|| {
            let f = io::BufWriter::new(std::fs::File::create(to).unwrap());
            PcapWriter::new(f, p.linktype, false, 262144).unwrap()
        });
        if keep(i, p) {
            w.write(p).unwrap();
        }
        i += 1;
        std::ops::ControlFlow::Continue(())
    })
    .unwrap();
    w.unwrap().flush().unwrap();
}

/// TCP payload of an Ethernet/IPv4 packet (the samples are EN10MB on lo).
fn tcp_payload<'a>(p: &RawPacket<'a>) -> &'a [u8] {
    let ip = &p.data[14..];
    let ihl = (ip[0] & 15) as usize * 4;
    let tcp = &ip[ihl..];
    let off = (tcp[12] >> 4) as usize * 4;
    &tcp[off..]
}

#[test]
fn a_pcapng_with_its_secrets_decrypts_without_a_flag() {
    // samples/wss-python-aes128-dsb.pcapng: editcap --inject-secrets of the aes128 sample.
    let capture = samples().join("wss-python-aes128-dsb.pcapng");
    let want = peer_log("wss-python-aes128.peer.jsonl");
    let want: Vec<&Value> = want.iter().collect();
    for threads in ["1", "2"] {
        let (lines, status) = run(&capture, &["--threads", threads]);
        assert_eq!(status, 0);
        let msgs = of_type(&lines, "message");
        assert_eq!(flows(&msgs), flows(&want), "threads {threads}");
        let verdict = tls_notices(&lines);
        assert!(
            verdict.iter().any(
                |n| n.contains("decrypted with the secrets of client random")
                    && n.contains("Decryption Secrets Block")
            ),
            "{verdict:?}"
        );
    }
}

#[test]
fn the_tls_object_says_what_was_chosen() {
    let (lines, _) = run(
        &samples().join("wss-node-chacha.pcap"),
        &["--keylog", "samples/wss-node-chacha.keylog"],
    );
    let with: Vec<&Value> = lines.iter().filter(|v| v.get("tls").is_some()).collect();
    assert_eq!(with.len(), 1, "one verdict per connection");
    let t = &with[0]["tls"];
    assert_eq!(t["version"], "TLS 1.2");
    assert_eq!(t["suite"], "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256");
    assert_eq!(t["sni"], "localhost");
    assert_eq!(t["decrypted"], true);
    assert_eq!(t["resumed"], false);
}

/// Runs a negative case: exit 1 (no websocket), no message, no HTTP, and a notice that
/// contains `why`.
fn says_why_and_prints_nothing(capture: &Path, args: &[&str], why: &str) -> Vec<String> {
    let (lines, status) = run(capture, args);
    assert_eq!(status, 1, "{why}: no websocket found");
    for t in ["message", "http_request", "http_response", "frame"] {
        assert!(of_type(&lines, t).is_empty(), "{why}: a {t} was printed");
    }
    let notices = tls_notices(&lines);
    assert!(
        notices.iter().any(|n| n.contains(why)),
        "{why}: not said in {notices:#?}"
    );
    let verdicts: Vec<&Value> = lines.iter().filter(|v| v.get("tls").is_some()).collect();
    assert!(
        verdicts.iter().all(|v| v["tls"]["decrypted"] == false),
        "{verdicts:?}"
    );
    notices
}

#[test]
fn without_a_key_log_it_says_how_to_give_one() {
    says_why_and_prints_nothing(
        &samples().join("wss-python-aes128.pcap"),
        &[],
        "to decrypt it give wsdump the client's key log: --keylog FILE",
    );
}

#[test]
fn another_runs_key_log_has_no_line_for_this_client_random() {
    // The chacha sample's key log: a real key log, of other connections.
    let notices = says_why_and_prints_nothing(
        &samples().join("wss-python-aes128.pcap"),
        &["--keylog", "samples/wss-python-chacha.keylog"],
        "has no line for client random",
    );
    // The random named is the one in the right key log.
    let right = std::fs::read_to_string(samples().join("wss-python-aes128.keylog")).unwrap();
    let random = right
        .lines()
        .find(|l| l.starts_with("CLIENT_HANDSHAKE"))
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap();
    assert!(notices.iter().any(|n| n.contains(random)), "{notices:?}");
}

#[test]
fn a_wrong_secret_fails_authentication() {
    // The right client randoms with every secret's last byte changed.
    for (sample, label) in [
        ("wss-python-aes128", "TLS 1.3"),
        ("wss-node-gcm", "TLS 1.2"),
    ] {
        let log = std::fs::read_to_string(samples().join(format!("{sample}.keylog"))).unwrap();
        let wrong: String = log
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                if f.len() != 3 {
                    return format!("{l}\n");
                }
                let mut secret = f[2].to_string();
                let last = if secret.ends_with('0') { "1" } else { "0" };
                secret.replace_range(secret.len() - 1.., last);
                format!("{} {} {secret}\n", f[0], f[1])
            })
            .collect();
        let path = tmp(&format!("{sample}-wrong.keylog"));
        std::fs::write(&path, wrong).unwrap();
        says_why_and_prints_nothing(
            &samples().join(format!("{sample}.pcap")),
            &["--keylog", path.to_str().unwrap()],
            "does not authenticate with the logged secrets",
        );
        let _ = label;
    }
}

#[test]
fn a_capture_that_began_after_the_handshake_says_so() {
    // Everything from the first packet whose payload starts with an application_data
    // record: the ClientHello and ServerHello are not in the capture.
    let from = samples().join("wss-python-aes128.pcap");
    let cut = tmp("late.pcap");
    let mut first = None;
    rewrite(&from, &tmp("scan.pcap"), |i, p| {
        let d = tcp_payload(p);
        if first.is_none() && d.first() == Some(&0x17) {
            first = Some(i);
        }
        false
    });
    let first = first.expect("an application data record");
    rewrite(&from, &cut, |i, _| i >= first);
    says_why_and_prints_nothing(
        &cut,
        &["--keylog", "samples/wss-python-aes128.keylog"],
        "the capture began after it",
    );
}

#[test]
fn a_suite_it_does_not_decrypt_is_named() {
    // Python websockets over TLS_AES_128_CCM_SHA256: the peers did exchange messages
    // (samples/wss-python-ccm.sent.jsonl), wsdump says it cannot read them.
    assert!(!peer_log("wss-python-ccm.sent.jsonl").is_empty());
    says_why_and_prints_nothing(
        &samples().join("wss-python-ccm.pcap"),
        &["--keylog", "samples/wss-python-ccm.keylog"],
        "does not decrypt cipher suite TLS_AES_128_CCM_SHA256 (0x1304)",
    );
}

#[test]
fn lost_records_are_said_and_nothing_false_is_printed() {
    // The python-deflate sample over TLS, without one segment in the middle of the
    // 100 KB message (many TLS records): what is lost is said, and every message shown
    // whole is one the peers sent, in their order.
    let from = samples().join("wss-python-deflate.pcap");
    let mut big = Vec::new();
    rewrite(&from, &tmp("scan2.pcap"), |i, p| {
        if tcp_payload(p).len() > 1000 {
            big.push(i);
        }
        false
    });
    assert!(big.len() >= 3, "the big message spans several segments");
    let drop = big[big.len() / 2];
    let cut = tmp("loss.pcap");
    rewrite(&from, &cut, |i, _| i != drop);
    let out = Command::new(BIN)
        .arg("-r")
        .arg(&cut)
        .args(["--json", "--keylog", "samples/wss-python-deflate.keylog"])
        .output()
        .unwrap();
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        of_type(&lines, "gap").len() == 1,
        "the TCP gap is reported once"
    );
    let notices = tls_notices(&lines);
    assert!(
        notices
            .iter()
            .any(|n| n.contains("lost (by their sequence numbers)") || n.contains("skipped")),
        "{notices:#?}"
    );
    let truth = peer_log("wss-python-deflate.peer.jsonl");
    let truth: Vec<&Value> = truth.iter().collect();
    let want = flows(&truth);
    let msgs: Vec<&Value> = of_type(&lines, "message")
        .into_iter()
        .filter(|m| m.get("incomplete").is_none())
        .collect();
    assert!(msgs.len() >= 10, "the messages around the hole are decoded");
    for (flow, got) in flows(&msgs) {
        // A subsequence of what the peers sent on this flow.
        let mut it = want[&flow].iter();
        for m in &got {
            assert!(it.any(|w| w == m), "{flow}: {m} is not what the peers sent");
        }
    }
}

/// `Some(())` when tshark runs here; `None` (loudly) when not, which fails under CI=true.
fn tshark(test: &str) -> Option<()> {
    let ok = Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(());
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: tshark is not installed, and CI=true does not accept the skip");
    }
    let _ = io::Write::write_all(
        &mut io::stderr(),
        format!("\n!!!!!!!! SKIPPED {test}: tshark not found !!!!!!!!\n").as_bytes(),
    );
    None
}

/// tshark's text messages of a wss capture: `tshark -o tls.keylog_file:FILE -Y websocket`.
fn tshark_texts(capture: &Path, port: u16, keylog: &Path) -> Vec<String> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(capture)
        .args(["-d", &format!("tcp.port=={port},tls")])
        .args(["-d", &format!("tls.port=={port},http")])
        .arg("-o")
        .arg(format!("tls.keylog_file:{}", keylog.display()))
        .args([
            "-Y",
            "websocket",
            "-T",
            "fields",
            "-e",
            "websocket.payload.text",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

#[test]
fn tshark_reads_the_same_texts_with_the_same_key_log() {
    if tshark("tshark_reads_the_same_texts_with_the_same_key_log").is_none() {
        return;
    }
    // Samples where tshark's websocket reading is right (uncompressed, unfragmented).
    for (sample, port) in [("wss-python-aes128", 9012), ("wss-python-chacha", 9013)] {
        let capture = samples().join(format!("{sample}.pcap"));
        let keylog = samples().join(format!("{sample}.keylog"));
        let theirs = tshark_texts(&capture, port, &keylog);
        let (lines, _) = run(&capture, &["-m", "--keylog", keylog.to_str().unwrap()]);
        let ours: Vec<String> = of_type(&lines, "message")
            .iter()
            .filter_map(|m| m["text"].as_str().map(String::from))
            .collect();
        assert!(ours.len() >= 6, "{sample}: {ours:?}");
        assert_eq!(ours, theirs, "{sample}");
    }
}

#[test]
fn the_pcapng_copy_carries_its_secrets_to_tshark_and_back() {
    let test = "the_pcapng_copy_carries_its_secrets_to_tshark_and_back";
    for (sample, port) in [("wss-python-aes128", 9012), ("wss-node-chacha", 9015)] {
        let capture = samples().join(format!("{sample}.pcap"));
        let copy = tmp(&format!("{sample}-copy.pcapng"));
        let keylog = format!("samples/{sample}.keylog");
        let (direct, status) = run(
            &capture,
            &["-m", "--keylog", &keylog, "-w", copy.to_str().unwrap()],
        );
        assert_eq!(status, 0);
        // wsdump reads the copy without the key log: the same messages.
        let (again, _) = run(&copy, &["-m"]);
        assert_eq!(again, direct, "{sample}: the copy decodes as the original");
        assert!(direct.len() >= 8);
        if tshark(test).is_none() {
            continue;
        }
        // tshark, given no key log at all, decrypts the copy.
        let out = Command::new("tshark")
            .arg("-r")
            .arg(&copy)
            .args(["-d", &format!("tcp.port=={port},tls")])
            .args(["-d", &format!("tls.port=={port},http")])
            .args(["-Y", "websocket", "-T", "fields", "-e", "websocket.opcode"])
            .output()
            .unwrap();
        let frames = String::from_utf8(out.stdout).unwrap();
        let opcodes: Vec<&str> = frames.lines().filter(|l| !l.is_empty()).collect();
        let data_frames = opcodes
            .iter()
            .filter(|o| ["0", "1", "2"].contains(o))
            .count();
        assert!(
            data_frames >= 6,
            "{sample}: tshark decrypted {} frames: {frames}",
            opcodes.len()
        );
        if sample == "wss-python-aes128" {
            // Unfragmented, uncompressed: tshark's texts are the peers'.
            let texts = tshark_texts(&copy, port, Path::new("/dev/null"));
            let ours: Vec<String> = direct
                .iter()
                .filter_map(|m| m["text"].as_str().map(String::from))
                .collect();
            assert_eq!(texts, ours, "{sample}");
        }
    }
}

#[test]
fn tsharks_keylog_preference_is_taken_and_others_are_answered() {
    let capture = samples().join("wss-python-chacha.pcap");
    let (with_o, status) = run(
        &capture,
        &[
            "-m",
            "-o",
            "tls.keylog_file:samples/wss-python-chacha.keylog",
        ],
    );
    assert_eq!(status, 0);
    let (with_flag, _) = run(
        &capture,
        &["-m", "--keylog", "samples/wss-python-chacha.keylog"],
    );
    assert_eq!(with_o, with_flag);
    assert!(with_o.len() >= 6);
    let other = Command::new(BIN)
        .arg("-r")
        .arg(&capture)
        .args(["-o", "tcp.desegment_tcp_streams:TRUE"])
        .output()
        .unwrap();
    assert_eq!(other.status.code(), Some(2));
    let err = String::from_utf8_lossy(&other.stderr);
    assert!(err.contains("-o tls.keylog_file:FILE"), "{err}");
    // A key log that is not there is an error for a file (live, it may come later).
    let missing = Command::new(BIN)
        .arg("-r")
        .arg(&capture)
        .args(["--keylog", "/nonexistent/keys"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("--keylog /nonexistent/keys"));
}
