//! Capture filters checked against tcpdump, the reference.
//!
//! For every capture (the repository's `samples/`, the external captures under
//! `/work/shared/external` or `$WSDUMP_EXTERNAL_CAPTURES` when present — read in place, never
//! copied — and synthetic captures written here with the corner cases: IPv4 options and
//! fragments, IPv6 fragment and hop-by-hop headers, 802.1Q, UDP, ARP, raw IP, Linux SLL) and
//! for every expression of a list (filled in per capture with addresses and ports that
//! occur in it), tcpdump selects packets with `tcpdump -r CAPTURE -w - 'tcp and (EXPR)'`
//! (plus `vlan and tcp and (EXPR)` on Ethernet captures with 802.1Q frames: tcpdump only
//! looks inside a tag when told to, wsdump's program always does). Then:
//!
//! * wsdump's BPF program, run by `capfilter::bpf::run`, must accept exactly the same
//!   packets;
//! * wsdump's evaluator on the decoded segment must agree wherever wsdump's decoder and
//!   tcpdump's `tcp` agree on what a TCP packet is (they differ on purpose on later IPv4
//!   fragments, IPv6 extension headers and stacked VLAN tags; those are counted, not
//!   compared).
//!
//! Needs tcpdump: without it the test says SKIPPED (and fails under CI=true, which installs
//! it: see `.ci/run`).

use std::collections::HashMap;
use std::io::Cursor;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::Command;
use wsdump::capfilter::{CaptureFilter, bpf};
use wsdump::capture::LinkType;
use wsdump::capture::file::CaptureFile;
use wsdump::packet::PacketError;

const SNAP: u32 = 262_144;

struct Pkt {
    lt: LinkType,
    data: Vec<u8>,
}

fn read_capture(bytes: Vec<u8>) -> Vec<Pkt> {
    let mut out = Vec::new();
    let Ok(mut f) = CaptureFile::open(Cursor::new(bytes)) else {
        return out;
    };
    let _ = f.for_each_packet(|p| {
        out.push(Pkt {
            lt: p.linktype,
            data: p.data.to_vec(),
        });
        ControlFlow::Continue(())
    });
    out
}

fn tcpdump_available() -> bool {
    Command::new("tcpdump")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// tcpdump's output for `expr` on `file`: the capture it writes, or its error message.
fn tcpdump_run(file: &Path, expr: &str) -> Result<Vec<u8>, String> {
    let out = Command::new("tcpdump")
        .args(["-n", "-r"])
        .arg(file)
        .args(["-w", "-", expr])
        .output()
        .map_err(|e| e.to_string())?;
    let err = String::from_utf8_lossy(&out.stderr);
    if err.contains("expression rejects all packets") {
        // tcpdump's optimizer proved the filter false: no packet passes.
        return Ok(Vec::new());
    }
    if out.stdout.len() < 24 {
        return Err(err.into_owned());
    }
    Ok(out.stdout)
}

/// The packets tcpdump keeps, as one flag per packet of `pkts` (matched in order by bytes:
/// a filter gives equal bytes equal verdicts). `None` when tcpdump refuses the file.
fn tcpdump_verdicts(file: &Path, expr: &str, pkts: &[Pkt]) -> Option<Vec<bool>> {
    let out = match tcpdump_run(file, expr) {
        Ok(o) => o,
        Err(err) => {
            assert!(
                !err.contains("syntax error")
                    && !err.contains("illegal")
                    && !err.contains("modifier"),
                "tcpdump refused `{expr}`: {err}"
            );
            return None;
        }
    };
    Some(match_kept(&out, pkts))
}

fn match_kept(out: &[u8], pkts: &[Pkt]) -> Vec<bool> {
    let kept = read_capture(out.to_vec());
    let mut v = vec![false; pkts.len()];
    let mut j = 0;
    for (i, p) in pkts.iter().enumerate() {
        if j < kept.len() && kept[j].data == p.data {
            v[i] = true;
            j += 1;
        }
    }
    assert_eq!(
        j,
        kept.len(),
        "tcpdump kept packets not matched to the input"
    );
    v
}

// ---------------------------------------------------------------------------------------
// Synthetic captures.

fn pcap(linktype: u32, frames: &[Vec<u8>]) -> Vec<u8> {
    let mut o = Vec::new();
    o.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    o.extend_from_slice(&2u16.to_le_bytes());
    o.extend_from_slice(&4u16.to_le_bytes());
    o.extend_from_slice(&[0; 8]);
    o.extend_from_slice(&65535u32.to_le_bytes());
    o.extend_from_slice(&linktype.to_le_bytes());
    for (i, f) in frames.iter().enumerate() {
        o.extend_from_slice(&(1_700_000_000u32 + i as u32).to_le_bytes());
        o.extend_from_slice(&0u32.to_le_bytes());
        o.extend_from_slice(&(f.len() as u32).to_le_bytes());
        o.extend_from_slice(&(f.len() as u32).to_le_bytes());
        o.extend_from_slice(f);
    }
    o
}

fn tcp_header(sp: u16, dp: u16) -> Vec<u8> {
    let mut t = vec![0u8; 20];
    t[0..2].copy_from_slice(&sp.to_be_bytes());
    t[2..4].copy_from_slice(&dp.to_be_bytes());
    t[12] = 0x50;
    t[13] = 0x18;
    t.extend_from_slice(b"hi");
    t
}

fn v4(proto: u8, frag: u16, opt_words: u8, s: [u8; 4], d: [u8; 4], sp: u16, dp: u16) -> Vec<u8> {
    let ihl = 5 + opt_words;
    let mut p = vec![0u8; ihl as usize * 4];
    p[0] = 0x40 | ihl;
    p[6..8].copy_from_slice(&frag.to_be_bytes());
    p[8] = 64;
    p[9] = proto;
    p[12..16].copy_from_slice(&s);
    p[16..20].copy_from_slice(&d);
    for b in &mut p[20..] {
        *b = 1; // NOP options
    }
    p.extend(tcp_header(sp, dp));
    let total = p.len() as u16;
    p[2..4].copy_from_slice(&total.to_be_bytes());
    p
}

/// IPv6 with the given chain of next headers (`[6]`: TCP directly; `[44, 6]`: a fragment
/// header; `[0, 6]`: hop-by-hop).
fn v6(chain: &[u8], s: &str, d: &str, sp: u16, dp: u16, frag_off: u16) -> Vec<u8> {
    let mut p = vec![0u8; 40];
    p[0] = 0x60;
    p[6] = chain[0];
    p[7] = 64;
    p[8..24].copy_from_slice(&s.parse::<std::net::Ipv6Addr>().unwrap().octets());
    p[24..40].copy_from_slice(&d.parse::<std::net::Ipv6Addr>().unwrap().octets());
    for w in chain.windows(2) {
        let mut h = [w[1], 0, 0, 0, 0, 0, 0, 7];
        if w[0] == 44 {
            h[2..4].copy_from_slice(&frag_off.to_be_bytes());
        }
        p.extend_from_slice(&h);
    }
    p.extend(tcp_header(sp, dp));
    let plen = (p.len() - 40) as u16;
    p[4..6].copy_from_slice(&plen.to_be_bytes());
    p
}

fn eth(tags: &[u16], ethertype: u16, l3: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
    for t in tags {
        f.extend_from_slice(&t.to_be_bytes());
        f.extend_from_slice(&[0x00, 0x64]);
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(l3);
    f
}

fn sll(ethertype: u16, l3: &[u8]) -> Vec<u8> {
    let mut f = vec![0, 0, 0x03, 0x04, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0];
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(l3);
    f
}

const LO: [u8; 4] = [127, 0, 0, 1];
const TEN: [u8; 4] = [10, 1, 2, 3];
const LAN: [u8; 4] = [192, 168, 1, 10];

fn synthetic_ip() -> Vec<(u16, Vec<u8>)> {
    vec![
        (0x0800, v4(6, 0x4000, 0, LO, LO, 5555, 7272)),
        (0x0800, v4(6, 0x4000, 0, LO, LO, 7272, 5555)),
        (0x0800, v4(6, 0, 3, TEN, LAN, 80, 40000)),
        (0x0800, v4(6, 0, 10, LAN, TEN, 40001, 443)),
        (0x0800, v4(6, 0x2000, 0, TEN, LO, 1023, 7272)),
        (0x0800, v4(6, 0x00b9, 0, TEN, LO, 7272, 7272)),
        (0x0800, v4(6, 0x20b9, 0, LO, TEN, 80, 80)),
        (0x0800, v4(17, 0, 0, LO, LO, 7272, 7272)),
        (0x0800, v4(1, 0, 0, LO, TEN, 0, 0)),
        (0x86dd, v6(&[6], "::1", "::1", 5555, 7272, 0)),
        (0x86dd, v6(&[6], "fe80::1", "2001:db8::7", 80, 7273, 0)),
        (0x86dd, v6(&[6], "2001:db8::7", "fe80::1", 7273, 80, 0)),
        (0x86dd, v6(&[44, 6], "::1", "::1", 7272, 7272, 1)),
        (0x86dd, v6(&[44, 6], "::1", "::1", 7272, 7272, 0x100)),
        (0x86dd, v6(&[0, 6], "::1", "::1", 7272, 7272, 0)),
        (0x86dd, v6(&[17], "::1", "::1", 7272, 7272, 0)),
        (0x0806, vec![0; 28]),
    ]
}

/// Writes the synthetic captures into `dir`.
fn synthetic(dir: &Path) -> Vec<PathBuf> {
    let ips = synthetic_ip();
    let mut ether: Vec<Vec<u8>> = ips.iter().map(|(t, ip)| eth(&[], *t, ip)).collect();
    ether.extend(ips.iter().map(|(t, ip)| eth(&[0x8100], *t, ip)));
    ether.extend(
        ips.iter()
            .take(3)
            .map(|(t, ip)| eth(&[0x88a8, 0x8100], *t, ip)),
    );
    // Cut short right after the IP header (no port can be read; the addresses can). A cut
    // between the two ports is left out: there wsdump's program may test the ports in
    // another order than tcpdump's, and the one that cannot be read rejects the packet.
    ether.push(eth(&[], 0x0800, &v4(6, 0, 0, LO, LO, 5555, 7272)[..20]));
    let raw: Vec<Vec<u8>> = ips
        .iter()
        .filter(|(t, _)| *t != 0x0806)
        .map(|(_, ip)| ip.clone())
        .collect();
    let cooked: Vec<Vec<u8>> = ips.iter().map(|(t, ip)| sll(*t, ip)).collect();
    let mut files = Vec::new();
    for (name, lt, frames) in [
        ("synthetic-ether.pcap", 1, ether),
        ("synthetic-raw.pcap", 101, raw),
        ("synthetic-sll.pcap", 113, cooked),
    ] {
        let p = dir.join(name);
        std::fs::write(&p, pcap(lt, &frames)).unwrap();
        files.push(p);
    }
    files
}

/// What tcpdump is asked for wsdump's `EXPR`: untagged frames, and frames with one 802.1Q
/// tag. The expression comes first: a bare value at its start inherits the qualifiers of
/// what precedes it in tcpdump's grammar (after `tcp and (` it would be an error, after a
/// `host` primitive it is a host, as at the very start).
fn wrap(expr: &str) -> (String, String) {
    if expr.is_empty() {
        return ("tcp".into(), "vlan and tcp".into());
    }
    (
        format!("({expr}) and tcp"),
        format!("vlan and not host 0.0.0.0 and ({expr}) and tcp"),
    )
}

// ---------------------------------------------------------------------------------------

const TEMPLATES: &[&str] = &[
    "",
    "port {P}",
    "src port {P}",
    "dst port {P}",
    "port {P} or {Q}",
    "not port {P}",
    "tcp dst port {P} or {Q} or 443",
    "host {A4}",
    "src host {A4}",
    "dst host {A4} and not src port {P}",
    "host {B4} or host {A4} and port {P}",
    "host {A4} and (port {P} or port 7272)",
    "net {N24}",
    "net {N16} and not net {N24}",
    "src and dst net {N8}",
    "src or dst host {A4} or {B4}",
    "ip6",
    "ip and portrange {PL}-{PH}",
    "host {A6}",
    "ip6 net {N64}",
    "dst host {A6} or port {Q}",
    "not (port {P} or port {Q})",
    "! ip6 && (src portrange 1-1023 || dst portrange 1-1023)",
    "port http or https",
    "portrange 0-65535",
    "not tcp",
    "ip or ip6 and not port {P}",
    "not ip and not host {A6} or src port {Q}",
    "net 127 or net ::1/128",
];

/// Addresses and ports that occur in a capture, for the templates.
fn placeholders(pkts: &[Pkt]) -> HashMap<&'static str, String> {
    let mut v4s: HashMap<[u8; 4], usize> = HashMap::new();
    let mut v6s: HashMap<std::net::Ipv6Addr, usize> = HashMap::new();
    let mut ports: HashMap<u16, usize> = HashMap::new();
    for p in pkts {
        if let Ok(s) = wsdump::packet::decode(p.lt, &p.data) {
            for a in [s.src, s.dst] {
                *ports.entry(a.port()).or_default() += 1;
                match a.ip() {
                    std::net::IpAddr::V4(x) => *v4s.entry(x.octets()).or_default() += 1,
                    std::net::IpAddr::V6(x) => *v6s.entry(x).or_default() += 1,
                }
            }
        }
    }
    fn top<K: Clone + Ord>(m: &HashMap<K, usize>, n: usize) -> Option<K> {
        let mut v: Vec<_> = m.iter().collect();
        v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        v.get(n).map(|x| x.0.clone())
    }
    let a4 = top(&v4s, 0).unwrap_or([127, 0, 0, 1]);
    let b4 = top(&v4s, 1).unwrap_or([10, 1, 2, 3]);
    let a6 = top(&v6s, 0).unwrap_or("::1".parse().unwrap());
    let p = top(&ports, 0).unwrap_or(7272);
    let q = top(&ports, 1).unwrap_or(80);
    let seg = a6.segments();
    let mut m = HashMap::new();
    let q4 = |o: [u8; 4]| format!("{}.{}.{}.{}", o[0], o[1], o[2], o[3]);
    m.insert("{A4}", q4(a4));
    m.insert("{B4}", q4(b4));
    m.insert("{N24}", format!("{}.{}.{}.0/24", a4[0], a4[1], a4[2]));
    m.insert("{N16}", format!("{}.{}", a4[0], a4[1]));
    m.insert("{N8}", format!("{}", a4[0]));
    m.insert("{A6}", a6.to_string());
    m.insert(
        "{N64}",
        format!("{:x}:{:x}:{:x}:{:x}::/64", seg[0], seg[1], seg[2], seg[3]),
    );
    m.insert("{P}", p.to_string());
    m.insert("{Q}", q.to_string());
    m.insert("{PL}", p.saturating_sub(5).to_string());
    m.insert("{PH}", p.saturating_add(5).to_string());
    m
}

fn captures() -> Vec<PathBuf> {
    let mut v = Vec::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dirs = vec![(root.join("samples"), 1)];
    let ext = std::env::var_os("WSDUMP_EXTERNAL_CAPTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/work/shared/external"));
    if ext.is_dir() {
        dirs.push((ext, 3));
    } else {
        eprintln!(
            "capfilter_tcpdump: no external captures at {}",
            ext.display()
        );
    }
    fn walk(d: &Path, depth: usize, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        let mut ents: Vec<_> = rd.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        ents.sort();
        for p in ents {
            if p.is_dir() && depth > 1 {
                walk(&p, depth - 1, out);
            } else if p.extension().is_some_and(|e| e == "pcap" || e == "pcapng") {
                out.push(p);
            }
        }
    }
    for (d, depth) in dirs {
        walk(&d, depth, &mut v);
    }
    v
}

#[derive(Default)]
struct Tally {
    files: usize,
    skipped: Vec<String>,
    cases: usize,
    packets: usize,
    bpf_agree: usize,
    eval_compared: usize,
    eval_agree: usize,
    eval_outside: usize,
    failures: Vec<String>,
}

fn check_file(file: &Path, t: &mut Tally) {
    let Ok(bytes) = std::fs::read(file) else {
        return;
    };
    let pkts = read_capture(bytes);
    if pkts.is_empty() {
        t.skipped.push(format!("{}: no packets", file.display()));
        return;
    }
    let lt = pkts[0].lt;
    if pkts.iter().any(|p| p.lt != lt) {
        t.skipped
            .push(format!("{}: several link types", file.display()));
        return;
    }
    if CaptureFilter::default().compile(lt, SNAP).is_err() {
        t.skipped.push(format!(
            "{}: link type {lt} has no BPF program",
            file.display()
        ));
        return;
    }
    // tcpdump must read the same packets.
    let Some(all) = tcpdump_verdicts(file, "", &pkts) else {
        t.skipped
            .push(format!("{}: tcpdump cannot read it", file.display()));
        return;
    };
    let n = all.iter().rposition(|&k| k).map_or(0, |i| i + 1);
    if all[..n].iter().any(|&k| !k) {
        t.skipped.push(format!(
            "{}: tcpdump and wsdump read different packets",
            file.display()
        ));
        return;
    }
    let pkts = &pkts[..n];
    let vlan = lt == LinkType::ETHERNET
        && pkts
            .iter()
            .any(|p| p.data.len() >= 14 && p.data[12..14] == [0x81, 0x00]);
    let ph = placeholders(pkts);
    t.files += 1;
    let reference = |expr: &str| -> Vec<bool> {
        let (full, tagged) = wrap(expr);
        let mut v = tcpdump_verdicts(file, &full, pkts).unwrap_or_else(|| vec![false; n]);
        if vlan {
            let tagged = tcpdump_verdicts(file, &tagged, pkts).unwrap_or_else(|| vec![false; n]);
            for (a, b) in v.iter_mut().zip(tagged) {
                *a |= b;
            }
        }
        v
    };
    let base = reference("");
    for tpl in TEMPLATES {
        let mut expr = tpl.to_string();
        for (k, v) in &ph {
            expr = expr.replace(k, v);
        }
        let f = CaptureFilter::parse(&expr).unwrap_or_else(|e| panic!("{}", e.render(&expr)));
        let prog = f.compile(lt, SNAP).unwrap();
        bpf::validate(&prog).unwrap();
        let want = reference(&expr);
        t.cases += 1;
        for (i, p) in pkts.iter().enumerate() {
            t.packets += 1;
            let got = bpf::run(&prog, &p.data) != 0;
            if got == want[i] {
                t.bpf_agree += 1;
            } else {
                t.failures.push(format!(
                    "{} packet {}: `{expr}`: tcpdump {}, wsdump BPF {got}",
                    file.display(),
                    i + 1,
                    want[i]
                ));
            }
            let decoded = wsdump::packet::decode(p.lt, &p.data);
            if decoded.is_ok() != base[i] {
                t.eval_outside += 1;
                continue;
            }
            t.eval_compared += 1;
            let eval = decoded.map(|s| f.matches_segment(&s)).unwrap_or(false);
            if eval == want[i] {
                t.eval_agree += 1;
            } else {
                t.failures.push(format!(
                    "{} packet {}: `{expr}`: tcpdump {}, wsdump evaluator {eval}",
                    file.display(),
                    i + 1,
                    want[i]
                ));
            }
        }
    }
}

#[test]
fn capture_filters_select_what_tcpdump_selects() {
    if !tcpdump_available() {
        let msg = "capfilter_tcpdump: SKIPPED: tcpdump is not installed (apt-get install tcpdump)";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{msg}; CI=true does not accept skipping");
        }
        eprintln!("\n*** {msg} ***\n");
        return;
    }
    let dir = std::env::temp_dir().join(format!("wsdump-capfilter-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut files = synthetic(&dir);
    files.extend(captures());
    // Two workers: tcpdump runs once or twice per (capture, expression).
    let chunks: Vec<Vec<PathBuf>> = (0..2)
        .map(|k| files.iter().skip(k).step_by(2).cloned().collect())
        .collect();
    let tallies: Vec<Tally> = std::thread::scope(|s| {
        let hs: Vec<_> = chunks
            .iter()
            .map(|c| {
                s.spawn(move || {
                    let mut t = Tally::default();
                    for f in c {
                        let t0 = std::time::Instant::now();
                        check_file(f, &mut t);
                        if std::env::var_os("CAPFILTER_TIMING").is_some() {
                            eprintln!("{:?} {}", t0.elapsed(), f.display());
                        }
                    }
                    t
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let _ = std::fs::remove_dir_all(&dir);
    let mut t = Tally::default();
    for x in tallies {
        t.files += x.files;
        t.skipped.extend(x.skipped);
        t.cases += x.cases;
        t.packets += x.packets;
        t.bpf_agree += x.bpf_agree;
        t.eval_compared += x.eval_compared;
        t.eval_agree += x.eval_agree;
        t.eval_outside += x.eval_outside;
        t.failures.extend(x.failures);
    }
    eprintln!(
        "capfilter vs tcpdump: {} captures x {} expressions = {} cases, {} packet verdicts; \
         BPF agrees on {}; evaluator compared on {} and agrees on {} ({} verdicts outside \
         the decoder's notion of TCP); skipped: {:?}",
        t.files,
        TEMPLATES.len(),
        t.cases,
        t.packets,
        t.bpf_agree,
        t.eval_compared,
        t.eval_agree,
        t.eval_outside,
        t.skipped
    );
    assert!(t.files >= 3, "too few captures compared");
    assert!(
        t.failures.is_empty(),
        "{} disagreements with tcpdump, first ones:\n{}",
        t.failures.len(),
        t.failures[..t.failures.len().min(40)].join("\n")
    );
}

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[(self.next() % v.len() as u64) as usize]
    }
}

const PORTS: &[&str] = &["80", "443", "7272", "7273", "5555", "1023", "40000", "http"];
const V4: &[&str] = &["127.0.0.1", "10.1.2.3", "192.168.1.10"];
const V6: &[&str] = &["::1", "fe80::1", "2001:db8::7"];
const NETS: &[&str] = &[
    "127",
    "10.0.0.0/8",
    "10.1",
    "192.168.1.0/24",
    "192.168.0.0 mask 255.255.0.0",
    "fe80::/10",
    "2001:db8::/32",
    "::1/128",
];

/// A random expression in tcpdump's surface syntax: abbreviations, `&&`/`||`/`!`, bare
/// values that inherit qualifiers, unparenthesized mixes of `and` and `or`.
fn random_expr(r: &mut Rng, depth: u32) -> String {
    if depth == 0 || r.next().is_multiple_of(3) {
        return random_prim(r);
    }
    let a = random_expr(r, depth - 1);
    match r.next() % 7 {
        0 => format!("not {a}"),
        1 => format!("!{a}"),
        2 => format!("({a})"),
        3 => format!("{a} and {}", random_expr(r, depth - 1)),
        4 => format!("{a} && {}", random_expr(r, depth - 1)),
        5 => format!("{a} or {}", random_expr(r, depth - 1)),
        _ => format!("{a} || {}", random_expr(r, depth - 1)),
    }
}

fn random_prim(r: &mut Rng) -> String {
    let dir = r.pick(&["", "", "src ", "dst ", "src or dst ", "src and dst "]);
    match r.next() % 12 {
        0 => format!("{dir}port {}", r.pick(PORTS)),
        1 => format!("tcp {dir}port {} or {}", r.pick(PORTS), r.pick(PORTS)),
        2 => {
            let (a, b) = (r.next() % 9000, r.next() % 60000);
            format!("{dir}portrange {a}-{b}")
        }
        3 => format!("{dir}host {}", r.pick(V4)),
        4 => format!("{dir}host {} or {}", r.pick(V6), r.pick(V6)),
        5 => format!("ip {dir}host {}", r.pick(V4)),
        6 => format!("ip6 {dir}net {}", r.pick(&NETS[5..])),
        7 => format!("{dir}net {}", r.pick(NETS)),
        8 => r.pick(&["tcp", "ip", "ip6"]).to_string(),
        9 => format!("{dir}{}", r.pick(V4)),
        10 => format!("{dir}port {} and not {}", r.pick(PORTS), r.pick(PORTS)),
        _ => format!("{dir}host {} or {}", r.pick(V4), r.pick(V6)),
    }
}

/// Random expressions on the synthetic Ethernet capture: whatever wsdump accepts, tcpdump
/// must accept too and keep the same packets.
#[test]
fn random_expressions_select_what_tcpdump_selects() {
    if !tcpdump_available() {
        let msg = "capfilter_tcpdump: SKIPPED: tcpdump is not installed (apt-get install tcpdump)";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{msg}; CI=true does not accept skipping");
        }
        eprintln!("\n*** {msg} ***\n");
        return;
    }
    let dir = std::env::temp_dir().join(format!("wsdump-capfilter-rnd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let files = synthetic(&dir);
    let file = &files[0];
    let pkts = read_capture(std::fs::read(file).unwrap());
    let mut r = Rng(0x5eed_cafe_f00d_0001);
    let (mut compared, mut refused_by_both, mut only_tcpdump) = (0, 0, Vec::new());
    let mut failures = Vec::new();
    for _ in 0..250 {
        let expr = random_expr(&mut r, 3);
        let ours = CaptureFilter::parse(&expr);
        let (full, tagged) = wrap(&expr);
        let plain = tcpdump_run(file, &full);
        match (&ours, &plain) {
            (Err(_), Err(_)) => {
                refused_by_both += 1;
                continue;
            }
            (Err(e), Ok(_)) => {
                only_tcpdump.push(format!("{expr}  [{}]", e.msg));
                continue;
            }
            (Ok(_), Err(e)) => {
                failures.push(format!("`{expr}`: wsdump accepts, tcpdump says {e}"));
                continue;
            }
            (Ok(_), Ok(_)) => {}
        }
        let f = ours.unwrap();
        let mut want = match_kept(&plain.unwrap(), &pkts);
        if let Ok(tagged) = tcpdump_run(file, &tagged) {
            for (a, b) in want.iter_mut().zip(match_kept(&tagged, &pkts)) {
                *a |= b;
            }
        }
        let prog = f.compile(LinkType::ETHERNET, SNAP).unwrap();
        bpf::validate(&prog).unwrap();
        compared += 1;
        for (i, p) in pkts.iter().enumerate() {
            if matches!(
                wsdump::packet::decode(p.lt, &p.data),
                Err(PacketError::Truncated { .. })
            ) {
                // Cut inside the headers: the verdict depends on which test reads past the
                // end first, and tcpdump's optimizer removes tests (`port 1 and not port 1`)
                // that wsdump's program still makes.
                continue;
            }
            let got = bpf::run(&prog, &p.data) != 0;
            if got != want[i] {
                failures.push(format!(
                    "`{expr}` (read as {f}) packet {}: tcpdump {}, wsdump {got}",
                    i + 1,
                    want[i]
                ));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!(
        "random capture filters: {compared} compared with tcpdump on {} packets each, {} \
         refused by both, {} accepted by tcpdump only:\n  {}",
        pkts.len(),
        refused_by_both,
        only_tcpdump.len(),
        only_tcpdump.join("\n  ")
    );
    assert!(compared >= 100, "too few expressions compared");
    assert!(
        failures.is_empty(),
        "{} disagreements:\n{}",
        failures.len(),
        failures[..failures.len().min(30)].join("\n")
    );
}
