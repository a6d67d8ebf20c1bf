//! One capture file decoded and printed by several threads, with the output of one.
//!
//! Each worker opens the file itself and reads every packet (from the page cache: cheaper
//! than handing packets around). Every worker follows the TCP lifecycle of every connection,
//! so all of them number connections and sweep the connection table exactly as a single
//! analyzer would; but each decodes, and prints, only its share of the connections, chosen
//! by a fixed hash of the 4-tuple ([`share_of`](crate::analyzer::share_of)). What a worker prints goes into memory in
//! pieces, each tagged with where it belongs; the calling thread merges the pieces back into
//! capture order and writes them:
//! - a packet's own lines come from the one worker that owns its connection (lines about
//!   packets that are not TCP, from worker 0);
//! - what the sweep after a packet says, and what the end of input flushes, come from all
//!   workers, and go by connection number, as a single analyzer closes connections.
//!
//! The output is therefore the same for any number of threads, with one exception: the
//! buffer budgets (`--max-buffer`) are divided among the workers, so a capture that reaches
//! them is cut at other places (the same places on every run with the same thread count).
//!
//! Printers that keep state across connections (`--explain`, `--ladder`, `--stats`) are not
//! run here; the caller decodes those on one thread.

use crate::analyzer::{Config, Share, Stats};
use crate::capture::RawPacket;
use crate::capture::file::{CaptureError, CaptureFile};
use crate::engine::{Input, PacketSource, Pipeline, Stage};
use crate::event::{Event, Sink};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Write};
use std::ops::{ControlFlow, Range};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};

/// A worker sends what it has printed after this many packets, so that the merge, which
/// waits for the slowest worker, never waits long ...
const BATCH_PACKETS: u64 = 4096;
/// ... or once it holds this many bytes, which bounds memory.
const BATCH_BYTES: usize = 256 << 10;
/// Pieces a returned batch keeps room for (a piece is 40 bytes).
const MAX_REUSED_PIECES: usize = 8192;
/// Batches in flight per worker.
const CHANNEL_DEPTH: usize = 4;

/// A printer behind the display filters, writing into memory; one per worker.
pub trait Render: Send {
    /// Appends what is shown for `ev` to `out`, if the filters let it through; returns
    /// whether `ev` is a message that passed them (what `-c` counts).
    fn render(&mut self, ev: &Event<'_>, out: &mut String) -> bool;
}

/// How the merged output is written.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Decoding threads (at least one).
    pub threads: usize,
    /// Flush after each merged batch (a pipe or a terminal is reading).
    pub line_mode: bool,
    /// Stop after this many messages (`-c`).
    pub limit: Option<u64>,
}

/// What the run left for the caller to report.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Summed over the workers (packet-level counters come from worker 0 alone).
    pub stats: Stats,
    /// The file ended badly after the packets that were delivered.
    pub read_error: Option<CaptureError>,
    /// Messages written (those the filters passed).
    pub messages: u64,
}

/// Number of decoding threads for `--threads 0`: the CPUs there are, up to eight.
pub fn auto_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(8)
}

/// Where in a single analyzer's output a piece belongs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    /// Index of the packet in the file; `u64::MAX` for the end-of-input flush.
    packet: u64,
    phase: Phase,
    /// The connection's number, in the sweep and at the end; 0 for the packet's own events.
    conn: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// Decoding the packet itself.
    Packet,
    /// The table sweep after it.
    Sweep,
    /// End of input.
    Finish,
}

struct Piece {
    key: Key,
    bytes: Range<usize>,
    /// A message that passed the filters.
    message: bool,
}

#[derive(Default)]
struct Batch {
    /// What was printed, pieces one after the other.
    text: String,
    pieces: Vec<Piece>,
    /// Every packet before this one has been fully printed.
    upto: u64,
    end: Option<WorkerEnd>,
}

/// How a worker's run ended.
struct WorkerEnd {
    stats: Stats,
    read_error: Option<CaptureError>,
}

/// Where one worker's packets come from: every worker must be given the same packets.
pub type Source<'a> = Box<dyn PacketSource<Error = CaptureError> + Send + 'a>;

/// Decodes the capture at `path` on `opts.threads` workers, each printing with a [`Render`]
/// from `make`, and writes to `out` what a single [`Analyzer`](crate::analyzer::Analyzer) with `cfg` feeding that
/// printer would. `progress` is told the size of each packet worker 0 reads. The file must
/// have been checked to open as a capture.
pub fn run_file(
    path: &Path,
    cfg: &Config,
    opts: Options,
    make: &(dyn Fn() -> Box<dyn Render> + Sync),
    out: &mut dyn Write,
    progress: Option<Box<dyn FnMut(usize) + Send + '_>>,
) -> io::Result<Outcome> {
    let progress = std::sync::Mutex::new(progress);
    // One key store for every worker: each reads the file's Decryption Secrets Blocks into it.
    let mut cfg = cfg.clone();
    let keys = cfg
        .keys
        .get_or_insert_with(crate::tls::KeyStore::new)
        .clone();
    // Every worker reads the same bytes: the file as long as it was when the run began. A
    // file still being written (tcpdump -w) would otherwise end at a different place for each
    // worker, and their output would be no prefix of the whole.
    let len = std::fs::metadata(path).map(|m| m.len()).ok();
    let open = |index: usize| -> Result<Source<'_>, CaptureError> {
        let mut cap = File::open(path)
            .map(|f| io::Read::take(f, len.unwrap_or(u64::MAX)))
            .map_err(|e| CaptureError::Io(e.to_string()))
            .and_then(CaptureFile::open)?;
        cap.use_keys(keys.clone());
        let progress = if index == 0 {
            progress.lock().ok().and_then(|mut p| p.take())
        } else {
            None
        };
        Ok(Box::new(WorkerSource { cap, progress }))
    };
    run_sources(&cfg, opts, &open, make, out)
}

/// [`run_file`] with the packets from `open(worker)`, each worker's own source of the same
/// packets (live capture hands each the same chunks).
pub fn run_sources<'a>(
    cfg: &Config,
    opts: Options,
    open: &(dyn Fn(usize) -> Result<Source<'a>, CaptureError> + Sync),
    make: &(dyn Fn() -> Box<dyn Render> + Sync),
    out: &mut dyn Write,
) -> io::Result<Outcome> {
    let n = opts.threads.max(1);
    let mut share_cfg = cfg.clone();
    share_cfg.max_memory = cfg.max_memory / n;
    // One key store for every worker: each reads the file's Decryption Secrets Blocks into it.
    share_cfg.keys.get_or_insert_with(crate::tls::KeyStore::new);
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let mut lanes = Vec::with_capacity(n);
        let mut handles = Vec::with_capacity(n);
        for index in 0..n {
            let (tx, rx) = sync_channel(CHANNEL_DEPTH);
            // Batches written out go back to their worker, to be filled again.
            let (ret, reuse) = channel();
            let share = Share { index, count: n };
            let job = Job {
                open,
                cfg: share_cfg.clone(),
                share,
                stop: &stop,
            };
            let h = std::thread::Builder::new()
                .name(format!("wsdump-{index}"))
                .spawn_scoped(scope, move || job.run(make(), tx, reuse))?;
            handles.push(h);
            lanes.push(Lane {
                rx,
                ret,
                batches: VecDeque::new(),
                pos: 0,
                upto: 0,
                end: None,
                gone: false,
            });
        }
        let mut merge = Merge {
            out,
            opts,
            messages: 0,
        };
        let result = merge.run(&mut lanes);
        // Whether the run ended or was cut short (-c, or the output failed), workers stop.
        stop.store(true, Ordering::Relaxed);
        let mut outcome = Outcome {
            messages: merge.messages,
            ..Outcome::default()
        };
        for (i, lane) in lanes.into_iter().enumerate() {
            if let Some(e) = lane.end {
                outcome.stats += &e.stats;
                if i == 0 {
                    outcome.read_error = e.read_error;
                }
            }
            // Dropping the receiver unblocks a worker waiting to send.
        }
        // Joined here, so that a worker's panic is an error, not the caller's panic.
        let panicked = handles.into_iter().any(|h| h.join().is_err());
        result?;
        if panicked {
            return Err(io::Error::other("a decoding thread failed"));
        }
        Ok(outcome)
    })
}

/// One worker's part.
struct Job<'a, 'o> {
    open: &'o (dyn Fn(usize) -> Result<Source<'a>, CaptureError> + Sync),
    cfg: Config,
    share: Share,
    stop: &'o AtomicBool,
}

/// A worker's source, read until the merge says stop.
struct Stoppable<'a, 'o> {
    inner: Source<'a>,
    stop: &'o AtomicBool,
}

impl PacketSource for Stoppable<'_, '_> {
    type Error = CaptureError;
    fn for_each(
        &mut self,
        f: &mut dyn FnMut(&RawPacket<'_>) -> ControlFlow<()>,
    ) -> Result<(), CaptureError> {
        self.for_each_input(&mut |i| match i {
            Input::Packet(p) => f(p),
            Input::Dropped { .. } | Input::Idle => ControlFlow::Continue(()),
        })
    }

    fn for_each_input(
        &mut self,
        f: &mut dyn FnMut(Input<'_>) -> ControlFlow<()>,
    ) -> Result<(), CaptureError> {
        let stop = self.stop;
        self.inner.for_each_input(&mut |i| {
            if stop.load(Ordering::Relaxed) {
                return ControlFlow::Break(());
            }
            f(i)
        })
    }
}

/// The capture file as one worker reads it.
struct WorkerSource<'a> {
    cap: CaptureFile,
    progress: Option<Box<dyn FnMut(usize) + Send + 'a>>,
}

impl PacketSource for WorkerSource<'_> {
    type Error = CaptureError;
    fn for_each(
        &mut self,
        f: &mut dyn FnMut(&RawPacket<'_>) -> ControlFlow<()>,
    ) -> Result<(), CaptureError> {
        let progress = &mut self.progress;
        let r = self.cap.for_each(&mut |p| {
            if let Some(f) = progress.as_mut() {
                f(p.data.len());
            }
            f(p)
        });
        // The progress line is cleared when reading ends, not when printing does.
        drop(progress.take());
        r
    }
}

impl Job<'_, '_> {
    fn run(self, render: Box<dyn Render>, tx: SyncSender<Batch>, reuse: Receiver<Batch>) {
        let mut pr = Printing {
            key: Key {
                packet: 0,
                phase: Phase::Packet,
                conn: 0,
            },
            render,
            batch: Batch::default(),
            reuse,
            tx,
            hung_up: false,
            done: 0,
        };
        let stop = self.stop;
        let inner = match (self.open)(self.share.index) {
            Ok(s) => s,
            Err(e) => {
                let mut last = pr.take(u64::MAX);
                last.end = Some(WorkerEnd {
                    stats: Stats::default(),
                    read_error: Some(e),
                });
                let _ = pr.tx.send(last);
                return;
            }
        };
        let mut src = Stoppable { inner, stop };
        // Printing into memory does not fail; an error here is the merge hanging up.
        let run = Pipeline::with_share(self.cfg, self.share).drive(&mut src, &mut pr);
        let Ok(run) = run else { return };
        if pr.hung_up || stop.load(Ordering::Relaxed) {
            return;
        }
        let mut last = pr.take(u64::MAX);
        last.end = Some(WorkerEnd {
            stats: run.stats,
            read_error: run.source_error,
        });
        let _ = pr.tx.send(last);
    }
}

/// A worker's sink: prints each event into the batch as a piece of its own, and hands
/// batches to the merge.
struct Printing {
    key: Key,
    render: Box<dyn Render>,
    batch: Batch,
    reuse: Receiver<Batch>,
    tx: SyncSender<Batch>,
    hung_up: bool,
    /// Packets fully printed.
    done: u64,
}

impl Printing {
    fn take(&mut self, upto: u64) -> Batch {
        let next = self.reuse.try_recv().unwrap_or_default();
        let mut b = std::mem::replace(&mut self.batch, next);
        b.upto = upto;
        b
    }
}

impl Sink for Printing {
    fn event(&mut self, ev: &Event<'_>) -> io::Result<bool> {
        let start = self.batch.text.len();
        let message = self.render.render(ev, &mut self.batch.text);
        let end = self.batch.text.len();
        if end == start && !message {
            return Ok(true);
        }
        let mut key = self.key;
        if key.phase != Phase::Packet {
            key.conn = ev.conn.map_or(0, |c| c.id);
        }
        self.batch.pieces.push(Piece {
            key,
            bytes: start..end,
            message,
        });
        Ok(true)
    }

    fn stage(&mut self, stage: Stage) -> io::Result<()> {
        match stage {
            Stage::Packet(k) => {
                self.key = Key {
                    packet: k,
                    phase: Phase::Packet,
                    conn: 0,
                }
            }
            Stage::Sweep => self.key.phase = Phase::Sweep,
            Stage::PacketDone => {
                let k = self.key.packet + 1;
                self.done = k;
                if (k.is_multiple_of(BATCH_PACKETS) || self.batch.text.len() >= BATCH_BYTES) && {
                    let b = self.take(k);
                    self.tx.send(b).is_err()
                } {
                    self.hung_up = true;
                    return Err(io::Error::other("the merge has hung up"));
                }
            }
            // Live capture caught up: what is printed goes to the merge now, not after
            // thousands more packets.
            Stage::Idle => {
                let b = self.take(self.done);
                if self.tx.send(b).is_err() {
                    self.hung_up = true;
                    return Err(io::Error::other("the merge has hung up"));
                }
            }
            Stage::Finish => {
                self.key = Key {
                    packet: u64::MAX,
                    phase: Phase::Finish,
                    conn: 0,
                }
            }
        }
        Ok(())
    }
}

struct Lane {
    rx: Receiver<Batch>,
    ret: Sender<Batch>,
    /// Received, not yet all written; the first from piece `pos` on.
    batches: VecDeque<Batch>,
    pos: usize,
    upto: u64,
    end: Option<WorkerEnd>,
    /// The worker went away without its last batch.
    gone: bool,
}

impl Lane {
    fn finished(&self) -> bool {
        self.end.is_some() || self.gone
    }

    /// The next piece to write: its batch and index. Batches done with go back.
    fn head(&mut self) -> Option<(&Batch, usize)> {
        while let Some(b) = self.batches.front() {
            if self.pos < b.pieces.len() {
                break;
            }
            let mut b = self.batches.pop_front().expect("front seen");
            self.pos = 0;
            b.text.clear();
            b.pieces.clear();
            b.end = None;
            // A batch that once held a huge line (a 24 MB message) would keep that capacity
            // on every reuse, in every batch in flight: back to the usual size.
            b.text.shrink_to(2 * BATCH_BYTES);
            b.pieces.shrink_to(MAX_REUSED_PIECES);
            let _ = self.ret.send(b);
        }
        self.batches.front().map(|b| (b, self.pos))
    }
}

struct Merge<'a> {
    out: &'a mut dyn Write,
    opts: Options,
    messages: u64,
}

impl Merge<'_> {
    fn done(&self) -> bool {
        self.opts.limit.is_some_and(|l| self.messages >= l)
    }

    fn run(&mut self, lanes: &mut [Lane]) -> io::Result<()> {
        loop {
            // Wait on the worker that is furthest behind: until it moves on, nothing after
            // its position can be written.
            let behind = lanes
                .iter()
                .enumerate()
                .filter(|(_, l)| !l.finished())
                .min_by_key(|(_, l)| l.upto)
                .map(|(i, _)| i);
            let Some(i) = behind else {
                return self.write_upto(lanes, u64::MAX);
            };
            let lane = &mut lanes[i];
            match lane.rx.recv() {
                Ok(mut b) => {
                    lane.upto = b.upto;
                    lane.end = b.end.take();
                    lane.batches.push_back(b);
                }
                Err(_) => {
                    lane.gone = true;
                    return Err(io::Error::other("a decoding thread failed"));
                }
            }
            let upto = lanes.iter().map(|l| l.upto).min().unwrap_or(u64::MAX);
            self.write_upto(lanes, upto)?;
            if self.done() {
                return self.out.flush();
            }
            if self.opts.line_mode {
                self.out.flush()?;
            }
        }
    }

    /// Writes every piece of a packet before `upto` (all, for `u64::MAX`), in order.
    fn write_upto(&mut self, lanes: &mut [Lane], upto: u64) -> io::Result<()> {
        while !self.done() {
            let mut best: Option<(usize, Key)> = None;
            for (i, lane) in lanes.iter_mut().enumerate() {
                let Some((b, j)) = lane.head() else {
                    continue;
                };
                let key = b.pieces[j].key;
                if key.packet >= upto && upto != u64::MAX {
                    continue;
                }
                if best.is_none_or(|(_, k)| key < k) {
                    best = Some((i, key));
                }
            }
            let Some((i, _)) = best else {
                return Ok(());
            };
            let lane = &mut lanes[i];
            let (b, j) = lane.head().expect("head seen above");
            let piece = &b.pieces[j];
            self.out
                .write_all(&b.text.as_bytes()[piece.bytes.clone()])?;
            self.messages += piece.message as u64;
            lane.pos += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::analyzer::share_of;
    use std::net::SocketAddr;

    /// Both directions of a connection land in the same share, and consecutive client ports
    /// (what a client opening many connections uses) spread evenly, each residue class of
    /// the port too: a client whose even connections are the heavy ones (compressed, say)
    /// must not hand them all to one thread.
    #[test]
    fn shares_are_symmetric_and_even() {
        // The first hash here (FNV-1a, folded) put every even port of 127.0.0.1 talking to
        // 127.0.0.1:9100 in one share: the benchmark's compressed connections all on one thread.
        let layouts: [(std::net::IpAddr, SocketAddr); 3] = [
            ([10, 0, 0, 1].into(), "10.0.0.2:7272".parse().unwrap()),
            ([127, 0, 0, 1].into(), "127.0.0.1:9100".parse().unwrap()),
            ("::1".parse().unwrap(), "[::1]:7272".parse().unwrap()),
        ];
        // Windows of 64 consecutive client ports, every port and every other one (a client
        // opens its connections one after the other; the heavy ones may alternate).
        for (client_ip, server) in layouts {
            for n in 1..=8 {
                for base in (20000..60000u16).step_by(2500) {
                    for (stride, from) in [(1, base), (2, base), (2, base + 1)] {
                        let mut count = vec![0usize; n];
                        for port in (from..base + 64).step_by(stride) {
                            let client = SocketAddr::new(client_ip, port);
                            let s = share_of(client, server, n);
                            assert_eq!(s, share_of(server, client, n));
                            count[s] += 1;
                        }
                        // Within four standard deviations of a fair split (the hash is
                        // fixed, so this either always holds or never).
                        let mean = 64.0 / stride as f64 / n as f64;
                        let sd = (mean * (1.0 - 1.0 / n as f64)).sqrt();
                        for c in count {
                            assert!(
                                (c as f64 - mean).abs() <= 4.0 * sd + 0.5,
                                "{server}, n={n}, ports {from}.. by {stride}: {c} vs {mean}"
                            );
                        }
                    }
                }
            }
        }
    }
}
