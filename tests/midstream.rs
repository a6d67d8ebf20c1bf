//! Captures that start mid-conversation or lost packets, cut from the real samples by
//! samples/gen/cut.py (see samples/README.md). Each test states which messages must decode,
//! which must be marked, and that nothing undecodable is shown as text.

use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn run(capture: &str, port: &str) -> Vec<Value> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    let out = Command::new(env!("CARGO_BIN_EXE_wsdump"))
        .arg("-r")
        .arg(root.join(capture))
        .args(["--port", port, "--json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn messages(ev: &[Value]) -> Vec<&Value> {
    ev.iter().filter(|v| v["type"] == "message").collect()
}

fn peer(name: &str) -> Vec<Value> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    std::fs::read_to_string(root.join(name))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// workerman-chat without its first 18 packets: both handshakes and the logins are gone.
#[test]
fn started_after_the_handshake() {
    let ev = run("cut-workerman-late.pcap", "7272");
    let got = messages(&ev);
    let all = peer("workerman-chat.peer.jsonl");
    // Packet 19 (07:44:12.560483) onwards: every message from then on.
    let expected: Vec<&Value> = all
        .iter()
        .filter(|e| e["ts"].as_str().unwrap() >= "2026-11-25T07:44:12.560483Z")
        .collect();
    assert_eq!(expected.len(), 16);
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(&expected) {
        for f in [
            "client",
            "server",
            "dir",
            "opcode",
            "len",
            "text",
            "close_code",
        ] {
            assert_eq!(g[f], e[f], "field {f} of {g}");
        }
        assert!(g.get("incomplete").is_none());
    }
    // The first message of each direction of each connection is marked; each direction is
    // trusted again after one clean frame.
    let marked = got.iter().filter(|m| m["resync"] == true).count();
    assert!(marked >= 4, "{marked} marked");
    assert!(
        got.iter().any(|m| m.get("resync").is_none()),
        "trust never came back"
    );
    assert!(
        ev.iter()
            .any(|v| v["type"] == "notice" && v["kind"] == "mid_stream")
    );
}

/// workerman-chat with packets 23 and 29 removed: one message each way never captured.
#[test]
fn single_packets_lost() {
    let ev = run("cut-workerman-loss.pcap", "7272");
    let gaps: Vec<&Value> = ev.iter().filter(|v| v["type"] == "gap").collect();
    assert_eq!(gaps.len(), 2);
    assert_eq!(
        (gaps[0]["len"].as_u64(), gaps[0]["reason"].as_str()),
        (Some(92), Some("not_captured"))
    );
    assert_eq!(
        (gaps[1]["len"].as_u64(), gaps[1]["reason"].as_str()),
        (Some(206), Some("not_captured"))
    );
    let got = messages(&ev);
    let all = peer("workerman-chat.peer.jsonl");
    // Exactly the two lost messages are missing; everything else decodes byte for byte.
    assert_eq!(got.len(), all.len() - 2);
    let lost = ["\"hi, all !\"}", "\\ud83d\\udc4b"];
    let key = |m: &Value| format!("{} {} {}", m["client"], m["dir"], m["text"]);
    let texts: Vec<String> = got
        .iter()
        .filter(|m| m["text"].is_string())
        .map(|m| key(m))
        .collect();
    for e in &all {
        let Some(t) = e["text"].as_str() else {
            continue;
        };
        let gone = (e["client"] == "127.0.0.1:48832" && e["dir"] == "c2s" && t.ends_with(lost[0]))
            || (e["client"] == "127.0.0.1:48832" && e["dir"] == "s2c" && t.contains(lost[1]));
        assert_eq!(!texts.contains(&key(e)), gone, "{t}");
    }
    // After each gap the next message is marked.
    let after_gap = got
        .iter()
        .find(|m| m["client"] == "127.0.0.1:48832" && m["dir"] == "c2s" && m["resync"] == true);
    assert!(after_gap.is_some());
}

/// python-deflate (permessage-deflate, context takeover) from packet 31: in the middle of a
/// 100 KB compressed frame in each direction's history.
#[test]
fn compressed_stream_cut_mid_frame() {
    let ev = run("cut-deflate-midframe.pcap", "9001");
    let got = messages(&ev);
    let summary: Vec<(String, String, bool)> = got
        .iter()
        .map(|m| {
            (
                m["dir"].as_str().unwrap().to_string(),
                m["opcode"].as_str().unwrap().to_string(),
                m.get("incomplete").is_some(),
            )
        })
        .collect();
    let s = |d: &str, o: &str, inc: bool| (d.to_string(), o.to_string(), inc);
    // Per direction, in order: a frame found by resynchronisation is reported when the
    // evidence for it arrives (a compressed frame that cannot be inflated alone waits for
    // the next frame of its direction), so the two directions may interleave differently.
    let per_dir = |v: &[(String, String, bool)], d: &str| -> Vec<(String, String, bool)> {
        v.iter().filter(|x| x.0 == d).cloned().collect()
    };
    let expected = vec![
        s("s2c", "text", true),
        s("c2s", "ping", false),
        s("s2c", "pong", false),
        s("c2s", "text", true),
        s("s2c", "ping", false),
        s("c2s", "pong", false),
        s("s2c", "text", true),
        s("c2s", "close", false),
        s("s2c", "close", false),
    ];
    for d in ["c2s", "s2c"] {
        assert_eq!(per_dir(&summary, d), per_dir(&expected, d), "{d}");
    }
    // The client's bytes before the ping are the tail of a frame: skipped and reported.
    assert!(
        ev.iter()
            .any(|v| v["type"] == "notice" && v["kind"] == "resync" && v["dir"] == "c2s")
    );
    for m in &got {
        if m.get("incomplete").is_some() {
            // Never shown as text: only what inflated, as base64, and a true prefix of it.
            assert!(m.get("text").is_none(), "{m}");
            assert_eq!(m["incomplete"], "inflate_failed");
        }
    }
    assert_eq!(got[1]["base64"], "Y2xpZW50LXBpbmctAQID");
    assert_eq!(got[7]["close_code"], 1000);
    assert_eq!(got[7]["close_reason"], "bye");
}

/// sll2-any (permessage-deflate without context takeover) from packet 10: no handshake, yet
/// every compressed message inflates, because none refers to an earlier one.
#[test]
fn no_context_takeover_decodes_everything_mid_stream() {
    let ev = run("cut-sll2-nocontext.pcap", "9004");
    let got = messages(&ev);
    let all = peer("sll2-any.peer.jsonl");
    // The first two messages (one each way) went with packets 1-9.
    let expected = &all[2..];
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(expected) {
        for f in [
            "dir",
            "opcode",
            "len",
            "compressed",
            "text",
            "base64",
            "close_code",
        ] {
            assert_eq!(g[f], e[f], "field {f} of {g}");
        }
        assert!(g.get("incomplete").is_none(), "{g}");
    }
    assert!(got.iter().take(2).all(|m| m["resync"] == true));
    assert!(got.iter().skip(4).all(|m| m.get("resync").is_none()));
}

/// node-fragmented without packet 34: the middle 32768 bytes of the 65535-byte text message.
#[test]
fn gap_inside_a_message() {
    let ev = run("cut-node-gap.pcap", "9002");
    let gaps: Vec<&Value> = ev.iter().filter(|v| v["type"] == "gap").collect();
    assert_eq!(gaps.len(), 1);
    assert_eq!(gaps[0]["len"], 32768);
    let got = messages(&ev);
    let all = peer("node-fragmented.peer.jsonl");
    assert_eq!(got.len(), all.len());
    let hit: Vec<&&Value> = got
        .iter()
        .filter(|m| m.get("incomplete").is_some())
        .collect();
    assert_eq!(hit.len(), 1);
    let m = hit[0];
    assert_eq!(
        (m["len"].as_u64(), m["incomplete"].as_str()),
        (Some(65535), Some("gap"))
    );
    assert_eq!(m["missing"], serde_json::json!([[32760, 65528]]));
    // The captured bytes are exactly the sent message without the missing range.
    let sent = all
        .iter()
        .find(|e| e["dir"] == "c2s" && e["len"] == 65535)
        .unwrap()["text"]
        .as_str()
        .unwrap();
    let expect = format!("{}{}", &sent[..32760], &sent[65528..]);
    assert_eq!(m["text"].as_str().unwrap(), expect);
    // Frame boundaries survived the gap: nothing after it is marked.
    assert!(got.iter().all(|m| m.get("resync").is_none()));
}

mod common;

/// No SYN, no `--port`, and the client's port (5000) is lower than the server's (40000), so
/// the port guess is wrong: the masked first frame names the client.
#[test]
fn masked_frames_identify_the_client() {
    use common::Capture;
    let client = ([10, 0, 0, 7], 5000);
    let server = ([10, 0, 0, 8], 40000);
    let mut c = Capture::mid_stream(client, server);
    c.frame(true, 1, b"hello from the client", None);
    c.frame(false, 1, b"hello from the server", None);
    c.frame(true, 8, &[0x03, 0xe8], None);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let file = dir.join("midstream-roles.pcap");
    std::fs::write(&file, c.pcap(wsdump::capture::LinkType::RAW)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_wsdump"))
        .arg("-r")
        .arg(&file)
        .args(["--json", "-m"])
        .output()
        .unwrap();
    let got: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(got.len(), 3);
    for m in &got {
        assert_eq!(m["client"], "10.0.0.7:5000");
        assert_eq!(m["server"], "10.0.0.8:40000");
    }
    assert_eq!(
        (got[0]["dir"].as_str(), got[0]["text"].as_str()),
        (Some("c2s"), Some("hello from the client"))
    );
    assert_eq!(
        (got[1]["dir"].as_str(), got[1]["text"].as_str()),
        (Some("s2c"), Some("hello from the server"))
    );
    assert_eq!(got[2]["close_code"], 1000);
}
