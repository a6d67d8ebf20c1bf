//! Live capture end to end: a real websocket conversation (tungstenite server and client over
//! std TCP) on loopback, captured by the `wsdump` binary through an AF_PACKET socket.
//!
//! Needs CAP_NET_RAW (root). Without it every test prints a loud SKIPPED line and passes —
//! unless CI=true, where a skip is a failure.

use base64::Engine;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Bytes, Message};

mod common;
use common::netns::{in_netns, ip};

const BIN: &str = env!("CARGO_BIN_EXE_wsdump");

/// True when packet sockets can be opened; otherwise says so loudly (or fails under CI).
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
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}; CI=true does not accept skipping");
    }
    eprintln!("\n!!!!!!!! {msg} !!!!!!!!\n");
    false
}

/// The conversation, one entry per message as wsdump should report it.
#[derive(Clone, Debug, PartialEq)]
struct Msg {
    c2s: bool,
    opcode: &'static str,
    payload: Vec<u8>,
    close: Option<(u16, String)>,
}

fn big_text() -> String {
    (0..250_000u32)
        .map(|i| (b'a' + (i * 7 % 26) as u8) as char)
        .collect()
}

fn script() -> Vec<Msg> {
    let m = |c2s, opcode, p: &[u8]| Msg {
        c2s,
        opcode,
        payload: p.to_vec(),
        close: None,
    };
    let bin_c: Vec<u8> = (0..1024u32).map(|i| (i % 256) as u8).collect();
    let bin_s: Vec<u8> = (0..300u32).map(|i| (255 - i % 256) as u8).collect();
    vec![
        m(true, "text", b"hello from the client"),
        m(false, "text", "welcome \u{2603} to the server".as_bytes()),
        m(true, "text", big_text().as_bytes()),
        m(false, "text", b"got the big one"),
        m(true, "binary", &bin_c),
        m(false, "binary", &bin_s),
        m(true, "ping", b"ping-payload-42"),
        m(false, "pong", b"ping-payload-42"),
        m(false, "text", b"after the ping"),
        Msg {
            c2s: true,
            opcode: "close",
            payload: vec![],
            close: Some((4001, "bye now".into())),
        },
        Msg {
            c2s: false,
            opcode: "close",
            payload: vec![],
            close: Some((4001, "bye now".into())),
        },
    ]
}

fn to_message(m: &Msg) -> Message {
    match m.opcode {
        "text" => Message::text(String::from_utf8(m.payload.clone()).unwrap()),
        "binary" => Message::binary(m.payload.clone()),
        "ping" => Message::Ping(Bytes::from(m.payload.clone())),
        "close" => {
            let (code, reason) = m.close.clone().unwrap();
            Message::Close(Some(CloseFrame {
                code: CloseCode::from(code),
                reason: reason.into(),
            }))
        }
        o => panic!("not scripted: {o}"),
    }
}

/// Runs the scripted conversation through tungstenite: the listener is already bound.
fn converse(listener: TcpListener) {
    converse_with(listener, |a| TcpStream::connect(a).unwrap())
}

fn converse_with(listener: TcpListener, connect: impl FnOnce(SocketAddr) -> TcpStream) {
    let addr = listener.local_addr().unwrap();
    let sc = script();
    let server_script = sc.clone();
    let server = thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        let mut ws = tungstenite::accept(s).unwrap();
        for m in server_script.iter() {
            if m.c2s {
                let got = ws.read().unwrap();
                match m.opcode {
                    "ping" => {
                        assert!(matches!(got, Message::Ping(ref p) if p[..] == m.payload[..]));
                        // Sends the queued pong before anything else.
                        ws.flush().unwrap();
                    }
                    "close" => {
                        assert!(matches!(got, Message::Close(_)));
                        // The reply to the close goes out here.
                        while ws.flush().is_ok() {}
                        return;
                    }
                    _ => assert_eq!(got.into_data()[..], m.payload[..]),
                }
            } else if m.opcode != "pong" && m.opcode != "close" {
                ws.send(to_message(m)).unwrap();
            }
        }
    });
    let stream = connect(addr);
    let host = match addr.ip() {
        IpAddr::V4(ip) => format!("{ip}:{}", addr.port()),
        IpAddr::V6(ip) => format!("[{ip}]:{}", addr.port()),
    };
    let (mut ws, _) = tungstenite::client(format!("ws://{host}/live"), stream).unwrap();
    for m in sc.iter() {
        if m.c2s {
            ws.send(to_message(m)).unwrap();
        } else {
            let got = ws.read().unwrap();
            match m.opcode {
                "pong" => assert!(matches!(got, Message::Pong(ref p) if p[..] == m.payload[..])),
                "close" => assert!(matches!(got, Message::Close(_))),
                _ => assert_eq!(got.into_data()[..], m.payload[..]),
            }
        }
    }
    // Drive the close handshake to its end.
    while ws.read().is_ok() {}
    server.join().unwrap();
}

/// A running wsdump with its stdout lines and stderr collected.
struct Wsdump {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
    out_done: mpsc::Receiver<()>,
}

fn spawn(args: &[&str], env: &[(&str, &str)]) -> Wsdump {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    start(cmd)
}

fn spawn_cmd(program: &str, args: &[&str]) -> Wsdump {
    let mut cmd = Command::new(program);
    cmd.args(args.iter());
    start(cmd)
}

fn start(mut cmd: Command) -> Wsdump {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn wsdump");
    let lines = Arc::new(Mutex::new(Vec::new()));
    let stderr = Arc::new(Mutex::new(String::new()));
    let (ready_tx, ready_rx) = mpsc::channel();
    let err = child.stderr.take().unwrap();
    let e2 = stderr.clone();
    thread::spawn(move || {
        for l in BufReader::new(err).lines().map_while(Result::ok) {
            if l.contains("listening on") {
                let _ = ready_tx.send(());
            }
            let mut e = e2.lock().unwrap();
            e.push_str(&l);
            e.push('\n');
        }
    });
    let out = child.stdout.take().unwrap();
    let l2 = lines.clone();
    let (done_tx, out_done) = mpsc::channel();
    thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            l2.lock().unwrap().push(l);
        }
        let _ = done_tx.send(());
    });
    if ready_rx.recv_timeout(Duration::from_secs(10)).is_err() {
        let _ = child.kill();
        panic!("wsdump did not start: {}", stderr.lock().unwrap());
    }
    Wsdump {
        child,
        lines,
        stderr,
        out_done,
    }
}

/// A failing test must not leave a capture running.
impl Drop for Wsdump {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Wsdump {
    /// Waits until `pred` holds for the output lines (or times out), then SIGINT.
    fn interrupt_when(&mut self, pred: impl Fn(&[String]) -> bool) {
        let t = Instant::now();
        while !pred(&self.lines.lock().unwrap()) && t.elapsed() < Duration::from_secs(10) {
            thread::sleep(Duration::from_millis(20));
        }
        // Give a possible duplicate a chance to show up.
        thread::sleep(Duration::from_millis(300));
        // SAFETY: kill(2) on our child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
    }

    /// Waits for exit; returns (status code, stdout lines, stderr).
    fn wait(mut self) -> (i32, Vec<String>, String) {
        let t = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if t.elapsed() > Duration::from_secs(10) {
                let _ = self.child.kill();
                panic!(
                    "wsdump did not exit; stderr: {}",
                    self.stderr.lock().unwrap()
                );
            }
            thread::sleep(Duration::from_millis(20));
        };
        let _ = self.out_done.recv_timeout(Duration::from_secs(5));
        thread::sleep(Duration::from_millis(50));
        let lines = self.lines.lock().unwrap().clone();
        let err = self.stderr.lock().unwrap().clone();
        (status.code().unwrap_or(-1), lines, err)
    }
}

fn messages(lines: &[String]) -> Vec<Msg> {
    let b64 = base64::engine::general_purpose::STANDARD;
    lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .filter(|v| v["type"] == "message")
        .map(|v| {
            let opcode: &'static str = match v["opcode"].as_str().unwrap() {
                "text" => "text",
                "binary" => "binary",
                "ping" => "ping",
                "pong" => "pong",
                "close" => "close",
                o => panic!("opcode {o}"),
            };
            let payload = if let Some(t) = v["text"].as_str() {
                t.as_bytes().to_vec()
            } else if let Some(b) = v["base64"].as_str() {
                b64.decode(b).unwrap()
            } else {
                vec![]
            };
            let close = v["close_code"].as_u64().map(|c| {
                (
                    c as u16,
                    v["close_reason"].as_str().unwrap_or("").to_string(),
                )
            });
            assert!(
                v.get("truncated").is_none() && v.get("incomplete").is_none(),
                "damaged: {v}"
            );
            Msg {
                c2s: v["dir"] == "c2s",
                opcode,
                payload,
                close,
            }
        })
        .collect()
}

/// Every scripted message exactly once, in order per direction, byte-identical.
fn assert_conversation(got: &[Msg], stderr: &str) {
    let want = script();
    for dir in [true, false] {
        let g: Vec<&Msg> = got.iter().filter(|m| m.c2s == dir).collect();
        let w: Vec<&Msg> = want.iter().filter(|m| m.c2s == dir).collect();
        let show = |v: &[&Msg]| {
            v.iter()
                .map(|m| format!("{} {}B {:?}", m.opcode, m.payload.len(), m.close))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            show(&g),
            show(&w),
            "{} messages differ; stderr:\n{stderr}",
            if dir { "c2s" } else { "s2c" }
        );
        assert_eq!(g, w);
    }
}

fn bind(ip: &str) -> (TcpListener, u16) {
    let l = TcpListener::bind(SocketAddr::new(ip.parse().unwrap(), 0)).unwrap();
    let p = l.local_addr().unwrap().port();
    (l, p)
}

fn count_messages(lines: &[String]) -> usize {
    lines
        .iter()
        .filter(|l| l.contains("\"type\":\"message\""))
        .count()
}

fn live_loopback(ip: &str, test: &str) {
    if !can_capture(test) {
        return;
    }
    let (listener, port) = bind(ip);
    let port_s = port.to_string();
    let mut w = spawn(&["-i", "lo", "--port", &port_s, "--json", "-m"], &[]);
    converse(listener);
    let n = script().len();
    w.interrupt_when(|l| count_messages(l) >= n);
    let (code, lines, err) = w.wait();
    assert_eq!(code, 0, "exit status; stderr:\n{err}");
    assert_conversation(&messages(&lines), &err);
    assert!(err.contains("packets captured"), "summary missing: {err}");
    assert!(err.contains("0 packets dropped by kernel"), "{err}");
    assert!(err.contains("1 websocket connection,"), "{err}");
    assert!(err.contains(&format!("{n} messages decoded")), "{err}");
}

#[test]
fn live_ipv4_loopback() {
    live_loopback("127.0.0.1", "live_ipv4_loopback");
}

#[test]
fn live_ipv6_loopback() {
    live_loopback("::1", "live_ipv6_loopback");
}

/// `-c N` stops by itself after N messages, with the summary.
#[test]
fn live_count_stops() {
    if !can_capture("live_count_stops") {
        return;
    }
    let (listener, port) = bind("127.0.0.1");
    let port_s = port.to_string();
    let w = spawn(&["-i", "lo", "-p", &port_s, "--json", "-m", "-c", "3"], &[]);
    converse(listener);
    let (code, lines, err) = w.wait();
    assert_eq!(code, 0, "{err}");
    let got = messages(&lines);
    assert_eq!(got.len(), 3);
    assert_eq!(got[..], script()[..3]);
    assert!(err.contains("packets captured"), "{err}");
}

/// `wsdump -w - | wsdump -r -`: the capture streams through a pipe, as from tcpdump.
#[test]
fn live_pipe_into_read_from_stdin() {
    if !can_capture("live_pipe_into_read_from_stdin") {
        return;
    }
    let (listener, port) = bind("127.0.0.1");
    let n = script().len();
    let pipeline =
        format!("{BIN} -i lo --port {port} -w - -c {n} | {BIN} -r - --port {port} --json -m");
    let w = spawn_cmd("sh", &["-c", &pipeline]);
    converse(listener);
    let (code, lines, err) = w.wait();
    assert_eq!(code, 0, "{err}");
    assert_conversation(&messages(&lines), &err);
}

/// `-w` writes what was captured; `-r` of that file prints what the live run printed.
#[test]
fn live_write_then_read() {
    if !can_capture("live_write_then_read") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("wsdump-live-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("live.pcap");
    let file_s = file.to_str().unwrap();
    let (listener, port) = bind("127.0.0.1");
    let port_s = port.to_string();
    let mut w = spawn(
        &["-i", "lo", "--port", &port_s, "--json", "-w", file_s],
        &[],
    );
    converse(listener);
    let n = script().len();
    w.interrupt_when(|l| {
        count_messages(l) >= n && l.iter().filter(|x| x.contains("\"role\":\"fin\"")).count() >= 2
    });
    let (code, live_lines, err) = w.wait();
    assert_eq!(code, 0, "{err}");
    assert_conversation(&messages(&live_lines), &err);

    let out = Command::new(BIN)
        .args(["-r", file_s, "--port", &port_s, "--json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file_lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(
        file_lines, live_lines,
        "-r of the -w file differs from the live output"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// pnet's default read buffer (4096) cuts loopback segments short: wsdump notices.
#[test]
fn live_small_read_buffer_reports_truncation() {
    if !can_capture("live_small_read_buffer_reports_truncation") {
        return;
    }
    let (listener, port) = bind("127.0.0.1");
    let port_s = port.to_string();
    let mut w = spawn(
        &["-i", "lo", "--port", &port_s, "--json"],
        &[("WSDUMP_READ_BUFFER", "4096")],
    );
    converse(listener);
    w.interrupt_when(|l| l.iter().any(|x| x.contains("\"role\":\"fin\"")));
    let (_, lines, err) = w.wait();
    assert!(
        lines.iter().any(|l| l.contains("truncated_packet")),
        "no truncated_packet notice; stderr:\n{err}\n{}",
        lines.join("\n")
    );
}

/// Deletes the namespaces (and with them the veth pair) when the test ends.
struct Netns(Vec<String>);

impl Drop for Netns {
    fn drop(&mut self) {
        for ns in &self.0 {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

/// The Ethernet path on a real Ethernet device: two network namespaces joined by a veth
/// pair, the client in one, the server in the other, wsdump on the client's veth.
#[test]
fn live_veth_between_namespaces() {
    if !can_capture("live_veth_between_namespaces") {
        return;
    }
    let id = std::process::id() % 100_000;
    let (na, nb) = (format!("wsd-a-{id}"), format!("wsd-b-{id}"));
    let (va, vb) = (format!("wsda{id}"), format!("wsdb{id}"));
    let _guard = Netns(vec![na.clone(), nb.clone()]);
    let setup = || -> Result<(), String> {
        ip(&["netns", "add", &na])?;
        ip(&["netns", "add", &nb])?;
        ip(&[
            "link", "add", &va, "netns", &na, "type", "veth", "peer", "name", &vb, "netns", &nb,
        ])?;
        ip(&["-n", &na, "addr", "add", "10.231.7.1/24", "dev", &va])?;
        ip(&["-n", &nb, "addr", "add", "10.231.7.2/24", "dev", &vb])?;
        for (ns, dev) in [(&na, &va), (&nb, &vb)] {
            ip(&["-n", ns, "link", "set", dev, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        Ok(())
    };
    if let Err(e) = setup() {
        let msg = format!("live_veth_between_namespaces: SKIPPED: cannot create namespaces: {e}");
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{msg}");
        }
        eprintln!("\n!!!!!!!! {msg} !!!!!!!!\n");
        return;
    }
    // Once on the veth alone (-i), once on every interface of the namespace (no -i: lo and
    // the veth, each with its own socket): each message must appear exactly once either way.
    for explicit in [true, false] {
        let listener = in_netns(&nb, || TcpListener::bind("10.231.7.2:0").unwrap());
        let port = listener.local_addr().unwrap().port().to_string();
        let mut cmd_args = vec!["netns", "exec", na.as_str(), BIN];
        if explicit {
            cmd_args.extend(["-i", va.as_str()]);
        }
        cmd_args.extend(["--port", port.as_str(), "--json", "-m"]);
        let mut w = spawn_cmd("ip", &cmd_args);
        let na2 = na.clone();
        converse_with(listener, move |a| {
            in_netns(&na2, move || TcpStream::connect(a).unwrap())
        });
        let n = script().len();
        w.interrupt_when(|l| count_messages(l) >= n);
        let (code, lines, err) = w.wait();
        assert_eq!(code, 0, "exit status; stderr:\n{err}");
        assert!(err.contains(&format!("{va} (EN10MB)")), "{err}");
        if !explicit {
            assert!(
                err.contains("lo (EN10MB)"),
                "-i any should open lo too: {err}"
            );
        }
        assert_conversation(&messages(&lines), &err);
    }
}

/// A tcpdump-style expression after the options is compiled into the kernel's filter: the
/// capture on the conversation's port decodes it all; one on another port is given nothing
/// by the kernel at all ("0 packets received by filter") and exits 1.
#[test]
fn live_capture_filter_expression() {
    if !can_capture("live_capture_filter_expression") {
        return;
    }
    let (listener, port) = bind("127.0.0.1");
    let (_unused, other) = bind("127.0.0.1");
    let expr = format!("host 127.0.0.1 and port {port}");
    let mut hit = spawn(&["-i", "lo", "--json", "-m", &expr], &[]);
    let other_s = other.to_string();
    let mut miss = spawn(&["-i", "lo", "--json", "-m", "tcp", "port", &other_s], &[]);
    converse(listener);
    let n = script().len();
    hit.interrupt_when(|l| count_messages(l) >= n);
    miss.interrupt_when(|_| true);
    let (code, lines, err) = hit.wait();
    assert_eq!(code, 0, "exit status; stderr:\n{err}");
    assert_conversation(&messages(&lines), &err);
    assert!(
        err.contains(&format!(
            "filter \"tcp and (host 127.0.0.1 and port {port})\""
        )),
        "{err}"
    );
    let (code, lines, err) = miss.wait();
    assert_eq!(code, 1, "nothing decoded; stderr:\n{err}");
    assert!(lines.is_empty(), "{lines:?}");
    assert!(err.contains("0 packets received by filter"), "{err}");
}

/// `-s SNAPLEN` is the length the kernel's filter keeps: longer packets arrive cut, and are
/// reported so.
#[test]
fn live_snaplen_cuts_packets() {
    if !can_capture("live_snaplen_cuts_packets") {
        return;
    }
    let (listener, port) = bind("127.0.0.1");
    let port_s = port.to_string();
    let mut w = spawn(&["-i", "lo", "-s", "200", "--json", "port", &port_s], &[]);
    converse(listener);
    w.interrupt_when(|l| l.iter().any(|x| x.contains("\"role\":\"fin\"")));
    let (_, lines, err) = w.wait();
    assert!(err.contains("snapshot length 200 bytes"), "{err}");
    assert!(
        lines.iter().any(|l| l.contains("truncated_packet")),
        "no truncated_packet notice; stderr:\n{err}\n{}",
        lines.join("\n")
    );
}
