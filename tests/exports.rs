//! Export formats checked against their reference readers: Community ID against tshark's
//! `communityid` dissector, the pcapng writer against tshark and our own reader.
//!
//! The tshark checks are skipped (loudly) without tshark, except under CI=true, where a
//! missing tshark fails them: `.ci/run` installs it.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::Command;
use wsdump::analyzer::Config;
use wsdump::capture::file::CaptureFile;
use wsdump::capture::pcapng_writer::PcapngWriter;
use wsdump::capture::{LinkType, RawPacket, Timestamp};
use wsdump::engine::Pipeline;
use wsdump::event::{Event, Sink};
use wsdump::output::community_id::community_id;

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples")
}

/// `Some("tshark")` when it runs here; `None` (after saying so) when it does not, which
/// fails the test under CI=true.
fn tshark(test: &str) -> Option<&'static str> {
    let ok = Command::new("tshark")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        return Some("tshark");
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: tshark is not installed, and CI=true does not accept the skip");
    }
    // Straight to stderr: the harness captures eprintln! of passing tests, and a skip must
    // be seen.
    let _ = io::Write::write_all(
        &mut io::stderr(),
        format!("\n!!!!!!!! SKIPPED {test}: tshark not found (apt-get install tshark) !!!!!!!!\n")
            .as_bytes(),
    );
    None
}

fn run_tshark(args: &[&str]) -> String {
    let out = Command::new("tshark").args(args).output().unwrap();
    assert!(out.status.success(), "tshark {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// Owned copy of a packet.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Pkt {
    ts: Timestamp,
    linktype: LinkType,
    orig_len: u32,
    data: Vec<u8>,
    iface: u32,
}

impl Pkt {
    fn raw(&self) -> RawPacket<'_> {
        RawPacket {
            ts: self.ts,
            linktype: self.linktype,
            orig_len: self.orig_len,
            data: &self.data,
            iface: self.iface,
        }
    }
}

fn read_packets(path: &Path) -> Vec<Pkt> {
    let mut cap = CaptureFile::open(std::fs::File::open(path).unwrap()).unwrap();
    let mut v = Vec::new();
    cap.for_each_packet(|p| {
        v.push(Pkt {
            ts: p.ts,
            linktype: p.linktype,
            orig_len: p.orig_len,
            data: p.data.to_vec(),
            iface: p.iface,
        });
        ControlFlow::Continue(())
    })
    .unwrap();
    v
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wsdump-exports-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

/// Every sample capture (pcap and pcapng) at the top of samples/.
fn captures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(samples())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("pcap" | "pcapng")
            )
        })
        .collect();
    v.sort();
    v
}

/// The connections wsdump's analyzer reports for a capture.
#[derive(Default)]
struct Conns(BTreeSet<(SocketAddr, SocketAddr)>);

impl Sink for Conns {
    fn event(&mut self, ev: &Event<'_>) -> io::Result<bool> {
        if let Some(c) = ev.conn {
            self.0.insert((c.client, c.server));
        }
        Ok(true)
    }
}

fn connections(path: &Path) -> BTreeSet<(SocketAddr, SocketAddr)> {
    let mut cap = CaptureFile::open(std::fs::File::open(path).unwrap()).unwrap();
    let mut sink = Conns::default();
    Pipeline::run(&mut cap, Config::default(), &mut sink).unwrap();
    sink.0
}

#[test]
fn community_id_agrees_with_tshark_on_every_sample() {
    if tshark("community_id_agrees_with_tshark_on_every_sample").is_none() {
        return;
    }
    let (mut flows, mut conns) = (0, 0);
    for cap in captures() {
        let p = cap.to_str().unwrap();
        // tshark 4.0 has the dissector off by default: --enable-protocol turns it on.
        let out = run_tshark(&[
            "-r",
            p,
            "--enable-protocol",
            "communityid",
            "-Y",
            "tcp",
            "-T",
            "fields",
            "-E",
            "separator=/t",
            "-e",
            "ip.src",
            "-e",
            "ipv6.src",
            "-e",
            "tcp.srcport",
            "-e",
            "ip.dst",
            "-e",
            "ipv6.dst",
            "-e",
            "tcp.dstport",
            "-e",
            "communityid",
        ]);
        // Flow (unordered endpoints) → the ID tshark gave it.
        let mut by_flow: BTreeMap<BTreeSet<SocketAddr>, String> = BTreeMap::new();
        for line in out.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            assert_eq!(f.len(), 7, "{p}: {line:?}");
            let ip = |v4: &str, v6: &str| -> IpAddr {
                // Tunnelled packets list several addresses: the innermost is last.
                let s = if v6.is_empty() { v4 } else { v6 };
                s.rsplit(',').next().unwrap().parse().unwrap()
            };
            let src = SocketAddr::new(ip(f[0], f[1]), f[2].parse().unwrap());
            let dst = SocketAddr::new(ip(f[3], f[4]), f[5].parse().unwrap());
            let id = f[6].to_string();
            assert!(id.starts_with("1:"), "{p}: no community id in {line:?}");
            assert_eq!(community_id(src, dst, 0), id, "{p}: {src} → {dst}");
            let prev = by_flow.insert([src, dst].into(), id.clone());
            if prev.is_none() {
                flows += 1;
            }
            assert!(prev.is_none_or(|x| x == id), "{p}: {src} {dst}");
        }
        // Every connection wsdump reports has the ID tshark gives its packets.
        for (client, server) in connections(&cap) {
            let theirs = by_flow
                .get(&BTreeSet::from([client, server]))
                .unwrap_or_else(|| panic!("{p}: tshark has no flow {client} {server}"));
            assert_eq!(&community_id(client, server, 0), theirs, "{p}");
            conns += 1;
        }
    }
    eprintln!("community id: {flows} tshark flows and {conns} wsdump connections agree");
    assert!(
        conns >= 10,
        "expected the samples' connections, got {conns}"
    );
}

/// A comment for some packets: every third, with text that needs UTF-8.
fn comment_for(i: usize) -> Option<String> {
    i.is_multiple_of(3)
        .then(|| format!("wsdump #{i}: caf\u{e9} \u{2192} ok"))
}

fn write_pcapng(packets: &[Pkt], keylog: Option<&[u8]>, comments: bool, name: &str) -> PathBuf {
    let path = scratch(name);
    let f = io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let mut w = PcapngWriter::new(f, 262_144).unwrap();
    if let Some(k) = keylog {
        w.write_tls_keys(k).unwrap();
    }
    for (i, p) in packets.iter().enumerate() {
        let c = if comments { comment_for(i) } else { None };
        w.write_with_comment(&p.raw(), c.as_deref()).unwrap();
    }
    w.flush().unwrap();
    path
}

#[test]
fn pcapng_reads_back_identically() {
    // Microsecond SLL2, two interfaces of different link types, nanosecond Ethernet.
    for name in [
        "workerman-chat.pcap",
        "dumpcap-multi.pcapng",
        "nanosecond.pcap",
    ] {
        let orig = read_packets(&samples().join(name));
        let path = write_pcapng(&orig, None, true, &format!("{name}.rt.pcapng"));
        let mut back = read_packets(&path);
        // Our reader numbers interfaces by IDB; the source's numbers are the same here
        // because each source interface has one link type.
        for (b, o) in back.iter_mut().zip(&orig) {
            assert_eq!(b.iface, o.iface, "{name}");
        }
        back.iter_mut().for_each(|b| b.iface = 0);
        let orig: Vec<Pkt> = orig
            .into_iter()
            .map(|mut o| {
                o.iface = 0;
                o
            })
            .collect();
        assert_eq!(back.len(), orig.len(), "{name}");
        assert!(
            back == orig,
            "{name}: packets differ after a pcapng round trip"
        );
    }
}

#[test]
fn pcapng_comments_and_lengths_in_tshark() {
    if tshark("pcapng_comments_and_lengths_in_tshark").is_none() {
        return;
    }
    let orig = read_packets(&samples().join("workerman-chat.pcap"));
    let path = write_pcapng(&orig, None, true, "comments.pcapng");
    let p = path.to_str().unwrap();
    let comments = run_tshark(&[
        "-r",
        p,
        "-Y",
        "frame.comment",
        "-T",
        "fields",
        "-e",
        "frame.number",
        "-e",
        "frame.comment",
    ]);
    let want: Vec<String> = (0..orig.len())
        .filter_map(|i| comment_for(i).map(|c| format!("{}\t{c}", i + 1)))
        .collect();
    let got: Vec<&str> = comments.lines().collect();
    assert_eq!(got, want);
    let commented = want.len();
    let lens = run_tshark(&[
        "-r",
        p,
        "-T",
        "fields",
        "-e",
        "frame.len",
        "-e",
        "frame.cap_len",
        "-e",
        "frame.time_epoch",
    ]);
    let want: Vec<String> = orig
        .iter()
        .map(|o| {
            format!(
                "{}\t{}\t{}.{:09}",
                o.orig_len,
                o.data.len(),
                o.ts.secs,
                o.ts.nanos
            )
        })
        .collect();
    let got: Vec<&str> = lens.lines().collect();
    assert_eq!(got, want);
    // tshark's own reading of the original must agree too.
    let orig_lens = run_tshark(&[
        "-r",
        samples().join("workerman-chat.pcap").to_str().unwrap(),
        "-T",
        "fields",
        "-e",
        "frame.len",
        "-e",
        "frame.cap_len",
        "-e",
        "frame.time_epoch",
    ]);
    assert_eq!(orig_lens, lens);
    eprintln!(
        "pcapng: {} packets, {} comments as tshark reads them",
        orig.len(),
        commented
    );
}

#[test]
fn pcapng_decryption_secrets_block_decrypts_wss_in_tshark() {
    if tshark("pcapng_decryption_secrets_block_decrypts_wss_in_tshark").is_none() {
        return;
    }
    let orig = read_packets(&samples().join("tls-wss.pcap"));
    let keylog = std::fs::read(samples().join("tls-wss.keylog")).unwrap();
    let texts = |path: &Path| -> Vec<String> {
        // No -o tls.keylog_file: the keys can only come from the file itself.
        run_tshark(&[
            "-r",
            path.to_str().unwrap(),
            "-Y",
            "websocket.payload.text",
            "-T",
            "fields",
            "-e",
            "websocket.payload.text",
        ])
        .lines()
        .map(str::to_string)
        .collect()
    };
    let without = write_pcapng(&orig, None, false, "tls-nokeys.pcapng");
    assert!(texts(&without).is_empty(), "tshark decrypted without keys?");
    let with = write_pcapng(&orig, Some(&keylog), false, "tls-dsb.pcapng");
    let got = texts(&with);
    // What the peers sent inside TLS (samples/tls-wss.decrypted.jsonl), texts only.
    let want: Vec<String> = std::fs::read_to_string(samples().join("tls-wss.decrypted.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["text"].as_str().map(str::to_string)
        })
        .collect();
    assert!(!want.is_empty());
    for t in &want {
        assert!(
            got.iter().any(|g| g == t),
            "tshark did not decrypt {t:?} with the DSB: {got:?}"
        );
    }
    eprintln!("pcapng DSB: tshark decrypted {} websocket texts", got.len());
}
