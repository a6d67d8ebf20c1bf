//! Building captures in tests: IPv4/TCP packets and websocket conversations, written with
//! the crate's own `PcapWriter` from real frame bytes (`Header::encode`).
#![allow(dead_code)]

use wsdump::capture::writer::PcapWriter;
use wsdump::capture::{LinkType, RawPacket, Timestamp};
use wsdump::http::accept_for;
use wsdump::ws::frame::Header;

pub mod netns;

pub const CLIENT: ([u8; 4], u16) = ([10, 0, 0, 1], 40000);
pub const SERVER: ([u8; 4], u16) = ([10, 0, 0, 2], 8080);
pub const SYN: u8 = 0x02;
pub const ACK: u8 = 0x10;
pub const PSH: u8 = 0x08;
pub const FIN: u8 = 0x01;

/// An IPv4/TCP packet (LINKTYPE_RAW) from `src` to `dst`.
pub fn tcp(
    src: ([u8; 4], u16),
    dst: ([u8; 4], u16),
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let total = 40 + payload.len();
    let mut p = Vec::with_capacity(total);
    p.extend_from_slice(&[0x45, 0]);
    p.extend_from_slice(&(total as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0]);
    p.extend_from_slice(&src.0);
    p.extend_from_slice(&dst.0);
    p.extend_from_slice(&src.1.to_be_bytes());
    p.extend_from_slice(&dst.1.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ack.to_be_bytes());
    p.extend_from_slice(&[5 << 4, flags, 0xff, 0xff, 0, 0, 0, 0]);
    p.extend_from_slice(payload);
    p
}

/// A websocket connection being written to a capture: TCP handshake, HTTP upgrade, frames.
pub struct Capture {
    pub packets: Vec<Vec<u8>>,
    pub cseq: u32,
    pub sseq: u32,
    pub client: ([u8; 4], u16),
    pub server: ([u8; 4], u16),
}

impl Capture {
    /// A connection whose handshake the capture missed: packets start with the first `send`.
    pub fn mid_stream(client: ([u8; 4], u16), server: ([u8; 4], u16)) -> Self {
        Capture {
            packets: Vec::new(),
            cseq: 1000,
            sseq: 5000,
            client,
            server,
        }
    }

    pub fn new() -> Self {
        Capture::between(CLIENT, SERVER)
    }

    /// A connection from `client` to `server`, from its TCP handshake on.
    pub fn between(client: ([u8; 4], u16), server: ([u8; 4], u16)) -> Self {
        let mut c = Capture::mid_stream(client, server);
        c.packets.push(tcp(client, server, c.cseq, 0, SYN, b""));
        c.packets
            .push(tcp(server, client, c.sseq, c.cseq + 1, SYN | ACK, b""));
        c.cseq += 1;
        c.sseq += 1;
        c.packets
            .push(tcp(client, server, c.cseq, c.sseq, ACK, b""));
        c
    }

    pub fn send(&mut self, from_client: bool, data: &[u8]) {
        let p = if from_client {
            let p = tcp(
                self.client,
                self.server,
                self.cseq,
                self.sseq,
                PSH | ACK,
                data,
            );
            self.cseq += data.len() as u32;
            p
        } else {
            let p = tcp(
                self.server,
                self.client,
                self.sseq,
                self.cseq,
                PSH | ACK,
                data,
            );
            self.sseq += data.len() as u32;
            p
        };
        self.packets.push(p);
    }

    pub fn upgrade(&mut self, path: &str) {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        self.send(true, req.as_bytes());
        let resp = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n\r\n",
            accept_for(key)
        );
        self.send(false, resp.as_bytes());
    }

    /// One frame: the header from `Header::encode`, the payload masked when from the client.
    pub fn frame(
        &mut self,
        from_client: bool,
        opcode: u8,
        payload: &[u8],
        claimed_len: Option<u64>,
    ) {
        let mask = from_client.then_some([0x37, 0xfa, 0x21, 0x3d]);
        let h = Header {
            fin: true,
            rsv: 0,
            opcode,
            mask,
            payload_len: claimed_len.unwrap_or(payload.len() as u64),
            header_len: 0,
            non_minimal: false,
        };
        let mut bytes = h.encode();
        let mut body = payload.to_vec();
        if let Some(k) = mask {
            wsdump::ws::frame::apply_mask(&mut body, k, 0);
        }
        bytes.extend_from_slice(&body);
        self.send(from_client, &bytes);
    }

    pub fn fin(&mut self) {
        self.packets.push(tcp(
            self.client,
            self.server,
            self.cseq,
            self.sseq,
            FIN | ACK,
            b"",
        ));
        self.packets.push(tcp(
            self.server,
            self.client,
            self.sseq,
            self.cseq + 1,
            FIN | ACK,
            b"",
        ));
        self.packets.push(tcp(
            self.client,
            self.server,
            self.cseq + 1,
            self.sseq + 1,
            ACK,
            b"",
        ));
    }

    pub fn pcap(&self, linktype: LinkType) -> Vec<u8> {
        let mut buf = Vec::new();
        let mut w = PcapWriter::new(&mut buf, linktype, false, 262144).unwrap();
        for (i, p) in self.packets.iter().enumerate() {
            w.write(&RawPacket {
                ts: Timestamp::from_micros(1_700_000_000 + i as i64, 0),
                linktype,
                orig_len: p.len() as u32,
                data: p,
                iface: 0,
            })
            .unwrap();
        }
        w.flush().unwrap();
        buf
    }
}
