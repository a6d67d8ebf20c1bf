//! Using wsdump as a library: decode a capture file through the pipeline and print its
//! messages as JSON lines, then a count of what was found.
//! `cargo run --example decode -- samples/workerman-chat.pcap [PORT...]`

use std::io::{self, BufWriter};
use wsdump::analyzer::Config;
use wsdump::capture::file::CaptureFile;
use wsdump::engine::Pipeline;
use wsdump::output::json::{JsonOptions, JsonPrinter};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: decode FILE [PORT...]")?;
    let ports = args.map(|p| p.parse()).collect::<Result<Vec<u16>, _>>()?;
    let mut file = CaptureFile::open(std::fs::File::open(&path)?)?;
    let cfg = Config {
        ports,
        frames: false,
        ..Config::default()
    };
    let out = BufWriter::new(io::stdout().lock());
    let mut printer = JsonPrinter::new(out, JsonOptions::default());
    // The printer is a sink: packets in, events out, the printer finished at the end.
    let run = Pipeline::run(&mut file, cfg, &mut printer)?;
    if let Some(e) = run.source_error {
        eprintln!("{path}: {e}");
    }
    eprintln!(
        "{} websocket connections, {} messages, peak memory {} bytes",
        run.stats.websocket_connections, run.stats.messages, run.stats.peak_memory
    );
    Ok(())
}
