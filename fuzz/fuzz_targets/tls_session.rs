//! TLS as a session layer: arbitrary records (and gaps) in both directions of one connection,
//! with the key log of samples/tls-wss.pcap, so that inputs grown from that sample's streams
//! get past the handshake into decryption and the nested HTTP/websocket conversation.
//! Nothing may panic, and the ledger is back at zero once the connection is released.
//!
//! Input: pieces of `[flags][len][len bytes]`; flags bit 0 is the direction, bit 1 a gap of
//! `len` bytes before the piece, bit 2 the end of that direction.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io;
use wsdump::conversation::Conversation;
use wsdump::event::{Dir, Emit, EventKind};
use wsdump::memory::Memory;
use wsdump::tls::{KeyLog, KeyStore};
use wsdump::ws::Limits;

struct Drop;

impl Emit for Drop {
    fn emit(&mut self, _dir: Dir, _kind: EventKind<'_>) -> io::Result<()> {
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let mut log = KeyLog::new();
    log.add_text(include_bytes!("../../samples/tls-wss.keylog"));
    let mut conv =
        Conversation::new(false, false, Limits::default()).with_keys(Some(KeyStore::from_log(log)));
    let mut mem = Memory::new(1 << 24);
    let mut at = [0u64; 2];
    let mut rest = data;
    while rest.len() >= 2 {
        let (flags, len) = (rest[0], rest[1] as usize);
        rest = &rest[2..];
        let dir = if flags & 1 == 0 { Dir::C2S } else { Dir::S2C };
        let i = dir.index();
        if flags & 2 != 0 {
            conv.gap(dir, at[i], len as u64, &mut mem, &mut Drop).unwrap();
            at[i] += len as u64;
            continue;
        }
        let piece = &rest[..len.min(rest.len())];
        rest = &rest[piece.len()..];
        conv.data(dir, at[i], piece, &mut mem, &mut Drop).unwrap();
        at[i] += piece.len() as u64;
        if flags & 4 != 0 {
            conv.end(dir, &mut mem, &mut Drop).unwrap();
        }
    }
    conv.end(Dir::C2S, &mut mem, &mut Drop).unwrap();
    conv.end(Dir::S2C, &mut mem, &mut Drop).unwrap();
    conv.release(&mut mem);
    assert_eq!(mem.used(), 0, "ledger not back at zero");
});
