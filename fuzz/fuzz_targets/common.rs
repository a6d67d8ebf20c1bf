//! Shared by the fuzz targets: the pipeline they all run (the binary's `engine::Pipeline`
//! over a `CaptureFile`), and the oracles that printed output must satisfy.
#![allow(dead_code)]

use std::io::Cursor;
use wsdump::analyzer::{Config, Stats};
use wsdump::capture::file::CaptureFile;
use wsdump::engine::Pipeline;
use wsdump::event::Sink;

/// Decodes `data` as a capture file into `sink`, the way the binary does (`Pipeline::run`).
/// `None` when the bytes do not open as a capture.
pub fn run_pipeline(data: &[u8], cfg: Config, sink: &mut dyn Sink) -> Option<Stats> {
    let mut cap = CaptureFile::open(Cursor::new(data.to_vec())).ok()?;
    let run = Pipeline::run(&mut cap, cfg, sink).expect("writing into memory cannot fail");
    if let Some(e) = run.source_error {
        assert!(!e.to_string().is_empty());
    }
    Some(run.stats)
}

/// Small limits, to reach the limit paths with small inputs.
pub fn tight(cfg: &mut Config) {
    cfg.limits.max_message = 100;
    cfg.limits.max_inflate = 1000;
    cfg.max_ooo_per_stream = 1000;
    cfg.max_memory = 64 * 1024;
    cfg.max_conns = 2;
}

/// Human output must be UTF-8 and must not contain anything a terminal would interpret:
/// no C0 control except newline and tab, no DEL, no C1, no bidi or invisible formatting
/// characters.
pub fn check_terminal_safe(out: &[u8]) {
    let s = std::str::from_utf8(out).expect("human output is not UTF-8");
    for (i, c) in s.char_indices() {
        let bad = match c {
            '\n' | '\t' => false,
            c if (c as u32) < 0x20 || c == '\x7f' => true,
            '\u{80}'..='\u{9f}' => true,
            '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{206f}' => true,
            '\u{feff}' | '\u{061c}' | '\u{00ad}' => true,
            _ => false,
        };
        if bad {
            let from = s[..i].rfind('\n').map_or(0, |n| n + 1);
            let line = &s[from..s[i..].find('\n').map_or(s.len(), |n| i + n)];
            panic!(
                "raw {:?} (U+{:04X}) in human output line {:?}",
                c, c as u32, line
            );
        }
    }
}

/// JSON lines: valid UTF-8, every line one JSON object with a "type".
pub fn check_json_lines(out: &[u8]) {
    let s = std::str::from_utf8(out).expect("JSON output is not UTF-8");
    for line in s.lines() {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("invalid JSON line ({e}): {line:?}"));
        assert!(
            v.get("type").and_then(|t| t.as_str()).is_some(),
            "JSON line without a type: {line:?}"
        );
    }
}
