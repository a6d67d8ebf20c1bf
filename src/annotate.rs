//! Annotations: what an application protocol reads in each message, made in the engine for
//! every message before any display filter, so that what a view shows never depends on
//! what another view filtered away, and never changing what was decoded.
//!
//! Each connection has a [`ConnAnnotator`]. It hands the protocol readers of [`crate::app`]
//! what they claim a connection by — the negotiated subprotocol of the 101 and the upgrade
//! path first, then the content of the first data messages — and the reader that claims it
//! reads every data message after that (workerman-chat is one of them). Binary messages that
//! no reader reads (of connections none claimed, or that their protocol does not read) are
//! read as MessagePack or CBOR when they are exactly one such value. Request/response pairs (JSON-RPC ids, Socket.IO acks, GraphQL operation ids,
//! MQTT packet ids) give latencies. A reading may name the connection (a chat login, an MQTT
//! client id): [`ConnAnnotator::label`].
//!
//! Everything kept is bounded and reported by [`ConnAnnotator::memory`], which the flow table
//! charges to the ledger's `views` pool: the upgrade path until the 101 (at most
//! [`MAX_PATH`]), the name ([`MAX_NAME`]), pending requests ([`MAX_PENDING`] keys of at most
//! [`MAX_KEY`] bytes), and the reader's own state (partial MQTT packets, Socket.IO binary
//! attachments: see `app::Annotator::memory`).

use crate::app::{self, Annotator, AppMessage, Pairs, Side};
use crate::capture::Timestamp;
use crate::event::{Annotation, Dir, HttpRequest, HttpResponse, Message, Opcode};
use serde_json::Value;

/// Longest nickname kept: names come from the wire and are charged to the ledger.
pub const MAX_NAME: usize = 64;
/// Longest upgrade path kept until the 101 (what claims by path need is at its start).
pub const MAX_PATH: usize = 1024;
/// Requests waiting for their response, per connection; past it the oldest is forgotten.
pub const MAX_PENDING: usize = 64;
/// Longest pairing key kept; requests with longer keys (huge JSON-RPC string ids) are not
/// timed.
pub const MAX_KEY: usize = 128;
/// Data messages offered to the claim before a connection is taken as no known protocol.
/// Generous, so that a capture that starts in the middle of a chat still finds its first
/// login or say: a claim costs at most one JSON parse per message.
pub const CLAIM_TRIES: u16 = 64;

/// `--app`: read application protocols automatically, not at all, or one forced protocol.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AppMode {
    /// By subprotocol, then path, then content (`--app auto`, the default).
    #[default]
    Auto,
    /// No readings at all (`--app none`).
    Off,
    /// Every websocket connection read as this protocol (one of `app::NAMES`).
    Forced(&'static str),
}

impl AppMode {
    /// Parses `auto`, `none` or a protocol name (`app::by_name`'s, aliases included).
    pub fn parse(s: &str) -> Result<AppMode, String> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(AppMode::Auto),
            "none" | "off" => Ok(AppMode::Off),
            _ => app::by_name(s)
                .map(|a| AppMode::Forced(a.name()))
                .ok_or_else(|| {
                    format!(
                        "unknown application protocol {s:?}: --app takes auto, none or one of {}",
                        app::NAMES.join(", ")
                    )
                }),
        }
    }
}

/// One connection's reading state. Small inline (every tracked connection has one): what
/// only some connections need is boxed when first needed.
#[derive(Default)]
pub struct ConnAnnotator {
    /// The reader that claimed the connection.
    reader: Option<Box<dyn Annotator>>,
    rest: Option<Box<Rest>>,
    mode: Mode,
    /// Data messages offered to the claim so far.
    tries: u16,
}

/// `AppMode` in two bytes: the forced protocol by its index in `app::NAMES`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Mode {
    #[default]
    Auto,
    Off,
    Forced(u8),
}

#[derive(Default)]
struct Rest {
    /// The upgrade request's path, until the 101 answers it.
    path: Option<Box<str>>,
    /// The name the connection's traffic gave it.
    name: Option<Box<str>>,
    pairs: Option<Pairs>,
}

impl std::fmt::Debug for ConnAnnotator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnAnnotator")
            .field("mode", &self.mode)
            .field("reader", &self.reader.as_ref().map(|r| r.name()))
            .field("name", &self.label())
            .finish()
    }
}

impl ConnAnnotator {
    /// A connection's annotator under `--app` mode `mode`.
    pub fn new(mode: AppMode) -> ConnAnnotator {
        let mode = match mode {
            AppMode::Auto => Mode::Auto,
            AppMode::Off => Mode::Off,
            AppMode::Forced(name) => app::NAMES
                .iter()
                .position(|n| *n == name)
                .map_or(Mode::Off, |i| Mode::Forced(i as u8)),
        };
        ConnAnnotator {
            mode,
            ..ConnAnnotator::default()
        }
    }

    fn rest(&mut self) -> &mut Rest {
        self.rest.get_or_insert_with(Box::default)
    }

    /// The name this connection's traffic gave it (a chat login, an MQTT client id, a STOMP
    /// login, an Engine.IO session id), if any.
    pub fn label(&self) -> Option<&str> {
        self.rest.as_ref()?.name.as_deref()
    }

    /// The protocol that claimed the connection, if one did.
    pub fn protocol(&self) -> Option<&'static str> {
        self.reader.as_ref().map(|r| r.name())
    }

    /// Heap bytes held (bounded: see the module's documentation).
    pub fn memory(&self) -> usize {
        let rest = self.rest.as_ref().map_or(0, |r| {
            size_of::<Rest>()
                + r.path.as_ref().map_or(0, |p| p.len())
                + r.name.as_ref().map_or(0, |n| n.len())
                + r.pairs.as_ref().map_or(0, Pairs::memory)
        });
        rest + self
            .reader
            .as_ref()
            .map_or(0, |r| r.memory() + size_of_val(&**r))
    }

    /// Stops reading this connection and frees what the reading holds but the name (the
    /// memory budget is full).
    pub fn give_up(&mut self) {
        self.mode = Mode::Off;
        self.reader = None;
        if let Some(r) = &mut self.rest {
            r.path = None;
            r.pairs = None;
        }
    }

    /// The client's upgrade request: its path is kept until the 101 answers it.
    pub fn request(&mut self, r: &HttpRequest) {
        if r.websocket_upgrade && self.mode == Mode::Auto {
            self.rest().path = Some(app_clip(&r.path, MAX_PATH).into());
        }
    }

    /// The server's response: a 101 settles what the handshake can claim.
    pub fn response(&mut self, r: &HttpResponse) {
        let path = self.rest.as_mut().and_then(|x| x.path.take());
        // The path was all it held: an idle connection keeps nothing boxed.
        if self
            .rest
            .as_ref()
            .is_some_and(|x| x.name.is_none() && x.pairs.is_none())
        {
            self.rest = None;
        }
        if !r.upgraded || self.mode != Mode::Auto || self.reader.is_some() {
            return;
        }
        // The claim reads nothing of the message it is given when the subprotocol or the
        // path decides; an empty one decides nothing by content.
        let nothing = AppMessage::text(Side::Server, "");
        self.reader = app::claim(
            r.subprotocol.as_deref(),
            path.as_deref().unwrap_or(""),
            &nothing,
        );
    }

    /// Reads one message of direction `dir`, seen at `ts`.
    pub fn read(&mut self, dir: Dir, m: &Message<'_>, ts: Timestamp) -> Option<Annotation> {
        // Data messages only, and only whole ones: a reading of a cut message could say what
        // the message did not (a Text message's kept text is whole UTF-8, so its reading
        // stays as the chat view always made it: a cut JSON text does not parse).
        let binary = match m.opcode {
            Opcode::Text => false,
            Opcode::Binary if m.incomplete.is_none() && !m.truncated => true,
            _ => return None,
        };
        if self.mode == Mode::Off {
            return None;
        }
        let am = AppMessage {
            side: if dir == Dir::C2S {
                Side::Client
            } else {
                Side::Server
            },
            text: if binary { None } else { Some(m.text()?) },
            payload: m.payload,
            binary,
        };
        if self.reader.is_none() {
            match self.mode {
                Mode::Forced(i) => self.reader = app::by_name(app::NAMES[usize::from(i)]),
                Mode::Auto if self.tries < CLAIM_TRIES => {
                    self.tries += 1;
                    self.reader = app::claim(None, "", &am);
                }
                _ => {}
            }
        }
        let claimed = match &mut self.reader {
            // Read the name after the message: a GraphQL reader learns which of the two
            // protocols it reads from the messages.
            Some(a) => a.read(&am).map(|r| (a.name(), r)),
            None => None,
        };
        // A binary message its connection's protocol does not read (or of a connection none
        // claimed) may still be one MessagePack or CBOR value.
        let (protocol, r) = match claimed {
            Some(c) => c,
            None if binary && self.mode == Mode::Auto => {
                let r = app::payload::reading(am.payload)?;
                let p = match r.json["protocol"].as_str() {
                    Some("cbor") => "cbor",
                    _ => "msgpack",
                };
                (p, r)
            }
            None => return None,
        };
        if let Some(n) = &r.names_connection {
            self.rest().name = Some(app_clip(n, MAX_NAME).into());
        }
        let latency_ns = match &r.pairing {
            Some(p) if p.0.len() <= MAX_KEY => self
                .rest()
                .pairs
                .get_or_insert_with(|| Pairs::new(MAX_PENDING))
                .observe(p, ts.as_nanos())
                .and_then(|ns| u64::try_from(ns).ok()),
            _ => None,
        };
        let mut text = r.text;
        let mut json = match r.json {
            Value::Object(o) => o,
            other => {
                let mut o = serde_json::Map::new();
                o.insert("value".into(), other);
                o
            }
        };
        json.insert("protocol".into(), Value::from(protocol));
        json.insert("reading".into(), Value::from(text.clone()));
        if r.heartbeat {
            json.insert("heartbeat".into(), Value::Bool(true));
        }
        if let Some(ns) = latency_ns {
            text.push_str(&format!("  [{}]", latency_text(ns)));
            // Microseconds: what a pcap's timestamps resolve.
            json.insert(
                "latency_ms".into(),
                serde_json::Number::from_f64((ns / 1000) as f64 / 1000.0)
                    .map_or(Value::Null, Value::Number),
            );
        }
        Some(Annotation {
            protocol,
            text,
            heartbeat: r.heartbeat,
            json: Value::Object(json),
            latency_ns,
        })
    }
}

/// `1.704 ms`, `2.5 s`: a latency as the reading shows it.
pub fn latency_text(ns: u64) -> String {
    if ns < 1_000_000_000 {
        format!("{:.3} ms", ns as f64 / 1e6)
    } else {
        format!("{:.3} s", ns as f64 / 1e9)
    }
}

fn app_clip(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Opcode;

    fn msg(opcode: Opcode, payload: &[u8]) -> Message<'_> {
        let text = std::str::from_utf8(payload)
            .ok()
            .filter(|_| opcode == Opcode::Text);
        Message {
            opcode,
            payload,
            len: payload.len() as u64,
            wire_len: payload.len() as u64,
            compressed: false,
            frames: 1,
            truncated: false,
            incomplete: None,
            missing: Vec::new(),
            resync: false,
            valid_utf8: true,
            text,
            close_code: None,
            close_reason: None,
        }
    }

    fn at(ms: i64) -> Timestamp {
        Timestamp {
            secs: ms / 1000,
            nanos: (ms % 1000) as u32 * 1_000_000,
            nano_precision: false,
        }
    }

    #[test]
    fn workerman_is_claimed_by_content_and_names_the_connection() {
        let mut a = ConnAnnotator::new(AppMode::Auto);
        let login = br#"{"type":"login","client_name":"mynick","room_id":1}"#;
        let r = a.read(Dir::C2S, &msg(Opcode::Text, login), at(0)).unwrap();
        assert_eq!(
            (r.protocol, r.text.as_str()),
            ("workerman-chat", "mynick logs in to room 1")
        );
        assert_eq!(a.label(), Some("mynick"));
        assert_eq!(r.json["reading"], "mynick logs in to room 1");
        assert_eq!(r.json["protocol"], "workerman-chat");
        let say = br#"{"type":"say","to_client_id":"all","to_client_name":"all","content":"hi"}"#;
        let r = a.read(Dir::C2S, &msg(Opcode::Text, say), at(1)).unwrap();
        assert_eq!(r.text, "mynick → all: hi");
        let ping = a
            .read(Dir::S2C, &msg(Opcode::Text, br#"{"type":"ping"}"#), at(2))
            .unwrap();
        assert!(ping.heartbeat && ping.json["heartbeat"] == true);
        // Control frames are no application's.
        assert!(a.read(Dir::S2C, &msg(Opcode::Ping, b"x"), at(3)).is_none());
    }

    #[test]
    fn long_names_are_cut() {
        let mut a = ConnAnnotator::default();
        let login = format!(
            r#"{{"type":"login","client_name":"{}","room_id":1}}"#,
            "ж".repeat(1000)
        );
        assert!(
            a.read(Dir::C2S, &msg(Opcode::Text, login.as_bytes()), at(0))
                .is_some()
        );
        assert!(a.label().unwrap().len() <= MAX_NAME);
        assert!(a.memory() >= a.label().unwrap().len());
    }

    #[test]
    fn handshake_claims_and_pairs_time_responses() {
        let mut a = ConnAnnotator::new(AppMode::Auto);
        a.request(&HttpRequest {
            path: "/rpc".into(),
            websocket_upgrade: true,
            ..Default::default()
        });
        assert!(a.memory() >= 4);
        a.response(&HttpResponse {
            status: 101,
            upgraded: true,
            subprotocol: Some("jsonrpc".into()),
            ..Default::default()
        });
        assert_eq!(a.protocol(), Some("json-rpc"));
        // Nothing but the reader (which holds nothing) is left of the handshake.
        assert_eq!(a.memory(), 0);
        let call = br#"{"jsonrpc":"2.0","method":"add","params":[1,2],"id":7}"#;
        let r = a
            .read(Dir::C2S, &msg(Opcode::Text, call), at(1000))
            .unwrap();
        assert_eq!(r.latency_ns, None);
        let res = br#"{"jsonrpc":"2.0","result":3,"id":7}"#;
        let r = a.read(Dir::S2C, &msg(Opcode::Text, res), at(1012)).unwrap();
        assert_eq!(r.latency_ns, Some(12_000_000));
        assert!(r.text.ends_with("  [12.000 ms]"), "{}", r.text);
        assert_eq!(r.json["latency_ms"], 12.0);
        assert!(!r.json["reading"].as_str().unwrap().contains("ms]"));
    }

    #[test]
    fn modes() {
        assert_eq!(AppMode::parse("auto"), Ok(AppMode::Auto));
        assert_eq!(AppMode::parse("none"), Ok(AppMode::Off));
        assert_eq!(AppMode::parse("socketio"), Ok(AppMode::Forced("socket.io")));
        assert!(AppMode::parse("nope").unwrap_err().contains("socket.io"));
        let login = br#"{"type":"login","client_name":"n","room_id":1}"#;
        let mut off = ConnAnnotator::new(AppMode::Off);
        assert!(
            off.read(Dir::C2S, &msg(Opcode::Text, login), at(0))
                .is_none()
        );
        // Forced: a protocol the content would not claim.
        let mut f = ConnAnnotator::new(AppMode::Forced("socket.io"));
        let r = f.read(Dir::S2C, &msg(Opcode::Text, b"2"), at(0)).unwrap();
        assert!(r.heartbeat && r.protocol == "socket.io");
        let mut auto = ConnAnnotator::new(AppMode::Auto);
        assert!(
            auto.read(Dir::S2C, &msg(Opcode::Text, b"2"), at(0))
                .is_none()
        );
    }

    #[test]
    fn unclaimed_binary_is_read_as_msgpack_or_cbor_only_when_whole() {
        let mut a = ConnAnnotator::new(AppMode::Auto);
        let b = b"\x82\xa7compact\xc3\xa6schema\x00";
        let r = a.read(Dir::S2C, &msg(Opcode::Binary, b), at(0)).unwrap();
        assert_eq!(r.protocol, "msgpack");
        assert_eq!(r.text, r#"msgpack {"compact":true,"schema":0}"#);
        let mut cut = msg(Opcode::Binary, b);
        cut.truncated = true;
        assert!(a.read(Dir::S2C, &cut, at(0)).is_none());
        // A claimed connection's binary message its protocol does not read.
        let mut rpc = ConnAnnotator::new(AppMode::Auto);
        let call = br#"{"jsonrpc":"2.0","method":"add","params":[1,2],"id":7}"#;
        rpc.read(Dir::C2S, &msg(Opcode::Text, call), at(0)).unwrap();
        assert_eq!(rpc.protocol(), Some("json-rpc"));
        let r = rpc.read(Dir::S2C, &msg(Opcode::Binary, b), at(0)).unwrap();
        assert_eq!(
            (r.protocol, r.json["type"].as_str()),
            ("msgpack", Some("value"))
        );
        // Forced, nothing but that protocol is read.
        let mut forced = ConnAnnotator::new(AppMode::Forced("cbor"));
        assert!(
            forced
                .read(Dir::S2C, &msg(Opcode::Binary, b), at(0))
                .is_none()
        );
    }
}
