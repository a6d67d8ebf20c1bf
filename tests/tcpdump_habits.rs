//! The binary as people used to tcpdump and tshark type it: a capture-filter expression
//! after the options, `-t`...`-ttttt` in local time, `--conn` selectors checked, `-e` over
//! JSON text, grep's exit status, and tcpdump's/tshark's other flags.

use std::process::{Command, Output};

const CHAT: &str = "samples/workerman-chat.pcap";

fn wsdump() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wsdump"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("NO_COLOR")
        .env("TZ", "UTC");
    c
}

fn run(args: &[&str]) -> Output {
    wsdump().args(args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

// --- 1. capture-filter expressions -----------------------------------------------------

#[test]
fn expression_after_the_options_filters_a_file() {
    let by_port = run(&["-r", CHAT, "--port", "7272", "-m"]);
    assert_eq!(by_port.status.code(), Some(0));
    for expr in [
        &["port", "7272"][..],
        &["host", "127.0.0.1", "and", "port", "7272"],
        &["tcp port 7272 and (src host 127.0.0.1 or dst host 127.0.0.1)"],
    ] {
        for threads in ["1", "2"] {
            let o = wsdump()
                .args(["-r", CHAT, "-m", "--threads", threads])
                .args(expr)
                .output()
                .unwrap();
            assert_eq!(o.status.code(), Some(0), "{expr:?}: {}", stderr(&o));
            assert_eq!(o.stdout, by_port.stdout, "{expr:?} --threads {threads}");
        }
    }
    // Options may follow the expression.
    let after = run(&["-r", CHAT, "port", "7272", "-m"]);
    assert_eq!(after.stdout, by_port.stdout);
}

#[test]
fn expression_drops_packets_before_decoding() {
    // One connection's client port: only that connection is decoded.
    let one = run(&["-r", CHAT, "-m", "port", "52814"]);
    assert_eq!(one.status.code(), Some(0));
    let text = stdout(&one);
    assert!(!text.is_empty());
    assert!(text.lines().all(|l| l.contains(":52814 ")), "{text}");
    // Nothing passes: nothing decoded, exit 1 (as without websocket traffic).
    for expr in [&["port", "7273"][..], &["not", "port", "7272"], &["ip6"]] {
        let o = wsdump().args(["-r", CHAT]).args(expr).output().unwrap();
        assert_eq!(o.status.code(), Some(1), "{expr:?}");
        assert!(o.stdout.is_empty(), "{expr:?}: {}", stdout(&o));
    }
    // ANDed with --port.
    let both = run(&["-r", CHAT, "-m", "--port", "7272", "port", "52814"]);
    assert_eq!(both.stdout, one.stdout);
    let none = run(&["-r", CHAT, "-m", "--port", "7273", "port", "52814"]);
    assert_eq!(none.status.code(), Some(1));
}

#[test]
fn bad_expression_is_shown_with_a_caret_and_exit_2() {
    let o = run(&["-r", CHAT, "host", "127.0.0.1", "and", "udp", "port", "53"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("capture filter:"), "{e}");
    assert!(e.contains("udp"), "{e}");
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines[1], "  host 127.0.0.1 and udp port 53", "{e}");
    assert_eq!(lines[2], "                     ^", "{e}");
    assert!(o.stdout.is_empty());
    let o = run(&["-r", CHAT, "port"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

// --- 2. time like tcpdump -----------------------------------------------------------------

fn first_message(args: &[&str], tz: &str) -> String {
    let o = wsdump()
        .args(["-r", CHAT, "-m", "--color", "never", "-c", "2"])
        .args(args)
        .env("TZ", tz)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    format!("{}\n{}", lines[0], lines[1])
}

// The login names the connection: its lines carry the name before the address.
const LINE1: &str = r#"mynick@127.0.0.1:48832 → 127.0.0.1:7272 text 51: {"type":"login","client_name":"mynick","room_id":1}"#;
const LINE2: &str = "mynick@127.0.0.1:48832 ← 127.0.0.1:7272 text 151: ";

fn stamps(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| {
            let at = l.find("127.0.0.1:").expect(l);
            let mut pre = &l[..at];
            // A name before the address (`mynick@`) is not part of the time.
            if pre.ends_with('@') {
                pre = &pre[..pre.rfind(' ').map_or(0, |i| i + 1)];
            }
            pre.to_string()
        })
        .collect()
}

#[test]
fn human_view_prints_local_time() {
    let utc = first_message(&[], "UTC");
    assert!(
        utc.starts_with(&format!("07:44:11.341570 {LINE1}")),
        "{utc}"
    );
    let shanghai = first_message(&[], "Asia/Shanghai");
    assert!(
        shanghai.starts_with(&format!("15:44:11.341570 {LINE1}")),
        "{shanghai}"
    );
    let posix = first_message(&["-tttt"], "UTC-8");
    assert_eq!(stamps(&posix)[0], "2026-11-25 15:44:11.341570 ");
    // JSON stays RFC 3339 UTC.
    let json = wsdump()
        .args(["-r", CHAT, "--json", "-m", "-c", "1"])
        .env("TZ", "Asia/Shanghai")
        .output()
        .unwrap();
    assert!(
        stdout(&json).contains(r#""ts":"2026-11-25T07:44:11.341570Z""#),
        "{}",
        stdout(&json)
    );
}

#[test]
fn each_t_option_as_tcpdump() {
    let cases: [(&str, [&str; 2]); 6] = [
        ("", ["07:44:11.341570 ", "07:44:11.349442 "]),
        ("-t", ["", ""]),
        ("-tt", ["1795592651.341570 ", "1795592651.349442 "]),
        ("-ttt", [" 00:00:00.000000 ", " 00:00:00.007872 "]),
        (
            "-tttt",
            ["2026-11-25 07:44:11.341570 ", "2026-11-25 07:44:11.349442 "],
        ),
        ("-ttttt", [" 00:00:00.000000 ", " 00:00:00.007872 "]),
    ];
    for (flag, want) in cases {
        let args: Vec<&str> = [flag].into_iter().filter(|f| !f.is_empty()).collect();
        let got = first_message(&args, "UTC");
        assert_eq!(stamps(&got), want, "{flag}:\n{got}");
        assert!(got.lines().nth(1).unwrap().contains(LINE2));
    }
    // Counted as separate flags too (-t -t -t is -ttt), and -tttt honours TZ.
    assert_eq!(
        first_message(&["-t", "-t", "-t"], "UTC"),
        first_message(&["-ttt"], "UTC")
    );
    let sh = first_message(&["-tttt"], "Asia/Shanghai");
    assert_eq!(stamps(&sh)[0], "2026-11-25 15:44:11.341570 ");
    // -ttt is since the previous line, -ttttt since the first: they part on the third line.
    let third = |flag: &str| {
        let o = run(&["-r", CHAT, "-m", "-c", "3", "--threads", "2", flag]);
        stamps(stdout(&o).lines().nth(2).unwrap())[0].clone()
    };
    assert_eq!(third("-ttt"), " 00:00:01.210375 ");
    assert_eq!(third("-ttttt"), " 00:00:01.218247 ");
}

#[test]
fn help_says_which_views_keep_their_times() {
    let h = stdout(&run(&["--help"]));
    assert!(
        h.contains("--explain and --ladder keep their own formats"),
        "{h}"
    );
    assert!(h.contains("-ttttt"), "{h}");
}

// --- 3. --conn, -e and grep's exit status -----------------------------------------------

#[test]
fn conn_selectors() {
    let port = run(&["-r", CHAT, "-m", "--conn", "52814"]);
    assert_eq!(port.status.code(), Some(0));
    assert!(!port.stdout.is_empty());
    // The second connection of the capture is 52814's.
    let by_id = run(&["-r", CHAT, "-m", "--conn", "#2"]);
    assert_eq!(by_id.stdout, port.stdout);
    let endpoint = run(&["-r", CHAT, "-m", "--conn", "127.0.0.1:52814"]);
    assert_eq!(endpoint.stdout, port.stdout);
    let v6 = run(&["-r", "samples/ipv6.pcap", "-m", "--conn", "[::1]:9003"]);
    assert_eq!(v6.status.code(), Some(0));
    let v6_all = run(&["-r", "samples/ipv6.pcap", "-m"]);
    assert_eq!(v6.stdout, v6_all.stdout);
    let v6_addr = run(&["-r", "samples/ipv6.pcap", "-m", "--conn", "[::1]"]);
    assert_eq!(v6_addr.stdout, v6_all.stdout);
    // A label is a valid selector; connections carry none yet, so it selects nothing.
    let label = run(&["-r", CHAT, "-m", "--conn", "foo"]);
    assert_eq!(label.status.code(), Some(1), "{}", stderr(&label));
    assert!(label.stdout.is_empty());
}

#[test]
fn bad_conn_selectors_are_errors() {
    for bad in [
        "127.0.0.1:99999",
        "99999",
        "0",
        "#0",
        "#x",
        "1.2.3",
        "::1:80:x:y:z",
        "a b",
    ] {
        let o = run(&["-r", CHAT, "--conn", bad]);
        assert_eq!(o.status.code(), Some(2), "--conn {bad}");
        let e = stderr(&o);
        assert!(e.contains("--conn"), "--conn {bad}: {e}");
        assert!(o.stdout.is_empty());
    }
    let e = stderr(&run(&["-r", CHAT, "--conn", "99999"]));
    assert!(e.contains("out of range"), "{e}");
}

#[test]
fn grep_searches_json_strings_unescaped_and_ignores_case() {
    // The chat server sends "привет" back as \u-escapes: its raw text does not contain it.
    let raw = stdout(&run(&["-r", CHAT, "-m", "--dir", "s2c"]));
    assert!(!raw.contains("привет"));
    let o = run(&["-r", CHAT, "-m", "--dir", "s2c", "-e", "привет"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let hits = stdout(&o);
    assert_eq!(hits.lines().count(), 2, "{hits}");
    assert!(
        hits.lines()
            .all(|l| l.contains(r"\u043f\u0440\u0438\u0432\u0435\u0442")),
        "{hits}"
    );
    // The emoji is a surrogate pair in the JSON: decoded too.
    let emoji = run(&["-r", CHAT, "-m", "--dir", "s2c", "-e", "mynick 👋"]);
    assert_eq!(emoji.stdout, o.stdout);
    let upper = run(&["-r", CHAT, "-m", "--dir", "s2c", "-e", "(?i)ПРИВЕТ"]);
    assert_eq!(upper.stdout, o.stdout);
    assert_eq!(
        run(&["-r", CHAT, "-m", "-e", "ПРИВЕТ"]).status.code(),
        Some(1)
    );
    // (?i) on plain text too.
    let nick = run(&["-r", CHAT, "-m", "-e", "mynick"]);
    let nick_i = run(&["-r", CHAT, "-m", "-e", "(?i)MYNICK"]);
    assert!(!nick.stdout.is_empty());
    assert_eq!(nick.stdout, nick_i.stdout);
}

#[test]
fn display_filter_that_matches_nothing_exits_1() {
    for args in [
        &["-e", "no such text anywhere"][..],
        &["--conn", "9999"],
        &["--conn", "#99"],
        &["--opcode", "binary"],
        &["--opcode", "ping", "--dir", "c2s"],
    ] {
        for threads in ["1", "2"] {
            let o = wsdump()
                .args(["-r", CHAT, "-m", "--threads", threads])
                .args(args)
                .output()
                .unwrap();
            assert_eq!(o.status.code(), Some(1), "{args:?}");
            assert!(o.stdout.is_empty(), "{args:?}");
        }
    }
    for args in [
        &["-e", "mynick"][..],
        &["--dir", "s2c"],
        &["--opcode", "close"],
    ] {
        let o = wsdump()
            .args(["-r", CHAT, "-m"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{args:?}");
    }
}

// --- 4. tcpdump's and tshark's other flags --------------------------------------------------

#[test]
fn tcpdump_flags_accepted() {
    let plain = run(&["-r", CHAT]);
    assert_eq!(plain.status.code(), Some(0));
    for flag in ["-n", "-nn", "-A", "-U", "-l", "-s", "-s0"] {
        let args: Vec<&str> = if flag == "-s" {
            vec!["-r", CHAT, "-s", "1500"]
        } else {
            vec!["-r", CHAT, flag]
        };
        let o = run(&args);
        assert_eq!(o.status.code(), Some(0), "{flag}: {}", stderr(&o));
        assert_eq!(o.stdout, plain.stdout, "{flag} changes nothing");
    }
    let m = run(&["-r", CHAT, "-m"]);
    let q = run(&["-r", CHAT, "-q"]);
    assert_eq!(q.stdout, m.stdout, "-q is -m");
    let nn = run(&["-r", CHAT, "-nn", "-A", "-q", "-tt", "port", "7272"]);
    assert_eq!(nn.status.code(), Some(0));
}

#[test]
fn list_interfaces() {
    for flag in ["-D", "--list-interfaces"] {
        let o = run(&[flag]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let text = stdout(&o);
        let lo = text
            .lines()
            .find(|l| l.contains(".lo ["))
            .unwrap_or_else(|| panic!("no lo in\n{text}"));
        assert!(lo.contains("Loopback") && lo.contains("EN10MB"), "{lo}");
        assert!(
            lo.split('.').next().unwrap().parse::<u32>().is_ok(),
            "index first: {lo}"
        );
        assert!(lo.contains("[Up") || lo.contains("[Down"), "{lo}");
        assert!(!stderr(&o).contains("--interface"));
    }
    // A near miss is not pointed at --interface either.
    let e = stderr(&run(&["--list-interface"]));
    assert!(!e.contains("'--interface'"), "{e}");
}

#[test]
fn tshark_flags_say_the_wsdump_way() {
    let y = run(&["-r", CHAT, "-Y", "websocket"]);
    assert_eq!(y.status.code(), Some(2));
    let e = stderr(&y);
    assert!(e.contains("--conn/--opcode/-e/--dir"), "{e}");
    assert!(e.contains("capture-filter expression"), "{e}");
    let t = run(&["-r", CHAT, "-T", "fields", "-e", "websocket.payload"]);
    assert_eq!(t.status.code(), Some(2));
    let e = stderr(&t);
    assert!(e.contains("--json | jq"), "{e}");
    assert!(t.stdout.is_empty());
}
