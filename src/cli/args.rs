//! The command line: flags, their parsers, and the answers to other tools' habits.

use clap::{ArgAction, Parser, ValueEnum};
use wsdump::annotate::AppMode;
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
  wsdump -r chat.pcap --har chat.har             also a HAR: Chrome DevTools → Network → Import
  wsdump -r chat.pcap -w annotated.pcapng        packets + wsdump's reading as Wireshark comments
  wsdump -r chat.pcap --json | jq .community_id  the flow ID Zeek, Suricata and Wireshark compute
  wsdump -r mqtt.pcap --app mqtt --stats         read every connection as MQTT; latencies at the end
  sudo wsdump --port 7272 --chat                 who said what to whom, one line per event
  wsdump -r chat.pcap --conn mynick --no-heartbeats   one person's connection, no heartbeats

Exit status: 0 websocket traffic was decoded, 1 none was found (or a display filter --conn,
--opcode, -e, --exclude, --dir matched no message, like grep), 2 an error (unreadable or corrupt
capture, bad arguments or filter, no capture rights). The human view prints local time (TZ
is honoured; -t...-ttttt as tcpdump); --json prints RFC 3339 UTC; --explain and --ladder
keep their own formats. Live capture prints a summary on stderr when it stops (-c, Ctrl-C,
SIGTERM).

tcpdump's -n, -nn, -A and -K are accepted (wsdump never resolves names, prints text payloads
as they are, never verifies checksums); -q is -m, -U is -l, -x/-xx/-XX are -X. tshark's -f is
the capture filter. For tshark's -Y use --conn/--opcode/-e/--dir and a capture-filter
expression; for -T fields use --json | jq; for -z, --stats.";

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
    /// Also write the packets (those the capture filter keeps) to this file ("-": to standard
    /// output, instead of the decoded view): pcap, as tcpdump writes it, or pcapng when the
    /// name ends in .pcapng or with -F pcapng, with wsdump's one-line reading of each message
    /// as a comment on the packet that completed it (Wireshark's frame.comment). A pcap file
    /// holds one link type: live on interfaces of several, use -i or pcapng. pcapng also
    /// carries, in Decryption Secrets Blocks, the TLS secrets of the connections wsdump
    /// decrypted, so Wireshark and tshark open the copy decrypted.
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    pub write: Option<String>,
    /// The format of -w, as tshark's -F: pcap or pcapng (default: by the file's name).
    #[arg(short = 'F', value_name = "FORMAT", value_parser = ["pcap", "pcapng"], requires = "write")]
    pub write_format: Option<String>,
    /// The same as -F pcapng.
    #[arg(long, requires = "write", conflicts_with = "write_format")]
    pub pcapng: bool,
    /// Also write a HAR 1.2 file ("-": to standard output, instead of the decoded view), as
    /// Chrome DevTools saves one: an entry per websocket connection with its messages
    /// (_webSocketMessages), one per plain HTTP exchange. Written as the capture goes, in
    /// bounded memory, and complete however wsdump stops (end of input, -c, Ctrl-C, SIGTERM,
    /// a closed pipe). Display filters do not apply to it. Opens in DevTools (Network →
    /// Import HAR), mitmproxy, HTTP Toolkit.
    #[arg(long, value_name = "FILE")]
    pub har: Option<String>,
    /// Seed of the Community ID flow hash (--json's community_id, the HAR's _communityId),
    /// as Zeek, Suricata and Wireshark take it.
    #[arg(long, value_name = "SEED", default_value_t = 0)]
    pub community_id_seed: u16,
    /// For shipping to shared systems: --json and --har show header values and payloads as
    /// "REDACTED" (names, lengths, opcodes, addresses and times stay).
    #[arg(long)]
    pub redact: bool,
    /// --json: payloads longer than this many bytes are cut (text at a character boundary),
    /// marked "payload_cut": true; len keeps the true length.
    #[arg(long, value_name = "BYTES")]
    pub max_payload: Option<usize>,
    /// Only connections with this port on either side (repeatable, or comma-separated);
    /// ANDed with the capture-filter expression. Joined mid-stream, their bytes are hunted
    /// as websocket; the traffic (a request line, masked frames) says which side is the
    /// client, the port only when it does not.
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
    /// The kernel's capture buffer of live capture, in KiB, like tcpdump's -B: the ring
    /// each socket's packets wait in until wsdump's reader copies them out (default 16384).
    /// When it is full the kernel drops packets ("dropped by kernel").
    #[arg(short = 'B', long = "buffer-size", value_name = "KiB")]
    pub buffer_size: Option<usize>,
    /// The most live capture's queue between the readers and decoding may hold, in bytes.
    /// It is charged to --max-memory as it grows, and takes at most three quarters of what
    /// decoding does not use. When decoding or printing falls behind and it is full, packets are dropped,
    /// counted ("dropped by wsdump") and reported where it happened (a `dropped` notice,
    /// then gaps in the connections affected).
    #[arg(long, value_name = "BYTES", default_value_t = wsdump::capture::live::DEFAULT_QUEUE)]
    pub capture_queue: usize,
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
    /// Also print every TCP segment and every frame header, the upgrade's headers (cookie
    /// and credential values masked; -vv shows them) and payloads in full; with --chat,
    /// heartbeats too.
    #[arg(short = 'v', long = "verbose", action = ArgAction::Count)]
    pub verbose: u8,
    /// Hex and ASCII dump of binary payloads, like tcpdump -X.
    #[arg(short = 'X', action = ArgAction::Count)]
    pub hex_count: u8,
    /// tcpdump's -x / -xx (hex without ASCII): the same as -X.
    #[arg(short = 'x', hide = true, action = ArgAction::Count)]
    pub hex_only: u8,
    /// Set from -X, -XX, -x, -xx.
    #[arg(skip)]
    pub hex: bool,
    /// tshark's capture filter (-f "port 7272"): the same as the trailing expression.
    #[arg(short = 'f', value_name = "FILTER", hide = true)]
    pub tshark_capture_filter: Option<String>,
    /// tcpdump's -K (do not verify checksums): wsdump never verifies them; accepted.
    #[arg(short = 'K', hide = true)]
    pub no_checksums: bool,
    /// Other tools' options wsdump does not take, answered with the wsdump way.
    #[arg(short = 'S', hide = true)]
    pub tcpdump_absolute_seq: bool,
    #[arg(short = 'Z', hide = true, value_name = "USER")]
    pub tcpdump_user: Option<String>,
    #[arg(short = 'z', hide = true, value_name = "STATS")]
    pub tshark_stats: Option<String>,
    #[arg(short = 'O', hide = true, value_name = "PROTOCOLS")]
    pub tshark_detail: Option<String>,
    #[arg(short = 'E', hide = true, value_name = "FIELDOPT")]
    pub tshark_fieldopt: Option<String>,
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
    /// Language of the words wsdump writes in the human views (--explain, --chat, verdicts,
    /// --stats): en or ru.
    #[arg(long, value_name = "LANG", default_value = "en", value_parser = parse_lang)]
    pub lang: Lang,
    /// A sequence diagram per connection: from a file, each printed when its connection
    /// ends; live or from standard input, drawn row by row as packets come.
    #[arg(long, conflicts_with = "json")]
    pub ladder: bool,
    /// The chat as its people see it: one line per chat event (login, message to all,
    /// private message, leave) with who said what and who got it; a message the server
    /// fans out to every member is one line. Heartbeats only with -v.
    #[arg(long, conflicts_with_all = ["json", "ladder", "explain"])]
    pub chat: bool,
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
    /// Decrypt TLS (wss://) with this NSS key log: the file SSLKEYLOGFILE names when
    /// Chromium, Firefox, curl, Node, Python or OpenSSL connect (repeatable). Live, it is
    /// read again as it grows, so wsdump can start before the browser connects. A pcapng
    /// file's Decryption Secrets Blocks are used without it.
    #[arg(long = "keylog", value_name = "FILE", action = ArgAction::Append)]
    pub keylog: Vec<std::path::PathBuf>,
    /// tshark's preference: -o tls.keylog_file:FILE is taken as --keylog FILE.
    #[arg(short = 'o', hide = true, value_name = "PREF", action = ArgAction::Append)]
    pub tshark_pref: Vec<String>,
    /// Hide messages whose text matches this regular expression (as -e reads them), with
    /// their reading: `grep -v` without orphan lines. E.g. --exclude '"type":"p[io]ng"'.
    #[arg(long, value_name = "REGEX")]
    pub exclude: Option<regex::Regex>,
    /// Hide heartbeats in every view: ping and pong frames, and the messages an application
    /// protocol uses as its heartbeat (workerman's {"type":"ping"} and "pong").
    #[arg(long)]
    pub no_heartbeats: bool,
    /// At the end, a per-connection summary (with --json: one "summary" object each), and
    /// the request → response latencies of the application protocols that pair them.
    #[arg(long)]
    pub stats: bool,
    /// Application protocols read in the messages (the "↳" line, --json's "app" object):
    /// auto (the default: by the 101's Sec-WebSocket-Protocol, then the upgrade path, then
    /// the first messages' content), none, or one protocol forced on every connection:
    /// socket.io, graphql-ws (the legacy subscriptions-transport-ws), graphql-transport-ws,
    /// stomp, sockjs, mqtt, json-rpc, workerman-chat, msgpack, cbor. See docs/app-protocols.md.
    #[arg(long, value_name = "auto|none|NAME", default_value = "auto", value_parser = parse_app)]
    pub app: AppMode,
    /// Threads decoding a capture file, each taking a share of the connections (0: one per
    /// CPU, up to 8; 1: decode and print on one thread). Output is the same for any number,
    /// unless the --max-buffer budgets run out: each thread gets its share of them. Live
    /// capture decodes on one thread unless N > 1 is given (its readers need a core too).
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

pub(crate) fn parse_app(s: &str) -> Result<AppMode, String> {
    AppMode::parse(s)
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
    for p in &args.tshark_pref {
        if tshark_keylog(p).is_none() {
            return Some(format!(
                "-o {p} is a tshark preference; the one wsdump takes is -o tls.keylog_file:FILE \
                 (the same as --keylog FILE)"
            ));
        }
    }
    if args.tcpdump_absolute_seq {
        return Some(
            "-S: wsdump prints sequence numbers relative to each side's ISN after the \
             handshake, as tcpdump does by default; --json gives both (seq and rel_seq)"
                .into(),
        );
    }
    if let Some(u) = &args.tcpdump_user {
        return Some(format!(
            "-Z {u}: wsdump drops its privileges by itself once the capture sockets are open; \
             drop -Z"
        ));
    }
    if let Some(z) = &args.tshark_stats {
        return Some(format!(
            "-z {z} is tshark's statistics; wsdump's per-connection summary is --stats (with \
             --json: one summary object per connection)"
        ));
    }
    if let Some(o) = &args.tshark_detail {
        return Some(format!(
            "-O {o} is tshark's detail view; wsdump shows every segment and frame header with \
             -v, and explains each step with --explain"
        ));
    }
    if let Some(e) = &args.tshark_fieldopt {
        return Some(format!(
            "-E {e} is tshark's field formatting; wsdump writes JSON lines: use --json | jq"
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

/// The key log of tshark's `-o tls.keylog_file:FILE` (also Wireshark's older `ssl.` name).
pub(crate) fn tshark_keylog(pref: &str) -> Option<&str> {
    let (name, value) = pref.split_once(':')?;
    matches!(name, "tls.keylog_file" | "ssl.keylog_file").then_some(value)
}
