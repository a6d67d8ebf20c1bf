//! Using wsdump as a library: decode a capture file and print its messages as JSON lines.
//! `cargo run --example decode -- samples/workerman-chat.pcap [PORT...]`

use std::io::{self, BufWriter};
use wsdump::analyzer::{Analyzer, Config};
use wsdump::capture::file::{CaptureFile, Flow};
use wsdump::output::json::{JsonOptions, JsonPrinter};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: decode FILE [PORT...]")?;
    let ports = args.map(|p| p.parse()).collect::<Result<Vec<u16>, _>>()?;
    let mut cap = CaptureFile::open(std::fs::File::open(&path)?)?;
    let mut an = Analyzer::new(Config {
        ports,
        frames: false,
        ..Config::default()
    });
    let out = BufWriter::new(io::stdout().lock());
    let mut printer = JsonPrinter::new(
        out,
        JsonOptions {
            messages_only: false,
            verbose: false,
        },
    );
    let mut last = Default::default();
    let mut err = None;
    cap.for_each_packet(|p| {
        last = p.ts;
        match an.packet(p, &mut printer) {
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
    an.finish(last, &mut printer)?;
    printer.flush()?;
    Ok(())
}
