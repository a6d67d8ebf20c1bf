//! Capture-file reader: arbitrary bytes as a pcap/pcapng file, read as the pipeline reads it
//! (`PacketSource::for_each`). Every packet handed out must stay within the record limit;
//! every error must format.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::Cursor;
use std::ops::ControlFlow;
use wsdump::capture::file::{CaptureFile, MAX_RECORD};
use wsdump::engine::PacketSource;
use wsdump::packet;

fuzz_target!(|data: &[u8]| {
    let mut cap = match CaptureFile::open(Cursor::new(data.to_vec())) {
        Ok(c) => c,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let r = cap.for_each(&mut |p| {
        assert!(p.data.len() <= MAX_RECORD);
        assert!(p.data.len() <= data.len());
        let _ = packet::decode(p.linktype, p.data);
        let _ = p.linktype.to_string();
        ControlFlow::Continue(())
    });
    assert!(cap.offset() <= data.len() as u64);
    if let Err(e) = r {
        assert!(!e.to_string().is_empty());
    }
});
