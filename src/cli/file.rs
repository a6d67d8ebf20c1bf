//! Decoding a capture file or standard input, on one thread or several, with progress.

use super::args::*;
use super::view::*;
use super::*;
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::ops::ControlFlow;
use std::process::ExitCode;
use wsdump::capfilter::CaptureFilter;
use wsdump::capture::RawPacket;
use wsdump::capture::file::CaptureFile;
use wsdump::engine::{PacketSource, Pipeline};

pub(crate) fn run_file(args: &Args, path: &str, filter: CaptureFilter) -> io::Result<ExitCode> {
    let input: Box<dyn io::Read + Send> = if path == "-" {
        Box::new(io::stdin())
    } else {
        match File::open(path) {
            Ok(f) => Box::new(f),
            Err(e) => {
                eprintln!("wsdump: {path}: {e}");
                return Ok(ExitCode::from(2));
            }
        }
    };
    let mut cap = match CaptureFile::open(input) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("wsdump: {path}: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let keys = match key_store(args, false) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("wsdump: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    // The file's Decryption Secrets Blocks join the --keylog secrets.
    cap.use_keys(keys.clone());

    let line_mode = args.line_buffered || stdout_wants_lines();
    let mut cfg = make_config(args, &filter);
    cfg.keys = Some(keys.clone());
    let threads = match args.threads {
        0 => wsdump::shard::auto_threads(),
        n => n,
    };
    // Standard input and pipes can be read once only; several threads read a file each.
    let regular = path != "-" && std::fs::metadata(path).is_ok_and(|m| m.is_file());
    let shared = threads > 1 && regular && shareable(args);
    let mut exports =
        super::exports::Exports::open(args, true, false, wsdump::capture::live::SNAPLEN)?;
    exports.keys = Some(keys.clone());
    let mut sink = match (shared, super::exports::stdout_taken(args)) {
        (true, _) => None,
        (false, false) => Some(make_sink(args)),
        (false, true) => Some(make_sink_to(
            args,
            File::options().write(true).open("/dev/null")?,
        )),
    };
    let (stats, read, shown) = match &mut sink {
        None => {
            drop(cap);
            let mut progress = Progress::new(path);
            let mut out = BufWriter::with_capacity(256 * 1024, raw_stdout());
            let opts = wsdump::shard::Options {
                threads,
                line_mode,
                limit: args.count,
            };
            let make = || -> Box<dyn wsdump::shard::Render> { Box::new(make_render(args)) };
            let done = wsdump::shard::run_file(
                std::path::Path::new(path),
                &cfg,
                opts,
                &make,
                &mut out,
                Some(Box::new(move |len| progress.packet(len))),
            )?;
            out.flush()?;
            (
                done.stats,
                done.read_error.map_or(Ok(()), Err),
                done.messages,
            )
        }
        Some(sink) => {
            sink.line_mode = line_mode;
            if exports.any() {
                super::exports::stop_on_signals();
            }
            let mut src = WithProgress {
                inner: cap,
                progress: Progress::new(path),
            };
            let run = Pipeline::run(&mut src, cfg, &mut exports.with(sink))?;
            (
                run.stats,
                run.source_error.map_or(Ok(()), Err),
                sink.messages,
            )
        }
    };
    if let Some(l) = stats.unsupported_link {
        eprintln!("wsdump: {path}: unsupported link type {l}; its packets were not decoded");
    }
    let mut failed = stats.unsupported_link.is_some();
    if let Err(e) = read {
        eprintln!("wsdump: {path}: {e}");
        failed = true;
    }
    Ok(exit_status(
        args,
        failed,
        stats.websocket_connections,
        shown,
    ))
}

/// A source whose reading shows progress (a large file read on a terminal).
pub(crate) struct WithProgress<S> {
    inner: S,
    progress: Option<Progress>,
}

impl<S: PacketSource> PacketSource for WithProgress<S> {
    type Error = S::Error;
    fn for_each(
        &mut self,
        f: &mut dyn FnMut(&RawPacket<'_>) -> ControlFlow<()>,
    ) -> Result<(), S::Error> {
        let progress = &mut self.progress;
        let r = self.inner.for_each(&mut |p| {
            // Ctrl-C with --har or -w: stop here, so that they are finished.
            if super::exports::stop_requested() {
                return ControlFlow::Break(());
            }
            progress.packet(p.data.len());
            f(p)
        });
        // The line is taken away when reading ends.
        self.progress = None;
        r
    }
}

/// Progress of a large file on stderr, only when stderr is a terminal: never in pipes or CI.
pub(crate) struct Progress {
    stride: u64,
    interval_ms: u128,
    total: u64,
    done: u64,
    packets: u64,
    last: std::time::Instant,
    shown: bool,
}

impl Progress {
    fn new(path: &str) -> Option<Progress> {
        if path == "-" || !io::stderr().is_terminal() {
            return None;
        }
        let total = std::fs::metadata(path).ok()?.len();
        // Tests set WSDUMP_PROGRESS_TEST to see progress on a small file.
        let test = std::env::var_os("WSDUMP_PROGRESS_TEST").is_some();
        (total > 64 << 20 || test).then(|| Progress {
            stride: if test { 1 } else { 4096 },
            interval_ms: if test { 0 } else { 250 },
            total,
            done: 0,
            packets: 0,
            last: std::time::Instant::now(),
            shown: false,
        })
    }
}

pub(crate) trait ProgressExt {
    fn packet(&mut self, len: usize);
}

impl ProgressExt for Option<Progress> {
    fn packet(&mut self, len: usize) {
        let Some(p) = self else { return };
        p.done += len as u64 + 16;
        p.packets += 1;
        if p.packets % p.stride == 0 && p.last.elapsed().as_millis() >= p.interval_ms {
            p.last = std::time::Instant::now();
            p.shown = true;
            let pct = (p.done * 100 / p.total.max(1)).min(100);
            eprint!(
                "\rwsdump: {} of {} MB ({pct}%)\x1b[K",
                p.done >> 20,
                p.total >> 20
            );
        }
    }
}

impl Drop for Progress {
    /// The line is taken away when reading ends, on whichever thread read.
    fn drop(&mut self) {
        if self.shown {
            eprint!("\r\x1b[K");
        }
    }
}
