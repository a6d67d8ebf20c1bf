//! Annotations: what an application protocol reads in each message, made in the engine for
//! every message before any display filter, so that what a view shows never depends on
//! what another view filtered away. Today one protocol is read: workerman-chat's JSON (login,
//! say, logout, heartbeats); a connection's login names it.

use crate::event::{Annotation, Dir, Message};
use serde_json::Value;

/// Longest nickname kept: names come from the wire and are charged to the ledger.
const MAX_NAME: usize = 64;

/// One connection's reading state.
#[derive(Debug, Default)]
pub struct ConnAnnotator {
    /// The nickname the client logged in with, when its login was seen.
    name: Option<Box<str>>,
}

impl ConnAnnotator {
    /// The name this connection's traffic gave it (a chat login), if any.
    pub fn label(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Heap bytes held (bounded: names are cut at 64 bytes).
    pub fn memory(&self) -> usize {
        self.name.as_ref().map_or(0, |n| n.len())
    }

    /// Reads one message of direction `dir`.
    pub fn read(&mut self, dir: Dir, m: &Message<'_>) -> Option<Annotation> {
        let text = m.text()?;
        let from_client = dir == Dir::C2S;
        let nick = if from_client { self.label() } else { None };
        let r = reading_from(text, nick)?;
        if from_client && let Some(n) = r.login_name {
            self.name = Some(truncate(&n, MAX_NAME).into());
        }
        Some(Annotation {
            protocol: "workerman-chat",
            text: r.text,
            heartbeat: r.heartbeat,
        })
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// workerman-chat's JSON read as a sentence.
pub struct Reading {
    /// The sentence.
    pub text: String,
    /// Application heartbeats (`{"type":"ping"}` / `{"type":"pong"}`).
    pub heartbeat: bool,
    /// For a login sent by a client: the nickname, so later lines can name the sender.
    pub login_name: Option<String>,
}

fn s<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

/// Reads `text` as a workerman-chat message; `nick` is the sender's nickname when known.
pub fn reading_from(text: &str, nick: Option<&str>) -> Option<Reading> {
    let t = text.trim_start();
    // Most messages are not this protocol: a parse is costly, a look for its key is not.
    if !t.starts_with('{') || !t.contains("\"type\"") {
        return None;
    }
    let v: Value = serde_json::from_str(t).ok()?;
    let ty = s(&v, "type")?;
    let r = |text: String| {
        Some(Reading {
            text,
            heartbeat: false,
            login_name: None,
        })
    };
    match ty {
        "ping" | "pong" if v.as_object().is_some_and(|o| o.len() == 1) => Some(Reading {
            text: format!("heartbeat {ty}"),
            heartbeat: true,
            login_name: None,
        }),
        "login" => {
            let name = s(&v, "client_name")?;
            if let Some(room) = v.get("room_id") {
                let room = room
                    .as_str()
                    .map_or_else(|| room.to_string(), str::to_string);
                return Some(Reading {
                    text: format!("{name} logs in to room {room}"),
                    heartbeat: false,
                    login_name: Some(name.to_string()),
                });
            }
            let mut out = format!("{name} joined");
            if let Some(list) = v.get("client_list").and_then(Value::as_object) {
                let names: Vec<&str> = list.values().filter_map(Value::as_str).collect();
                out.push_str(&format!(" (online: {})", names.join(", ")));
            }
            r(out)
        }
        "say" => {
            let content = s(&v, "content")?;
            let to_all = s(&v, "to_client_id")? == "all";
            // A client's own message names no sender: its login does, if it was captured.
            let from = s(&v, "from_client_name")
                .or(nick)
                .map_or(String::new(), |n| format!("{n} "));
            let from = from.as_str();
            let to = if to_all {
                "all".to_string()
            } else {
                match s(&v, "to_client_name") {
                    Some(n) => format!("{n} (private)"),
                    None => return r(format!("{from}(private): {content}")),
                }
            };
            r(format!("{from}→ {to}: {content}"))
        }
        "logout" => r(format!("{} left", s(&v, "from_client_name")?)),
        _ => None,
    }
}

/// The reading without knowledge of the sender.
pub fn reading(text: &str) -> Option<Reading> {
    reading_from(text, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workerman_messages() {
        let l = reading(r#"{"type":"login","client_name":"mynick","room_id":1}"#).unwrap();
        assert_eq!(
            (l.text.as_str(), l.login_name.as_deref()),
            ("mynick logs in to room 1", Some("mynick"))
        );
        let say = r#"{"type":"say","to_client_id":"all","to_client_name":"所有人","content":"hi, all !"}"#;
        assert_eq!(
            reading_from(say, Some("mynick")).unwrap().text,
            "mynick → all: hi, all !"
        );
        let push = r#"{"type":"say","from_client_id":"x","from_client_name":"second","to_client_id":"all","content":"\u043f\u0440\u0438\u0432\u0435\u0442 \ud83d\udc4b","time":"t"}"#;
        assert_eq!(reading(push).unwrap().text, "second → all: привет 👋");
        assert!(reading(r#"{"type":"ping"}"#).unwrap().heartbeat);
        assert_eq!(
            reading(r#"{"type":"logout","from_client_name":"second"}"#)
                .unwrap()
                .text,
            "second left"
        );
        assert!(reading("{\"hello\": 1}").is_none());
        assert!(reading("not json").is_none());
        assert_eq!(
            reading(r#"{"type":"say","to_client_id":"all","content":"x"}"#)
                .unwrap()
                .text,
            "→ all: x"
        );
        assert!(reading(r#"{"type":"say","content":"no addressee"}"#).is_none());
    }

    #[test]
    fn long_names_are_cut() {
        let mut a = ConnAnnotator::default();
        let login = format!(
            r#"{{"type":"login","client_name":"{}","room_id":1}}"#,
            "ж".repeat(1000)
        );
        let m = crate::event::Message {
            opcode: crate::event::Opcode::Text,
            payload: login.as_bytes(),
            len: login.len() as u64,
            wire_len: login.len() as u64,
            compressed: false,
            frames: 1,
            truncated: false,
            incomplete: None,
            missing: Vec::new(),
            resync: false,
            valid_utf8: true,
            text: Some(&login),
            close_code: None,
            close_reason: None,
        };
        assert!(a.read(Dir::C2S, &m).is_some());
        assert!(a.label().unwrap().len() <= MAX_NAME);
        assert_eq!(a.memory(), a.label().unwrap().len());
    }
}
