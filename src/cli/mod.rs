//! The binary's parts: flags (`args`), views (`view`), files (`file`), live capture (`live`),
//! and what they share: the run's dispatch, engine configuration and exit status.

pub(crate) mod args;
pub(crate) mod exports;
pub(crate) mod file;
pub(crate) mod live;
pub(crate) mod view;

use args::*;
use std::io::{self, Write};
use std::process::ExitCode;
use wsdump::analyzer::Config;
use wsdump::capfilter::CaptureFilter;

pub(crate) fn is_broken_pipe(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::BrokenPipe
}

pub(crate) fn run(args: &Args) -> io::Result<ExitCode> {
    if let Some(what) = &args.generate {
        return generate(what);
    }
    if let Some(why) = tshark_habit(args) {
        eprintln!("wsdump: {why}");
        return Ok(ExitCode::from(2));
    }
    if args.list_interfaces {
        return list_interfaces();
    }
    let filter = match CaptureFilter::from_args(&args.expression) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("wsdump: {}", e.render(&args.expression.join(" ")));
            return Ok(ExitCode::from(2));
        }
    };
    match &args.read {
        Some(path) => file::run_file(args, path, filter),
        None => live::run_live(args, filter),
    }
}

/// `-D`: the interfaces, like `tcpdump -D`: `1.lo [Up, Running, Loopback] EN10MB`.
pub(crate) fn list_interfaces() -> io::Result<ExitCode> {
    let mut out = io::stdout().lock();
    for nic in pnet::datalink::interfaces() {
        let mut flags = vec![if nic.is_up() { "Up" } else { "Down" }];
        if nic.is_running() {
            flags.push("Running");
        }
        if nic.is_loopback() {
            flags.push("Loopback");
        }
        // The device type, readable without privileges.
        let arphrd = std::fs::read_to_string(format!("/sys/class/net/{}/type", nic.name))
            .ok()
            .and_then(|t| t.trim().parse::<u16>().ok());
        let link = match arphrd {
            Some(a) => match wsdump::capture::live::linktype_for(a) {
                Some(lt) => lt.name().to_string(),
                None => format!("unsupported (ARPHRD {a})"),
            },
            None => "unknown".to_string(),
        };
        writeln!(
            out,
            "{}.{} [{}] {link}",
            nic.index,
            nic.name,
            flags.join(", ")
        )?;
    }
    writeln!(out, "any [every interface that is up, one socket each]")?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Whether a display filter was given: then finding no message is exit status 1, as grep.
pub(crate) fn display_filtered(args: &Args) -> bool {
    args.conn.is_some()
        || args.grep.is_some()
        || args.exclude.is_some()
        || !args.opcode.is_empty()
        || args.dir.is_some()
}

/// 2 on failure; 1 when no websocket was decoded, or the display filters passed no message;
/// 0 otherwise.
pub(crate) fn exit_status(args: &Args, failed: bool, websockets: u64, shown: u64) -> ExitCode {
    if failed {
        ExitCode::from(2)
    } else if shown == 0 && (websockets == 0 || display_filtered(args)) {
        // A message shown is websocket traffic decoded, whatever the counters say: a run
        // cut short by -c on several threads ends before every thread has counted.
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// `--generate`: documentation that cannot drift from the flags, because it is made from them.
pub(crate) fn generate(what: &str) -> io::Result<ExitCode> {
    use clap::CommandFactory;
    let mut cmd = Args::command();
    let mut out = io::stdout().lock();
    if what == "man" {
        clap_mangen::Man::new(cmd).render(&mut out)?;
    } else {
        let shell: clap_complete::Shell = what.parse().map_err(io::Error::other)?;
        clap_complete::generate(shell, &mut cmd, "wsdump", &mut out);
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn make_config(args: &Args, filter: &CaptureFilter) -> Config {
    let mut cfg = Config {
        ports: args.ports.clone(),
        filter: filter.expr.is_some().then(|| filter.clone()),
        ..Config::default()
    };
    cfg.limits.max_message = args.max_message;
    cfg.limits.max_inflate = args.max_inflate;
    cfg.max_ooo_per_stream = args.max_ooo;
    cfg.max_memory = args.max_memory;
    cfg.max_conns = args.max_conns;
    cfg.idle_timeout_secs = args.idle_timeout.max(0);
    cfg.frames = args.verbose > 0 || args.explain;
    cfg.app = args.app;
    cfg
}

/// The key log of the run: `--keylog` files (and tshark's `-o tls.keylog_file:`), followed as
/// they grow in live capture, read once for a capture file; the capture's Decryption Secrets
/// Blocks join it as they are read. A key log that cannot be read is an error; one that does
/// not exist yet is one only for a file (live, the browser creates it when it connects).
pub(crate) fn key_store(args: &Args, live: bool) -> Result<wsdump::tls::KeyStore, String> {
    let store = wsdump::tls::KeyStore::new();
    let tshark = args.tshark_pref.iter().filter_map(|p| tshark_keylog(p));
    let paths: Vec<std::path::PathBuf> = args
        .keylog
        .iter()
        .cloned()
        .chain(tshark.map(Into::into))
        .collect();
    for path in paths {
        let r = if live {
            store.follow(&path)
        } else {
            store.add_file(&path)
        };
        r.map_err(|e| format!("--keylog {}: {e}", path.display()))?;
    }
    Ok(store)
}
