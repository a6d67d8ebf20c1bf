//! HTTP/1.1 on a websocket port, parsed with httparse: the upgrade request, the 101 (or the
//! refusal), and plain HTTP exchanges that share the port, skipped by their lengths.

use crate::event::{DeflateParams, HttpRequest, HttpResponse, header};
use base64::Engine;
use sha1::{Digest, Sha1};

/// Most header bytes one message may take before it is called malformed.
pub const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 100;

/// The GUID of RFC 6455 section 1.3.
pub const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Sec-WebSocket-Accept for a key: base64(SHA-1(key + GUID)).
pub fn accept_for(key: &str) -> String {
    let mut h = Sha1::new();
    h.update(key.trim().as_bytes());
    h.update(WS_GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

/// The outcome of parsing an HTTP head (start line and headers, RFC 9112 2.1) from the
/// start of a buffer.
pub enum Parsed<T> {
    /// The head is complete; `usize` bytes were consumed.
    Done(T, usize),
    /// Valid so far but the head's closing empty line has not arrived: call again with more
    /// bytes. Capping the wait is the caller's ([`MAX_HEAD`]).
    Partial,
    /// The bytes are not an HTTP/1.x head; the string is httparse's reason.
    NotHttp(String),
}

fn collect(headers: &[httparse::Header<'_>]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect()
}

/// The comma-separated tokens of every `name` header (a field may be sent more than once;
/// RFC 9110 5.3 makes the lines one list).
fn tokens<'a>(headers: &'a [(String, String)], name: &'a str) -> impl Iterator<Item = &'a str> {
    headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

fn lists(headers: &[(String, String)], name: &str, token: &str) -> bool {
    tokens(headers, name).any(|t| t.eq_ignore_ascii_case(token))
}

/// The protocols a request invites the server to switch to (RFC 9110 7.8): the `Upgrade`
/// tokens of an HTTP/1.1 request whose `Connection` names `upgrade`. An HTTP/1.0 request, or
/// one without the connection option, offers nothing.
pub fn upgrade_offer(req: &HttpRequest) -> Vec<&str> {
    if req.version == 0 || !lists(&req.headers, "connection", "upgrade") {
        return Vec::new();
    }
    tokens(&req.headers, "upgrade").collect()
}

/// What a `101 Switching Protocols` switched the connection to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Switch {
    /// Websocket, as RFC 6455 section 4 describes it: frames follow. `problems` are the
    /// handshake's breaches that did not stop the server from switching (RFC 6455 4.1 and
    /// 4.2.1: a key, version 13; 4.2.2: the response's `Connection`); empty when none.
    WebSocket {
        /// One readable sentence per breach, naming its RFC section.
        problems: Vec<String>,
    },
    /// Another protocol the request offered (Docker's `tcp`, `h2c`): not decoded.
    Other {
        /// The first token of the 101's `Upgrade` header, as sent.
        protocol: String,
    },
    /// A 101 that is not a valid switch (RFC 9110 7.8, 15.2.2): `why`. What follows is
    /// not followed as websocket.
    Invalid {
        /// A readable sentence saying what is wrong with the 101.
        why: String,
    },
}

/// Judges a 101 (`resp`) against the request it answers (`req`, when the capture holds it).
/// Only the server's word and the request's offer decide whether frames follow: a websocket
/// 101 to a GET that offered websocket switches, even when the key or version is missing
/// (as Zeek does: a `websocket_missing_key_header` weird, and analysis goes on); any other
/// 101 switches to something wsdump does not decode, or to nothing it can name.
pub fn switch_of(req: Option<&HttpRequest>, resp: &HttpResponse) -> Switch {
    let named: Vec<&str> = tokens(&resp.headers, "upgrade").collect();
    let Some(&first) = named.first() else {
        return Switch::Invalid {
            why: "101 without an Upgrade header (RFC 9110 15.2.2): what it switched to is unknown"
                .into(),
        };
    };
    let websocket = named.iter().any(|t| t.eq_ignore_ascii_case("websocket"));
    let mut problems = Vec::new();
    if let Some(r) = req {
        if r.version == 0 {
            return Switch::Invalid {
                why: "101 to an HTTP/1.0 request, which cannot be upgraded (RFC 9110 7.8)".into(),
            };
        }
        if !lists(&r.headers, "connection", "upgrade") {
            return Switch::Invalid {
                why:
                    "101 to a request whose Connection header does not name upgrade (RFC 9110 7.8)"
                        .into(),
            };
        }
        let offer = upgrade_offer(r);
        if let Some(p) = named
            .iter()
            .find(|p| !offer.iter().any(|o| o.eq_ignore_ascii_case(p)))
        {
            return Switch::Invalid {
                why: format!(
                    "101 switches to \"{p}\", which the request did not offer (it offered \"{}\"; RFC 9110 7.8)",
                    offer.join(", ")
                ),
            };
        }
        if websocket && r.method != "GET" {
            return Switch::Invalid {
                why: format!(
                    "101 to websocket answers a {} request; the websocket handshake is a GET (RFC 6455 4.1)",
                    r.method
                ),
            };
        }
        if websocket {
            if r.key.as_deref().is_none_or(str::is_empty) {
                problems.push("the request has no Sec-WebSocket-Key (RFC 6455 4.1)".to_string());
            }
            match r.header("sec-websocket-version").map(str::trim) {
                Some("13") => {}
                Some(v) => problems.push(format!(
                    "the request asks for Sec-WebSocket-Version {v}, not 13 (RFC 6455 4.1)"
                )),
                None => problems
                    .push("the request has no Sec-WebSocket-Version: 13 (RFC 6455 4.1)".into()),
            }
            if r.key.is_some() && resp.accept.is_none() {
                problems.push("the 101 has no Sec-WebSocket-Accept (RFC 6455 4.2.2)".into());
            }
        }
    }
    if !websocket {
        return Switch::Other {
            protocol: first.to_string(),
        };
    }
    if !lists(&resp.headers, "connection", "upgrade") {
        problems.push("the 101's Connection header does not name upgrade (RFC 6455 4.2.2)".into());
    }
    Switch::WebSocket { problems }
}

/// Parses a request head from the start of `buf`, noting whether it asks for a websocket
/// upgrade (`Upgrade: websocket` and `Connection: upgrade`, RFC 6455 4.1) and its
/// `Sec-WebSocket-Key`.
pub fn parse_request(buf: &[u8]) -> Parsed<HttpRequest> {
    let mut hs = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut hs);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => {
            let headers = collect(req.headers);
            let websocket_upgrade =
                lists(&headers, "upgrade", "websocket") && lists(&headers, "connection", "upgrade");
            let key = header(&headers, "sec-websocket-key").map(|k| k.trim().to_string());
            Parsed::Done(
                HttpRequest {
                    method: req.method.unwrap_or("").to_string(),
                    path: req.path.unwrap_or("").to_string(),
                    version: req.version.unwrap_or(1),
                    headers,
                    websocket_upgrade,
                    key,
                    head_len: n,
                },
                n,
            )
        }
        Ok(httparse::Status::Partial) => Parsed::Partial,
        Err(e) => Parsed::NotHttp(e.to_string()),
    }
}

/// The status line's reason phrase as sent. httparse accepts obs-text (RFC 9110 4) but
/// gives "" for a phrase that is not ASCII, so a UTF-8 or Latin-1 phrase is taken from the
/// head's first line; bytes that are not UTF-8 become U+FFFD.
fn reason_phrase(head: &[u8], parsed: Option<&str>) -> String {
    if let Some(r) = parsed.filter(|r| !r.is_empty()) {
        return r.to_string();
    }
    let line = head.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    // "HTTP/1.1" SP status-code SP reason-phrase
    let mut parts = line.splitn(3, |&b| b == b' ');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(_), Some(_), Some(reason)) => String::from_utf8_lossy(reason).into_owned(),
        _ => String::new(),
    }
}

/// Parses a response; `req` is the request it answers, when known.
pub fn parse_response(buf: &[u8], req: Option<&HttpRequest>) -> Parsed<HttpResponse> {
    let mut hs = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut hs);
    match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => {
            let headers = collect(resp.headers);
            let status = resp.code.unwrap_or(0);
            let key = req.and_then(|r| r.key.clone());
            let expected_accept = key.as_deref().map(accept_for);
            let accept = header(&headers, "sec-websocket-accept").map(|a| a.trim().to_string());
            let subprotocol = header(&headers, "sec-websocket-protocol").map(str::to_string);
            let extensions = header(&headers, "sec-websocket-extensions").map(str::to_string);
            let deflate = extensions.as_deref().and_then(parse_deflate);
            let mut r = HttpResponse {
                status,
                reason: reason_phrase(&buf[..n], resp.reason),
                version: resp.version.unwrap_or(1),
                headers,
                upgraded: false,
                key,
                expected_accept,
                accept,
                subprotocol,
                extensions,
                deflate,
                head_len: n,
            };
            // A 101 switches to websocket only as RFC 6455 4 and RFC 9110 7.8 allow; with no
            // request seen (capture started late), the response's own headers decide.
            r.upgraded = status == 101 && matches!(switch_of(req, &r), Switch::WebSocket { .. });
            Parsed::Done(r, n)
        }
        Ok(httparse::Status::Partial) => Parsed::Partial,
        Err(e) => Parsed::NotHttp(e.to_string()),
    }
}

/// The permessage-deflate entry of an agreed Sec-WebSocket-Extensions value (RFC 7692 7.1).
pub fn parse_deflate(ext: &str) -> Option<DeflateParams> {
    for offer in ext.split(',') {
        let mut parts = offer.split(';').map(str::trim);
        if !parts
            .next()
            .is_some_and(|n| n.eq_ignore_ascii_case("permessage-deflate"))
        {
            continue;
        }
        let mut p = DeflateParams::default();
        for param in parts {
            let (name, value) = match param.split_once('=') {
                Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
                None => (param, None),
            };
            let bits = value.and_then(|v| v.parse::<u8>().ok());
            match name.to_ascii_lowercase().as_str() {
                "server_no_context_takeover" => p.server_no_context_takeover = true,
                "client_no_context_takeover" => p.client_no_context_takeover = true,
                "server_max_window_bits" => p.server_max_window_bits = bits.or(Some(15)),
                "client_max_window_bits" => p.client_max_window_bits = bits.or(Some(15)),
                _ => {}
            }
        }
        return Some(p);
    }
    None
}

/// How much body follows a head, for skipping plain HTTP on the port.
pub enum Body {
    /// No body: the next message's head follows at once.
    None,
    /// A body of exactly this many bytes (`Content-Length`, RFC 9112 6.2).
    Length(u64),
    /// Chunked or until close: not followed; the rest of the stream is not decoded.
    Unbounded,
}

/// The body a request head announces (RFC 9112 6.3): any `Transfer-Encoding` makes it
/// [`Body::Unbounded`], else `Content-Length`, else none.
pub fn request_body(req: &HttpRequest) -> Body {
    if req.header("transfer-encoding").is_some() {
        return Body::Unbounded;
    }
    match req
        .header("content-length")
        .and_then(|v| v.trim().parse().ok())
    {
        Some(n) => Body::Length(n),
        None => Body::None,
    }
}

/// The body a response head announces (RFC 9112 6.3). `req_method` is the answered
/// request's method when known: a response to HEAD, and 1xx, 204 and 304, have none; with
/// neither `Transfer-Encoding` nor `Content-Length` the body runs until close
/// ([`Body::Unbounded`]).
pub fn response_body(resp: &HttpResponse, req_method: Option<&str>) -> Body {
    if req_method == Some("HEAD") || matches!(resp.status, 100..=199 | 204 | 304) {
        return Body::None;
    }
    if resp.header("transfer-encoding").is_some() {
        return Body::Unbounded;
    }
    match resp
        .header("content-length")
        .and_then(|v| v.trim().parse().ok())
    {
        Some(n) => Body::Length(n),
        None => Body::Unbounded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_accept_example() {
        assert_eq!(
            accept_for("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(
            accept_for("dGhlIHNhbXBsZSBub25jZQ=="),
            tungstenite::handshake::derive_accept_key(b"dGhlIHNhbXBsZSBub25jZQ==")
        );
    }

    #[test]
    fn upgrade_request_split_anywhere() {
        let req = b"GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n\x81\x05";
        let head = req.len() - 2;
        for cut in 0..head {
            assert!(
                matches!(parse_request(&req[..cut]), Parsed::Partial),
                "cut {cut}"
            );
        }
        match parse_request(req) {
            Parsed::Done(r, n) => {
                assert_eq!(n, head);
                assert!(r.websocket_upgrade);
                assert_eq!(r.path, "/chat");
            }
            _ => panic!("complete request"),
        }
    }

    #[test]
    fn reason_phrase_not_ascii() {
        let head = "HTTP/1.1 101 Переключение протоколов\r\nUpgrade: websocket\r\n\r\n";
        match parse_response(head.as_bytes(), None) {
            Parsed::Done(r, _) => assert_eq!(r.reason, "Переключение протоколов"),
            _ => panic!("complete response"),
        }
        match parse_response(b"HTTP/1.1 200 Tr\xe8s bien\r\n\r\n", None) {
            Parsed::Done(r, _) => assert_eq!(r.reason, "Tr\u{fffd}s bien"),
            _ => panic!("complete response"),
        }
        match parse_response(b"HTTP/1.1 204\r\n\r\n", None) {
            Parsed::Done(r, _) => assert_eq!(r.reason, ""),
            _ => panic!("complete response"),
        }
    }

    #[test]
    fn workerman_reason_phrase_and_mismatch() {
        let (r, _) = match parse_request(b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n") {
            Parsed::Done(r, n) => (r, n),
            _ => panic!(),
        };
        let ok = b"HTTP/1.1 101 Switching Protocol\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
        match parse_response(ok, Some(&r)) {
            Parsed::Done(resp, _) => {
                assert!(resp.upgraded);
                assert_eq!(resp.accept_ok(), Some(true));
            }
            _ => panic!(),
        }
        let bad = b"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: AAAA\r\n\r\n";
        match parse_response(bad, Some(&r)) {
            Parsed::Done(resp, _) => assert_eq!(resp.accept_ok(), Some(false)),
            _ => panic!(),
        }
        let refused = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n";
        match parse_response(refused, Some(&r)) {
            Parsed::Done(resp, _) => assert!(!resp.upgraded),
            _ => panic!(),
        }
    }

    fn req(head: &[u8]) -> HttpRequest {
        match parse_request(head) {
            Parsed::Done(r, _) => r,
            _ => panic!("complete request"),
        }
    }

    fn switch(r: Option<&HttpRequest>, head: &[u8]) -> Switch {
        match parse_response(head, r) {
            Parsed::Done(resp, _) => switch_of(r, &resp),
            _ => panic!("complete response"),
        }
    }

    const OK_101: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

    #[test]
    fn a_valid_handshake_switches_to_websocket() {
        let r = req(b"GET /chat HTTP/1.1\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
        assert!(r.websocket_upgrade);
        assert_eq!(
            switch(Some(&r), OK_101),
            Switch::WebSocket { problems: vec![] }
        );
        // Capture began after the request: the 101's own headers decide.
        assert_eq!(switch(None, OK_101), Switch::WebSocket { problems: vec![] });
    }

    #[test]
    fn a_101_to_what_nobody_offered_switches_nothing() {
        // Scapy's websocket_invalid_handshakes.pcap: `websockets` answers `websocket`.
        let r = req(b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: qahP4HKA9p47jHXBgcoaKg==\r\nSec-WebSocket-Version: 13\r\n\r\n");
        let bad =
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websockets\nConnection: Upgrade\r\n\r\n";
        assert!(matches!(switch(Some(&r), bad), Switch::Invalid { .. }));
        match parse_response(bad, Some(&r)) {
            Parsed::Done(resp, _) => assert!(!resp.upgraded),
            _ => panic!(),
        }
        let none = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n";
        assert!(matches!(switch(Some(&r), none), Switch::Invalid { .. }));
    }

    #[test]
    fn requests_that_are_not_websocket_handshakes() {
        for head in [
            &b"POST / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"[..],
            b"GET / HTTP/1.0\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        ] {
            let r = req(head);
            assert!(
                matches!(switch(Some(&r), OK_101), Switch::Invalid { .. }),
                "{}",
                String::from_utf8_lossy(head)
            );
        }
    }

    #[test]
    fn a_missing_key_or_version_is_a_breach_the_server_may_overlook() {
        let r = req(b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\n\r\n");
        match switch(Some(&r), OK_101) {
            Switch::WebSocket { problems } => {
                assert_eq!(problems.len(), 2, "{problems:?}");
                assert!(problems[0].contains("Sec-WebSocket-Key"));
                assert!(problems[1].contains("Version 8"));
            }
            s => panic!("{s:?}"),
        }
    }

    #[test]
    fn docker_upgrade_to_tcp() {
        let r = req(b"POST /v1.41/containers/x/attach?stream=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n");
        assert!(!r.websocket_upgrade);
        assert_eq!(upgrade_offer(&r), vec!["tcp"]);
        let resp = b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n";
        assert_eq!(
            switch(Some(&r), resp),
            Switch::Other {
                protocol: "tcp".into()
            }
        );
    }

    #[test]
    fn deflate_parameters() {
        let p = parse_deflate(
            "permessage-deflate; server_no_context_takeover; client_max_window_bits=10",
        )
        .unwrap();
        assert!(p.server_no_context_takeover && !p.client_no_context_takeover);
        assert_eq!(p.client_max_window_bits, Some(10));
        assert!(parse_deflate("x-webkit-deflate-frame").is_none());
    }

    #[test]
    fn not_http() {
        assert!(matches!(
            parse_request(b"\x16\x03\x01\x02\x00"),
            Parsed::NotHttp(_)
        ));
    }
}
