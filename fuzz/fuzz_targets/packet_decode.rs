//! Link, IP and TCP parsing for every supported link type (and an unsupported one).
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsdump::capture::LinkType;
use wsdump::packet::{self, fmt_addr};

const TYPES: [u32; 11] = [0, 1, 101, 12, 14, 108, 113, 228, 229, 276, 147];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let lt = LinkType(TYPES[sel as usize % TYPES.len()]);
    match packet::decode(lt, rest) {
        Ok(seg) => {
            assert!(seg.payload.len() <= rest.len());
            assert!(seg.payload_len as usize >= seg.payload.len());
            let _ = (fmt_addr(&seg.src), fmt_addr(&seg.dst), seg.is_truncated());
            let _ = format!("{:?}", seg.options);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
