//! Live capture under load, end to end: a tungstenite client and server in two network
//! namespaces joined by a veth pair, wsdump capturing on the client's end through its
//! AF_PACKET ring and queue.
//!
//! - A consumer that does not read wsdump's output while thousands of messages go by: the
//!   queue fills, and every packet wsdump drops is counted in its summary, recorded in place
//!   in the output (`dropped` notices whose counts add up to the summary's), and shows as
//!   gaps; the kernel's count of packets equals what was decoded plus what was dropped.
//!   Nothing it decodes is invented.
//! - A consumer that reads, at a rate the machine sustains: every message arrives.
//!
//! Needs root (CAP_NET_RAW, CAP_NET_ADMIN, `ip netns`). Without it the tests print a loud
//! SKIPPED line and pass — unless CI=true, where a skip is a failure.

use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;
use tungstenite::Message;

mod common;
use common::netns::{in_netns, ip};

const BIN: &str = env!("CARGO_BIN_EXE_wsdump");
/// Messages the client sends, each of [`SIZE`] bytes.
const COUNT: usize = 4000;
const SIZE: usize = 1000;

fn skip_or_fail(msg: String) -> bool {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}; CI=true does not accept skipping");
    }
    eprintln!("\n!!!!!!!! {msg} !!!!!!!!\n");
    false
}

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
    skip_or_fail(format!(
        "{test}: SKIPPED: needs CAP_NET_RAW (run the tests as root)"
    ))
}

/// Two namespaces joined by a veth pair, deleted (with the pair) when dropped.
struct Pair {
    client_ns: String,
    server_ns: String,
    client_dev: String,
}

impl Pair {
    fn new(test: &str, tag: u8) -> Option<Pair> {
        let id = std::process::id() % 100_000;
        let p = Pair {
            client_ns: format!("wsl-a{tag}-{id}"),
            server_ns: format!("wsl-b{tag}-{id}"),
            client_dev: format!("wsla{tag}{id}"),
        };
        let dev_b = format!("wslb{tag}{id}");
        let setup = || -> Result<(), String> {
            ip(&["netns", "add", &p.client_ns])?;
            ip(&["netns", "add", &p.server_ns])?;
            ip(&[
                "link",
                "add",
                &p.client_dev,
                "netns",
                &p.client_ns,
                "type",
                "veth",
                "peer",
                "name",
                &dev_b,
                "netns",
                &p.server_ns,
            ])?;
            let (a, b) = (format!("10.232.{tag}.1/24"), format!("10.232.{tag}.2/24"));
            ip(&["-n", &p.client_ns, "addr", "add", &a, "dev", &p.client_dev])?;
            ip(&["-n", &p.server_ns, "addr", "add", &b, "dev", &dev_b])?;
            for (ns, dev) in [(&p.client_ns, &p.client_dev), (&p.server_ns, &dev_b)] {
                ip(&["-n", ns, "link", "set", dev, "up"])?;
                ip(&["-n", ns, "link", "set", "lo", "up"])?;
            }
            Ok(())
        };
        match setup() {
            Ok(()) => Some(p),
            Err(e) => {
                drop(p);
                skip_or_fail(format!("{test}: SKIPPED: cannot create namespaces: {e}"));
                None
            }
        }
    }

    fn server_ip(&self, tag: u8) -> String {
        format!("10.232.{tag}.2")
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.client_ns]);
        let _ = ip(&["netns", "del", &self.server_ns]);
    }
}

fn payload(i: usize) -> String {
    let head = format!("message {i:05} ");
    let fill: String = (0..SIZE - head.len())
        .map(|k| (b'a' + ((i + k) % 26) as u8) as char)
        .collect();
    head + &fill
}

/// The client sends [`COUNT`] messages (pausing every `burst` of them when `pause` is
/// set), the server reads them all, then the client closes. `halfway` is called after the
/// first half has been sent and read.
fn converse(p: &Pair, tag: u8, pause: Option<(usize, Duration)>, halfway: impl FnOnce()) {
    let addr = format!("{}:0", p.server_ip(tag));
    let listener: TcpListener = in_netns(&p.server_ns, move || TcpListener::bind(addr).unwrap());
    let target = listener.local_addr().unwrap();
    let (half_tx, half_rx) = mpsc::channel();
    let server = thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        let mut ws = tungstenite::accept(s).unwrap();
        let mut n = 0;
        loop {
            if n == COUNT / 2 {
                let _ = half_tx.send(());
            }
            match ws.read() {
                Ok(Message::Text(t)) => {
                    assert_eq!(t.as_str(), payload(n));
                    n += 1;
                }
                Ok(Message::Close(_)) => {
                    while ws.flush().is_ok() {}
                    break;
                }
                Ok(_) => {}
                Err(e) => panic!("server: {e}"),
            }
        }
        n
    });
    let stream = in_netns(&p.client_ns, move || TcpStream::connect(target).unwrap());
    let (mut ws, _) = tungstenite::client(format!("ws://{target}/load"), stream).unwrap();
    let mut halfway = Some(halfway);
    for i in 0..COUNT {
        if i == COUNT / 2 {
            ws.flush().unwrap();
            half_rx.recv().unwrap();
            halfway.take().unwrap()();
        }
        ws.send(Message::text(payload(i))).unwrap();
        if let Some((burst, d)) = pause
            && i % burst == burst - 1
        {
            thread::sleep(d);
        }
    }
    ws.close(None).unwrap();
    while ws.read().is_ok() {}
    assert_eq!(
        server.join().unwrap(),
        COUNT,
        "the server got every message"
    );
}

struct Capture {
    child: Child,
    stdout: Option<ChildStdout>,
    reader: Option<thread::JoinHandle<String>>,
    stderr: Arc<Mutex<String>>,
}

/// Starts wsdump in the client's namespace on its veth (all TCP: the conversation is the
/// only traffic there); returns once it is listening. Nobody reads its output yet.
fn capture(p: &Pair, extra: &[&str]) -> Capture {
    let mut args = vec![
        "netns",
        "exec",
        p.client_ns.as_str(),
        BIN,
        "-i",
        p.client_dev.as_str(),
        "--json",
    ];
    args.extend(extra);
    let mut child = Command::new("ip")
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
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
    if ready_rx.recv_timeout(Duration::from_secs(10)).is_err() {
        let _ = child.kill();
        panic!("wsdump did not start: {}", stderr.lock().unwrap());
    }
    Capture {
        stdout: child.stdout.take(),
        reader: None,
        child,
        stderr,
    }
}

impl Capture {
    /// Starts reading wsdump's output.
    fn read(&mut self) {
        if let Some(mut out) = self.stdout.take() {
            self.reader = Some(thread::spawn(move || {
                let mut s = String::new();
                out.read_to_string(&mut s).unwrap();
                s
            }));
        }
    }

    /// Reads the output (if nobody did yet), asks wsdump to stop, and returns its status,
    /// its output lines and its stderr.
    fn finish(mut self) -> (i32, Vec<Value>, String) {
        self.read();
        let reader = self.reader.take().unwrap();
        // Lets the reader drain what the kernel still holds before the stop.
        thread::sleep(Duration::from_millis(300));
        // SAFETY: kill(2) on our child's pid (ip exec's itself into wsdump).
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let status = self.child.wait().unwrap();
        let text = reader.join().unwrap();
        let lines = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect();
        thread::sleep(Duration::from_millis(50));
        let err = self.stderr.lock().unwrap().clone();
        (status.code().unwrap_or(-1), lines, err)
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The number in the summary line that ends with `what` ("packets dropped by kernel").
fn summary(err: &str, what: &str) -> u64 {
    err.lines()
        .find_map(|l| {
            let (n, rest) = l.split_once(' ')?;
            rest.starts_with(what).then(|| n.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no \"{what}\" in the summary:\n{err}"))
}

/// The client's messages wsdump decoded whole, by their index; each must be one that was
/// sent, byte for byte, in order. Messages a gap cut are flagged `incomplete` and skipped.
fn decoded_indices(lines: &[Value]) -> Vec<usize> {
    let mut got = Vec::new();
    for v in lines
        .iter()
        .filter(|v| v["type"] == "message" && v["dir"] == "c2s")
    {
        if v["opcode"] == "close" || v.get("incomplete").is_some() {
            continue;
        }
        let text = v["text"].as_str().unwrap_or_else(|| panic!("{v}"));
        let i: usize = text[8..13].parse().unwrap_or_else(|_| panic!("{v}"));
        let mut meta = v.clone();
        meta["text"] = Value::from(text.len());
        assert!(
            text == payload(i),
            "a decoded message is one that was sent, whole: {meta}"
        );
        assert!(
            v.get("incomplete").is_none() && v.get("truncated").is_none(),
            "{v}"
        );
        got.push(i);
    }
    assert!(got.windows(2).all(|w| w[0] < w[1]), "in order, once each");
    got
}

#[test]
fn live_slow_consumer_drops_are_counted_and_reported_in_place() {
    let test = "live_slow_consumer_drops_are_counted_and_reported_in_place";
    if !can_capture(test) {
        return;
    }
    let tag = 41;
    let Some(pair) = Pair::new(test, tag) else {
        return;
    };
    // A queue of 1 MiB, and nobody reads wsdump's output while 2 MB of messages go by;
    // then the output is read while the other half goes by, at a pace it keeps up with.
    let mut cap = capture(&pair, &["--capture-queue", "1048576"]);
    converse(&pair, tag, None, || {
        cap.read();
        thread::sleep(Duration::from_millis(500));
    });
    let (code, lines, err) = cap.finish();
    assert_eq!(code, 0, "{err}");

    let dropped = summary(&err, "packets dropped by wsdump");
    assert!(dropped > 0, "the queue must have filled:\n{err}");
    let bytes: u64 = err
        .lines()
        .find_map(|l| {
            l.contains("dropped by wsdump (")
                .then(|| l.split('(').nth(1)?.split(' ').next()?.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no byte count:\n{err}"));
    // The same drops, in place in the output.
    let notices: Vec<&Value> = lines
        .iter()
        .filter(|v| v["type"] == "notice" && v["kind"] == "dropped")
        .collect();
    assert!(notices.iter().all(|v| v["by"] == "wsdump"), "{notices:?}");
    let in_place: u64 = notices.iter().map(|v| v["packets"].as_u64().unwrap()).sum();
    let in_place_bytes: u64 = notices.iter().map(|v| v["bytes"].as_u64().unwrap()).sum();
    assert_eq!((in_place, in_place_bytes), (dropped, bytes), "{err}");
    // Nothing silent: every packet the kernel let through was decoded or counted dropped.
    let captured = summary(&err, "packets captured");
    let received = summary(&err, "packets received by filter");
    let kernel = summary(&err, "packets dropped by kernel");
    assert_eq!(received, captured + kernel + dropped, "{err}");
    // What was lost shows as gaps, and what was decoded is what was sent.
    let gaps = lines.iter().filter(|v| v["type"] == "gap").count();
    let mut kinds = std::collections::BTreeMap::new();
    for v in &lines {
        *kinds
            .entry(format!("{} {}", v["type"], v["kind"]))
            .or_insert(0) += 1;
    }
    let tail: Vec<String> = lines
        .iter()
        .rev()
        .take(8)
        .map(|v| {
            let mut v = v.clone();
            if v.get("text").is_some() {
                v["text"] = Value::from(0);
            }
            v.to_string()
        })
        .collect();
    assert!(gaps > 0, "{err}\n{kinds:?}\n{tail:#?}");
    let got = decoded_indices(&lines);
    assert!(got.len() < COUNT, "{err}");
    assert!(!got.is_empty(), "what fit in the queue was decoded: {err}");
}

#[test]
fn live_every_message_at_a_sustained_rate() {
    let test = "live_every_message_at_a_sustained_rate";
    if !can_capture(test) {
        return;
    }
    let tag = 42;
    let Some(pair) = Pair::new(test, tag) else {
        return;
    };
    let mut cap = capture(&pair, &[]);
    cap.read();
    // About 20 MB/s: far below what one core decodes.
    converse(&pair, tag, Some((20, Duration::from_millis(1))), || {});
    let (code, lines, err) = cap.finish();
    assert_eq!(code, 0, "{err}");
    assert_eq!(summary(&err, "packets dropped by kernel"), 0, "{err}");
    assert_eq!(summary(&err, "packets dropped by wsdump"), 0, "{err}");
    assert_eq!(lines.iter().filter(|v| v["type"] == "gap").count(), 0);
    assert_eq!(
        decoded_indices(&lines),
        (0..COUNT).collect::<Vec<_>>(),
        "{err}"
    );
}

/// `--threads 2` decodes live what one thread does: two captures of the same conversation on
/// the same veth, one on one thread, one on two, print the same lines (but for their
/// timestamps: the kernel stamps a packet for each socket).
#[test]
fn live_two_threads_print_what_one_does() {
    let test = "live_two_threads_print_what_one_does";
    if !can_capture(test) {
        return;
    }
    let tag = 43;
    let Some(pair) = Pair::new(test, tag) else {
        return;
    };
    let mut one = capture(&pair, &["--threads", "1"]);
    let mut two = capture(&pair, &["--threads", "2"]);
    one.read();
    two.read();
    converse(&pair, tag, Some((20, Duration::from_millis(1))), || {});
    let (c1, l1, e1) = one.finish();
    let (c2, l2, e2) = two.finish();
    assert_eq!((c1, c2), (0, 0), "{e1}\n{e2}");
    for e in [&e1, &e2] {
        assert_eq!(summary(e, "packets dropped by kernel"), 0, "{e}");
        assert_eq!(summary(e, "packets dropped by wsdump"), 0, "{e}");
    }
    assert_eq!(decoded_indices(&l1), (0..COUNT).collect::<Vec<_>>(), "{e1}");
    assert_eq!(l1.len(), l2.len(), "{e1}\n{e2}");
    for (a, b) in l1.iter().zip(&l2) {
        let (mut a, mut b) = (a.clone(), b.clone());
        a["ts"] = Value::Null;
        b["ts"] = Value::Null;
        assert_eq!(a.to_string(), b.to_string());
    }
}
