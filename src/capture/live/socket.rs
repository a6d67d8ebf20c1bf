//! The packet socket of one interface: created by wsdump —
//! `socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL))` — prepared, and handed to
//! `pnet::datalink::channel` through `Config::socket_fd`, which binds it to the interface.
//!
//! Before the bind the socket gets its BPF filter ([`super::filter`]) and, on loopback,
//! `PACKET_IGNORE_OUTGOING`: on `lo` the kernel delivers every packet twice to a packet
//! socket, once as `PACKET_OUTGOING` and once as `PACKET_HOST`, and without it every segment
//! would be seen twice. Until the bind an `ETH_P_ALL` socket hears every interface, so
//! whatever it queued before the bind is drained and discarded. After the bind it may join
//! a fanout group (`PACKET_FANOUT`) and gets its receive ring ([`super::ring`]), which is
//! what libpcap does in the same order.

use super::LiveError;
use crate::capture::LinkType;
use pnet::datalink::{self, Channel, NetworkInterface};
use std::io;
use std::mem;

/// The `setsockopt` level of `AF_PACKET` options (linux/socket.h), which the libc crate does
/// not export on every target.
pub const SOL_PACKET: libc::c_int = 263;
const PACKET_STATISTICS: libc::c_int = 6;
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
const ETH_P_ALL: u16 = 0x0003;
const ARPHRD_ETHER: u16 = 1;
const ARPHRD_LOOPBACK: u16 = 772;
const ARPHRD_NONE: u16 = 0xfffe;

/// The link type a device type is captured as, if wsdump can decode it.
pub fn linktype_for(arphrd: u16) -> Option<LinkType> {
    match arphrd {
        ARPHRD_ETHER | ARPHRD_LOOPBACK => Some(LinkType::ETHERNET),
        ARPHRD_NONE => Some(LinkType::RAW),
        _ => None,
    }
}

/// A bound packet socket. pnet's receiver owns the descriptor (it closes it when dropped);
/// wsdump reads the socket's ring itself, so the receiver is only kept alive.
pub struct Socket {
    /// The packet socket's descriptor; borrowed, not owned (see above): never close it.
    pub fd: libc::c_int,
    /// The interface's link type as the kernel gives it (`ARPHRD_*`, linux/if_arp.h).
    pub arphrd: u16,
    /// The pcap link type its frames are decoded as.
    pub linktype: LinkType,
    _pnet: Box<dyn datalink::DataLinkReceiver>,
}

/// Creates a packet socket; the error says whether privilege is what is missing.
fn packet_socket() -> Result<libc::c_int, LiveError> {
    // SAFETY: plain socket(2) call.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW,
            ETH_P_ALL.to_be() as libc::c_int,
        )
    };
    if fd >= 0 {
        return Ok(fd);
    }
    let err = io::Error::last_os_error();
    Err(match err.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => LiveError::Permission,
        _ => LiveError::Os {
            what: "cannot open a packet socket".into(),
            err,
        },
    })
}

/// Opens the socket of `nic` and binds it, `prepare` having set what must precede the bind
/// (the filter); `Ok(Err(arphrd))` when wsdump does not decode the interface's link layer.
/// With `fanout`, the socket joins that fanout group in hash mode: the kernel spreads the
/// interface's packets over the group's sockets by flow, both directions of a connection
/// to the same socket (IP fragments are reassembled first so that they follow their flow).
pub fn open(
    nic: &NetworkInterface,
    fanout: Option<u16>,
    prepare: impl FnOnce(libc::c_int, LinkType) -> Result<(), LiveError>,
) -> Result<Result<Socket, u16>, LiveError> {
    let fd = packet_socket()?;
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
    if let Err(e) = prepare(fd, linktype) {
        return Err(fail(e));
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
    let cfg = datalink::Config {
        write_buffer_size: 64,
        promiscuous: false,
        socket_fd: Some(fd),
        linux_fanout: fanout.map(|group_id| datalink::FanoutOption {
            group_id,
            fanout_type: datalink::FanoutType::HASH,
            defrag: true,
            rollover: false,
        }),
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
    let _ = statistics(fd);
    Ok(Ok(Socket {
        fd,
        arphrd,
        linktype,
        _pnet: rx,
    }))
}

/// `setsockopt(2)` with `v` as the option value (its size is `size_of::<T>()`, so `T` must
/// be the exact C type the option takes); the OS error on failure.
pub fn setsockopt<T>(
    fd: libc::c_int,
    level: libc::c_int,
    name: libc::c_int,
    v: &T,
) -> io::Result<()> {
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
        return Err(LiveError::Os {
            what: format!("{name}: cannot read the device type"),
            err: io::Error::last_os_error(),
        });
    }
    Ok(req.addr.sa_family)
}

/// Reads (and so resets) `PACKET_STATISTICS`: packets that passed the filter since the last
/// read (drops included), and of those, dropped because the ring was full.
pub fn statistics(fd: libc::c_int) -> Option<(u64, u64)> {
    #[repr(C)]
    #[derive(Default)]
    struct TpacketStats {
        tp_packets: u32,
        tp_drops: u32,
        tp_freeze_q_cnt: u32,
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
    (r == 0).then_some((st.tp_packets as u64, st.tp_drops as u64))
}
