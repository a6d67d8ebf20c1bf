//! The chat developer's view end to end, on the real workerman-chat recording (two Chromium
//! clients and workerman-chat) and the reconnect recording: names on lines, `--chat`, the
//! terminal width, hiding noise, verdicts, the ladder drawn live.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_wsdump");

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn wsdump(args: &[&str]) -> Output {
    Command::new(BIN)
        .current_dir(root())
        .args(args)
        .args(["--color", "never"])
        .env("TZ", "UTC")
        .env("LC_ALL", "C.UTF-8")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

const CHAT: &str = "samples/workerman-chat.pcap";

/// The reference session: each chat event is one line, whoever received it.
#[test]
fn chat_view_is_one_line_per_event() {
    let o = wsdump(&["-r", CHAT, "--chat"]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    let count = |s: &str| lines.iter().filter(|l| l.contains(s)).count();
    // What the peers sent (samples/workerman-chat.peer.jsonl): 2 logins, 3 says, 1 leave.
    assert_eq!(count("hi, all !"), 1, "{out}");
    assert_eq!(count("привет, mynick 👋"), 1, "{out}");
    assert_eq!(count("psst second, this one is private"), 1, "{out}");
    assert_eq!(count("mynick logs in to room 1"), 1, "{out}");
    assert_eq!(count("second logs in to room 1"), 1, "{out}");
    assert_eq!(count("second left"), 1, "{out}");
    assert_eq!(lines.len(), 6, "{out}");
    // The broadcast reached both clients; the leave only the one still there.
    let hi = lines.iter().find(|l| l.contains("hi, all !")).unwrap();
    assert!(hi.ends_with("seen by second, mynick"), "{hi}");
    let left = lines.iter().find(|l| l.contains("second left")).unwrap();
    assert!(left.ends_with("seen by mynick"), "{left}");
    // Its times are the sender's messages, as the default view prints them.
    assert!(hi.starts_with("07:44:13.828022 "), "{hi}");

    let ru = stdout(&wsdump(&["-r", CHAT, "--chat", "--lang", "ru"]));
    assert!(ru.contains("видели: second, mynick"), "{ru}");
    assert!(!ru.contains("seen by"), "{ru}");
}

/// Every line of a named connection carries the name, from the login on; `--conn NAME`
/// selects it; JSON has a `label`.
#[test]
fn names_on_lines_and_in_filters() {
    let out = stdout(&wsdump(&["-r", CHAT, "-m", "--conn", "second"]));
    assert!(!out.is_empty());
    for l in out.lines() {
        assert!(l.contains(" second@127.0.0.1:52814 "), "{l}");
    }
    // Connection 2's messages: its login, 3 deliveries, its say, the private copy, closes.
    assert_eq!(out.lines().count(), 8, "{out}");
    let json = stdout(&wsdump(&["-r", CHAT, "--json", "-m", "--conn", "mynick"]));
    for l in json.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["label"], "mynick", "{l}");
        assert_eq!(v["client"], "127.0.0.1:48832", "{l}");
    }
    let o = wsdump(&["-r", CHAT, "-m", "--conn", "nobody"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "a label nobody has selects nothing"
    );
    assert!(o.stdout.is_empty());
}

/// `--exclude` drops a message with its reading: no orphan `↳` line is left.
#[test]
fn exclude_leaves_no_orphan_readings() {
    let all = stdout(&wsdump(&["-r", CHAT]));
    let out = stdout(&wsdump(&["-r", CHAT, "--exclude", r#""type":"say""#]));
    assert!(!out.contains("\"say\""), "{out}");
    assert!(!out.contains("hi, all !"), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        if l.trim_start().starts_with('↳') {
            assert!(lines[i - 1].contains(" text "), "orphan reading: {l}");
        }
    }
    // The six say messages (3 sent, 6 copies... as the wire has them) and their readings.
    let says = all
        .lines()
        .filter(|l| l.contains("\"type\":\"say\""))
        .count();
    assert_eq!(says, 9);
    assert_eq!(all.lines().count() - out.lines().count(), 2 * says);
}

/// On a terminal, payload previews and readings are cut to its width, with the true length;
/// in a pipe, and with -v, they are whole.
#[test]
fn lines_fit_the_terminal() {
    let cmd = format!("{BIN} -r {CHAT} --color never -m");
    let o = Command::new("script")
        .current_dir(root())
        .args(["-qec", &cmd, "/dev/null"])
        .env("COLUMNS", "80")
        .env("TZ", "UTC")
        .env("LC_ALL", "C.UTF-8")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8(o.stdout).unwrap().replace("\r\n", "\n");
    let mut cut = 0;
    for l in out.lines() {
        let w: usize = l
            .chars()
            .map(|c| unicode_width::UnicodeWidthChar::width(c).unwrap_or(0))
            .sum();
        assert!(w <= 80, "{w} columns: {l}");
        if l.contains("… ") && l.ends_with(" bytes") {
            cut += 1;
        }
    }
    // The 154-byte say copies are cut, their length said; a named client is its name and
    // connection number (the address is on the lines before its login).
    assert!(
        out.contains(" second#2 ← 127.0.0.1:7272 text 154: {\"type\":\"say\""),
        "{out}"
    );
    assert!(out.contains("… 154 bytes\n"), "{out}");
    assert!(cut >= 10, "{out}");
    // In a pipe: whole.
    let piped = stdout(&wsdump(&["-r", CHAT, "-m"]));
    assert!(piped.contains("\"content\":\"hi, all !\",\"time\":\"2026-11-25 07:44:13\"}"));
}

const RECONNECT: &str = "samples/reconnect.pcap";

/// The reconnect recording (samples/reconnect.steps.jsonl): 4 refused attempts, a session
/// the server cut without a close frame, a reconnect that closes normally.
#[test]
fn verdicts_in_words() {
    let out = stdout(&wsdump(&["-r", RECONNECT]));
    let refused = out
        .lines()
        .filter(|l| l.ends_with("connection refused: nothing is listening on 127.0.0.1:9011"))
        .count();
    assert_eq!(refused, 4, "{out}");
    let cut: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("without a websocket close frame"))
        .collect();
    assert_eq!(cut.len(), 1, "{out}");
    assert!(
        cut[0].contains("← 127.0.0.1:9011 tcp teardown [F.]"),
        "{}",
        cut[0]
    );
    assert!(cut[0].ends_with("closed by the server (FIN) without a websocket close frame"));

    let stats = stdout(&wsdump(&["-r", RECONNECT, "--stats", "-m"]));
    let rows: Vec<&str> = stats
        .lines()
        .skip_while(|l| !l.starts_with("conn "))
        .skip(1)
        .collect();
    assert_eq!(rows.len(), 6, "{stats}");
    assert!(
        rows[0].ends_with(" refused (nothing listening)"),
        "{}",
        rows[0]
    );
    for (i, r) in rows.iter().enumerate().skip(1) {
        assert!(r.contains(&format!("reconnect #{i} after 0.0")), "{r}");
    }
    assert!(
        rows[4].ends_with("cut by the server (FIN), no close frame"),
        "{}",
        rows[4]
    );
    assert!(rows[5].contains("→1000 ←1000"), "{}", rows[5]);

    let ru = stdout(&wsdump(&["-r", RECONNECT, "--lang", "ru"]));
    assert!(ru.contains("в соединении отказано: на 127.0.0.1:9011 никто не слушает"));
    assert!(ru.contains("сервер закрыл соединение (FIN) без фрейма close"));
    assert!(!ru.contains("refused"), "{ru}");
}

/// `--ladder` from a pipe draws each row as its packet comes: the first rows are out while
/// the connection is still open (the rest of the capture not yet written).
#[test]
fn ladder_from_a_pipe_is_drawn_live() {
    let pcap = std::fs::read(root().join(CHAT)).unwrap();
    // The global header and the first 7 packets (connection 1's handshake and upgrade).
    let mut ends = vec![24];
    while ends.len() <= 7 {
        let at = *ends.last().unwrap();
        let incl = u32::from_le_bytes(pcap[at + 8..at + 12].try_into().unwrap()) as usize;
        ends.push(at + 16 + incl);
    }
    let at = ends[7];
    let mut child = Command::new(BIN)
        .current_dir(root())
        .args(["-r", "-", "--ladder", "--color", "never"])
        .env("LC_ALL", "C.UTF-8")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Two writes: the reader reads twice before its first packet (pcap-parser's opening).
    stdin.write_all(&pcap[..ends[6]]).unwrap();
    stdin.flush().unwrap();
    stdin.write_all(&pcap[ends[6]..at]).unwrap();
    stdin.flush().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let start = Instant::now();
    // A guard against a hang, not a timing assertion: the rows must come before more input.
    while !seen.iter().any(|l: &String| l.contains("GET / Upgrade")) {
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(l) => seen.push(l),
            Err(_) => panic!("no ladder row while the connection is open: {seen:?}"),
        }
        assert!(start.elapsed() < Duration::from_secs(30));
    }
    assert!(
        seen[0].starts_with("connection 1: client 127.0.0.1:48832"),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|l| l.contains("#1 +0.000000") && l.contains("SYN"))
    );
    stdin.write_all(&pcap[at..]).unwrap();
    drop(stdin);
    let mut rest = String::new();
    for l in rx.iter() {
        rest.push_str(&l);
        rest.push('\n');
    }
    let _ = child.wait();
    // The title again when the connection is named, and connection 2's own rows.
    assert!(
        rest.contains("connection 1: client mynick@127.0.0.1:48832"),
        "{rest}"
    );
    assert!(
        rest.contains("connection 2: client 127.0.0.1:52814"),
        "{rest}"
    );
    assert!(rest.contains("#2 "), "{rest}");
}

const HEARTBEAT: &str = "samples/workerman-heartbeat.pcap";

/// The heartbeat recording (samples/workerman-heartbeat.steps.jsonl): workerman-chat pings
/// each quiet client; mynick answers, second does not and is cut by the server.
#[test]
fn heartbeats_hidden_and_the_missed_one_said() {
    let all = stdout(&wsdump(&["-r", HEARTBEAT, "--max-message", "300"]));
    let quiet = stdout(&wsdump(&[
        "-r",
        HEARTBEAT,
        "--max-message",
        "300",
        "--no-heartbeats",
    ]));
    // 3 pings and 2 pongs, each with its reading.
    let beats = all.lines().filter(|l| l.contains("heartbeat p")).count();
    assert_eq!(beats, 5, "{all}");
    assert_eq!(all.lines().count() - quiet.lines().count(), 10);
    assert!(
        !quiet.contains("\"type\":\"ping\"") && !quiet.contains("heartbeat p"),
        "{quiet}"
    );
    // What is hidden still explains the cut.
    assert!(
        quiet.contains("1.0 s after a heartbeat the client did not answer\n"),
        "{quiet}"
    );
    let cut: Vec<&str> = all
        .lines()
        .filter(|l| l.contains("did not answer"))
        .collect();
    assert_eq!(cut.len(), 1, "{all}");
    assert!(cut[0].contains("second@127.0.0.1:45034 ← 127.0.0.1:7272 tcp teardown [F.]"));
    assert!(cut[0].ends_with("1.0 s after a heartbeat the client did not answer"));
    // --chat: heartbeats only with -v, the leave once.
    let chat = stdout(&wsdump(&["-r", HEARTBEAT, "--chat"]));
    assert!(!chat.contains("heartbeat p"), "{chat}");
    assert!(
        chat.contains("second: closed by the server (FIN) without a websocket close frame, 1.0 s after a heartbeat the client did not answer\n"),
        "{chat}"
    );
    assert_eq!(
        chat.lines().filter(|l| l.contains("second left")).count(),
        1
    );
    let chat_v = stdout(&wsdump(&["-r", HEARTBEAT, "--chat", "-v"]));
    assert_eq!(
        chat_v.lines().filter(|l| l.contains("heartbeat p")).count(),
        5
    );
    assert!(chat_v.contains("second left · seen by mynick"), "{chat_v}");
}

/// `-v` shows the upgrade's headers; cookie values are hidden unless `-vv`.
#[test]
fn upgrade_headers_with_secrets_masked() {
    let v = stdout(&wsdump(&["-r", HEARTBEAT, "-v", "--max-message", "300"]));
    assert!(
        v.contains("\n    Origin: http://chat.workerman.net\n"),
        "{v}"
    );
    assert!(
        v.contains("\n    User-Agent: Python/3.11 websockets/17.4\n"),
        "{v}"
    );
    assert!(v.contains(
        "\n    Cookie: PHPSESSID=<12 bytes hidden, -vv shows>; lang=<2 bytes hidden, -vv shows>\n"
    ));
    assert!(!v.contains("9d8e7f6a5b4c"), "a cookie value leaked");
    let vv = stdout(&wsdump(&["-r", HEARTBEAT, "-vv", "--max-message", "300"]));
    assert!(
        vv.contains("\n    Cookie: PHPSESSID=9d8e7f6a5b4c; lang=en\n"),
        "{vv}"
    );
    // Without -v, no header lines.
    let plain = stdout(&wsdump(&["-r", HEARTBEAT, "--max-message", "300"]));
    assert!(!plain.contains("    Host: "));
}

/// A 100 KB message on an 80-column terminal is one row, not 1,250.
#[test]
fn a_100_kb_message_is_one_row() {
    let cmd = format!("{BIN} -r {HEARTBEAT} --color never --chat");
    let o = Command::new("script")
        .current_dir(root())
        .args(["-qec", &cmd, "/dev/null"])
        .env("COLUMNS", "80")
        .env("TZ", "UTC")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let out = String::from_utf8(o.stdout).unwrap().replace("\r\n", "\n");
    let big: Vec<&str> = out.lines().filter(|l| l.contains("abcdefghij")).collect();
    assert_eq!(big.len(), 1, "{out}");
    assert!(big[0].ends_with("… · seen by mynick, second"), "{}", big[0]);
    for l in out.lines() {
        assert!(unicode_width::UnicodeWidthStr::width(l) <= 80, "{l}");
    }
    let cmd = format!("{BIN} -r {HEARTBEAT} --color never -m --conn second");
    let o = Command::new("script")
        .current_dir(root())
        .args(["-qec", &cmd, "/dev/null"])
        .env("COLUMNS", "80")
        .env("TZ", "UTC")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let out = String::from_utf8(o.stdout).unwrap().replace("\r\n", "\n");
    assert!(
        out.contains(" second#2 ← 127.0.0.1:7272 text 100145: {\"type\":\"sa"),
        "{out}"
    );
    assert!(out.contains("… 100145 bytes\n"), "{out}");
}

/// More first guesses of tcpdump and tshark users: accepted when wsdump does the same,
/// answered with the wsdump way when it does not, never a bare "unexpected argument".
#[test]
fn more_tcpdump_and_tshark_habits() {
    let base = stdout(&wsdump(&["-r", CHAT, "-m", "-X"]));
    for same in [&["-x"][..], &["-xx"], &["-XX"], &["-X", "-K"]] {
        let mut args = vec!["-r", CHAT, "-m"];
        args.extend_from_slice(same);
        let o = wsdump(&args);
        assert_eq!(o.status.code(), Some(0), "{same:?}");
        assert_eq!(stdout(&o), base, "{same:?}");
    }
    // tshark's -f is the capture filter.
    let f = wsdump(&["-r", CHAT, "-m", "-f", "port 52814"]);
    assert_eq!(
        stdout(&f),
        stdout(&wsdump(&["-r", CHAT, "-m", "port", "52814"]))
    );
    assert!(!f.stdout.is_empty());
    for (args, answer) in [
        (&["-S"][..], "relative"),
        (&["-Z", "nobody"], "drops its privileges"),
        (&["-z", "io,stat,1"], "--stats"),
        (&["-O", "websocket"], "-v"),
        (&["-E", "separator=,"], "--json | jq"),
    ] {
        let mut a = vec!["-r", CHAT];
        a.extend_from_slice(args);
        let o = wsdump(&a);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(
            err.contains(answer) && !err.contains("unexpected argument"),
            "{args:?}: {err}"
        );
    }
}

/// True when packet sockets can be opened; otherwise says so (or fails under CI=true).
fn can_capture(test: &str) -> bool {
    // SAFETY: plain socket(2); closed right away.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW,
            (libc::ETH_P_ALL as u16).to_be() as i32,
        )
    };
    if fd >= 0 {
        unsafe { libc::close(fd) };
        return true;
    }
    let msg = format!("{test}: SKIPPED: needs CAP_NET_RAW (run the tests as root)");
    assert!(
        !std::env::var("CI").is_ok_and(|v| v == "true"),
        "{msg}; CI=true does not accept skipping"
    );
    eprintln!("\n!!!!!!!! {msg} !!!!!!!!\n");
    false
}

/// A capture that is stopped (SIGINT) and waited for however the test ends.
struct Stopped(std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our child's pid.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGINT) };
        let _ = self.0.wait();
    }
}

/// `--chat` live on loopback: a chat server in workerman-chat's JSON fans a message out to
/// both its clients, and the one line for it, with both recipients, is printed while the
/// connections are still open.
#[test]
fn chat_view_live() {
    use std::net::{TcpListener, TcpStream};
    use tungstenite::Message;
    if !can_capture("chat_view_live") {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let mut child = Stopped(
        Command::new(BIN)
            .args(["-i", "lo", "--port", &port, "--chat", "--color", "never"])
            .env("TZ", "UTC")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let child = &mut child.0;
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let err = child.stderr.take().unwrap();
    let txe = tx.clone();
    std::thread::spawn(move || {
        for l in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = txe.send(format!("stderr: {l}"));
        }
    });
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let wait_for = |what: &str, seen: &mut Vec<String>| loop {
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(l) if l.contains(what) => return l,
            Ok(l) => seen.push(l),
            Err(_) => panic!("no {what:?} line: {seen:?}"),
        }
    };
    let mut seen = Vec::new();
    wait_for("listening on", &mut seen);

    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let server = std::thread::spawn(move || {
        let login = |name: &str, id: &str| {
            Message::text(format!(
                r#"{{"type":"login","client_id":"{id}","client_name":"{name}","time":"t"}}"#
            ))
        };
        let (s, _) = listener.accept().unwrap();
        let mut a = tungstenite::accept(s).unwrap();
        a.read().unwrap();
        a.send(login("alpha", "1")).unwrap();
        let (s, _) = listener.accept().unwrap();
        let mut b = tungstenite::accept(s).unwrap();
        b.read().unwrap();
        a.send(login("beta", "2")).unwrap();
        b.send(login("beta", "2")).unwrap();
        a.read().unwrap();
        let say = r#"{"type":"say","from_client_id":"1","from_client_name":"alpha","to_client_id":"all","content":"hello live","time":"t"}"#;
        a.send(Message::text(say)).unwrap();
        b.send(Message::text(say)).unwrap();
        // The connections end when the test says (dropped: a FIN each).
        let _ = done_rx.recv();
        drop((a, b));
    });
    let url = format!("ws://127.0.0.1:{port}/");
    let connect = || {
        let s = TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
        tungstenite::client(url.as_str(), s).unwrap().0
    };
    let mut a = connect();
    a.send(Message::text(
        r#"{"type":"login","client_name":"alpha","room_id":1}"#,
    ))
    .unwrap();
    a.read().unwrap();
    let mut b = connect();
    b.send(Message::text(
        r#"{"type":"login","client_name":"beta","room_id":1}"#,
    ))
    .unwrap();
    a.read().unwrap();
    b.read().unwrap();
    a.send(Message::text(
        r#"{"type":"say","to_client_id":"all","to_client_name":"all","content":"hello live"}"#,
    ))
    .unwrap();
    a.read().unwrap();
    b.read().unwrap();
    // Both connections are open: the line must be out already.
    let line = wait_for("hello live", &mut seen);
    // Recipients in the order the copies were captured.
    let both = |l: &str, what: &str| {
        l.ends_with(&format!("{what} · seen by alpha, beta"))
            || l.ends_with(&format!("{what} · seen by beta, alpha"))
    };
    assert!(both(&line, "alpha → all: hello live"), "{line}");
    assert!(
        seen.iter().any(|l| both(l, "beta logs in to room 1")),
        "{seen:?}"
    );
    done_tx.send(()).unwrap();
    drop((a, b));
    server.join().unwrap();
}
