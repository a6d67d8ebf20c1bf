//! The websocket decoder, permessage-deflate included, fed arbitrary chunks and gaps. Every
//! event goes through both printers, whose output must be terminal-safe and valid JSON.
//!
//! Input: byte 0 = configuration, byte 1 = limits, then operations: a byte `n < 0xf0` feeds
//! the next `n + 1` bytes; `0xf0..=0xfb` feeds the rest in one go; `0xfc` a gap of 1 byte;
//! `0xfd` a gap of the next 2 bytes' value; `0xfe` a gap of the next 8 bytes' value; `0xff`
//! ends the stream (`finish`) and starts feeding again.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use std::io;
use wsdump::capture::Timestamp;
use wsdump::event::{ConnInfo, DeflateParams, Dir, Emit, Event, EventKind, Sink};
use wsdump::memory::Memory;
use wsdump::output::Palette;
use wsdump::output::human::{HumanOptions, HumanPrinter};
use wsdump::output::json::{JsonOptions, JsonPrinter};
use wsdump::ws::decoder::Compression;
use wsdump::ws::{Limits, WsDecoder};

struct Both {
    conn: ConnInfo,
    human: HumanPrinter<Vec<u8>>,
    json: JsonPrinter<Vec<u8>>,
    limits: Limits,
}

impl Emit for Both {
    fn emit(&mut self, dir: Dir, kind: EventKind<'_>) -> io::Result<()> {
        if let EventKind::Message(m) = &kind {
            assert!(m.len >= m.payload.len() as u64, "len below kept payload");
            assert!(
                m.payload.len() <= self.limits.max_message.max(125),
                "kept {} bytes, limit {}",
                m.payload.len(),
                self.limits.max_message
            );
        }
        let ev = Event {
            ts: Timestamp::default(),
            conn: Some(&self.conn),
            dir,
            kind,
            app: None,
            label: None,
        };
        self.human.event(&ev)?;
        self.json.event(&ev)?;
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let (cfg, lim) = (data[0], data[1]);
    let mut ops = &data[2..];
    let dir = if cfg & 0x80 != 0 { Dir::S2C } else { Dir::C2S };
    let masked = match (cfg >> 3) & 3 {
        0 => None,
        1 => Some(true),
        _ => Some(false),
    };
    let params = DeflateParams {
        client_no_context_takeover: cfg & 0x20 != 0,
        server_no_context_takeover: cfg & 0x40 != 0,
        client_max_window_bits: None,
        server_max_window_bits: None,
    };
    let compression = match cfg & 3 {
        0 => Compression::Off,
        1 | 3 => Compression::Deflate(params),
        _ => Compression::Unknown,
    };
    let limits = Limits {
        max_message: [64, 4096, 4 << 20][(lim & 3) as usize % 3],
        max_inflate: [1024, 65536, 64 << 20][((lim >> 2) & 3) as usize % 3],
    };
    // The ledger every buffer of the decoder is charged to; back at zero after `release`.
    let mut mem = Memory::new(if lim & 0x40 != 0 { 8192 } else { 16 << 20 });
    let mut dec = if cfg & 4 != 0 {
        WsDecoder::mid_stream(dir, masked, limits, 0)
    } else {
        WsDecoder::new(dir, masked, compression, limits)
    };
    let addr = |p| std::net::SocketAddr::from(([127, 0, 0, 1], p));
    let mut em = Both {
        conn: ConnInfo {
            id: 1,
            client: addr(40000),
            server: addr(80),
        },
        human: HumanPrinter::new(
            Vec::new(),
            Palette::plain(),
            HumanOptions {
                messages_only: false,
                verbose: lim & 0x10 != 0,
                hex: lim & 0x20 != 0,
                ..HumanOptions::default()
            },
        ),
        json: JsonPrinter::new(
            Vec::new(),
            JsonOptions {
                messages_only: false,
                verbose: true,
                ..JsonOptions::default()
            },
        ),
        limits,
    };
    while let Some((&op, rest)) = ops.split_first() {
        ops = rest;
        match op {
            0..=0xef => {
                let n = (op as usize + 1).min(ops.len());
                dec.feed(&ops[..n], &mut mem, &mut em).unwrap();
                ops = &ops[n..];
            }
            0xf0..=0xfb => {
                dec.feed(ops, &mut mem, &mut em).unwrap();
                ops = &[];
            }
            0xfc => dec.gap(1, &mut mem, &mut em).unwrap(),
            0xfd => {
                let mut b = [0u8; 2];
                let n = ops.len().min(2);
                b[..n].copy_from_slice(&ops[..n]);
                ops = &ops[n..];
                dec.gap(u16::from_be_bytes(b) as u64, &mut mem, &mut em)
                    .unwrap();
            }
            0xfe => {
                let mut b = [0u8; 8];
                let n = ops.len().min(8);
                b[..n].copy_from_slice(&ops[..n]);
                ops = &ops[n..];
                // Stream offsets are u64 and start near 0: keep the total within range.
                dec.gap(u64::from_be_bytes(b) >> 2, &mut mem, &mut em)
                    .unwrap();
            }
            0xff => dec.finish(&mut mem, &mut em).unwrap(),
        }
    }
    dec.finish(&mut mem, &mut em).unwrap();
    dec.release(&mut mem);
    assert_eq!(mem.used(), 0, "decoder left {} bytes charged", mem.used());
    common::check_terminal_safe(&em.human.into_inner());
    common::check_json_lines(&em.json.into_inner());
});
