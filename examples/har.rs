//! Writes a capture's websocket sessions (and plain HTTP exchanges) as a HAR file that Chrome
//! DevTools can import: `cargo run --example har -- samples/workerman-chat.pcap > out.har`.
//! `--control` lists close/ping/pong frames too; `--limit BYTES` sets the memory held for
//! open connections' messages before they spill to a temporary file.

use std::io::{self, BufWriter};
use wsdump::analyzer::{Analyzer, Config};
use wsdump::capture::file::{CaptureFile, Flow};
use wsdump::event::{Event, Sink};
use wsdump::output::har::{HarOptions, HarWriter};

struct ToHar<W: io::Write>(HarWriter<W>, usize);

impl<W: io::Write> Sink for ToHar<W> {
    fn event(&mut self, ev: &Event<'_>) -> io::Result<()> {
        self.0.event(ev)?;
        self.1 = self.1.max(self.0.held());
        Ok(())
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
    let mut an = Analyzer::new(Config::default());
    let out = BufWriter::new(io::stdout().lock());
    let mut sink = ToHar(HarWriter::new(out, opts)?, 0);
    let mut last = Default::default();
    let mut err = None;
    cap.for_each_packet(|p| {
        last = p.ts;
        match an.packet(p, &mut sink) {
            Ok(()) => Flow::Continue,
            Err(e) => {
                err = Some(e);
                Flow::Stop
            }
        }
    })?;
    if let Some(e) = err {
        return Err(e.into());
    }
    an.finish(last, &mut sink)?;
    sink.0.finish()?;
    eprintln!(
        "{} entries; at most {} bytes of messages held in memory",
        sink.0.entries(),
        sink.1
    );
    Ok(())
}
