//! The application-protocol readers (`wsdump::app`): the first byte picks a reader, the rest
//! is a conversation of messages, each `[flags][len: u16 BE][payload]` (flags bit 0: the
//! server sent it; bit 1: binary). Every message goes to the reader, to `claim` and to the
//! MessagePack/CBOR reading: no panic, bounded text and memory.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsdump::app::{self, AppMessage, Pairs, Side};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, mut rest)) = data.split_first() else {
        return;
    };
    let name = app::NAMES[usize::from(pick) % app::NAMES.len()];
    let mut reader = app::by_name(name).unwrap();
    let mut pairs = Pairs::new(16);
    let mut ts = 0i128;
    while rest.len() >= 3 {
        let flags = rest[0];
        let len = usize::from(u16::from_be_bytes([rest[1], rest[2]])).min(rest.len() - 3);
        let payload = &rest[3..3 + len];
        rest = &rest[3 + len..];
        let binary = flags & 2 != 0;
        let text = if binary {
            None
        } else {
            std::str::from_utf8(payload).ok()
        };
        let m = AppMessage {
            side: if flags & 1 != 0 {
                Side::Server
            } else {
                Side::Client
            },
            text,
            payload,
            binary: binary || text.is_none(),
        };
        if let Some(r) = reader.read(&m) {
            assert!(r.text.len() <= 2010, "{name}: {}", r.text.len());
            assert!(r.json.is_object());
            if let Some(p) = &r.pairing {
                ts += 1;
                let _ = pairs.observe(p, ts);
            }
        }
        assert!(reader.memory() <= 160 * 1024, "{name}: {}", reader.memory());
        assert!(pairs.len() <= 16);
        let _ = app::claim(None, "/", &m);
        let _ = app::claim(Some("mqtt"), "/socket.io/?EIO=3", &m);
        if let Some(r) = app::payload::reading(payload) {
            assert!(r.text.len() <= app::payload::MAX_TEXT + 16);
        }
    }
});
