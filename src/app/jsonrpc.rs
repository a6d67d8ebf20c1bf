//! JSON-RPC 2.0: requests (`call`), notifications (`notify`), responses (`result` / `error`)
//! and batches of them. A request pairs with its response by id.

use super::{
    Annotator, AppMessage, PREVIEW, Reading, finish, json_clipped, json_text, raw_get, raw_items,
    raw_text,
};
use serde_json::{Map, Value, json};

/// A JSON-RPC 2.0 message: an object with `"jsonrpc": "2.0"` and a method, result or error,
/// or a non-empty batch of them.
pub fn is_jsonrpc(v: &Value) -> bool {
    match v {
        Value::Array(a) => !a.is_empty() && a.iter().all(is_one),
        _ => is_one(v),
    }
}

fn is_one(v: &Value) -> bool {
    v.get("jsonrpc").and_then(Value::as_str) == Some("2.0")
        && (v.get("method").is_some_and(Value::is_string)
            || v.get("result").is_some()
            || v.get("error").is_some())
}

/// The [`Annotator`] for JSON-RPC 2.0 (`--app json-rpc`). It keeps no state: a request and
/// its response are paired by id through their readings' `pairing` (see [`super::Pairs`]).
pub struct JsonRpc;

/// One request, notification or response: its text, JSON and pairing.
type One = (String, Value, Option<(String, bool)>);

/// `raw` is the message's JSON as sent: the text shows values from it, in their order.
fn one(v: &Value, raw: &str) -> Option<One> {
    if !is_one(v) {
        return None;
    }
    let shown = |key: &str, max: usize| raw_get(raw, key).map(|r| raw_text(r, max));
    let id = v.get("id").filter(|i| !i.is_null());
    let idt = id.map(|i| json_text(i, 100));
    let mut j = Map::new();
    j.insert("protocol".into(), "json-rpc".into());
    if let Some(i) = id {
        j.insert("id".into(), json_clipped(i, 100));
    }
    let (t, pairing) = if let Some(m) = v.get("method").and_then(Value::as_str) {
        let ty = if id.is_some() {
            "request"
        } else {
            "notification"
        };
        j.insert("type".into(), ty.into());
        j.insert("method".into(), super::clip(m, 200).into());
        let mut t = match &idt {
            Some(i) => format!("call {i} {}", super::clip(m, 200)),
            None => format!("notify {}", super::clip(m, 200)),
        };
        if let Some(p) = v.get("params") {
            t.push(' ');
            t.push_str(&shown("params", PREVIEW).unwrap_or_else(|| json_text(p, PREVIEW)));
            j.insert("params".into(), json_clipped(p, 2000));
        }
        (t, idt.clone().map(|i| (i, true)))
    } else if let Some(e) = v.get("error") {
        j.insert("type".into(), "error".into());
        let code = e.get("code");
        let msg = e.get("message").and_then(Value::as_str);
        let mut t = format!("error {}", idt.as_deref().unwrap_or("null"));
        if let Some(c) = code {
            t.push_str(&format!(" {}", json_text(c, 30)));
            j.insert("code".into(), json_clipped(c, 30));
        }
        if let Some(m) = msg {
            t.push_str(&format!(" {}", super::clip(m, PREVIEW)));
            j.insert("message".into(), super::clip(m, PREVIEW).into());
        }
        if let Some(d) = e.get("data") {
            let raw_data = raw_get(raw, "error").and_then(|e| raw_get(e, "data"));
            let d_text = raw_data.map_or_else(|| json_text(d, PREVIEW), |r| raw_text(r, PREVIEW));
            t.push_str(&format!(" {d_text}"));
            j.insert("data".into(), json_clipped(d, 2000));
        }
        (t, idt.clone().map(|i| (i, false)))
    } else {
        let r = v.get("result")?;
        j.insert("type".into(), "result".into());
        j.insert("result".into(), json_clipped(r, 2000));
        let t = format!(
            "result {} {}",
            idt.as_deref().unwrap_or("null"),
            shown("result", PREVIEW).unwrap_or_else(|| json_text(r, PREVIEW))
        );
        (t, idt.clone().map(|i| (i, false)))
    };
    Some((t, Value::Object(j), pairing))
}

impl Annotator for JsonRpc {
    fn name(&self) -> &'static str {
        "json-rpc"
    }

    fn read(&mut self, m: &AppMessage<'_>) -> Option<Reading> {
        let t = m.as_text()?.trim_start();
        if !(t.starts_with('{') || t.starts_with('[')) {
            return None;
        }
        let v: Value = serde_json::from_str(t).ok()?;
        if let Value::Array(items) = &v {
            let raws = raw_items(t).unwrap_or_default();
            let parts: Vec<_> = items
                .iter()
                .enumerate()
                .map(|(i, v)| one(v, raws.get(i).copied().unwrap_or("")))
                .collect::<Option<_>>()?;
            if parts.is_empty() {
                return None;
            }
            let texts: Vec<&str> = parts.iter().map(|p| p.0.as_str()).collect();
            let text = format!("batch of {}: {}", parts.len(), texts.join("; "));
            let mut ids: Vec<String> = parts
                .iter()
                .filter_map(|p| p.2.as_ref().map(|k| k.0.clone()))
                .collect();
            ids.sort_unstable();
            let request = parts.iter().any(|p| p.2.as_ref().is_some_and(|k| k.1));
            let items: Vec<Value> = parts.into_iter().take(100).map(|p| p.1).collect();
            let mut r = Reading::new(
                text,
                json!({"protocol": "json-rpc", "type": "batch", "items": items}),
            );
            if !ids.is_empty() {
                r = r.pair(format!("batch {}", ids.join(",")), request);
            }
            return Some(finish(r));
        }
        let (text, json, pairing) = one(&v, t)?;
        let mut r = Reading::new(text, json);
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
    use crate::app::Side;

    fn read(t: &str) -> Option<Reading> {
        JsonRpc.read(&AppMessage::text(Side::Client, t))
    }

    // The examples of the JSON-RPC 2.0 specification, section 7.
    #[test]
    fn specification_examples() {
        let r = read(r#"{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}"#)
            .unwrap();
        assert_eq!(r.text, "call 1 subtract [42,23]");
        assert_eq!(r.pairing, Some(("1".into(), true)));
        assert_eq!(
            r.json,
            json!({"protocol":"json-rpc","type":"request","id":1,"method":"subtract","params":[42,23]})
        );
        let r = read(r#"{"jsonrpc": "2.0", "result": 19, "id": 1}"#).unwrap();
        assert_eq!(r.text, "result 1 19");
        assert_eq!(r.pairing, Some(("1".into(), false)));
        let r = read(r#"{"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, "id": 3}"#).unwrap();
        assert_eq!(r.text, r#"call 3 subtract {"subtrahend":23,"minuend":42}"#);
        let r = read(r#"{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}"#).unwrap();
        assert_eq!(r.text, "notify update [1,2,3,4,5]");
        assert_eq!(r.pairing, None);
        assert_eq!(
            read(r#"{"jsonrpc": "2.0", "method": "foobar"}"#)
                .unwrap()
                .text,
            "notify foobar"
        );
        let r = read(r#"{"jsonrpc": "2.0", "method": "foobar", "id": "1"}"#).unwrap();
        assert_eq!(r.pairing, Some((r#""1""#.into(), true)));
        let r = read(r#"{"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "1"}"#).unwrap();
        assert_eq!(r.text, r#"error "1" -32601 Method not found"#);
        assert_eq!(r.pairing, Some((r#""1""#.into(), false)));
        let r = read(r#"{"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null}"#).unwrap();
        assert_eq!(r.text, "error null -32700 Parse error");
        assert_eq!(r.pairing, None);
        let b = read(
            r#"[
        {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
        {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},
        {"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},
        {"jsonrpc": "2.0", "method": "get_data", "id": "9"}
    ]"#,
        )
        .unwrap();
        assert_eq!(
            b.text,
            r#"batch of 4: call "1" sum [1,2,4]; notify notify_hello [7]; call "2" subtract [42,23]; call "9" get_data"#
        );
        assert_eq!(b.pairing, Some((r#"batch "1","2","9""#.into(), true)));
        let b = read(
            r#"[
        {"jsonrpc": "2.0", "result": 7, "id": "1"},
        {"jsonrpc": "2.0", "result": 19, "id": "2"},
        {"jsonrpc": "2.0", "result": ["hello", 5], "id": "9"}
    ]"#,
        )
        .unwrap();
        assert_eq!(b.pairing, Some((r#"batch "1","2","9""#.into(), false)));
        // Not JSON-RPC 2.0 (an invalid batch, 1.0, arbitrary JSON).
        assert!(read("[]").is_none());
        assert!(read("[1,2,3]").is_none());
        assert!(read(r#"{"method": "echo", "params": ["Hello JSON-RPC"], "id": 1}"#).is_none());
        assert!(read(r#"{"jsonrpc": "2.0"}"#).is_none());
        assert!(read("nope").is_none());
    }
}
