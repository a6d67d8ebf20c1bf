//! workerman-chat's JSON protocol read as sentences (`mynick → all: hi, all !`): the reader of
//! `output/chat.rs` as an [`Annotator`], remembering the nickname the client logged in with
//! so that its own `say` messages name their sender.

use super::{Annotator, AppMessage, Reading, Side, clip, finish};
use serde_json::{Value, json};

/// A workerman-chat login, say or logout (the messages that only this protocol sends).
pub fn is_workerman(v: &Value) -> bool {
    match v.get("type").and_then(Value::as_str) {
        Some("login") => s(v, "client_name").is_some(),
        Some("say") => s(v, "content").is_some() && s(v, "to_client_id").is_some(),
        Some("logout") => s(v, "from_client_name").is_some() && s(v, "from_client_id").is_some(),
        _ => false,
    }
}

/// The [`Annotator`] for workerman-chat; one per connection, since it remembers the
/// client's login nickname to name the sender of its `say` messages.
#[derive(Default)]
pub struct Workerman {
    /// The nickname of the client's login.
    nick: Option<String>,
}

fn s<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

/// Reads `text` as a workerman-chat message; `nick` is the sender's nickname when known.
fn reading_from(text: &str, nick: Option<&str>) -> Option<Reading> {
    let t = text.trim_start();
    if !t.starts_with('{') {
        return None;
    }
    let v: Value = serde_json::from_str(t).ok()?;
    let ty = s(&v, "type")?;
    let r = |text: String, extra: Value| {
        let mut j = json!({"protocol": "workerman-chat", "type": ty});
        if let (Value::Object(o), Value::Object(e)) = (&mut j, extra) {
            o.extend(e);
        }
        Some(Reading::new(text, j))
    };
    match ty {
        "ping" | "pong" if v.as_object().is_some_and(|o| o.len() == 1) => {
            r(format!("heartbeat {ty}"), json!({})).map(Reading::heartbeat)
        }
        "login" => {
            let name = s(&v, "client_name")?;
            if let Some(room) = v.get("room_id") {
                let room = room
                    .as_str()
                    .map_or_else(|| room.to_string(), str::to_string);
                let mut l = r(
                    format!("{name} logs in to room {room}"),
                    json!({"name": name, "room": room}),
                )?;
                l.names_connection = Some(clip(name, 200));
                return Some(l);
            }
            let mut out = format!("{name} joined");
            let mut online = Vec::new();
            if let Some(list) = v.get("client_list").and_then(Value::as_object) {
                online = list.values().filter_map(Value::as_str).collect();
                out.push_str(&format!(" (online: {})", online.join(", ")));
            }
            r(out, json!({"name": name, "online": online}))
        }
        "say" => {
            let content = s(&v, "content")?;
            let to_all = s(&v, "to_client_id")? == "all";
            // A client's own message names no sender: its login does, if it was captured.
            let from_name = s(&v, "from_client_name").or(nick);
            let from = from_name.map_or(String::new(), |n| format!("{n} "));
            let from = from.as_str();
            let extra = json!({"from": from_name, "to": if to_all { Some("all") } else { s(&v, "to_client_name") }, "content": content});
            let to = if to_all {
                "all".to_string()
            } else {
                match s(&v, "to_client_name") {
                    Some(n) => format!("{n} (private)"),
                    None => return r(format!("{from}(private): {content}"), extra),
                }
            };
            r(format!("{from}→ {to}: {content}"), extra)
        }
        "logout" => {
            let name = s(&v, "from_client_name")?;
            r(format!("{name} left"), json!({"name": name}))
        }
        _ => None,
    }
}

impl Annotator for Workerman {
    fn name(&self) -> &'static str {
        "workerman-chat"
    }

    fn read(&mut self, m: &AppMessage<'_>) -> Option<Reading> {
        let from_client = m.side == Side::Client;
        let nick = if from_client {
            self.nick.as_deref()
        } else {
            None
        };
        let r = reading_from(m.as_text()?, nick)?;
        if from_client && let Some(n) = &r.names_connection {
            self.nick = Some(n.clone());
        }
        let mut r = finish(r);
        if !from_client {
            r.names_connection = None;
        }
        Some(r)
    }

    fn memory(&self) -> usize {
        self.nick.as_ref().map_or(0, String::capacity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The messages of samples/workerman-chat.pcap, read as output/chat.rs reads them.
    #[test]
    fn workerman_messages() {
        let mut a = Workerman::default();
        let c = |a: &mut Workerman, t| a.read(&AppMessage::text(Side::Client, t));
        let sv = |a: &mut Workerman, t| a.read(&AppMessage::text(Side::Server, t));
        let say = r#"{"type":"say","to_client_id":"all","to_client_name":"所有人","content":"hi, all !"}"#;
        assert_eq!(c(&mut a, say).unwrap().text, "→ all: hi, all !");
        let l = c(
            &mut a,
            r#"{"type":"login","client_name":"mynick","room_id":1}"#,
        )
        .unwrap();
        assert_eq!(
            (l.text.as_str(), l.names_connection.as_deref()),
            ("mynick logs in to room 1", Some("mynick"))
        );
        assert_eq!(
            l.json,
            json!({"protocol":"workerman-chat","type":"login","name":"mynick","room":"1"})
        );
        assert_eq!(c(&mut a, say).unwrap().text, "mynick → all: hi, all !");
        let push = r#"{"type":"say","from_client_id":"x","from_client_name":"second","to_client_id":"all","content":"\u043f\u0440\u0438\u0432\u0435\u0442 \ud83d\udc4b","time":"t"}"#;
        assert_eq!(sv(&mut a, push).unwrap().text, "second → all: привет 👋");
        let hb = sv(&mut a, r#"{"type":"ping"}"#).unwrap();
        assert!(hb.heartbeat && hb.text == "heartbeat ping");
        assert_eq!(
            sv(&mut a, r#"{"type":"logout","from_client_id":"7f0000010b5700000002","from_client_name":"second","time":"t"}"#).unwrap().text,
            "second left"
        );
        let joined = sv(&mut a, r#"{"type":"login","client_id":"a","client_name":"second","time":"t","client_list":{"a":"mynick","b":"second"}}"#).unwrap();
        assert_eq!(joined.text, "second joined (online: mynick, second)");
        assert_eq!(joined.names_connection, None);
        // A login the server relays does not name this connection.
        let relayed = sv(
            &mut a,
            r#"{"type":"login","client_name":"third","room_id":1}"#,
        )
        .unwrap();
        assert_eq!(relayed.names_connection, None);
        assert_eq!(c(&mut a, say).unwrap().text, "mynick → all: hi, all !");
        assert!(c(&mut a, "{\"hello\": 1}").is_none());
        assert!(c(&mut a, "not json").is_none());
        assert!(c(&mut a, r#"{"type":"say","content":"no addressee"}"#).is_none());
        assert_eq!(
            c(
                &mut a,
                r#"{"type":"say","to_client_id":"b","content":"psst"}"#
            )
            .unwrap()
            .text,
            "mynick (private): psst"
        );
        assert!(is_workerman(&serde_json::from_str(say).unwrap()));
        assert!(!is_workerman(&json!({"type":"ping"})));
    }
}
