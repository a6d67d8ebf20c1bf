//! STOMP 1.0–1.2 frames, and SockJS framing around them (or around anything else).
//!
//! A STOMP frame: a command line, `name:value` header lines (1.2 escapes `\\n` `\\c` `\\\\`
//! `\\r`, except in CONNECT and CONNECTED), an empty line, the body up to a NUL (or exactly
//! `content-length` bytes, then the NUL); EOLs between frames are heart-beats. One websocket
//! message may carry several frames.
//!
//! SockJS over its raw websocket transport: the server sends `o` (open), `h` (heartbeat),
//! `a["…","…"]` (an array of messages), `m"…"` (one message, old servers) and `c[code,"reason"]`
//! (close); the client sends a JSON array of strings (or one string). The messages inside are
//! read as STOMP when they are STOMP frames and shown as strings otherwise.

use super::{Annotator, AppMessage, PREVIEW, Reading, clip, finish, json_text, preview_bytes};
use serde_json::{Map, Value, json};

const COMMANDS: [&str; 15] = [
    "CONNECT",
    "STOMP",
    "CONNECTED",
    "SEND",
    "SUBSCRIBE",
    "UNSUBSCRIBE",
    "MESSAGE",
    "RECEIPT",
    "ERROR",
    "ACK",
    "NACK",
    "BEGIN",
    "COMMIT",
    "ABORT",
    "DISCONNECT",
];

fn is_command(s: &str) -> bool {
    COMMANDS.contains(&s)
}

/// Headers shown in the text, in this order (`passcode` never is).
const SHOWN: [&str; 16] = [
    "destination",
    "id",
    "subscription",
    "message-id",
    "ack",
    "transaction",
    "receipt",
    "receipt-id",
    "accept-version",
    "version",
    "host",
    "login",
    "heart-beat",
    "server",
    "session",
    "message",
];

/// A client's first frame: CONNECT or STOMP with its headers.
pub fn is_connect_frame(text: &str) -> bool {
    let t = text.trim_start_matches(['\r', '\n']);
    let Some((cmd, rest)) = t.split_once('\n') else {
        return false;
    };
    matches!(cmd.trim_end_matches('\r'), "CONNECT" | "STOMP")
        && (rest.contains("accept-version:") || rest.contains("host:") || rest.starts_with('\n'))
        && t.contains('\0')
}

/// A SockJS websocket transport path: `/<prefix>/<server>/<session>/websocket`, where the
/// server id is digits and the session id has no dots.
pub fn sockjs_path(path: &str) -> bool {
    let parts: Vec<&str> = path.trim_end_matches('/').rsplit('/').take(4).collect();
    matches!(parts.as_slice(), ["websocket", session, server, _]
        if !server.is_empty() && server.len() <= 10 && server.bytes().all(|b| b.is_ascii_digit())
           && !session.is_empty() && !session.contains('.'))
}

/// The SockJS open frame.
pub fn is_sockjs_open(text: &str) -> bool {
    text == "o"
}

/// One STOMP frame.
#[derive(Debug)]
struct Frame {
    command: String,
    headers: Vec<(String, String)>,
    body_len: usize,
    body_preview: String,
    /// The frame ran out before its NUL.
    truncated: bool,
}

impl Frame {
    fn header(&self, name: &str) -> Option<&str> {
        // STOMP 1.2: the first of repeated headers counts.
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        let mut t = self.command.clone();
        for name in SHOWN {
            if let Some(v) = self.header(name) {
                if name == "destination" {
                    t.push_str(&format!(" {}", clip(v, 200)));
                } else {
                    t.push_str(&format!(" {name}:{}", clip(v, 100)));
                }
            }
        }
        if self.body_len > 0 {
            t.push(' ');
            t.push_str(&self.body_preview);
        }
        if self.truncated {
            t.push_str(" (incomplete)");
        }
        t
    }

    fn json(&self) -> Value {
        let mut h = Map::new();
        for (k, v) in self.headers.iter().take(64) {
            if k == "passcode" {
                continue;
            }
            h.entry(clip(k, 100)).or_insert_with(|| clip(v, 500).into());
        }
        let mut j = json!({"command": self.command, "headers": h, "body_len": self.body_len});
        if self.body_len > 0 {
            j["body"] = self.body_preview.clone().into();
        }
        if self.truncated {
            j["incomplete"] = true.into();
        }
        j
    }
}

/// Undoes STOMP 1.2 header escapes; None for an undefined escape.
fn unescape(s: &str) -> Option<String> {
    if !s.contains('\\') {
        return Some(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match it.next()? {
            'n' => '\n',
            'r' => '\r',
            'c' => ':',
            '\\' => '\\',
            _ => return None,
        });
    }
    Some(out)
}

/// Parses the frames of one message: Ok((frames, heart-beat EOLs seen)), Err when it is not
/// STOMP.
fn parse_frames(data: &[u8]) -> Result<(Vec<Frame>, usize), ()> {
    let mut frames = Vec::new();
    let mut eols = 0;
    let mut i = 0;
    while i < data.len() {
        // Heart-beats / EOLs between frames.
        if data[i] == b'\n' {
            eols += 1;
            i += 1;
            continue;
        }
        if data[i..].starts_with(b"\r\n") {
            eols += 1;
            i += 2;
            continue;
        }
        if frames.len() >= 64 {
            break;
        }
        let line_end = |from: usize| {
            data[from..]
                .iter()
                .position(|&b| b == b'\n')
                .map(|p| from + p)
        };
        let end = line_end(i).ok_or(())?;
        let cmd = std::str::from_utf8(&data[i..end]).map_err(|_| ())?;
        let cmd = cmd.strip_suffix('\r').unwrap_or(cmd);
        if !is_command(cmd) {
            return Err(());
        }
        let escapes = !matches!(cmd, "CONNECT" | "CONNECTED");
        let mut headers = Vec::new();
        i = end + 1;
        let mut truncated = false;
        loop {
            let Some(end) = line_end(i) else {
                truncated = true;
                i = data.len();
                break;
            };
            let line = std::str::from_utf8(&data[i..end]).map_err(|_| ())?;
            let line = line.strip_suffix('\r').unwrap_or(line);
            i = end + 1;
            if line.is_empty() {
                break;
            }
            let (k, v) = line.split_once(':').ok_or(())?;
            if headers.len() < 256 {
                let (k, v) = if escapes {
                    (unescape(k).ok_or(())?, unescape(v).ok_or(())?)
                } else {
                    (k.to_string(), v.to_string())
                };
                headers.push((clip(&k, 200), clip(&v, 1000)));
            }
        }
        let mut frame = Frame {
            command: cmd.to_string(),
            headers,
            body_len: 0,
            body_preview: String::new(),
            truncated,
        };
        if !truncated {
            let rest = &data[i..];
            let len = frame
                .header("content-length")
                .and_then(|l| l.trim().parse::<usize>().ok());
            let (body, next) = match len {
                Some(n) if n < rest.len() && rest[n] == 0 => (&rest[..n], i + n + 1),
                Some(n) if n >= rest.len() => {
                    frame.truncated = true;
                    (rest, data.len())
                }
                _ => match rest.iter().position(|&b| b == 0) {
                    Some(p) => (&rest[..p], i + p + 1),
                    None => {
                        frame.truncated = true;
                        (rest, data.len())
                    }
                },
            };
            frame.body_len = body.len();
            frame.body_preview = preview_bytes(body, PREVIEW);
            i = next;
        }
        frames.push(frame);
    }
    Ok((frames, eols))
}

/// A STOMP reading of one message, or None when it is not STOMP.
fn stomp_reading(data: &[u8]) -> Option<Reading> {
    let (frames, eols) = parse_frames(data).ok()?;
    if frames.is_empty() {
        if eols == 0 {
            return None;
        }
        return Some(
            Reading::new(
                "heart-beat".into(),
                json!({"protocol": "stomp", "type": "heart-beat"}),
            )
            .heartbeat(),
        );
    }
    let text: Vec<String> = frames.iter().map(Frame::text).collect();
    let first = &frames[0];
    let mut json = json!({
        "protocol": "stomp",
        "type": first.command.to_ascii_lowercase(),
    });
    if frames.len() == 1 {
        if let (Value::Object(o), Value::Object(f)) = (&mut json, first.json()) {
            o.extend(f);
        }
    } else {
        json["frames"] = frames.iter().map(Frame::json).collect();
    }
    let mut r = Reading::new(text.join(" | "), json);
    // A client frame with `receipt` asks for a RECEIPT (or an ERROR) with that receipt-id.
    // Brokers may pass a SEND's receipt header on in its MESSAGE (RabbitMQ does): that one
    // asks nothing.
    let server_frame = matches!(
        first.command.as_str(),
        "CONNECTED" | "MESSAGE" | "RECEIPT" | "ERROR"
    );
    if let Some(k) = first.header("receipt").filter(|_| !server_frame) {
        r = r.pair(format!("receipt {k}"), true);
    } else if let Some(k) = first
        .header("receipt-id")
        .filter(|_| matches!(first.command.as_str(), "RECEIPT" | "ERROR"))
    {
        r = r.pair(format!("receipt {k}"), false);
    }
    if matches!(first.command.as_str(), "CONNECT" | "STOMP")
        && let Some(l) = first.header("login")
    {
        r.names_connection = Some(clip(l, 200));
    }
    Some(r)
}

/// The [`Annotator`] for STOMP frames, bare or inside SockJS framing.
pub struct Stomp {
    /// Named `sockjs` (claimed as SockJS) rather than `stomp`.
    sockjs: bool,
}

impl Stomp {
    /// `sockjs`: the reader names itself `sockjs` instead of `stomp` (it was claimed as, or
    /// forced to, SockJS); both read SockJS framing and STOMP alike.
    pub fn new(sockjs: bool) -> Stomp {
        Stomp { sockjs }
    }
}

/// The messages of a SockJS frame, if it is one: (kind, messages, close).
fn sockjs_frame(t: &str) -> Option<(&'static str, Vec<String>, Option<Value>)> {
    match t.as_bytes().first()? {
        b'o' if t.len() == 1 => Some(("open", vec![], None)),
        b'h' if t.len() == 1 => Some(("heartbeat", vec![], None)),
        b'a' => {
            let v: Vec<String> = serde_json::from_str(&t[1..]).ok()?;
            Some(("array", v, None))
        }
        b'm' => {
            let s: String = serde_json::from_str(&t[1..]).ok()?;
            Some(("message", vec![s], None))
        }
        b'c' => {
            let v: Value = serde_json::from_str(&t[1..]).ok()?;
            v.as_array().filter(|a| a.len() == 2 && a[0].is_u64())?;
            Some(("close", vec![], Some(v)))
        }
        // A client's send: a JSON array of strings, or one string.
        b'[' => {
            let v: Vec<String> = serde_json::from_str(t).ok()?;
            Some(("send", v, None))
        }
        b'"' => {
            let s: String = serde_json::from_str(t).ok()?;
            Some(("send", vec![s], None))
        }
        _ => None,
    }
}

impl Annotator for Stomp {
    fn name(&self) -> &'static str {
        if self.sockjs { "sockjs" } else { "stomp" }
    }

    fn read(&mut self, m: &AppMessage<'_>) -> Option<Reading> {
        // Plain STOMP first: a SockJS frame is never a STOMP frame (no command starts with
        // a lower-case letter, `[` or `"`), and a STOMP heart-beat is a lone EOL.
        if let Some(r) = stomp_reading(m.payload) {
            return Some(finish(r));
        }
        let t = m.as_text()?;
        let (kind, msgs, close) = sockjs_frame(t)?;
        let mut inner = Vec::new();
        let mut texts = Vec::new();
        let mut heartbeat = kind == "heartbeat";
        let mut pairing = None;
        let mut names = None;
        for s in msgs.iter().take(64) {
            match stomp_reading(s.as_bytes()) {
                Some(r) => {
                    texts.push(r.text);
                    heartbeat |= r.heartbeat && msgs.len() == 1;
                    pairing = pairing.or(r.pairing);
                    names = names.or(r.names_connection);
                    inner.push(r.json);
                }
                None => {
                    let short = json_text(&Value::String(clip(s, PREVIEW)), PREVIEW + 8);
                    texts.push(short);
                    inner.push(Value::String(clip(s, 2000)));
                }
            }
        }
        if msgs.len() > 64 {
            texts.push(format!("… {} more", msgs.len() - 64));
        }
        let text = match kind {
            "open" => "sockjs open".to_string(),
            "heartbeat" => "sockjs heartbeat".to_string(),
            "close" => {
                let c = close.as_ref().expect("close has its value");
                let reason = c[1]
                    .as_str()
                    .map_or_else(|| c[1].to_string(), str::to_string);
                format!("sockjs close {} {}", c[0], clip(&reason, PREVIEW))
            }
            _ => texts.join(" | "),
        };
        let mut j = json!({"protocol": "sockjs", "type": kind});
        if !inner.is_empty() {
            j["messages"] = Value::Array(inner);
        }
        if let Some(c) = close {
            j["code"] = c[0].clone();
            j["reason"] = c[1].clone();
        }
        let mut r = Reading::new(text, j);
        r.heartbeat = heartbeat;
        r.pairing = pairing;
        r.names_connection = names;
        Some(finish(r))
    }

    fn memory(&self) -> usize {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::Side;

    fn rd(a: &mut Stomp, t: &str) -> Reading {
        a.read(&AppMessage::text(Side::Client, t))
            .unwrap_or_else(|| panic!("{t:?}"))
    }

    // Frames from the STOMP 1.2 specification.
    #[test]
    fn specification_frames() {
        let mut a = Stomp::new(false);
        let c = rd(
            &mut a,
            "CONNECT\naccept-version:1.2\nhost:stomp.github.org\nlogin:guest\npasscode:secret\n\n\0",
        );
        assert_eq!(
            c.text,
            "CONNECT accept-version:1.2 host:stomp.github.org login:guest"
        );
        assert_eq!(c.names_connection.as_deref(), Some("guest"));
        assert!(!c.json.to_string().contains("secret"));
        assert_eq!(c.json["type"], "connect");
        assert_eq!(
            rd(&mut a, "CONNECTED\nversion:1.2\nheart-beat:0,0\n\n\0").text,
            "CONNECTED version:1.2 heart-beat:0,0"
        );
        let send = rd(
            &mut a,
            "SEND\ndestination:/queue/a\ncontent-type:text/plain\n\nhello queue a\n\0",
        );
        assert_eq!(send.text, "SEND /queue/a \"hello queue a\\n\"");
        assert_eq!(send.json["body_len"], 14);
        assert_eq!(send.json["headers"]["content-type"], "text/plain");
        assert_eq!(
            rd(
                &mut a,
                "SUBSCRIBE\nid:0\ndestination:/queue/foo\nack:client\n\n\0"
            )
            .text,
            "SUBSCRIBE /queue/foo id:0 ack:client"
        );
        assert_eq!(
            rd(&mut a, "UNSUBSCRIBE\nid:0\n\n\0").text,
            "UNSUBSCRIBE id:0"
        );
        assert_eq!(
            rd(&mut a, "ACK\nid:12345\ntransaction:tx1\n\n\0").text,
            "ACK id:12345 transaction:tx1"
        );
        assert_eq!(rd(&mut a, "NACK\nid:12345\n\n\0").text, "NACK id:12345");
        assert_eq!(
            rd(&mut a, "BEGIN\ntransaction:tx1\n\n\0").text,
            "BEGIN transaction:tx1"
        );
        assert_eq!(
            rd(&mut a, "COMMIT\ntransaction:tx1\n\n\0").text,
            "COMMIT transaction:tx1"
        );
        assert_eq!(
            rd(&mut a, "ABORT\ntransaction:tx1\n\n\0").text,
            "ABORT transaction:tx1"
        );
        let d = rd(&mut a, "DISCONNECT\nreceipt:77\n\n\0");
        assert_eq!(d.pairing, Some(("receipt 77".into(), true)));
        let r = rd(&mut a, "RECEIPT\nreceipt-id:77\n\n\0");
        assert_eq!(r.pairing, Some(("receipt 77".into(), false)));
        let m = rd(
            &mut a,
            "MESSAGE\nsubscription:0\nmessage-id:007\ndestination:/queue/a\ncontent-type:text/plain\n\nhello queue a\0",
        );
        assert_eq!(
            m.text,
            "MESSAGE /queue/a subscription:0 message-id:007 \"hello queue a\""
        );
        assert_eq!(m.pairing, None);
        let passed_on = rd(&mut a, "MESSAGE\nreceipt:77\ndestination:/queue/a\n\nx\0");
        assert_eq!(passed_on.pairing, None);
        let e = rd(
            &mut a,
            "ERROR\nreceipt-id:message-12345\ncontent-type:text/plain\ncontent-length:170\nmessage:malformed frame received\n\nThe message:\n-----\nMESSAGE\ndestined:/queue/a\nreceipt:message-12345\n\nHello queue a!\n-----\nDid not contain a destination header, which is REQUIRED\nfor message propagation.\n\0",
        );
        assert!(
            e.text.starts_with(
                "ERROR receipt-id:message-12345 message:malformed frame received \"The message:"
            ),
            "{}",
            e.text
        );
        assert_eq!(e.json["body_len"], 170);
        // Escapes, CRLF, content-length with a NUL in the body, two frames and heart-beats.
        let x = rd(
            &mut a,
            "\nMESSAGE\r\ndestination:/a\\cb\\nc\\\\\r\ncontent-length:3\r\n\r\na\0b\0\n\nRECEIPT\nreceipt-id:1\n\n\0\n",
        );
        assert_eq!(
            x.text,
            "MESSAGE /a:b\nc\\ \"a\\u0000b\" | RECEIPT receipt-id:1"
        );
        assert_eq!(x.json["frames"][1]["command"], "RECEIPT");
        // CONNECT headers are not unescaped.
        assert_eq!(
            rd(&mut a, "CONNECT\nlogin:a\\cb\n\n\0")
                .names_connection
                .as_deref(),
            Some("a\\cb")
        );
        let hb = rd(&mut a, "\n");
        assert!(hb.heartbeat);
        assert!(rd(&mut a, "\r\n\r\n").heartbeat);
        assert_eq!(
            rd(&mut a, "SEND\ndestination:/q\n\nno nul").text,
            "SEND /q \"no nul\" (incomplete)"
        );
        assert_eq!(
            rd(&mut a, "SEND\ndestination:/q\ncontent-length:99\n\nab\0").text,
            "SEND /q \"ab\\u0000\" (incomplete)"
        );
        // Not STOMP.
        for t in [
            "",
            "HELLO\n\n\0",
            "send\n\n\0",
            "SEND\nbad header\n\n\0",
            "SEND\nk:\\t\n\n\0",
            "{\"a\":1}",
        ] {
            assert!(
                a.read(&AppMessage::text(Side::Client, t)).is_none(),
                "{t:?}"
            );
        }
        assert!(is_connect_frame(
            "CONNECT\naccept-version:1.2\nhost:x\n\n\0"
        ));
        assert!(is_connect_frame("STOMP\r\naccept-version:1.2\r\n\r\n\0"));
        assert!(!is_connect_frame("CONNECT\n"));
    }

    // SockJS framing (the SockJS protocol's test suite's frames), with STOMP inside and not.
    #[test]
    fn sockjs() {
        let mut a = Stomp::new(true);
        assert_eq!(a.name(), "sockjs");
        assert_eq!(rd(&mut a, "o").text, "sockjs open");
        let h = rd(&mut a, "h");
        assert!(h.heartbeat && h.text == "sockjs heartbeat");
        let c = rd(
            &mut a,
            r#"["CONNECT\naccept-version:1.2,1.1,1.0\nheart-beat:10000,10000\n\n\u0000"]"#,
        );
        assert_eq!(
            c.text,
            "CONNECT accept-version:1.2,1.1,1.0 heart-beat:10000,10000"
        );
        assert_eq!(c.json["type"], "send");
        assert_eq!(c.json["messages"][0]["protocol"], "stomp");
        let m = rd(
            &mut a,
            r#"a["MESSAGE\ndestination:/topic/greetings\nsubscription:sub-0\nmessage-id:1\ncontent-length:23\n\n{\"content\":\"Hello, x!\"}\u0000"]"#,
        );
        assert_eq!(
            m.text,
            r#"MESSAGE /topic/greetings subscription:sub-0 message-id:1 "{\"content\":\"Hello, x!\"}""#
        );
        let hb = rd(&mut a, "a[\"\\n\"]");
        assert!(hb.heartbeat);
        assert_eq!(
            rd(&mut a, r#"a["hello","world"]"#).text,
            r#""hello" | "world""#
        );
        assert_eq!(rd(&mut a, r#"m"one""#).text, r#""one""#);
        let close = rd(&mut a, r#"c[3000,"Go away!"]"#);
        assert_eq!(close.text, "sockjs close 3000 Go away!");
        assert_eq!(close.json["code"], 3000);
        assert_eq!(rd(&mut a, r#""x""#).text, r#""x""#);
        for t in ["a", "a[1]", "c[]", "c[\"x\",1]", "oo", "hello", "[1]"] {
            assert!(a.read(&AppMessage::text(Side::Server, t)).is_none(), "{t}");
        }
        assert!(sockjs_path("/echo/123/abcdefgh/websocket"));
        assert!(sockjs_path("/gs-guide-websocket/542/x1y2z3/websocket"));
        assert!(!sockjs_path("/websocket"));
        assert!(!sockjs_path("/a/b/websocket"));
        assert!(!sockjs_path("/a/x/s/websocket"));
    }

    #[test]
    fn hostile_frames_are_bounded() {
        let mut a = Stomp::new(false);
        let many = "SEND\ndestination:/q\n\n\0".repeat(1000);
        let r = rd(&mut a, &many);
        assert!(r.text.len() < 2100);
        let headers = format!("SEND\n{}\n\0", "k:v\n".repeat(100_000));
        let r = rd(&mut a, &headers);
        assert!(r.json.to_string().len() < 10_000);
        let long = format!("SEND\ndestination:{}\n\n\0", "x".repeat(100_000));
        assert!(rd(&mut a, &long).text.len() < 2100);
        let _ = a.read(&AppMessage::binary(Side::Client, &[0xff, b'\n', 0]));
    }
}
