//! Engine.IO (v3 and v4) packets on websocket, and the Socket.IO packets (protocol v4 and v5,
//! and v2/v3 wire-compatible) inside their `message` packets.
//!
//! Engine.IO: `0` open (JSON handshake), `1` close, `2` ping, `3` pong (`2probe`/`3probe` are
//! the upgrade probes), `4` message, `5` upgrade, `6` noop. In v4 the server pings and the
//! client answers; in v3 the client pings. On websocket, v4 sends binary messages as they are
//! and v3 prefixes them with a `4` byte.
//!
//! Socket.IO inside `4`: `<type>[<attachments>-][<namespace>,][<ack id>][JSON]`, type 0
//! CONNECT, 1 DISCONNECT, 2 EVENT, 3 ACK, 4 CONNECT_ERROR, 5 BINARY_EVENT, 6 BINARY_ACK. A
//! binary packet's attachments follow it as binary messages, each standing for one
//! `{"_placeholder":true,"num":N}` of the JSON.

use super::{
    Annotator, AppMessage, PREVIEW, Reading, Side, clip, finish, json_clipped, json_text,
    raw_items, raw_text,
};
use serde_json::{Map, Value, json};

/// Most attachments one binary packet may announce and still be followed.
const MAX_ATTACHMENTS: usize = 256;
/// Longest description of the packet awaiting attachments that is kept.
const PENDING_TEXT: usize = 512;

/// The Engine.IO version the upgrade's `EIO=` query names, if it does.
pub fn eio_version(query: &str) -> Option<u8> {
    query.split('&').find_map(|kv| match kv.split_once('=') {
        Some(("EIO", v)) => v.parse().ok(),
        _ => None,
    })
}

/// An Engine.IO open packet: `0{"sid":...}`.
pub fn is_open_packet(text: &str) -> bool {
    text.strip_prefix('0')
        .filter(|j| j.starts_with('{'))
        .and_then(|j| serde_json::from_str::<Value>(j).ok())
        .is_some_and(|v| v.get("sid").is_some_and(Value::is_string))
}

struct Pending {
    /// The text of the packet the attachments belong to.
    text: String,
    side: Side,
    total: usize,
    sizes: Vec<usize>,
}

/// The [`Annotator`] for Engine.IO and the Socket.IO packets inside it; one per connection,
/// since a binary packet's attachments arrive in later messages.
pub struct SocketIo {
    /// Engine.IO protocol version: 3 or 4; None until known (then v4 is assumed).
    eio: Option<u8>,
    pending: Option<Pending>,
}

impl SocketIo {
    /// `eio` is the Engine.IO version (3 or 4) when known, e.g. from the upgrade URL's `EIO=`
    /// query parameter; `None` assumes v4 until the traffic tells.
    pub fn new(eio: Option<u8>) -> SocketIo {
        SocketIo { eio, pending: None }
    }

    fn v3(&self) -> bool {
        self.eio == Some(3)
    }

    fn attachment(&mut self, m: &AppMessage<'_>) -> Option<Reading> {
        let mut data = m.payload;
        // v3 sends binary as an Engine.IO message: a 4 byte first.
        if self.v3() && data.first() == Some(&4) {
            data = &data[1..];
        }
        let p = self.pending.as_mut().filter(|p| p.side == m.side)?;
        p.sizes.push(data.len());
        let num = p.sizes.len() - 1;
        let json = json!({
            "protocol": "socket.io",
            "type": "attachment",
            "num": num,
            "of": p.total,
            "len": data.len(),
        });
        let mut text = format!(
            "attachment {}/{} ({} bytes) of {}",
            num + 1,
            p.total,
            data.len(),
            p.text
        );
        if p.sizes.len() == p.total {
            let sizes: Vec<String> = p.sizes.iter().map(usize::to_string).collect();
            text = format!("{} complete: {} bytes", p.text, sizes.join(" + "));
            self.pending = None;
        }
        Some(finish(Reading::new(text, json)))
    }
}

impl Annotator for SocketIo {
    fn name(&self) -> &'static str {
        "socket.io"
    }

    fn read(&mut self, m: &AppMessage<'_>) -> Option<Reading> {
        if m.binary {
            return self.attachment(m);
        }
        let text = m.text?;
        let (kind, rest) = split_first(text)?;
        let eio = |ty: &str, extra: Value| {
            let mut j = json!({"protocol": "socket.io", "layer": "engine.io", "type": ty});
            if let (Value::Object(o), Value::Object(e)) = (&mut j, extra) {
                o.extend(e);
            }
            j
        };
        let r = match kind {
            '0' => {
                let v: Value = serde_json::from_str(rest).ok()?;
                let o = v.as_object()?;
                let sid = o.get("sid")?.as_str()?.to_string();
                if self.eio.is_none() {
                    // v4 added maxPayload to the handshake.
                    self.eio = Some(if o.contains_key("maxPayload") { 4 } else { 3 });
                }
                let mut t = format!("open sid {sid}");
                for k in ["pingInterval", "pingTimeout", "maxPayload"] {
                    if let Some(x) = o.get(k) {
                        t.push_str(&format!(" {k} {x}"));
                    }
                }
                if let Some(u) = o.get("upgrades") {
                    t.push_str(&format!(" upgrades {}", json_text(u, 100)));
                }
                // The session id is not a name a person would know the connection by (it is
                // in the reading): the connection stays named by its address.
                Reading::new(t, eio("open", json!({"handshake": json_clipped(&v, 1000)})))
            }
            '1' if rest.is_empty() => Reading::new("close".into(), eio("close", json!({}))),
            '2' | '3' => {
                let ty = if kind == '2' { "ping" } else { "pong" };
                if rest == "probe" {
                    Reading::new(format!("{ty} probe"), eio(ty, json!({"probe": true})))
                } else if rest.is_empty() {
                    // v4: the server pings and the client answers; v3 the other way round.
                    // Either way a ping asks and the next pong answers.
                    Reading::new(ty.into(), eio(ty, json!({})))
                        .heartbeat()
                        .pair("engine.io ping", ty == "ping")
                } else {
                    Reading::new(
                        format!("{ty} {}", json_text(&Value::String(rest.into()), PREVIEW)),
                        eio(ty, json!({"data": clip(rest, PREVIEW)})),
                    )
                    .heartbeat()
                }
            }
            '4' => return socket_io(rest, m.side, &mut self.pending).map(finish),
            '5' if rest.is_empty() => Reading::new("upgrade".into(), eio("upgrade", json!({}))),
            '6' if rest.is_empty() => Reading::new("noop".into(), eio("noop", json!({}))),
            _ => return None,
        };
        Some(finish(r))
    }

    fn memory(&self) -> usize {
        self.pending.as_ref().map_or(0, |p| {
            p.text.capacity() + p.sizes.capacity() * size_of::<usize>()
        })
    }
}

fn other(s: Side) -> Side {
    match s {
        Side::Client => Side::Server,
        Side::Server => Side::Client,
    }
}

fn split_first(s: &str) -> Option<(char, &str)> {
    let c = s.chars().next()?;
    Some((c, &s[c.len_utf8()..]))
}

/// The Socket.IO packet in an Engine.IO message (`rest` is what follows the `4`). A message
/// that is not a Socket.IO packet is read as a plain Engine.IO message.
fn socket_io(rest: &str, side: Side, pending: &mut Option<Pending>) -> Option<Reading> {
    let plain = || {
        Reading::new(
            format!(
                "message {}",
                json_text(&Value::String(rest.into()), PREVIEW)
            ),
            json!({"protocol": "socket.io", "layer": "engine.io", "type": "message", "data": clip(rest, PREVIEW)}),
        )
    };
    let Some(p) = Packet::parse(rest) else {
        return Some(plain());
    };
    let name = match p.kind {
        0 => "connect",
        1 => "disconnect",
        2 => "event",
        3 => "ack",
        4 => "connect_error",
        5 => "binary_event",
        6 => "binary_ack",
        _ => return Some(plain()),
    };
    let mut j = Map::new();
    j.insert("protocol".into(), "socket.io".into());
    j.insert("type".into(), name.into());
    // Socket.IO 2 carries a CONNECT's query in the namespace: `/chat?token=abc`.
    let (nsp, query) = match p.nsp.split_once('?') {
        Some((n, q)) => (n, Some(q)),
        None => (p.nsp, None),
    };
    j.insert("namespace".into(), nsp.into());
    if let Some(q) = query {
        j.insert("query".into(), clip(q, PREVIEW).into());
    }
    let mut t = String::new();
    if nsp != "/" {
        t.push_str(nsp);
        t.push(' ');
    }
    match p.kind {
        2 | 5 => {
            t.push_str("event");
            let args = p.data.as_ref().and_then(Value::as_array);
            let mut args: &[Value] = args.map_or(&[], |a| a.as_slice());
            // The text shows the arguments as sent: raw JSON, member order kept.
            let raw = raw_items(p.raw).unwrap_or_default();
            let mut raw: &[&str] = &raw;
            if let Some(Value::String(ev)) = args.first() {
                t.push(' ');
                t.push_str(&json_text(&Value::String(ev.clone()), 200));
                j.insert("event".into(), clip(ev, 200).into());
                args = &args[1..];
                raw = raw.get(1..).unwrap_or_default();
            }
            if !raw.is_empty() {
                t.push(' ');
                t.push_str(&placeholders(&raw_text(
                    &format!("[{}]", raw.join(",")),
                    PREVIEW,
                )));
            }
            let args = Value::Array(args.to_vec());
            j.insert("args".into(), json_clipped(&args, 2000));
            if let Some(id) = p.ack {
                t.push_str(&format!(" ack {id}"));
            }
        }
        3 | 6 => {
            let id = p.ack.map_or("?".to_string(), |i| i.to_string());
            t.push_str(&format!("ack {id}"));
            if let Some(d) = &p.data {
                t.push(' ');
                t.push_str(&placeholders(&raw_text(p.raw, PREVIEW)));
                j.insert("args".into(), json_clipped(d, 2000));
            }
        }
        _ => {
            t.push_str(name);
            if let Some(q) = query {
                t.push_str(&format!(" ?{}", clip(q, PREVIEW)));
            }
            if let Some(d) = &p.data {
                if let Some(m) = d.get("message").and_then(Value::as_str) {
                    t.push_str(&format!(": {}", clip(m, PREVIEW)));
                } else {
                    t.push(' ');
                    t.push_str(&raw_text(p.raw, PREVIEW));
                }
                j.insert("data".into(), json_clipped(d, 2000));
            }
        }
    }
    if let Some(id) = p.ack {
        j.insert("ack".into(), id.into());
    }
    let mut r = Reading::new(String::new(), Value::Null);
    if let Some(n) = p.attachments {
        j.insert("attachments".into(), n.into());
        t.push_str(&format!(" (+{n} binary)"));
        *pending = (n > 0 && n <= MAX_ATTACHMENTS).then(|| Pending {
            text: clip(&t, PENDING_TEXT),
            side,
            total: n,
            sizes: Vec::new(),
        });
    }
    if let Some(id) = p.ack {
        // The side that asks for an ack sends an event; the ack comes back from the other.
        // Ack ids are per sender, so the key names who asked.
        let asker = if matches!(p.kind, 2 | 5) {
            side
        } else {
            other(side)
        };
        let who = if asker == Side::Client { "c" } else { "s" };
        r = r.pair(format!("{who}{nsp} {id}"), matches!(p.kind, 2 | 5));
    }
    r.text = t;
    r.json = Value::Object(j);
    Some(r)
}

/// Binary placeholders shown as `<binary N>` in the (compact, raw) text: socket.io-parser
/// writes each as `{"_placeholder":true,"num":N}`.
fn placeholders(text: &str) -> String {
    const P: &str = r#"{"_placeholder":true,"num":"#;
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(P) {
        let after = &rest[i + P.len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        out.push_str(&rest[..i]);
        if digits > 0 && after[digits..].starts_with('}') {
            out.push_str(&format!("\"<binary {}>\"", &after[..digits]));
            rest = &after[digits + 1..];
        } else {
            out.push_str(P);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

struct Packet<'a> {
    kind: u8,
    /// The JSON as sent ("" when there is none).
    raw: &'a str,
    attachments: Option<usize>,
    nsp: &'a str,
    ack: Option<u64>,
    data: Option<Value>,
}

impl<'a> Packet<'a> {
    /// Parses like socket.io-parser's decoder.
    fn parse(s: &'a str) -> Option<Packet<'a>> {
        let b = s.as_bytes();
        let kind = b.first()?.checked_sub(b'0').filter(|k| *k <= 6)?;
        let mut i = 1;
        let mut attachments = None;
        if kind == 5 || kind == 6 {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i == start || b.get(i) != Some(&b'-') {
                return None;
            }
            attachments = Some(s[start..i].parse().ok()?);
            i += 1;
        }
        let mut nsp = "/";
        if b.get(i) == Some(&b'/') {
            let start = i;
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
            nsp = &s[start..i];
            if i < b.len() {
                i += 1;
            }
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let ack = if i > start {
            Some(s[start..i].parse().ok()?)
        } else {
            None
        };
        let rest = &s[i..];
        let data = if rest.is_empty() {
            None
        } else {
            Some(serde_json::from_str::<Value>(rest).ok()?)
        };
        // Events carry an array; others an object, or (v4 protocol errors) a string.
        if matches!(kind, 2 | 3 | 5 | 6) && !data.as_ref().is_none_or(Value::is_array) {
            return None;
        }
        if matches!(kind, 2 | 5) && data.is_none() {
            return None;
        }
        Some(Packet {
            kind,
            raw: rest,
            attachments,
            nsp,
            ack,
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(a: &mut SocketIo, side: Side, t: &str) -> Option<Reading> {
        a.read(&AppMessage::text(side, t))
    }

    fn text(a: &mut SocketIo, side: Side, t: &str) -> String {
        read(a, side, t).unwrap_or_else(|| panic!("{t}")).text
    }

    // Examples from the Engine.IO and Socket.IO protocol documents.
    #[test]
    fn engine_io_packets() {
        let mut a = SocketIo::new(Some(4));
        let open = read(
            &mut a,
            Side::Server,
            r#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#,
        )
        .unwrap();
        assert_eq!(
            open.text,
            r#"open sid lv_VI97HAXpY6yYWAAAC pingInterval 25000 pingTimeout 20000 maxPayload 1000000 upgrades ["websocket"]"#
        );
        assert_eq!(open.names_connection, None);
        assert_eq!(open.json["type"], "open");
        let ping = read(&mut a, Side::Server, "2").unwrap();
        assert!(ping.heartbeat && ping.text == "ping");
        assert_eq!(ping.pairing, Some(("engine.io ping".into(), true)));
        let pong = read(&mut a, Side::Client, "3").unwrap();
        assert!(pong.heartbeat && pong.pairing == Some(("engine.io ping".into(), false)));
        assert_eq!(text(&mut a, Side::Client, "2probe"), "ping probe");
        assert_eq!(text(&mut a, Side::Server, "3probe"), "pong probe");
        assert_eq!(text(&mut a, Side::Client, "5"), "upgrade");
        assert_eq!(text(&mut a, Side::Client, "6"), "noop");
        assert_eq!(text(&mut a, Side::Client, "1"), "close");
        assert_eq!(text(&mut a, Side::Client, "4hello"), r#"message "hello""#);
        assert!(read(&mut a, Side::Client, "7").is_none());
        assert!(read(&mut a, Side::Client, "").is_none());
        assert!(read(&mut a, Side::Client, "hello").is_none());
        // v3 is told by the handshake without maxPayload.
        let mut a = SocketIo::new(None);
        read(
            &mut a,
            Side::Server,
            r#"0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":5000}"#,
        )
        .unwrap();
        assert_eq!(a.eio, Some(3));
        assert!(read(&mut a, Side::Client, "2").unwrap().heartbeat);
    }

    #[test]
    fn socket_io_packets() {
        let mut a = SocketIo::new(Some(4));
        let c = |a: &mut SocketIo, t| text(a, Side::Client, t);
        assert_eq!(c(&mut a, "40"), "connect");
        assert_eq!(c(&mut a, "40/admin,"), "/admin connect");
        assert_eq!(
            c(&mut a, r#"40/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}"#),
            r#"/admin connect {"sid":"oSO0OpakMV_3jnilAAAA"}"#
        );
        assert_eq!(
            c(&mut a, r#"44{"message":"Not authorized"}"#),
            "connect_error: Not authorized"
        );
        assert_eq!(c(&mut a, "41/admin,"), "/admin disconnect");
        // Socket.IO 2: the CONNECT's query rides in the namespace.
        let q = read(&mut a, Side::Client, "40/chat?token=abc,").unwrap();
        assert_eq!(q.text, "/chat connect ?token=abc");
        assert_eq!(
            (&q.json["namespace"], &q.json["query"]),
            (&json!("/chat"), &json!("token=abc"))
        );
        let ev = read(&mut a, Side::Client, r#"42["hello",1]"#).unwrap();
        assert_eq!(ev.text, r#"event "hello" [1]"#);
        assert_eq!(
            ev.json,
            json!({"protocol":"socket.io","type":"event","namespace":"/","event":"hello","args":[1]})
        );
        assert_eq!(ev.pairing, None);
        let ev = read(&mut a, Side::Client, r#"42/chat,12["message","hi, all !"]"#).unwrap();
        assert_eq!(ev.text, r#"/chat event "message" ["hi, all !"] ack 12"#);
        assert_eq!(ev.json["ack"], 12);
        assert_eq!(ev.pairing, Some(("c/chat 12".into(), true)));
        let ack = read(&mut a, Side::Server, r#"43/chat,12["bar"]"#).unwrap();
        assert_eq!(ack.text, r#"/chat ack 12 ["bar"]"#);
        assert_eq!(ack.pairing, Some(("c/chat 12".into(), false)));
        assert_eq!(c(&mut a, r#"42["ping"]"#), r#"event "ping""#);
        // Arguments as sent: member order and escapes kept, whitespace dropped.
        assert_eq!(
            c(
                &mut a,
                r#"42["news", {"title": "welcome", "n": [1, 2], "q": "a\"b"}]"#
            ),
            r#"event "news" [{"title":"welcome","n":[1,2],"q":"a\"b"}]"#
        );
        // v4-protocol (Socket.IO 2) error packet with a string.
        assert_eq!(
            c(&mut a, r#"44"Not authorized""#),
            r#"connect_error "Not authorized""#
        );
        // Not a Socket.IO packet: a plain Engine.IO message.
        assert_eq!(c(&mut a, "42nope"), r#"message "2nope""#);
        assert_eq!(c(&mut a, r#"42{"a":1}"#), r#"message "2{\"a\":1}""#);
    }

    #[test]
    fn binary_attachments_join_their_placeholders() {
        let mut a = SocketIo::new(Some(4));
        let ev = read(
            &mut a,
            Side::Client,
            r#"451-["upload",{"_placeholder":true,"num":0}]"#,
        )
        .unwrap();
        assert_eq!(ev.text, r#"event "upload" ["<binary 0>"] (+1 binary)"#);
        assert_eq!(ev.json["attachments"], 1);
        let att = a
            .read(&AppMessage::binary(Side::Client, &[1, 2, 3]))
            .unwrap();
        assert_eq!(
            att.text,
            r#"event "upload" ["<binary 0>"] (+1 binary) complete: 3 bytes"#
        );
        assert_eq!(att.json["type"], "attachment");
        assert!(a.pending.is_none());
        // Nothing pending: a binary message is no Socket.IO packet.
        assert!(a.read(&AppMessage::binary(Side::Client, &[1])).is_none());
        let ack = read(
            &mut a,
            Side::Server,
            r#"462-/admin,15[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
        )
        .unwrap();
        assert_eq!(
            ack.text,
            r#"/admin ack 15 ["<binary 0>","<binary 1>"] (+2 binary)"#
        );
        // An attachment from the other side is not this packet's.
        assert!(a.read(&AppMessage::binary(Side::Client, &[1])).is_none());
        let first = a.read(&AppMessage::binary(Side::Server, &[9; 10])).unwrap();
        assert!(
            first
                .text
                .starts_with("attachment 1/2 (10 bytes) of /admin ack 15"),
            "{}",
            first.text
        );
        let last = a.read(&AppMessage::binary(Side::Server, &[])).unwrap();
        assert!(
            last.text.ends_with("complete: 10 + 0 bytes"),
            "{}",
            last.text
        );
        // v3 prefixes binary with 4.
        let mut a = SocketIo::new(Some(3));
        read(
            &mut a,
            Side::Client,
            r#"451-["x",{"_placeholder":true,"num":0}]"#,
        )
        .unwrap();
        let att = a
            .read(&AppMessage::binary(Side::Client, &[4, 7, 7]))
            .unwrap();
        assert!(att.text.ends_with("complete: 2 bytes"));
        // An absurd count is not followed.
        read(&mut a, Side::Client, r#"4599999999-["x"]"#).unwrap();
        assert!(a.pending.is_none());
        assert!(read(&mut a, Side::Client, r#"459999999999999999999999-["x"]"#).is_some());
    }

    #[test]
    fn hostile_input_is_bounded() {
        let mut a = SocketIo::new(None);
        let deep = format!("42[\"x\",{}{}]", "[".repeat(10_000), "]".repeat(10_000));
        let _ = read(&mut a, Side::Client, &deep);
        let big = format!("42[\"x\",\"{}\"]", "y".repeat(1 << 20));
        let r = read(&mut a, Side::Client, &big).unwrap();
        assert!(r.text.len() < 3000);
        assert!(json_text(&r.json, 1 << 20).len() < 5000);
        for t in [
            "4", "45", "45-", "451", "4/", "4/x", "42/x,", "0", "0{", "0[]", "é", "4é",
        ] {
            let _ = read(&mut a, Side::Client, t);
        }
        assert!(a.memory() < 1024);
    }
}
