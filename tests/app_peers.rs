//! The application-protocol readers (`wsdump::app`) on real peers' traffic: each capture in
//! samples/app/ was recorded on loopback with the protocol's reference implementation, whose
//! peers logged every packet they sent and received (samples/app/NAME.peer.jsonl, see
//! samples/app/README.md). The websocket messages are taken from the capture as wsdump
//! decodes it today (`--json`), claimed and read with `app::claim` / `Annotator::read`, and
//! the readings are checked against the peers' logs.

use base64::Engine;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use wsdump::app::{self, AppMessage, Pairs, Reading, Side};

struct Msg {
    side: Side,
    binary: bool,
    bytes: Vec<u8>,
    ts: i128,
    /// What the engine read in it (`--json`'s `app` object), if anything.
    app: Option<Value>,
}

/// One websocket connection of a capture: its upgrade path, negotiated subprotocol and
/// data messages, in wire order.
struct Conn {
    path: String,
    subprotocol: Option<String>,
    msgs: Vec<Msg>,
}

fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

/// Nanoseconds since midnight of an RFC 3339 `ts` (enough to order and subtract).
fn nanos(ts: &str) -> i128 {
    let t = ts.split('T').nth(1).unwrap().trim_end_matches('Z');
    let mut it = t.split(':');
    let h: i128 = it.next().unwrap().parse().unwrap();
    let m: i128 = it.next().unwrap().parse().unwrap();
    let s: f64 = it.next().unwrap().parse().unwrap();
    ((h * 60 + m) * 60) * 1_000_000_000 + (s * 1e9) as i128
}

fn events(capture: &Path) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_wsdump"))
        .arg("-r")
        .arg(capture)
        .arg("--json")
        .output()
        .unwrap();
    // 0: websocket found; 1: none (the TLS sample).
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}: {:?}",
        capture.display(),
        out.status
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn connections(capture: &str) -> Vec<Conn> {
    let mut conns: Vec<(u64, Conn)> = Vec::new();
    for e in events(Path::new(capture)) {
        let id = e["conn"].as_u64().unwrap_or(0);
        let i = match conns.iter().position(|(c, _)| *c == id) {
            Some(i) => i,
            None => {
                conns.push((
                    id,
                    Conn {
                        path: String::new(),
                        subprotocol: None,
                        msgs: Vec::new(),
                    },
                ));
                conns.len() - 1
            }
        };
        let c = &mut conns[i].1;
        match e["type"].as_str() {
            Some("http_request") if e["websocket_upgrade"] == true => {
                c.path = e["path"].as_str().unwrap().to_string();
            }
            Some("http_response") => {
                c.subprotocol = e["subprotocol"].as_str().map(str::to_string);
            }
            Some("message") => {
                let binary = match e["opcode"].as_str() {
                    Some("text") => false,
                    Some("binary") => true,
                    _ => continue,
                };
                let bytes = match (e["text"].as_str(), e["base64"].as_str()) {
                    (Some(t), _) => t.as_bytes().to_vec(),
                    (_, Some(b)) => b64(b),
                    _ => panic!("message without payload: {e}"),
                };
                let side = if e["dir"] == "c2s" {
                    Side::Client
                } else {
                    Side::Server
                };
                let ts = nanos(e["ts"].as_str().unwrap());
                let app = e.get("app").cloned();
                c.msgs.push(Msg {
                    side,
                    binary,
                    bytes,
                    ts,
                    app,
                });
            }
            _ => {}
        }
    }
    conns
        .into_iter()
        .map(|(_, c)| c)
        // Websocket connections only (SockJS asks for /info over plain HTTP first).
        .filter(|c| !c.path.is_empty())
        .collect()
}

fn message(m: &Msg) -> AppMessage<'_> {
    AppMessage {
        side: m.side,
        text: if m.binary {
            None
        } else {
            std::str::from_utf8(&m.bytes).ok()
        },
        payload: &m.bytes,
        binary: m.binary,
    }
}

/// Claims the connection (trying its first messages in turn) and reads every message:
/// the protocol's name and each message's reading, with its side.
fn read_all(c: &Conn) -> (&'static str, Vec<(Side, Option<Reading>)>) {
    let mut annotator = None;
    let mut out = Vec::new();
    for m in &c.msgs {
        let am = message(m);
        if annotator.is_none() {
            annotator = app::claim(c.subprotocol.as_deref(), &c.path, &am);
        }
        let r = annotator.as_mut().and_then(|a| a.read(&am));
        out.push((m.side, r));
    }
    let a = annotator.expect("claimed");
    assert!(a.memory() < 200_000, "{}", a.memory());
    (a.name(), out)
}

fn log(name: &str) -> Vec<Value> {
    std::fs::read_to_string(format!("samples/app/{name}.peer.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Pairs every reading that pairs: every response must find its request (a stream's later
/// responses, GraphQL `next` after `next`, find it answered already). The number of
/// requests answered.
fn check_pairing(c: &Conn, readings: &[(Side, Option<Reading>)]) -> usize {
    let mut pairs = Pairs::new(64);
    let mut asked = std::collections::HashSet::new();
    let mut answered = 0;
    for (m, (_, r)) in c.msgs.iter().zip(readings) {
        if let Some(p) = r.as_ref().and_then(|r| r.pairing.as_ref()) {
            if p.1 {
                asked.insert(p.0.clone());
            } else {
                assert!(asked.contains(&p.0), "response without request: {p:?}");
            }
            if let Some(lat) = pairs.observe(p, m.ts) {
                assert!(lat >= 0);
                answered += 1;
            }
        }
    }
    answered
}

/// For peers that logged their websocket messages themselves (samples/gen/app/wslog.js):
/// the capture's messages are, per direction, what the sender logged sending (and the
/// receiver receiving). Returns each message's logged JSON payload.
fn logged_json(c: &Conn, peers: &[Value]) -> Vec<Value> {
    let mut per_side = [Vec::new(), Vec::new()];
    for (i, (peer, dir)) in [("client", "sent"), ("server", "sent")].iter().enumerate() {
        per_side[i] = peers
            .iter()
            .filter(|p| p["peer"] == *peer && p["dir"] == *dir)
            .map(|p| p["text"].as_str().unwrap().to_string())
            .collect();
        let received: Vec<String> = peers
            .iter()
            .filter(|p| p["peer"] != *peer && p["dir"] == "recv")
            .map(|p| p["text"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(per_side[i], received);
    }
    let mut next = [0, 0];
    c.msgs
        .iter()
        .map(|m| {
            let i = usize::from(m.side == Side::Server);
            let t = &per_side[i][next[i]];
            next[i] += 1;
            assert_eq!(t.as_bytes(), m.bytes.as_slice());
            serde_json::from_str(t).unwrap()
        })
        .collect()
}

#[test]
fn socket_io_v4_peers() {
    socket_io_peers("socketio", 4);
}

/// Socket.IO 2 on Engine.IO 3: the client pings, binary messages start with a 4 byte, and
/// a CONNECT's query rides in its namespace.
#[test]
fn socket_io_v2_peers() {
    socket_io_peers("socketio2", 3);
}

fn socket_io_peers(sample: &str, eio: u8) {
    let conns = connections(&format!("samples/app/{sample}.pcap"));
    assert_eq!(conns.len(), 1);
    let c = &conns[0];
    assert!(c.path.contains(&format!("EIO={eio}")), "{}", c.path);
    let (name, readings) = read_all(c);
    assert_eq!(name, "socket.io");
    let peers = log(sample);
    // v4: the server pings; v3: the client.
    let pinger = if eio == 4 { Side::Server } else { Side::Client };

    // Every Engine.IO packet a peer received is one message from the other side, in order.
    for (side, receiver) in [(Side::Server, "client"), (Side::Client, "server")] {
        let got: Vec<&Reading> = readings
            .iter()
            .filter(|(s, _)| *s == side)
            .map(|(_, r)| r.as_ref().expect("every message is read"))
            .collect();
        let want: Vec<&Value> = peers
            .iter()
            .filter(|p| p["peer"] == receiver && p["dir"] == "recv" && p.get("eio").is_some())
            .collect();
        assert_eq!(got.len(), want.len(), "{side:?}");
        for (r, p) in got.iter().zip(&want) {
            let ctx = format!("{p} / {} / {}", r.text, r.json);
            match (p["eio"].as_str().unwrap(), &p["data"]) {
                ("open", Value::String(d)) => {
                    let hs: Value = serde_json::from_str(d).unwrap();
                    assert_eq!(r.json["type"], "open", "{ctx}");
                    assert_eq!(r.json["handshake"], hs, "{ctx}");
                    // A session id is no name a person knows the connection by.
                    assert_eq!(r.names_connection, None, "{ctx}");
                }
                (ty @ ("ping" | "pong"), _) => {
                    assert!(r.heartbeat && r.text == ty, "{ctx}");
                }
                ("message", Value::String(d)) => {
                    assert_eq!(r.json["protocol"], "socket.io", "{ctx}");
                    assert!(r.json.get("layer").is_none(), "a Socket.IO packet: {ctx}");
                    // The namespace as the encoded packet has it.
                    let nsp = d
                        .find('/')
                        .filter(|&i| i <= 3)
                        .map_or("/", |i| &d[i..i + d[i..].find([',', '?']).unwrap()]);
                    assert_eq!(r.json["namespace"], nsp, "{ctx}");
                }
                ("message", Value::Object(b)) => {
                    let len = b64(b["binary"].as_str().unwrap()).len();
                    assert_eq!(r.json["type"], "attachment", "{ctx}");
                    assert_eq!(r.json["len"], len, "{ctx}");
                }
                _ => panic!("unexpected packet {ctx}"),
            }
        }
        let hb = if side == pinger { "ping" } else { "pong" };
        assert!(got.iter().any(|r| r.heartbeat && r.text == hb));
        assert!(!got.iter().any(|r| r.heartbeat && r.text != hb));
    }

    // Every event a peer emitted is read with its namespace, name and arguments; binary
    // arguments are placeholders followed by attachments of their length.
    for (side, sender) in [(Side::Client, "client"), (Side::Server, "server")] {
        let got: Vec<&Reading> = readings
            .iter()
            .filter(|(s, _)| *s == side)
            .filter_map(|(_, r)| r.as_ref())
            .filter(|r| matches!(r.json["type"].as_str(), Some("event" | "binary_event")))
            .collect();
        let want: Vec<&Value> = peers
            .iter()
            .filter(|p| p["peer"] == sender && p["dir"] == "sent" && p.get("event").is_some())
            .filter(|p| p["event"] != "ack")
            .collect();
        assert_eq!(got.len(), want.len(), "{sender}");
        for (r, p) in got.iter().zip(&want) {
            assert_eq!(r.json["namespace"], p["nsp"], "{}", r.text);
            assert_eq!(r.json["event"], p["event"], "{}", r.text);
            let args = r.json["args"].as_array().unwrap();
            let logged = p["args"].as_array().unwrap();
            assert_eq!(args.len(), logged.len(), "{}", r.text);
            for (a, l) in args.iter().zip(logged) {
                if l.get("binary").is_some() {
                    assert_eq!(a["_placeholder"], true, "{}", r.text);
                } else {
                    assert_eq!(a, l, "{}", r.text);
                }
            }
        }
        // Acks: the arguments the peer acked with, paired with the event that asked.
        let acks: Vec<&Reading> = readings
            .iter()
            .filter(|(s, _)| *s == side)
            .filter_map(|(_, r)| r.as_ref())
            .filter(|r| r.json["type"] == "ack")
            .collect();
        let want: Vec<&Value> = peers
            .iter()
            .filter(|p| p["peer"] == sender && p["dir"] == "sent" && p["event"] == "ack")
            .collect();
        assert_eq!(acks.len(), want.len());
        for (r, p) in acks.iter().zip(&want) {
            assert_eq!(r.json["args"], p["args"], "{}", r.text);
            assert!(r.pairing.as_ref().is_some_and(|k| !k.1));
        }
    }
    // The readings as people see them.
    let texts: Vec<&str> = readings
        .iter()
        .filter_map(|(_, r)| r.as_ref().map(|r| r.text.as_str()))
        .collect();
    let connect = if eio == 4 {
        r#"/chat connect {"token":"abc"}"#
    } else {
        "/chat connect ?token=abc"
    };
    for t in [
        connect,
        r#"event "hello" ["world",42,{"nested":[true,null]}]"#,
        r#"/chat event "message" ["hi, all !"] ack 0"#,
        r#"/chat ack 0 ["got hi, all !"]"#,
        r#"/chat event "upload" ["file.bin","<binary 0>"] ack 1 (+1 binary) complete: 15 bytes"#,
        r#"/chat event "blob" ["<binary 0>","<binary 1>"] (+2 binary) complete: 5 + 4 bytes"#,
        "/chat disconnect",
    ] {
        assert!(texts.contains(&t), "{t} not in {texts:#?}");
    }
    // Two acks and every ping answered.
    let pings = readings
        .iter()
        .filter(|(s, r)| *s == pinger && r.as_ref().is_some_and(|r| r.heartbeat))
        .count();
    assert!(pings >= 2);
    assert_eq!(check_pairing(c, &readings), 2 + pings);
}

/// The MQTT packets of a direction's readings, in order (parts of packets left out).
fn mqtt_packets(readings: &[(Side, Option<Reading>)], side: Side) -> Vec<(Value, bool)> {
    let mut out = Vec::new();
    for (s, r) in readings {
        let Some(r) = r.as_ref().filter(|_| *s == side) else {
            continue;
        };
        match r.json.get("packets") {
            Some(Value::Array(ps)) => out.extend(ps.iter().map(|p| (p.clone(), false))),
            _ if r.json["type"] == "part" => {}
            _ => out.push((r.json.clone(), r.heartbeat)),
        }
    }
    out
}

#[test]
fn mqtt_311_peers() {
    mqtt_peers("mqtt", "3.1.1", "wsdump-peer", 10);
}

/// MQTT 5.0: mqttools' broker and mqtt.js; v5 properties (content type, response topic,
/// correlation data, user properties) skipped exactly, reason codes read.
#[test]
fn mqtt_5_peers() {
    mqtt_peers("mqtt5", "5.0", "wsdump-v5", 7);
}

fn mqtt_peers(sample: &str, version: &str, client_id: &str, publishes_seen: usize) {
    let conns = connections(&format!("samples/app/{sample}.pcap"));
    assert_eq!(conns.len(), 1);
    let c = &conns[0];
    assert_eq!(c.subprotocol.as_deref(), Some("mqtt"));
    let (name, readings) = read_all(c);
    assert_eq!(name, "mqtt");
    let peers = log(sample);
    // mqtt.js writes a packet's fields as separate websocket messages: most are parts.
    assert!(c.msgs.len() > 40, "{}", c.msgs.len());
    for (r, m) in readings.iter().zip(&c.msgs) {
        assert!(r.1.is_some(), "every message is read: {:02x?}", &m.bytes);
    }
    let names: Vec<&str> = readings
        .iter()
        .filter_map(|(_, r)| r.as_ref()?.names_connection.as_deref())
        .collect();
    assert_eq!(names, [client_id]);
    for (_, r) in readings.iter().filter_map(|(s, r)| Some((s, r.as_ref()?))) {
        assert!(!r.text.contains("not-shown") && !r.json.to_string().contains("not-shown"));
    }

    // What the client sent (its CONNECT as the broker received it), and what it received.
    let sent: Vec<&Value> = peers
        .iter()
        .filter(|p| {
            (p["peer"] == "client" && p["dir"] == "sent")
                || (p["peer"] == "broker" && p["dir"] == "recv")
        })
        .collect();
    let received: Vec<&Value> = peers
        .iter()
        .filter(|p| p["peer"] == "client" && p["dir"] == "recv")
        .collect();
    let mut publishes = 0;
    for (side, want) in [(Side::Client, sent), (Side::Server, received)] {
        let got = mqtt_packets(&readings, side);
        let cmds: Vec<String> = got
            .iter()
            .map(|(g, _)| g["type"].as_str().unwrap().to_string())
            .collect();
        let logged: Vec<&str> = want.iter().map(|p| p["cmd"].as_str().unwrap()).collect();
        assert_eq!(cmds, logged, "{side:?}");
        for ((g, heartbeat), p) in got.iter().zip(&want) {
            let ctx = format!("{p} / {g}");
            if let Some(id) = p
                .get("messageId")
                .filter(|_| p["qos"] != 0 || p["cmd"] != "publish")
            {
                assert_eq!(&g["packet_id"], id, "{ctx}");
            }
            assert_eq!(
                *heartbeat,
                p["cmd"].as_str().unwrap().starts_with("ping"),
                "{ctx}"
            );
            match p["cmd"].as_str().unwrap() {
                "connect" => {
                    assert_eq!(g["client_id"], p["clientId"], "{ctx}");
                    assert_eq!(g.get("username"), p.get("username"), "{ctx}");
                    assert_eq!(g["keep_alive"], p["keepalive"], "{ctx}");
                    assert_eq!(g["clean_session"], p["clean"], "{ctx}");
                    assert_eq!(g["version"], version, "{ctx}");
                }
                "connack" => {
                    let code = p.get("returnCode").or(p.get("reasonCode")).unwrap();
                    assert_eq!(&g["code"], code, "{ctx}");
                    assert_eq!(g["session_present"], p["sessionPresent"], "{ctx}");
                }
                "publish" => {
                    publishes += 1;
                    assert_eq!(g["topic"], p["topic"], "{ctx}");
                    assert_eq!(g["qos"], p["qos"], "{ctx}");
                    assert_eq!(g["retain"], p["retain"], "{ctx}");
                    if let Some(u) = p["properties"].get("userProperties") {
                        assert_eq!(&g["user_properties"], u, "{ctx}");
                    }
                    // mqtt.js writes the payload as one websocket message: even the 100 KB
                    // one is whole (a packet cut over messages past 64 KiB would be read
                    // from its first part).
                    assert_eq!(g["payload_len"], p["len"], "{ctx}");
                    let preview = g["payload"].as_str().unwrap();
                    if let Some(t) = p["text"].as_str() {
                        assert_eq!(preview, json!(t).to_string(), "{ctx}");
                    } else if let Some(b) = p["base64"].as_str() {
                        let hex: String = b64(b).iter().map(|x| format!("{x:02x}")).collect();
                        assert_eq!(preview, format!("0x{hex}"), "{ctx}");
                    }
                }
                "subscribe" => assert_eq!(g["topics"], p["subscriptions"], "{ctx}"),
                "suback" => assert_eq!(g["codes"], p["granted"], "{ctx}"),
                "unsubscribe" => assert_eq!(g["topics"], p["unsubscriptions"], "{ctx}"),
                // v5: a reason code per topic filter (mqtt.js calls them granted).
                "unsuback" if version == "5.0" => assert_eq!(g["codes"], p["granted"], "{ctx}"),
                "disconnect" => {
                    if let Some(code) = p.get("reasonCode") {
                        assert_eq!(&g["code"], code, "{ctx}");
                    }
                }
                _ => {}
            }
        }
    }
    assert_eq!(publishes, publishes_seen);
    if version == "5.0" {
        let texts: Vec<&str> = readings
            .iter()
            .filter_map(|(_, r)| r.as_ref().map(|r| r.text.as_str()))
            .collect();
        for t in [
            "DISCONNECT malformed packet",
            r#"PUBLISH v5/bin qos0 [unit=C, room=lab] "with user properties""#,
            r#"PUBLISH v5/props qos0 "{\"t\":21.5}""#,
        ] {
            assert!(texts.iter().any(|x| x.contains(t)), "{t} not in {texts:#?}");
        }
    }
    // PUBACK/PUBREC/PUBCOMP (both ways), SUBACK, UNSUBACK and PINGRESPs find their requests.
    let pings = peers.iter().filter(|p| p["cmd"] == "pingresp").count();
    assert!(pings >= 1);
    let acks = peers
        .iter()
        .filter(|p| {
            matches!(
                p["cmd"].as_str(),
                Some("puback" | "pubrec" | "pubcomp" | "suback" | "unsuback")
            )
        })
        .count();
    assert_eq!(check_pairing(c, &readings), acks + pings);
}

#[test]
fn graphql_transport_ws_peers() {
    graphql_peers(
        "graphql",
        "graphql-transport-ws",
        &[
            ("subscription", Some("OnCount")),
            ("query", Some("Hello")),
            ("query", None),
        ],
    );
}

/// The legacy subscriptions-transport-ws protocol (subprotocol `graphql-ws`): start / data /
/// complete / stop, `ka` keep-alives, connection_terminate.
#[test]
fn graphql_legacy_peers() {
    graphql_peers(
        "graphql-legacy",
        "graphql-ws",
        &[
            ("subscription", Some("OnCount")),
            ("query", Some("Hello")),
            ("query", None),
            ("subscription", Some("Long")),
        ],
    );
}

fn graphql_peers(sample: &str, protocol: &str, want_ops: &[(&str, Option<&str>)]) {
    let conns = connections(&format!("samples/app/{sample}.pcap"));
    assert_eq!(conns.len(), 1);
    let c = &conns[0];
    assert_eq!(c.subprotocol.as_deref(), Some(protocol));
    let (name, readings) = read_all(c);
    assert_eq!(name, protocol);
    let logged = logged_json(c, &log(sample));
    let mut ops = Vec::new();
    let mut heartbeats = 0;
    for ((_, r), v) in readings.iter().zip(&logged) {
        let r = r.as_ref().unwrap_or_else(|| panic!("unread: {v}"));
        let ctx = format!("{v} / {} / {}", r.text, r.json);
        assert_eq!(r.json["protocol"], protocol, "{ctx}");
        assert_eq!(r.json["type"], v["type"], "{ctx}");
        assert_eq!(r.json.get("id"), v.get("id"), "{ctx}");
        let beat = matches!(v["type"].as_str(), Some("ping" | "pong" | "ka"));
        assert_eq!(r.heartbeat, beat, "{ctx}");
        heartbeats += usize::from(beat);
        match v["type"].as_str().unwrap() {
            "subscribe" | "start" => {
                assert_eq!(r.json["query"], v["payload"]["query"], "{ctx}");
                assert_eq!(
                    r.json.get("variables"),
                    v["payload"].get("variables"),
                    "{ctx}"
                );
                ops.push((
                    r.json["operation"].as_str().unwrap().to_string(),
                    r.json
                        .get("name")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                ));
            }
            "next" | "data" => {
                assert_eq!(r.json["payload"], v["payload"], "{ctx}");
                if let Some(m) = v["payload"]["errors"][0]["message"].as_str() {
                    assert!(r.text.ends_with(&format!(": {m}")), "{ctx}");
                }
            }
            "error" => {
                let m = v["payload"][0]["message"].as_str().unwrap();
                assert!(r.text.ends_with(&format!(": {m}")), "{ctx}");
            }
            "connection_init" => assert_eq!(r.json["payload"], v["payload"], "{ctx}"),
            _ => {}
        }
    }
    assert!(heartbeats >= 2, "{heartbeats}");
    let want: Vec<(String, Option<String>)> = want_ops
        .iter()
        .map(|(o, n)| (o.to_string(), n.map(str::to_string)))
        .collect();
    assert_eq!(ops, want);
    // Each operation answered (a subscription's later results find it answered already).
    assert_eq!(check_pairing(c, &readings), want_ops.len());
}

#[test]
fn json_rpc_peers() {
    let conns = connections("samples/app/jsonrpc.pcap");
    assert_eq!(conns.len(), 1);
    let c = &conns[0];
    assert_eq!(c.subprotocol.as_deref(), Some("jsonrpc"));
    let (name, readings) = read_all(c);
    assert_eq!(name, "json-rpc");
    let logged = logged_json(c, &log("jsonrpc"));
    let check = |r: &Value, v: &Value, ctx: &str| {
        assert_eq!(r.get("id"), v.get("id"), "{ctx}");
        if let Some(m) = v.get("method") {
            let ty = if v.get("id").is_some() {
                "request"
            } else {
                "notification"
            };
            assert_eq!(r["type"], ty, "{ctx}");
            assert_eq!(&r["method"], m, "{ctx}");
            assert_eq!(r.get("params"), v.get("params"), "{ctx}");
        } else if let Some(res) = v.get("result") {
            assert_eq!(r["type"], "result", "{ctx}");
            assert_eq!(&r["result"], res, "{ctx}");
        } else {
            assert_eq!(r["type"], "error", "{ctx}");
            assert_eq!(r["code"], v["error"]["code"], "{ctx}");
            assert_eq!(r["message"], v["error"]["message"], "{ctx}");
        }
    };
    let mut batches = 0;
    for ((_, r), v) in readings.iter().zip(&logged) {
        let r = r.as_ref().unwrap_or_else(|| panic!("unread: {v}"));
        let ctx = format!("{v} / {} / {}", r.text, r.json);
        match v {
            Value::Array(items) => {
                batches += 1;
                assert_eq!(r.json["type"], "batch", "{ctx}");
                let got = r.json["items"].as_array().unwrap();
                assert_eq!(got.len(), items.len(), "{ctx}");
                for (g, i) in got.iter().zip(items) {
                    check(g, i, &ctx);
                }
            }
            _ => check(&r.json, v, &ctx),
        }
    }
    assert_eq!(batches, 2);
    assert!(
        readings
            .iter()
            .any(|(_, r)| r.as_ref().unwrap().text == "call 1 subtract [42,23]")
    );
    assert!(
        readings
            .iter()
            .any(|(_, r)| r.as_ref().unwrap().text == "error 4 -32601 Method not found")
    );
    // Four requests and the batch answered.
    assert_eq!(check_pairing(c, &readings), 5);
}

#[test]
fn sockjs_peers() {
    let conns = connections("samples/app/sockjs.pcap");
    assert_eq!(conns.len(), 1);
    let c = &conns[0];
    let (name, readings) = read_all(c);
    assert_eq!(name, "sockjs");
    let peers = log("sockjs");
    for (side, sender) in [(Side::Client, "client"), (Side::Server, "server")] {
        let got: Vec<&Reading> = readings
            .iter()
            .filter(|(s, _)| *s == side)
            .map(|(_, r)| r.as_ref().expect("every message is read"))
            .collect();
        let inner: Vec<&Value> = got
            .iter()
            .filter_map(|r| r.json["messages"].as_array())
            .flatten()
            .collect();
        let want: Vec<&str> = peers
            .iter()
            .filter(|p| p["peer"] == sender && p["dir"] == "sent")
            .map(|p| p["text"].as_str().unwrap())
            .collect();
        assert_eq!(inner.len(), want.len(), "{sender}");
        for (g, w) in inner.iter().zip(&want) {
            if w.starts_with("SEND\n") {
                // A STOMP frame inside SockJS is read as STOMP.
                assert_eq!(g["protocol"], "stomp", "{g}");
                assert_eq!(g["command"], "SEND", "{g}");
                assert_eq!(g["headers"]["destination"], "/queue/a", "{g}");
                assert_eq!(g["body"], "\"hello queue a\"", "{g}");
            } else {
                assert_eq!(g.as_str(), Some(*w));
            }
        }
        if side == Side::Server {
            assert_eq!(got[0].json["type"], "open");
            // sockjs-node heartbeats a websocket with websocket pings, not `h` frames.
            let close = got.last().unwrap();
            let logged = peers.iter().find(|p| p["event"] == "close").unwrap();
            assert_eq!(close.json["type"], "close");
            assert_eq!(close.json["code"], logged["code"]);
            assert_eq!(close.json["reason"], logged["reason"]);
            assert_eq!(close.text, "sockjs close 3000 Go away!");
        }
    }
    assert!(
        readings
            .iter()
            .any(|(_, r)| r.as_ref().unwrap().text == r#"SEND /queue/a "hello queue a""#)
    );
}

/// The STOMP frames of readings (one reading may hold several), heart-beats left out.
fn stomp_frames(readings: &[&Reading]) -> Vec<Value> {
    let mut out = Vec::new();
    for r in readings {
        match r.json.get("frames") {
            Some(Value::Array(fs)) => out.extend(fs.iter().cloned()),
            _ if r.heartbeat => {}
            _ => out.push(r.json.clone()),
        }
    }
    out
}

/// A body as the reading previews it: JSON-quoted text when it is UTF-8 (binary frames
/// too), or hex.
fn body_preview(body: &Value) -> String {
    match body {
        Value::String(t) => json!(t).to_string(),
        _ => {
            let b = b64(body["base64"].as_str().unwrap());
            match String::from_utf8(b.clone()) {
                Ok(t) => json!(t).to_string(),
                Err(_) => {
                    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
                    format!("0x{hex}")
                }
            }
        }
    }
}

#[test]
fn stomp_rabbitmq_peers() {
    let conns = connections("samples/app/stomp.pcap");
    assert_eq!(conns.len(), 1);
    let c = &conns[0];
    assert_eq!(c.subprotocol.as_deref(), Some("v12.stomp"));
    let (name, readings) = read_all(c);
    assert_eq!(name, "stomp");
    let peers = log("stomp");
    // The capture's messages are what the client logged sending and receiving.
    let raw: Vec<(&str, Vec<u8>)> = peers
        .iter()
        .filter(|p| p.get("frame").is_none())
        .map(|p| {
            let b = match (p["text"].as_str(), p["base64"].as_str()) {
                (Some(t), _) => t.as_bytes().to_vec(),
                (_, Some(b)) => b64(b),
                _ => panic!("{p}"),
            };
            (p["dir"].as_str().unwrap(), b)
        })
        .collect();
    for (side, dir) in [(Side::Client, "sent"), (Side::Server, "recv")] {
        let want: Vec<&Vec<u8>> = raw.iter().filter(|r| r.0 == dir).map(|r| &r.1).collect();
        let got: Vec<&Vec<u8>> = c
            .msgs
            .iter()
            .filter(|m| m.side == side)
            .map(|m| &m.bytes)
            .collect();
        assert_eq!(got, want, "{dir}");
    }
    for (side, dir) in [(Side::Client, "sent"), (Side::Server, "recv")] {
        let rs: Vec<&Reading> = readings
            .iter()
            .filter(|(s, _)| *s == side)
            .map(|(_, r)| r.as_ref().expect("every message is read"))
            .collect();
        // Heart-beats: the lone EOLs.
        let beats = raw.iter().filter(|r| r.0 == dir && r.1 == b"\n").count();
        assert!(beats >= 1, "{dir}");
        assert_eq!(rs.iter().filter(|r| r.heartbeat).count(), beats, "{dir}");
        let got = stomp_frames(&rs);
        let want: Vec<&Value> = peers
            .iter()
            .filter(|p| p["dir"] == dir)
            .filter_map(|p| p.get("frame"))
            .collect();
        assert_eq!(got.len(), want.len(), "{dir}");
        for (g, w) in got.iter().zip(&want) {
            let ctx = format!("{w} / {g}");
            assert_eq!(g["command"], w["command"], "{ctx}");
            let headers = w["headers"].as_object().unwrap();
            for (k, v) in headers {
                // Unescaped (\\c \\n \\\\) as stompjs unescaped them.
                assert_eq!(&g["headers"][k], v, "{k}: {ctx}");
            }
            if dir == "recv" {
                // Every header the client was handed, and no other.
                assert_eq!(
                    g["headers"].as_object().unwrap().len(),
                    headers.len(),
                    "{ctx}"
                );
            }
            if w["body"] != "" {
                assert_eq!(g["body"], body_preview(&w["body"]), "{ctx}");
            } else {
                assert_eq!(g["body_len"], 0, "{ctx}");
            }
        }
    }
    let texts: Vec<&str> = readings
        .iter()
        .filter_map(|(_, r)| r.as_ref().map(|r| r.text.as_str()))
        .collect();
    let connect = readings[0].1.as_ref().unwrap();
    assert_eq!(connect.names_connection.as_deref(), Some("guest"));
    assert!(texts.iter().all(|t| !t.contains("passcode")));
    assert!(
        texts.contains(&"SEND /queue/wsdump-test receipt:r-1 \"hi, all !\""),
        "{texts:#?}"
    );
    assert!(texts.contains(&"RECEIPT receipt-id:r-1"), "{texts:#?}");
    assert!(texts.contains(&"BEGIN transaction:tx-1"), "{texts:#?}");
    // The SEND's receipt, answered by the broker.
    assert_eq!(check_pairing(c, &readings), 1);
}

/// The workerman-chat annotator reads samples/workerman-chat.pcap (Chromium ↔ workerman)
/// exactly as the chat view did before it was one annotator among others: the `↳` lines of
/// samples/expected/workerman-chat.out were blessed from the engine's own chat reading of
/// that time, and claims both connections from their first messages.
#[test]
fn workerman_chat_reads_as_the_chat_view() {
    let conns = connections("samples/workerman-chat.pcap");
    assert_eq!(conns.len(), 2);
    let golden = std::fs::read_to_string("samples/expected/workerman-chat.out").unwrap();
    // Message line, then its reading: (the message's text, the reading).
    let lines: Vec<&str> = golden.lines().collect();
    let mut want: Vec<(String, Option<String>)> = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if let Some((_, text)) = l.split_once(" text ") {
            let text = text.split_once(": ").unwrap().1.to_string();
            let reading = lines
                .get(i + 1)
                .and_then(|n| n.strip_prefix("    ↳ "))
                .map(str::to_string);
            want.push((text, reading));
        }
    }
    let mut names = Vec::new();
    let mut read = 0;
    for c in &conns {
        let (name, readings) = read_all(c);
        assert_eq!(name, "workerman-chat");
        for (m, (_, r)) in c.msgs.iter().zip(&readings) {
            let text = std::str::from_utf8(&m.bytes).unwrap();
            let Some(w) = want.iter().find(|(t, _)| t == text) else {
                panic!("not in the golden: {text}");
            };
            // Messages the two connections both received are read alike, so the first one
            // with this text stands for all.
            assert_eq!(r.as_ref().map(|r| &r.text), w.1.as_ref(), "{text}");
            if let Some(r) = r {
                read += 1;
                assert_eq!(r.json["protocol"], "workerman-chat");
                names.extend(r.names_connection.clone());
            }
        }
    }
    assert!(read >= 10, "{read}");
    assert_eq!(
        names.len(),
        2,
        "each connection's login names it: {names:?}"
    );
}

/// JSON values equal, numbers by their value.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        // serde_json's default float parsing may be off by an ulp.
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            (x - y).abs() <= 1e-12 * x.abs().max(1.0)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, p)| y.get(k).is_some_and(|q| same(p, q)))
        }
        _ => a == b,
    }
}

/// MessagePack (@msgpack/msgpack) and CBOR (cbor-x) values in binary messages of a connection
/// no protocol claims: each reads as the JSON of the value the client encoded.
#[test]
fn msgpack_and_cbor_peers() {
    let conns = connections("samples/app/binary.pcap");
    assert_eq!(conns.len(), 1);
    let c = &conns[0];
    for m in &c.msgs {
        assert!(app::claim(c.subprotocol.as_deref(), &c.path, &message(m)).is_none());
    }
    let peers = log("binary");
    let values: Vec<&Value> = peers.iter().filter(|p| p.get("format").is_some()).collect();
    // Each value was sent and echoed back: two messages.
    assert_eq!(c.msgs.len(), 2 * values.len());
    for (i, v) in values.iter().enumerate() {
        for m in &c.msgs[2 * i..2 * i + 2] {
            assert!(m.binary);
            let r = app::payload::reading(&m.bytes);
            let format = v["format"].as_str().unwrap();
            let Some(value) = v.get("value") else {
                // Bytes and a date: CBOR tags 64 (typed array) and 1 (epoch), the MessagePack
                // timestamp extension (-1).
                let r = r.expect("read");
                let want = if format == "msgpack" {
                    r#"msgpack {"bytes":h'000102ff',"date":ext(-1,h'6553f100')}"#
                } else {
                    r#"cbor {"bytes":64(h'000102ff'),"date":1(1700000000)}"#
                };
                assert_eq!(r.text, want);
                continue;
            };
            if format == "cbor" && value.is_string() {
                // A CBOR text string is indistinguishable from plain text: not read.
                assert!(r.is_none(), "{value}");
                continue;
            }
            let r = r.unwrap_or_else(|| panic!("{format} {value}"));
            assert_eq!(r.json["protocol"], format);
            let text = r.text.strip_prefix(&format!("{format} ")).unwrap();
            let parsed: Value =
                serde_json::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            // Numbers compare by value: JavaScript encoders send 4294967296 as a float.
            assert!(same(&parsed, value), "{text} vs {value}");
        }
    }
}

/// How often MessagePack/CBOR decoding accepts payloads that are neither: every binary
/// payload (and every text payload, as bytes) of every sample capture. None may pass, but
/// those of binary.pcap, which are MessagePack and CBOR.
#[test]
fn sample_payloads_are_not_msgpack_or_cbor() {
    let mut captures: Vec<String> = Vec::new();
    for dir in ["samples", "samples/app"] {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let ext = p.extension().and_then(|x| x.to_str()).unwrap_or("");
            let name = p.to_string_lossy();
            if matches!(ext, "pcap" | "pcapng")
                && !name.contains("crash-")
                && !name.ends_with("app/binary.pcap")
            {
                captures.push(p.to_string_lossy().into_owned());
            }
        }
    }
    captures.sort();
    let (mut binary, mut text, mut accepted) = (0, 0, Vec::new());
    for cap in &captures {
        for e in events(Path::new(cap)) {
            if e["type"] != "message" {
                continue;
            }
            let bytes = match (e["text"].as_str(), e["base64"].as_str()) {
                (Some(t), _) => {
                    text += 1;
                    t.as_bytes().to_vec()
                }
                (_, Some(b)) => {
                    binary += 1;
                    b64(b)
                }
                _ => continue,
            };
            if let Some((f, t)) = app::payload::decode(&bytes) {
                accepted.push(format!("{cap}: {f:?} {t}"));
            }
        }
    }
    eprintln!(
        "{} captures: {binary} binary/control and {text} text payloads, {} read as MessagePack/CBOR",
        captures.len(),
        accepted.len()
    );
    assert!(binary > 100, "{binary}");
    assert!(accepted.is_empty(), "{accepted:#?}");
}

/// End to end: the binary (`--json`, `--app auto`) recognises each sample's protocol by
/// itself and reads every message as the readers checked above against the peers' logs do
/// (same reading, same fields, heartbeats known), with the latency of each answered request
/// as the capture's timestamps give it; the human view shows the same readings.
#[test]
fn the_engine_reads_each_sample_as_its_protocol() {
    let samples = [
        ("socketio", "socket.io"),
        ("socketio2", "socket.io"),
        ("graphql", "graphql-transport-ws"),
        ("graphql-legacy", "graphql-ws"),
        ("stomp", "stomp"),
        ("sockjs", "sockjs"),
        ("mqtt", "mqtt"),
        ("mqtt5", "mqtt"),
        ("jsonrpc", "json-rpc"),
        ("binary", "msgpack|cbor"),
    ];
    let doc = std::fs::read_to_string("docs/json.md").unwrap();
    let app_doc = &doc[doc.find("### `app`").expect("docs/json.md documents app")..];
    for (sample, protocol) in samples {
        let conns = connections(&format!("samples/app/{sample}.pcap"));
        assert_eq!(conns.len(), 1, "{sample}");
        let c = &conns[0];
        let readings: Vec<Option<Reading>> = if protocol.contains('|') {
            c.msgs
                .iter()
                .map(|m| app::payload::reading(&m.bytes))
                .collect()
        } else {
            let (name, rs) = read_all(c);
            assert_eq!(name, protocol, "{sample}");
            // A binary message the protocol does not read may be one MessagePack/CBOR value.
            rs.into_iter()
                .zip(&c.msgs)
                .map(|((_, r), m)| {
                    r.or_else(|| m.binary.then(|| app::payload::reading(&m.bytes)).flatten())
                })
                .collect()
        };
        let (mut read, mut beats, mut timed) = (0, 0, 0);
        let mut pairs = Pairs::new(64);
        for (m, r) in c.msgs.iter().zip(&readings) {
            let ctx = format!("{sample}: {:?}", String::from_utf8_lossy(&m.bytes));
            let Some(r) = r else {
                assert!(m.app.is_none(), "{ctx}: {:?}", m.app);
                continue;
            };
            let a = m.app.as_ref().unwrap_or_else(|| panic!("{ctx}: not read"));
            read += 1;
            assert!(
                protocol.split('|').any(|p| a["protocol"] == p),
                "{ctx}: {a}"
            );
            assert_eq!(a["protocol"], r.json["protocol"], "{ctx}");
            // Every field and type is documented.
            for k in a.as_object().unwrap().keys() {
                assert!(app_doc.contains(&format!("`{k}`")), "docs/json.md: app.{k}");
            }
            let ty = a["type"].as_str().unwrap();
            assert!(
                app_doc.contains(&format!("`{ty}`")),
                "docs/json.md: type {ty}"
            );
            assert_eq!(a["reading"], r.text.as_str(), "{ctx}");
            assert_eq!(a["heartbeat"] == true, r.heartbeat, "{ctx}");
            beats += usize::from(r.heartbeat);
            for (k, v) in r.json.as_object().unwrap() {
                assert_eq!(&a[k], v, "{ctx}: {k}");
            }
            let latency = r.pairing.as_ref().and_then(|p| pairs.observe(p, m.ts));
            match latency {
                Some(ns) => {
                    timed += 1;
                    let ms = a["latency_ms"].as_f64().unwrap_or_else(|| panic!("{ctx}"));
                    assert!((ms - ns as f64 / 1e6).abs() < 0.0015, "{ctx}: {ms} vs {ns}");
                }
                None => assert!(a.get("latency_ms").is_none(), "{ctx}"),
            }
        }
        assert!(read >= 10, "{sample}: {read}");
        // Heartbeats: every protocol but JSON-RPC and the payload formats has them here
        // (sockjs-node heartbeats with websocket pings, which are no application's).
        if !matches!(sample, "jsonrpc" | "binary" | "sockjs") {
            assert!(beats >= 2, "{sample}: {beats} heartbeats");
        }
        if !matches!(sample, "binary" | "sockjs") {
            assert!(timed >= 1, "{sample}: no latency");
        }
        // The human view shows the same readings, one `↳` line each.
        let out = Command::new(env!("CARGO_BIN_EXE_wsdump"))
            .args(["--color", "never", "-r"])
            .arg(format!("samples/app/{sample}.pcap"))
            .output()
            .unwrap();
        let human = String::from_utf8(out.stdout).unwrap();
        let shown = human.lines().filter(|l| l.starts_with("    ↳ ")).count();
        assert_eq!(shown, read, "{sample}");
        // And `--app none` shows none.
        let out = Command::new(env!("CARGO_BIN_EXE_wsdump"))
            .args(["--color", "never", "--app", "none", "-r"])
            .arg(format!("samples/app/{sample}.pcap"))
            .output()
            .unwrap();
        assert!(!String::from_utf8(out.stdout).unwrap().contains('↳'));
    }
}
