//! Every sample's messages, as wsdump decodes them, must match byte for byte what the peers
//! that made the capture logged sending and receiving (samples/*.peer.jsonl). A sample with a
//! key log (NAME.keylog) is wss: decoded with `--keylog`; tls-wss, whose NAME.peer.jsonl is
//! what wsdump sees without the keys, has what was sent inside TLS in NAME.decrypted.jsonl.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// The fields the peers can vouch for.
const FIELDS: [&str; 10] = [
    "client",
    "server",
    "dir",
    "opcode",
    "len",
    "compressed",
    "text",
    "base64",
    "close_code",
    "close_reason",
];

fn project(v: &Value) -> BTreeMap<&'static str, Value> {
    FIELDS
        .iter()
        .filter_map(|f| v.get(*f).map(|x| (*f, x.clone())))
        .collect()
}

fn decoded(capture: &Path) -> Vec<Value> {
    decoded_with(capture, None)
}

fn decoded_with(capture: &Path, keylog: Option<&Path>) -> Vec<Value> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wsdump"));
    cmd.arg("-r").arg(capture).args(["--json", "-m"]);
    if let Some(k) = keylog {
        cmd.arg("--keylog").arg(k);
    }
    let out = cmd.output().unwrap();
    // 0: websocket found; 1: none (the TLS sample). Never 2, never anything on stderr.
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}: {:?}",
        capture.display(),
        out.status
    );
    assert!(
        out.stderr.is_empty(),
        "{}: {}",
        capture.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("valid JSON line"))
        .collect()
}

/// Groups messages by connection and direction: the order within each is the wire order,
/// across them it depends on when each side's log was written.
fn by_flow(msgs: &[Value]) -> BTreeMap<String, Vec<BTreeMap<&'static str, Value>>> {
    let mut m: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for v in msgs {
        let k = format!("{} {} {}", v["client"], v["server"], v["dir"]);
        m.entry(k).or_default().push(project(v));
    }
    m
}

#[test]
fn every_sample_matches_its_peers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    let mut checked = 0;
    let mut messages = 0;
    for entry in std::fs::read_dir(&root).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let Some(stem) = name.strip_suffix(".peer.jsonl") else {
            continue;
        };
        let capture = ["pcap", "pcapng"]
            .iter()
            .map(|e| root.join(format!("{stem}.{e}")))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("no capture for {name}"));
        let keylog = root.join(format!("{stem}.keylog"));
        let keylog = keylog.exists().then_some(keylog);
        let inside = root.join(format!("{stem}.decrypted.jsonl"));
        let mut runs = vec![(path.clone(), keylog.clone())];
        if inside.exists() {
            // What a reader without the keys sees, and what the keys open.
            runs = vec![(path.clone(), None), (inside, keylog)];
        }
        for (truth, keylog) in runs {
            messages += check(stem, &truth, &capture, keylog.as_deref());
        }
        checked += 1;
    }
    assert!(checked >= 13, "only {checked} samples with peer logs");
    assert!(messages > 180, "only {messages} messages checked");
}

/// Compares the capture's messages with a peers' log; returns how many there were.
fn check(stem: &str, truth: &Path, capture: &Path, keylog: Option<&Path>) -> usize {
    {
        let expected: Vec<Value> = std::fs::read_to_string(truth)
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let got = decoded_with(capture, keylog);
        let stem = format!("{stem} (keys: {})", keylog.is_some());
        assert_eq!(got.len(), expected.len(), "{stem}: number of messages");
        let (e, g) = (by_flow(&expected), by_flow(&got));
        assert_eq!(
            e.keys().collect::<Vec<_>>(),
            g.keys().collect::<Vec<_>>(),
            "{stem}: flows"
        );
        for (k, ev) in &e {
            let gv = &g[k];
            for (i, (a, b)) in ev.iter().zip(gv).enumerate() {
                assert_eq!(a, b, "{stem}: flow {k}, message {i}");
            }
        }
        for v in &got {
            for flag in ["incomplete", "resync", "truncated"] {
                assert!(
                    v.get(flag).is_none(),
                    "{stem}: a complete capture gave {flag}: {v}"
                );
            }
        }
        got.len()
    }
}

/// The reference capture's messages, including their timestamps, as recorded in
/// ../shared/captures/workerman-chat (checked against the browsers' own logs).
#[test]
fn workerman_reference_timestamps() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    let got = decoded(&root.join("workerman-chat.pcap"));
    let expected: Vec<Value> = std::fs::read_to_string(root.join("workerman-chat.peer.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(g["ts"], e["ts"]);
        assert_eq!(project(g), project(e));
    }
}
