//! HAR 1.2 (HTTP Archive) with Chrome's websocket extension, written as the capture goes.
//!
//! One entry per websocket connection: the upgrade GET as `request`, the 101 as `response`,
//! `_resourceType: "websocket"` and the messages as `_webSocketMessages`, exactly the shape
//! Chrome DevTools' "Save all as HAR" writes (front_end/models/har/Log.ts):
//! `{type: "send"|"receive", time: <epoch seconds>, opcode: 1|2, data}`, text as is and
//! binary as base64. Like DevTools, control frames (close, ping, pong) are left out unless
//! [`HarOptions::control_frames`] asks for them. Plain HTTP exchanges on the watched ports
//! become ordinary entries, without bodies (`content: {size, mimeType}` only).
//!
//! Streaming and bounded memory: the file header is written at once and each entry when its
//! connection ends (plain HTTP entries when their response arrives), so `log.entries` is in
//! completion order (DevTools sorts by `startedDateTime` on import). Messages of a
//! connection still open are held as JSON text; past [`HarOptions::memory_limit`] bytes in
//! all, the largest holders are spilled to one unlinked temporary file and read back when
//! their entry is written. [`HarWriter::finish`] closes every open entry and the JSON, so
//! the file is valid whatever stopped the capture. A writer dropped without `finish` does
//! the same, ignoring errors.

use super::{community_id::community_id, escape, time};
use crate::capture::Timestamp;
use crate::event::TcpRole;
use crate::event::{ConnInfo, Dir, Event, EventKind, HttpRequest, HttpResponse, Message, Opcode};
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

/// Unanswered requests held per connection; older ones are written without a response.
const MAX_PENDING: usize = 64;

/// What goes into the HAR file.
#[derive(Clone, Debug)]
pub struct HarOptions {
    /// Also list close, ping and pong frames in `_webSocketMessages` (opcodes 8, 9, 10,
    /// payload in base64). DevTools never does: its messages come from the page's
    /// WebSocket API, which sees no control frames.
    pub control_frames: bool,
    /// Bytes of message JSON held in memory for all open connections together before
    /// spilling to the temporary file.
    pub memory_limit: usize,
    /// Where the spool file goes; the system's temporary directory when `None`.
    pub spool_dir: Option<PathBuf>,
    /// Header values (but Host), query values and message data written as "REDACTED"
    /// ([`super::redact`]).
    pub redact: bool,
    /// Seed of each entry's `_communityId`.
    pub community_id_seed: u16,
}

impl Default for HarOptions {
    fn default() -> Self {
        HarOptions {
            control_frames: false,
            memory_limit: 16 << 20,
            spool_dir: None,
            redact: false,
            community_id_seed: 0,
        }
    }
}

/// One connection being followed.
struct Conn {
    info: ConnInfo,
    syn: Option<Timestamp>,
    /// The client's ACK of the SYN+ACK: the connection is up.
    connected: Option<Timestamp>,
    /// Whether an entry has already taken the TCP setup time.
    setup_used: bool,
    /// Requests not answered yet, oldest first.
    requests: VecDeque<(Timestamp, HttpRequest)>,
    /// The websocket entry, once upgraded (or once messages appear without a handshake).
    ws: Option<WsEntry>,
    last: Timestamp,
}

struct WsEntry {
    request: Option<(Timestamp, HttpRequest)>,
    response: Option<(Timestamp, HttpResponse)>,
    first: Timestamp,
    connect: Option<f64>,
    /// Message JSON held in memory, comma-separated.
    mem: String,
    /// Ranges of the spool file with earlier message JSON, in order.
    spilled: Vec<(u64, u64)>,
    messages: u64,
}

/// The `--har` [`Sink`](crate::event::Sink): writes a HAR 1.2 log to `W` as the capture
/// goes (a websocket connection's entry when it ends); [`finish`](Self::finish) writes the
/// entries still open and closes the JSON document, so without it the file is not JSON.
pub struct HarWriter<W: Write> {
    /// `None` only after [`HarWriter::into_inner`].
    out: Option<W>,
    opts: HarOptions,
    conns: BTreeMap<u64, Conn>,
    entries: u64,
    held: usize,
    spool: Option<File>,
    spool_len: u64,
    /// Entries with spilled ranges: the spool file is emptied when none is left.
    spilled_entries: usize,
    finished: bool,
    buf: String,
}

impl<W: Write> HarWriter<W> {
    /// Writes the HAR header (`log.version`, `log.creator`, the opening of `log.entries`).
    pub fn new(mut out: W, opts: HarOptions) -> io::Result<Self> {
        out.write_all(
            concat!(
                "{\"log\":{\"version\":\"1.2\",\"creator\":{\"name\":\"wsdump\",\"version\":\"",
                env!("CARGO_PKG_VERSION"),
                "\"},\"pages\":[],\"entries\":["
            )
            .as_bytes(),
        )?;
        Ok(HarWriter {
            out: Some(out),
            opts,
            conns: BTreeMap::new(),
            entries: 0,
            held: 0,
            spool: None,
            spool_len: 0,
            spilled_entries: 0,
            finished: false,
            buf: String::new(),
        })
    }

    /// Takes one event. Always `Ok(true)`: a HAR never asks to stop the capture.
    pub fn event(&mut self, ev: &Event<'_>) -> io::Result<bool> {
        if self.finished {
            return Ok(true);
        }
        let Some(info) = ev.conn else {
            return Ok(true);
        };
        if matches!(ev.kind, EventKind::End) {
            if let Some(mut c) = self.conns.remove(&info.id) {
                c.last = c.last.max(ev.ts);
                self.close(&mut c)?;
            }
            return Ok(true);
        }
        let c = self.conns.entry(info.id).or_insert_with(|| Conn {
            info: info.clone(),
            syn: None,
            connected: None,
            setup_used: false,
            requests: VecDeque::new(),
            ws: None,
            last: ev.ts,
        });
        c.last = c.last.max(ev.ts);
        match &ev.kind {
            EventKind::Tcp(t) => match t.role {
                TcpRole::Syn if c.syn.is_none() => c.syn = Some(ev.ts),
                TcpRole::HandshakeAck if c.connected.is_none() => c.connected = Some(ev.ts),
                _ => {}
            },
            EventKind::HttpRequest(r) => {
                let r = if self.opts.redact {
                    redact_request(r)
                } else {
                    (*r).clone()
                };
                c.requests.push_back((ev.ts, r));
                // A one-sided capture never answers: do not hold its requests forever.
                if c.requests.len() > MAX_PENDING {
                    let mut old = Conn {
                        info: c.info.clone(),
                        syn: c.syn,
                        connected: c.connected,
                        setup_used: c.setup_used,
                        requests: c.requests.drain(..1).collect(),
                        ws: None,
                        last: c.last,
                    };
                    c.setup_used = true;
                    self.close(&mut old)?;
                }
            }
            EventKind::HttpResponse(r) => {
                // Interim answers (100 Continue) precede the real one.
                if (100..200).contains(&r.status) && r.status != 101 {
                    return Ok(true);
                }
                let req = c.requests.pop_front();
                let redacted;
                let r = if self.opts.redact {
                    redacted = redact_response(r);
                    &redacted
                } else {
                    *r
                };
                if r.upgraded {
                    let connect = take_setup(c);
                    let first = c.syn.or(req.as_ref().map(|q| q.0)).unwrap_or(ev.ts);
                    c.ws = Some(WsEntry {
                        request: req,
                        response: Some((ev.ts, r.clone())),
                        first,
                        connect,
                        mem: String::new(),
                        spilled: Vec::new(),
                        messages: 0,
                    });
                } else {
                    let connect = take_setup(c);
                    let info = c.info.clone();
                    let syn = if connect.is_some() { c.syn } else { None };
                    self.buf.clear();
                    http_entry(
                        &info,
                        syn,
                        connect,
                        req.as_ref(),
                        Some((ev.ts, r)),
                        self.opts.community_id_seed,
                        &mut self.buf,
                    );
                    let entry = std::mem::take(&mut self.buf);
                    self.write_entry(&entry, None)?;
                    self.buf = entry;
                }
            }
            EventKind::Message(m) => {
                if m.opcode.is_control() && !self.opts.control_frames {
                    return Ok(true);
                }
                let ws = c.ws.get_or_insert_with(|| WsEntry {
                    request: None,
                    response: None,
                    first: ev.ts,
                    connect: None,
                    mem: String::new(),
                    spilled: Vec::new(),
                    messages: 0,
                });
                let before = ws.mem.len();
                if ws.messages > 0 {
                    ws.mem.push(',');
                }
                message_json(ev.ts, ev.dir, m, self.opts.redact, &mut ws.mem);
                ws.messages += 1;
                self.held += ws.mem.len() - before;
                if self.held > self.opts.memory_limit {
                    self.spill()?;
                }
            }
            _ => {}
        }
        Ok(true)
    }

    /// Writes every open connection's entry and closes the JSON. Call once, on every way
    /// out (end of input, -c, Ctrl-C, SIGTERM); later events are ignored.
    pub fn finish(&mut self) -> io::Result<()> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        let conns = std::mem::take(&mut self.conns);
        for (_, mut c) in conns {
            self.close(&mut c)?;
        }
        let out = self.out.as_mut().expect("HAR output present");
        out.write_all(b"\n]}}\n")?;
        out.flush()
    }

    /// Entries written so far.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Bytes of message JSON held in memory now.
    pub fn held(&self) -> usize {
        self.held
    }

    /// The writer, after [`HarWriter::finish`].
    pub fn into_inner(mut self) -> io::Result<W> {
        self.finish()?;
        Ok(self.out.take().expect("HAR output present"))
    }

    /// The connection ended: its websocket entry, and requests left unanswered.
    fn close(&mut self, c: &mut Conn) -> io::Result<()> {
        if let Some(ws) = c.ws.take() {
            self.held -= ws.mem.len();
            self.buf.clear();
            let seed = self.opts.community_id_seed;
            ws_entry_head(&c.info, &ws, c.last, seed, &mut self.buf);
            let head = std::mem::take(&mut self.buf);
            self.write_entry(&head, Some(&ws))?;
            self.buf = head;
            if !ws.spilled.is_empty() {
                self.spilled_entries -= 1;
                if self.spilled_entries == 0
                    && let Some(f) = &mut self.spool
                {
                    // Nothing in the spool is wanted any more: give the disk back.
                    f.set_len(0)?;
                    f.seek(SeekFrom::Start(0))?;
                    self.spool_len = 0;
                }
            }
        }
        while let Some(req) = c.requests.pop_front() {
            let connect = take_setup(c);
            let syn = if connect.is_some() { c.syn } else { None };
            self.buf.clear();
            let seed = self.opts.community_id_seed;
            http_entry(&c.info, syn, connect, Some(&req), None, seed, &mut self.buf);
            let entry = std::mem::take(&mut self.buf);
            self.write_entry(&entry, None)?;
            self.buf = entry;
        }
        Ok(())
    }

    /// Writes `head` (an entry object without its closing brace) and, for a websocket
    /// entry, its messages from the spool and from memory.
    fn write_entry(&mut self, head: &str, ws: Option<&WsEntry>) -> io::Result<()> {
        let out = self.out.as_mut().expect("HAR output present");
        out.write_all(if self.entries == 0 { b"\n" } else { b",\n" })?;
        out.write_all(head.as_bytes())?;
        if let Some(ws) = ws {
            out.write_all(b",\"_webSocketMessages\":[")?;
            if let Some(f) = &self.spool {
                let mut chunk = vec![0u8; 64 << 10];
                for &(mut off, len) in &ws.spilled {
                    let end = off + len;
                    while off < end {
                        let n = ((end - off) as usize).min(chunk.len());
                        f.read_exact_at(&mut chunk[..n], off)?;
                        out.write_all(&chunk[..n])?;
                        off += n as u64;
                    }
                }
            }
            out.write_all(ws.mem.as_bytes())?;
            out.write_all(b"]")?;
        }
        out.write_all(b"}")?;
        self.entries += 1;
        Ok(())
    }

    /// Moves message JSON from memory to the spool, largest holders first, until at most
    /// half the limit is held.
    fn spill(&mut self) -> io::Result<()> {
        let f = match &mut self.spool {
            Some(f) => f,
            None => self.spool.insert(spool_file(self.opts.spool_dir.as_ref())?),
        };
        let target = self.opts.memory_limit / 2;
        while self.held > target {
            let Some(ws) = self
                .conns
                .values_mut()
                .filter_map(|c| c.ws.as_mut())
                .max_by_key(|w| w.mem.len())
            else {
                break;
            };
            if ws.mem.is_empty() {
                break;
            }
            f.write_all(ws.mem.as_bytes())?;
            if ws.spilled.is_empty() {
                self.spilled_entries += 1;
            }
            let len = ws.mem.len() as u64;
            match ws.spilled.last_mut() {
                Some((off, l)) if *off + *l == self.spool_len => *l += len,
                _ => ws.spilled.push((self.spool_len, len)),
            }
            self.spool_len += len;
            self.held -= ws.mem.len();
            ws.mem = String::new();
        }
        Ok(())
    }
}

impl<W: Write> crate::event::Sink for HarWriter<W> {
    fn event(&mut self, ev: &Event<'_>) -> io::Result<bool> {
        HarWriter::event(self, ev)
    }
    fn finish(&mut self) -> io::Result<()> {
        HarWriter::finish(self)
    }
}

impl<W: Write> Drop for HarWriter<W> {
    fn drop(&mut self) {
        if self.out.is_some() {
            let _ = self.finish();
        }
    }
}

/// A temporary file that has no name: it goes away with the writer, however that ends.
fn spool_file(dir: Option<&PathBuf>) -> io::Result<File> {
    let dir = dir.cloned().unwrap_or_else(std::env::temp_dir);
    for n in 0..1000u32 {
        let path = dir.join(format!(
            ".wsdump-har-{}-{}-{n}.spool",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
        ));
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(f) => {
                std::fs::remove_file(&path)?;
                return Ok(f);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "no free name for the HAR spool file",
    ))
}

/// The TCP setup time (SYN to the handshake's last ACK) in ms, for the first entry of a
/// connection only: later requests on a kept-alive connection did not wait for it.
fn take_setup(c: &mut Conn) -> Option<f64> {
    if c.setup_used {
        return None;
    }
    c.setup_used = true;
    match (c.syn, c.connected) {
        (Some(s), Some(a)) => Some(ms(s, a)),
        _ => None,
    }
}

fn ms(from: Timestamp, to: Timestamp) -> f64 {
    ((to.as_nanos() - from.as_nanos()).max(0)) as f64 / 1e6
}

fn num(v: f64, out: &mut String) {
    // Milliseconds to the microsecond (or nanosecond) the capture has; never "-0".
    let v = (v * 1e6).round() / 1e6;
    let _ = write!(out, "{}", if v == 0.0 { 0.0 } else { v });
}

fn key(k: &str, out: &mut String) {
    out.push('"');
    out.push_str(k);
    out.push_str("\":");
}

fn headers(h: &[(String, String)], out: &mut String) {
    out.push('[');
    for (i, (n, v)) in h.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"name\":");
        escape::json_str(n, out);
        out.push_str(",\"value\":");
        escape::json_str(v, out);
        out.push('}');
    }
    out.push(']');
}

fn http_version(minor: u8) -> String {
    format!("HTTP/1.{minor}")
}

/// `HAR headersSize`: the head's length on the wire when the parser measured it, else as it
/// would be with `name: value` lines.
fn head_size(wire: usize, first_line: usize, h: &[(String, String)]) -> usize {
    if wire > 0 {
        return wire;
    }
    first_line
        + 2
        + h.iter()
            .map(|(n, v)| n.len() + 2 + v.len() + 2)
            .sum::<usize>()
        + 2
}

/// The URL as the client meant it: scheme, the Host header (else the server address), and
/// the request target.
fn url(scheme: &str, info: &ConnInfo, req: Option<&HttpRequest>) -> String {
    let Some(req) = req else {
        return format!("{scheme}://{}/", info.server_str());
    };
    if req.path.contains("://") {
        return req.path.clone();
    }
    let server = info.server_str();
    let host = req.header("host").unwrap_or(&server);
    let path = if req.path.starts_with('/') {
        &req.path[..]
    } else {
        "/"
    };
    format!("{scheme}://{host}{path}")
}

fn query_string(path: &str, out: &mut String) {
    out.push('[');
    if let Some((_, q)) = path.split_once('?') {
        let q = q.split('#').next().unwrap_or("");
        for (i, kv) in q.split('&').filter(|s| !s.is_empty()).enumerate() {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            if i > 0 {
                out.push(',');
            }
            out.push_str("{\"name\":");
            escape::json_str(k, out);
            out.push_str(",\"value\":");
            escape::json_str(v, out);
            out.push('}');
        }
    }
    out.push(']');
}

fn request_json(scheme: &str, info: &ConnInfo, req: Option<&HttpRequest>, out: &mut String) {
    out.push('{');
    key("method", out);
    escape::json_str(req.map_or("GET", |r| r.method.as_str()), out);
    out.push(',');
    key("url", out);
    escape::json_str(&url(scheme, info, req), out);
    out.push(',');
    key("httpVersion", out);
    escape::json_str(&req.map_or(String::new(), |r| http_version(r.version)), out);
    out.push(',');
    key("headers", out);
    headers(req.map_or(&[][..], |r| &r.headers), out);
    out.push(',');
    key("queryString", out);
    query_string(req.map_or("", |r| r.path.as_str()), out);
    out.push_str(",\"cookies\":[],");
    key("headersSize", out);
    match req {
        Some(r) => {
            let line = r.method.len() + 1 + r.path.len() + 1 + 8;
            let _ = write!(out, "{}", head_size(r.head_len, line, &r.headers));
        }
        None => out.push_str("-1"),
    }
    out.push_str(",\"bodySize\":");
    // Bodies are not kept; Content-Length says how long it was, when there is one.
    let body = req
        .and_then(|r| r.header("content-length"))
        .and_then(|v| v.trim().parse::<u64>().ok());
    let _ = write!(out, "{}", body.unwrap_or(0));
    out.push('}');
}

fn response_json(resp: Option<&HttpResponse>, out: &mut String) {
    out.push('{');
    key("status", out);
    let _ = write!(out, "{}", resp.map_or(0, |r| r.status));
    out.push(',');
    key("statusText", out);
    escape::json_str(resp.map_or("", |r| r.reason.as_str()), out);
    out.push(',');
    key("httpVersion", out);
    escape::json_str(
        &resp.map_or(String::new(), |r| http_version(r.version)),
        out,
    );
    out.push(',');
    key("headers", out);
    headers(resp.map_or(&[][..], |r| &r.headers), out);
    out.push_str(",\"cookies\":[],");
    let size = resp
        .and_then(|r| r.header("content-length"))
        .and_then(|v| v.trim().parse::<u64>().ok());
    let mime = resp
        .and_then(|r| r.header("content-type"))
        .unwrap_or("x-unknown");
    key("content", out);
    let _ = write!(out, "{{\"size\":{},\"mimeType\":", size.unwrap_or(0));
    escape::json_str(mime, out);
    // A body sent as is (no Content-Encoding) of known length saved nothing, as DevTools
    // says it; a websocket's 101 has no body to speak of.
    let plain = resp.is_some_and(|r| r.status != 101);
    let identity = plain && resp.is_some_and(|r| r.header("content-encoding").is_none());
    if identity && size.is_some() {
        out.push_str(",\"compression\":0");
    }
    out.push_str("},");
    key("redirectURL", out);
    escape::json_str(resp.and_then(|r| r.header("location")).unwrap_or(""), out);
    out.push(',');
    key("headersSize", out);
    let head = resp.map(|r| {
        let line = 8 + 1 + 3 + 1 + r.reason.len();
        head_size(r.head_len, line, &r.headers)
    });
    match head {
        Some(h) => {
            let _ = write!(out, "{h}");
        }
        None => out.push_str("-1"),
    }
    out.push_str(",\"bodySize\":");
    match (resp, size) {
        (Some(_), Some(n)) => {
            let _ = write!(out, "{n}");
        }
        (Some(r), None) if r.status == 101 || r.status == 204 || r.status == 304 => out.push('0'),
        _ => out.push_str("-1"),
    }
    // DevTools' bytes on the wire: the head and the body as sent (known from
    // Content-Length; a websocket's transfer DevTools counts as 0, so none is claimed).
    if let (Some(h), Some(n), true) = (head, size, plain) {
        let _ = write!(out, ",\"_transferSize\":{}", h as u64 + n);
    }
    if resp.is_some() {
        out.push_str(",\"_error\":null");
    }
    out.push('}');
}

/// `timings` and `time`: connect = SYN → handshake ACK, wait = request → response,
/// receive = response → `end` (websocket: the connection's open life).
fn timings(connect: Option<f64>, wait: Option<f64>, receive: f64, out: &mut String) {
    let total = connect.unwrap_or(0.0) + wait.unwrap_or(0.0) + receive;
    key("time", out);
    num(total, out);
    out.push(',');
    key("timings", out);
    out.push_str("{\"blocked\":-1,\"dns\":-1,\"ssl\":-1,\"connect\":");
    match connect {
        Some(c) => num(c, out),
        None => out.push_str("-1"),
    }
    out.push_str(",\"send\":0,\"wait\":");
    num(wait.unwrap_or(0.0), out);
    out.push_str(",\"receive\":");
    num(receive, out);
    // DevTools' queueing time before the request could be sent: not on the wire.
    out.push_str(",\"_blocked_queueing\":-1}");
}

fn common_head(info: &ConnInfo, started: Timestamp, seed: u16, out: &mut String) {
    out.push('{');
    key("startedDateTime", out);
    let mut s = String::new();
    time::rfc3339(started, &mut s);
    escape::json_str(&s, out);
    out.push(',');
    key("serverIPAddress", out);
    escape::json_str(&info.server.ip().to_string(), out);
    out.push(',');
    // HAR: "connection: unique ID of the parent TCP/IP connection, can be the client port".
    key("connection", out);
    escape::json_str(&info.client.port().to_string(), out);
    out.push(',');
    // DevTools' own connection ID; ours is wsdump's connection number (#N).
    key("_connectionId", out);
    escape::json_str(&info.id.to_string(), out);
    out.push(',');
    key("_communityId", out);
    escape::json_str(&community_id(info.client, info.server, seed), out);
    out.push_str(",\"cache\":{},");
}

fn ws_entry_head(info: &ConnInfo, ws: &WsEntry, end: Timestamp, seed: u16, out: &mut String) {
    let req = ws.request.as_ref();
    let resp = ws.response.as_ref();
    common_head(info, ws.first, seed, out);
    key("_resourceType", out);
    out.push_str("\"websocket\",");
    if req.is_none() {
        key("comment", out);
        out.push_str("\"websocket handshake not captured\",");
    }
    key("request", out);
    request_json("ws", info, req.map(|r| &r.1), out);
    out.push(',');
    key("response", out);
    response_json(resp.map(|r| &r.1), out);
    out.push(',');
    let wait = match (req, resp) {
        (Some(q), Some(r)) => Some(ms(q.0, r.0)),
        _ => None,
    };
    let from = resp.map(|r| r.0).or(req.map(|q| q.0)).unwrap_or(ws.first);
    timings(ws.connect, wait, ms(from, end), out);
}

fn http_entry(
    info: &ConnInfo,
    syn: Option<Timestamp>,
    connect: Option<f64>,
    req: Option<&(Timestamp, HttpRequest)>,
    resp: Option<(Timestamp, &HttpResponse)>,
    seed: u16,
    out: &mut String,
) {
    let started = syn
        .or(req.map(|q| q.0))
        .or(resp.map(|r| r.0))
        .unwrap_or_default();
    common_head(info, started, seed, out);
    let upgrade = req.is_some_and(|q| q.1.websocket_upgrade);
    if upgrade {
        // A refused upgrade is still the page's websocket, as DevTools lists it.
        key("_resourceType", out);
        out.push_str("\"websocket\",");
    }
    if resp.is_none() {
        key("comment", out);
        out.push_str("\"no response captured\",");
    }
    key("request", out);
    request_json(
        if upgrade { "ws" } else { "http" },
        info,
        req.map(|q| &q.1),
        out,
    );
    out.push(',');
    key("response", out);
    response_json(resp.map(|r| r.1), out);
    out.push(',');
    let wait = match (req, resp) {
        (Some(q), Some(r)) => Some(ms(q.0, r.0)),
        _ => None,
    };
    timings(connect, wait, 0.0, out);
}

fn redact_request(r: &HttpRequest) -> HttpRequest {
    let mut r = r.clone();
    r.path = super::redact::target(&r.path);
    for (n, v) in &mut r.headers {
        *v = super::redact::header_value(n, v).to_string();
    }
    r
}

fn redact_response(r: &HttpResponse) -> HttpResponse {
    let mut r = r.clone();
    for (n, v) in &mut r.headers {
        *v = super::redact::header_value(n, v).to_string();
    }
    r
}

/// One `_webSocketMessages` element, as DevTools writes it.
fn message_json(ts: Timestamp, dir: Dir, m: &Message<'_>, redact: bool, out: &mut String) {
    out.push_str("{\"type\":");
    out.push_str(match dir {
        Dir::C2S => "\"send\"",
        Dir::S2C => "\"receive\"",
    });
    out.push_str(",\"time\":");
    let _ = write!(out, "{}", ts.secs);
    if ts.nano_precision {
        let _ = write!(out, ".{:09}", ts.nanos);
    } else {
        let _ = write!(out, ".{:06}", ts.nanos / 1000);
    }
    let opcode = match m.opcode {
        Opcode::Text => 1,
        Opcode::Binary => 2,
        Opcode::Close => 8,
        Opcode::Ping => 9,
        Opcode::Pong => 10,
        Opcode::Continuation => 0,
        Opcode::Reserved(r) => r,
    };
    let _ = write!(out, ",\"opcode\":{opcode},\"data\":");
    match (m.opcode, m.text()) {
        _ if redact && !m.payload.is_empty() => escape::json_str(super::redact::REDACTED, out),
        (Opcode::Text, Some(t)) => escape::json_str(t, out),
        // Text that is not UTF-8 (a protocol violation) is shown as the page would get it
        // had the browser not failed the connection: with replacement characters.
        (Opcode::Text, None) => escape::json_str(&String::from_utf8_lossy(m.payload), out),
        // DevTools' protocol gives every other opcode's payload in base64.
        _ => {
            out.push('"');
            base64_simd::STANDARD.encode_append(m.payload, out);
            out.push('"');
        }
    }
    if let Some(why) = m.incomplete {
        out.push_str(",\"_incomplete\":\"");
        out.push_str(why.as_str());
        out.push('"');
    }
    if m.truncated {
        let _ = write!(out, ",\"_truncated\":true,\"_length\":{}", m.len);
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Incomplete;

    fn conn(id: u64) -> ConnInfo {
        let client = format!("127.0.0.1:{}", 40000 + id).parse().unwrap();
        let server = "127.0.0.1:8080".parse().unwrap();
        ConnInfo { id, client, server }
    }

    fn msg(payload: &[u8], opcode: Opcode) -> Message<'_> {
        Message {
            opcode,
            payload,
            len: payload.len() as u64,
            wire_len: payload.len() as u64,
            compressed: false,
            frames: 1,
            truncated: false,
            incomplete: None,
            missing: Vec::new(),
            resync: false,
            valid_utf8: true,
            text: if opcode == Opcode::Text {
                std::str::from_utf8(payload).ok()
            } else {
                None
            },
            close_code: None,
            close_reason: None,
        }
    }

    fn ev<'a>(c: &'a ConnInfo, secs: i64, dir: Dir, kind: EventKind<'a>) -> Event<'a> {
        Event {
            ts: Timestamp::from_micros(secs, 0),
            conn: Some(c),
            dir,
            kind,
            app: None,
            label: None,
        }
    }

    fn upgrade(w: &mut HarWriter<Vec<u8>>, c: &ConnInfo) {
        let req = HttpRequest {
            method: "GET".into(),
            path: "/chat?room=1&x".into(),
            version: 1,
            headers: vec![("Host".into(), "example:8080".into())],
            websocket_upgrade: true,
            key: None,
            head_len: 0,
        };
        let resp = HttpResponse {
            status: 101,
            reason: "Switching Protocols".into(),
            version: 1,
            upgraded: true,
            ..Default::default()
        };
        w.event(&ev(c, 1, Dir::C2S, EventKind::HttpRequest(&req)))
            .unwrap();
        w.event(&ev(c, 2, Dir::S2C, EventKind::HttpResponse(&resp)))
            .unwrap();
    }

    fn parse(w: HarWriter<Vec<u8>>) -> serde_json::Value {
        let out = w.into_inner().unwrap();
        serde_json::from_slice(&out)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out)))
    }

    #[test]
    fn empty_capture_is_a_valid_har() {
        let w = HarWriter::new(Vec::new(), HarOptions::default()).unwrap();
        let v = parse(w);
        assert_eq!(v["log"]["version"], "1.2");
        assert_eq!(v["log"]["entries"].as_array().unwrap().len(), 0);
    }

    #[test]
    fn drop_without_finish_still_closes_the_json() {
        let mut out = Vec::new();
        {
            let mut w = HarWriter::new(&mut out, HarOptions::default()).unwrap();
            let c = conn(1);
            let m = msg(b"hi", Opcode::Text);
            w.event(&ev(&c, 3, Dir::C2S, EventKind::Message(&m)))
                .unwrap();
        }
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let e = &v["log"]["entries"][0];
        assert_eq!(e["comment"], "websocket handshake not captured");
        assert_eq!(e["_webSocketMessages"][0]["data"], "hi");
    }

    #[test]
    fn messages_as_devtools_writes_them() {
        let mut w = HarWriter::new(Vec::new(), HarOptions::default()).unwrap();
        let c = conn(1);
        upgrade(&mut w, &c);
        let t = msg("caf\u{e9}".as_bytes(), Opcode::Text);
        let b = msg(&[0, 1, 255], Opcode::Binary);
        let p = msg(b"p", Opcode::Ping);
        let mut cut = msg(b"abc", Opcode::Text);
        cut.incomplete = Some(Incomplete::Gap);
        for (s, d, m) in [
            (3, Dir::C2S, &t),
            (4, Dir::S2C, &b),
            (5, Dir::S2C, &p),
            (6, Dir::S2C, &cut),
        ] {
            w.event(&ev(&c, s, d, EventKind::Message(m))).unwrap();
        }
        w.event(&ev(&c, 9, Dir::C2S, EventKind::End)).unwrap();
        let v = parse(w);
        let e = &v["log"]["entries"][0];
        assert_eq!(e["_resourceType"], "websocket");
        assert_eq!(e["request"]["url"], "ws://example:8080/chat?room=1&x");
        assert_eq!(e["request"]["queryString"][1]["name"], "x");
        assert_eq!(e["response"]["status"], 101);
        assert_eq!(e["timings"]["wait"].as_f64(), Some(1000.0));
        assert_eq!(e["timings"]["receive"].as_f64(), Some(7000.0));
        assert_eq!(e["time"].as_f64(), Some(8000.0));
        let m = e["_webSocketMessages"].as_array().unwrap();
        assert_eq!(m.len(), 3, "no ping: {m:?}");
        assert_eq!(
            m[0],
            serde_json::json!({"type":"send","time":3.0,"opcode":1,"data":"café"})
        );
        assert_eq!(m[1]["data"], "AAH/");
        assert_eq!(m[1]["opcode"], 2);
        assert_eq!(m[2]["_incomplete"], "gap");
    }

    #[test]
    fn spills_past_the_memory_limit_and_reads_back_in_order() {
        let opts = HarOptions {
            memory_limit: 4096,
            ..Default::default()
        };
        let mut w = HarWriter::new(Vec::new(), opts).unwrap();
        let (a, b) = (conn(1), conn(2));
        upgrade(&mut w, &a);
        upgrade(&mut w, &b);
        let texts: Vec<String> = (0..2000).map(|i| format!("message number {i}")).collect();
        let mut peak = 0;
        for (i, t) in texts.iter().enumerate() {
            let m = msg(t.as_bytes(), Opcode::Text);
            let c = if i % 2 == 0 && i <= 1000 { &a } else { &b };
            w.event(&ev(c, 10 + i as i64, Dir::S2C, EventKind::Message(&m)))
                .unwrap();
            peak = peak.max(w.held());
            if i == 1000 {
                // One connection ends while the other goes on: the spool stays valid.
                w.event(&ev(&a, 5000, Dir::C2S, EventKind::End)).unwrap();
            }
        }
        assert!(peak <= 4096 + 100, "held {peak} bytes");
        let v = parse(w);
        let entries = v["log"]["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 2);
        let got = |e: &serde_json::Value| -> Vec<String> {
            e["_webSocketMessages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["data"].as_str().unwrap().to_string())
                .collect()
        };
        let want_a: Vec<String> = texts.iter().step_by(2).take(501).cloned().collect();
        let want_b: Vec<String> = (0..texts.len())
            .filter(|i| i % 2 == 1 || *i > 1000)
            .map(|i| texts[i].clone())
            .collect();
        assert_eq!(got(&entries[0]), want_a);
        assert_eq!(got(&entries[1]), want_b);
    }

    #[test]
    fn plain_http_entries_and_unanswered_requests() {
        let mut w = HarWriter::new(Vec::new(), HarOptions::default()).unwrap();
        let c = conn(3);
        let req = HttpRequest {
            method: "GET".into(),
            path: "/index.html".into(),
            version: 1,
            headers: vec![("Host".into(), "h".into())],
            ..Default::default()
        };
        let resp = HttpResponse {
            status: 200,
            reason: "OK".into(),
            version: 1,
            headers: vec![
                ("Content-Type".into(), "text/html".into()),
                ("Content-Length".into(), "12".into()),
            ],
            ..Default::default()
        };
        w.event(&ev(&c, 1, Dir::C2S, EventKind::HttpRequest(&req)))
            .unwrap();
        w.event(&ev(&c, 2, Dir::S2C, EventKind::HttpResponse(&resp)))
            .unwrap();
        w.event(&ev(&c, 3, Dir::C2S, EventKind::HttpRequest(&req)))
            .unwrap();
        w.event(&ev(&c, 4, Dir::C2S, EventKind::End)).unwrap();
        let v = parse(w);
        let e = v["log"]["entries"].as_array().unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0]["request"]["url"], "http://h/index.html");
        assert_eq!(e[0]["response"]["content"]["mimeType"], "text/html");
        assert_eq!(e[0]["response"]["content"]["size"], 12);
        assert!(e[0].get("_resourceType").is_none());
        assert_eq!(e[1]["response"]["status"], 0);
        assert_eq!(e[1]["comment"], "no response captured");
    }

    #[test]
    fn unanswered_requests_are_not_held_without_bound() {
        let mut w = HarWriter::new(Vec::new(), HarOptions::default()).unwrap();
        let c = conn(4);
        let req = HttpRequest {
            method: "GET".into(),
            path: "/".into(),
            version: 1,
            ..Default::default()
        };
        for i in 0..100 {
            w.event(&ev(&c, i, Dir::C2S, EventKind::HttpRequest(&req)))
                .unwrap();
            assert!(w.conns[&4].requests.len() <= MAX_PENDING);
        }
        assert_eq!(w.entries(), 100 - MAX_PENDING as u64);
        w.event(&ev(&c, 200, Dir::C2S, EventKind::End)).unwrap();
        let v = parse(w);
        assert_eq!(v["log"]["entries"].as_array().unwrap().len(), 100);
    }
}
