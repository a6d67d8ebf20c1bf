//! Live capture on Linux: `AF_PACKET` sockets bound through pnet's datalink channel, read
//! through the kernel's memory-mapped ring, on reader threads that only copy.
//!
//! The parts, in the order a capture goes through them:
//! * [`socket`]: one packet socket per interface (its link layer, `PACKET_IGNORE_OUTGOING`
//!   on loopback, the bind through pnet, fanout, the kernel's counters);
//! * [`filter`]: the capture filter compiled to classic BPF and attached before the bind;
//! * [`ring`]: the `TPACKET_V3` receive ring (`-B` bytes) the kernel writes packets into;
//! * [`queue`]: the bounded queue (charged to the memory ledger) that reader threads fill
//!   from the ring and the decoding thread empties; what it cannot hold is dropped, counted
//!   and recorded in place;
//! * [`dispatch`]: the queue's chunks handed to several decoding threads (`--threads`);
//! * [`signals`] and [`privileges`]: SIGINT/SIGTERM as a clean stop, capture rights given
//!   up once the sockets are open.
//!
//! Each socket is read by its own thread, which never waits for decoding or printing: it
//! walks the ring's blocks, copies each packet into the queue (or counts it dropped), and
//! gives the block back. Kernel drops come from `PACKET_STATISTICS` (which resets on every
//! read; totals are kept) and are recorded in the stream too, where they were noticed.

pub mod dispatch;
pub mod filter;
pub mod privileges;
pub mod queue;
pub mod ring;
pub mod signals;
pub mod socket;

pub use privileges::drop_privileges;
pub use queue::{Chunk, Dropped, Item};
pub use signals::block_stop_signals;
pub use socket::linktype_for;

use super::{LinkType, RawPacket, Timestamp};
use pnet::datalink::{self, NetworkInterface};
use queue::{Buffers, Filler};
use std::fmt;
use std::io;
use std::mem;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The most of a packet wsdump keeps: more than the largest loopback segment (64 KiB, and
/// up to 256 KiB with big TCP).
pub const SNAPLEN: u32 = 256 * 1024;
/// `-B`'s default: the kernel ring, in bytes (tcpdump's is 2 MiB; wsdump's readers share
/// the CPU with decoding, so the ring gives them more time: 16 MiB is 64 ms at 2 Gbit/s).
pub const DEFAULT_RING: usize = 16 << 20;
/// `--capture-queue`'s default: the most decoding may fall behind by before packets are
/// dropped (the memory ledger has its say too: the queue takes at most three quarters of
/// what decoding does not use).
pub const DEFAULT_QUEUE: usize = 256 << 20;
/// How long readers keep emptying their rings after a stop request.
const DRAIN: Duration = Duration::from_secs(1);
/// How long a reader sleeps waiting for the kernel: its latency in noticing a stop.
const POLL_MS: libc::c_int = 50;

/// Why live capture could not start.
#[derive(Debug)]
pub enum LiveError {
    /// No `CAP_NET_RAW`.
    Permission,
    /// `-i` named an interface the system does not have (the name as given).
    NoSuchInterface(String),
    /// The interface's link layer is not one wsdump decodes live.
    UnsupportedInterface {
        /// The interface's name.
        name: String,
        /// Its link type as the kernel gives it (`ARPHRD_*`, linux/if_arp.h).
        arphrd: u16,
    },
    /// No interface was up (`-i any` or no `-i`), or none of them could be captured.
    NoInterfaces,
    /// A system call failed while setting a socket up.
    Os {
        /// Which interface and which step (`eth0: cannot attach the BPF filter`).
        what: String,
        /// The OS error.
        err: io::Error,
    },
}

impl fmt::Display for LiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LiveError::Permission => f.write_str(
                "cannot open a packet socket: permission denied (run with sudo, or grant the binary \
                 capture rights: sudo setcap cap_net_raw,cap_net_admin+eip $(which wsdump))",
            ),
            LiveError::NoSuchInterface(n) => write!(f, "{n}: no such interface"),
            LiveError::UnsupportedInterface { name, arphrd } => write!(
                f,
                "{name}: unsupported link layer (ARPHRD {arphrd}); wsdump captures Ethernet, \
                 loopback and raw-IP (tun) interfaces"
            ),
            LiveError::NoInterfaces => f.write_str("no interface is up"),
            LiveError::Os { what, err } => write!(f, "{what}: {err}"),
        }
    }
}

impl std::error::Error for LiveError {}

/// How the capture is set up.
#[derive(Clone, Debug)]
pub struct Options {
    /// What the kernel keeps of each packet (`-s`).
    pub snaplen: u32,
    /// The kernel ring per socket, in bytes (`-B`).
    pub ring_bytes: usize,
    /// The user-space queue, in bytes, shared by all sockets.
    pub queue_bytes: usize,
    /// At most this much of a packet is copied into the queue (tests use a small value to
    /// check that truncation is reported).
    pub copy_limit: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            snaplen: SNAPLEN,
            ring_bytes: DEFAULT_RING,
            queue_bytes: DEFAULT_QUEUE,
            copy_limit: SNAPLEN as usize,
        }
    }
}

/// One interface being captured.
#[derive(Clone, Debug)]
pub struct Interface {
    /// Its name (`eth0`, `lo`).
    pub name: String,
    /// The kernel's interface index; the packets' `iface` in the pipeline.
    pub ifindex: u32,
    /// Its link type as the kernel gives it (`ARPHRD_*`, linux/if_arp.h).
    pub arphrd: u16,
    /// How its frames are decoded: the pcap link type `arphrd` maps to.
    pub linktype: LinkType,
    /// Whether the interface was up when capture started.
    pub up: bool,
}

impl Interface {
    /// A packet of this interface as the decoders take it.
    pub fn raw<'a>(&self, ts: Timestamp, orig_len: u32, data: &'a [u8]) -> RawPacket<'a> {
        RawPacket {
            ts,
            linktype: self.linktype,
            orig_len,
            data,
            iface: self.ifindex,
        }
    }
}

/// What the capture threads send to the decoding thread.
#[derive(Debug)]
pub enum Event {
    /// Packets, and records of drops, in capture order (give it back with
    /// [`Capture::recycle`]).
    Chunk(Chunk),
    /// A reader failed (interface gone, ...); it has stopped.
    Error {
        /// The reader's interface, an index into [`Capture::interfaces`].
        iface: usize,
        /// What failed.
        err: io::Error,
    },
    /// SIGINT or SIGTERM arrived.
    Signal(i32),
    /// A reader has finished; its interface, an index into [`Capture::interfaces`].
    Ended(usize),
}

/// One interface's counters over the whole run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IfaceStats {
    /// Packets that passed the filter (the kernel's count, drops included).
    pub received: u64,
    /// Of those, dropped by the kernel because the ring was full.
    pub kernel_dropped: u64,
    /// Read from the ring.
    pub read: u64,
    /// Of those, dropped because wsdump's queue was full, and their bytes on the wire.
    pub queue_dropped: u64,
    /// The wire lengths of the `queue_dropped` packets, summed.
    pub queue_dropped_bytes: u64,
}

#[derive(Default)]
struct Counters {
    received: AtomicU64,
    kernel_dropped: AtomicU64,
    read: AtomicU64,
    queue_dropped: AtomicU64,
    queue_dropped_bytes: AtomicU64,
}

impl Counters {
    fn load(&self) -> IfaceStats {
        IfaceStats {
            received: self.received.load(Ordering::SeqCst),
            kernel_dropped: self.kernel_dropped.load(Ordering::SeqCst),
            read: self.read.load(Ordering::SeqCst),
            queue_dropped: self.queue_dropped.load(Ordering::SeqCst),
            queue_dropped_bytes: self.queue_dropped_bytes.load(Ordering::SeqCst),
        }
    }

    /// Adds the kernel's counts since the last read; returns the new kernel drops.
    fn add_kernel(&self, fd: libc::c_int) -> u64 {
        let Some((packets, drops)) = socket::statistics(fd) else {
            return 0;
        };
        self.received.fetch_add(packets, Ordering::SeqCst);
        self.kernel_dropped.fetch_add(drops, Ordering::SeqCst);
        drops
    }
}

struct Opened {
    iface: usize,
    socket: socket::Socket,
    ring: ring::Ring,
}

/// A live capture: sockets open, then (after [`Capture::start`]) one reader thread each.
pub struct Capture {
    ifaces: Vec<Interface>,
    pending: Vec<Opened>,
    stop: Arc<AtomicBool>,
    counters: Arc<Vec<Counters>>,
    buffers: Arc<Buffers>,
    copy_limit: usize,
    tx: Sender<Event>,
    rx: Receiver<Event>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    running: usize,
    /// Chunks are shared among decoding threads ([`Capture::share`]): they count as taken
    /// when the last thread is done with them, not when received here.
    dispatching: bool,
}

/// `-i`: one named interface, or every interface that is up (`None` or `"any"`).
pub fn select(name: Option<&str>) -> Result<Vec<NetworkInterface>, LiveError> {
    let all = datalink::interfaces();
    match name {
        Some(n) if n != "any" => all
            .into_iter()
            .find(|i| i.name == n)
            .map(|i| vec![i])
            .ok_or_else(|| LiveError::NoSuchInterface(n.to_string())),
        _ => {
            let up: Vec<_> = all.into_iter().filter(|i| i.is_up()).collect();
            if up.is_empty() {
                Err(LiveError::NoInterfaces)
            } else {
                Ok(up)
            }
        }
    }
}

impl Capture {
    /// Opens and prepares one packet socket per interface, with the default options and
    /// a filter on `ports`.
    pub fn open(
        nics: &[NetworkInterface],
        explicit: bool,
        ports: &[u16],
    ) -> Result<Capture, LiveError> {
        let filter = crate::capfilter::CaptureFilter::ports(ports);
        Self::open_with(nics, explicit, &filter, &Options::default())
    }

    /// Opens and prepares one packet socket per interface, with a capture filter (the
    /// `--port` values ANDed with the expression, compiled to the kernel's BPF). With
    /// several interfaces (`explicit` false), those of a link layer wsdump cannot decode are
    /// skipped with a note on stderr; a single named one is an error.
    pub fn open_with(
        nics: &[NetworkInterface],
        explicit: bool,
        filter: &crate::capfilter::CaptureFilter,
        opts: &Options,
    ) -> Result<Capture, LiveError> {
        let mut pending = Vec::new();
        let mut ifaces = Vec::new();
        for nic in nics {
            let prepare =
                |fd, linktype| filter::attach(fd, &nic.name, filter, linktype, opts.snaplen);
            match socket::open(nic, None, prepare)? {
                Ok(socket) => {
                    let ring = ring::Ring::new(socket.fd, opts.ring_bytes, opts.snaplen).map_err(
                        |err| LiveError::Os {
                            what: format!("{}: cannot set up the receive ring", nic.name),
                            err,
                        },
                    )?;
                    ifaces.push(Interface {
                        name: nic.name.clone(),
                        ifindex: nic.index,
                        arphrd: socket.arphrd,
                        linktype: socket.linktype,
                        up: nic.is_up(),
                    });
                    pending.push(Opened {
                        iface: ifaces.len() - 1,
                        socket,
                        ring,
                    });
                }
                Err(arphrd) if explicit => {
                    return Err(LiveError::UnsupportedInterface {
                        name: nic.name.clone(),
                        arphrd,
                    });
                }
                Err(arphrd) => {
                    eprintln!(
                        "wsdump: skipping {}: unsupported link layer (ARPHRD {arphrd})",
                        nic.name
                    )
                }
            }
        }
        if pending.is_empty() {
            return Err(LiveError::NoInterfaces);
        }
        let (tx, rx) = mpsc::channel();
        Ok(Capture {
            counters: Arc::new(ifaces.iter().map(|_| Counters::default()).collect()),
            ifaces,
            pending,
            stop: Arc::new(AtomicBool::new(false)),
            buffers: Arc::new(Buffers::new(opts.queue_bytes, opts.snaplen)),
            copy_limit: opts.copy_limit,
            tx,
            rx,
            threads: Mutex::new(Vec::new()),
            running: 0,
            dispatching: false,
        })
    }

    /// The interfaces being captured, in the order the `iface` indices of events and
    /// records count them.
    pub fn interfaces(&self) -> &[Interface] {
        &self.ifaces
    }

    /// The most the queue may hold, in bytes (`--capture-queue`, rounded to its chunks).
    pub fn queue_bytes(&self) -> usize {
        self.buffers.bytes()
    }

    /// What the queue holds allocated now, in bytes: what the caller's ledger is charged.
    pub fn queue_held(&self) -> usize {
        self.buffers.held()
    }

    /// Lets the queue grow to `bytes` (what the caller's ledger can spare); beyond it,
    /// chunks are freed as they come back.
    pub fn set_queue_budget(&self, bytes: usize) {
        self.buffers.set_budget(bytes)
    }

    /// The kernel ring of each socket, in bytes.
    pub fn ring_bytes(&self) -> usize {
        self.pending.first().map_or(0, |o| o.ring.len())
    }

    /// Starts one reader thread per interface, and a thread that turns SIGINT/SIGTERM into
    /// [`Event::Signal`]. Call [`block_stop_signals`] before creating any thread.
    pub fn start(&mut self) {
        let mut threads = self.threads.lock().expect("threads");
        for o in self.pending.drain(..) {
            let reader = Reader {
                tx: self.tx.clone(),
                stop: self.stop.clone(),
                counters: self.counters.clone(),
                buffers: self.buffers.clone(),
                copy_limit: self.copy_limit,
            };
            let h = std::thread::Builder::new()
                .name(format!("capture-{}", self.ifaces[o.iface].name))
                .spawn(move || reader.run(o))
                .expect("spawn capture thread");
            threads.push(h);
            self.running += 1;
        }
        let tx = self.tx.clone();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || signals::waiter(tx))
            .expect("spawn signal thread");
    }

    /// The next chunk or event; `None` when every reader has ended.
    pub fn next_event(&mut self) -> Option<Event> {
        if self.running == 0 {
            return None;
        }
        let ev = self.rx.recv().ok()?;
        match ev {
            Event::Ended(_) => self.running -= 1,
            Event::Chunk(_) if !self.dispatching => self.buffers.taken(),
            _ => {}
        }
        Some(ev)
    }

    /// Gives a chunk back to the readers once its packets are decoded.
    pub fn recycle(&self, chunk: Chunk) {
        self.buffers.give_back(chunk);
    }

    /// Asks the readers to stop once they have read what the kernel has queued; they then
    /// end, and [`Capture::next_event`] returns `None` after the last chunk.
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// A handle that asks the readers to stop, for another thread than the one reading
    /// [`Capture::next_event`].
    pub fn stopper(&self) -> Stopper {
        Stopper(self.stop.clone())
    }

    /// Each interface's counters so far.
    pub fn stats(&self) -> Vec<IfaceStats> {
        self.counters.iter().map(Counters::load).collect()
    }

    /// Stops the readers, waits for them, and returns each interface's counters. What they
    /// still send is not decoded (the run was cut short: `-c`, or the output failed).
    pub fn stop(&mut self) -> Vec<IfaceStats> {
        self.stop.store(true, Ordering::SeqCst);
        // Readers waiting for a chunk to record their last drops get one back.
        while self.running > 0 {
            match self.rx.recv_timeout(3 * DRAIN) {
                Ok(Event::Chunk(c)) => {
                    if !self.dispatching {
                        self.buffers.taken();
                    }
                    self.buffers.give_back(c);
                }
                Ok(Event::Ended(_)) => self.running -= 1,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        let threads = mem::take(&mut *self.threads.lock().expect("threads"));
        for h in threads {
            let _ = h.join();
        }
        for o in self.pending.drain(..) {
            self.counters[o.iface].add_kernel(o.socket.fd);
        }
        self.stats()
    }
}

/// Asks a capture's readers to stop (see [`Capture::stopper`]).
#[derive(Clone, Debug)]
pub struct Stopper(Arc<AtomicBool>);

impl Stopper {
    /// As [`Capture::request_stop`].
    pub fn request(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// What a reader thread needs.
struct Reader {
    tx: Sender<Event>,
    stop: Arc<AtomicBool>,
    counters: Arc<Vec<Counters>>,
    buffers: Arc<Buffers>,
    copy_limit: usize,
}

impl Reader {
    fn run(self, mut o: Opened) {
        let i = o.iface;
        let c = &self.counters[i];
        let fd = o.socket.fd;
        let tx = &self.tx;
        let mut send = |chunk: Chunk| {
            let _ = tx.send(Event::Chunk(chunk));
        };
        let mut filler = Filler::new(&self.buffers, i);
        let mut blocks = 0u32;
        let mut last_ts = Timestamp::default();
        // After a stop request the reader keeps going until the ring is empty (a poll times
        // out) or DRAIN has passed: packets the kernel already holds are decoded, not lost.
        let mut deadline: Option<Instant> = None;
        loop {
            if self.stop.load(Ordering::Relaxed) {
                let d = *deadline.get_or_insert_with(|| Instant::now() + DRAIN);
                if Instant::now() >= d {
                    break;
                }
            }
            let mut losing = false;
            let got = o.ring.read_block(|p| {
                losing |= p.status & ring::TP_STATUS_LOSING != 0;
                let data = &p.data[..p.data.len().min(self.copy_limit)];
                let wire = p.wire_len.max(data.len() as u32);
                last_ts = p.ts;
                c.read.fetch_add(1, Ordering::Relaxed);
                if !filler.packet(p.ts, wire, data, &mut send) {
                    c.queue_dropped.fetch_add(1, Ordering::Relaxed);
                    c.queue_dropped_bytes
                        .fetch_add(wire as u64, Ordering::Relaxed);
                }
            });
            if got {
                blocks += 1;
                // The kernel marks packets after a loss: its count is recorded right here.
                if losing || blocks >= 64 {
                    blocks = 0;
                    let drops = c.add_kernel(fd);
                    filler.kernel_dropped(last_ts, drops, &mut send);
                }
                filler.flush_if_idle(&mut send);
                continue;
            }
            let drops = c.add_kernel(fd);
            filler.kernel_dropped(last_ts, drops, &mut send);
            filler.flush_if_idle(&mut send);
            if deadline.is_some() {
                break;
            }
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let r = unsafe { libc::poll(&mut pfd, 1, POLL_MS) };
            if r > 0 && pfd.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
                let err = socket_error(fd);
                let _ = tx.send(Event::Error { iface: i, err });
                break;
            }
        }
        let drops = c.add_kernel(fd);
        filler.kernel_dropped(last_ts, drops, &mut send);
        filler.flush(&mut send);
        // Drops must be recorded in the stream: wait (a little) for a chunk to record them.
        let until = Instant::now() + DRAIN;
        while filler.unrecorded() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
            filler.flush(&mut send);
        }
        let _ = self.tx.send(Event::Ended(i));
        drop(o);
    }
}

/// The error pending on a socket (`SO_ERROR`), e.g. the interface went away.
fn socket_error(fd: libc::c_int) -> io::Error {
    let mut e: libc::c_int = 0;
    let mut len = mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes one int.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut e as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    match (r, e) {
        (0, 0) => io::Error::other("the socket was closed"),
        (0, libc::ENETDOWN) => io::Error::other("the interface went down"),
        (0, e) => io::Error::from_raw_os_error(e),
        _ => io::Error::last_os_error(),
    }
}
