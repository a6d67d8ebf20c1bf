//! Precision regressions, each on a real capture recorded by samples/gen/precision.sh (real
//! servers: Python `websockets`, Node's HTTP server; clients that send what the case needs).
//! What each must decode comes from the clients' own logs (samples/precision/*.peer.log).

use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn sample(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples/precision")
        .join(name)
}

/// wsdump's JSON events for a capture, and its exit status.
fn run(capture: &str, args: &[&str]) -> (Vec<Value>, i32) {
    let out = Command::new(env!("CARGO_BIN_EXE_wsdump"))
        .arg("-r")
        .arg(sample(capture))
        .args(args)
        .args(["--json", "-v"])
        .output()
        .unwrap();
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ev = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (ev, out.status.code().unwrap())
}

fn of<'a>(ev: &'a [Value], ty: &str) -> Vec<&'a Value> {
    ev.iter().filter(|v| v["type"] == ty).collect()
}

/// What the client logged it sent, per message: (dir, opcode, text or close reason).
fn peer_log(name: &str) -> Vec<Value> {
    std::fs::read_to_string(sample(name))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v.get("dir").is_some())
        .collect()
}

fn summary(m: &Value) -> (String, String, String) {
    let text = m
        .get("text")
        .or_else(|| m.get("close_reason"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    (
        m["dir"].as_str().unwrap().to_string(),
        m["opcode"].as_str().unwrap().to_string(),
        text,
    )
}

/// RFC 9293 3.8.4 probes during 4.5 s of idle time: TCP's housekeeping, no data, no gap, no
/// violation (tshark marks the same four packets `tcp.analysis.keep_alive`).
#[test]
fn keep_alive_probes_are_not_data() {
    let (ev, status) = run("keepalive.pcap", &[]);
    assert_eq!(status, 0);
    let probes = ev.iter().filter(|v| v["role"] == "keep_alive").count();
    assert_eq!(probes, 4);
    assert!(of(&ev, "gap").is_empty(), "{:?}", of(&ev, "gap"));
    assert!(
        of(&ev, "violation").is_empty(),
        "{:?}",
        of(&ev, "violation")
    );
    let got: Vec<_> = of(&ev, "message").into_iter().map(summary).collect();
    let sent: Vec<_> = peer_log("keepalive.peer.log")
        .iter()
        .filter(|m| m["dir"] == "c2s")
        .map(summary)
        .collect();
    // Each c2s message the client logged, and the server's echo of each text (and of the close).
    for s in &sent {
        assert!(got.contains(s), "{s:?} not in {got:?}");
        let echo = ("s2c".to_string(), s.1.clone(), s.2.clone());
        assert!(got.contains(&echo), "{echo:?} not in {got:?}");
    }
    assert_eq!(got.len(), 2 * sent.len());
}

/// The capture begins at a keep-alive probe (one byte below the peer's ACK): not a gap at
/// offset 0, not data; the messages after the idle time decode.
#[test]
fn a_capture_that_starts_at_a_probe() {
    let (ev, _) = run("keepalive-probe.pcap", &[]);
    assert!(of(&ev, "gap").is_empty(), "{:?}", of(&ev, "gap"));
    assert!(of(&ev, "violation").is_empty());
    let texts: Vec<_> = of(&ev, "message")
        .into_iter()
        .filter(|m| m["opcode"] == "text")
        .map(|m| (m["dir"].as_str().unwrap(), m["text"].as_str().unwrap()))
        .collect();
    assert_eq!(
        texts,
        [
            ("c2s", "after the idle time"),
            ("s2c", "after the idle time")
        ]
    );
}

/// Cut after the 101 and joined mid-stream: `--port 47001` names the client's port, yet the
/// masked frames say 47001 is the client, and they win; the port only breaks ties.
#[test]
fn masking_decides_the_roles_not_the_port() {
    let mut seen = Vec::new();
    for args in [&[][..], &["--port", "47001"], &["--port", "9301"]] {
        let (ev, status) = run("keepalive-mid.pcap", args);
        assert_eq!(status, 0, "{args:?}");
        let msgs = of(&ev, "message");
        assert_eq!(msgs.len(), 6, "{args:?}: {msgs:?}");
        for m in &msgs {
            assert_eq!(m["client"], "127.0.0.1:47001", "{args:?}");
            assert_eq!(m["server"], "127.0.0.1:9301", "{args:?}");
        }
        let bad: Vec<_> = of(&ev, "violation")
            .into_iter()
            .filter(|v| v["kind"] == "unmasked_client_frame" || v["kind"] == "masked_server_frame")
            .collect();
        assert!(bad.is_empty(), "{args:?}: {bad:?}");
        seen.push(msgs.into_iter().map(summary).collect::<Vec<_>>());
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]), "{seen:?}");
}

/// A close of 2 + 200 bytes (RFC 6455 5.5 allows 125), sent to the Python server, which
/// answers 1002: the breach is reported and the close keeps its code and its whole reason.
#[test]
fn an_oversized_close_keeps_its_code_and_reason() {
    let (ev, _) = run("oversized-close.pcap", &[]);
    let sent = peer_log("oversized-close.peer.log");
    let close = of(&ev, "message")
        .into_iter()
        .find(|m| m["dir"] == "c2s" && m["opcode"] == "close")
        .expect("the client's close");
    assert_eq!(close["close_code"], 1000);
    assert_eq!(close["close_reason"], sent[1]["close_reason"]);
    assert_eq!(close["len"], 202);
    assert!(close.get("truncated").is_none_or(|t| t == false), "{close}");
    assert!(close.get("incomplete").is_none(), "{close}");
    let too_long: Vec<_> = of(&ev, "violation")
        .into_iter()
        .filter(|v| v["kind"] == "control_frame_too_long")
        .collect();
    assert_eq!(too_long.len(), 1);
    let reply = of(&ev, "message")
        .into_iter()
        .find(|m| m["dir"] == "s2c" && m["opcode"] == "close")
        .expect("the server's close");
    assert_eq!(reply["close_code"], 1002);
}

/// Five handshakes the server refuses (POST, no version, HTTP/1.0, `Upgrade: websockets`, no
/// key), each followed at once by a masked frame, then a valid one: only the valid
/// connection's messages decode; the bytes after each refusal are said not to be decoded.
#[test]
fn refused_upgrades_are_followed_by_nothing_decoded() {
    let (ev, status) = run("bad-upgrades.pcap", &[]);
    assert_eq!(status, 0);
    let msgs = of(&ev, "message");
    let conns: std::collections::BTreeSet<_> = msgs.iter().map(|m| m["conn"].as_u64()).collect();
    assert_eq!(conns.len(), 1, "{msgs:?}");
    let got: Vec<_> = msgs.into_iter().map(summary).collect();
    let want: Vec<(String, String, String)> = [
        ("c2s", "text", "after a valid handshake"),
        ("s2c", "text", "after a valid handshake"),
        ("c2s", "close", ""),
        ("s2c", "close", ""),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect();
    assert_eq!(got, want);
    let refused = of(&ev, "notice")
        .into_iter()
        .filter(|n| {
            n["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("the upgrade was refused"))
        })
        .count();
    assert_eq!(refused, 5);
    let statuses: Vec<_> = of(&ev, "http_response")
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [405, 400, 505, 426, 400, 101]);
    assert!(
        of(&ev, "violation").is_empty(),
        "{:?}",
        of(&ev, "violation")
    );
}

/// Docker's API style upgrade (`POST .../attach`, `Upgrade: tcp`, `101 UPGRADED`) on Node's
/// HTTP server, then raw bytes that look like websocket frames and an HTTP request line: no
/// message, no `http_malformed`, "switched to tcp: not decoded" both ways, exit status 1.
#[test]
fn an_upgrade_to_tcp_is_not_decoded() {
    let (ev, status) = run("upgrade-tcp.pcap", &[]);
    assert_eq!(status, 1, "nothing websocket was found");
    assert!(of(&ev, "message").is_empty(), "{:?}", of(&ev, "message"));
    assert!(
        of(&ev, "violation").is_empty(),
        "{:?}",
        of(&ev, "violation")
    );
    let notes: Vec<_> = of(&ev, "notice")
        .into_iter()
        .map(|n| (n["dir"].as_str().unwrap(), n["detail"].as_str().unwrap()))
        .collect();
    assert_eq!(
        notes,
        [
            ("c2s", "switched to tcp: not decoded"),
            ("s2c", "switched to tcp: not decoded")
        ]
    );
    assert_eq!(of(&ev, "http_response").len(), 2);
}

/// The SYN exchange cut away, the GET kept: with `--port 47001` (the client's port) the
/// request line still names the client, and the handshake and every message decode.
#[test]
fn the_request_line_names_the_client() {
    for args in [&[][..], &["--port", "47001"]] {
        let (ev, status) = run("keepalive-nosyn.pcap", args);
        assert_eq!(status, 0, "{args:?}");
        let req = of(&ev, "http_request");
        assert_eq!(req.len(), 1, "{args:?}");
        assert_eq!(req[0]["client"], "127.0.0.1:47001", "{args:?}");
        assert_eq!(of(&ev, "http_response")[0]["upgraded"], true, "{args:?}");
        let msgs = of(&ev, "message");
        assert_eq!(msgs.len(), 6, "{args:?}");
        assert!(msgs.iter().all(|m| m.get("resync").is_none()), "{args:?}");
        assert!(of(&ev, "violation").is_empty(), "{args:?}");
    }
}
