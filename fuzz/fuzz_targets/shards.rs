//! Differential: a capture decoded by one pipeline and by 2 and 3 threads sharing it
//! (`shard::run_file`) must print the same JSON, byte for byte. The memory budget, which is
//! divided among threads, is set out of reach; the connection table and the per-stream and
//! per-message limits, which are not divided, are tight on some inputs.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use std::io::Write;
use wsdump::analyzer::Config;
use wsdump::event::{Event, EventKind};
use wsdump::output::json::{JsonOptions, JsonPrinter};
use wsdump::shard::{self, Options, Render};

const OPTS: JsonOptions = JsonOptions {
    messages_only: false,
    verbose: true,
    community_id_seed: 0,
    redact: false,
    max_payload: None,
};

struct Json(JsonPrinter<std::io::Sink>);

impl Render for Json {
    fn render(&mut self, ev: &Event<'_>, out: &mut String) -> bool {
        self.0.render(ev, out);
        matches!(ev.kind, EventKind::Message(_))
    }
}

fuzz_target!(|data: &[u8]| {
    let mut cfg = Config {
        frames: true,
        max_memory: 1 << 30,
        ..Config::default()
    };
    if data.len() % 2 == 1 {
        cfg.limits.max_message = 100;
        cfg.limits.max_inflate = 1000;
        cfg.max_ooo_per_stream = 1000;
        cfg.max_conns = 2;
    }
    let mut one = JsonPrinter::new(Vec::new(), OPTS);
    if common::run_pipeline(data, cfg.clone(), &mut one).is_none() {
        return;
    }
    let one = one.into_inner();

    let path = std::env::temp_dir().join(format!("wsdump-fuzz-shards-{}", std::process::id()));
    std::fs::File::create(&path)
        .unwrap()
        .write_all(data)
        .unwrap();
    for threads in [2, 3] {
        let mut many = Vec::new();
        let make =
            || -> Box<dyn Render> { Box::new(Json(JsonPrinter::new(std::io::sink(), OPTS))) };
        let opts = Options {
            threads,
            line_mode: false,
            limit: None,
        };
        shard::run_file(&path, &cfg, opts, &make, &mut many, None).unwrap();
        if one != many {
            panic!(
                "{threads} threads differ from one:\n--- one\n{}\n--- {threads}\n{}",
                String::from_utf8_lossy(&one),
                String::from_utf8_lossy(&many)
            );
        }
    }
    let _ = std::fs::remove_file(&path);
});
