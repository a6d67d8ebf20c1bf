//! Hostile input, end to end through the built binary: payloads that try to drive the
//! terminal, files that are not captures or lie about their records, an unsupported link
//! type, and a frame length no memory could hold. Captures are assembled here from real frame
//! bytes (`Header::encode`) and written with the crate's own `PcapWriter`.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use wsdump::capture::LinkType;
use wsdump::http::accept_for;

mod common;
use common::*;

fn tmp(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("hostile-{name}"))
}

fn wsdump(file: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wsdump"))
        .arg("-r")
        .arg(file)
        .args(["--color", "never"])
        .args(args)
        .env_remove("NO_COLOR")
        .output()
        .unwrap()
}

/// Runs wsdump with its address space capped and a deadline: a frame length that is believed
/// (allocated, or waited for byte by byte) fails one or the other.
fn wsdump_bounded(file: &Path, args: &[&str], max_bytes: u64, deadline: Duration) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wsdump"));
    cmd.arg("-r")
        .arg(file)
        .args(["--color", "never"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: max_bytes,
                rlim_max: max_bytes,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        stdout.read_to_end(&mut v).unwrap();
        v
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        stderr.read_to_end(&mut v).unwrap();
        v
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("wsdump still running after {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
    }
}

const HOSTILE_TEXT: &str =
    "title \x1b]0;pwned\x07 c1 \u{85}\u{9b}31m del \x7f bidi \u{202e}txt.exe zws a\u{200b}b";

#[test]
fn payloads_cannot_drive_the_terminal() {
    let mut c = Capture::new();
    c.upgrade("/chat\u{202e}gnp.exe");
    c.frame(true, 1, HOSTILE_TEXT.as_bytes(), None);
    // Not UTF-8: raw ESC, a lone C1 byte and CSI sent as a text message.
    c.frame(false, 1, b"raw \x1b[2J \x9b31m \xff end", None);
    c.frame(false, 2, b"\x1b]0;binary\x07", None);
    c.frame(true, 8, b"\x03\xe8bye \x1b[31m", None);
    c.fin();
    let file = tmp("terminal.pcap");
    std::fs::write(&file, c.pcap(LinkType::RAW)).unwrap();

    for args in [&[][..], &["-v"][..], &["-X"][..], &["-m"][..]] {
        let out = wsdump(&file, args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).expect("human output must be UTF-8");
        for (i, ch) in text.char_indices() {
            let bad = (ch < ' ' && ch != '\n' && ch != '\t')
                || ch == '\x7f'
                || ('\u{80}'..='\u{9f}').contains(&ch)
                || ch == '\u{202e}'
                || ch == '\u{200b}';
            assert!(
                !bad,
                "{args:?}: raw U+{:04X} at byte {i} in:\n{text}",
                ch as u32
            );
        }
        assert!(!text.as_bytes().contains(&0x1b) && !text.as_bytes().contains(&0x07));
        if args != ["-m"] {
            assert!(
                text.contains("gnp.exe"),
                "{args:?}: the request path is shown:\n{text}"
            );
        }
        assert!(
            text.contains("\\e]0;pwned\\x07"),
            "{args:?}: visible OSC:\n{text}"
        );
        for esc in [
            "\\u{0085}",
            "\\u{009b}31m",
            "\\x7f",
            "\\u{202e}txt.exe",
            "a\\u{200b}b",
        ] {
            assert!(text.contains(esc), "{args:?}: missing {esc}:\n{text}");
        }
        // Text that is not UTF-8 (raw ESC, a lone C1 byte) is shown as hex, flagged.
        assert!(
            text.contains("[invalid utf-8]: 0x726177201b5b324a209b"),
            "{args:?}:\n{text}"
        );
        assert!(
            text.contains("\"bye \\e[31m\""),
            "{args:?}: close reason escaped:\n{text}"
        );
    }

    let out = wsdump(&file, &["--json", "-v"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).expect("JSON output must be UTF-8");
    assert!(!text.as_bytes().contains(&0x1b));
    let mut texts = Vec::new();
    for line in text.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if v["type"] == "message"
            && let Some(t) = v["text"].as_str()
        {
            texts.push(t.to_string());
        }
    }
    assert!(
        texts.iter().any(|t| t == HOSTILE_TEXT),
        "JSON keeps the exact text: {texts:?}"
    );
}

#[test]
fn not_a_capture_is_one_line_naming_file_and_offset() {
    let file = tmp("not-a-capture.txt");
    std::fs::write(
        &file,
        b"GET / HTTP/1.1\r\nHost: example\r\n\r\n this is not a pcap\n",
    )
    .unwrap();
    let out = wsdump(&file, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    assert!(
        err.contains(&file.display().to_string()),
        "names the file: {err}"
    );
    assert!(err.contains("byte offset 0"), "names the offset: {err}");
}

#[test]
fn truncated_last_record_prints_what_came_before() {
    let mut c = Capture::new();
    c.upgrade("/");
    c.frame(false, 1, b"before the cut", None);
    let mut bytes = c.pcap(LinkType::RAW);
    let cut_at = bytes.len();
    // A record header announcing 200 bytes, followed by 30.
    bytes.extend_from_slice(&1_700_000_100u32.to_le_bytes());
    bytes.extend_from_slice(&0u32.to_le_bytes());
    bytes.extend_from_slice(&200u32.to_le_bytes());
    bytes.extend_from_slice(&200u32.to_le_bytes());
    bytes.extend_from_slice(&[0x45; 30]);
    let file = tmp("truncated.pcap");
    std::fs::write(&file, &bytes).unwrap();
    let out = wsdump(&file, &[]);
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("before the cut"),
        "earlier packets printed:\n{stdout}"
    );
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains(&format!("byte offset {cut_at}")),
        "offset {cut_at} named: {err}"
    );
    assert!(err.contains("truncated"), "{err}");
}

#[test]
fn unsupported_link_type_is_named() {
    let mut c = Capture::new();
    c.upgrade("/");
    let file = tmp("linktype.pcap");
    std::fs::write(&file, c.pcap(LinkType(147))).unwrap();
    let out = wsdump(&file, &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("unsupported link type") && err.contains("147"),
        "{err}"
    );
    assert!(err.contains(&file.display().to_string()), "{err}");
}

#[test]
fn impossible_frame_length_neither_allocates_nor_hangs() {
    let mut c = Capture::new();
    c.upgrade("/");
    c.frame(false, 1, b"before", None);
    c.frame(false, 2, &[0x41; 1000], Some(1 << 63));
    c.frame(false, 1, b"after", None);
    c.fin();
    let file = tmp("length-2-63.pcap");
    std::fs::write(&file, c.pcap(LinkType::RAW)).unwrap();
    for args in [&["--json"][..], &["-v"][..]] {
        // 512 MiB of address space: far below 2^63, far above what the run needs.
        let out = wsdump_bounded(&file, args, 512 << 20, Duration::from_secs(10));
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}\n{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("before"), "{stdout}");
        assert!(
            stdout.contains("length_msb_set"),
            "the length is reported:\n{stdout}"
        );
    }
}

/// The messages of a `--json` run: (connection, text).
fn json_messages(out: &Output) -> Vec<(u64, String)> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "message")
        .map(|v| {
            (
                v["conn"].as_u64().unwrap_or(0),
                v["text"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn json_types(out: &Output, ty: &str) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == ty)
        .collect()
}

/// `--ladder` on a text message of 28 or more "❤️" (U+2764 U+FE0F: one column and none as
/// characters, two as a string) panicked with a capacity overflow, or under `LC_ALL=C`
/// aborted asking for 2^63 bytes: the cut summed characters' widths and measured the
/// result whole. Fixed in 8572001; this is its regression test, in both locales.
#[test]
fn ladder_survives_labels_whose_width_is_not_the_sum_of_their_characters() {
    let heart = "\u{2764}\u{fe0f}";
    let mut c = Capture::new();
    c.upgrade("/chat");
    for n in [27, 28, 29, 40, 200] {
        c.frame(false, 1, heart.repeat(n).as_bytes(), None);
    }
    c.fin();
    let file = tmp("hearts.pcap");
    std::fs::write(&file, c.pcap(LinkType::RAW)).unwrap();
    for locale in ["C", "C.UTF-8"] {
        let out = Command::new(env!("CARGO_BIN_EXE_wsdump"))
            .arg("-r")
            .arg(&file)
            .arg("--ladder")
            .env_remove("LANG")
            .env_remove("LC_CTYPE")
            .env("LC_ALL", locale)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "LC_ALL={locale}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("connection 1:"), "LC_ALL={locale}:\n{text}");
        let rows = text.lines().filter(|l| l.contains("text \"")).count();
        assert_eq!(rows, 5, "LC_ALL={locale}: every message drawn:\n{text}");
    }
}

/// A request whose first segment is under 3 bytes ("G", "GE") or a response whose first is
/// under 5 ("HTTP" cut anywhere) left the connection undecoded ("stream does not start with
/// HTTP"). tshark reassembles and decodes them (`tshark -r FILE -Y websocket`): so does
/// wsdump now, by holding such a start until it can tell.
#[test]
fn first_segments_too_short_to_classify_are_held_not_given_up() {
    for (creq, cresp) in [(1, 1), (2, 4), (1, 3)] {
        let mut c = Capture::new();
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let req = format!(
            "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        let resp = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n\r\n",
            wsdump::http::accept_for(key)
        );
        c.send(true, &req.as_bytes()[..creq]);
        c.send(true, &req.as_bytes()[creq..]);
        c.send(false, &resp.as_bytes()[..cresp]);
        c.send(false, &resp.as_bytes()[cresp..]);
        c.frame(true, 1, b"hello from the client", None);
        c.frame(false, 1, b"hello from the server", None);
        c.fin();
        let file = tmp(&format!("short-first-{creq}-{cresp}.pcap"));
        std::fs::write(&file, c.pcap(LinkType::RAW)).unwrap();
        let out = wsdump(&file, &["--json"]);
        let msgs = json_messages(&out);
        assert_eq!(
            msgs,
            [
                (1, "hello from the client".to_string()),
                (1, "hello from the server".to_string())
            ],
            "first segments of {creq} and {cresp} bytes:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert_eq!(json_types(&out, "http_request").len(), 1);
        assert_eq!(json_types(&out, "http_response").len(), 1);
    }
}

/// An HTTP head sent one byte per segment: decoded as a whole head would be (its parsing
/// cost is linear: see the unit tests in src/conversation.rs).
#[test]
fn an_upgrade_sent_one_byte_per_segment_is_decoded() {
    let mut c = Capture::new();
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    let req = format!(
        "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         X-Pad: {}\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n",
        "p".repeat(3000)
    );
    for b in req.as_bytes() {
        c.send(true, std::slice::from_ref(b));
    }
    let resp = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        wsdump::http::accept_for(key)
    );
    for b in resp.as_bytes() {
        c.send(false, std::slice::from_ref(b));
    }
    c.frame(false, 1, b"after a trickled upgrade", None);
    c.fin();
    let file = tmp("trickle.pcap");
    std::fs::write(&file, c.pcap(LinkType::RAW)).unwrap();
    let out = wsdump(&file, &["--json"]);
    let reqs = json_types(&out, "http_request");
    assert_eq!(reqs.len(), 1, "{}", String::from_utf8_lossy(&out.stdout));
    let pad = reqs[0]["headers"]
        .as_array()
        .and_then(|h| h.iter().find(|kv| kv[0] == "X-Pad"))
        .and_then(|kv| kv[1].as_str())
        .map_or(0, str::len);
    assert_eq!(pad, 3000, "the whole head was parsed");
    assert_eq!(
        json_messages(&out),
        [(1, "after a trickled upgrade".to_string())]
    );
}

/// Requests pipelined before the upgrade (RFC 9112 9.3.2: responses come in request order):
/// the 200 answers the first request, the 101 the upgrade. The 200 was taken as the
/// answer to the last request, "upgrade refused", and the websocket lost.
#[test]
fn a_request_pipelined_before_the_upgrade_does_not_refuse_it() {
    let mut c = Capture::new();
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    let plain = "GET /status HTTP/1.1\r\nHost: x\r\n\r\n";
    let upgrade = format!(
        "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    c.send(true, format!("{plain}{upgrade}").as_bytes());
    // A client that does not wait for the 101 (its frame is held until the answer).
    c.frame(true, 1, b"pipelined, then upgraded", None);
    c.send(false, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    let resp = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        wsdump::http::accept_for(key)
    );
    c.send(false, resp.as_bytes());
    c.frame(false, 1, b"and answered", None);
    c.fin();
    let file = tmp("pipelined.pcap");
    std::fs::write(&file, c.pcap(LinkType::RAW)).unwrap();
    let out = wsdump(&file, &["--json"]);
    assert_eq!(
        json_messages(&out),
        [
            (1, "pipelined, then upgraded".to_string()),
            (1, "and answered".to_string())
        ],
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let resps = json_types(&out, "http_response");
    assert_eq!(resps.len(), 2);
    // The 200 answers the plain request (no accept to expect); the 101 the upgrade.
    assert!(resps[0].get("expected_accept").is_none(), "{}", resps[0]);
    assert_eq!(resps[1]["status"], 101);
    assert_eq!(resps[1]["accept_ok"], true, "{}", resps[1]);
}

/// An IPv4 total length longer than the packet, in a record captured whole (its original
/// length is its captured length): the header lies, nothing was cut. It was taken for a
/// snaplen cut, and the ~1,400 bytes it claimed skipped as a gap, with the stream's next
/// message in them. tshark flags the length and decodes what is there.
#[test]
fn an_ip_length_that_lies_in_a_whole_record_skips_nothing() {
    let mut c = Capture::new();
    c.upgrade("/chat");
    c.frame(false, 1, b"before the lie", None);
    c.frame(false, 1, b"in the lying packet", None);
    let lying = c.packets.len() - 1;
    c.frame(false, 1, b"after the lie", None);
    c.fin();
    let p = &mut c.packets[lying];
    let claimed = (p.len() + 1400) as u16;
    p[2..4].copy_from_slice(&claimed.to_be_bytes());
    let file = tmp("lying-ip-length.pcap");
    std::fs::write(&file, c.pcap(LinkType::RAW)).unwrap();
    let out = wsdump(&file, &["--json"]);
    let texts: Vec<String> = json_messages(&out).into_iter().map(|(_, t)| t).collect();
    assert_eq!(
        texts,
        ["before the lie", "in the lying packet", "after the lie"],
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(json_types(&out, "gap").is_empty());
}

/// One pcapng block: type, total length, body (padded to 32 bits), total length.
fn block(ty: u32, body: &[u8]) -> Vec<u8> {
    let pad = (4 - body.len() % 4) % 4;
    let total = (12 + body.len() + pad) as u32;
    let mut b = Vec::new();
    b.extend_from_slice(&ty.to_le_bytes());
    b.extend_from_slice(&total.to_le_bytes());
    b.extend_from_slice(body);
    b.extend(std::iter::repeat_n(0u8, pad));
    b.extend_from_slice(&total.to_le_bytes());
    b
}

/// pcapng Simple Packet Blocks carry no timestamp. They were given time 0 (1970): their
/// connection looked idle for decades and the next sweep forgot it, so the messages after
/// them began a new, mid-stream connection. They now take the previous packet's time.
#[test]
fn simple_packet_blocks_do_not_make_their_connection_look_idle() {
    let mut c = Capture::new();
    c.upgrade("/chat");
    c.frame(false, 1, b"in an enhanced packet block", None);
    let enhanced = c.packets.len();
    c.frame(false, 1, b"in a simple packet block", None);
    c.frame(true, 1, b"also simple", None);
    let simple = c.packets.len();
    // Another connection's SYN, 20 s later: the sweep it brings found the chat silent
    // since 1970.
    c.packets
        .push(tcp(([10, 0, 0, 9], 50000), SERVER, 1, 0, SYN, b""));
    c.frame(false, 1, b"enhanced again, 20 s later", None);
    c.fin();
    let mut f = Vec::new();
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    f.extend(block(0x0a0d_0d0a, &shb));
    let mut idb = Vec::new();
    idb.extend_from_slice(&101u16.to_le_bytes());
    idb.extend_from_slice(&0u16.to_le_bytes());
    idb.extend_from_slice(&262_144u32.to_le_bytes());
    f.extend(block(1, &idb));
    for (i, p) in c.packets.iter().enumerate() {
        if (enhanced..simple).contains(&i) {
            let mut b = (p.len() as u32).to_le_bytes().to_vec();
            b.extend_from_slice(p);
            f.extend(block(3, &b));
        } else {
            let secs = 1_700_000_000u64 + i as u64 + if i >= simple { 20 } else { 0 };
            let us = secs * 1_000_000;
            let mut b = Vec::new();
            b.extend_from_slice(&0u32.to_le_bytes());
            b.extend_from_slice(&((us >> 32) as u32).to_le_bytes());
            b.extend_from_slice(&(us as u32).to_le_bytes());
            b.extend_from_slice(&(p.len() as u32).to_le_bytes());
            b.extend_from_slice(&(p.len() as u32).to_le_bytes());
            b.extend_from_slice(p);
            f.extend(block(6, &b));
        }
    }
    let file = tmp("simple-packet-blocks.pcapng");
    std::fs::write(&file, f).unwrap();
    let out = wsdump(&file, &["--json"]);
    assert_eq!(
        json_messages(&out),
        [
            (1, "in an enhanced packet block".to_string()),
            (1, "in a simple packet block".to_string()),
            (1, "also simple".to_string()),
            (1, "enhanced again, 20 s later".to_string()),
        ],
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Writes `packets` (time, bytes) as a pcap.
fn pcap_at(packets: &[(i64, Vec<u8>)]) -> Vec<u8> {
    use wsdump::capture::writer::PcapWriter;
    use wsdump::capture::{RawPacket, Timestamp};
    let mut buf = Vec::new();
    let mut w = PcapWriter::new(&mut buf, LinkType::RAW, false, 262144).unwrap();
    for (ts, data) in packets {
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
    buf
}

/// Timeouts follow the connections' own traffic, not one clock jump: a packet of another
/// connection stamped a day ahead made every open connection look idle (600 s), and they
/// were forgotten without a word, their later messages starting new mid-stream
/// connections. Idle chat rooms last hours (the default is now 2 h, `--idle-timeout`), and a
/// connection forgotten while open is said to be.
#[test]
fn one_record_a_day_ahead_forgets_nothing_and_idle_timeouts_are_said() {
    let t0 = 1_700_000_000i64;
    let mut chat = Capture::new();
    chat.upgrade("/chat");
    chat.frame(false, 1, b"before the jump", None);
    let mut packets: Vec<(i64, Vec<u8>)> = chat
        .packets
        .drain(..)
        .enumerate()
        .map(|(i, p)| (t0 + i as i64, p))
        .collect();
    // Another connection's SYN, stamped a day ahead.
    let syn = tcp(([10, 0, 0, 7], 50000), SERVER, 1, 0, SYN, b"");
    packets.push((t0 + 86_400, syn));
    chat.frame(false, 1, b"after the jump", None);
    let n = packets.len() as i64;
    packets.extend(chat.packets.drain(..).map(|p| (t0 + n, p)));
    // An hour of silence, then two packets of another connection (the sweep believes the
    // new time at the second), then the chat goes on: idle for an hour, under 2 h.
    let t1 = t0 + n + 3600;
    for k in 0..2 {
        let syn = tcp(([10, 0, 0, 8], 50001), SERVER, 1, 0, SYN, b"");
        packets.push((t1 + k, syn));
    }
    chat.frame(true, 1, b"an hour later", None);
    chat.fin();
    packets.extend(chat.packets.drain(..).map(|p| (t1 + 2, p)));
    let file = tmp("clock-jump.pcap");
    std::fs::write(&file, pcap_at(&packets)).unwrap();
    let out = wsdump(&file, &["--json"]);
    let msgs = json_messages(&out);
    assert_eq!(
        msgs,
        [
            (1, "before the jump".to_string()),
            (1, "after the jump".to_string()),
            (1, "an hour later".to_string()),
        ],
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // With a shorter timeout the hour of silence is too long: the connection is forgotten,
    // and that is said.
    let out = wsdump(&file, &["--json", "--idle-timeout", "600"]);
    let said = json_types(&out, "notice")
        .into_iter()
        .filter(|n| n["kind"] == "evicted" && n["conn"] == 1)
        .count();
    assert_eq!(said, 1, "{}", String::from_utf8_lossy(&out.stdout));
}

/// A TCP simultaneous open (RFC 9293 3.5, figure 8: both sides send a SYN, then both a
/// SYN+ACK): the second SYN was taken for a new incarnation of the 4-tuple, with the roles
/// swapped, and the upgrade that followed was not decoded. It is one connection, its roles
/// as the first SYN set them.
#[test]
fn a_simultaneous_open_keeps_one_connection_and_its_roles() {
    let mut c = Capture::mid_stream(CLIENT, SERVER);
    let (cs, ss) = (c.cseq, c.sseq);
    c.packets.push(tcp(CLIENT, SERVER, cs, 0, SYN, b""));
    c.packets.push(tcp(SERVER, CLIENT, ss, 0, SYN, b""));
    c.packets
        .push(tcp(CLIENT, SERVER, cs, ss + 1, SYN | ACK, b""));
    c.packets
        .push(tcp(SERVER, CLIENT, ss, cs + 1, SYN | ACK, b""));
    c.cseq += 1;
    c.sseq += 1;
    c.upgrade("/chat");
    c.frame(true, 1, b"opened simultaneously", None);
    c.frame(false, 1, b"still the server", None);
    c.fin();
    let file = tmp("simultaneous-open.pcap");
    std::fs::write(&file, c.pcap(LinkType::RAW)).unwrap();
    let out = wsdump(&file, &["--json"]);
    assert_eq!(
        json_messages(&out),
        [
            (1, "opened simultaneously".to_string()),
            (1, "still the server".to_string())
        ],
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let msgs = json_types(&out, "message");
    assert_eq!(msgs[0]["dir"], "c2s");
}

/// IPv4 fragments of a TCP segment were counted as "not TCP", and the stream then showed a
/// gap with no word of why. They are reassembled now, as tshark reassembles them; a
/// datagram whose fragments never all come is said to be lost.
#[test]
fn ip_fragments_of_tcp_are_reassembled_or_said() {
    for complete in [true, false] {
        let mut c = Capture::new();
        c.upgrade("/chat");
        c.frame(false, 1, b"before the fragments", None);
        c.frame(false, 1, b"a message sent in two IP fragments", None);
        let whole = c.packets.pop().unwrap();
        // Split the IP payload at 24 bytes (a multiple of 8): more-fragments, then offset 3;
        // the second first, as routers may deliver them.
        let payload = &whole[20..];
        let mut parts = Vec::new();
        for (i, part) in [&payload[..24], &payload[24..]].into_iter().enumerate() {
            let mut p = whole[..20].to_vec();
            p.extend_from_slice(part);
            let total = p.len() as u16;
            p[2..4].copy_from_slice(&total.to_be_bytes());
            let frag: u16 = if i == 0 { 0x2000 } else { 3 };
            p[6..8].copy_from_slice(&frag.to_be_bytes());
            parts.push(p);
        }
        c.packets.push(parts.pop().unwrap());
        if complete {
            c.packets.push(parts.pop().unwrap());
        }
        c.frame(false, 1, b"after the fragments", None);
        c.fin();
        let file = tmp(&format!("ip-fragments-{complete}.pcap"));
        std::fs::write(&file, c.pcap(LinkType::RAW)).unwrap();
        let out = wsdump(&file, &["--json"]);
        let texts: Vec<String> = json_messages(&out).into_iter().map(|(_, t)| t).collect();
        let said = json_types(&out, "notice")
            .into_iter()
            .filter(|n| n.to_string().contains("never completed"))
            .count();
        if complete {
            assert_eq!(
                texts,
                [
                    "before the fragments",
                    "a message sent in two IP fragments",
                    "after the fragments"
                ],
                "{}",
                String::from_utf8_lossy(&out.stdout)
            );
            assert_eq!(said, 0);
            assert!(json_types(&out, "gap").is_empty());
        } else {
            assert_eq!(said, 1, "{}", String::from_utf8_lossy(&out.stdout));
            assert!(texts.contains(&"before the fragments".to_string()));
        }
    }
}

/// An RST far outside the window (RFC 5961 3.2: the endpoints ignore it, and the
/// connection goes on, as tshark shows) ended decoding: the messages after it were lost.
/// It is reported and ignored now; an RST in the window still ends the connection.
#[test]
fn an_rst_outside_the_window_is_reported_and_ignored() {
    let mut c = Capture::new();
    c.upgrade("/chat");
    c.frame(false, 1, b"before the blind reset", None);
    let far = c.sseq.wrapping_add(0x4000_0000);
    c.packets
        .push(tcp(SERVER, CLIENT, far, c.cseq, 0x04 | ACK, b""));
    c.frame(true, 1, b"after the blind reset", None);
    c.frame(false, 1, b"the server goes on", None);
    // A reset in the window: the end.
    c.packets
        .push(tcp(SERVER, CLIENT, c.sseq, c.cseq, 0x04 | ACK, b""));
    c.frame(true, 1, b"after the real reset", None);
    let file = tmp("rst-out-of-window.pcap");
    std::fs::write(&file, c.pcap(LinkType::RAW)).unwrap();
    let out = wsdump(&file, &["--json"]);
    let texts: Vec<(u64, String)> = json_messages(&out);
    assert_eq!(
        texts[..3],
        [
            (1, "before the blind reset".to_string()),
            (1, "after the blind reset".to_string()),
            (1, "the server goes on".to_string()),
        ],
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        !texts.contains(&(1, "after the real reset".to_string())),
        "{texts:?}"
    );
    let said = json_types(&out, "violation")
        .into_iter()
        .filter(|v| v["kind"] == "rst_out_of_window")
        .count();
    assert_eq!(said, 1);
}

/// A capture still being written (`tcpdump -w` beside it), decoded on two threads: each
/// worker read to its own end of file, so the workers stopped at different places and their
/// connections were ended (flushed, `end`) at different points. Every worker now reads the
/// file as long as it was when the run began: the output is one thread's of that length.
#[test]
fn a_growing_file_on_two_threads_reads_what_was_there_at_the_start() {
    use std::io::{BufRead, Write};
    let mut conns: Vec<Capture> = (0..8)
        .map(|i| {
            let mut c = Capture::between(([10, 0, 0, 1], 40000 + i), ([10, 0, 0, 2], 80));
            c.upgrade("/chat");
            c
        })
        .collect();
    let mut order = Vec::new();
    for c in &mut conns {
        order.append(&mut c.packets);
    }
    for round in 0..2000 {
        for c in conns.iter_mut() {
            let text = format!("message {round} of port {}", c.client.1);
            c.frame(false, 1, text.as_bytes(), None);
            order.append(&mut c.packets);
        }
    }
    let packets: Vec<(i64, Vec<u8>)> = order
        .into_iter()
        .enumerate()
        .map(|(i, p)| (1_700_000_000_000_000 + i as i64, p))
        .collect();
    let whole = pcap_at(&packets);
    // Cut inside a record, as a file being written is.
    let half = whole.len() / 2 + 7;
    let start = tmp("growing-start.pcap");
    std::fs::write(&start, &whole[..half]).unwrap();
    let want = wsdump(&start, &["--json", "--threads", "1"]);

    let file = tmp("growing.pcap");
    std::fs::write(&file, &whole[..half]).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_wsdump"))
        .arg("-r")
        .arg(&file)
        .args(["--json", "--threads", "2", "-l"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    // The first line is out: the run has begun. Then the file grows under it.
    let mut got = String::new();
    stdout.read_line(&mut got).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap();
    f.write_all(&whole[half..]).unwrap();
    f.flush().unwrap();
    stdout.read_to_string(&mut got).unwrap();
    child.wait().unwrap();
    assert!(
        got == String::from_utf8_lossy(&want.stdout),
        "two threads on a growing file read past where it ended when they began"
    );
}

/// A reserved control opcode (0xB–0xF) was shown with the previous control frame's payload
/// in front of its own: the control payload buffer was not emptied between control frames.
/// Each control payload is now taken at its message; this documents it.
#[test]
fn a_reserved_control_opcode_shows_only_its_own_payload() {
    let mut c = Capture::new();
    c.upgrade("/chat");
    c.frame(false, 9, b"ping-one", None);
    c.frame(false, 0xb, b"RESV", None);
    c.frame(true, 0xf, b"", None);
    c.frame(false, 0xc, b"\x01\x02", None);
    c.fin();
    let file = tmp("reserved-control.pcap");
    std::fs::write(&file, c.pcap(LinkType::RAW)).unwrap();
    let out = wsdump(&file, &["--json"]);
    let msgs: Vec<(String, u64, String)> = json_types(&out, "message")
        .into_iter()
        .map(|m| {
            (
                m["opcode"].as_str().unwrap_or("").to_string(),
                m["len"].as_u64().unwrap_or(u64::MAX),
                m["base64"]
                    .as_str()
                    .or(m["text"].as_str())
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(
        msgs,
        [
            ("ping".to_string(), 8, "cGluZy1vbmU=".to_string()),
            ("reserved".to_string(), 4, "UkVTVg==".to_string()),
            ("reserved".to_string(), 0, String::new()),
            ("reserved".to_string(), 2, "AQI=".to_string()),
        ],
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let human = String::from_utf8_lossy(&wsdump(&file, &[]).stdout).to_string();
    assert!(
        !human.contains("ping-one0x") && !human.contains("0x70696e67"),
        "{human}"
    );
    assert!(human.contains("reserved 4: 0x52455356\n"), "{human}");
    assert!(human.contains("reserved 2: 0x0102\n"), "{human}");
}

/// RSV1 on a connection whose 101 negotiated no permessage-deflate means nothing agreed:
/// it was inflated anyway and garbage shown. It is a `reserved_bits` violation now, and the
/// payload is shown as sent.
#[test]
fn rsv1_without_negotiation_is_reported_not_inflated() {
    let mut c = Capture::new();
    c.upgrade("/chat");
    // "sent as is" with RSV1 set, unmasked from the server.
    let mut f = vec![0xc1, 10];
    f.extend_from_slice(b"sent as is");
    c.send(false, &f);
    c.frame(false, 1, b"after", None);
    c.fin();
    let file = tmp("rsv1-not-negotiated.pcap");
    std::fs::write(&file, c.pcap(LinkType::RAW)).unwrap();
    let out = wsdump(&file, &["--json"]);
    let texts: Vec<String> = json_messages(&out).into_iter().map(|(_, t)| t).collect();
    assert_eq!(
        texts,
        ["sent as is", "after"],
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let msgs = json_types(&out, "message");
    assert!(msgs[0].get("incomplete").is_none(), "{}", msgs[0]);
    let said = json_types(&out, "violation")
        .into_iter()
        .filter(|v| v["kind"] == "reserved_bits")
        .count();
    assert_eq!(said, 1, "{}", String::from_utf8_lossy(&out.stdout));
    let human = String::from_utf8_lossy(&wsdump(&file, &[]).stdout).to_string();
    assert!(human.contains("sent as is"), "{human}");
}

/// A reason phrase that is not ASCII (RFC 9110 allows obs-text; servers send UTF-8 or
/// Latin-1) printed as "": httparse gives no reason it cannot borrow as ASCII text. It is
/// taken from the head's bytes now, escaped as any text; bytes that are not UTF-8 show as
/// U+FFFD.
#[test]
fn a_reason_phrase_that_is_not_ascii_is_shown() {
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    for (reason, json, human) in [
        (
            "Переключение протоколов".as_bytes(),
            "Переключение протоколов",
            "Переключение протоколов",
        ),
        (
            &b"Protocoles chang\xe9s"[..],
            "Protocoles chang\u{fffd}s",
            "Protocoles chang\u{fffd}s",
        ),
    ] {
        let mut c = Capture::new();
        let req = format!(
            "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        c.send(true, req.as_bytes());
        let mut resp = b"HTTP/1.1 101 ".to_vec();
        resp.extend_from_slice(reason);
        resp.extend_from_slice(
            format!(
                "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
                accept_for(key)
            )
            .as_bytes(),
        );
        c.send(false, &resp);
        c.frame(false, 1, b"upgraded", None);
        c.fin();
        let file = tmp("reason-phrase.pcap");
        std::fs::write(&file, c.pcap(LinkType::RAW)).unwrap();
        let out = wsdump(&file, &["--json"]);
        let r = json_types(&out, "http_response");
        assert_eq!(r.len(), 1, "{}", String::from_utf8_lossy(&out.stdout));
        assert_eq!(r[0]["reason"], json, "{}", r[0]);
        assert_eq!(json_messages(&out), [(1, "upgraded".to_string())]);
        let text = String::from_utf8(wsdump(&file, &[]).stdout).unwrap();
        assert!(text.contains(&format!("HTTP/1.1 101 {human}")), "{text}");
    }
}

/// A close frame whose reason is not UTF-8 showed no reason at all, only the
/// `invalid_utf8` violation: the bytes that were sent are shown now, as hex in the human
/// view and as `close_reason_base64` in JSON.
#[test]
fn a_close_reason_that_is_not_utf8_is_still_shown() {
    let mut c = Capture::new();
    c.upgrade("/chat");
    c.frame(false, 8, b"\x03\xe8bye \xff\xfe", None);
    c.fin();
    let file = tmp("close-not-utf8.pcap");
    std::fs::write(&file, c.pcap(LinkType::RAW)).unwrap();
    let out = wsdump(&file, &["--json"]);
    let close = json_types(&out, "message");
    assert_eq!(close.len(), 1, "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(close[0]["close_code"], 1000);
    assert!(close[0].get("close_reason").is_none(), "{}", close[0]);
    // base64 of "bye \xff\xfe"
    assert_eq!(close[0]["close_reason_base64"], "YnllIP/+", "{}", close[0]);
    let said = json_types(&out, "violation")
        .into_iter()
        .filter(|v| v["kind"] == "invalid_utf8")
        .count();
    assert_eq!(said, 1);
    let text = String::from_utf8(wsdump(&file, &[]).stdout).unwrap();
    assert!(
        text.contains("close 1000 (normal closure) [invalid utf-8]: 0x62796520fffe\n"),
        "{text}"
    );
}

/// A message cut by an RST, or by the connection being forgotten (evicted), was labelled
/// `end of capture`, which it was not. The label says what ended it.
#[test]
fn a_message_cut_by_rst_or_eviction_says_so() {
    // A text frame that claims 100 bytes and sends 10.
    let cut = |c: &mut Capture| {
        let mut f = vec![0x81, 100];
        f.extend_from_slice(b"only a bit");
        c.send(false, &f);
    };
    let mut c = Capture::new();
    c.upgrade("/chat");
    cut(&mut c);
    c.packets
        .push(tcp(SERVER, CLIENT, c.sseq, c.cseq, 0x04 | ACK, b""));
    let file = tmp("cut-by-rst.pcap");
    std::fs::write(&file, c.pcap(LinkType::RAW)).unwrap();
    let out = wsdump(&file, &["--json"]);
    let m = json_types(&out, "message");
    assert_eq!(m.len(), 1, "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(m[0]["incomplete"], "connection_reset", "{}", m[0]);
    let text = String::from_utf8(wsdump(&file, &[]).stdout).unwrap();
    assert!(text.contains("incomplete: connection reset"), "{text}");
    assert!(!text.contains("end of capture"), "{text}");

    // Idle past --idle-timeout while a message is open: evicted.
    let t0 = 1_700_000_000i64;
    let mut c = Capture::new();
    c.upgrade("/chat");
    cut(&mut c);
    let mut packets: Vec<(i64, Vec<u8>)> = c
        .packets
        .drain(..)
        .enumerate()
        .map(|(i, p)| (t0 + i as i64, p))
        .collect();
    for k in 0..2 {
        let syn = tcp(([10, 0, 0, 8], 50001), SERVER, 1, 0, SYN, b"");
        packets.push((t0 + 1000 + k, syn));
    }
    let file = tmp("cut-by-eviction.pcap");
    std::fs::write(&file, pcap_at(&packets)).unwrap();
    let out = wsdump(&file, &["--json", "--idle-timeout", "600"]);
    let m = json_types(&out, "message");
    assert_eq!(m.len(), 1, "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(m[0]["incomplete"], "evicted", "{}", m[0]);
    let out = wsdump(&file, &["--idle-timeout", "600"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("incomplete: evicted"), "{text}");

    // And a capture that simply ends is still the end of capture.
    let mut c = Capture::new();
    c.upgrade("/chat");
    cut(&mut c);
    let file = tmp("cut-by-end.pcap");
    std::fs::write(&file, c.pcap(LinkType::RAW)).unwrap();
    let m = json_types(&wsdump(&file, &["--json"]), "message");
    assert_eq!(m[0]["incomplete"], "end_of_capture", "{}", m[0]);
}
