//! The binary as a Unix tool: pipes both ways, filters, summaries, generated docs, exit codes.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

fn wsdump() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wsdump"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("NO_COLOR");
    c
}

#[test]
fn reads_a_capture_from_stdin() {
    let pcap =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/workerman-chat.pcap"))
            .unwrap();
    let mut child = wsdump()
        .args(["-r", "-", "-m"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&pcap).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let from_file = wsdump()
        .args(["-r", "samples/workerman-chat.pcap", "-m"])
        .output()
        .unwrap();
    assert_eq!(out.stdout, from_file.stdout);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 19);
}

#[test]
fn closed_pipe_ends_quietly_with_success() {
    let mut child = wsdump()
        .args(["-r", "samples/node-fragmented.pcap", "-v", "-X"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read two lines, then close the pipe, like `| head -2`.
    let mut stdout = child.stdout.take().unwrap();
    let mut buf = [0u8; 256];
    let _ = stdout.read(&mut buf).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn exit_codes() {
    let found = wsdump()
        .args(["-r", "samples/ipv6.pcap", "-m"])
        .output()
        .unwrap();
    assert_eq!(found.status.code(), Some(0));
    let none = wsdump()
        .args(["-r", "samples/tls-wss.pcap"])
        .output()
        .unwrap();
    assert_eq!(
        none.status.code(),
        Some(1),
        "TLS only: no websocket decoded"
    );
    let missing = wsdump()
        .args(["-r", "samples/does-not-exist.pcap"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    let garbage = wsdump().args(["-r", "Cargo.toml"]).output().unwrap();
    assert_eq!(garbage.status.code(), Some(2));
    let err = String::from_utf8_lossy(&garbage.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("Cargo.toml") && err.contains("byte offset 0"),
        "{err}"
    );
    let bad_flag = wsdump().args(["-r", "x", "--dir", "up"]).output().unwrap();
    assert_eq!(bad_flag.status.code(), Some(2));
}

#[test]
fn tls_is_recognised_and_explained() {
    let out = wsdump()
        .args(["-r", "samples/tls-wss.pcap", "--json"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let tls: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("\"kind\":\"tls\""))
        .collect();
    assert_eq!(tls.len(), 2, "ClientHello, then the verdict");
    assert!(tls[0].contains("ClientHello") && tls[0].contains("SNI localhost"));
    assert!(tls[1].contains("encrypted") && tls[1].contains("--keylog FILE"));
    assert!(tls[1].contains("\"decrypted\":false"));
    assert!(!text.contains("\"type\":\"message\""));
}

#[test]
fn filters_and_count() {
    let out = wsdump()
        .args([
            "-r",
            "samples/workerman-chat.pcap",
            "--json",
            "-e",
            "mynick",
            "--dir",
            "s2c",
            "-c",
            "2",
        ])
        .output()
        .unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "-c counts what passes the filter");
    for l in &lines {
        assert_eq!(l["type"], "message");
        assert_eq!(l["dir"], "s2c");
        assert!(l["text"].as_str().unwrap().contains("mynick"));
    }
    let closes = wsdump()
        .args([
            "-r",
            "samples/workerman-chat.pcap",
            "-m",
            "--opcode",
            "close",
            "--conn",
            "127.0.0.1:52814",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(closes.stdout).unwrap();
    assert_eq!(text.lines().count(), 2);
    assert!(
        text.lines()
            .all(|l| l.contains("52814") && l.contains("close 100"))
    );
}

#[test]
fn stats_in_both_formats() {
    let human = wsdump()
        .args(["-r", "samples/python-deflate.pcap", "-m", "--stats"])
        .output()
        .unwrap();
    let text = String::from_utf8(human.stdout).unwrap();
    let table: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("conn "))
        .collect();
    assert_eq!(table.len(), 2, "{text}");
    assert!(table[1].contains("→1000 ←1000"), "{}", table[1]);
    let json = wsdump()
        .args([
            "-r",
            "samples/python-deflate.pcap",
            "--json",
            "-m",
            "--stats",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(json.stdout).unwrap();
    let summary: serde_json::Value =
        serde_json::from_str(text.lines().find(|l| l.contains("\"summary\"")).unwrap()).unwrap();
    assert_eq!(summary["c2s_messages"], 12);
    assert_eq!(summary["s2c_messages"], 12);
    assert!(
        summary["c2s_deflate_wire"].as_u64().unwrap()
            < summary["c2s_deflate_bytes"].as_u64().unwrap()
    );
}

#[test]
fn man_page_and_completions_generate_from_the_flags() {
    let man = wsdump().args(["--generate", "man"]).output().unwrap();
    assert!(man.status.success());
    let man = String::from_utf8(man.stdout).unwrap();
    assert!(
        man.starts_with(".ie") || man.contains(".TH wsdump"),
        "{}",
        &man[..100.min(man.len())]
    );
    for flag in [
        "\\-\\-explain",
        "\\-\\-ladder",
        "\\-\\-json",
        "\\-\\-stats",
        "\\-\\-grep",
    ] {
        assert!(man.contains(flag), "man page lacks {flag}");
    }
    for shell in ["bash", "zsh", "fish"] {
        let out = wsdump().args(["--generate", shell]).output().unwrap();
        assert!(out.status.success());
        let s = String::from_utf8(out.stdout).unwrap();
        assert!(
            s.contains("explain") && s.contains("port") && s.contains("wsdump"),
            "{shell}"
        );
    }
}

#[test]
fn help_has_examples() {
    let out = wsdump().arg("--help").output().unwrap();
    let s = String::from_utf8(out.stdout).unwrap();
    assert!(s.contains("Examples:") && s.contains("wsdump -r") && s.contains("Exit status"));
}

/// Progress goes to stderr only when stderr is a terminal (here: a pseudo-terminal made by
/// script(1)); never into a pipe.
#[test]
fn progress_only_on_a_terminal() {
    let bin = env!("CARGO_BIN_EXE_wsdump");
    let cmd = format!("{bin} -r samples/workerman-chat.pcap -m > /dev/null");
    let tty = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("WSDUMP_PROGRESS_TEST", "1")
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&tty.stdout);
    assert!(shown.contains("wsdump: 0 of 0 MB"), "{shown:?}");
    let piped = wsdump()
        .args(["-r", "samples/workerman-chat.pcap", "-m"])
        .env("WSDUMP_PROGRESS_TEST", "1")
        .output()
        .unwrap();
    assert!(
        piped.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&piped.stderr)
    );
}

/// Display filters never change what is decoded or read: the chat reading of a message names
/// its sender even when the filter hides the login that named it (it once printed
/// `↳ → all: hi, all !`, the nickname table having learnt only from what passed `-e`).
#[test]
fn filters_do_not_change_readings() {
    for args in [
        &["-e", "hi, all"][..],
        &["--opcode", "text", "-e", "hi"],
        &["--dir", "c2s", "-e", "hi, all", "--threads", "2"],
        &["--dir", "c2s", "-e", "hi, all", "--threads", "1"],
    ] {
        let out = wsdump()
            .args(["-r", "samples/workerman-chat.pcap", "--color", "never"])
            .args(args)
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains("↳ mynick → all: hi, all !"),
            "{args:?}:\n{text}"
        );
        let json = wsdump()
            .args(["-r", "samples/workerman-chat.pcap", "--json"])
            .args(args)
            .output()
            .unwrap();
        let json = String::from_utf8(json.stdout).unwrap();
        assert!(
            json.contains(r#""chat":"mynick → all: hi, all !""#),
            "{args:?}:\n{json}"
        );
    }
}

/// `--app`: auto by default, none, or one protocol forced; an unknown name is an error that
/// lists the known ones. Forcing the protocol auto finds reads the same; forcing another
/// reads what that protocol can read of it, never changing the raw lines.
#[test]
fn app_auto_none_and_forced() {
    let run = |args: &[&str]| {
        let out = wsdump()
            .args(["--color", "never", "-r", "samples/workerman-chat.pcap"])
            .args(args)
            .env("TZ", "UTC")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (code, auto, _) = run(&[]);
    assert_eq!(code, Some(0));
    assert!(auto.lines().filter(|l| l.contains('↳')).count() >= 10);
    assert_eq!(run(&["--app", "auto"]).1, auto);
    assert_eq!(run(&["--app", "workerman-chat"]).1, auto);
    assert_eq!(run(&["--app", "workerman"]).1, auto);
    let (_, none, _) = run(&["--app", "none"]);
    assert!(!none.contains('↳'));
    // Without a reading, no name either: `mynick@127.0.0.1:48832` is `127.0.0.1:48832`.
    let raw = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| !l.contains('↳'))
            .map(|l| match l.split_once(' ') {
                Some((t, rest)) => match rest.split_once(' ') {
                    Some((who, more)) => {
                        let addr = who.rsplit_once('@').map_or(who, |(_, a)| a);
                        format!("{t} {addr} {more}")
                    }
                    None => l.to_string(),
                },
                None => l.to_string(),
            })
            .collect()
    };
    assert_eq!(raw(&none), raw(&auto));
    // JSON-RPC reads none of workerman's messages: no readings, same raw lines.
    let (_, rpc, _) = run(&["--app", "json-rpc"]);
    assert_eq!(rpc, none);
    let (code, out, err) = run(&["--app", "nope"]);
    assert_eq!(code, Some(2));
    assert!(out.is_empty());
    assert!(
        err.contains("socket.io") && err.contains("mqtt") && err.contains("none"),
        "{err}"
    );
    let help = wsdump().arg("--help").output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    assert!(help.contains("--app <auto|none|NAME>") && help.contains("graphql-transport-ws"));
}
