//! Live capture: sockets, privileges, signals, and the loop over what the readers deliver.

use super::args::*;
use super::view::*;
use super::*;
use std::fs::File;
use std::io::{self, BufWriter};
use std::ops::ControlFlow;
use std::process::ExitCode;
use wsdump::capfilter::CaptureFilter;
use wsdump::capture::RawPacket;
use wsdump::capture::live;
use wsdump::capture::writer::PcapWriter;
use wsdump::engine::{PacketSource, Pipeline};

/// Live capture: sockets opened (the only step needing privilege), privileges dropped, one
/// reader thread per interface feeding this thread, which runs the analyzer and owns the
/// printer. Output is flushed after every packet. Stops at `-c`, SIGINT or SIGTERM, then
/// prints a tcpdump-like summary on stderr.
pub(crate) fn run_live(args: &Args, filter: CaptureFilter) -> io::Result<ExitCode> {
    // Before any thread exists, so that only the signal thread receives them.
    live::block_stop_signals();
    let keys = match key_store(args, true) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("wsdump: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let explicit = args.interface.as_deref().is_some_and(|n| n != "any");
    // tcpdump's -s: 0 is the default; wsdump reads at most READ_BUFFER bytes of a packet.
    let snaplen = match args.snaplen {
        None | Some(0) => live::SNAPLEN,
        Some(n) if n > live::SNAPLEN => {
            eprintln!(
                "wsdump: -s {n}: wsdump reads at most {} bytes of a packet; using that",
                live::SNAPLEN
            );
            live::SNAPLEN
        }
        Some(n) => n,
    };
    let kernel_filter = filter.clone().and_ports(&args.ports);
    let opened = live::select(args.interface.as_deref()).and_then(|nics| {
        let read_buffer = std::env::var("WSDUMP_READ_BUFFER")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(live::READ_BUFFER);
        live::Capture::open_with(&nics, explicit, &kernel_filter, snaplen, read_buffer)
    });
    let mut cap = match opened {
        Ok(c) => c,
        Err(e) => {
            eprintln!("wsdump: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let ifaces = cap.interfaces().to_vec();
    for i in ifaces.iter().filter(|i| !i.up) {
        eprintln!("wsdump: warning: {} is down; capturing anyway", i.name);
    }
    // pcapng is written by the exports, after each packet's events, for its comments.
    let pcapng = super::exports::pcapng_wanted(args);
    let mut writer = match &args.write {
        None => None,
        Some(_) if pcapng => None,
        Some(path) => {
            let lt = ifaces[0].linktype;
            if let Some(other) = ifaces.iter().find(|i| i.linktype != lt) {
                eprintln!(
                    "wsdump: -w: {} ({}) and {} ({}) have different link types and a pcap file \
                     holds one; choose the interface with -i",
                    ifaces[0].name,
                    lt.name(),
                    other.name,
                    other.linktype.name()
                );
                return Ok(ExitCode::from(2));
            }
            // `-w -`: the packets go to standard output, as with tcpdump, and the decoded view
            // is not printed (it would be mixed into the pcap stream).
            let f = match if path == "-" {
                Ok(raw_stdout())
            } else {
                File::create(path)
            } {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("wsdump: {path}: {e}");
                    return Ok(ExitCode::from(2));
                }
            };
            Some(PcapWriter::new(BufWriter::new(f), lt, true, snaplen)?)
        }
    };
    let mut exports = match super::exports::Exports::open(args, pcapng, true, snaplen) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("wsdump: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    live::drop_privileges();

    let mut sink = if super::exports::stdout_taken(args) {
        make_sink_to(args, File::options().write(true).open("/dev/null")?)
    } else {
        make_sink(args)
    };
    let names: Vec<String> = ifaces
        .iter()
        .map(|i| format!("{} ({})", i.name, i.linktype.name()))
        .collect();
    let mut ports = if args.ports.is_empty() {
        "all TCP ports".to_string()
    } else {
        let p: Vec<String> = args.ports.iter().map(u16::to_string).collect();
        format!("port {}", p.join(","))
    };
    if filter.expr.is_some() {
        ports = format!("filter \"{kernel_filter}\"");
    }
    cap.start();
    eprintln!(
        "wsdump: listening on {}, {ports}, snapshot length {} bytes",
        names.join(", "),
        snaplen
    );

    sink.line_mode = true;
    let mut src = LiveSource {
        cap: &mut cap,
        ifaces: &ifaces,
        writer: writer.as_mut(),
        failed: false,
    };
    let mut cfg = make_config(args, &filter);
    cfg.keys = Some(keys.clone());
    exports.keys = Some(keys);
    let result = Pipeline::run(&mut src, cfg, &mut exports.with(&mut sink));
    let failed = src.failed;
    let kernel = cap.stop();
    if let Some(w) = &mut writer {
        w.flush()?;
    }
    // A closed stdout (`| head`) ends wsdump quietly.
    let run = result?;
    if let Some(e) = run.source_error {
        return Err(e);
    }
    let s = &run.stats;
    let plural = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    eprintln!(
        "{}",
        plural(s.packets, "packet captured", "packets captured")
    );
    eprintln!(
        "{}",
        plural(
            kernel.received,
            "packet received by filter",
            "packets received by filter"
        )
    );
    eprintln!(
        "{}",
        plural(
            kernel.dropped,
            "packet dropped by kernel",
            "packets dropped by kernel"
        )
    );
    eprintln!(
        "{}, {}, {}, {}",
        plural(s.connections, "connection", "connections"),
        plural(
            s.websocket_connections,
            "websocket connection",
            "websocket connections"
        ),
        plural(s.messages, "message decoded", "messages decoded"),
        plural(s.gaps, "gap", "gaps"),
    );
    Ok(exit_status(
        args,
        failed,
        s.websocket_connections,
        sink.messages,
    ))
}

/// Live capture as a packet source: packets as the readers deliver them, each saved first
/// with `-w`; a stop signal lets the readers drain what the kernel holds, then ends.
pub(crate) struct LiveSource<'a> {
    cap: &'a mut live::Capture,
    ifaces: &'a [live::Interface],
    writer: Option<&'a mut PcapWriter<BufWriter<File>>>,
    /// A reader failed (it said why on stderr).
    failed: bool,
}

impl PacketSource for LiveSource<'_> {
    type Error = io::Error;
    fn for_each(&mut self, f: &mut dyn FnMut(&RawPacket<'_>) -> ControlFlow<()>) -> io::Result<()> {
        while let Some(ev) = self.cap.next_event() {
            match ev {
                live::Event::Packet(p) => {
                    let raw = p.raw(self.ifaces);
                    if let Some(w) = &mut self.writer {
                        w.write(&raw)?;
                        w.flush()?;
                    }
                    if f(&raw).is_break() {
                        break;
                    }
                }
                live::Event::Error { iface, err } => {
                    eprintln!("wsdump: {}: {err}", self.ifaces[iface].name);
                    self.failed = true;
                }
                // Ctrl-C or SIGTERM: decode what the kernel already holds, then stop.
                live::Event::Signal(_) => self.cap.request_stop(),
                live::Event::Ended(_) => {}
            }
        }
        Ok(())
    }
}
