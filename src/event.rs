//! The contract between decoders and printers. Decoders push events into a [`Sink`] in
//! capture order; printers never parse, decoders never print.

use crate::capture::{RawPacket, Timestamp};
use crate::packet::{TcpFlags, TcpOptions};
use std::fmt;
use std::io;
use std::net::SocketAddr;

/// Direction of travel relative to the websocket roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dir {
    /// Client to server (the side that sent the SYN or the upgrade request; masked frames).
    C2S,
    /// Server to client.
    S2C,
}

impl Dir {
    /// 0 for client to server, 1 for server to client: the index of per-direction arrays.
    pub fn index(self) -> usize {
        self as usize
    }
    /// The other direction.
    pub fn flip(self) -> Dir {
        match self {
            Dir::C2S => Dir::S2C,
            Dir::S2C => Dir::C2S,
        }
    }
    /// `c2s` or `s2c`, as in the JSON output and `--dir`.
    pub fn as_str(self) -> &'static str {
        match self {
            Dir::C2S => "c2s",
            Dir::S2C => "s2c",
        }
    }
}

/// One TCP connection as the printers name it. Small on purpose: the flow table holds one
/// per connection it follows (100,000 on a busy server, on every decoding thread), so the
/// printed forms of the addresses are made when a line needs them, on the stack.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    /// Sequence number of the connection in the capture, from 1.
    pub id: u64,
    /// The side that opened the connection (sent the SYN, or the upgrade request).
    pub client: SocketAddr,
    /// The side that accepted it.
    pub server: SocketAddr,
}

impl ConnInfo {
    /// The client's address as printed (`ip:port`, IPv6 in brackets).
    pub fn client_str(&self) -> AddrText {
        AddrText::new(&self.client)
    }

    /// The server's address as printed.
    pub fn server_str(&self) -> AddrText {
        AddrText::new(&self.server)
    }
}

/// An address as printed (`ip:port`, IPv6 in brackets: at most 47 bytes), kept inline: a
/// busy server has many connections, each with two, and every line prints them.
#[derive(Clone, Copy)]
pub struct AddrText {
    len: u8,
    buf: [u8; 47],
}

impl AddrText {
    /// `a` as printed: `ip:port`, IPv6 in brackets.
    pub fn new(a: &SocketAddr) -> Self {
        use std::io::Write;
        let mut buf = [0u8; 47];
        let mut w = &mut buf[..];
        let _ = match a.ip() {
            std::net::IpAddr::V4(v4) => write!(w, "{v4}:{}", a.port()),
            std::net::IpAddr::V6(v6) => write!(w, "[{v6}]:{}", a.port()),
        };
        let len = (47 - w.len()) as u8;
        AddrText { len, buf }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Written from an address's Display above: ASCII.
        std::str::from_utf8(&self.buf[..self.len as usize]).unwrap_or("")
    }
}

impl std::ops::Deref for AddrText {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for AddrText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for AddrText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// What a TCP segment does in the life of its connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpRole {
    /// Handshake step 1/3.
    Syn,
    /// Handshake step 2/3.
    SynAck,
    /// Handshake step 3/3: the client's ACK of the SYN+ACK.
    HandshakeAck,
    /// Carries payload.
    Data,
    /// Acknowledges, no payload.
    Ack,
    /// A keep-alive probe (RFC 9293 3.8.4): at most one byte, one below the next expected
    /// sequence number. Not data.
    KeepAlive,
    /// Ends its direction (FIN).
    Fin,
    /// Aborts the connection (RST).
    Rst,
}

impl TcpRole {
    /// The role's name in the JSON output (`syn`, `syn_ack`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            TcpRole::Syn => "syn",
            TcpRole::SynAck => "syn_ack",
            TcpRole::HandshakeAck => "handshake_ack",
            TcpRole::Data => "data",
            TcpRole::Ack => "ack",
            TcpRole::KeepAlive => "keep_alive",
            TcpRole::Fin => "fin",
            TcpRole::Rst => "rst",
        }
    }
    /// Packets that set up or tear down the connection: what the default view shows.
    pub fn is_lifecycle(self) -> bool {
        !matches!(self, TcpRole::Data | TcpRole::Ack | TcpRole::KeepAlive)
    }
}

#[derive(Clone, Copy, Debug)]
/// One TCP segment of a connection, as the handshake annotations show it.
pub struct TcpEvent {
    /// What the segment does in the connection's life.
    pub role: TcpRole,
    /// The header's flags.
    pub flags: TcpFlags,
    /// Sequence number as on the wire.
    pub seq: u32,
    /// Acknowledgment number as on the wire (meaningful with the ACK flag).
    pub ack: u32,
    /// Relative to the sender's ISN (and the peer's for `ack`), when the SYNs were seen.
    pub rel_seq: Option<u32>,
    /// `ack` relative to the peer's ISN, when its SYN was seen.
    pub rel_ack: Option<u32>,
    /// The advertised window, unscaled (as on the wire).
    pub window: u16,
    /// The header's options (MSS, window scale, SACK, timestamps).
    pub options: TcpOptions,
    /// Payload bytes the segment declares (from the IP length).
    pub payload_len: u32,
    /// Payload bytes the capture holds (less than `payload_len` when cut by snaplen).
    pub captured_len: u32,
}

#[derive(Clone, Debug, Default)]
/// An HTTP request head, parsed with httparse.
pub struct HttpRequest {
    /// `GET`, ...
    pub method: String,
    /// The request target as sent.
    pub path: String,
    /// The minor version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub version: u8,
    /// Header names and values as sent (values decoded lossily as UTF-8; printers escape).
    pub headers: Vec<(String, String)>,
    /// `Upgrade: websocket` and `Connection: upgrade` are both present.
    pub websocket_upgrade: bool,
    /// `Sec-WebSocket-Key`, when sent.
    pub key: Option<String>,
    /// Bytes of the head on the wire, request line to the blank line that ends it.
    pub head_len: usize,
}

impl HttpRequest {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

pub(crate) fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// permessage-deflate parameters agreed in the 101 response (RFC 7692 section 7.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeflateParams {
    /// The server resets its compressor after each message.
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after each message.
    pub client_no_context_takeover: bool,
    /// The server's LZ77 window, as a power of two (8..=15), when limited.
    pub server_max_window_bits: Option<u8>,
    /// The client's LZ77 window, as a power of two (8..=15), when limited.
    pub client_max_window_bits: Option<u8>,
}

impl DeflateParams {
    /// Whether the sender in `dir` resets its compressor after each message.
    pub fn no_context_takeover(&self, dir: Dir) -> bool {
        match dir {
            Dir::C2S => self.client_no_context_takeover,
            Dir::S2C => self.server_no_context_takeover,
        }
    }
}

#[derive(Clone, Debug, Default)]
/// An HTTP response head, parsed with httparse, with what it says about a websocket upgrade.
pub struct HttpResponse {
    /// The status code (101 for an upgrade).
    pub status: u16,
    /// The reason phrase as sent.
    pub reason: String,
    /// The minor version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub version: u8,
    /// Header names and values as sent (values decoded lossily as UTF-8; printers escape).
    pub headers: Vec<(String, String)>,
    /// A 101 to a websocket upgrade request: the connection now speaks websocket.
    pub upgraded: bool,
    /// The `Sec-WebSocket-Key` this answers, and the accept value it implies.
    pub key: Option<String>,
    /// The `Sec-WebSocket-Accept` that `key` implies (base64 of SHA-1 of key + GUID).
    pub expected_accept: Option<String>,
    /// `Sec-WebSocket-Accept` as sent.
    pub accept: Option<String>,
    /// `Sec-WebSocket-Protocol` the server chose.
    pub subprotocol: Option<String>,
    /// `Sec-WebSocket-Extensions` as sent.
    pub extensions: Option<String>,
    /// permessage-deflate, when the server agreed to it.
    pub deflate: Option<DeflateParams>,
    /// Bytes of the head on the wire, status line to the blank line that ends it.
    pub head_len: usize,
}

impl HttpResponse {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
    /// `Some(true)` when Sec-WebSocket-Accept matches the key, `None` when there was nothing
    /// to check.
    pub fn accept_ok(&self) -> Option<bool> {
        match (&self.expected_accept, &self.accept) {
            (Some(e), Some(a)) => Some(e == a),
            _ => None,
        }
    }
}

/// One websocket frame header, with where it sat in the stream.
#[derive(Clone, Debug)]
pub struct FrameInfo {
    /// FIN: the last frame of its message.
    pub fin: bool,
    /// RSV1..3 as the low three bits (RSV1 = 4).
    pub rsv: u8,
    /// The opcode as on the wire (four bits).
    pub opcode: u8,
    /// The masking key, when the frame is masked.
    pub mask: Option<[u8; 4]>,
    /// The payload length the header declares.
    pub payload_len: u64,
    /// 2, 4 or 10 bytes, plus 4 with a mask: tells which length encoding was used.
    pub header_len: u8,
    /// Byte offset of the header in its direction's stream.
    pub stream_offset: u64,
    /// The first `head_len` payload bytes as sent (still masked) and unmasked.
    pub head_wire: [u8; 16],
    /// The same bytes unmasked.
    pub head_plain: [u8; 16],
    /// How many of `head_wire`/`head_plain` are valid.
    pub head_len: u8,
    /// Found by resynchronisation rather than by following the previous frame.
    pub resync: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
/// A websocket opcode (RFC 6455 5.2).
pub enum Opcode {
    /// 0x0: the next fragment of a fragmented message.
    Continuation,
    /// 0x1: UTF-8 text.
    Text,
    /// 0x2: binary data.
    Binary,
    /// 0x8: close, with an optional code and reason.
    Close,
    /// 0x9: ping.
    Ping,
    /// 0xA: pong.
    Pong,
    /// 0x3-0x7 and 0xB-0xF: reserved, with the value.
    Reserved(u8),
}

impl Opcode {
    /// The opcode in the low four bits of `v`.
    pub fn from_u8(v: u8) -> Opcode {
        use tungstenite::protocol::frame::coding::{Control, Data, OpCode};
        match OpCode::from(v & 0x0f) {
            OpCode::Data(Data::Continue) => Opcode::Continuation,
            OpCode::Data(Data::Text) => Opcode::Text,
            OpCode::Data(Data::Binary) => Opcode::Binary,
            OpCode::Control(Control::Close) => Opcode::Close,
            OpCode::Control(Control::Ping) => Opcode::Ping,
            OpCode::Control(Control::Pong) => Opcode::Pong,
            OpCode::Data(Data::Reserved(r)) | OpCode::Control(Control::Reserved(r)) => {
                Opcode::Reserved(r)
            }
        }
    }
    /// Close, ping, pong and the reserved control opcodes (0x8 and above).
    pub fn is_control(self) -> bool {
        matches!(self, Opcode::Close | Opcode::Ping | Opcode::Pong)
            || matches!(self, Opcode::Reserved(r) if r >= 8)
    }
    /// The name in the JSON output and `--opcode`.
    pub fn as_str(self) -> &'static str {
        match self {
            Opcode::Continuation => "continuation",
            Opcode::Text => "text",
            Opcode::Binary => "binary",
            Opcode::Close => "close",
            Opcode::Ping => "ping",
            Opcode::Pong => "pong",
            Opcode::Reserved(_) => "reserved",
        }
    }
}

impl fmt::Display for Opcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Opcode::Reserved(r) => write!(f, "reserved-{r:x}"),
            o => f.write_str(o.as_str()),
        }
    }
}

/// Why a message's bytes are not all there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Incomplete {
    /// Bytes of the message were never captured (a TCP gap).
    Gap,
    /// The message began before the capture (or before a resynchronisation point).
    StartMissing,
    /// Compressed with context takeover and refers to history the capture lacks, or the
    /// compressed data is corrupt: only the part that inflated is shown.
    InflateFailed,
    /// The inflated size passed the decompression limit.
    InflateLimit,
    /// The capture ended before the message did.
    EndOfCapture,
    /// An RST ended the connection before the message did.
    ConnectionReset,
    /// The connection was given up while the message was open (`--idle-timeout`,
    /// `--max-conns`, `--max-memory`): an `evicted` notice says why.
    Evicted,
}

impl Incomplete {
    /// The name in the JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Incomplete::Gap => "gap",
            Incomplete::StartMissing => "start_missing",
            Incomplete::InflateFailed => "inflate_failed",
            Incomplete::InflateLimit => "inflate_limit",
            Incomplete::EndOfCapture => "end_of_capture",
            Incomplete::ConnectionReset => "connection_reset",
            Incomplete::Evicted => "evicted",
        }
    }
}

/// A complete websocket message: data messages after fragment reassembly and inflation, and
/// each control frame.
#[derive(Clone, Debug)]
pub struct Message<'a> {
    /// Text, binary, or the control frame's opcode.
    pub opcode: Opcode,
    /// The payload bytes kept: all of them, unless `truncated` or `incomplete`.
    pub payload: &'a [u8],
    /// Payload length after decompression (bytes known, for an incomplete message).
    pub len: u64,
    /// Bytes on the wire (sum of frame payload lengths).
    pub wire_len: u64,
    /// Sent with permessage-deflate (RSV1 on its first frame).
    pub compressed: bool,
    /// Frames the message took on the wire.
    pub frames: u32,
    /// The payload was cut at the message size limit; `len` is the true length.
    pub truncated: bool,
    /// Why bytes are missing, if any are.
    pub incomplete: Option<Incomplete>,
    /// Byte ranges of the (inflated) payload that are missing, `[start, end)`.
    pub missing: Vec<(u64, u64)>,
    /// Decoded after a resynchronisation, until the stream is known good again.
    pub resync: bool,
    /// For text: whether the kept bytes are valid UTF-8.
    pub valid_utf8: bool,
    /// The payload as text: a text message whose kept bytes are valid UTF-8, checked once by
    /// the decoder.
    pub text: Option<&'a str>,
    /// A close frame's status code (RFC 6455 7.4), when it has one.
    pub close_code: Option<u16>,
    /// A close frame's reason, when it has one and it is valid UTF-8.
    pub close_reason: Option<&'a str>,
}

impl<'a> Message<'a> {
    /// The payload as text, when it is a text message (or close reason) that can be shown as
    /// such: valid UTF-8 and nothing missing that would make it misleading.
    pub fn text(&self) -> Option<&'a str> {
        self.text
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
/// Why bytes of a stream are missing.
pub enum GapReason {
    /// The peer acknowledged bytes the capture never saw (dropped by the capture).
    NotCaptured,
    /// The out-of-order buffer limit forced the stream forward.
    BufferLimit,
    /// The packet was cut short by the capture's snaplen.
    Snaplen,
    /// The connection ended (FIN, RST, end of capture, eviction) with the hole unfilled.
    Unfilled,
}

impl GapReason {
    /// The name in the JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            GapReason::NotCaptured => "not_captured",
            GapReason::BufferLimit => "buffer_limit",
            GapReason::Snaplen => "snaplen",
            GapReason::Unfilled => "unfilled",
        }
    }
}

#[derive(Clone, Copy, Debug)]
/// Bytes of one direction's stream that the capture does not have.
pub struct Gap {
    /// Stream offset where the missing bytes start.
    pub offset: u64,
    /// How many bytes are missing.
    pub len: u64,
    /// Why.
    pub reason: GapReason,
}

/// A breach of RFC 6455/7692/9293 or of a resource limit. Reported, then decoding goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViolationKind {
    /// A client frame without a mask (RFC 6455 5.1).
    UnmaskedClientFrame,
    /// A server frame with a mask (RFC 6455 5.1).
    MaskedServerFrame,
    /// RSV bits set that no extension negotiated (RFC 6455 5.2).
    ReservedBits,
    /// An opcode RFC 6455 reserves.
    ReservedOpcode,
    /// A control frame without FIN (RFC 6455 5.5).
    FragmentedControlFrame,
    /// A control frame with more than 125 payload bytes (RFC 6455 5.5).
    ControlFrameTooLong,
    /// A continuation with no fragmented message open (RFC 6455 5.4).
    UnexpectedContinuation,
    /// A new data frame while a fragmented message is open (RFC 6455 5.4).
    ExpectedContinuation,
    /// A payload length not in its shortest encoding (RFC 6455 5.2).
    NonMinimalLength,
    /// A 64-bit payload length with its most significant bit set (RFC 6455 5.2).
    LengthMsbSet,
    /// A close code an endpoint may not send (RFC 6455 7.4).
    InvalidCloseCode,
    /// A close payload of one byte, or a reason that is not UTF-8 (RFC 6455 5.5.1).
    InvalidClosePayload,
    /// A text message that is not valid UTF-8 (RFC 6455 8.1).
    InvalidUtf8,
    /// Frames after this direction's close frame (RFC 6455 5.5.1).
    DataAfterClose,
    /// `Sec-WebSocket-Accept` is not the key's SHA-1 digest (RFC 6455 4.2.2).
    AcceptMismatch,
    /// A handshake that breaks RFC 6455 4 or RFC 9110 7.8 (a 101 to a protocol nobody
    /// offered, a websocket 101 to a request with no key).
    InvalidUpgrade,
    /// A retransmitted segment carries other bytes than the first copy (RFC 9293).
    RetransmissionDiffers,
    /// A message longer than `--max-message`: kept truncated.
    MessageTooLarge,
    /// Inflation passed `--max-inflate` (a decompression bomb, or a huge message).
    InflateLimit,
    /// The compressed data does not inflate (RFC 7692).
    InflateError,
    /// Bytes where an HTTP head was expected that are not one.
    HttpMalformed,
    /// An HTTP head longer than wsdump keeps.
    HttpTooLarge,
    /// An RST whose sequence number lies outside any window the peer could have open: the
    /// endpoints ignore it (RFC 5961 3.2, RFC 9293 3.10.7.4), and so does the decoding.
    RstOutOfWindow,
}

impl ViolationKind {
    /// The name in the JSON output.
    pub fn as_str(self) -> &'static str {
        use ViolationKind::*;
        match self {
            UnmaskedClientFrame => "unmasked_client_frame",
            MaskedServerFrame => "masked_server_frame",
            ReservedBits => "reserved_bits",
            ReservedOpcode => "reserved_opcode",
            FragmentedControlFrame => "fragmented_control_frame",
            ControlFrameTooLong => "control_frame_too_long",
            UnexpectedContinuation => "unexpected_continuation",
            ExpectedContinuation => "expected_continuation",
            NonMinimalLength => "non_minimal_length",
            LengthMsbSet => "length_msb_set",
            InvalidCloseCode => "invalid_close_code",
            InvalidClosePayload => "invalid_close_payload",
            InvalidUtf8 => "invalid_utf8",
            DataAfterClose => "data_after_close",
            AcceptMismatch => "accept_mismatch",
            InvalidUpgrade => "invalid_upgrade",
            RetransmissionDiffers => "retransmission_differs",
            MessageTooLarge => "message_too_large",
            InflateLimit => "inflate_limit",
            InflateError => "inflate_error",
            HttpMalformed => "http_malformed",
            HttpTooLarge => "http_too_large",
            RstOutOfWindow => "rst_out_of_window",
        }
    }
}

#[derive(Clone, Debug)]
/// A breach of a protocol or a limit, with the facts of this case.
pub struct Violation {
    /// Which rule.
    pub kind: ViolationKind,
    /// What was seen, for a person.
    pub detail: String,
}

/// Things worth saying that are neither data nor a protocol breach.
#[derive(Clone, Debug)]
pub enum Notice {
    /// The packet could not be decoded down to TCP (truncated or invalid header).
    BadPacket {
        /// What is wrong with it.
        why: String,
    },
    /// The link type is not one wsdump decodes.
    UnsupportedLinkType {
        /// The LINKTYPE_ value (tcpdump.org/linktypes.html).
        linktype: u32,
    },
    /// The segment's payload was cut short by the capture.
    TruncatedPacket {
        /// Payload bytes in the capture.
        captured: u32,
        /// Payload bytes the IP header declares.
        declared: u32,
    },
    /// About the TLS layer of the connection (wss://): its handshake, whether and why not
    /// it is decrypted, alerts, records lost. `info` is set on the notice that says what
    /// the handshake chose and whether the key log opens it.
    Tls {
        /// What happened, in words, with what would fix it when it cannot decrypt.
        detail: String,
        /// The handshake's summary, on the verdict notice only.
        info: Option<Box<TlsInfo>>,
    },
    /// The stream is neither HTTP nor websocket; its bytes are not decoded.
    Undecoded {
        /// What the bytes look like, and why they are not decoded.
        detail: String,
    },
    /// Websocket decoding starts without the handshake (capture began mid-connection).
    MidStream,
    /// Bytes skipped while looking for the next frame boundary.
    Resync {
        /// Bytes passed over.
        skipped: u64,
        /// Stream offset of the frame found.
        offset: u64,
    },
    /// The connection was dropped from tracking before it ended (the memory budget or
    /// `--max-conns` needed room): nothing more of it is decoded.
    Evicted {
        /// Which limit needed the room.
        reason: &'static str,
    },
    /// Compression history of this direction was given up to stay within the memory budget:
    /// the next compressed messages that refer back to it cannot be inflated.
    HistoryDropped,
    /// The application protocol reading of this connection was given up to stay within the
    /// memory budget: its later messages are not read (`app`).
    AppDropped,
    /// Live capture lost packets here, `by` "wsdump" (its queue was full: decoding or
    /// printing fell behind; `bytes` is their length on the wire) or "kernel" (the kernel's
    /// ring was full: the reader fell behind; the kernel counts no bytes). What they carried
    /// shows as gaps in their connections.
    Dropped {
        /// Who dropped them: "wsdump" or "kernel".
        by: &'static str,
        /// How many packets.
        packets: u64,
        /// Their length on the wire (wsdump's drops only).
        bytes: Option<u64>,
    },
}

/// What a TLS handshake chose, and whether wsdump decrypts the connection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsInfo {
    /// "TLS 1.3", "TLS 1.2"; None before a ServerHello was seen.
    pub version: Option<&'static str>,
    /// IANA name of the chosen cipher suite.
    pub suite: Option<&'static str>,
    /// server_name from the ClientHello.
    pub sni: Option<String>,
    /// The protocol the server chose by ALPN (TLS 1.2: ServerHello; TLS 1.3: known only
    /// once EncryptedExtensions is decrypted).
    pub alpn: Option<String>,
    /// The handshake resumed an earlier session (ticket, session ID, PSK).
    pub resumed: bool,
    /// The key log opens this connection: its application data is decoded.
    pub decrypted: bool,
}

impl Notice {
    /// The name in the JSON output.
    pub fn kind(&self) -> &'static str {
        match self {
            Notice::BadPacket { .. } => "bad_packet",
            Notice::UnsupportedLinkType { .. } => "unsupported_link_type",
            Notice::TruncatedPacket { .. } => "truncated_packet",
            Notice::Tls { .. } => "tls",
            Notice::Undecoded { .. } => "undecoded",
            Notice::MidStream => "mid_stream",
            Notice::Resync { .. } => "resync",
            Notice::Evicted { .. } => "evicted",
            Notice::HistoryDropped => "history_dropped",
            Notice::AppDropped => "app_dropped",
            Notice::Dropped { .. } => "dropped",
        }
    }
}

#[derive(Clone, Debug)]
/// What an event says.
pub enum EventKind<'a> {
    /// A TCP segment.
    Tcp(TcpEvent),
    /// An HTTP request head.
    HttpRequest(&'a HttpRequest),
    /// An HTTP response head.
    HttpResponse(&'a HttpResponse),
    /// A websocket frame header (only when the printer wants frames).
    Frame(&'a FrameInfo),
    /// A websocket message, or a control frame.
    Message(&'a Message<'a>),
    /// Missing stream bytes.
    Gap(Gap),
    /// A protocol or limit breach.
    Violation(&'a Violation),
    /// Something worth saying that is neither data nor a breach.
    Notice(&'a Notice),
    /// The connection is no longer tracked (closed and done, idle, evicted, end of input):
    /// nothing more will be said about it.
    End,
}

#[derive(Clone, Debug)]
/// One thing the pipeline found, borrowed for the call (see the module docs).
pub struct Event<'a> {
    /// The capture time of the packet that caused it.
    pub ts: Timestamp,
    /// `None` only for packet-level notices that belong to no connection.
    pub conn: Option<&'a ConnInfo>,
    /// The direction it concerns (`c2s` for connection-level events).
    pub dir: Dir,
    /// What it says.
    pub kind: EventKind<'a>,
    /// What an application protocol reads in a message, made before any display filter
    /// (so filters never change it); `None` for other events and unread messages.
    pub app: Option<&'a Annotation>,
    /// The name an application protocol gave the connection (a chat login), once known:
    /// printers show it next to the address; `None` before (or without) one.
    pub label: Option<&'a str>,
}

/// An application protocol's reading of one message (see [`crate::annotate`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Annotation {
    /// The protocol that read it.
    pub protocol: &'static str,
    /// One line for the human views (any characters: printers escape it).
    pub text: String,
    /// An application-level heartbeat.
    pub heartbeat: bool,
    /// The reading for machines, the `app` object of `--json` (docs/json.md): `protocol`,
    /// `type`, `reading` (the reading without its latency), `heartbeat` when it is one,
    /// `latency_ms` when known, and the protocol's own fields.
    pub json: serde_json::Value,
    /// For a response: the time since the request it answers, when that was seen.
    pub latency_ns: Option<u64>,
}

/// How decoders hand events up: the flow table implements it with the connection, the
/// packet's timestamp and the annotation filled in, and forwards to the [`Sink`]. Events only:
/// memory comes down to the decoders as a [`crate::memory::Memory`], never up through here.
pub trait Emit {
    /// Reports one event of this connection in direction `dir`.
    fn emit(&mut self, dir: Dir, kind: EventKind<'_>) -> io::Result<()>;
    /// Frame events cost a little; printers that show none say so.
    fn wants_frames(&self) -> bool {
        true
    }
}

/// Where the pipeline is, told to the sink between events ([`Sink::stage`]): a printer that
/// flushes per packet, or a thread that orders output by packet, listens; most ignore it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// The events that follow belong to the packet with this index (from 0).
    Packet(u64),
    /// The packet's own events are over; the table's housekeeping (idle connections,
    /// evictions) follows.
    Sweep,
    /// Everything about the packet has been said.
    PacketDone,
    /// The input is over; connections still open are flushed and ended.
    Finish,
    /// The source has nothing more for now (live capture caught up): a chance to write out
    /// what is held.
    Idle,
}

/// Where events go, in capture order (ripgrep's contract).
pub trait Sink {
    /// Takes one event. `Ok(false)`: stop after this event (`-c N` reached); no further event
    /// is delivered, and [`Sink::finish`] is still called. `Err`: stop now; `finish` is not.
    fn event(&mut self, ev: &Event<'_>) -> io::Result<bool>;
    /// Where the pipeline is, between events: for sinks that flush per packet or order output
    /// by packet.
    fn stage(&mut self, _stage: Stage) -> io::Result<()> {
        Ok(())
    }
    /// The packet whose events were just delivered (after [`Stage::PacketDone`]), if it
    /// passed the capture filter: for sinks that write packets out, such as pcapng with a
    /// comment on the packet that completed a message. Most sinks ignore it.
    fn captured(&mut self, _packet: &RawPacket<'_>) -> io::Result<()> {
        Ok(())
    }
    /// The input is over (or the run was stopped): write what is still held.
    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<S: Sink + ?Sized> Sink for &mut S {
    fn event(&mut self, ev: &Event<'_>) -> io::Result<bool> {
        (**self).event(ev)
    }
    fn stage(&mut self, stage: Stage) -> io::Result<()> {
        (**self).stage(stage)
    }
    fn captured(&mut self, packet: &RawPacket<'_>) -> io::Result<()> {
        (**self).captured(packet)
    }
    fn finish(&mut self) -> io::Result<()> {
        (**self).finish()
    }
}

/// Collects events as owned strings; for tests.
#[derive(Default)]
pub struct VecSink(pub Vec<String>);

impl Sink for VecSink {
    fn event(&mut self, ev: &Event<'_>) -> io::Result<bool> {
        self.0.push(format!("{:?}", ev.kind));
        Ok(true)
    }
}
