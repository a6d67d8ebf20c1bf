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
