//! Writes a capture's websocket sessions (and plain HTTP exchanges) as a HAR file that Chrome
//! DevTools can import: `cargo run --example har -- samples/workerman-chat.pcap > out.har`.
//! `--control` lists close/ping/pong frames too; `--limit BYTES` sets the memory held for
//! open connections' messages before they spill to a temporary file.

use std::io::{self, BufWriter};
use wsdump::analyzer::Config;
use wsdump::capture::file::CaptureFile;
use wsdump::engine::Pipeline;
use wsdump::event::{Event, Sink};
use wsdump::output::har::{HarOptions, HarWriter};

/// The HAR writer, noting the most it ever held in memory.
struct ToHar<W: io::Write>(HarWriter<W>, usize);

impl<W: io::Write> Sink for ToHar<W> {
    fn event(&mut self, ev: &Event<'_>) -> io::Result<bool> {
        self.0.event(ev)?;
        self.1 = self.1.max(self.0.held());
        Ok(true)
    }
    fn finish(&mut self) -> io::Result<()> {
        self.0.finish()
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut opts = HarOptions::default();
    let mut path = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--control" => opts.control_frames = true,
            "--limit" => opts.memory_limit = args.next().ok_or("--limit BYTES")?.parse()?,
            _ => path = Some(a),
        }
    }
    let path = path.ok_or("usage: har [--control] [--limit BYTES] FILE")?;
    let mut cap = CaptureFile::open(std::fs::File::open(&path)?)?;
    let out = BufWriter::new(io::stdout().lock());
    let mut sink = ToHar(HarWriter::new(out, opts)?, 0);
    // The writer is a sink: the pipeline finishes it (closing the JSON) at the end.
    let run = Pipeline::run(&mut cap, Config::default(), &mut sink)?;
    if let Some(e) = run.source_error {
        eprintln!("{path}: {e}");
    }
    eprintln!(
        "{} entries; at most {} bytes of messages held in memory",
        sink.0.entries(),
        sink.1
    );
    Ok(())
}
