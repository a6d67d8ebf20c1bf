//! Capture-file reader: arbitrary bytes as a pcap/pcapng file. Every packet handed out must
//! stay within the record limit; every error must format.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::Cursor;
use wsdump::capture::file::{CaptureFile, Flow, MAX_RECORD};
use wsdump::packet;

fuzz_target!(|data: &[u8]| {
    let mut cap = match CaptureFile::open(Cursor::new(data.to_vec())) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let mut n = 0usize;
    let r = cap.for_each_packet(|p| {
        assert!(p.data.len() <= MAX_RECORD);
        assert!(p.data.len() <= data.len());
        let _ = packet::decode(p.linktype, p.data);
        let _ = p.linktype.to_string();
        n += 1;
        Flow::Continue
    });
    assert!(cap.offset() <= data.len() as u64);
    if let Err(e) = r {
        let msg = e.to_string();
        assert!(!msg.is_empty());
    }
});
