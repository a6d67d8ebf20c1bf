//! MessagePack and CBOR payloads shown as compact JSON-like text, for binary messages that no
//! protocol claimed. Conservative, since a random binary payload must essentially never pass:
//! the whole payload must be exactly one value (no trailing bytes) whose top level is a
//! non-empty map or array or a non-empty UTF-8 string, nested at most [`MAX_DEPTH`] deep,
//! with every map key a string or an integer and every string valid UTF-8 without control
//! characters (other than tab, CR, LF); payloads under 3 bytes are not read, and those under 8
//! only when they hold a string (random short payloads are often arrays of small numbers).
//! A payload that is itself plain UTF-8 text is text: a CBOR text string starts with an
//! ASCII letter (`hi, all !` is the CBOR string "i, all !"). The text is cut
//! at [`MAX_TEXT`] bytes (then `…`); payloads over [`MAX_PAYLOAD`] are not decoded.

use super::{Annotator, AppMessage, Reading};
use serde_json::json;
use std::fmt::Write;

/// Deepest nesting accepted.
pub const MAX_DEPTH: usize = 32;
/// Longest text produced.
pub const MAX_TEXT: usize = 4096;

/// Text as people write it: no control characters but tab, CR and LF.
fn plain(s: &str) -> bool {
    !s.chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\r' | '\n'))
}

/// Shortest payload read: two-byte payloads pass by chance too often (0.5% of random ones).
const MIN_LEN: usize = 3;

/// Longest payload decoded: a decoded value can take 30 times its encoding in memory (a
/// 1-byte nil becomes a 32-byte value), so larger payloads are left alone.
pub const MAX_PAYLOAD: usize = 1 << 20;

/// Short payloads that hold no string are not read.
const SHORT: usize = 8;

/// Which encoding.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Format {
    /// MessagePack (msgpack.org spec).
    MessagePack,
    /// CBOR, RFC 8949.
    Cbor,
}

impl Format {
    /// The name shown in readings (`msgpack`, `cbor`): the `protocol` of their JSON and the
    /// text's first word.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::MessagePack => "msgpack",
            Format::Cbor => "cbor",
        }
    }
}

/// Text that stops growing past its limit.
struct Out {
    s: String,
    full: bool,
}

impl Out {
    fn push(&mut self, x: &str) {
        if self.full {
            return;
        }
        if self.s.len() + x.len() > MAX_TEXT {
            let mut end = MAX_TEXT - self.s.len();
            while !x.is_char_boundary(end) {
                end -= 1;
            }
            self.s.push_str(&x[..end]);
            self.s.push('…');
            self.full = true;
        } else {
            self.s.push_str(x);
        }
    }

    fn string(&mut self, x: &str) {
        // JSON quoting (serde_json's escapes), limited to what still fits.
        let cut: String = x.chars().take(MAX_TEXT).collect();
        self.push(&serde_json::Value::String(cut).to_string());
    }

    fn bytes(&mut self, b: &[u8]) {
        self.push("h'");
        let mut h = String::new();
        for x in b.iter().take(MAX_TEXT / 2) {
            let _ = write!(h, "{x:02x}");
        }
        self.push(&h);
        self.push("'");
    }
}

fn float(f: f64) -> String {
    if f.is_finite() {
        let v = serde_json::Value::from(f);
        v.to_string()
    } else if f.is_nan() {
        "NaN".into()
    } else if f > 0.0 {
        "Infinity".into()
    } else {
        "-Infinity".into()
    }
}

/// MessagePack: the text of the payload, when it is one acceptable value.
pub fn msgpack(b: &[u8]) -> Option<String> {
    use rmpv::Value as V;
    if !(MIN_LEN..=MAX_PAYLOAD).contains(&b.len())
        || !matches!(b.first()?, 0x80..=0xbf | 0xd9..=0xdf)
    {
        return None;
    }
    let mut rd = b;
    // The crate's depth counts strings too: a little more than ours, which is checked below.
    let v = rmpv::decode::read_value_with_max_depth(&mut rd, 2 * MAX_DEPTH + 2).ok()?;
    if !rd.is_empty() {
        return None;
    }
    match &v {
        V::Map(m) if !m.is_empty() => {}
        V::Array(a) if !a.is_empty() => {}
        V::String(s) if s.as_str().is_some_and(|s| !s.is_empty()) => {}
        _ => return None,
    }
    fn ok(v: &V, depth: usize) -> bool {
        match v {
            V::Array(_) | V::Map(_) if depth > MAX_DEPTH => false,
            V::String(s) => s.as_str().is_some_and(plain),
            V::Array(a) => a.iter().all(|x| ok(x, depth + 1)),
            V::Map(m) => m.iter().all(|(k, x)| {
                let key = matches!(k, V::String(s) if s.is_str()) || matches!(k, V::Integer(_));
                key && ok(x, depth + 1)
            }),
            _ => true,
        }
    }
    if !ok(&v, 1) {
        return None;
    }
    fn has_str(v: &V) -> bool {
        match v {
            V::String(_) => true,
            V::Array(a) => a.iter().any(has_str),
            V::Map(m) => m.iter().any(|(k, x)| has_str(k) || has_str(x)),
            _ => false,
        }
    }
    if b.len() < SHORT && !has_str(&v) {
        return None;
    }
    fn put(v: &V, o: &mut Out) {
        if o.full {
            return;
        }
        match v {
            V::Nil => o.push("null"),
            V::Boolean(x) => o.push(if *x { "true" } else { "false" }),
            V::Integer(i) => o.push(&i.to_string()),
            V::F32(f) => o.push(&float(f64::from(*f))),
            V::F64(f) => o.push(&float(*f)),
            V::String(s) => o.string(s.as_str().unwrap_or("")),
            V::Binary(b) => o.bytes(b),
            V::Ext(t, b) => {
                o.push(&format!("ext({t},"));
                o.bytes(b);
                o.push(")");
            }
            V::Array(a) => {
                o.push("[");
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        o.push(",");
                    }
                    put(x, o);
                }
                o.push("]");
            }
            V::Map(m) => {
                o.push("{");
                for (i, (k, x)) in m.iter().enumerate() {
                    if i > 0 {
                        o.push(",");
                    }
                    match k {
                        V::String(_) => put(k, o),
                        _ => {
                            o.push("\"");
                            put(k, o);
                            o.push("\"");
                        }
                    }
                    o.push(":");
                    put(x, o);
                }
                o.push("}");
            }
        }
    }
    let mut o = Out {
        s: String::new(),
        full: false,
    };
    put(&v, &mut o);
    Some(o.s)
}

/// CBOR: the text of the payload, when it is one acceptable value.
pub fn cbor(b: &[u8]) -> Option<String> {
    use ciborium::Value as V;
    // Major type 3 (text), 4 (array), 5 (map), or tag 55799 (self-described CBOR).
    let self_described = b.starts_with(&[0xd9, 0xd9, 0xf7]);
    let top = if self_described {
        *b.get(3)?
    } else {
        *b.first()?
    };
    if !(MIN_LEN..=MAX_PAYLOAD).contains(&b.len()) || !matches!(top >> 5, 3..=5) {
        return None;
    }
    let mut rd = b;
    let v: V = ciborium::de::from_reader_with_recursion_limit(&mut rd, 2 * MAX_DEPTH + 2).ok()?;
    if !rd.is_empty() {
        return None;
    }
    let inner = match &v {
        V::Tag(55799, x) if self_described => x.as_ref(),
        x => x,
    };
    match inner {
        V::Map(m) if !m.is_empty() => {}
        V::Array(a) if !a.is_empty() => {}
        V::Text(s) if !s.is_empty() => {}
        _ => return None,
    }
    fn ok(v: &V, depth: usize) -> bool {
        match v {
            V::Array(_) | V::Map(_) | V::Tag(..) if depth > MAX_DEPTH => false,
            V::Array(a) => a.iter().all(|x| ok(x, depth + 1)),
            V::Map(m) => m
                .iter()
                .all(|(k, x)| matches!(k, V::Text(_) | V::Integer(_)) && ok(x, depth + 1)),
            V::Tag(_, x) => ok(x, depth + 1),
            V::Text(s) => plain(s),
            _ => true,
        }
    }
    if !ok(inner, 1) {
        return None;
    }
    fn has_str(v: &V) -> bool {
        match v {
            V::Text(_) => true,
            V::Array(a) => a.iter().any(has_str),
            V::Map(m) => m.iter().any(|(k, x)| has_str(k) || has_str(x)),
            V::Tag(_, x) => has_str(x),
            _ => false,
        }
    }
    if b.len() < SHORT && !has_str(inner) {
        return None;
    }
    fn put(v: &V, o: &mut Out) {
        if o.full {
            return;
        }
        match v {
            V::Null => o.push("null"),
            V::Bool(x) => o.push(if *x { "true" } else { "false" }),
            V::Integer(i) => o.push(&i128::from(*i).to_string()),
            V::Float(f) => o.push(&float(*f)),
            V::Text(s) => o.string(s),
            V::Bytes(b) => o.bytes(b),
            V::Tag(t, x) => {
                o.push(&format!("{t}("));
                put(x, o);
                o.push(")");
            }
            V::Array(a) => {
                o.push("[");
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        o.push(",");
                    }
                    put(x, o);
                }
                o.push("]");
            }
            V::Map(m) => {
                o.push("{");
                for (i, (k, x)) in m.iter().enumerate() {
                    if i > 0 {
                        o.push(",");
                    }
                    match k {
                        V::Text(_) => put(k, o),
                        _ => {
                            o.push("\"");
                            put(k, o);
                            o.push("\"");
                        }
                    }
                    o.push(":");
                    put(x, o);
                }
                o.push("}");
            }
            _ => o.push("undefined"),
        }
    }
    let mut o = Out {
        s: String::new(),
        full: false,
    };
    put(inner, &mut o);
    Some(o.s)
}

/// Reads a binary payload as MessagePack or else CBOR, if it is one (see the module's rules).
pub fn decode(b: &[u8]) -> Option<(Format, String)> {
    if std::str::from_utf8(b).is_ok_and(plain) {
        return None;
    }
    msgpack(b)
        .map(|t| (Format::MessagePack, t))
        .or_else(|| cbor(b).map(|t| (Format::Cbor, t)))
}

/// The reading of a binary payload as MessagePack or CBOR: for binary messages of any
/// connection that no protocol claimed.
pub fn reading(b: &[u8]) -> Option<Reading> {
    let (f, text) = decode(b)?;
    Some(Reading::new(
        format!("{} {text}", f.as_str()),
        json!({"protocol": f.as_str(), "type": "value", "value": text}),
    ))
}

/// A forced (`--app msgpack` / `--app cbor`) reader of binary messages.
pub struct Binary {
    format: Format,
}

impl Binary {
    /// Reads every binary message as MessagePack (`--app msgpack`).
    pub fn msgpack() -> Binary {
        Binary {
            format: Format::MessagePack,
        }
    }

    /// Reads every binary message as CBOR (`--app cbor`).
    pub fn cbor() -> Binary {
        Binary {
            format: Format::Cbor,
        }
    }
}

impl Annotator for Binary {
    fn name(&self) -> &'static str {
        self.format.as_str()
    }

    fn read(&mut self, m: &AppMessage<'_>) -> Option<Reading> {
        if !m.binary {
            return None;
        }
        if std::str::from_utf8(m.payload).is_ok_and(plain) {
            return None;
        }
        let text = match self.format {
            Format::MessagePack => msgpack(m.payload)?,
            Format::Cbor => cbor(m.payload)?,
        };
        let f = self.format.as_str();
        Some(Reading::new(
            format!("{f} {text}"),
            json!({"protocol": f, "type": "value", "value": text}),
        ))
    }

    fn memory(&self) -> usize {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Examples from the MessagePack specification and msgpack.org's front page.
    #[test]
    fn messagepack_values() {
        // {"compact":true,"schema":0}
        let b = b"\x82\xa7compact\xc3\xa6schema\x00";
        assert_eq!(
            msgpack(b).as_deref(),
            Some(r#"{"compact":true,"schema":0}"#)
        );
        assert_eq!(decode(b).unwrap().0, Format::MessagePack);
        assert_eq!(msgpack(&[0x93, 1, 2, 3]), None, "short and no string");
        assert_eq!(
            msgpack(&[0x97, 1, 2, 3, 4, 5, 6, 0xff]).as_deref(),
            Some("[1,2,3,4,5,6,-1]")
        );
        assert_eq!(msgpack(b"\xa5hello").as_deref(), Some(r#""hello""#));
        assert_eq!(
            msgpack(&[
                0x92, 0xc4, 2, 0xde, 0xad, 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0
            ])
            .as_deref(),
            Some("[h'dead',1.5]")
        );
        assert_eq!(
            msgpack(&[0x81, 0x01, 0xa1, b'x']).as_deref(),
            Some(r#"{"1":"x"}"#)
        );
        assert_eq!(
            msgpack(&[0x92, 0xd6, 0xff, 0, 0, 0, 1, 0xa1, b't']).as_deref(),
            Some("[ext(-1,h'00000001'),\"t\"]")
        );
        // Rejected: trailing bytes, empty containers, scalars, nil keys, bad UTF-8, truncation.
        for b in [
            &[0x93, 1, 2, 3, 4][..],
            &[0x90],
            &[0x80],
            &[0x01],
            &[0xc0],
            &[0x81, 0xc0, 1],
            &[0xa2, 0xff, 0xfe],
            &[0xa3, b'a', 0x1b, b'b'],
            &[0x91, 1],
            &[0x93, 1, 2],
            &[0xdd, 0xff, 0xff, 0xff, 0xff],
            &[0xdb, 0xff, 0xff, 0xff, 0xff, b'a'],
            &[],
        ] {
            assert_eq!(msgpack(b), None, "{b:02x?}");
        }
    }

    // Examples from RFC 8949, appendix A.
    #[test]
    fn cbor_values() {
        assert_eq!(cbor(&[0x83, 0x01, 0x02, 0x03]), None, "short and no string");
        assert_eq!(
            cbor(&[0x88, 1, 2, 3, 4, 5, 6, 7, 0x20]).as_deref(),
            Some("[1,2,3,4,5,6,7,-1]")
        );
        assert_eq!(
            cbor(&[0xa2, 0x61, 0x61, 0x01, 0x61, 0x62, 0x82, 0x02, 0x03]).as_deref(),
            Some(r#"{"a":1,"b":[2,3]}"#)
        );
        assert_eq!(
            cbor(&[0x64, 0x49, 0x45, 0x54, 0x46]).as_deref(),
            Some(r#""IETF""#)
        );
        assert_eq!(
            cbor(&[
                0xbf, 0x63, 0x46, 0x75, 0x6e, 0xf5, 0x63, 0x41, 0x6d, 0x74, 0x21, 0xff
            ])
            .as_deref(),
            Some(r#"{"Fun":true,"Amt":-2}"#)
        );
        assert_eq!(
            cbor(&[0x9f, 0x01, 0x82, 0x02, 0x03, 0x9f, 0x04, 0x05, 0xff, 0xff]).as_deref(),
            Some("[1,[2,3],[4,5]]")
        );
        assert_eq!(
            cbor(&[0x82, 0xc1, 0x1a, 0x51, 0x4b, 0x67, 0xb0, 0x44, 1, 2, 3, 4]).as_deref(),
            Some("[1(1363896240),h'01020304']")
        );
        assert_eq!(
            cbor(&[0x82, 0xf9, 0x7c, 0x00, 0x61, b'x']).as_deref(),
            Some("[Infinity,\"x\"]")
        );
        assert_eq!(
            cbor(&[0xd9, 0xd9, 0xf7, 0x81, 0x61, b'x']).as_deref(),
            Some("[\"x\"]")
        );
        assert_eq!(cbor(&[0x81, 0x01]), None, "too short to tell");
        assert_eq!(cbor(&[0x63, b'a', 0x07, b'c']), None, "a control character");
        assert_eq!(
            cbor(&[0xa1, 0x01, 0x61, b'x']).as_deref(),
            Some(r#"{"1":"x"}"#)
        );
        assert_eq!(
            decode(&[0x83, 0x01, 0x02, 0x61, b'x']).unwrap().0,
            Format::Cbor
        );
        for b in [
            &[0x83, 1, 2, 3, 4][..],
            &[0x80],
            &[0xa0],
            &[0x01],
            &[0x60],
            &[0xa1, 0xf6, 1],
            &[0x62, 0xff, 0xfe],
            &[0x9f, 1],
            &[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            &[0x7b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, b'a'],
        ] {
            assert_eq!(cbor(b), None, "{b:02x?}");
        }
    }

    #[test]
    fn depth_and_size_are_capped() {
        let deep = |n: usize, open: u8, leaf: u8| {
            let mut v = vec![open; n];
            v.push(leaf);
            v
        };
        assert!(msgpack(&deep(32, 0x91, 1)).is_some());
        assert!(msgpack(&deep(33, 0x91, 1)).is_none());
        assert!(msgpack(&deep(100_000, 0x91, 1)).is_none());
        assert!(cbor(&deep(32, 0x81, 1)).is_some());
        assert!(cbor(&deep(33, 0x81, 1)).is_none());
        assert!(cbor(&deep(100_000, 0x81, 1)).is_none());
        // 10,000 strings: the text stops at 4 KiB.
        let mut b = vec![0xdc, 0x27, 0x10];
        for _ in 0..10_000 {
            b.extend(b"\xa3abc");
        }
        let t = msgpack(&b).unwrap();
        assert!(t.len() <= MAX_TEXT + 3 && t.ends_with('…'), "{}", t.len());
        let mut b = vec![0x99, 0x27, 0x10];
        for _ in 0..10_000 {
            b.extend(b"\x63abc");
        }
        let t = cbor(&b).unwrap();
        assert!(t.len() <= MAX_TEXT + 3 && t.ends_with('…'));
        // Past 1 MiB, nothing is decoded.
        let mut big = vec![0xdd, 0, 0x10, 0, 0];
        big.extend(std::iter::repeat_n(0xc0, 0x100000));
        assert_eq!(msgpack(&big), None);
        let r = reading(&[0x93, 1, 2, 0xa1, b'x']).unwrap();
        assert_eq!(r.text, "msgpack [1,2,\"x\"]");
        assert_eq!(r.json["protocol"], "msgpack");
    }

    /// The false-positive rate on random payloads (xorshift bytes), for the report:
    /// `cargo test --lib app::payload -- --nocapture --ignored`.
    #[test]
    fn random_payloads_rarely_parse() {
        let mut x: u64 = 0x9e3779b97f4a7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut hits = [0usize; 2];
        let mut total = 0;
        for len in [1usize, 2, 3, 4, 8, 16, 64, 256, 1024] {
            let n = if len <= 4 { 100_000 } else { 20_000 };
            let mut h = [0usize; 2];
            for _ in 0..n {
                let b: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                match decode(&b) {
                    Some((Format::MessagePack, _)) => h[0] += 1,
                    Some((Format::Cbor, _)) => h[1] += 1,
                    None => {}
                }
            }
            eprintln!(
                "random {len:>5} bytes: msgpack {}/{n}, cbor {}/{n}",
                h[0], h[1]
            );
            hits[0] += h[0];
            hits[1] += h[1];
            total += n;
            if len >= 3 {
                // Random data essentially never passes (here: under 1 in 1000).
                assert!(h[0] * 1000 <= n && h[1] * 1000 <= n, "{len}: {h:?}");
            }
        }
        eprintln!(
            "random, all lengths: msgpack {}/{total}, cbor {}/{total}",
            hits[0], hits[1]
        );
    }
}
