//! Live wss:// with a key log that does not exist when wsdump starts: Python `websockets`
//! over TLS 1.3 (`ssl`, the client's `SSLContext.keylog_filename`) in a network namespace of
//! the test's own, captured on its loopback by the `wsdump` binary with `--keylog`. The
//! client creates the key log and appends its secrets while it connects; wsdump must read
//! them then and decode every message the peers logged (samples/gen/pyws.py, merge.py).
//!
//! Needs root (AF_PACKET, `ip netns`), python3 with websockets and openssl. Without them the
//! test says SKIPPED loudly and passes — unless CI=true, where a skip is a failure.

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_wsdump");
const PORT: u16 = 9020;

fn skip(test: &str, why: &str) -> bool {
    let msg = format!("{test}: SKIPPED: {why}");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}; CI=true does not accept skipping");
    }
    eprintln!("\n!!!!!!!! {msg} !!!!!!!!\n");
    true
}

fn can_capture() -> bool {
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
    }
    fd >= 0
}

fn works(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Deletes the namespace when the test ends, whatever happened.
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

/// A child killed if the test fails before it ends.
struct Kid(Child);

impl Drop for Kid {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn in_ns(ns: &str, program: &str) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns, program]);
    c
}

fn wait_for_file(path: &Path, what: &str) {
    let t = Instant::now();
    while !path.exists() {
        assert!(t.elapsed() < Duration::from_secs(30), "{what} never came");
        thread::sleep(Duration::from_millis(20));
    }
}

fn flows(msgs: &[Value]) -> BTreeMap<String, Vec<Value>> {
    const FIELDS: [&str; 7] = [
        "opcode",
        "len",
        "compressed",
        "text",
        "base64",
        "close_code",
        "close_reason",
    ];
    let mut m: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for v in msgs {
        let p: serde_json::Map<String, Value> = FIELDS
            .iter()
            .filter_map(|f| v.get(*f).map(|x| (f.to_string(), x.clone())))
            .collect();
        m.entry(format!("{} {} {}", v["client"], v["server"], v["dir"]))
            .or_default()
            .push(Value::Object(p));
    }
    m
}

#[test]
fn live_wss_with_a_key_log_that_grows_while_capturing() {
    let test = "live_wss_with_a_key_log_that_grows_while_capturing";
    if !can_capture() {
        skip(test, "needs CAP_NET_RAW (run the tests as root)");
        return;
    }
    if !works("python3", &["-c", "import websockets"]) {
        skip(
            test,
            "needs python3 with websockets (pip install websockets)",
        );
        return;
    }
    if !works("openssl", &["version"]) || !works("ip", &["-V"]) {
        skip(test, "needs openssl and iproute2");
        return;
    }
    let generators = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/gen");
    let dir = std::env::temp_dir().join(format!("wsdump-live-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = |n: &str| -> PathBuf { dir.join(n) };
    let s = |p: &Path| p.to_str().unwrap().to_string();
    assert!(works(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
            &s(&p("key.pem")),
            "-out",
            &s(&p("cert.pem")),
        ]
    ));
    let keys = p("keys");
    let _ = std::fs::remove_file(&keys);

    let ns = format!("wsdump-tls-{}", std::process::id());
    ip(&["netns", "add", &ns]);
    let _ns = Netns(ns.clone());
    ip(&["-n", &ns, "link", "set", "lo", "up"]);

    // wsdump first: the key log does not exist yet.
    let mut cmd = in_ns(&ns, BIN);
    cmd.args(["-i", "lo", "--port", &PORT.to_string(), "--json", "-m"])
        .arg("--keylog")
        .arg(&keys)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut wsdump = Kid(cmd.spawn().expect("wsdump"));
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let stderr = Arc::new(Mutex::new(String::new()));
    let (ready_tx, ready_rx) = mpsc::channel();
    let err = wsdump.0.stderr.take().unwrap();
    let e2 = stderr.clone();
    thread::spawn(move || {
        for l in BufReader::new(err).lines().map_while(Result::ok) {
            if l.contains("listening on") {
                let _ = ready_tx.send(());
            }
            e2.lock().unwrap().push_str(&(l + "\n"));
        }
    });
    let out = wsdump.0.stdout.take().unwrap();
    let l2 = lines.clone();
    let reader = thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            l2.lock().unwrap().push(l);
        }
    });
    assert!(
        ready_rx.recv_timeout(Duration::from_secs(30)).is_ok(),
        "wsdump did not start: {}",
        stderr.lock().unwrap()
    );
    assert!(!keys.exists(), "the key log is written only by the client");

    let pyws = generators.join("pyws.py");
    let mut server = in_ns(&ns, "python3");
    server
        .arg(&pyws)
        .args(["server", "--scenario", "tls-wss", "--host", "127.0.0.1"])
        .args(["--port", &PORT.to_string(), "--tls"])
        .args(["--cert", &s(&p("cert.pem")), "--key", &s(&p("key.pem"))])
        .args(["--log", &s(&p("server.log")), "--ready", &s(&p("ready"))]);
    let mut server = Kid(server.spawn().expect("python server"));
    wait_for_file(&p("ready"), "the server");
    let client = in_ns(&ns, "python3")
        .arg(&pyws)
        .args(["client", "--scenario", "tls-wss", "--host", "127.0.0.1"])
        .args(["--port", &PORT.to_string(), "--tls"])
        .args(["--keylog", &s(&keys), "--log", &s(&p("client.log"))])
        .status()
        .expect("python client");
    assert!(client.success(), "the client's conversation failed");
    assert!(server.0.wait().unwrap().success(), "the server failed");
    assert!(keys.exists(), "the client wrote its key log");

    // What the peers logged, as messages.
    let truth = p("truth.jsonl");
    assert!(works(
        "python3",
        &[
            &s(&generators.join("merge.py")),
            &s(&truth),
            &s(&p("server.log")),
            &s(&p("client.log")),
        ]
    ));
    let want: Vec<Value> = std::fs::read_to_string(&truth)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(want.len() >= 8, "the scenario's messages: {}", want.len());

    // Every message the peers logged, then stop wsdump as a user would (Ctrl-C).
    let t = Instant::now();
    while lines.lock().unwrap().len() < want.len() && t.elapsed() < Duration::from_secs(30) {
        thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill(2) on our child's pid (ip netns exec execs wsdump itself).
    unsafe { libc::kill(wsdump.0.id() as i32, libc::SIGINT) };
    let status = wsdump.0.wait().unwrap();
    reader.join().unwrap();
    let got: Vec<Value> = lines
        .lock()
        .unwrap()
        .iter()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(
        flows(&got),
        flows(&want),
        "stderr: {}",
        stderr.lock().unwrap()
    );
    assert_eq!(status.code(), Some(0), "{}", stderr.lock().unwrap());
    let _ = std::fs::remove_dir_all(&dir);
}
