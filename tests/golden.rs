//! Golden tests: the built binary over every capture in samples/TESTLIST, output compared
//! byte for byte with samples/expected/. `WSDUMP_BLESS=1 cargo test --test golden` rewrites
//! the expected files (then review the diff).

use std::path::Path;
use std::process::Command;

#[test]
fn golden_samples() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let list = std::fs::read_to_string(root.join("samples/TESTLIST")).unwrap();
    let bless = std::env::var_os("WSDUMP_BLESS").is_some();
    let mut failures = Vec::new();
    let mut cases = 0;
    for line in list.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let name = words.next().unwrap();
        let capture = words.next().unwrap();
        // `ENV:NAME=VALUE` words set the environment (the ladder reads the locale).
        let (envs, args): (Vec<&str>, Vec<&str>) = words.partition(|w| w.starts_with("ENV:"));
        cases += 1;
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wsdump"));
        cmd.current_dir(root)
            .arg("-r")
            .arg(Path::new("samples").join(capture))
            .args(["--color", "never"])
            .args(&args)
            .env_remove("NO_COLOR")
            .env_remove("LANG")
            .env_remove("LC_CTYPE")
            .env("LC_ALL", "C.UTF-8")
            // The human view prints local time: the expected files are in UTC.
            .env("TZ", "UTC");
        for e in envs {
            let (k, v) = e.trim_start_matches("ENV:").split_once('=').unwrap();
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let expected_path = root.join("samples/expected").join(format!("{name}.out"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        if bless {
            std::fs::write(&expected_path, &out.stdout).unwrap();
            continue;
        }
        let expected = std::fs::read(&expected_path).unwrap_or_default();
        if out.stdout != expected {
            failures.push(format!(
                "{name}: output differs from {}\n~~~ expected\n{}~~~ got\n{}~~~",
                expected_path.display(),
                String::from_utf8_lossy(&expected),
                String::from_utf8_lossy(&out.stdout)
            ));
        }
        if !stderr.is_empty() {
            failures.push(format!("{name}: unexpected stderr: {stderr}"));
        }
        if out.status.code() == Some(2) {
            failures.push(format!("{name}: exit status 2"));
        }
    }
    assert!(cases >= 10, "TESTLIST lists too few cases");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
