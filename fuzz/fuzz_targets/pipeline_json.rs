//! The whole pipeline into the JSON printer: every line must parse as JSON, valid UTF-8.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use wsdump::analyzer::Config;
use wsdump::output::json::{JsonOptions, JsonPrinter};

fuzz_target!(|data: &[u8]| {
    let sel = data.len() % 4;
    let opts = JsonOptions {
        messages_only: sel == 1,
        verbose: sel >= 2,
        ..JsonOptions::default()
    };
    let mut cfg = Config {
        frames: opts.verbose,
        ..Config::default()
    };
    if sel == 3 {
        common::tight(&mut cfg);
    }
    let mut out = JsonPrinter::new(Vec::new(), opts);
    if common::run_pipeline(data, cfg, &mut out).is_some() {
        common::check_json_lines(&out.into_inner());
    }
});
