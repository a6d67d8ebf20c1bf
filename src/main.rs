//! The `wsdump` binary: flags in, a source and a printer chosen, the analyzer run, a status out.

use clap::{ArgAction, Parser, ValueEnum};
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::ops::ControlFlow;
use std::process::ExitCode;
use wsdump::analyzer::Config;
use wsdump::capfilter::CaptureFilter;
use wsdump::capfilter::conn::ConnSelector;
use wsdump::capture::RawPacket;
use wsdump::capture::file::CaptureFile;
use wsdump::capture::live;
use wsdump::capture::writer::PcapWriter;
use wsdump::engine::{PacketSource, Pipeline, Stage};
use wsdump::event::{Dir, Event, EventKind, Opcode, Sink};
use wsdump::output::Palette;
use wsdump::output::explain::ExplainPrinter;
use wsdump::output::filter::Filter;
use wsdump::output::human::{HumanOptions, HumanPrinter};
use wsdump::output::json::{JsonOptions, JsonPrinter};
use wsdump::output::ladder::{LadderPrinter, locale_is_utf8};
use wsdump::output::summary::Summary;
use wsdump::output::texts::Lang;
use wsdump::output::time::{TimeFormat, Zone};

const EXAMPLES: &str = "\
Examples:
  wsdump -r samples/workerman-chat.pcap          handshake, upgrade and every message, decoded
  wsdump -r chat.pcap --port 7272 -m             messages only, one per line (for grep)
  wsdump -r chat.pcap --json | jq 'select(.type==\"message\")'
  wsdump -r chat.pcap host 127.0.0.1 and port 7272   a capture filter, as tcpdump takes it
  tcpdump -U -i any -w - port 7272 | wsdump -r -     decode what tcpdump captures, as it comes
  sudo wsdump -i lo port 7272                    capture live on lo (the filter runs in the kernel)
  sudo wsdump --port 7272                        capture live on every interface that is up
  sudo wsdump -i lo --port 7272 -m -w s.pcap     live on lo, messages only, packets saved
  wsdump -r chat.pcap --conn '#2' -e '(?i)hello' messages of connection 2 matching a regex

Exit status: 0 websocket traffic was decoded, 1 none was found (or a display filter --conn,
--opcode, -e, --dir matched no message, like grep), 2 an error (unreadable or corrupt
capture, bad arguments or filter, no capture rights). The human view prints local time (TZ
is honoured; -t...-ttttt as tcpdump); --json prints RFC 3339 UTC; --explain and --ladder
keep their own formats. Live capture prints a summary on stderr when it stops (-c, Ctrl-C,
SIGTERM).

tcpdump's -n, -nn and -A are accepted (wsdump never resolves names and prints text payloads
as they are); -q is -m, -U is -l. For tshark's -Y use --conn/--opcode/-e/--dir and a
capture-filter expression; for -T fields use --json | jq.";

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ColorWhen {
    Auto,
    Always,
    Never,
}

/// A websocket-aware protocol analyzer: decodes websocket conversations from captures —
/// TCP handshake, HTTP upgrade, unmasked, reassembled and inflated messages.
#[derive(Parser, Debug)]
#[command(name = "wsdump", version, after_help = EXAMPLES)]
struct Args {
    /// Read packets from a pcap or pcapng file ("-" for standard input). Without -r, capture
    /// live (needs CAP_NET_RAW: root, or setcap).
    #[arg(short = 'r', long = "read", value_name = "FILE")]
    read: Option<String>,
    /// Capture live on this interface; without -i, or with "any", on every interface that
    /// is up (each with its own socket).
    #[arg(
        short = 'i',
        long = "interface",
        value_name = "NAME",
        conflicts_with = "read"
    )]
    interface: Option<String>,
    /// Also write the captured packets to this pcap file ("-": to standard output, instead of
    /// the decoded view). Live capture only; all captured interfaces must have the same link
    /// type — use -i otherwise.
    #[arg(
        short = 'w',
        long = "write",
        value_name = "FILE",
        conflicts_with = "read"
    )]
    write: Option<String>,
    /// Only connections with this port on either side (repeatable, or comma-separated);
    /// ANDed with the capture-filter expression.
    #[arg(short = 'p', long = "port", value_name = "PORT", value_delimiter = ',', action = ArgAction::Append)]
    ports: Vec<u16>,
    /// Print websocket messages only, one per line.
    #[arg(short = 'm', long = "messages")]
    messages: bool,
    /// Quiet, like tcpdump's "less protocol information": the same as -m.
    #[arg(short = 'q')]
    quiet: bool,
    /// Timestamps of the human view as tcpdump prints them: -t none, -tt seconds since the
    /// epoch, -ttt the time since the previous line, -tttt date and time, -ttttt the time
    /// since the first line. Without -t: the local time of day (TZ honoured). --json keeps
    /// RFC 3339 UTC; --explain and --ladder keep their own formats.
    #[arg(short = 't', action = ArgAction::Count)]
    time: u8,
    /// Accepted for tcpdump's sake (-n, -nn): wsdump never resolves addresses or ports to
    /// names.
    #[arg(short = 'n', action = ArgAction::Count)]
    numeric: u8,
    /// Print text payloads as they are (escaping only control characters): what wsdump does
    /// anyway; accepted for tcpdump's sake. For binary payloads see -X.
    #[arg(short = 'A')]
    ascii: bool,
    /// Snapshot length of live capture: at most this many bytes of each packet are kept
    /// (0, the default: 262144, the largest wsdump reads). Packets cut shorter cannot be
    /// fully decoded. Ignored with -r.
    #[arg(short = 's', long = "snapshot-length", value_name = "SNAPLEN")]
    snaplen: Option<u32>,
    /// List the interfaces live capture can use (index, name, up or down, link type), like
    /// tcpdump -D, and exit.
    #[arg(short = 'D', long = "list-interfaces")]
    list_interfaces: bool,
    /// Packet-buffered output, like tcpdump -U: the same as -l.
    #[arg(short = 'U', long = "packet-buffered")]
    packet_buffered: bool,
    /// tshark's display filter: refused with the wsdump way to say it.
    #[arg(short = 'Y', hide = true, value_name = "FILTER")]
    tshark_display_filter: Option<String>,
    /// tshark's output format: refused with the wsdump way to say it.
    #[arg(short = 'T', hide = true, value_name = "FORMAT")]
    tshark_format: Option<String>,
    /// JSON lines output (see docs/json.md).
    #[arg(long)]
    json: bool,
    /// Also print every TCP segment and every frame header.
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,
    /// Hex and ASCII dump of binary payloads, like tcpdump -X.
    #[arg(short = 'X')]
    hex: bool,
    /// Stop after this many messages.
    #[arg(short = 'c', long = "count", value_name = "N")]
    count: Option<u64>,
    /// Flush output after every packet even when writing to a file.
    #[arg(short = 'l', long = "line-buffered")]
    line_buffered: bool,
    /// When to use colours (never when NO_COLOR is set or TERM=dumb, unless "always").
    #[arg(long, value_enum, default_value = "auto", value_name = "WHEN")]
    color: ColorWhen,
    /// Largest message kept whole, in bytes; longer ones are shown truncated.
    #[arg(long, value_name = "BYTES", default_value_t = 4 << 20)]
    max_message: usize,
    /// Largest inflated size of one compressed message (decompression bomb limit).
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 20)]
    max_inflate: u64,
    /// Out-of-order bytes buffered per direction before a hole is declared a gap.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
    max_ooo: usize,
    /// Memory for everything that grows with the input, across all connections: their
    /// state, out-of-order segments, compression history, HTTP heads, unfinished messages.
    /// When it is full, what is given up is reported (a gap, a truncated message, a
    /// connection's compression history, the least recently active connection).
    #[arg(long, visible_alias = "max-buffer", value_name = "BYTES", default_value_t = wsdump::analyzer::DEFAULT_MEMORY)]
    max_memory: usize,
    /// Connections tracked at once (0: as many as --max-memory holds); the least recently
    /// active are dropped beyond it.
    #[arg(long, value_name = "N", default_value_t = 0)]
    max_conns: usize,
    /// Annotated walkthrough for teaching: every step of the TCP handshake, the upgrade and
    /// each frame explained above the tcpdump-style line it belongs to.
    #[arg(long, conflicts_with_all = ["json", "ladder"])]
    explain: bool,
    /// Language of --explain: en or ru.
    #[arg(long, value_name = "LANG", default_value = "en", value_parser = parse_lang)]
    lang: Lang,
    /// A sequence diagram per connection (printed when the connection ends).
    #[arg(long, conflicts_with = "json")]
    ladder: bool,
    /// Show only this direction: c2s (client to server) or s2c.
    #[arg(long, value_name = "DIR", value_parser = parse_dir)]
    dir: Option<Dir>,
    /// Show only messages with this opcode (text, binary, ping, pong, close; repeatable).
    #[arg(long, value_name = "OPCODE", value_delimiter = ',', value_parser = parse_opcode, action = ArgAction::Append)]
    opcode: Vec<Opcode>,
    /// Show only connections whose client or server matches: a port (7272), an address
    /// (127.0.0.1, ::1, [::1]), address:port (127.0.0.1:7272, [::1]:7272) or a connection
    /// number (#3); any other word is a label (it selects connections so labelled).
    #[arg(long = "conn", value_name = "SEL", value_parser = parse_conn)]
    conn: Option<ConnSelector>,
    /// Show only messages whose text matches this regular expression (-c counts what passes).
    /// When the text is JSON, its string values are searched too, escapes decoded
    /// ("J\u00fcrgen" matches Jürgen). (?i) ignores case.
    #[arg(short = 'e', long = "grep", value_name = "REGEX")]
    grep: Option<regex::Regex>,
    /// At the end, a per-connection summary (with --json: one "summary" object each).
    #[arg(long)]
    stats: bool,
    /// Threads decoding a capture file, each taking a share of the connections (0: one per
    /// CPU, up to 8; 1: decode and print on one thread). Output is the same for any number,
    /// unless the --max-buffer budgets run out: each thread gets its share of them.
    #[arg(long, value_name = "N", default_value_t = 0)]
    threads: usize,
    /// Print a man page or a shell completion script generated from these flags, and exit.
    #[arg(long, value_name = "WHAT", value_parser = ["man", "bash", "zsh", "fish", "elvish", "powershell"])]
    generate: Option<String>,
    /// A capture filter, as tcpdump takes it after the options (a pcap-filter(7) subset:
    /// host, net, port, portrange, src, dst, tcp, ip, ip6, and, or, not, parentheses), e.g.
    /// `host 127.0.0.1 and port 7272`. Live, it runs in the kernel (BPF); on a file, on every
    /// packet before decoding. ANDed with --port.
    #[arg(value_name = "EXPRESSION")]
    expression: Vec<String>,
}

fn parse_conn(s: &str) -> Result<ConnSelector, String> {
    ConnSelector::parse(s).map_err(|e| e.msg)
}

fn parse_lang(s: &str) -> Result<Lang, String> {
    Lang::parse(s).ok_or_else(|| format!("unknown language {s:?} (known: en, ru)"))
}

fn parse_dir(s: &str) -> Result<Dir, String> {
    match s {
        "c2s" => Ok(Dir::C2S),
        "s2c" => Ok(Dir::S2C),
        _ => Err("expected c2s or s2c".into()),
    }
}

fn parse_opcode(s: &str) -> Result<Opcode, String> {
    wsdump::output::filter::parse_opcode(s).ok_or_else(|| format!("unknown opcode {s:?}"))
}

enum Printer {
    Human(HumanPrinter<BufWriter<File>>),
    Json(JsonPrinter<BufWriter<File>>),
    Explain(ExplainPrinter<BufWriter<File>>),
    Ladder(LadderPrinter<BufWriter<File>>),
}

/// The printer, behind the display filters, `-c` and `--stats`.
struct Out {
    printer: Printer,
    filter: Filter,
    summary: Option<Summary>,
    /// Standard output carries something else (`-w -`): the summary goes to stderr.
    summary_to_stderr: bool,
    json: bool,
    limit: Option<u64>,
    messages: u64,
    /// Flush after every packet (a pipe or a terminal reads, or -l).
    line_mode: bool,
}

impl Out {
    fn done(&self) -> bool {
        self.limit.is_some_and(|l| self.messages >= l)
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.printer {
            Printer::Human(p) => p.flush(),
            Printer::Json(p) => p.flush(),
            Printer::Explain(p) => p.flush(),
            Printer::Ladder(p) => p.flush(),
        }
    }
}

impl Sink for Out {
    fn event(&mut self, ev: &Event<'_>) -> io::Result<bool> {
        if self.done() || !self.filter.passes(ev) {
            return Ok(!self.done());
        }
        if let Some(s) = &mut self.summary {
            s.observe(ev);
        }
        if let EventKind::Message(_) = ev.kind {
            self.messages += 1;
        }
        match &mut self.printer {
            Printer::Human(p) => p.event(ev)?,
            Printer::Json(p) => p.event(ev)?,
            Printer::Explain(p) => p.event(ev)?,
            Printer::Ladder(p) => p.event(ev)?,
        };
        Ok(!self.done())
    }

    fn stage(&mut self, stage: Stage) -> io::Result<()> {
        if stage == Stage::PacketDone && self.line_mode {
            self.flush()?;
        }
        Ok(())
    }

    /// End of the run: what is still buffered, then the `--stats` summary.
    fn finish(&mut self) -> io::Result<()> {
        match &mut self.printer {
            Printer::Human(p) => p.finish()?,
            Printer::Json(p) => p.finish()?,
            Printer::Explain(p) => p.finish()?,
            Printer::Ladder(p) => p.finish()?,
        }
        if let Some(s) = &self.summary {
            let text = if self.json { s.json() } else { s.human() };
            if self.summary_to_stderr {
                eprint!("{text}");
            } else {
                let mut out = raw_stdout();
                let r = out.write_all(text.as_bytes());
                // The printer owns fd 1 and closes it; this handle must not.
                std::mem::forget(out);
                r?;
            }
        }
        Ok(())
    }
}

/// Standard output without Rust's own line buffering: we decide when to flush.
fn raw_stdout() -> File {
    use std::os::fd::FromRawFd;
    // SAFETY: fd 1 is open for the life of the process and nothing else writes to it.
    unsafe { File::from_raw_fd(1) }
}

/// Pipes and terminals get each packet's lines at once; files get big writes.
fn stdout_wants_lines() -> bool {
    if io::stdout().is_terminal() {
        return true;
    }
    // SAFETY: fstat on fd 1 with a zeroed, properly sized stat buffer.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(1, &mut st) != 0 {
            return true;
        }
        let fmt = st.st_mode & libc::S_IFMT;
        fmt == libc::S_IFIFO || fmt == libc::S_IFSOCK
    }
}

fn palette(when: ColorWhen) -> Palette {
    let env_off = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
        || std::env::var("TERM").is_ok_and(|t| t == "dumb");
    let on = match when {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => io::stdout().is_terminal() && !env_off,
    };
    if on {
        Palette::colored()
    } else {
        Palette::plain()
    }
}

fn is_broken_pipe(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::BrokenPipe
}

fn main() -> ExitCode {
    let mut args = Args::parse();
    // tcpdump's spellings of wsdump's flags.
    args.messages |= args.quiet;
    args.line_buffered |= args.packet_buffered;
    match run(&args) {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wsdump: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &Args) -> io::Result<ExitCode> {
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
        Some(path) => run_file(args, path, filter),
        None => run_live(args, filter),
    }
}

/// tshark's options that wsdump does not take, answered with the wsdump way to do it.
fn tshark_habit(args: &Args) -> Option<String> {
    if let Some(f) = &args.tshark_display_filter {
        return Some(format!(
            "-Y {f:?} is tshark's display filter; wsdump filters with --conn/--opcode/-e/--dir \
             and a capture-filter expression, e.g. wsdump -r chat.pcap port 7272 --dir s2c \
             --opcode text -e hello"
        ));
    }
    if let Some(t) = &args.tshark_format {
        return Some(format!(
            "-T {t} is tshark's output format; wsdump writes JSON lines: use --json | jq, e.g. \
             wsdump -r chat.pcap --json | jq -r 'select(.type==\"message\") | .text'"
        ));
    }
    None
}

/// `-D`: the interfaces, like `tcpdump -D`: `1.lo [Up, Running, Loopback] EN10MB`.
fn list_interfaces() -> io::Result<ExitCode> {
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
            Some(a) => match live::linktype_for(a) {
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
fn display_filtered(args: &Args) -> bool {
    args.conn.is_some() || args.grep.is_some() || !args.opcode.is_empty() || args.dir.is_some()
}

/// 2 on failure; 1 when no websocket was decoded, or the display filters passed no message;
/// 0 otherwise.
fn exit_status(args: &Args, failed: bool, websockets: u64, shown: u64) -> ExitCode {
    if failed {
        ExitCode::from(2)
    } else if websockets == 0 || (display_filtered(args) && shown == 0) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// `--generate`: documentation that cannot drift from the flags, because it is made from them.
fn generate(what: &str) -> io::Result<ExitCode> {
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

/// The printer `--json`, `-m`, `-v`, `-X`, `--color`, `--explain`, `--ladder` ask for,
/// behind the filters, `-c` and `--stats`.
fn make_sink(args: &Args) -> Out {
    make_sink_to(args, raw_stdout())
}

fn make_sink_to(args: &Args, file: File) -> Out {
    let out = BufWriter::with_capacity(64 * 1024, file);
    let printer = if args.explain {
        Printer::Explain(ExplainPrinter::new(out, args.lang, args.hex))
    } else if args.ladder {
        Printer::Ladder(LadderPrinter::new(out, locale_is_utf8()))
    } else if args.json {
        Printer::Json(JsonPrinter::new(out, json_options(args)))
    } else {
        Printer::Human(
            HumanPrinter::new(out, palette(args.color), human_options(args))
                .with_time(time_format(args), Zone::Local),
        )
    };
    Out {
        printer,
        filter: make_filter(args),
        summary: args.stats.then(Summary::default),
        summary_to_stderr: args.write.as_deref() == Some("-"),
        json: args.json,
        limit: args.count,
        messages: 0,
        line_mode: false,
    }
}

fn json_options(args: &Args) -> JsonOptions {
    JsonOptions {
        messages_only: args.messages,
        verbose: args.verbose,
    }
}

fn human_options(args: &Args) -> HumanOptions {
    HumanOptions {
        messages_only: args.messages,
        verbose: args.verbose,
        hex: args.hex,
    }
}

/// `-t`...`-ttttt`.
fn time_format(args: &Args) -> TimeFormat {
    TimeFormat::from_t_count(usize::from(args.time))
}

fn make_filter(args: &Args) -> Filter {
    Filter {
        dir: args.dir,
        opcodes: args.opcode.clone(),
        conn: args.conn.clone(),
        grep: args.grep.clone(),
    }
}

/// What a decoding thread prints with when several share a file: the same printer and
/// filters as [`make_sink`], into memory.
struct Rendering {
    filter: Filter,
    printer: MemPrinter,
}

enum MemPrinter {
    Json(JsonPrinter<io::Sink>),
    Human(HumanPrinter<io::Sink>),
}

impl wsdump::shard::Render for Rendering {
    fn render(&mut self, ev: &Event<'_>, out: &mut String) -> bool {
        if !self.filter.passes(ev) {
            return false;
        }
        match &mut self.printer {
            MemPrinter::Json(p) => p.render(ev, out),
            MemPrinter::Human(p) => p.render(ev, out),
        }
        matches!(ev.kind, EventKind::Message(_))
    }
}

/// Whether the view can be printed by several decoding threads: not those that keep state
/// across connections (`--explain`, `--ladder`, `--stats`, and the times since the previous
/// or the first line, `-ttt` and `-ttttt`).
fn shareable(args: &Args) -> bool {
    let relative = matches!(
        time_format(args),
        TimeFormat::DeltaPrevious | TimeFormat::DeltaFirst
    );
    !(args.explain || args.ladder || args.stats || (relative && !args.json))
}

/// The printer for a decoding thread (a [`shareable`] view).
fn make_render(args: &Args) -> Rendering {
    let printer = if args.json {
        MemPrinter::Json(JsonPrinter::new(io::sink(), json_options(args)))
    } else {
        MemPrinter::Human(
            HumanPrinter::new(io::sink(), palette(args.color), human_options(args))
                .with_time(time_format(args), Zone::Local),
        )
    };
    Rendering {
        filter: make_filter(args),
        printer,
    }
}

fn make_config(args: &Args, filter: &CaptureFilter) -> Config {
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
    cfg.frames = args.verbose || args.explain;
    cfg
}

fn run_file(args: &Args, path: &str, filter: CaptureFilter) -> io::Result<ExitCode> {
    let input: Box<dyn io::Read + Send> = if path == "-" {
        Box::new(io::stdin())
    } else {
        match File::open(path) {
            Ok(f) => Box::new(f),
            Err(e) => {
                eprintln!("wsdump: {path}: {e}");
                return Ok(ExitCode::from(2));
            }
        }
    };
    let cap = match CaptureFile::open(input) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("wsdump: {path}: {e}");
            return Ok(ExitCode::from(2));
        }
    };

    let line_mode = args.line_buffered || stdout_wants_lines();
    let cfg = make_config(args, &filter);
    let threads = match args.threads {
        0 => wsdump::shard::auto_threads(),
        n => n,
    };
    // Standard input and pipes can be read once only; several threads read a file each.
    let regular = path != "-" && std::fs::metadata(path).is_ok_and(|m| m.is_file());
    let shared = threads > 1 && regular && shareable(args);
    let mut sink = (!shared).then(|| make_sink(args));
    let (stats, read, shown) = match &mut sink {
        None => {
            drop(cap);
            let mut progress = Progress::new(path);
            let mut out = BufWriter::with_capacity(256 * 1024, raw_stdout());
            let opts = wsdump::shard::Options {
                threads,
                line_mode,
                limit: args.count,
            };
            let make = || -> Box<dyn wsdump::shard::Render> { Box::new(make_render(args)) };
            let done = wsdump::shard::run_file(
                std::path::Path::new(path),
                &cfg,
                opts,
                &make,
                &mut out,
                Some(Box::new(move |len| progress.packet(len))),
            )?;
            out.flush()?;
            (
                done.stats,
                done.read_error.map_or(Ok(()), Err),
                done.messages,
            )
        }
        Some(sink) => {
            sink.line_mode = line_mode;
            let mut src = WithProgress {
                inner: cap,
                progress: Progress::new(path),
            };
            let run = Pipeline::run(&mut src, cfg, sink)?;
            (
                run.stats,
                run.source_error.map_or(Ok(()), Err),
                sink.messages,
            )
        }
    };
    if let Some(l) = stats.unsupported_link {
        eprintln!("wsdump: {path}: unsupported link type {l}; its packets were not decoded");
    }
    let mut failed = stats.unsupported_link.is_some();
    if let Err(e) = read {
        eprintln!("wsdump: {path}: {e}");
        failed = true;
    }
    Ok(exit_status(
        args,
        failed,
        stats.websocket_connections,
        shown,
    ))
}

/// A source whose reading shows progress (a large file read on a terminal).
struct WithProgress<S> {
    inner: S,
    progress: Option<Progress>,
}

impl<S: PacketSource> PacketSource for WithProgress<S> {
    type Error = S::Error;
    fn for_each(
        &mut self,
        f: &mut dyn FnMut(&RawPacket<'_>) -> ControlFlow<()>,
    ) -> Result<(), S::Error> {
        let progress = &mut self.progress;
        let r = self.inner.for_each(&mut |p| {
            progress.packet(p.data.len());
            f(p)
        });
        // The line is taken away when reading ends.
        self.progress = None;
        r
    }
}

/// Progress of a large file on stderr, only when stderr is a terminal: never in pipes or CI.
struct Progress {
    stride: u64,
    interval_ms: u128,
    total: u64,
    done: u64,
    packets: u64,
    last: std::time::Instant,
    shown: bool,
}

impl Progress {
    fn new(path: &str) -> Option<Progress> {
        if path == "-" || !io::stderr().is_terminal() {
            return None;
        }
        let total = std::fs::metadata(path).ok()?.len();
        // Tests set WSDUMP_PROGRESS_TEST to see progress on a small file.
        let test = std::env::var_os("WSDUMP_PROGRESS_TEST").is_some();
        (total > 64 << 20 || test).then(|| Progress {
            stride: if test { 1 } else { 4096 },
            interval_ms: if test { 0 } else { 250 },
            total,
            done: 0,
            packets: 0,
            last: std::time::Instant::now(),
            shown: false,
        })
    }
}

trait ProgressExt {
    fn packet(&mut self, len: usize);
}

impl ProgressExt for Option<Progress> {
    fn packet(&mut self, len: usize) {
        let Some(p) = self else { return };
        p.done += len as u64 + 16;
        p.packets += 1;
        if p.packets % p.stride == 0 && p.last.elapsed().as_millis() >= p.interval_ms {
            p.last = std::time::Instant::now();
            p.shown = true;
            let pct = (p.done * 100 / p.total.max(1)).min(100);
            eprint!(
                "\rwsdump: {} of {} MB ({pct}%)\x1b[K",
                p.done >> 20,
                p.total >> 20
            );
        }
    }
}

impl Drop for Progress {
    /// The line is taken away when reading ends, on whichever thread read.
    fn drop(&mut self) {
        if self.shown {
            eprint!("\r\x1b[K");
        }
    }
}

/// Live capture: sockets opened (the only step needing privilege), privileges dropped, one
/// reader thread per interface feeding this thread, which runs the analyzer and owns the
/// printer. Output is flushed after every packet. Stops at `-c`, SIGINT or SIGTERM, then
/// prints a tcpdump-like summary on stderr.
fn run_live(args: &Args, filter: CaptureFilter) -> io::Result<ExitCode> {
    // Before any thread exists, so that only the signal thread receives them.
    live::block_stop_signals();
    let explicit = args.interface.as_deref().is_some_and(|n| n != "any");
    // tcpdump's -s: 0 is the default; wsdump reads at most READ_BUFFER bytes of a packet.
    let snaplen = match args.snaplen {
        None | Some(0) => live::SNAPLEN,
        Some(n) if n > live::SNAPLEN => {
            eprintln!(
                "wsdump: -s {n}: wsdump reads at most {} bytes of a packet; using that",
                live::SNAPLEN
            );
            live::SNAPLEN
        }
        Some(n) => n,
    };
    let kernel_filter = filter.clone().and_ports(&args.ports);
    let opened = live::select(args.interface.as_deref()).and_then(|nics| {
        let read_buffer = std::env::var("WSDUMP_READ_BUFFER")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(live::READ_BUFFER);
        live::Capture::open_with(&nics, explicit, &kernel_filter, snaplen, read_buffer)
    });
    let mut cap = match opened {
        Ok(c) => c,
        Err(e) => {
            eprintln!("wsdump: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let ifaces = cap.interfaces().to_vec();
    for i in ifaces.iter().filter(|i| !i.up) {
        eprintln!("wsdump: warning: {} is down; capturing anyway", i.name);
    }
    let mut writer = match &args.write {
        None => None,
        Some(path) => {
            let lt = ifaces[0].linktype;
            if let Some(other) = ifaces.iter().find(|i| i.linktype != lt) {
                eprintln!(
                    "wsdump: -w: {} ({}) and {} ({}) have different link types and a pcap file \
                     holds one; choose the interface with -i",
                    ifaces[0].name,
                    lt.name(),
                    other.name,
                    other.linktype.name()
                );
                return Ok(ExitCode::from(2));
            }
            // `-w -`: the packets go to standard output, as with tcpdump, and the decoded view
            // is not printed (it would be mixed into the pcap stream).
            let f = match if path == "-" {
                Ok(raw_stdout())
            } else {
                File::create(path)
            } {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("wsdump: {path}: {e}");
                    return Ok(ExitCode::from(2));
                }
            };
            Some(PcapWriter::new(BufWriter::new(f), lt, true, snaplen)?)
        }
    };
    live::drop_privileges();

    let mut sink = if args.write.as_deref() == Some("-") {
        make_sink_to(args, File::options().write(true).open("/dev/null")?)
    } else {
        make_sink(args)
    };
    let names: Vec<String> = ifaces
        .iter()
        .map(|i| format!("{} ({})", i.name, i.linktype.name()))
        .collect();
    let mut ports = if args.ports.is_empty() {
        "all TCP ports".to_string()
    } else {
        let p: Vec<String> = args.ports.iter().map(u16::to_string).collect();
        format!("port {}", p.join(","))
    };
    if filter.expr.is_some() {
        ports = format!("filter \"{kernel_filter}\"");
    }
    cap.start();
    eprintln!(
        "wsdump: listening on {}, {ports}, snapshot length {} bytes",
        names.join(", "),
        snaplen
    );

    sink.line_mode = true;
    let mut src = LiveSource {
        cap: &mut cap,
        ifaces: &ifaces,
        writer: writer.as_mut(),
        failed: false,
    };
    let result = Pipeline::run(&mut src, make_config(args, &filter), &mut sink);
    let failed = src.failed;
    let kernel = cap.stop();
    if let Some(w) = &mut writer {
        w.flush()?;
    }
    // A closed stdout (`| head`) ends wsdump quietly.
    let run = result?;
    if let Some(e) = run.source_error {
        return Err(e);
    }
    let s = &run.stats;
    let plural = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    eprintln!(
        "{}",
        plural(s.packets, "packet captured", "packets captured")
    );
    eprintln!(
        "{}",
        plural(
            kernel.received,
            "packet received by filter",
            "packets received by filter"
        )
    );
    eprintln!(
        "{}",
        plural(
            kernel.dropped,
            "packet dropped by kernel",
            "packets dropped by kernel"
        )
    );
    eprintln!(
        "{}, {}, {}, {}",
        plural(s.connections, "connection", "connections"),
        plural(
            s.websocket_connections,
            "websocket connection",
            "websocket connections"
        ),
        plural(s.messages, "message decoded", "messages decoded"),
        plural(s.gaps, "gap", "gaps"),
    );
    Ok(exit_status(
        args,
        failed,
        s.websocket_connections,
        sink.messages,
    ))
}

/// Live capture as a packet source: packets as the readers deliver them, each saved first
/// with `-w`; a stop signal lets the readers drain what the kernel holds, then ends.
struct LiveSource<'a> {
    cap: &'a mut live::Capture,
    ifaces: &'a [live::Interface],
    writer: Option<&'a mut PcapWriter<BufWriter<File>>>,
    /// A reader failed (it said why on stderr).
    failed: bool,
}

impl PacketSource for LiveSource<'_> {
    type Error = io::Error;
    fn for_each(&mut self, f: &mut dyn FnMut(&RawPacket<'_>) -> ControlFlow<()>) -> io::Result<()> {
        while let Some(ev) = self.cap.next_event() {
            match ev {
                live::Event::Packet(p) => {
                    let raw = p.raw(self.ifaces);
                    if let Some(w) = &mut self.writer {
                        w.write(&raw)?;
                        w.flush()?;
                    }
                    if f(&raw).is_break() {
                        break;
                    }
                }
                live::Event::Error { iface, err } => {
                    eprintln!("wsdump: {}: {err}", self.ifaces[iface].name);
                    self.failed = true;
                }
                // Ctrl-C or SIGTERM: decode what the kernel already holds, then stop.
                live::Event::Signal(_) => self.cap.request_stop(),
                live::Event::Ended(_) => {}
            }
        }
        Ok(())
    }
}
