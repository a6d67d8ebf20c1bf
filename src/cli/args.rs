//! The command line: flags, their parsers, and the answers to other tools' habits.

use clap::{ArgAction, Parser, ValueEnum};
use wsdump::capfilter::conn::ConnSelector;
use wsdump::event::{Dir, Opcode};
use wsdump::output::texts::Lang;

pub(crate) const EXAMPLES: &str = "\
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
pub(crate) enum ColorWhen {
    Auto,
    Always,
    Never,
}

/// A websocket-aware protocol analyzer: decodes websocket conversations from captures —
/// TCP handshake, HTTP upgrade, unmasked, reassembled and inflated messages.
#[derive(Parser, Debug)]
#[command(name = "wsdump", version, after_help = EXAMPLES)]
pub(crate) struct Args {
    /// Read packets from a pcap or pcapng file ("-" for standard input). Without -r, capture
    /// live (needs CAP_NET_RAW: root, or setcap).
    #[arg(short = 'r', long = "read", value_name = "FILE")]
    pub read: Option<String>,
    /// Capture live on this interface; without -i, or with "any", on every interface that
    /// is up (each with its own socket).
    #[arg(
        short = 'i',
        long = "interface",
        value_name = "NAME",
        conflicts_with = "read"
    )]
    pub interface: Option<String>,
    /// Also write the captured packets to this pcap file ("-": to standard output, instead of
    /// the decoded view). Live capture only; all captured interfaces must have the same link
    /// type — use -i otherwise.
    #[arg(
        short = 'w',
        long = "write",
        value_name = "FILE",
        conflicts_with = "read"
    )]
    pub write: Option<String>,
    /// Only connections with this port on either side (repeatable, or comma-separated);
    /// ANDed with the capture-filter expression.
    #[arg(short = 'p', long = "port", value_name = "PORT", value_delimiter = ',', action = ArgAction::Append)]
    pub ports: Vec<u16>,
    /// Print websocket messages only, one per line.
    #[arg(short = 'm', long = "messages")]
    pub messages: bool,
    /// Quiet, like tcpdump's "less protocol information": the same as -m.
    #[arg(short = 'q')]
    pub quiet: bool,
    /// Timestamps of the human view as tcpdump prints them: -t none, -tt seconds since the
    /// epoch, -ttt the time since the previous line, -tttt date and time, -ttttt the time
    /// since the first line. Without -t: the local time of day (TZ honoured). --json keeps
    /// RFC 3339 UTC; --explain and --ladder keep their own formats.
    #[arg(short = 't', action = ArgAction::Count)]
    pub time: u8,
    /// Accepted for tcpdump's sake (-n, -nn): wsdump never resolves addresses or ports to
    /// names.
    #[arg(short = 'n', action = ArgAction::Count)]
    pub numeric: u8,
    /// Print text payloads as they are (escaping only control characters): what wsdump does
    /// anyway; accepted for tcpdump's sake. For binary payloads see -X.
    #[arg(short = 'A')]
    pub ascii: bool,
    /// Snapshot length of live capture: at most this many bytes of each packet are kept
    /// (0, the default: 262144, the largest wsdump reads). Packets cut shorter cannot be
    /// fully decoded. Ignored with -r.
    #[arg(short = 's', long = "snapshot-length", value_name = "SNAPLEN")]
    pub snaplen: Option<u32>,
    /// List the interfaces live capture can use (index, name, up or down, link type), like
    /// tcpdump -D, and exit.
    #[arg(short = 'D', long = "list-interfaces")]
    pub list_interfaces: bool,
    /// Packet-buffered output, like tcpdump -U: the same as -l.
    #[arg(short = 'U', long = "packet-buffered")]
    pub packet_buffered: bool,
    /// tshark's display filter: refused with the wsdump way to say it.
    #[arg(short = 'Y', hide = true, value_name = "FILTER")]
    pub tshark_display_filter: Option<String>,
    /// tshark's output format: refused with the wsdump way to say it.
    #[arg(short = 'T', hide = true, value_name = "FORMAT")]
    pub tshark_format: Option<String>,
    /// JSON lines output (see docs/json.md).
    #[arg(long)]
    pub json: bool,
    /// Also print every TCP segment and every frame header.
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
    /// Hex and ASCII dump of binary payloads, like tcpdump -X.
    #[arg(short = 'X')]
    pub hex: bool,
    /// Stop after this many messages.
    #[arg(short = 'c', long = "count", value_name = "N")]
    pub count: Option<u64>,
    /// Flush output after every packet even when writing to a file.
    #[arg(short = 'l', long = "line-buffered")]
    pub line_buffered: bool,
    /// When to use colours (never when NO_COLOR is set or TERM=dumb, unless "always").
    #[arg(long, value_enum, default_value = "auto", value_name = "WHEN")]
    pub color: ColorWhen,
    /// Largest message kept whole, in bytes; longer ones are shown truncated.
    #[arg(long, value_name = "BYTES", default_value_t = 4 << 20)]
    pub max_message: usize,
    /// Largest inflated size of one compressed message (decompression bomb limit).
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 20)]
    pub max_inflate: u64,
    /// Out-of-order bytes buffered per direction before a hole is declared a gap.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
    pub max_ooo: usize,
    /// Memory for everything that grows with the input, across all connections: their
    /// state, out-of-order segments, compression history, HTTP heads, unfinished messages.
    /// When it is full, what is given up is reported (a gap, a truncated message, a
    /// connection's compression history, the least recently active connection).
    #[arg(long, visible_alias = "max-buffer", value_name = "BYTES", default_value_t = wsdump::analyzer::DEFAULT_MEMORY)]
    pub max_memory: usize,
    /// Connections tracked at once (0: as many as --max-memory holds); the least recently
    /// active are dropped beyond it.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub max_conns: usize,
    /// Seconds of capture time a connection may stay silent before it is forgotten, with a
    /// notice (0: never; the memory budget still gives up the least recently active).
    #[arg(long, value_name = "SECS", default_value_t = wsdump::analyzer::DEFAULT_IDLE_TIMEOUT)]
    pub idle_timeout: i64,
    /// Annotated walkthrough for teaching: every step of the TCP handshake, the upgrade and
    /// each frame explained above the tcpdump-style line it belongs to.
    #[arg(long, conflicts_with_all = ["json", "ladder"])]
    pub explain: bool,
    /// Language of --explain: en or ru.
    #[arg(long, value_name = "LANG", default_value = "en", value_parser = parse_lang)]
    pub lang: Lang,
    /// A sequence diagram per connection (printed when the connection ends).
    #[arg(long, conflicts_with = "json")]
    pub ladder: bool,
    /// Show only this direction: c2s (client to server) or s2c.
    #[arg(long, value_name = "DIR", value_parser = parse_dir)]
    pub dir: Option<Dir>,
    /// Show only messages with this opcode (text, binary, ping, pong, close; repeatable).
    #[arg(long, value_name = "OPCODE", value_delimiter = ',', value_parser = parse_opcode, action = ArgAction::Append)]
    pub opcode: Vec<Opcode>,
    /// Show only connections whose client or server matches: a port (7272), an address
    /// (127.0.0.1, ::1, [::1]), address:port (127.0.0.1:7272, [::1]:7272) or a connection
    /// number (#3); any other word is a label (it selects connections so labelled).
    #[arg(long = "conn", value_name = "SEL", value_parser = parse_conn)]
    pub conn: Option<ConnSelector>,
    /// Show only messages whose text matches this regular expression (-c counts what passes).
    /// When the text is JSON, its string values are searched too, escapes decoded
    /// ("J\u00fcrgen" matches Jürgen). (?i) ignores case.
    #[arg(short = 'e', long = "grep", value_name = "REGEX")]
    pub grep: Option<regex::Regex>,
    /// At the end, a per-connection summary (with --json: one "summary" object each).
    #[arg(long)]
    pub stats: bool,
    /// Threads decoding a capture file, each taking a share of the connections (0: one per
    /// CPU, up to 8; 1: decode and print on one thread). Output is the same for any number,
    /// unless the --max-buffer budgets run out: each thread gets its share of them.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub threads: usize,
    /// Print a man page or a shell completion script generated from these flags, and exit.
    #[arg(long, value_name = "WHAT", value_parser = ["man", "bash", "zsh", "fish", "elvish", "powershell"])]
    pub generate: Option<String>,
    /// A capture filter, as tcpdump takes it after the options (a pcap-filter(7) subset:
    /// host, net, port, portrange, src, dst, tcp, ip, ip6, and, or, not, parentheses), e.g.
    /// `host 127.0.0.1 and port 7272`. Live, it runs in the kernel (BPF); on a file, on every
    /// packet before decoding. ANDed with --port.
    #[arg(value_name = "EXPRESSION")]
    pub expression: Vec<String>,
}

pub(crate) fn parse_conn(s: &str) -> Result<ConnSelector, String> {
    ConnSelector::parse(s).map_err(|e| e.msg)
}

pub(crate) fn parse_lang(s: &str) -> Result<Lang, String> {
    Lang::parse(s).ok_or_else(|| format!("unknown language {s:?} (known: en, ru)"))
}

pub(crate) fn parse_dir(s: &str) -> Result<Dir, String> {
    match s {
        "c2s" => Ok(Dir::C2S),
        "s2c" => Ok(Dir::S2C),
        _ => Err("expected c2s or s2c".into()),
    }
}

pub(crate) fn parse_opcode(s: &str) -> Result<Opcode, String> {
    wsdump::output::filter::parse_opcode(s).ok_or_else(|| format!("unknown opcode {s:?}"))
}

/// tshark's options that wsdump does not take, answered with the wsdump way to do it.
pub(crate) fn tshark_habit(args: &Args) -> Option<String> {
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
