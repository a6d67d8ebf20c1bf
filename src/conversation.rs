//! What a connection's two byte streams carry: HTTP until an upgrade is agreed, then
//! websocket. TLS (wss://) is a session layer of its own ([`tls`]): what it decrypts is a
//! nested conversation. Also recognises streams that join mid-conversation.

mod tls;

use crate::event::{
    Dir, Emit, EventKind, HttpRequest, Incomplete, Notice, Violation, ViolationKind,
};
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
    /// (A thin box: every direction of every connection has a `Mode`.)
    #[allow(clippy::box_collection)]
    Switched(Box<String>),
    /// Not decoded (TLS, unknown protocol, unbounded HTTP body).
    Opaque,
}

struct Side {
    mode: Mode,
    /// An HTTP head not yet complete, or client bytes held until the upgrade is answered,
    /// or a first segment too short to classify; charged to [`Pool::Http`]. Boxed, and only
    /// while something is held: an idle connection pays a pointer.
    held: Option<Box<Held>>,
}

/// Bytes a direction holds, and where the parsing of an HTTP head in them stands.
#[derive(Default)]
struct Held {
    /// Never empty while held.
    buf: Vec<u8>,
    /// Length of `buf` when the parser last said "partial": parsing again is worth it only
    /// once the head may have ended, or once `buf` has doubled (see [`Held::worth_parsing`]).
    parsed_len: usize,
    /// An empty line after the head's first bytes did not end it (which no valid head does):
    /// only doubling triggers a parse for this head now.
    end_unreliable: bool,
    /// Where the held head's first byte that is not CR or LF is: empty lines before it
    /// (allowed between requests, RFC 9112 2.2) end nothing.
    first_content: Option<usize>,
    /// Stream offset of the first byte held while too few bytes had come to classify them.
    start_at: u64,
}

/// What holding bytes costs beyond them: the box and its allocation.
const HELD_COST: usize = std::mem::size_of::<Held>() + 16;

impl Held {
    /// Whether the held head, which was `old` bytes before the latest append, should be
    /// parsed again. Re-parsing from the start on every segment is quadratic (a head sent
    /// one byte per segment); this is linear: a parse when the bytes just added hold an empty
    /// line (the head's end), and otherwise when the held bytes have doubled since the last
    /// parse (so a malformed head is still refused within twice its bytes), or when they
    /// pass the head limit.
    fn worth_parsing(&mut self, old: usize) -> bool {
        let b = &self.buf;
        if self.first_content.is_none() {
            self.first_content = content_at(&b[old..]).map(|k| old + k);
        }
        if b.len() >= 2 * self.parsed_len || b.len() > http::MAX_HEAD {
            return true;
        }
        let Some(fc) = self.first_content else {
            return false;
        };
        if self.end_unreliable {
            return false;
        }
        // An empty line is "\n\n" or "\n\r\n"; look from just before the new bytes.
        let w = &b[old.saturating_sub(2).max(fc)..];
        w.windows(2).any(|x| x == b"\n\n") || w.windows(3).any(|x| x == b"\n\r\n")
    }
}

impl Side {
    fn new() -> Self {
        Side {
            mode: Mode::Start,
            held: None,
        }
    }

    fn holds(&self) -> bool {
        self.held.is_some()
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

/// The protocol state of one TCP connection: both directions' byte streams, in stream
/// order, go in ([`data`](Self::data), [`gap`](Self::gap), [`end`](Self::end)) and
/// HTTP, websocket and TLS events come out through an [`Emit`]. Everything it buffers is
/// charged to the [`Memory`] ledger; call [`release`](Self::release) before dropping it.
pub struct Conversation {
    sides: [Side; 2],
    /// The requests not answered yet, oldest first (HTTP/1.1 pipelining: responses come in
    /// the order of the requests, RFC 9112 9.3.2).
    pending: Requests,
    /// Each direction's stream has ended (FIN delivered, or the connection closed).
    ended: [bool; 2],
    /// No SYN was seen: the streams may start anywhere.
    mid_stream: bool,
    /// The server side is one of the `--port` ports: treat unknown bytes as websocket.
    port_hint: bool,
    limits: Limits,
    /// Websocket was found on this connection: an upgrade was agreed, or a decoder (also
    /// one inside TLS) followed frames. Never goes back to false.
    pub websocket: bool,
    /// A direction started with TLS records: nothing on this connection is hunted.
    tls: bool,
    /// The secrets TLS is decrypted with.
    keys: Option<KeyStore>,
    /// Once TLS was seen, both streams go through it.
    session: Option<Box<tls::TlsSession>>,
    /// HTTP heads parsed (whole or partial), for the tests of the parsing cost.
    #[cfg(test)]
    parses: usize,
}

impl Conversation {
    /// A conversation for a new connection. `mid_stream`: no SYN was seen, so the streams
    /// may start anywhere (mid-HTTP, mid-frame) and are recognised rather than parsed from
    /// the start. `port_hint`: the server port is one of `--port`'s, so bytes that are not
    /// HTTP are taken as websocket frames. `limits` bound every websocket decoder it makes.
    pub fn new(mid_stream: bool, port_hint: bool, limits: Limits) -> Self {
        Conversation {
            sides: [Side::new(), Side::new()],
            pending: Default::default(),
            ended: [false; 2],
            mid_stream,
            port_hint,
            limits,
            websocket: false,
            tls: false,
            keys: None,
            session: None,
            #[cfg(test)]
            parses: 0,
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
            let s = &mut self.sides[i];
            if s.holds() || too_short_to_tell(dir, data) {
                // A first segment of a byte or two ("G", "HT") may be HTTP or not: held until
                // the stream says which (a request needs 3 bytes, a response 5).
                let first = !s.holds();
                if !s.hold(data, mem) {
                    s.take_buf(mem);
                    s.mode = Mode::Opaque;
                    return em.emit(dir, EventKind::Violation(&no_memory_for_head()));
                }
                let h = s.held.as_mut().expect("just held");
                if first {
                    h.start_at = at;
                }
                if too_short_to_tell(dir, &h.buf) {
                    return Ok(());
                }
                return self.classify_held(dir, mem, em);
            }
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

    /// The bytes held because they were too few to classify: classified now, and fed.
    fn classify_held(&mut self, dir: Dir, mem: &mut Memory, em: &mut dyn Emit) -> io::Result<()> {
        let Some(held) = self.sides[dir.index()].take_held(mem) else {
            return Ok(());
        };
        self.data(dir, held.start_at, &held.buf, mem, em)
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
        let owned;
        let continuing = self.sides[i].holds();
        // Where the parsing of the held head stood: (parsed_len, end_unreliable, first_content).
        let mut before = (0, false, None);
        let mut rest: &[u8] = if !continuing {
            data
        } else {
            let s = &mut self.sides[i];
            let old = s.held.as_ref().map_or(0, |h| h.buf.len());
            let fits = s.hold(data, mem);
            if fits
                && matches!(s.mode, Mode::Http)
                && !s.held.as_mut().expect("held").worth_parsing(old)
            {
                return Ok(());
            }
            let mut held = s.take_held(mem).expect("held");
            if !fits {
                // No memory to hold more: these bytes may still end the head.
                held.buf.extend_from_slice(data);
            }
            before = (held.parsed_len, held.end_unreliable, held.first_content);
            owned = held.buf;
            &owned[..]
        };
        // Whether `rest` is all of what was held: a partial parse then marks the head's
        // state instead of starting afresh.
        let whole = rest.len();
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
            #[cfg(test)]
            {
                self.parses += 1;
            }
            let parsed = match dir {
                Dir::C2S => match http::parse_request(rest) {
                    Parsed::Done(r, n) => Parsed::Done(Head::Req(r), n),
                    Parsed::Partial => Parsed::Partial,
                    Parsed::NotHttp(e) => Parsed::NotHttp(e),
                },
                Dir::S2C => match http::parse_response(rest, self.pending.front()) {
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
                    let (end_unreliable, first_content) = if continuing && rest.len() == whole {
                        // The same head, parsed again before it doubled: an empty line in
                        // the new bytes did not end it.
                        let (parsed, unreliable, first) = before;
                        (
                            unreliable || whole < 2 * parsed,
                            first.or_else(|| content_at(rest)),
                        )
                    } else {
                        (false, content_at(rest))
                    };
                    let s = &mut self.sides[i];
                    if !s.hold(rest, mem) {
                        s.mode = Mode::Opaque;
                        return em.emit(dir, EventKind::Violation(&no_memory_for_head()));
                    }
                    if let Some(h) = s.held.as_mut() {
                        h.parsed_len = rest.len();
                        h.end_unreliable = end_unreliable;
                        h.first_content = first_content;
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
                    self.pending.push_back(Box::new(req));
                    if self.pending.len() > MAX_PIPELINED
                        && let Some(old) = self.pending.pop_front()
                    {
                        // So many unanswered requests: the oldest is forgotten (its response,
                        // if it comes, is read without it).
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
                    let req = self.pending.pop_front();
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
                        // Not the answer to an earlier request pipelined before the upgrade:
                        // the upgrade request is the last one (the client holds what follows
                        // it), so nothing is pending once it is answered.
                        let refused = self.pending.is_empty();
                        let c = &mut self.sides[Dir::C2S.index()];
                        if refused && matches!(c.mode, Mode::AwaitUpgrade) {
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
        let note: Box<String> = Box::new(note);
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
        em.emit(dir, EventKind::Notice(&Notice::Undecoded { detail: *note }))
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
        let held = s.held.as_ref().map_or(0, |h| h.buf.len());
        if held + data.len() <= cap && s.hold(data, mem) {
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
                s.take_buf(mem);
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
        }
        for r in std::mem::take(&mut self.pending).drain() {
            mem.refund(Pool::Http, pending_cost(&r));
        }
    }

    /// The stream in direction `dir` ended (FIN delivered, or the connection is closed):
    /// bytes held in it are decoded as far as they go and the rest dropped, and its decoder
    /// reports what it left incomplete. Errors are the sink's write errors.
    pub fn end(&mut self, dir: Dir, mem: &mut Memory, em: &mut dyn Emit) -> io::Result<()> {
        self.end_as(dir, Incomplete::EndOfCapture, mem, em)
    }

    /// `end`, a message left cut labelled `why` (what ended the stream: RST, eviction).
    pub fn end_as(
        &mut self,
        dir: Dir,
        why: Incomplete,
        mem: &mut Memory,
        em: &mut dyn Emit,
    ) -> io::Result<()> {
        if matches!(self.sides[dir.index()].mode, Mode::Start) {
            // A stream of a byte or two: what it was is said as for any other.
            if let Some(held) = self.sides[dir.index()].take_held(mem) {
                let at = held.start_at;
                self.classify(dir, at, &held.buf, mem, em)?;
                self.data(dir, at, &held.buf, mem, em)?;
            }
        }
        self.ended[dir.index()] = true;
        if let Some(s) = self.session.as_deref_mut() {
            let r = s.end(dir, why, mem, em);
            self.websocket |= s.websocket();
            return r;
        }
        if let Mode::Ws(d) = &mut self.sides[dir.index()].mode {
            d.finish_as(why, mem, em)?;
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
        if bytes.is_empty() {
            return true;
        }
        let extra = if self.held.is_none() { HELD_COST } else { 0 };
        if !mem.charge(Pool::Http, bytes.len() + extra) {
            return false;
        }
        self.held
            .get_or_insert_with(Default::default)
            .buf
            .extend_from_slice(bytes);
        true
    }

    /// Takes what is held, giving its memory back.
    fn take_held(&mut self, mem: &mut Memory) -> Option<Box<Held>> {
        let h = self.held.take()?;
        mem.refund(Pool::Http, h.buf.len() + HELD_COST);
        Some(h)
    }

    /// Takes the held bytes, giving their memory back.
    fn take_buf(&mut self, mem: &mut Memory) -> Vec<u8> {
        self.take_held(mem).map_or_else(Vec::new, |h| h.buf)
    }

    fn is_ws(&self) -> bool {
        matches!(self.mode, Mode::Ws(_))
    }
}

fn no_memory_for_head() -> Violation {
    Violation {
        kind: ViolationKind::HttpTooLarge,
        detail: "no memory left (--max-buffer) for an unfinished HTTP head".into(),
    }
}

/// Where the first byte of `b` that is not CR or LF is.
fn content_at(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c != b'\r' && c != b'\n')
}

/// Unanswered requests remembered per connection.
const MAX_PIPELINED: usize = 32;

/// What a request waiting for its response holds: its head's bytes, more or less, in the
/// strings of its headers.
/// Requests not answered yet, oldest first. Boxed, and only while there are some: a
/// websocket connection has none after its upgrade.
// Boxed on purpose: the inline field is what every connection pays.
#[allow(clippy::box_collection)]
#[derive(Default)]
struct Requests(Option<Box<std::collections::VecDeque<Box<HttpRequest>>>>);

impl Requests {
    fn front(&self) -> Option<&HttpRequest> {
        self.0.as_ref()?.front().map(|r| &**r)
    }
    fn push_back(&mut self, r: Box<HttpRequest>) {
        self.0.get_or_insert_with(Box::default).push_back(r);
    }
    fn pop_front(&mut self) -> Option<Box<HttpRequest>> {
        let q = self.0.as_mut()?;
        let r = q.pop_front();
        if q.is_empty() {
            self.0 = None;
        }
        r
    }
    fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |q| q.len())
    }
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn drain(self) -> impl Iterator<Item = Box<HttpRequest>> {
        self.0.into_iter().flat_map(|q| q.into_iter())
    }
}

fn pending_cost(r: &HttpRequest) -> usize {
    std::mem::size_of::<HttpRequest>() + r.head_len + r.headers.len() * 48
}

enum Head {
    Req(HttpRequest),
    Resp(Box<crate::event::HttpResponse>),
}

/// Whether `d`, the first bytes of a direction, are too few to tell HTTP from anything else:
/// a non-empty proper prefix of a method (`GE`) or of `HTTP/` shorter than the test needs.
fn too_short_to_tell(dir: Dir, d: &[u8]) -> bool {
    if d.is_empty() {
        return false;
    }
    match dir {
        Dir::C2S => d.len() < 3 && METHODS.iter().any(|m| m.starts_with(d)),
        Dir::S2C => d.len() < 5 && b"HTTP/".starts_with(d),
    }
}

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

pub(crate) fn starts_like_request(d: &[u8]) -> bool {
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

/// The HTTP head parsing cost (a head sent a byte at a time stays linear).
#[cfg(test)]
mod parsing_cost_tests {
    use super::*;

    #[derive(Default)]
    struct Rec(Vec<String>);

    impl Emit for Rec {
        fn emit(&mut self, dir: Dir, kind: EventKind<'_>) -> io::Result<()> {
            let what = match kind {
                EventKind::HttpRequest(r) => format!("request {} {}", r.method, r.head_len),
                EventKind::HttpResponse(r) => format!("response {} {}", r.status, r.head_len),
                EventKind::Violation(v) => format!("violation {:?}", v.kind),
                EventKind::Notice(n) => format!("notice {n:?}"),
                other => format!("{other:?}"),
            };
            self.0.push(format!("{dir:?} {what}"));
            Ok(())
        }
    }

    /// Feeds `bytes` to a fresh connection's client side in segments of `seg` bytes; returns
    /// the events, the parses, and the index of the segment that gave the first event.
    fn trickle(bytes: &[u8], seg: usize) -> (Vec<String>, usize, Option<usize>) {
        let mut c = Conversation::new(false, false, Limits::default());
        let mut mem = Memory::new(1 << 24);
        let mut rec = Rec::default();
        let mut first = None;
        for (k, part) in bytes.chunks(seg).enumerate() {
            let at = (k * seg) as u64;
            c.data(Dir::C2S, at, part, &mut mem, &mut rec).unwrap();
            if first.is_none() && !rec.0.is_empty() {
                first = Some(k);
            }
        }
        c.release(&mut mem);
        assert_eq!(mem.used(), 0, "every held byte is given back");
        (rec.0, c.parses, first)
    }

    fn request(pad: usize) -> Vec<u8> {
        format!(
            "GET /chat HTTP/1.1\r\nHost: a\r\nX-Pad: {}\r\n\r\n",
            "p".repeat(pad)
        )
        .into_bytes()
    }

    #[test]
    fn a_head_one_byte_per_segment_is_parsed_a_logarithmic_number_of_times() {
        let req = request(30_000);
        let (whole, _, _) = trickle(&req, req.len());
        let (bytes, parses, first) = trickle(&req, 1);
        assert_eq!(whole, bytes);
        assert_eq!(bytes, [format!("C2S request GET {}", req.len())]);
        // Reported at the segment that completes it, not later.
        assert_eq!(first, Some(req.len() - 1));
        // Re-parsing on every byte would be 30,000 parses: doubling and the final empty line.
        assert!(parses <= 20, "{parses} parses");
    }

    /// Empty lines between pipelined requests are allowed (RFC 9112 2.2) and end no head:
    /// sent a byte at a time they must not make every byte a parse.
    #[test]
    fn empty_lines_that_do_not_end_a_head_do_not_make_it_quadratic() {
        let mut req = request(10);
        req.extend(b"\r\n".repeat(5000));
        req.extend(request(100));
        let (events, parses, _) = trickle(&req, 1);
        assert_eq!(events.len(), 2, "{events:?}");
        assert!(events[1].starts_with("C2S request GET"), "{events:?}");
        assert!(parses <= 60, "{parses} parses");
    }

    #[test]
    fn a_malformed_head_is_refused_within_twice_its_bytes() {
        let mut junk = b"GET /\x01\x02 HTTP/1.1\r\n".to_vec();
        junk.extend(b"x".repeat(1000));
        let (events, _, first) = trickle(&junk, 1);
        assert_eq!(events, ["C2S violation HttpMalformed"]);
        assert!(first.unwrap() < 2 * 24, "refused at byte {first:?}");
    }
}
