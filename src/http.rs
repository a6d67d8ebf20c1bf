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

pub enum Parsed<T> {
    /// The head is complete; `usize` bytes were consumed.
    Done(T, usize),
    Partial,
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

fn has_token(value: Option<&str>, token: &str) -> bool {
    value.is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

pub fn parse_request(buf: &[u8]) -> Parsed<HttpRequest> {
    let mut hs = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut hs);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => {
            let headers = collect(req.headers);
            let websocket_upgrade = has_token(header(&headers, "upgrade"), "websocket")
                && has_token(header(&headers, "connection"), "upgrade");
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

/// Parses a response; `req` is the request it answers, when known.
pub fn parse_response(buf: &[u8], req: Option<&HttpRequest>) -> Parsed<HttpResponse> {
    let mut hs = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut hs);
    match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => {
            let headers = collect(resp.headers);
            let status = resp.code.unwrap_or(0);
            // A 101 switches protocols only in answer to an upgrade request; with no request
            // seen (capture started late), the response's own headers decide.
            let upgraded = status == 101
                && req.map_or_else(
                    || has_token(header(&headers, "upgrade"), "websocket"),
                    |r| r.websocket_upgrade,
                );
            let key = req.and_then(|r| r.key.clone());
            let expected_accept = key.as_deref().map(accept_for);
            let accept = header(&headers, "sec-websocket-accept").map(|a| a.trim().to_string());
            let subprotocol = header(&headers, "sec-websocket-protocol").map(str::to_string);
            let extensions = header(&headers, "sec-websocket-extensions").map(str::to_string);
            let deflate = extensions.as_deref().and_then(parse_deflate);
            Parsed::Done(
                HttpResponse {
                    status,
                    reason: resp.reason.unwrap_or("").to_string(),
                    version: resp.version.unwrap_or(1),
                    headers,
                    upgraded,
                    key,
                    expected_accept,
                    accept,
                    subprotocol,
                    extensions,
                    deflate,
                    head_len: n,
                },
                n,
            )
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
    None,
    Length(u64),
    /// Chunked or until close: not followed; the rest of the stream is not decoded.
    Unbounded,
}

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
