//! The whole pipeline: bytes → `CaptureFile` → `Pipeline` → `HumanPrinter` into a `Vec`. The
//! output must be valid UTF-8 and terminal-safe. Printer options come from the input's
//! length, so the seeds stay plain capture files.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use wsdump::analyzer::Config;
use wsdump::output::Palette;
use wsdump::output::human::{HumanOptions, HumanPrinter};

fuzz_target!(|data: &[u8]| {
    let sel = data.len() % 8;
    let opts = HumanOptions {
        messages_only: sel & 1 != 0,
        verbose: sel & 2 != 0,
        hex: sel & 4 != 0,
        // A terminal's width cuts lines: the cut must stay terminal-safe too.
        width: (data.len() % 3 == 0).then_some(80),
        ..HumanOptions::default()
    };
    let mut cfg = Config {
        frames: opts.verbose,
        ..Config::default()
    };
    if sel == 7 {
        common::tight(&mut cfg);
    }
    let mut out = HumanPrinter::new(Vec::new(), Palette::plain(), opts);
    if common::run_pipeline(data, cfg, &mut out).is_some() {
        common::check_terminal_safe(&out.into_inner());
    }
});
