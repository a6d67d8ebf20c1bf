//! The whole pipeline into the JSON printer: every line must parse as JSON, valid UTF-8.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use std::io::Cursor;
use wsdump::analyzer::{Analyzer, Config};
use wsdump::capture::file::{CaptureFile, Flow};
use wsdump::output::json::{JsonOptions, JsonPrinter};

fuzz_target!(|data: &[u8]| {
    let Ok(mut cap) = CaptureFile::open(Cursor::new(data.to_vec())) else {
        return;
    };
    let sel = data.len() % 4;
    let opts = JsonOptions {
        messages_only: sel == 1,
        verbose: sel >= 2,
    };
    let mut cfg = Config {
        frames: opts.verbose,
        ..Config::default()
    };
    if sel == 3 {
        cfg.limits.max_message = 100;
        cfg.limits.max_inflate = 1000;
        cfg.max_ooo_per_stream = 1000;
        cfg.max_ooo_total = 2000;
        cfg.max_conns = 2;
    }
    let mut an = Analyzer::new(cfg);
    let mut out = JsonPrinter::new(Vec::new(), opts);
    let mut last = Default::default();
    let _ = cap.for_each_packet(|p| {
        last = p.ts;
        an.packet(p, &mut out).unwrap();
        Flow::Continue
    });
    an.finish(last, &mut out).unwrap();
    common::check_json_lines(&out.into_inner());
});
