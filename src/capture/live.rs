//! Live capture on Linux through pnet's datalink channel (`AF_PACKET`).
//!
//! For each interface wsdump creates the packet socket itself —
//! `socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL))` — prepares it, and hands it to
//! `pnet::datalink::channel` through `Config::socket_fd`, which binds it to the interface.
//! Before the bind the socket gets:
//!
//! * a classic BPF filter (`SO_ATTACH_FILTER`) accepting only TCP over IPv4/IPv6 that the
//!   capture filter passes (the `--port` values, ANDed with the tcpdump-style expression
//!   after the options; all TCP when neither is given), so the kernel drops
//!   everything else before it is copied to us. The filter knows the interface's link layer:
//!   a 14-byte Ethernet header for `ARPHRD_ETHER`/`ARPHRD_LOOPBACK`, the bare IP header for
//!   `ARPHRD_NONE` (tun devices). IPv6 extension headers and IP fragments after the first are
//!   not matched (like tcpdump's `tcp port N`). The analyzer filters by port again anyway.
//!   The program is compiled by [`crate::capfilter::bpf`] (`--port P` is `port P or ...`);
//!   it keeps at most the snapshot length (`-s`) of each packet.
//! * `PACKET_IGNORE_OUTGOING` on loopback: on `lo` the kernel delivers every packet twice to a
//!   packet socket, once as `PACKET_OUTGOING` and once as `PACKET_HOST`, and pnet drops
//!   `sll_pkttype`, so without this every segment would be seen twice.
//! * an 8 MiB receive buffer (`SO_RCVBUFFORCE`, falling back to `SO_RCVBUF`, which the kernel
//!   caps at `net.core.rmem_max`).
//!
//! Until the bind an `ETH_P_ALL` socket hears every interface, so whatever it queued before
//! the bind is drained and discarded before capture starts.
//!
//! pnet reads with `recvfrom(.., flags = 0)` into a buffer of `read_buffer_size` bytes
//! (default 4096, too small for the 64 KiB segments of loopback with TSO); wsdump asks for
//! [`READ_BUFFER`] (256 KiB). A longer frame is still cut silently by the kernel, so
//! [`wire_len`] recomputes the length on the wire from the IP header and sets
//! [`RawPacket::orig_len`]; the packet layer then reports the packet as truncated.
//!
//! Kernel drops come from `PACKET_STATISTICS` (which resets on every read; totals are kept).
//!
//! Timestamps: right after pnet's `next()` returns, `ioctl(SIOCGSTAMPNS)` on the socket gives
//! the kernel's receive timestamp of that very packet (nanoseconds, taken when the packet
//! entered the network stack). If the kernel has none, `SystemTime::now()` taken right after
//! `next()` returns is used instead (also nanosecond resolution, but later by the scheduling
//! delay of the reader thread, typically microseconds).
//!
//! Each interface is read by its own thread; packets go through one channel to the thread
//! that runs the analyzer, in arrival order.

use super::{LinkType, RawPacket, Timestamp};
use pnet::datalink::{self, Channel, NetworkInterface};
use std::fmt;
use std::io;
use std::mem;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// pnet's read buffer per interface: larger than the largest loopback segment (64 KiB).
pub const READ_BUFFER: usize = 256 * 1024;
/// What the BPF filter accepts of a packet, and the snaplen written to `-w` files.
pub const SNAPLEN: u32 = READ_BUFFER as u32;
/// Socket receive buffer asked for.
const RCVBUF: libc::c_int = 8 << 20;
/// How long readers keep emptying their sockets after a stop request.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(1);

/// How often reader threads wake up to notice a stop request.
const POLL: Duration = Duration::from_millis(100);

const SOL_PACKET: libc::c_int = 263;
const PACKET_STATISTICS: libc::c_int = 6;
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
const SO_ATTACH_FILTER: libc::c_int = 26;
const SO_RCVBUFFORCE: libc::c_int = 33;
const SIOCGSTAMPNS: libc::c_ulong = 0x8907;
const ETH_P_ALL: u16 = 0x0003;
const ARPHRD_ETHER: u16 = 1;
const ARPHRD_LOOPBACK: u16 = 772;
const ARPHRD_NONE: u16 = 0xfffe;

/// Why live capture could not start.
#[derive(Debug)]
pub enum LiveError {
    /// No `CAP_NET_RAW`.
    Permission,
    NoSuchInterface(String),
    /// The interface's link layer is not one wsdump decodes live.
    UnsupportedInterface {
        name: String,
        arphrd: u16,
    },
    NoInterfaces,
    Os {
        what: String,
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

fn os(what: impl Into<String>) -> LiveError {
    LiveError::Os {
        what: what.into(),
        err: io::Error::last_os_error(),
    }
}

/// The link type a device type is captured as, if wsdump can decode it.
pub fn linktype_for(arphrd: u16) -> Option<LinkType> {
    match arphrd {
        ARPHRD_ETHER | ARPHRD_LOOPBACK => Some(LinkType::ETHERNET),
        ARPHRD_NONE => Some(LinkType::RAW),
        _ => None,
    }
}

/// One interface being captured.
#[derive(Clone, Debug)]
pub struct Interface {
    pub name: String,
    pub ifindex: u32,
    pub arphrd: u16,
    pub linktype: LinkType,
    /// Whether the interface was up when capture started.
    pub up: bool,
}

/// One packet as read, owned (it crosses threads).
#[derive(Debug)]
pub struct LivePacket {
    /// Index into [`Capture::interfaces`].
    pub iface: usize,
    pub ts: Timestamp,
    pub orig_len: u32,
    pub data: Vec<u8>,
}

impl LivePacket {
    pub fn raw<'a>(&'a self, ifaces: &[Interface]) -> RawPacket<'a> {
        let i = &ifaces[self.iface];
        RawPacket {
            ts: self.ts,
            linktype: i.linktype,
            orig_len: self.orig_len,
            data: &self.data,
            iface: i.ifindex,
        }
    }
}

/// What the capture threads send to the analyzing thread.
#[derive(Debug)]
pub enum Event {
    Packet(LivePacket),
    /// A reader failed (interface gone, ...); it has stopped.
    Error {
        iface: usize,
        err: io::Error,
    },
    /// SIGINT or SIGTERM arrived.
    Signal(i32),
    /// A reader has finished.
    Ended(usize),
}

/// Kernel counters, summed over interfaces and over the whole run.
#[derive(Clone, Copy, Debug, Default)]
pub struct KernelStats {
    /// Packets that passed the filter.
    pub received: u64,
    /// Of those, dropped because the socket buffer was full.
    pub dropped: u64,
}

#[derive(Default)]
struct Counters {
    received: AtomicU64,
    dropped: AtomicU64,
}

struct Opened {
    iface: Interface,
    fd: libc::c_int,
    rx: Box<dyn datalink::DataLinkReceiver>,
}

/// A live capture: sockets open, then (after [`Capture::start`]) one reader thread each.
pub struct Capture {
    ifaces: Vec<Interface>,
    pending: Vec<Opened>,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    tx: Sender<Event>,
    rx: Receiver<Event>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    running: usize,
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
    /// Opens and prepares one packet socket per interface. With several interfaces
    /// (`explicit` false), those of a link layer wsdump cannot decode are skipped with a note
    /// on stderr; a single named one is an error.
    pub fn open(
        nics: &[NetworkInterface],
        explicit: bool,
        ports: &[u16],
    ) -> Result<Capture, LiveError> {
        let filter = crate::capfilter::CaptureFilter::ports(ports);
        Self::open_with(nics, explicit, &filter, SNAPLEN, READ_BUFFER)
    }

    /// [`Capture::open`] with a capture filter (the `--port` values ANDed with the
    /// expression, compiled to the kernel's BPF), a snapshot length (what the filter keeps
    /// of each packet, `-s`) and another read buffer size (tests use pnet's default, 4096,
    /// to check that truncation is detected).
    pub fn open_with(
        nics: &[NetworkInterface],
        explicit: bool,
        filter: &crate::capfilter::CaptureFilter,
        snaplen: u32,
        read_buffer: usize,
    ) -> Result<Capture, LiveError> {
        let mut pending = Vec::new();
        for nic in nics {
            match open_one(nic, filter, snaplen, read_buffer)? {
                Ok(o) => pending.push(o),
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
            ifaces: pending.iter().map(|o| o.iface.clone()).collect(),
            pending,
            stop: Arc::new(AtomicBool::new(false)),
            counters: Arc::new(Counters::default()),
            tx,
            rx,
            threads: Mutex::new(Vec::new()),
            running: 0,
        })
    }

    pub fn interfaces(&self) -> &[Interface] {
        &self.ifaces
    }

    /// Starts one reader thread per interface, and a thread that turns SIGINT/SIGTERM into
    /// [`Event::Signal`]. Call [`block_stop_signals`] before creating any thread.
    pub fn start(&mut self) {
        let mut threads = self.threads.lock().expect("threads");
        for (i, o) in self.pending.drain(..).enumerate() {
            let tx = self.tx.clone();
            let stop = self.stop.clone();
            let counters = self.counters.clone();
            let h = std::thread::Builder::new()
                .name(format!("capture-{}", o.iface.name))
                .spawn(move || reader(i, o, tx, stop, counters))
                .expect("spawn capture thread");
            threads.push(h);
            self.running += 1;
        }
        let tx = self.tx.clone();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || signal_waiter(tx))
            .expect("spawn signal thread");
    }

    /// The next packet or event; `None` when every reader has ended.
    pub fn next_event(&mut self) -> Option<Event> {
        if self.running == 0 {
            return None;
        }
        let ev = self.rx.recv().ok()?;
        if let Event::Ended(_) = ev {
            self.running -= 1;
        }
        Some(ev)
    }

    /// Asks the readers to stop once they have read what the kernel has queued; they then
    /// end, and [`Capture::next_event`] returns `None` after the last packet.
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Stops the readers, waits for them, and returns the kernel's counters.
    pub fn stop(&mut self) -> KernelStats {
        self.stop.store(true, Ordering::SeqCst);
        let threads = mem::take(&mut *self.threads.lock().expect("threads"));
        for h in threads {
            let _ = h.join();
        }
        for o in self.pending.drain(..) {
            add_stats(o.fd, &self.counters);
        }
        KernelStats {
            received: self.counters.received.load(Ordering::SeqCst),
            dropped: self.counters.dropped.load(Ordering::SeqCst),
        }
    }
}

/// Opens one socket; `Ok(Err(arphrd))` when the link layer is not supported.
fn open_one(
    nic: &NetworkInterface,
    filter: &crate::capfilter::CaptureFilter,
    snaplen: u32,
    read_buffer: usize,
) -> Result<Result<Opened, u16>, LiveError> {
    // SAFETY: plain socket(2) call.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW,
            ETH_P_ALL.to_be() as libc::c_int,
        )
    };
    if fd < 0 {
        let err = io::Error::last_os_error();
        return Err(match err.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => LiveError::Permission,
            _ => LiveError::Os {
                what: "cannot open a packet socket".into(),
                err,
            },
        });
    }
    let fail = |e: LiveError| {
        // SAFETY: fd is ours and not yet handed to pnet.
        unsafe { libc::close(fd) };
        e
    };
    let arphrd = match arphrd(fd, &nic.name) {
        Ok(a) => a,
        Err(e) => return Err(fail(e)),
    };
    let Some(linktype) = linktype_for(arphrd) else {
        // SAFETY: fd is ours and not yet handed to pnet.
        unsafe { libc::close(fd) };
        return Ok(Err(arphrd));
    };
    let prog = match filter.compile(linktype, snaplen) {
        Ok(p) => p,
        Err(e) => {
            return Err(fail(LiveError::Os {
                what: format!("{}: cannot build the BPF filter", nic.name),
                err: io::Error::other(e.to_string()),
            }));
        }
    };
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    if let Err(e) = setsockopt(fd, libc::SOL_SOCKET, SO_ATTACH_FILTER, &fprog) {
        return Err(fail(LiveError::Os {
            what: format!("{}: cannot attach the BPF filter", nic.name),
            err: e,
        }));
    }
    if arphrd == ARPHRD_LOOPBACK
        && let Err(e) = setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &1 as &libc::c_int)
    {
        return Err(fail(LiveError::Os {
            what: format!(
                "{}: cannot set PACKET_IGNORE_OUTGOING (kernel 4.20 or later needed)",
                nic.name
            ),
            err: e,
        }));
    }
    if setsockopt(fd, libc::SOL_SOCKET, SO_RCVBUFFORCE, &RCVBUF).is_err() {
        let _ = setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &RCVBUF);
    }
    // The first SIOCGSTAMPNS turns on receive timestamps for the socket (it fails: no packet).
    let _ = kernel_stamp(fd);
    let cfg = datalink::Config {
        read_buffer_size: read_buffer,
        write_buffer_size: 64,
        read_timeout: Some(POLL),
        promiscuous: false,
        socket_fd: Some(fd),
        ..Default::default()
    };
    // pnet binds the socket to the interface (and closes it on failure).
    let rx = match datalink::channel(nic, cfg) {
        Ok(Channel::Ethernet(_tx, rx)) => rx,
        Ok(_) => {
            return Err(LiveError::Os {
                what: format!("{}: unexpected channel type", nic.name),
                err: io::Error::other(""),
            });
        }
        Err(err) => {
            return Err(LiveError::Os {
                what: format!("{}: cannot bind the packet socket", nic.name),
                err,
            });
        }
    };
    // What the socket queued before the bind may come from any interface: discard it.
    let mut junk = [0u8; 64];
    // SAFETY: recv into a local buffer on our socket, non-blocking.
    while unsafe { libc::recv(fd, junk.as_mut_ptr().cast(), junk.len(), libc::MSG_DONTWAIT) } >= 0 {
    }
    add_stats(fd, &Counters::default());
    let iface = Interface {
        name: nic.name.clone(),
        ifindex: nic.index,
        arphrd,
        linktype,
        up: nic.is_up(),
    };
    Ok(Ok(Opened { iface, fd, rx }))
}

fn setsockopt<T>(fd: libc::c_int, level: libc::c_int, name: libc::c_int, v: &T) -> io::Result<()> {
    // SAFETY: v points to a live T of the given size.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (v as *const T).cast(),
            mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The device type (`ARPHRD_*`) of an interface, by `SIOCGIFHWADDR`.
fn arphrd(fd: libc::c_int, name: &str) -> Result<u16, LiveError> {
    #[repr(C)]
    struct IfReq {
        name: [u8; libc::IFNAMSIZ],
        addr: libc::sockaddr,
        _pad: [u8; 8],
    }
    // SAFETY: all-zero is a valid IfReq.
    let mut req: IfReq = unsafe { mem::zeroed() };
    let n = name.as_bytes();
    if n.len() >= libc::IFNAMSIZ {
        return Err(LiveError::NoSuchInterface(name.into()));
    }
    req.name[..n.len()].copy_from_slice(n);
    // SAFETY: SIOCGIFHWADDR reads and writes a struct ifreq, which IfReq lays out.
    if unsafe { libc::ioctl(fd, libc::SIOCGIFHWADDR, &mut req) } < 0 {
        return Err(os(format!("{name}: cannot read the device type")));
    }
    Ok(req.addr.sa_family)
}

/// The kernel's receive timestamp of the last packet read from `fd`.
fn kernel_stamp(fd: libc::c_int) -> Option<Timestamp> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: SIOCGSTAMPNS writes one struct timespec.
    let r = unsafe { libc::ioctl(fd, SIOCGSTAMPNS, &mut ts) };
    if r < 0 || (ts.tv_sec == 0 && ts.tv_nsec == 0) {
        return None;
    }
    Some(Timestamp::from_nanos(ts.tv_sec, ts.tv_nsec as u32))
}

fn now() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp::from_nanos(d.as_secs() as i64, d.subsec_nanos())
}

/// Reads (and so resets) `PACKET_STATISTICS`, adding to the totals.
fn add_stats(fd: libc::c_int, c: &Counters) {
    #[repr(C)]
    #[derive(Default)]
    struct TpacketStats {
        tp_packets: u32,
        tp_drops: u32,
    }
    let mut st = TpacketStats::default();
    let mut len = mem::size_of::<TpacketStats>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most len bytes into st.
    let r = unsafe {
        libc::getsockopt(
            fd,
            SOL_PACKET,
            PACKET_STATISTICS,
            (&mut st as *mut TpacketStats).cast(),
            &mut len,
        )
    };
    if r == 0 {
        // tp_packets counts drops too.
        c.received.fetch_add(st.tp_packets as u64, Ordering::SeqCst);
        c.dropped.fetch_add(st.tp_drops as u64, Ordering::SeqCst);
    }
}

/// The frame's length on the wire, from the IP header's length field, when the frame holds
/// that much of the header; otherwise the captured length.
pub fn wire_len(linktype: LinkType, data: &[u8]) -> u32 {
    let at = match linktype {
        LinkType::ETHERNET => {
            if data.len() < 14
                || !matches!(u16::from_be_bytes([data[12], data[13]]), 0x0800 | 0x86dd)
            {
                return data.len() as u32;
            }
            14
        }
        LinkType::RAW => 0,
        _ => return data.len() as u32,
    };
    let ip = &data[at..];
    let declared = match ip.first().map(|b| b >> 4) {
        Some(4) if ip.len() >= 4 => u16::from_be_bytes([ip[2], ip[3]]) as usize,
        Some(6) if ip.len() >= 6 => 40 + u16::from_be_bytes([ip[4], ip[5]]) as usize,
        _ => 0,
    };
    (at + declared).max(data.len()) as u32
}

fn reader(
    i: usize,
    mut o: Opened,
    tx: Sender<Event>,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
) {
    let mut since_stats = 0u32;
    // After a stop request the reader keeps going until the socket is empty (a read times
    // out) or DRAIN has passed: packets the kernel already queued are decoded, not lost.
    let mut deadline: Option<std::time::Instant> = None;
    loop {
        if stop.load(Ordering::Relaxed) {
            let d = *deadline.get_or_insert_with(|| std::time::Instant::now() + DRAIN);
            if std::time::Instant::now() >= d {
                break;
            }
        }
        match o.rx.next() {
            Ok(data) => {
                let ts = kernel_stamp(o.fd).unwrap_or_else(now);
                let p = LivePacket {
                    iface: i,
                    ts,
                    orig_len: wire_len(o.iface.linktype, data),
                    data: data.to_vec(),
                };
                if tx.send(Event::Packet(p)).is_err() {
                    break;
                }
                since_stats += 1;
                if since_stats >= 1024 {
                    since_stats = 0;
                    add_stats(o.fd, &counters);
                }
            }
            Err(e)
                if e.kind() == io::ErrorKind::TimedOut
                    || e.kind() == io::ErrorKind::Interrupted =>
            {
                add_stats(o.fd, &counters);
                since_stats = 0;
                if deadline.is_some() {
                    break;
                }
            }
            Err(err) => {
                let _ = tx.send(Event::Error { iface: i, err });
                break;
            }
        }
    }
    add_stats(o.fd, &counters);
    let _ = tx.send(Event::Ended(i));
}

fn stop_sigset() -> libc::sigset_t {
    // SAFETY: sigset manipulation on a local.
    unsafe {
        let mut set: libc::sigset_t = mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        set
    }
}

/// Blocks SIGINT and SIGTERM in the calling thread (and so in every thread it creates
/// afterwards): they are then received only by the signal thread [`Capture::start`] runs,
/// which turns them into a clean stop. Call before creating any thread.
pub fn block_stop_signals() {
    let set = stop_sigset();
    // SAFETY: set is a valid sigset_t.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
}

fn signal_waiter(tx: Sender<Event>) {
    let set = stop_sigset();
    loop {
        let mut sig = 0;
        // SAFETY: set is a valid sigset_t, sig a valid out pointer.
        if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
            return;
        }
        if tx.send(Event::Signal(sig)).is_err() {
            return;
        }
    }
}

/// After the sockets (and any output file) are open wsdump needs no privilege: sets
/// `PR_SET_NO_NEW_PRIVS` and empties the effective, permitted and inheritable capability
/// sets. What remains is the user id itself (root stays uid 0, with no capabilities) and the
/// open packet sockets. Failures are ignored: this only narrows what a bug could do.
pub fn drop_privileges() {
    #[repr(C)]
    struct CapHeader {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Default, Clone, Copy)]
    struct CapData {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [CapData::default(); 2];
    // SAFETY: prctl with integer arguments; capset with a v3 header and two data structs.
    unsafe {
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(proto: u8, frag: u16, ihl: u8, sport: u16, dport: u16) -> Vec<u8> {
        let mut p = vec![0u8; ihl as usize * 4 + 20];
        p[0] = 0x40 | ihl;
        p[6..8].copy_from_slice(&frag.to_be_bytes());
        p[9] = proto;
        let t = ihl as usize * 4;
        p[t..t + 2].copy_from_slice(&sport.to_be_bytes());
        p[t + 2..t + 4].copy_from_slice(&dport.to_be_bytes());
        p
    }

    fn v6(next: u8, sport: u16, dport: u16) -> Vec<u8> {
        let mut p = vec![0u8; 60];
        p[0] = 0x60;
        p[6] = next;
        p[40..42].copy_from_slice(&sport.to_be_bytes());
        p[42..44].copy_from_slice(&dport.to_be_bytes());
        p
    }

    fn eth(ethertype: u16, ip: Vec<u8>) -> Vec<u8> {
        let mut p = vec![0u8; 12];
        p.extend_from_slice(&ethertype.to_be_bytes());
        p.extend(ip);
        p
    }

    /// The `--port` list goes through the capture-filter compiler: 64 ports and more once
    /// made the old one panic ("BPF jump too long").
    #[test]
    fn filter_with_200_ports() {
        use crate::capfilter::{CaptureFilter, bpf};
        let ports: Vec<u16> = (7000..7200).collect();
        for lt in [LinkType::ETHERNET, LinkType::RAW] {
            let prog = CaptureFilter::ports(&ports).compile(lt, SNAPLEN).unwrap();
            bpf::validate(&prog).unwrap();
            let wrap = |t, ip: Vec<u8>| {
                if lt == LinkType::ETHERNET {
                    eth(t, ip)
                } else {
                    ip
                }
            };
            assert_eq!(
                bpf::run(&prog, &wrap(0x0800, v4(6, 0, 5, 7199, 1))),
                SNAPLEN
            );
            assert_eq!(
                bpf::run(&prog, &wrap(0x0800, v4(6, 0, 5, 1, 7000))),
                SNAPLEN
            );
            assert_eq!(bpf::run(&prog, &wrap(0x0800, v4(6, 0, 5, 1, 7200))), 0);
            assert_eq!(bpf::run(&prog, &wrap(0x0800, v4(6, 0x10, 5, 1, 7000))), 0);
            assert_eq!(bpf::run(&prog, &wrap(0x86dd, v6(6, 7100, 2))), SNAPLEN);
            assert_eq!(bpf::run(&prog, &wrap(0x86dd, v6(6, 6999, 2))), 0);
            assert_eq!(bpf::run(&prog, &wrap(0x86dd, v6(17, 7100, 2))), 0);
        }
    }

    #[test]
    fn wire_len_from_ip_header() {
        let mut p = eth(0x0800, v4(6, 0, 5, 1, 2));
        p[16..18].copy_from_slice(&65000u16.to_be_bytes());
        assert_eq!(wire_len(LinkType::ETHERNET, &p), 14 + 65000);
        let mut q = v6(6, 1, 2);
        q[4..6].copy_from_slice(&1000u16.to_be_bytes());
        assert_eq!(wire_len(LinkType::RAW, &q), 1040);
        assert_eq!(wire_len(LinkType::ETHERNET, &[0u8; 10]), 10);
    }
}
