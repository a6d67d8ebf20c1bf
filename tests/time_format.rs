//! tcpdump-style timestamps in local time, under chosen `TZ` values.
//!
//! `TZ` is process-global (and the C library reads it once, at `tzset`), so each zone is
//! tried in a child process: this test binary runs itself with `TZ` set and
//! `WSDUMP_TIME_CHILD` telling the `child` test what to print. The parent compares with
//! fixed expectations and, when tcpdump is installed, with tcpdump's own `-t`...`-ttttt`
//! output for the same captures under the same `TZ`.

use std::ops::ControlFlow;
use std::path::Path;
use std::process::Command;
use wsdump::capture::Timestamp;
use wsdump::capture::file::CaptureFile;
use wsdump::output::time::{Stamper, TimeFormat, Zone, format};

/// Runs in the child only: prints one `STAMP|...` line per timestamp.
#[test]
fn child() {
    let Ok(what) = std::env::var("WSDUMP_TIME_CHILD") else {
        return;
    };
    if what == "fixed" {
        for (secs, us) in [(1_795_592_651, 318_014), (1_782_907_200, 1)] {
            let mut o = String::new();
            format(
                TimeFormat::DateTime,
                Timestamp::from_micros(secs, us),
                None,
                Zone::Local,
                &mut o,
            );
            println!("STAMP|{o}");
        }
        return;
    }
    let n: usize = std::env::var("WSDUMP_TIME_T").unwrap().parse().unwrap();
    let mut st = Stamper::new(TimeFormat::from_t_count(n), Zone::Local);
    let mut f = CaptureFile::open(std::fs::File::open(&what).unwrap()).unwrap();
    let mut left = 40;
    let _ = f.for_each_packet(|p| {
        let mut o = String::new();
        st.stamp(p.ts, &mut o);
        println!("STAMP|{o}");
        left -= 1;
        if left == 0 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
}

fn in_child(tz: &str, what: &str, t: usize) -> Vec<String> {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["child", "--exact", "--nocapture", "--test-threads=1"])
        .env("TZ", tz)
        .env("WSDUMP_TIME_CHILD", what)
        .env("WSDUMP_TIME_T", t.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once("STAMP|").map(|(_, s)| s.to_string()))
        .collect()
}

#[test]
fn local_time_follows_tz() {
    let zoneinfo = Path::new("/usr/share/zoneinfo/Asia/Shanghai").exists();
    let cases: &[(&str, [&str; 2], bool)] = &[
        (
            "UTC",
            ["2026-11-25 07:44:11.318014", "2026-07-01 12:00:00.000001"],
            false,
        ),
        (
            "UTC0",
            ["2026-11-25 07:44:11.318014", "2026-07-01 12:00:00.000001"],
            false,
        ),
        // POSIX: UTC-8 is eight hours *ahead* of UTC.
        (
            "UTC-8",
            ["2026-11-25 15:44:11.318014", "2026-07-01 20:00:00.000001"],
            false,
        ),
        (
            "<+0530>-5:30",
            ["2026-11-25 13:14:11.318014", "2026-07-01 17:30:00.000001"],
            false,
        ),
        // Daylight saving time from the rule alone (no zone files needed).
        (
            "EST5EDT,M3.2.0,M11.1.0",
            ["2026-11-25 02:44:11.318014", "2026-07-01 08:00:00.000001"],
            false,
        ),
        (
            "Asia/Shanghai",
            ["2026-11-25 15:44:11.318014", "2026-07-01 20:00:00.000001"],
            true,
        ),
        (
            "America/New_York",
            ["2026-11-25 02:44:11.318014", "2026-07-01 08:00:00.000001"],
            true,
        ),
    ];
    for (tz, want, needs_zoneinfo) in cases {
        if *needs_zoneinfo && !zoneinfo {
            eprintln!("time_format: no /usr/share/zoneinfo: TZ={tz} not tried");
            continue;
        }
        assert_eq!(in_child(tz, "fixed", 0), want, "TZ={tz}");
    }
}

#[test]
fn same_stamps_as_tcpdump() {
    if !Command::new("tcpdump")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        let msg = "time_format: SKIPPED: tcpdump is not installed (apt-get install tcpdump)";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{msg}; CI=true does not accept skipping");
        }
        eprintln!("\n*** {msg} ***\n");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    let mut compared = 0;
    for name in ["workerman-chat.pcap", "ipv6.pcap", "nanosecond.pcap"] {
        let file = root.join(name);
        let nano = name.starts_with("nanosecond");
        for tz in ["UTC", "UTC-8", "EST5EDT,M3.2.0,M11.1.0", "Asia/Shanghai"] {
            for t in [0usize, 2, 3, 4, 5] {
                let mut cmd = Command::new("tcpdump");
                cmd.env("TZ", tz).args(["-n", "-c", "40", "-r"]).arg(&file);
                if t > 0 {
                    cmd.arg(format!("-{}", "t".repeat(t)));
                }
                if nano {
                    cmd.arg("--time-stamp-precision=nano");
                }
                let out = cmd.output().unwrap();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .map(str::to_string)
                    .collect();
                let ours = in_child(tz, file.to_str().unwrap(), t);
                assert_eq!(lines.len(), ours.len(), "{name} TZ={tz} -t x{t}");
                for (l, o) in lines.iter().zip(&ours) {
                    assert!(
                        l.starts_with(&format!("{o} ")),
                        "{name} TZ={tz} -t x{t}: tcpdump `{l}`, wsdump `{o}`"
                    );
                    compared += 1;
                }
            }
        }
    }
    eprintln!("time_format: {compared} timestamps equal to tcpdump's");
    assert!(compared > 100);
}
