//! Decoding a file on several threads prints what one thread prints: every sample and view,
//! and a capture built to exercise what the threads must agree on (connection numbers,
//! sweeps of idle and closed connections, evictions from a full table, reused 4-tuples,
//! packets that are not TCP, the end-of-input flush).

mod common;

use common::{Capture, tcp};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use wsdump::capture::writer::PcapWriter;
use wsdump::capture::{LinkType, RawPacket, Timestamp};

fn run(capture: &Path, threads: usize, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wsdump"))
        .arg("-r")
        .arg(capture)
        .args(["--color", "never", "--threads", &threads.to_string()])
        .args(args)
        .env("LC_ALL", "C.UTF-8")
        .output()
        .unwrap()
}

/// Every thread count gives one thread's stdout, stderr and status.
fn assert_same(capture: &Path, args: &[&str], counts: &[usize]) -> usize {
    let one = run(capture, 1, args);
    for &n in counts {
        let many = run(capture, n, args);
        let what = format!("{} {args:?} with {n} threads", capture.display());
        assert_eq!(
            String::from_utf8_lossy(&one.stdout),
            String::from_utf8_lossy(&many.stdout),
            "{what}: stdout"
        );
        assert_eq!(one.stderr, many.stderr, "{what}: stderr");
        assert_eq!(one.status.code(), many.status.code(), "{what}: status");
    }
    one.stdout.len()
}

#[test]
fn samples_print_the_same_on_any_number_of_threads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    let mut captures: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    captures.sort();
    assert!(captures.len() >= 10, "samples missing: {captures:?}");
    let views: &[&[&str]] = &[
        &[],
        &["-m"],
        &["--json"],
        &["-v"],
        &["--json", "-v"],
        &["-X"],
        &["--dir", "s2c"],
        &["-c", "3"],
        &["--json", "-m", "-e", "e"],
    ];
    let mut printed = 0;
    for c in &captures {
        for v in views {
            printed += assert_same(c, v, &[2, 3]);
        }
    }
    assert!(
        printed > 100_000,
        "the samples printed only {printed} bytes"
    );
}

/// A connection from `port` to the server, opened with a handshake and an upgrade.
fn open(port: u16) -> Capture {
    let mut c = Capture::between(([10, 0, 0, 1], port), ([10, 0, 0, 2], 8080));
    c.upgrade("/chat");
    c
}

#[test]
fn sweeps_evictions_and_reuse_agree_across_threads() {
    // Twelve connections, interleaved packet by packet. A third close; the others fall
    // silent, half of those in the middle of a message, and are forgotten by the idle sweep
    // 700 s later, all at one packet (so several threads report in one sweep); one 4-tuple
    // is used twice; with --max-conns the table holds fewer connections than are open
    // (evictions); and there are packets that are not TCP.
    let mut conns: Vec<Capture> = (0..12).map(|i| open(41000 + i)).collect();
    for (i, c) in conns.iter_mut().enumerate() {
        for m in 0..4 {
            let text = format!("{{\"type\":\"say\",\"content\":\"connection {i} message {m}\"}}");
            c.frame(m % 2 == 0, 1, text.as_bytes(), None);
        }
        if i % 3 == 0 {
            c.frame(true, 8, &[0x03, 0xe8], None);
            c.frame(false, 8, &[0x03, 0xe8], None);
            c.fin();
        } else if i % 3 == 1 {
            // Half a message: whatever is flushed at the end says so.
            c.send(false, &[0x81, 0x7e, 0x01, 0x00, b'x']);
        }
    }
    let mut packets: Vec<(i64, Vec<u8>)> = Vec::new();
    let mut t = 1_700_000_000i64;
    let longest = conns.iter().map(|c| c.packets.len()).max().unwrap();
    for k in 0..longest {
        for c in &conns {
            if let Some(p) = c.packets.get(k) {
                packets.push((t, p.clone()));
                t += 1;
            }
        }
        if k == 10 {
            // An IPv4 packet that is not TCP (UDP), and a truncated one.
            let mut udp = tcp(([10, 0, 0, 9], 53), ([10, 0, 0, 1], 53), 0, 0, 0, b"dns");
            udp[9] = 17;
            packets.push((t, udp));
            packets.push((t, vec![0x45, 0, 0]));
        }
    }
    // The 4-tuple of connection 0 again, after the idle timeout (--idle-timeout 600 below):
    // a new connection.
    t += 700;
    let mut again = open(41000);
    again.frame(true, 1, b"second life", None);
    for p in again.packets {
        t += 1;
        packets.push((t, p));
    }
    let mut pcap = Vec::new();
    let mut w = PcapWriter::new(&mut pcap, LinkType::RAW, false, 262144).unwrap();
    for (ts, data) in &packets {
        w.write(&RawPacket {
            ts: Timestamp::from_micros(*ts, 0),
            linktype: LinkType::RAW,
            orig_len: data.len() as u32,
            data,
            iface: 0,
        })
        .unwrap();
    }
    w.flush().unwrap();
    let dir = std::env::temp_dir().join(format!("wsdump-threads-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("interleaved.pcap");
    std::fs::write(&file, &pcap).unwrap();

    for args in [
        &["-v", "--idle-timeout", "600"][..],
        &["--json", "-v", "--idle-timeout", "600"],
        &["-v", "--max-conns", "4", "--idle-timeout", "600"],
        &["--json", "--max-conns", "3", "--idle-timeout", "600"],
        &["-m", "-c", "20", "--idle-timeout", "600"],
    ] {
        assert_same(&file, args, &[2, 3, 4, 7]);
    }
    // The capture does what it was built for.
    let out = run(
        &file,
        1,
        &["--json", "-v", "--max-conns", "4", "--idle-timeout", "600"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\"evicted\""), "no eviction");
    assert!(
        text.contains("\"conn\":13"),
        "the reused 4-tuple is not a new connection"
    );
    assert!(
        text.contains("bad_packet"),
        "no notice for the truncated packet"
    );
    let out = run(&file, 1, &["--json", "-m", "--idle-timeout", "600"]);
    let swept = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("\"incomplete\""))
        .count();
    assert_eq!(swept, 4, "unfinished messages flushed by the idle sweep");
    if std::env::var_os("WSDUMP_KEEP").is_none() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
