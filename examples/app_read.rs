//! Reading a capture's application protocols with `wsdump::app` in a `Sink` of your own: the
//! wiring the engine does itself (src/annotate.rs). Prints one line per message a protocol reads.
//! `cargo run --example app_read -- samples/app/socketio.pcap [--app NAME]`
//!
//! Per connection: the path from the upgrade request and the subprotocol from the 101 go to
//! `app::claim`, asked again with each of the first few data messages until one claims (or
//! `--app NAME` forces a reader); every data message, the claiming one included, then goes
//! to the reader; binary messages of unclaimed connections get `app::payload::reading`; a
//! `Pairs` table per connection turns request/response pairs into latencies.

use std::collections::HashMap;
use std::io::{self, Write};
use wsdump::analyzer::Config;
use wsdump::app::{self, Annotator, AppMessage, Pairs, Side};
use wsdump::capture::file::CaptureFile;
use wsdump::engine::Pipeline;
use wsdump::event::{Dir, Event, EventKind, Opcode, Sink};

/// Data messages asked of `claim` before a connection is taken as no known protocol.
const CLAIM_TRIES: u32 = 4;

#[derive(Default)]
struct Conn {
    path: String,
    subprotocol: Option<String>,
    reader: Option<Box<dyn Annotator>>,
    tries: u32,
    pairs: Option<Pairs>,
    name: Option<String>,
}

struct Printer {
    forced: Option<String>,
    conns: HashMap<u64, Conn>,
}

impl Sink for Printer {
    fn event(&mut self, ev: &Event<'_>) -> io::Result<bool> {
        let Some(info) = ev.conn else {
            return Ok(true);
        };
        let c = self.conns.entry(info.id).or_default();
        match &ev.kind {
            EventKind::HttpRequest(r) => c.path = r.path.clone(),
            EventKind::HttpResponse(r) => c.subprotocol = r.subprotocol.clone(),
            EventKind::Message(m) if matches!(m.opcode, Opcode::Text | Opcode::Binary) => {
                let am = AppMessage {
                    side: if ev.dir == Dir::C2S {
                        Side::Client
                    } else {
                        Side::Server
                    },
                    text: m.text(),
                    payload: m.payload,
                    binary: m.opcode == Opcode::Binary,
                };
                if c.reader.is_none() {
                    if let Some(name) = &self.forced {
                        c.reader = app::by_name(name);
                    } else if c.tries < CLAIM_TRIES {
                        c.tries += 1;
                        c.reader = app::claim(c.subprotocol.as_deref(), &c.path, &am);
                    }
                }
                let (protocol, reading) = match c.reader.as_mut() {
                    Some(a) => (a.name(), a.read(&am)),
                    None if am.binary => ("binary", app::payload::reading(am.payload)),
                    None => ("", None),
                };
                let Some(r) = reading else {
                    return Ok(true);
                };
                if let Some(n) = &r.names_connection {
                    c.name = Some(n.clone());
                }
                let ts = i128::from(ev.ts.secs) * 1_000_000_000 + i128::from(ev.ts.nanos);
                let latency = r.pairing.as_ref().and_then(|p| {
                    c.pairs
                        .get_or_insert_with(|| Pairs::new(256))
                        .observe(p, ts)
                });
                let mut line = format!(
                    "#{} {} {} {}{}: {}",
                    info.id,
                    c.name.as_deref().unwrap_or(""),
                    ev.dir.as_str(),
                    protocol,
                    if r.heartbeat { " (heartbeat)" } else { "" },
                    r.text.escape_debug()
                );
                if let Some(ns) = latency {
                    line.push_str(&format!("  [{:.3} ms]", ns as f64 / 1e6));
                }
                writeln!(io::stdout().lock(), "{line}")?;
            }
            EventKind::End => {
                self.conns.remove(&info.id);
            }
            _ => {}
        }
        Ok(true)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: app_read FILE [--app NAME]")?;
    let forced = match (args.next().as_deref(), args.next()) {
        (Some("--app"), Some(n)) if app::by_name(&n).is_some() => Some(n),
        (None, _) => None,
        _ => return Err(format!("--app takes one of {}", app::NAMES.join(", ")).into()),
    };
    let mut cap = CaptureFile::open(std::fs::File::open(&path)?)?;
    let mut printer = Printer {
        forced,
        conns: HashMap::new(),
    };
    let cfg = Config {
        frames: false,
        ..Config::default()
    };
    Pipeline::run(&mut cap, cfg, &mut printer)?;
    Ok(())
}
