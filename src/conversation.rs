//! What a connection's two byte streams carry: HTTP until an upgrade is agreed, then
//! websocket. TLS (wss://) is a session layer of its own ([`tls`]): what it decrypts is a
//! nested conversation. Also recognises streams that join mid-conversation.

mod tls;

use crate::event::{Dir, Emit, EventKind, HttpRequest, Notice, Violation, ViolationKind};
use crate::http::{self, Body, Parsed, Switch};
use crate::memory::{Memory, Pool};
use crate::tls::KeyStore;
use crate::ws::decoder::Compression;
use crate::ws::{Limits, WsDecoder};
use std::io;

/// What a websocket decoder costs the ledger just by existing (its boxed state).
pub(crate) const DECODER_COST: usize = std::mem::size_of::<WsDecoder>() + 16;

enum Mode {
    /// Nothing seen yet in this direction.
    Start,
    Http,
    /// Skipping a plain HTTP body, then back to `Http`.
    Body(u64),
    /// Client side after an upgrade request: holding bytes until the response decides.
    AwaitUpgrade,
    Ws(Box<WsDecoder>),
    /// After a 101 to something other than websocket: the next bytes are parsed as HTTP if
    /// they are HTTP (the peers did not switch), else the direction is not decoded and the
    /// notice held here says why.
    Switched(Box<str>),
    /// Not decoded (TLS, unknown protocol, unbounded HTTP body).
    Opaque,
}

struct Side {
    mode: Mode,
    /// An HTTP head not yet complete, or client bytes held until the upgrade is answered;
    /// charged to [`Pool::Http`].
    buf: Vec<u8>,
}

impl Side {
    fn new() -> Self {
        Side {
            mode: Mode::Start,
            buf: Vec::new(),
        }
    }

    /// Switches mode, keeping the ledger's count of decoders right.
    fn set_mode(&mut self, mode: Mode, mem: &mut Memory) {
        if let Mode::Ws(d) = &mut self.mode {
            d.release(mem);
            mem.refund(Pool::Connections, DECODER_COST);
        }
        if let Mode::Ws(_) = mode {
            mem.force(Pool::Connections, DECODER_COST);
        }
        self.mode = mode;
    }
}

pub struct Conversation {
    sides: [Side; 2],
    /// The request the next response answers.
    pending: Option<Box<HttpRequest>>,
    /// Each direction's stream has ended (FIN delivered, or the connection closed).
    ended: [bool; 2],
    /// No SYN was seen: the streams may start anywhere.
    mid_stream: bool,
    /// The server side is one of the `--port` ports: treat unknown bytes as websocket.
    port_hint: bool,
    limits: Limits,
    pub websocket: bool,
    /// A direction started with TLS records: nothing on this connection is hunted.
    tls: bool,
    /// The secrets TLS is decrypted with.
    keys: Option<KeyStore>,
    /// Once TLS was seen, both streams go through it.
    session: Option<Box<tls::TlsSession>>,
}

impl Conversation {
    pub fn new(mid_stream: bool, port_hint: bool, limits: Limits) -> Self {
        Conversation {
            sides: [Side::new(), Side::new()],
            pending: None,
            ended: [false; 2],
            mid_stream,
            port_hint,
            limits,
            websocket: false,
            tls: false,
            keys: None,
            session: None,
        }
    }

    /// Decrypts TLS with these secrets (without, TLS is recognised and described).
    pub fn with_keys(mut self, keys: Option<KeyStore>) -> Self {
        self.keys = keys;
        self
    }

    /// A TLS connection whose keys are not (yet) in a key log that may still grow: the
    /// caller refreshes the key log before the next bytes.
    pub fn wants_keys(&self) -> bool {
        self.session.as_ref().is_some_and(|s| s.wants_keys())
    }

    /// In-order bytes of `dir` at stream offset `at`.
    pub fn data(
        &mut self,
        dir: Dir,
        at: u64,
        data: &[u8],
        mem: &mut Memory,
        em: &mut dyn Emit,
    ) -> io::Result<()> {
        let i = dir.index();
        if self.session.is_none()
            && let Mode::Start = self.sides[i].mode
        {
            self.classify(dir, at, data, mem, em)?;
        }
        if let Some(s) = self.session.as_deref_mut() {
            let r = s.data(dir, data, mem, em);
            self.websocket |= s.websocket();
            return r;
        }
        match &mut self.sides[i].mode {
            Mode::Ws(d) => {
                let r = d.feed(data, mem, em);
                // Joined mid-stream, the connection is websocket once frames are found.
                self.websocket |= d.synced();
                r
            }
            Mode::Opaque => Ok(()),
            Mode::AwaitUpgrade => self.await_upgrade(dir, data, mem, em),
            Mode::Http | Mode::Body(_) => self.http(dir, data, mem, em),
            Mode::Switched(_) => self.switched(dir, data, mem, em),
            Mode::Start => Ok(()),
        }
    }

    /// Decides what a direction carries from its first bytes (at stream offset `at`).
    fn classify(
        &mut self,
        dir: Dir,
        at: u64,
        first: &[u8],
        mem: &mut Memory,
        em: &mut dyn Emit,
    ) -> io::Result<()> {
        let i = dir.index();
        let looks_http = match dir {
            Dir::C2S => starts_like_request(first),
            Dir::S2C => first.starts_with(b"HTTP/"),
        };
        if looks_http {
            self.sides[i].mode = Mode::Http;
            return Ok(());
        }
        if tls::starts_like_tls(first) {
            self.sides[i].mode = Mode::Opaque;
            // A connection that has shown TLS is TLS both ways: the other direction, if it
            // is still hunting for frames in what is ciphertext, stops.
            self.tls = true;
            let other = &mut self.sides[dir.flip().index()];
            if let Mode::Ws(d) = &other.mode
                && !d.synced()
            {
                other.set_mode(Mode::Opaque, mem);
            }
            mem.force(Pool::Connections, tls::SESSION_COST);
            self.session = Some(Box::new(tls::TlsSession::new(
                self.port_hint,
                self.limits,
                self.keys.clone(),
            )));
            return Ok(());
        }
        if self.tls {
            self.sides[i].mode = Mode::Opaque;
            return Ok(());
        }
        if self.mid_stream || self.port_hint || self.websocket {
            if self.mid_stream && !self.sides[dir.flip().index()].is_ws() {
                em.emit(dir, EventKind::Notice(&Notice::MidStream))?;
            }
            let expect = if self.mid_stream && !self.port_hint {
                None
            } else {
                Some(dir == Dir::C2S)
            };
            let d = WsDecoder::mid_stream(dir, expect, self.limits, at);
            self.sides[i].set_mode(Mode::Ws(Box::new(d)), mem);
            return Ok(());
        }
        self.sides[i].mode = Mode::Opaque;
        em.emit(
            dir,
            EventKind::Notice(&Notice::Undecoded {
                detail: "stream does not start with HTTP; not decoded".into(),
            }),
        )
    }

    fn http(
        &mut self,
        dir: Dir,
        data: &[u8],
        mem: &mut Memory,
        em: &mut dyn Emit,
    ) -> io::Result<()> {
        let i = dir.index();
        let mut owned;
        let mut rest: &[u8] = if self.sides[i].buf.is_empty() {
            data
        } else {
            owned = self.sides[i].take_buf(mem);
            owned.extend_from_slice(data);
            &owned[..]
        };
        loop {
            if rest.is_empty() {
                return Ok(());
            }
            match self.sides[i].mode {
                Mode::Body(n) => {
                    let k = n.min(rest.len() as u64);
                    rest = &rest[k as usize..];
                    self.sides[i].mode = if k == n {
                        Mode::Http
                    } else {
                        Mode::Body(n - k)
                    };
                    continue;
                }
                Mode::Http => {}
                // The head just parsed switched the mode: hand the rest on.
                _ => return self.data_after_switch(dir, rest, mem, em),
            }
            let parsed = match dir {
                Dir::C2S => match http::parse_request(rest) {
                    Parsed::Done(r, n) => Parsed::Done(Head::Req(r), n),
                    Parsed::Partial => Parsed::Partial,
                    Parsed::NotHttp(e) => Parsed::NotHttp(e),
                },
                Dir::S2C => match http::parse_response(rest, self.pending.as_deref()) {
                    Parsed::Done(r, n) => Parsed::Done(Head::Resp(Box::new(r)), n),
                    Parsed::Partial => Parsed::Partial,
                    Parsed::NotHttp(e) => Parsed::NotHttp(e),
                },
            };
            match parsed {
                Parsed::Partial => {
                    if rest.len() > http::MAX_HEAD {
                        self.sides[i].mode = Mode::Opaque;
                        return em.emit(
                            dir,
                            EventKind::Violation(&Violation {
                                kind: ViolationKind::HttpTooLarge,
                                detail: format!("HTTP head longer than {} bytes", http::MAX_HEAD),
                            }),
                        );
                    }
                    if !self.sides[i].hold(rest, mem) {
                        self.sides[i].mode = Mode::Opaque;
                        return em.emit(
                            dir,
                            EventKind::Violation(&Violation {
                                kind: ViolationKind::HttpTooLarge,
                                detail: "no memory left (--max-buffer) for an unfinished HTTP head"
                                    .into(),
                            }),
                        );
                    }
                    return Ok(());
                }
                Parsed::NotHttp(why) => {
                    self.sides[i].mode = Mode::Opaque;
                    return em.emit(
                        dir,
                        EventKind::Violation(&Violation {
                            kind: ViolationKind::HttpMalformed,
                            detail: format!("{why}; rest of the stream not decoded"),
                        }),
                    );
                }
                Parsed::Done(Head::Req(req), n) => {
                    rest = &rest[n..];
                    em.emit(dir, EventKind::HttpRequest(&req))?;
                    let body = http::request_body(&req);
                    // A request that offers an upgrade (any protocol: websocket, Docker's
                    // tcp) and has no body: what the client sends next is held until the
                    // response says what it is.
                    let offers = (req.websocket_upgrade || !http::upgrade_offer(&req).is_empty())
                        && matches!(body, Body::None | Body::Length(0));
                    self.sides[i].mode = if offers {
                        Mode::AwaitUpgrade
                    } else {
                        match body {
                            Body::None => Mode::Http,
                            Body::Length(n) => Mode::Body(n),
                            Body::Unbounded => Mode::Opaque,
                        }
                    };
                    // The request waits for its response: charged, and given back then.
                    mem.force(Pool::Http, pending_cost(&req));
                    if let Some(old) = self.pending.replace(Box::new(req)) {
                        mem.refund(Pool::Http, pending_cost(&old));
                    }
                }
                Parsed::Done(Head::Resp(resp), n) => {
                    rest = &rest[n..];
                    em.emit(dir, EventKind::HttpResponse(&resp))?;
                    if let Some(ok) = resp.accept_ok()
                        && !ok
                    {
                        em.emit(
                            dir,
                            EventKind::Violation(&Violation {
                                kind: ViolationKind::AcceptMismatch,
                                detail: format!(
                                    "Sec-WebSocket-Accept {} but the key implies {}",
                                    resp.accept.as_deref().unwrap_or(""),
                                    resp.expected_accept.as_deref().unwrap_or("")
                                ),
                            }),
                        )?;
                    }
                    if resp.status >= 100 && resp.status < 200 && resp.status != 101 {
                        continue;
                    }
                    let req = self.pending.take();
                    if let Some(r) = &req {
                        mem.refund(Pool::Http, pending_cost(r));
                    }
                    if resp.status == 101 {
                        match http::switch_of(req.as_deref(), &resp) {
                            Switch::WebSocket { problems } => {
                                if !problems.is_empty() {
                                    em.emit(
                                        dir,
                                        EventKind::Violation(&Violation {
                                            kind: ViolationKind::InvalidUpgrade,
                                            detail: format!(
                                                "{}; decoded all the same: the server switched",
                                                problems.join("; ")
                                            ),
                                        }),
                                    )?;
                                }
                                self.switch_to_ws(
                                    resp.deflate.map_or(Compression::Off, Compression::Deflate),
                                    mem,
                                    em,
                                )?;
                            }
                            Switch::Other { protocol } => {
                                let note = format!("switched to {protocol}: not decoded");
                                self.switch_elsewhere(note, mem, em)?;
                            }
                            Switch::Invalid { why } => {
                                em.emit(
                                    dir,
                                    EventKind::Violation(&Violation {
                                        kind: ViolationKind::InvalidUpgrade,
                                        detail: why,
                                    }),
                                )?;
                                let note = "not HTTP after an invalid 101: not decoded".into();
                                self.switch_elsewhere(note, mem, em)?;
                            }
                        }
                    } else {
                        self.sides[i].mode = match http::response_body(
                            &resp,
                            req.as_ref().map(|r| r.method.as_str()),
                        ) {
                            Body::None => Mode::Http,
                            Body::Length(n) => Mode::Body(n),
                            Body::Unbounded => Mode::Opaque,
                        };
                        // A refused upgrade: the client goes on speaking HTTP, or, if it
                        // did not wait for the answer, sent bytes of the protocol it asked
                        // for, which are not decoded.
                        let c = &mut self.sides[Dir::C2S.index()];
                        if matches!(c.mode, Mode::AwaitUpgrade) {
                            c.mode = Mode::Switched(
                                format!(
                                    "the upgrade was refused ({}); what the client sent after its request is not HTTP: not decoded",
                                    resp.status
                                )
                                .into(),
                            );
                            let held = c.take_buf(mem);
                            if !held.is_empty() {
                                self.switched(Dir::C2S, &held, mem, em)?;
                            }
                        }
                    }
                }
            }
        }
    }

    fn data_after_switch(
        &mut self,
        dir: Dir,
        rest: &[u8],
        mem: &mut Memory,
        em: &mut dyn Emit,
    ) -> io::Result<()> {
        match &mut self.sides[dir.index()].mode {
            Mode::Ws(d) => d.feed(rest, mem, em),
            Mode::AwaitUpgrade => self.await_upgrade(dir, rest, mem, em),
            Mode::Switched(_) => self.switched(dir, rest, mem, em),
            _ => Ok(()),
        }
    }

    /// A 101 switched the connection to something wsdump does not decode (`note` says
    /// what): both directions wait for their next bytes to tell whether they are still HTTP.
    fn switch_elsewhere(
        &mut self,
        note: String,
        mem: &mut Memory,
        em: &mut dyn Emit,
    ) -> io::Result<()> {
        let note: Box<str> = note.into();
        for dir in [Dir::S2C, Dir::C2S] {
            let s = &mut self.sides[dir.index()];
            if matches!(
                s.mode,
                Mode::Http | Mode::Body(_) | Mode::AwaitUpgrade | Mode::Start
            ) {
                s.mode = Mode::Switched(note.clone());
            }
        }
        // Bytes the client sent before the 101 arrived.
        let held = self.sides[Dir::C2S.index()].take_buf(mem);
        if !held.is_empty() {
            self.switched(Dir::C2S, &held, mem, em)?;
        }
        Ok(())
    }

    /// The first bytes of a direction after a 101 that did not switch to websocket: HTTP
    /// again (Scapy's test capture answers several bad upgrades with 101s and goes on with
    /// HTTP), or the other protocol, which is not decoded.
    fn switched(
        &mut self,
        dir: Dir,
        data: &[u8],
        mem: &mut Memory,
        em: &mut dyn Emit,
    ) -> io::Result<()> {
        let http_again = match dir {
            Dir::C2S => starts_like_request(data),
            Dir::S2C => data.starts_with(b"HTTP/") || b"HTTP/".starts_with(data),
        };
        let s = &mut self.sides[dir.index()];
        if http_again {
            s.mode = Mode::Http;
            return self.http(dir, data, mem, em);
        }
        let Mode::Switched(note) = std::mem::replace(&mut s.mode, Mode::Opaque) else {
            return Ok(());
        };
        em.emit(
            dir,
            EventKind::Notice(&Notice::Undecoded {
                detail: note.into(),
            }),
        )
    }

    /// Client bytes after an upgrade request, held until the response decides what they are.
    fn await_upgrade(
        &mut self,
        dir: Dir,
        data: &[u8],
        mem: &mut Memory,
        em: &mut dyn Emit,
    ) -> io::Result<()> {
        let s = &mut self.sides[dir.index()];
        let cap = self.limits.max_message.max(http::MAX_HEAD);
        if s.buf.len() + data.len() <= cap && s.hold(data, mem) {
            return Ok(());
        }
        s.mode = Mode::Opaque;
        s.take_buf(mem);
        em.emit(
            dir,
            EventKind::Violation(&Violation {
                kind: ViolationKind::HttpTooLarge,
                detail: "client sent too much before the server answered the upgrade".into(),
            }),
        )
    }

    fn switch_to_ws(
        &mut self,
        compression: Compression,
        mem: &mut Memory,
        em: &mut dyn Emit,
    ) -> io::Result<()> {
        self.websocket = true;
        for dir in [Dir::S2C, Dir::C2S] {
            let s = &mut self.sides[dir.index()];
            let mut d = WsDecoder::new(dir, Some(dir == Dir::C2S), compression, self.limits);
            let held = s.take_buf(mem);
            let was_waiting = matches!(s.mode, Mode::AwaitUpgrade | Mode::Http | Mode::Start);
            if dir == Dir::C2S && was_waiting && !held.is_empty() {
                // Frames the client sent before the 101 arrived.
                d.feed(&held, mem, em)?;
            }
            if was_waiting || dir == Dir::S2C {
                s.set_mode(Mode::Ws(Box::new(d)), mem);
            } else {
                d.release(mem);
            }
        }
        Ok(())
    }

    /// `len` bytes of `dir` that will never arrive; the next byte is at offset `at + len`.
    pub fn gap(
        &mut self,
        dir: Dir,
        at: u64,
        len: u64,
        mem: &mut Memory,
        em: &mut dyn Emit,
    ) -> io::Result<()> {
        if let Some(s) = self.session.as_deref_mut() {
            return s.gap(dir, mem, em);
        }
        let ws_expected = self.websocket || self.mid_stream || self.port_hint;
        let limits = self.limits;
        let s = &mut self.sides[dir.index()];
        match &mut s.mode {
            Mode::Ws(d) => d.gap(len, mem, em),
            Mode::Body(n) if *n > len => {
                *n -= len;
                Ok(())
            }
            Mode::Start if ws_expected => {
                let d = WsDecoder::mid_stream(dir, None, limits, at + len);
                s.set_mode(Mode::Ws(Box::new(d)), mem);
                Ok(())
            }
            _ => {
                // HTTP cannot be followed across a hole.
                s.set_mode(Mode::Opaque, mem);
                s.take_buf(mem);
                Ok(())
            }
        }
    }

    /// Bytes of `dir` of unknown length were lost (inside TLS, where the plaintext lost
    /// cannot be counted).
    fn lost(&mut self, dir: Dir, mem: &mut Memory, em: &mut dyn Emit) -> io::Result<()> {
        let s = &mut self.sides[dir.index()];
        match &mut s.mode {
            Mode::Ws(d) => d.lost(mem, em),
            _ => {
                // HTTP cannot be followed across a hole.
                s.set_mode(Mode::Opaque, mem);
                s.take_buf(mem);
                Ok(())
            }
        }
    }

    /// The connection is over and drained: drop decoders, inflaters and buffers.
    pub fn release(&mut self, mem: &mut Memory) {
        if let Some(mut t) = self.session.take() {
            t.release(mem);
            mem.refund(Pool::Connections, tls::SESSION_COST);
        }
        for s in &mut self.sides {
            s.set_mode(Mode::Opaque, mem);
            s.take_buf(mem);
            s.buf = Vec::new();
        }
        if let Some(r) = self.pending.take() {
            mem.refund(Pool::Http, pending_cost(&r));
        }
    }

    pub fn end(&mut self, dir: Dir, mem: &mut Memory, em: &mut dyn Emit) -> io::Result<()> {
        self.ended[dir.index()] = true;
        if let Some(s) = self.session.as_deref_mut() {
            let r = s.end(dir, mem, em);
            self.websocket |= s.websocket();
            return r;
        }
        if let Mode::Ws(d) = &mut self.sides[dir.index()].mode {
            d.finish(mem, em)?;
            self.websocket |= d.synced();
        }
        // Held bytes of an ended direction will never complete, except a client's frames
        // waiting for a 101 the server may still send.
        let server_ended = self.ended[Dir::S2C.index()];
        for d in [Dir::C2S, Dir::S2C] {
            let s = &mut self.sides[d.index()];
            let waiting = d == Dir::C2S && matches!(s.mode, Mode::AwaitUpgrade) && !server_ended;
            if self.ended[d.index()] && !waiting {
                s.take_buf(mem);
            }
        }
        Ok(())
    }
}

impl Side {
    /// Appends to the held bytes if the memory shared by all connections allows.
    fn hold(&mut self, bytes: &[u8], mem: &mut Memory) -> bool {
        if !mem.charge(Pool::Http, bytes.len()) {
            return false;
        }
        self.buf.extend_from_slice(bytes);
        true
    }

    /// Takes the held bytes, giving their memory back.
    fn take_buf(&mut self, mem: &mut Memory) -> Vec<u8> {
        let b = std::mem::take(&mut self.buf);
        mem.refund(Pool::Http, b.len());
        b
    }

    fn is_ws(&self) -> bool {
        matches!(self.mode, Mode::Ws(_))
    }
}

/// What a request waiting for its response holds: its head's bytes, more or less, in the
/// strings of its headers.
fn pending_cost(r: &HttpRequest) -> usize {
    std::mem::size_of::<HttpRequest>() + r.head_len + r.headers.len() * 48
}

enum Head {
    Req(HttpRequest),
    Resp(Box<crate::event::HttpResponse>),
}

pub(crate) fn starts_like_request(d: &[u8]) -> bool {
    const METHODS: [&[u8]; 9] = [
        b"GET ",
        b"POST ",
        b"PUT ",
        b"HEAD ",
        b"DELETE ",
        b"OPTIONS ",
        b"PATCH ",
        b"CONNECT ",
        b"TRACE ",
    ];
    METHODS.iter().any(|m| {
        let n = m.len().min(d.len());
        d.len() >= 3 && d[..n] == m[..n]
    })
}


#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Rec(Vec<String>);

    impl Emit for Rec {
        fn emit(&mut self, dir: Dir, kind: EventKind<'_>) -> io::Result<()> {
            let s = match kind {
                EventKind::Message(m) => format!("{} message {}", dir.as_str(), m.opcode),
                EventKind::Violation(v) => {
                    format!("{} violation {}", dir.as_str(), v.kind.as_str())
                }
                EventKind::Notice(n) => format!("{} notice {n:?}", dir.as_str()),
                EventKind::HttpResponse(r) => {
                    format!("{} http {} {}", dir.as_str(), r.status, r.upgraded)
                }
                _ => return Ok(()),
            };
            self.0.push(s);
            Ok(())
        }
    }

    fn talk(turns: &[(Dir, &[u8])]) -> Vec<String> {
        let mut c = Conversation::new(false, false, Limits::default());
        let mut mem = Memory::default();
        let mut r = Rec::default();
        let mut at = [0u64; 2];
        for (dir, bytes) in turns {
            c.data(*dir, at[dir.index()], bytes, &mut mem, &mut r)
                .unwrap();
            at[dir.index()] += bytes.len() as u64;
        }
        c.release(&mut mem);
        assert_eq!(mem.used(), 0);
        r.0
    }

    const KEY: &str = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

    /// The shape of Scapy's invalid-handshake test: 101s that switch to nothing the request
    /// offered are followed by HTTP again, and the one valid switch by a frame.
    #[test]
    fn http_after_a_bad_101_is_still_http() {
        let bad_101 = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websockets\r\nConnection: Upgrade\r\n\r\n";
        let get =
            format!("GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n{KEY}\r\n");
        let ok_101 = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
        // A masked "Hi".
        let frame = [0x81, 0x82, 1, 2, 3, 4, b'H' ^ 1, b'i' ^ 2];
        let got = talk(&[
            (Dir::C2S, get.as_bytes()),
            (Dir::S2C, bad_101),
            (Dir::C2S, get.as_bytes()),
            (Dir::S2C, ok_101),
            (Dir::C2S, &frame),
        ]);
        assert_eq!(
            got,
            [
                "s2c http 101 false",
                "s2c violation invalid_upgrade",
                "s2c http 101 true",
                "s2c violation invalid_upgrade",
                "c2s message text",
            ],
        );
    }

    /// Docker's `Upgrade: tcp`: the raw stream after the 101 is neither websocket nor HTTP,
    /// and is said so once per direction.
    #[test]
    fn a_switch_to_tcp_is_not_decoded() {
        let got = talk(&[
            (
                Dir::C2S,
                b"POST /attach HTTP/1.1\r\nContent-Length: 0\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n\x81\x02hi",
            ),
            (
                Dir::S2C,
                b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n\x81\x02hi",
            ),
            (Dir::C2S, b"more raw bytes"),
        ]);
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[0], "s2c http 101 false");
        assert!(got[1].starts_with("c2s notice Undecoded") && got[1].contains("switched to tcp"));
        assert!(got[2].starts_with("s2c notice Undecoded") && got[2].contains("switched to tcp"));
    }
}
