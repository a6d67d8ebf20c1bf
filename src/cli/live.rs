//! Live capture: sockets, privileges, signals, and the loop over what the readers deliver.

use super::args::*;
use super::view::*;
use super::*;
use std::fs::File;
use std::io::{self, BufWriter};
use std::ops::ControlFlow;
use std::process::ExitCode;
use wsdump::capfilter::CaptureFilter;
use wsdump::capture::live;
use wsdump::capture::writer::PcapWriter;
use wsdump::engine::Pipeline;
use wsdump::memory::Pool;

/// Live capture: sockets opened (the only step needing privilege), privileges dropped, one
/// reader thread per interface filling the queue this thread decodes from (it runs the
/// analyzer and owns the printer). Stops at `-c`, SIGINT or SIGTERM, then prints a
/// tcpdump-like summary on stderr.
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
    let opts = live::Options {
        snaplen,
        // tcpdump's -B is in KiB.
        ring_bytes: args
            .buffer_size
            .map_or(live::DEFAULT_RING, |k| k.saturating_mul(1024)),
        queue_bytes: args.capture_queue,
        copy_limit: std::env::var("WSDUMP_READ_BUFFER")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(live::SNAPLEN as usize),
    };
    let opened = live::select(args.interface.as_deref())
        .and_then(|nics| live::Capture::open_with(&nics, explicit, &kernel_filter, &opts));
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
    let listening = format!(
        "wsdump: listening on {}, {ports}, snapshot length {} bytes, buffer {} KiB",
        names.join(", "),
        snaplen,
        cap.ring_bytes() >> 10,
    );
    let mut cfg = make_config(args, &filter);
    cfg.keys = Some(keys.clone());
    exports.keys = Some(keys);
    // Several decoding threads only when asked for: the reader threads need a core too.
    // Not with -c: the threads' counts are lost when the merge cuts the run short, and a
    // handful of messages needs no second core.
    if args.threads > 1 && shareable(args) && args.count.is_none() {
        return run_threads(args, cfg, cap, writer, &listening);
    }
    let mut sink = if super::exports::stdout_taken(args) {
        make_sink_to(args, File::options().write(true).open("/dev/null")?)
    } else {
        make_sink(args)
    };
    let mut pipeline = Pipeline::new(cfg);
    let mut live = Live {
        cap: &mut cap,
        ifaces: &ifaces,
        writer: writer.as_mut(),
        failed: false,
        charged: 0,
        peak: 0,
    };
    live.budget(&mut pipeline);
    live.cap.start();
    eprintln!("{listening}");

    // Output is flushed after each chunk of packets: at once when traffic is light (a chunk
    // is then a packet or a few), in large writes when it is heavy. -l/-U: every packet.
    sink.line_mode = args.line_buffered || args.packet_buffered;
    let result = live.run(&mut pipeline, &mut sink, &mut exports);
    let (failed, charged, queue_peak) = (live.failed, live.charged, live.peak);
    let per_iface = cap.stop();
    if let Some(w) = &mut writer {
        w.flush()?;
    }
    // A closed stdout (`| head`) ends wsdump quietly.
    result?;
    pipeline.memory_mut().refund(Pool::Capture, charged);
    let s = pipeline.finish(&mut exports.with(&mut sink))?;
    summary(&ifaces, &per_iface, &s, queue_peak);
    Ok(exit_status(
        args,
        failed,
        s.websocket_connections,
        sink.messages,
    ))
}

/// Live capture decoded on `--threads` threads, each its share of the connections, their
/// output merged in capture order as with files. The queue gets a fixed part of
/// `--max-memory` (half, at most `--capture-queue`), the threads share the rest.
fn run_threads(
    args: &Args,
    mut cfg: wsdump::analyzer::Config,
    mut cap: live::Capture,
    mut writer: Option<PcapWriter<BufWriter<File>>>,
    listening: &str,
) -> io::Result<ExitCode> {
    let n = args.threads;
    let queue = (cfg.max_memory / 2).min(cap.queue_bytes());
    cap.set_queue_budget(queue);
    cfg.max_memory -= queue;
    let ifaces: std::sync::Arc<[live::Interface]> = cap.interfaces().into();
    let mut senders = Vec::new();
    let mut receivers = Vec::new();
    for _ in 0..n {
        let (tx, rx) = std::sync::mpsc::channel();
        senders.push(tx);
        receivers.push(std::sync::Mutex::new(Some(rx)));
    }
    let open = |i: usize| -> Result<wsdump::shard::Source<'static>, _> {
        let rx = receivers[i]
            .lock()
            .expect("receivers")
            .take()
            .expect("once");
        Ok(Box::new(live::dispatch::ChunkSource::new(rx, ifaces.clone())) as _)
    };
    let stopper = cap.stopper();
    cap.start();
    eprintln!("{listening}");
    let mut out = BufWriter::with_capacity(
        256 * 1024,
        if args.write.as_deref() == Some("-") {
            File::options().write(true).open("/dev/null")?
        } else {
            raw_stdout()
        },
    );
    let opts = wsdump::shard::Options {
        threads: n,
        line_mode: true,
        limit: None,
    };
    let make = || -> Box<dyn wsdump::shard::Render> { Box::new(make_render(args)) };
    let (done, dispatched) = std::thread::scope(|scope| {
        let cap = &mut cap;
        let writer = &mut writer;
        let dispatcher = scope.spawn(move || dispatch(cap, senders, writer));
        let done = wsdump::shard::run_sources(&cfg, opts, &open, &make, &mut out);
        // The decoding threads are done (the readers ended, or the output was closed): the
        // readers stop, and with them the dispatcher.
        stopper.request();
        (done, dispatcher.join())
    });
    let failed = match dispatched {
        Ok(r) => r?,
        Err(_) => return Err(io::Error::other("the dispatching thread failed")),
    };
    let per_iface = cap.stop();
    let done = done?;
    out.flush()?;
    summary(cap.interfaces(), &per_iface, &done.stats, queue);
    Ok(exit_status(
        args,
        failed,
        done.stats.websocket_connections,
        done.messages,
    ))
}

/// The dispatcher: every chunk to every decoding thread (saved first with `-w`); returns
/// whether a reader failed.
fn dispatch(
    cap: &mut live::Capture,
    senders: Vec<std::sync::mpsc::Sender<std::sync::Arc<live::dispatch::Shared>>>,
    writer: &mut Option<PcapWriter<BufWriter<File>>>,
) -> io::Result<bool> {
    let ifaces = cap.interfaces().to_vec();
    let mut failed = false;
    while let Some(ev) = cap.next_event() {
        match ev {
            live::Event::Chunk(chunk) => {
                if let Some(w) = writer {
                    for item in chunk.items() {
                        if let live::Item::Packet {
                            iface,
                            ts,
                            orig_len,
                            data,
                        } = item
                        {
                            w.write(&ifaces[iface].raw(ts, orig_len, data))?;
                        }
                    }
                    w.flush()?;
                }
                let shared = cap.share(chunk);
                for tx in &senders {
                    let _ = tx.send(shared.clone());
                }
            }
            live::Event::Error { iface, err } => {
                eprintln!("wsdump: {}: {err}", ifaces[iface].name);
                failed = true;
            }
            live::Event::Signal(_) => cap.request_stop(),
            live::Event::Ended(_) => {}
        }
    }
    Ok(failed)
}

/// The summary on stderr, like tcpdump's, with wsdump's own drops and what was decoded.
fn summary(
    ifaces: &[live::Interface],
    per_iface: &[live::IfaceStats],
    s: &wsdump::analyzer::Stats,
    queue_peak: usize,
) {
    let mut total = live::IfaceStats::default();
    for t in per_iface {
        total.received += t.received;
        total.kernel_dropped += t.kernel_dropped;
        total.read += t.read;
        total.queue_dropped += t.queue_dropped;
        total.queue_dropped_bytes += t.queue_dropped_bytes;
    }
    let plural = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    if ifaces.len() > 1 {
        for (i, t) in ifaces.iter().zip(per_iface) {
            eprintln!(
                "{}: {} received by filter, {} dropped by kernel, {} dropped by wsdump",
                i.name,
                plural(t.received, "packet", "packets"),
                t.kernel_dropped,
                t.queue_dropped
            );
        }
    }
    eprintln!(
        "{}",
        plural(s.packets, "packet captured", "packets captured")
    );
    eprintln!(
        "{}",
        plural(
            total.received,
            "packet received by filter",
            "packets received by filter"
        )
    );
    eprintln!(
        "{}",
        plural(
            total.kernel_dropped,
            "packet dropped by kernel",
            "packets dropped by kernel"
        )
    );
    let queue_drops = plural(
        total.queue_dropped,
        "packet dropped by wsdump",
        "packets dropped by wsdump",
    );
    if total.queue_dropped > 0 {
        eprintln!(
            "{queue_drops} ({} bytes on the wire): decoding or printing fell behind and the \
             queue was full ({} KiB at most; --capture-queue, --max-memory)",
            total.queue_dropped_bytes,
            queue_peak >> 10
        );
    } else {
        eprintln!("{queue_drops}");
    }
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
}

/// The decoding thread's loop over what the readers deliver: each packet saved first with
/// `-w`, then decoded; each record of a drop reported where it was; output flushed after
/// each chunk. A stop signal lets the readers drain what the kernel holds, then ends.
struct Live<'a> {
    cap: &'a mut live::Capture,
    ifaces: &'a [live::Interface],
    writer: Option<&'a mut PcapWriter<BufWriter<File>>>,
    /// A reader failed (it said why on stderr).
    failed: bool,
    /// What the queue's chunks are charged to the ledger now, and the most they held.
    charged: usize,
    peak: usize,
}

impl Live<'_> {
    /// Charges the ledger for the queue's chunks, and lets the queue hold three quarters of
    /// what decoding does not use: the other quarter stays for decoding (a burst is also
    /// when out-of-order segments and long messages need room).
    fn budget(&mut self, pipeline: &mut Pipeline) {
        let held = self.cap.queue_held();
        let m = pipeline.memory_mut();
        if held > self.charged {
            // Already allocated by the readers, within the budget given last time.
            m.force(Pool::Capture, held - self.charged);
        } else {
            m.refund(Pool::Capture, self.charged - held);
        }
        self.charged = held;
        self.peak = self.peak.max(held);
        self.cap.set_queue_budget((held + m.available()) / 4 * 3);
    }

    fn run(
        &mut self,
        pipeline: &mut Pipeline,
        sink: &mut Out,
        exports: &mut super::exports::Exports,
    ) -> io::Result<()> {
        while let Some(ev) = self.cap.next_event() {
            match ev {
                live::Event::Chunk(chunk) => {
                    let flow = self.chunk(&chunk, pipeline, &mut exports.with(sink));
                    self.cap.recycle(chunk);
                    self.budget(pipeline);
                    if let Some(w) = &mut self.writer {
                        w.flush()?;
                    }
                    sink.flush()?;
                    if flow?.is_break() {
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

    fn chunk(
        &mut self,
        chunk: &live::Chunk,
        pipeline: &mut Pipeline,
        sink: &mut dyn wsdump::event::Sink,
    ) -> io::Result<ControlFlow<()>> {
        for item in chunk.items() {
            let flow = match item {
                live::Item::Packet {
                    iface,
                    ts,
                    orig_len,
                    data,
                } => {
                    let raw = self.ifaces[iface].raw(ts, orig_len, data);
                    if let Some(w) = &mut self.writer {
                        w.write(&raw)?;
                    }
                    pipeline.packet(&raw, sink)?
                }
                live::Item::Dropped { ts, dropped, .. } => pipeline.dropped(ts, dropped, sink)?,
            };
            if flow.is_break() {
                return Ok(flow);
            }
        }
        Ok(ControlFlow::Continue(()))
    }
}
