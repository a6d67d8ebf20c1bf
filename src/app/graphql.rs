//! GraphQL over websocket: `graphql-transport-ws` (the graphql-ws library: connection_init /
//! connection_ack, ping / pong, subscribe, next, error, complete) and the legacy
//! `subscriptions-transport-ws` whose subprotocol is named `graphql-ws` (connection_init /
//! connection_ack / connection_error, ka, start, data, error, complete, stop,
//! connection_terminate). Both are JSON objects `{"type", "id"?, "payload"?}`; a reader takes
//! either vocabulary, since peers are not always true to the subprotocol they name.

use super::{
    Annotator, AppMessage, PREVIEW, Reading, Side, clip, finish, json_clipped, json_text, raw_get,
    raw_text,
};
use serde_json::{Map, Value};

/// A client's `connection_init`, which both protocols open with.
pub fn is_init(v: &Value) -> bool {
    v.get("type").and_then(Value::as_str) == Some("connection_init")
        && v.as_object()
            .is_some_and(|o| o.keys().all(|k| k == "type" || k == "payload"))
}

/// The [`Annotator`] for both GraphQL subprotocols; built for one of them
/// (`transport` or `legacy`), it still reads the other's messages.
pub struct Graphql {
    legacy: bool,
    /// Which of the two it is was guessed (claimed by content, not by subprotocol): the
    /// first message only one of them sends settles it.
    guessed: bool,
}

impl Graphql {
    /// `graphql-transport-ws`.
    pub fn transport() -> Graphql {
        Graphql {
            legacy: false,
            guessed: false,
        }
    }

    /// `graphql-ws`, the legacy subscriptions-transport-ws protocol.
    pub fn legacy() -> Graphql {
        Graphql {
            legacy: true,
            guessed: false,
        }
    }

    /// Either, told apart by the messages (for a connection claimed by its
    /// `connection_init`, which both send).
    pub fn guess() -> Graphql {
        Graphql {
            legacy: false,
            guessed: true,
        }
    }
}

/// The operation's type and name from a query document: `subscription OnMessage { … }` →
/// ("subscription", Some("OnMessage")); a bare selection set `{ … }` is an anonymous query.
/// The first operation is taken; fragments and comments are skipped.
pub fn operation(query: &str) -> Option<(&str, Option<&str>)> {
    let b = query.as_bytes();
    let mut i = 0;
    let mut depth = 0usize;
    let name_char = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    while i < b.len() {
        let c = b[i];
        match c {
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' => {
                // Strings (block strings too): skip to the closing quote.
                let block = b[i..].starts_with(b"\"\"\"");
                i += if block { 3 } else { 1 };
                while i < b.len() {
                    if block && b[i..].starts_with(b"\"\"\"") {
                        i += 2;
                        break;
                    }
                    if !block && b[i] == b'\\' {
                        i += 1;
                    } else if !block && b[i] == b'"' {
                        break;
                    }
                    i += 1;
                }
            }
            b'{' => {
                if depth == 0 {
                    return Some(("query", None));
                }
                depth += 1;
            }
            b'}' => depth = depth.saturating_sub(1),
            _ if name_char(c) => {
                let start = i;
                while i < b.len() && name_char(b[i]) {
                    i += 1;
                }
                let word = &query[start..i];
                if depth == 0 && word == "fragment" {
                    // Skip the fragment's definition: up to its selection set, then past it.
                    while i < b.len() && b[i] != b'{' {
                        i += 1;
                    }
                    depth = 1;
                    i += 1;
                    while i < b.len() && depth > 0 {
                        match b[i] {
                            b'{' => depth += 1,
                            b'}' => depth -= 1,
                            _ => {}
                        }
                        i += 1;
                    }
                    continue;
                }
                if depth == 0 && matches!(word, "query" | "mutation" | "subscription") {
                    while i < b.len() && b[i].is_ascii_whitespace() {
                        i += 1;
                    }
                    let s = i;
                    while i < b.len() && name_char(b[i]) {
                        i += 1;
                    }
                    return Some((word, (i > s).then(|| &query[s..i])));
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

impl Annotator for Graphql {
    fn name(&self) -> &'static str {
        if self.legacy {
            "graphql-ws"
        } else {
            "graphql-transport-ws"
        }
    }

    fn read(&mut self, m: &AppMessage<'_>) -> Option<Reading> {
        let t = m.as_text()?.trim_start();
        if !t.starts_with('{') {
            return None;
        }
        let v: Value = serde_json::from_str(t).ok()?;
        let ty = v.get("type")?.as_str()?;
        if self.guessed {
            match ty {
                "ka" | "start" | "data" | "stop" | "connection_error" | "connection_terminate" => {
                    self.legacy = true;
                    self.guessed = false;
                }
                "ping" | "pong" | "subscribe" | "next" => self.guessed = false,
                _ => {}
            }
        }
        let id = v.get("id").map(|i| match i {
            Value::String(s) => clip(s, 100),
            other => json_text(other, 100),
        });
        let payload = v.get("payload").filter(|p| !p.is_null());
        // The text shows values as sent (member order kept): from the raw JSON.
        let raw_payload = raw_get(t, "payload");
        let shown = |path: &[&str], v: &Value| {
            let mut raw = raw_payload;
            for k in path {
                raw = raw.and_then(|r| raw_get(r, k));
            }
            raw.map_or_else(|| json_text(v, PREVIEW), |r| raw_text(r, PREVIEW))
        };
        let mut j = Map::new();
        j.insert("protocol".into(), self.name().into());
        j.insert("type".into(), clip(ty, 50).into());
        if let Some(i) = &id {
            j.insert("id".into(), i.clone().into());
        }
        let mut text = clip(ty, 50);
        if let Some(i) = &id {
            text.push(' ');
            text.push_str(i);
        }
        let mut heartbeat = false;
        let mut pairing = None;
        match ty {
            "connection_init" | "connection_ack" | "connection_error" | "connection_terminate" => {
                if let Some(p) = payload {
                    text.push(' ');
                    text.push_str(&shown(&[], p));
                    j.insert("payload".into(), json_clipped(p, 2000));
                }
            }
            "ping" | "pong" | "ka" => {
                heartbeat = true;
                if let Some(p) = payload {
                    text.push(' ');
                    text.push_str(&shown(&[], p));
                }
            }
            "subscribe" | "start" => {
                let p = payload?;
                let query = p.get("query").and_then(Value::as_str).unwrap_or("");
                let (op, mut name) = operation(query).unwrap_or(("operation", None));
                if let Some(n) = p.get("operationName").and_then(Value::as_str) {
                    name = Some(n);
                }
                text.push(' ');
                text.push_str(op);
                j.insert("operation".into(), op.into());
                if let Some(n) = name {
                    text.push(' ');
                    text.push_str(&clip(n, 100));
                    j.insert("name".into(), clip(n, 100).into());
                }
                if let Some(vars) = p.get("variables").filter(|x| !x.is_null()) {
                    if !vars.as_object().is_some_and(Map::is_empty) {
                        text.push(' ');
                        text.push_str(&shown(&["variables"], vars));
                    }
                    j.insert("variables".into(), json_clipped(vars, 2000));
                }
                j.insert("query".into(), clip(query, 1000).into());
                pairing = id.clone().map(|i| (i, true));
            }
            "next" | "data" | "error" => {
                if let Some(p) = payload {
                    // An error's payload: a list of GraphQL errors (or one, in the legacy one).
                    let errors = if ty == "error" {
                        Some(p)
                    } else {
                        p.get("errors")
                    };
                    let msgs: Vec<&str> = match errors {
                        Some(Value::Array(a)) => a
                            .iter()
                            .filter_map(|e| e.get("message").and_then(Value::as_str))
                            .collect(),
                        Some(e) => e
                            .get("message")
                            .and_then(Value::as_str)
                            .into_iter()
                            .collect(),
                        None => Vec::new(),
                    };
                    if ty == "error" || p.get("data").is_none() {
                        if !msgs.is_empty() {
                            text.push_str(&format!(": {}", clip(&msgs.join("; "), PREVIEW)));
                        } else {
                            text.push(' ');
                            text.push_str(&shown(&[], p));
                        }
                    } else {
                        text.push(' ');
                        text.push_str(&shown(&["data"], &p["data"]));
                        if !msgs.is_empty() {
                            text.push_str(&format!(" errors: {}", clip(&msgs.join("; "), PREVIEW)));
                        }
                    }
                    j.insert("payload".into(), json_clipped(p, 2000));
                }
                if m.side == Side::Server {
                    pairing = id.clone().map(|i| (i, false));
                }
            }
            "complete" | "stop" => {
                if m.side == Side::Server {
                    pairing = id.clone().map(|i| (i, false));
                }
            }
            _ => return None,
        }
        let mut r = Reading::new(text, Value::Object(j));
        r.heartbeat = heartbeat;
        r.pairing = pairing;
        Some(finish(r))
    }

    fn memory(&self) -> usize {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rd(a: &mut Graphql, side: Side, t: &str) -> Reading {
        a.read(&AppMessage::text(side, t))
            .unwrap_or_else(|| panic!("{t}"))
    }

    #[test]
    fn operation_names() {
        assert_eq!(
            operation("subscription OnMessage { messages { text } }"),
            Some(("subscription", Some("OnMessage")))
        );
        assert_eq!(operation("{ hello }"), Some(("query", None)));
        assert_eq!(operation("query { hello }"), Some(("query", None)));
        assert_eq!(
            operation(
                "# a comment with query Nope {\nmutation AddPost($t: String = \"query X {\") { add(t: $t) }"
            ),
            Some(("mutation", Some("AddPost")))
        );
        assert_eq!(
            operation("fragment F on User { name query { x } } query Me { me { ...F } }"),
            Some(("query", Some("Me")))
        );
        assert_eq!(operation("query($x: Int) { a }"), Some(("query", None)));
        assert_eq!(operation(""), None);
        assert_eq!(
            operation("\"\"\"doc { \"\"\" subscription S { a }"),
            Some(("subscription", Some("S")))
        );
    }

    // The message flows of the graphql-transport-ws protocol document (PROTOCOL.md).
    #[test]
    fn transport_ws() {
        let mut a = Graphql::transport();
        let init = rd(
            &mut a,
            Side::Client,
            r#"{"type":"connection_init","payload":{"token":"x"}}"#,
        );
        assert_eq!(init.text, r#"connection_init {"token":"x"}"#);
        assert_eq!(
            rd(&mut a, Side::Server, r#"{"type":"connection_ack"}"#).text,
            "connection_ack"
        );
        let ping = rd(&mut a, Side::Server, r#"{"type":"ping"}"#);
        assert!(ping.heartbeat);
        assert!(rd(&mut a, Side::Client, r#"{"type":"pong"}"#).heartbeat);
        let sub = rd(
            &mut a,
            Side::Client,
            r#"{"id":"1","type":"subscribe","payload":{"query":"subscription OnMessage($room: ID!) { message(room: $room) { text } }","variables":{"room":"a"}}}"#,
        );
        assert_eq!(
            sub.text,
            r#"subscribe 1 subscription OnMessage {"room":"a"}"#
        );
        assert_eq!(sub.pairing, Some(("1".into(), true)));
        assert_eq!(sub.json["name"], "OnMessage");
        assert_eq!(sub.json["operation"], "subscription");
        assert_eq!(sub.json["variables"], json!({"room":"a"}));
        let next = rd(
            &mut a,
            Side::Server,
            r#"{"id":"1","type":"next","payload":{"data":{"message":{"text":"hi"}}}}"#,
        );
        assert_eq!(next.text, r#"next 1 {"message":{"text":"hi"}}"#);
        // Values as sent: member order kept.
        let order = rd(
            &mut a,
            Side::Server,
            r#"{"id":"1","type":"next","payload":{"data":{"z":1, "a":2}}}"#,
        );
        assert_eq!(order.text, r#"next 1 {"z":1,"a":2}"#);
        assert_eq!(next.pairing, Some(("1".into(), false)));
        let err = rd(
            &mut a,
            Side::Server,
            r#"{"id":"2","type":"error","payload":[{"message":"Cannot query field \"x\""}]}"#,
        );
        assert_eq!(err.text, r#"error 2: Cannot query field "x""#);
        assert_eq!(
            rd(&mut a, Side::Server, r#"{"id":"1","type":"complete"}"#).text,
            "complete 1"
        );
        let c = rd(&mut a, Side::Client, r#"{"id":"1","type":"complete"}"#);
        assert_eq!(c.pairing, None);
        let q = rd(
            &mut a,
            Side::Client,
            r#"{"id":"3","type":"subscribe","payload":{"query":"{ hello }","operationName":null}}"#,
        );
        assert_eq!(q.text, "subscribe 3 query");
        assert!(
            a.read(&AppMessage::text(Side::Client, r#"{"type":"other"}"#))
                .is_none()
        );
        assert!(
            a.read(&AppMessage::text(
                Side::Client,
                r#"{"id":"1","type":"subscribe"}"#
            ))
            .is_none()
        );
        assert!(a.read(&AppMessage::text(Side::Client, "[]")).is_none());
    }

    // The legacy subscriptions-transport-ws protocol (its PROTOCOL.md).
    #[test]
    fn legacy_graphql_ws() {
        let mut a = Graphql::legacy();
        assert_eq!(a.name(), "graphql-ws");
        rd(
            &mut a,
            Side::Client,
            r#"{"type":"connection_init","payload":{}}"#,
        );
        let ka = rd(&mut a, Side::Server, r#"{"type":"ka"}"#);
        assert!(ka.heartbeat && ka.text == "ka");
        let start = rd(
            &mut a,
            Side::Client,
            r#"{"id":"1","type":"start","payload":{"query":"subscription onCommentAdded { commentAdded { id } }","variables":{},"operationName":"onCommentAdded"}}"#,
        );
        assert_eq!(start.text, "start 1 subscription onCommentAdded");
        assert_eq!(start.json["protocol"], "graphql-ws");
        let data = rd(
            &mut a,
            Side::Server,
            r#"{"id":"1","type":"data","payload":{"data":{"commentAdded":{"id":7}}}}"#,
        );
        assert_eq!(data.text, r#"data 1 {"commentAdded":{"id":7}}"#);
        let err = rd(
            &mut a,
            Side::Server,
            r#"{"id":"1","type":"error","payload":{"message":"bad"}}"#,
        );
        assert_eq!(err.text, "error 1: bad");
        let partial = rd(
            &mut a,
            Side::Server,
            r#"{"id":"1","type":"data","payload":{"data":null,"errors":[{"message":"boom"}]}}"#,
        );
        assert_eq!(partial.text, "data 1 null errors: boom");
        assert_eq!(
            rd(&mut a, Side::Client, r#"{"id":"1","type":"stop"}"#).text,
            "stop 1"
        );
        assert_eq!(
            rd(
                &mut a,
                Side::Server,
                r#"{"type":"connection_error","payload":{"message":"no"}}"#
            )
            .text,
            r#"connection_error {"message":"no"}"#
        );
        assert_eq!(
            rd(&mut a, Side::Client, r#"{"type":"connection_terminate"}"#).text,
            "connection_terminate"
        );
        assert!(is_init(&json!({"type":"connection_init"})));
        // Claimed by content: the first message only one protocol sends tells which.
        let mut g = Graphql::guess();
        assert_eq!(g.name(), "graphql-transport-ws");
        rd(
            &mut g,
            Side::Client,
            r#"{"type":"connection_init","payload":{}}"#,
        );
        assert_eq!(
            rd(&mut g, Side::Server, r#"{"type":"ka"}"#).json["protocol"],
            "graphql-ws"
        );
        assert_eq!(g.name(), "graphql-ws");
        rd(&mut g, Side::Server, r#"{"type":"ping"}"#);
        assert_eq!(g.name(), "graphql-ws", "settled");
        let mut g = Graphql::guess();
        rd(
            &mut g,
            Side::Client,
            r#"{"id":"1","type":"subscribe","payload":{"query":"{a}"}}"#,
        );
        rd(&mut g, Side::Server, r#"{"type":"ka"}"#);
        assert_eq!(g.name(), "graphql-transport-ws", "settled");
        assert!(!is_init(&json!({"type":"connection_init","other":1})));
    }
}
