//! Application protocols carried on websocket, read into one line for people and a JSON value
//! for machines: Socket.IO / Engine.IO, GraphQL over websocket (both subprotocols), STOMP (and
//! SockJS around it), MQTT, JSON-RPC 2.0, workerman-chat, and MessagePack / CBOR payloads.
//!
//! This module is independent of the engine: it sees one decoded (unmasked, inflated) message
//! at a time through [`AppMessage`] and never changes what was decoded. Every reader is
//! bounded in the state it keeps ([`Annotator::memory`]) and in what it outputs, and never
//! panics on hostile input.
//!
//! Use: [`claim`] a connection from its negotiated subprotocol, its upgrade path and its
//! first messages (call it again for each of the first few messages until it claims; it does
//! not read the message it is given), or force a reader with [`by_name`]; then call
//! [`Annotator::read`] for every message of the connection, in wire order per direction,
//! including the one that made it claim. Pair requests with responses with [`Pairs`].

use serde_json::Value;
use std::collections::{HashMap, VecDeque};

pub mod graphql;
pub mod jsonrpc;
pub mod mqtt;
pub mod payload;
pub mod socketio;
pub mod stomp;
pub mod workerman;

/// What a message is, as an application protocol reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// One line for the human views (`/chat event "message" ["hi, all !"] ack 12`); may
    /// contain any characters: printers escape it.
    pub text: String,
    /// Structured form for JSON output (the `app` field): an object with at least
    /// `{"protocol": "socket.io", "type": "event", ...}`.
    pub json: Value,
    /// An application-level heartbeat (Engine.IO ping/pong, GraphQL ping/pong/ka, STOMP
    /// heart-beat EOLs, SockJS `h`, MQTT PINGREQ/PINGRESP, workerman `{"type":"ping"}`).
    pub heartbeat: bool,
    /// A name this message gives the connection (a login nickname, an MQTT client id).
    pub names_connection: Option<String>,
    /// Request/response pairing key, when the protocol pairs them: (key, is_request). Keys
    /// are unique within one connection only.
    pub pairing: Option<(String, bool)>,
}

impl Reading {
    /// A reading with only text and JSON.
    pub fn new(text: String, json: Value) -> Reading {
        Reading {
            text,
            json,
            heartbeat: false,
            names_connection: None,
            pairing: None,
        }
    }

    fn heartbeat(mut self) -> Reading {
        self.heartbeat = true;
        self
    }

    fn pair(mut self, key: impl Into<String>, request: bool) -> Reading {
        self.pairing = Some((key.into(), request));
        self
    }
}

/// Which side sent the message.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Side {
    /// The peer that sent the upgrade request (its frames are masked).
    Client,
    /// The peer that answered 101 Switching Protocols.
    Server,
}

impl Side {
    fn index(self) -> usize {
        match self {
            Side::Client => 0,
            Side::Server => 1,
        }
    }
}

/// One message as the annotator sees it: decoded, unmasked, inflated payload.
#[derive(Clone, Copy, Debug)]
pub struct AppMessage<'a> {
    /// Who sent it; readers use it to tell requests from responses.
    pub side: Side,
    /// The payload as text, for a text message that is valid UTF-8.
    pub text: Option<&'a str>,
    /// The whole payload bytes, for text and binary messages alike (for text, the same
    /// bytes as `text`).
    pub payload: &'a [u8],
    /// A binary (opcode 2) message.
    pub binary: bool,
}

impl<'a> AppMessage<'a> {
    /// A text message.
    pub fn text(side: Side, text: &'a str) -> AppMessage<'a> {
        AppMessage {
            side,
            text: Some(text),
            payload: text.as_bytes(),
            binary: false,
        }
    }

    /// A binary message.
    pub fn binary(side: Side, payload: &'a [u8]) -> AppMessage<'a> {
        AppMessage {
            side,
            text: None,
            payload,
            binary: true,
        }
    }

    /// The payload as text: the text of a text message, or a binary payload that happens to
    /// be UTF-8 (some peers send text protocols in binary frames).
    fn as_text(&self) -> Option<&'a str> {
        self.text.or_else(|| std::str::from_utf8(self.payload).ok())
    }
}

/// An application protocol reader for one connection.
pub trait Annotator: Send {
    /// The protocol's name as `--app NAME` takes it (one of [`NAMES`]).
    fn name(&self) -> &'static str;
    /// Reads one message; None when it is not this protocol's message (the raw message is
    /// shown anyway).
    fn read(&mut self, m: &AppMessage<'_>) -> Option<Reading>;
    /// Heap bytes this annotator holds (charged to the engine's memory ledger).
    fn memory(&self) -> usize;
}

/// The names [`by_name`] takes, for `--app NAME` and its help.
pub const NAMES: [&str; 10] = [
    "socket.io",
    "graphql-ws",
    "graphql-transport-ws",
    "stomp",
    "sockjs",
    "mqtt",
    "json-rpc",
    "workerman-chat",
    "msgpack",
    "cbor",
];

/// `--app NAME`: the annotator for a named protocol, forced. A few aliases are taken too
/// (`socketio`, `jsonrpc`, `workerman`, `messagepack`).
pub fn by_name(name: &str) -> Option<Box<dyn Annotator>> {
    Some(match name.to_ascii_lowercase().as_str() {
        "socket.io" | "socketio" | "engine.io" => Box::new(socketio::SocketIo::new(None)),
        "graphql-ws" | "subscriptions-transport-ws" => Box::new(graphql::Graphql::legacy()),
        "graphql-transport-ws" | "graphql" => Box::new(graphql::Graphql::transport()),
        "stomp" => Box::new(stomp::Stomp::new(false)),
        "sockjs" => Box::new(stomp::Stomp::new(true)),
        "mqtt" => Box::new(mqtt::Mqtt::new()),
        "json-rpc" | "jsonrpc" => Box::new(jsonrpc::JsonRpc),
        "workerman-chat" | "workerman" => Box::new(workerman::Workerman::default()),
        "msgpack" | "messagepack" => Box::new(payload::Binary::msgpack()),
        "cbor" => Box::new(payload::Binary::cbor()),
        _ => return None,
    })
}

/// Claims a connection: by negotiated subprotocol (Sec-WebSocket-Protocol of the 101) and
/// upgrade path first, then by the content of `first` (call again with each of the first few
/// messages until one claims). Never claims arbitrary JSON. Does not read `first`.
pub fn claim(
    subprotocol: Option<&str>,
    path: &str,
    first: &AppMessage<'_>,
) -> Option<Box<dyn Annotator>> {
    if let Some(sp) = subprotocol.map(|s| s.trim().to_ascii_lowercase()) {
        let named = match sp.as_str() {
            "mqtt" | "mqttv3.1" | "mqttv3.1.1" | "mqttv5" | "mqttv5.0" => by_name("mqtt"),
            "graphql-transport-ws" => by_name("graphql-transport-ws"),
            "graphql-ws" => by_name("graphql-ws"),
            "v10.stomp" | "v11.stomp" | "v12.stomp" | "stomp" => by_name("stomp"),
            "jsonrpc" | "json-rpc" | "jsonrpc-2.0" | "json-rpc-2.0" | "jsonrpc2" => {
                by_name("json-rpc")
            }
            _ => None,
        };
        if named.is_some() {
            return named;
        }
    }
    let (p, query) = path.split_once('?').unwrap_or((path, ""));
    if p.contains("/socket.io/") || p.ends_with("/socket.io") || query_has(query, "EIO") {
        return Some(Box::new(socketio::SocketIo::new(socketio::eio_version(
            query,
        ))));
    }
    if p.contains("/sockjs/") || stomp::sockjs_path(p) {
        return by_name("sockjs");
    }
    // Content of the message.
    if first.binary {
        if mqtt::is_connect(first.payload) {
            return by_name("mqtt");
        }
        return None;
    }
    let text = first.as_text()?;
    if socketio::is_open_packet(text) {
        return by_name("socket.io");
    }
    if stomp::is_sockjs_open(text) && first.side == Side::Server {
        return by_name("sockjs");
    }
    if stomp::is_connect_frame(text) {
        return by_name("stomp");
    }
    let t = text.trim_start();
    // The JSON protocols claimed here all have one of these keys: a look for them is cheap,
    // a parse of every JSON message of every connection is not.
    if (t.starts_with('{') || t.starts_with('['))
        && (t.contains("\"jsonrpc\"") || t.contains("\"type\""))
    {
        let v: Value = serde_json::from_str(t).ok()?;
        if jsonrpc::is_jsonrpc(&v) {
            return by_name("json-rpc");
        }
        if graphql::is_init(&v) {
            return Some(Box::new(graphql::Graphql::guess()));
        }
        if workerman::is_workerman(&v) {
            return by_name("workerman-chat");
        }
    }
    None
}

fn query_has(query: &str, key: &str) -> bool {
    query
        .split('&')
        .any(|kv| kv.split('=').next().is_some_and(|k| k == key))
}

/// Request timestamps by pairing key, to measure latency when the response arrives. Bounded:
/// past `capacity` entries the oldest request is forgotten.
pub struct Pairs {
    capacity: usize,
    seq: u64,
    pending: HashMap<String, (i128, u64)>,
    order: VecDeque<(u64, String)>,
}

impl Pairs {
    /// An empty table that remembers at most `capacity` pending requests (at least one).
    pub fn new(capacity: usize) -> Pairs {
        Pairs {
            capacity: capacity.max(1),
            seq: 0,
            pending: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// A request with `key` was seen at `ts` (nanoseconds). A repeated key restarts its clock.
    pub fn request(&mut self, key: &str, ts: i128) {
        self.seq += 1;
        self.pending.insert(key.to_string(), (ts, self.seq));
        self.order.push_back((self.seq, key.to_string()));
        while self.pending.len() > self.capacity {
            let Some((seq, k)) = self.order.pop_front() else {
                break;
            };
            if self.pending.get(&k).is_some_and(|&(_, s)| s == seq) {
                self.pending.remove(&k);
            }
        }
        // Answered requests leave stale entries in `order`: drop them before they pile up.
        if self.order.len() > 2 * self.capacity {
            let pending = &self.pending;
            self.order
                .retain(|(seq, k)| pending.get(k).is_some_and(|&(_, s)| s == *seq));
        }
    }

    /// A response with `key` was seen at `ts`: the latency since its request, if that is
    /// still known. The request is then forgotten (a second response finds nothing).
    pub fn response(&mut self, key: &str, ts: i128) -> Option<i128> {
        self.pending.remove(key).map(|(t, _)| ts - t)
    }

    /// Handles a reading's pairing: records requests, returns the latency for responses.
    pub fn observe(&mut self, pairing: &(String, bool), ts: i128) -> Option<i128> {
        if pairing.1 {
            self.request(&pairing.0, ts);
            None
        } else {
            self.response(&pairing.0, ts)
        }
    }

    /// Requests still waiting for their response.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// No request is waiting for its response.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Heap bytes held (approximately).
    pub fn memory(&self) -> usize {
        let keys: usize = self.order.iter().map(|(_, k)| 2 * k.capacity()).sum();
        keys + self.pending.capacity() * (size_of::<String>() + 32)
            + self.order.capacity() * size_of::<(u64, String)>()
    }
}

/// Longest text a reading shows of one value (arguments, payload previews).
const PREVIEW: usize = 300;
/// Longest reading text.
const TEXT_MAX: usize = 2000;

/// `s` cut to at most `max` bytes at a character boundary, with `…` when cut.
fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// A writer that keeps the first `max` bytes and then refuses more (which stops a
/// serializer early on a huge value).
struct Limited {
    buf: Vec<u8>,
    max: usize,
    cut: bool,
}

impl std::io::Write for Limited {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let room = self.max - self.buf.len();
        if b.len() > room {
            self.buf.extend_from_slice(&b[..room]);
            self.cut = true;
            return Err(std::io::Error::other("full"));
        }
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Compact JSON text of `v`, at most `max` bytes (then `…`).
fn json_text(v: &Value, max: usize) -> String {
    let mut w = Limited {
        buf: Vec::new(),
        max,
        cut: false,
    };
    let _ = serde_json::to_writer(&mut w, v);
    let mut s = String::from_utf8_lossy(&w.buf).into_owned();
    if w.cut {
        // The lossy conversion may have turned a cut character into U+FFFD: drop it.
        if s.ends_with('\u{FFFD}') {
            s.pop();
        }
        s.push('…');
    }
    s
}

/// A value for the JSON form, clipped: values whose compact text is longer than `max` are
/// replaced by that text clipped (a string), so the `app` field stays small.
fn json_clipped(v: &Value, max: usize) -> Value {
    let t = json_text(v, max);
    if t.ends_with('…') {
        Value::String(t)
    } else {
        v.clone()
    }
}

/// Raw JSON text as it was sent (member order and escapes kept), with the whitespace
/// outside strings dropped, at most `max` bytes (then `…`): what the human line shows of a
/// value. (serde_json's `Value` sorts object members.)
fn raw_text(raw: &str, max: usize) -> String {
    clip(&json_without_whitespace(raw, max), max)
}

/// JSON text with the whitespace outside strings dropped (member order, escapes and string
/// contents as sent), stopping once more than `max` bytes are written. Not a validation:
/// callers that need valid JSON check it.
pub(crate) fn json_without_whitespace(raw: &str, max: usize) -> String {
    let mut out = String::with_capacity(raw.len().min(max.saturating_add(4)));
    let (mut in_str, mut escaped) = (false, false);
    for c in raw.chars() {
        if out.len() > max {
            break;
        }
        if in_str {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
        } else if c == '"' {
            in_str = true;
            out.push(c);
        } else if !matches!(c, ' ' | '\n' | '\r' | '\t') {
            out.push(c);
        }
    }
    out
}

/// The raw JSON text of member `key` of the raw JSON object `obj`.
fn raw_get<'a>(obj: &'a str, key: &str) -> Option<&'a str> {
    let m: HashMap<String, &'a serde_json::value::RawValue> = serde_json::from_str(obj).ok()?;
    m.get(key).map(|r| r.get())
}

/// The raw JSON texts of the items of the raw JSON array `arr`.
fn raw_items(arr: &str) -> Option<Vec<&str>> {
    let v: Vec<&serde_json::value::RawValue> = serde_json::from_str(arr).ok()?;
    Some(v.into_iter().map(|r| r.get()).collect())
}

/// A quoted, clipped preview of a payload: text when it is UTF-8, else hex.
fn preview_bytes(b: &[u8], max: usize) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => json_text(&Value::String(clip(s, max)), max + 8),
        Err(_) => {
            let n = b.len().min(max / 2);
            let mut h: String = b[..n].iter().map(|x| format!("{x:02x}")).collect();
            if n < b.len() {
                h.push('…');
            }
            format!("0x{h}")
        }
    }
}

fn finish(mut r: Reading) -> Reading {
    if r.text.len() > TEXT_MAX {
        r.text = clip(&r.text, TEXT_MAX);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_by_subprotocol_path_and_content() {
        let hello = AppMessage::text(Side::Client, "hello");
        let name = |sp, path, m: &AppMessage<'_>| claim(sp, path, m).map(|a| a.name());
        assert_eq!(name(Some("mqtt"), "/", &hello), Some("mqtt"));
        assert_eq!(name(Some("MQTTv3.1"), "/", &hello), Some("mqtt"));
        assert_eq!(
            name(Some("graphql-transport-ws"), "/graphql", &hello),
            Some("graphql-transport-ws")
        );
        assert_eq!(name(Some("graphql-ws"), "/", &hello), Some("graphql-ws"));
        assert_eq!(name(Some("v12.stomp"), "/", &hello), Some("stomp"));
        assert_eq!(name(Some("jsonrpc"), "/", &hello), Some("json-rpc"));
        assert_eq!(
            name(None, "/socket.io/?EIO=4&transport=websocket", &hello),
            Some("socket.io")
        );
        assert_eq!(
            name(None, "/echo/123/abcdefgh/websocket", &hello),
            Some("sockjs")
        );
        assert_eq!(name(Some("chat"), "/", &hello), None);
        assert_eq!(name(None, "/", &hello), None);
        // Content.
        let open = AppMessage::text(
            Side::Server,
            r#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#,
        );
        assert_eq!(name(None, "/", &open), Some("socket.io"));
        let rpc = AppMessage::text(
            Side::Client,
            r#"{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}"#,
        );
        assert_eq!(name(None, "/", &rpc), Some("json-rpc"));
        let stomp = AppMessage::text(
            Side::Client,
            "CONNECT\naccept-version:1.2\nhost:stomp.github.org\n\n\0",
        );
        assert_eq!(name(None, "/ws", &stomp), Some("stomp"));
        let mqtt = [
            0x10, 0x10, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 60, 0, 4, b'a', b'b', b'c', b'd',
        ];
        assert_eq!(
            name(None, "/mqtt", &AppMessage::binary(Side::Client, &mqtt)),
            Some("mqtt")
        );
        let login = AppMessage::text(
            Side::Client,
            r#"{"type":"login","client_name":"mynick","room_id":"1"}"#,
        );
        assert_eq!(name(None, "/", &login), Some("workerman-chat"));
        let init = AppMessage::text(Side::Client, r#"{"type":"connection_init","payload":{}}"#);
        assert_eq!(name(None, "/graphql", &init), Some("graphql-transport-ws"));
        let sockjs = AppMessage::text(Side::Server, "o");
        assert_eq!(name(None, "/x", &sockjs), Some("sockjs"));
        // Arbitrary JSON and text are not claimed.
        for t in [
            r#"{"type":"message","text":"hi"}"#,
            r#"{"id":1,"method":"x"}"#,
            r#"[1,2,3]"#,
            "0",
            "2",
            "42[\"x\"]",
            "o",
            "MESSAGE",
        ] {
            assert_eq!(
                name(None, "/", &AppMessage::text(Side::Client, t)),
                None,
                "{t}"
            );
        }
        assert_eq!(
            name(None, "/", &AppMessage::binary(Side::Client, &[0x10, 0x00])),
            None
        );
    }

    #[test]
    fn every_name_is_taken() {
        for n in NAMES {
            let a = by_name(n).unwrap_or_else(|| panic!("{n}"));
            assert_eq!(a.name(), n);
        }
        assert!(by_name("nope").is_none());
    }

    #[test]
    fn pairs_measure_and_stay_bounded() {
        let mut p = Pairs::new(3);
        p.request("1", 100);
        assert_eq!(p.response("1", 250), Some(150));
        assert_eq!(p.response("1", 300), None);
        for i in 0..10 {
            p.request(&i.to_string(), i);
        }
        assert_eq!(p.len(), 3);
        assert_eq!(p.response("0", 50), None);
        assert_eq!(p.response("9", 50), Some(41));
        // Requests answered at once leave no garbage behind.
        for i in 0..10_000 {
            let k = format!("k{i}");
            p.request(&k, i);
            assert_eq!(p.observe(&(k, false), i + 1), Some(1));
        }
        assert!(p.order.len() <= 6, "{}", p.order.len());
        // A repeated key restarts its clock and is not evicted by its own older entry.
        let mut p = Pairs::new(2);
        p.request("a", 1);
        p.request("a", 5);
        p.request("b", 6);
        assert_eq!(p.response("a", 10), Some(5));
    }

    /// Every reader on mutations of valid messages and on random bytes: no panic, bounded
    /// output and memory.
    #[test]
    fn hostile_input_never_panics() {
        let seeds: [&[u8]; 12] = [
            br#"0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000}"#,
            br#"451-/chat,12["upload",{"_placeholder":true,"num":0}]"#,
            br#"{"id":"1","type":"subscribe","payload":{"query":"subscription S { a }"}}"#,
            b"CONNECT\naccept-version:1.2\nhost:x\n\n\0SEND\ndestination:/q\ncontent-length:2\n\nab\0",
            br#"a["MESSAGE\ndestination:/t\n\nhi\u0000"]"#,
            &[0x10, 0x10, 0, 4, b'M', b'Q', b'T', b'T', 5, 2, 0, 60, 0, 0, 4, b'a', b'b', b'c'],
            &[0x32, 0x0a, 0, 3, b'a', b'/', b'b', 0, 1, 0, b'h', b'i'],
            br#"[{"jsonrpc":"2.0","method":"m","id":1},{"jsonrpc":"2.0","result":1,"id":2}]"#,
            br#"{"type":"login","client_name":"n","room_id":1}"#,
            &[0x82, 0xa1, b'a', 0x01, 0xa1, b'b', 0x92, 0x01, 0xc0],
            &[0xbf, 0x61, b'a', 0x9f, 0x01, 0xff, 0xff],
            b"c[3000,\"Go away!\"]",
        ];
        let mut x: u64 = 0x2545F4914F6CDD1D;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for name in NAMES {
            let mut a = by_name(name).unwrap();
            for i in 0..4000 {
                let mut b: Vec<u8> = seeds[i % seeds.len()].to_vec();
                match rnd() % 4 {
                    0 => b.truncate((rnd() as usize) % (b.len() + 1)),
                    1 => {
                        for _ in 0..1 + rnd() % 4 {
                            let j = (rnd() as usize) % b.len();
                            b[j] = rnd() as u8;
                        }
                    }
                    2 => b = (0..rnd() % 64).map(|_| rnd() as u8).collect(),
                    _ => b.extend((0..rnd() % 16).map(|_| rnd() as u8)),
                }
                let side = if rnd() % 2 == 0 {
                    Side::Client
                } else {
                    Side::Server
                };
                let text = std::str::from_utf8(&b).ok();
                let m = AppMessage {
                    side,
                    text: if rnd() % 3 == 0 { None } else { text },
                    payload: &b,
                    binary: text.is_none() || rnd() % 3 == 0,
                };
                if let Some(r) = a.read(&m) {
                    assert!(r.text.len() <= TEXT_MAX + 4, "{name}: {}", r.text.len());
                }
                let _ = claim(None, "/", &m);
                assert!(a.memory() <= 2 * 64 * 1024 + 16 * 1024, "{name}");
            }
        }
    }

    #[test]
    fn clipping() {
        assert_eq!(clip("héllo", 2), "h…");
        assert_eq!(clip("abc", 3), "abc");
        let v: Value = serde_json::json!({"a": "x".repeat(100)});
        let t = json_text(&v, 20);
        assert!(t.len() <= 23 && t.ends_with('…'), "{t}");
        assert_eq!(json_text(&serde_json::json!([1, "é"]), 100), "[1,\"é\"]");
        assert_eq!(json_text(&serde_json::json!("ééé"), 4), "\"é…");
        assert_eq!(preview_bytes(&[0xff, 0, 1], 100), "0xff0001");
        assert_eq!(preview_bytes(b"hi", 100), "\"hi\"");
        // Raw JSON keeps its member order and escapes, loses its whitespace.
        let raw = "{ \"b\": [1, 2],\n  \"a\": \"x \\\" y\" }";
        assert_eq!(raw_text(raw, 100), r#"{"b":[1,2],"a":"x \" y"}"#);
        assert_eq!(raw_text(raw, 5), "{\"b\":…");
        assert_eq!(raw_get(raw, "a"), Some(r#""x \" y""#));
        assert_eq!(raw_get(raw, "c"), None);
        assert_eq!(
            raw_items("[1, {\"z\":1,\"a\":2}]"),
            Some(vec!["1", r#"{"z":1,"a":2}"#])
        );
    }
}
