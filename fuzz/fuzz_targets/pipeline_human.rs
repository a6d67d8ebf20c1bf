//! The whole pipeline: bytes → CaptureFile → Analyzer → HumanPrinter into a Vec. The output
//! must be valid UTF-8 and terminal-safe. Printer options come from the input's length, so
//! the seeds stay plain capture files.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use std::io::Cursor;
use wsdump::analyzer::{Analyzer, Config};
use wsdump::capture::file::{CaptureFile, Flow};
use wsdump::output::Palette;
use wsdump::output::human::{HumanOptions, HumanPrinter};

fuzz_target!(|data: &[u8]| {
    let Ok(mut cap) = CaptureFile::open(Cursor::new(data.to_vec())) else {
        return;
    };
    let sel = data.len() % 8;
    let opts = HumanOptions {
        messages_only: sel & 1 != 0,
        verbose: sel & 2 != 0,
        hex: sel & 4 != 0,
    };
    let mut cfg = Config {
        frames: opts.verbose,
        ..Config::default()
    };
    if sel == 7 {
        // Small limits sometimes, to reach the limit paths with small inputs.
        cfg.limits.max_message = 100;
        cfg.limits.max_inflate = 1000;
        cfg.max_ooo_per_stream = 1000;
        cfg.max_ooo_total = 2000;
        cfg.max_conns = 2;
    }
    let mut an = Analyzer::new(cfg);
    let mut out = HumanPrinter::new(Vec::new(), Palette::plain(), opts);
    let mut last = Default::default();
    let _ = cap.for_each_packet(|p| {
        last = p.ts;
        an.packet(p, &mut out).unwrap();
        Flow::Continue
    });
    an.finish(last, &mut out).unwrap();
    common::check_terminal_safe(&out.into_inner());
});
