//! The chat view: workerman-chat's JSON protocol read as sentences. A payload that is not
//! this protocol gets no reading; the raw payload is always shown too.

use serde_json::Value;

pub struct Reading {
    pub text: String,
    /// Application heartbeats (`{"type":"ping"}` / `{"type":"pong"}`): shown dimmed.
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
    if !t.starts_with('{') {
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
}

/// Remembers each connection's nickname from its login, so a client's `say` can be
/// attributed.
#[derive(Default)]
pub struct Tracker {
    nicks: std::collections::HashMap<u64, String>,
}

impl Tracker {
    pub fn read(&mut self, conn: u64, from_client: bool, text: &str) -> Option<Reading> {
        let nick = if from_client {
            self.nicks.get(&conn).map(String::as_str)
        } else {
            None
        };
        let r = reading_from(text, nick)?;
        if from_client && let Some(n) = &r.login_name {
            self.nicks.insert(conn, n.clone());
        }
        Some(r)
    }

    pub fn forget(&mut self, conn: u64) {
        self.nicks.remove(&conn);
    }
}

/// A pretty-printed JSON text without its insignificant whitespace (keys, order and escapes as
/// sent): it then fits one line.
pub fn compact_json(text: &str) -> Option<String> {
    let t = text.trim_start();
    // Only pretty-printed (multi-line) JSON is rewritten: one-line JSON is already readable,
    // and checking it would cost a parse of every message.
    if !(t.starts_with('{') || t.starts_with('[')) || !text.contains('\n') {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let (mut in_str, mut escaped) = (false, false);
    for c in text.chars() {
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
    if out.len() == text.len() || serde_json::from_str::<serde::de::IgnoredAny>(&out).is_err() {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod compact_tests {
    use super::compact_json;

    #[test]
    fn compacts_only_valid_json_with_whitespace() {
        assert_eq!(
            compact_json("{\n  \"a\": [1, 2],\n  \"b\": \"x y\\\" z\"\n}").as_deref(),
            Some("{\"a\":[1,2],\"b\":\"x y\\\" z\"}")
        );
        assert_eq!(compact_json("{\"a\":1}"), None);
        assert_eq!(compact_json("{ not json }"), None);
        assert_eq!(compact_json("plain text"), None);
    }
}
