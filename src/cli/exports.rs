//! The hand-offs to other tools, beside the view: `--har` (a HAR for DevTools and HAR
//! readers) and `-w` (the packets: pcap as tcpdump writes it, or pcapng with a comment on
//! each packet that completed a message). Each is a sink fed the same events as the view,
//! before the display filters, and each leaves a complete file on every way out: the end of
//! the input, `-c`, Ctrl-C/SIGTERM (the pipeline finishes), and a closed standard output
//! (the sinks are dropped, and dropping finishes them).

use super::args::*;
use super::view::Out;
use std::fs::File;
use std::io::{self, BufWriter};
use std::sync::atomic::{AtomicBool, Ordering};
use wsdump::capture::RawPacket;
use wsdump::engine::Stage;
use wsdump::event::{Event, Sink};
use wsdump::output::har::{HarOptions, HarWriter};
use wsdump::output::packets::{PcapOut, PcapngOut};

/// SIGINT or SIGTERM arrived while a file was read with exports open.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(_sig: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// Reading a file, Ctrl-C and SIGTERM stop at the next packet rather than kill, so that the
/// HAR and the pcapng are finished. A second signal kills as usual (SA_RESETHAND).
pub(crate) fn stop_on_signals() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction with a handler that only stores to an atomic.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_stop as *const () as libc::sighandler_t;
            sa.sa_flags = libc::SA_RESTART | libc::SA_RESETHAND;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// Whether a stop signal arrived (see [`stop_on_signals`]).
pub(crate) fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

pub(crate) enum Packets {
    Pcap(PcapOut<BufWriter<File>>),
    // One per run: its size does not matter.
    Pcapng(Box<PcapngOut<BufWriter<File>>>),
}

#[derive(Default)]
pub(crate) struct Exports {
    pub(crate) har: Option<HarWriter<BufWriter<File>>>,
    pub(crate) packets: Option<Packets>,
    /// The run's TLS key store: the secrets it gave out go into `-w`'s pcapng.
    pub(crate) keys: Option<wsdump::tls::KeyStore>,
}

/// pcapng for `-w`: asked for with `-F pcapng` (tshark's flag) or `--pcapng`, or chosen by
/// the file's name (`.pcapng`, `.pcapng.gz` aside: no compression).
pub(crate) fn pcapng_wanted(args: &Args) -> bool {
    match args.write_format.as_deref() {
        Some(f) => f == "pcapng",
        None => {
            args.pcapng
                || args
                    .write
                    .as_deref()
                    .is_some_and(|p| p.to_ascii_lowercase().ends_with(".pcapng"))
        }
    }
}

/// Whether an export writes to standard output (`-w -`, `--har -`): the view is then not
/// printed, and `--stats` goes to stderr.
pub(crate) fn stdout_taken(args: &Args) -> bool {
    args.write.as_deref() == Some("-") || args.har.as_deref() == Some("-")
}

fn create(path: &str) -> io::Result<BufWriter<File>> {
    let f = if path == "-" {
        Ok(super::view::raw_stdout())
    } else {
        File::create(path)
    };
    f.map(|f| BufWriter::with_capacity(256 * 1024, f))
        .map_err(|e| io::Error::new(e.kind(), format!("{path}: {e}")))
}

impl Exports {
    /// Opens what the flags ask for. `packets`: whether `-w` is written here (live pcap is
    /// written by the live source as packets arrive). `live`: flush after every packet.
    pub(crate) fn open(args: &Args, packets: bool, live: bool, snaplen: u32) -> io::Result<Self> {
        if args.write.as_deref() == Some("-") && args.har.as_deref() == Some("-") {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "-w - and --har - both want standard output; give one of them a file",
            ));
        }
        let mut x = Exports::default();
        if let Some(path) = &args.har {
            let opts = HarOptions {
                redact: args.redact,
                community_id_seed: args.community_id_seed,
                ..HarOptions::default()
            };
            x.har = Some(HarWriter::new(create(path)?, opts)?);
        }
        if let Some(path) = args.write.as_deref().filter(|_| packets) {
            let out = create(path)?;
            x.packets = Some(if pcapng_wanted(args) {
                Packets::Pcapng(Box::new(PcapngOut::new(out, snaplen, live)?))
            } else {
                Packets::Pcap(PcapOut::new(out, snaplen, live))
            });
        }
        Ok(x)
    }

    /// Whether there is anything to write.
    pub(crate) fn any(&self) -> bool {
        self.har.is_some() || self.packets.is_some()
    }

    /// The view and the exports as one sink.
    pub(crate) fn with<'a>(&'a mut self, view: &'a mut Out) -> Tee<'a> {
        Tee {
            view,
            exports: self,
        }
    }
}

impl Sink for Exports {
    fn event(&mut self, ev: &Event<'_>) -> io::Result<bool> {
        if let Some(h) = &mut self.har {
            h.event(ev)?;
        }
        match &mut self.packets {
            Some(Packets::Pcapng(p)) => p.event(ev)?,
            Some(Packets::Pcap(p)) => p.event(ev)?,
            None => true,
        };
        Ok(true)
    }

    fn stage(&mut self, stage: Stage) -> io::Result<()> {
        match &mut self.packets {
            Some(Packets::Pcapng(p)) => p.stage(stage),
            Some(Packets::Pcap(p)) => p.stage(stage),
            None => Ok(()),
        }
    }

    fn captured(&mut self, packet: &RawPacket<'_>) -> io::Result<()> {
        match &mut self.packets {
            Some(Packets::Pcapng(p)) => {
                // A connection's secrets are known once its ClientHello was decoded: their
                // block goes in front of the packet written now, before the records they open.
                if let Some(keys) = &self.keys {
                    let lines = keys.take_new_used();
                    if !lines.is_empty() {
                        p.write_tls_keys(&lines)?;
                    }
                }
                p.captured(packet)
            }
            Some(Packets::Pcap(p)) => p.captured(packet),
            None => Ok(()),
        }
    }

    fn finish(&mut self) -> io::Result<()> {
        if let Some(h) = &mut self.har {
            h.finish()?;
        }
        match &mut self.packets {
            Some(Packets::Pcapng(p)) => p.finish(),
            Some(Packets::Pcap(p)) => p.finish(),
            None => Ok(()),
        }
    }
}

/// The exports, then the view: an export has every event even when the view fails (a closed
/// pipe), and the view's answer (`-c`) is the run's.
pub(crate) struct Tee<'a> {
    view: &'a mut Out,
    exports: &'a mut Exports,
}

impl Sink for Tee<'_> {
    fn event(&mut self, ev: &Event<'_>) -> io::Result<bool> {
        self.exports.event(ev)?;
        self.view.event(ev)
    }

    fn stage(&mut self, stage: Stage) -> io::Result<()> {
        self.exports.stage(stage)?;
        self.view.stage(stage)
    }

    fn captured(&mut self, packet: &RawPacket<'_>) -> io::Result<()> {
        self.exports.captured(packet)
    }

    fn finish(&mut self) -> io::Result<()> {
        self.exports.finish()?;
        self.view.finish()
    }
}
