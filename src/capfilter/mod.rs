//! Capture filters: the tcpdump/pcap-filter(7) expressions people type after the options
//! (`wsdump -i lo port 7272`, `host 127.0.0.1 and (port 80 or 7272)`).
//!
//! wsdump only ever keeps TCP over IPv4/IPv6; an expression restricts that further. The
//! supported primitives are the ones people type most:
//!
//! * `host ADDR`, `src host ADDR`, `dst host ADDR`, `src or dst host ADDR`,
//!   `src and dst host ADDR`, `src ADDR` (IPv4 or IPv6);
//! * `net NET` with `NET` as `10`, `192.168`, `10.1.2`, `10.0.0.0/8`, `10.0.0.0 mask
//!   255.0.0.0` or `fe80::/10` (host bits must be zero, as in tcpdump);
//! * `port N`, `portrange A-B`, with the same direction qualifiers;
//! * `tcp`, `ip`, `ip6`, and the protocol qualifiers `tcp port N`, `ip host A`, `ip6 net N`;
//! * `and`/`&&`, `or`/`||`, `not`/`!`, parentheses.
//!
//! As in pcap-filter(7): `not` binds tightest; `and` and `or` have **equal** precedence and
//! associate left to right (`a or b and c` is `(a or b) and c`: tcpdump compiles it so); a
//! bare value after `and`/`or`/`not` inherits the qualifiers of the primitive before it
//! (`port 80 or 8080` is `port 80 or port 8080`, `src host A or B` is `src host A or src
//! host B`); parentheses restore the qualifiers from before them when they close; a bare
//! value with nothing to inherit from (`127.0.0.1` alone, or after `tcp`) is an error, as
//! in tcpdump.
//!
//! tcpdump accepts a few things wsdump refuses with an error: bare numbers as IPv4
//! addresses (`host 81` is 0.0.0.81 to tcpdump), partial addresses as hosts (`host 10.1`),
//! host and port names beyond `http`/`https`.
//!
//! On a packet cut short inside its IP or TCP header the verdict of a BPF program depends on
//! which test first reads past the end (that rejects the packet); wsdump's program keeps the
//! written order of tests like tcpdump's, except that it reorders runs of port tests so that
//! they share loads, and it does not remove contradictions as tcpdump's optimizer does.
//! Live capture never sees such packets (the snapshot length is far above any header).
//!
//! Port names: only `http` (80) and `https` (443); anything else must be a number (tcpdump
//! reads `/etc/services`, wsdump does not). Host names are not resolved.
//!
//! Not supported, each with an error naming it and its position: other protocols (`udp`,
//! `icmp`, `sctp`, ...), link-layer primitives (`ether`, `vlan`, `arp`, `mpls`, ...),
//! `greater`/`less`/`len`, byte-offset and arithmetic expressions (`tcp[13] & 2 != 0`),
//! `proto`, `gateway`, `broadcast`/`multicast`, `inbound`/`outbound`.
//!
//! [`CaptureFilter::matches`] evaluates an expression on a decoded TCP segment;
//! [`bpf::compile`] turns it into a classic BPF program for the kernel.

pub mod bpf;
pub mod conn;

use crate::packet::Segment;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Which address or port of a packet a primitive looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// `src`: the sender's.
    Src,
    /// `dst`: the receiver's.
    Dst,
    /// No qualifier, or `src or dst`.
    Either,
    /// `src and dst`.
    Both,
}

/// A network: an address with its prefix length; the bits after the prefix are zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Net {
    /// The network address (IPv4 or IPv6), host bits zero.
    pub addr: IpAddr,
    /// Prefix length in bits: 0 to 32 for IPv4, 0 to 128 for IPv6.
    pub prefix: u8,
}

impl Net {
    /// Whether `a` lies in the network. An address of the other family never does.
    pub fn contains(&self, a: IpAddr) -> bool {
        match (self.addr, a) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let m = mask32(self.prefix);
                u32::from(a) & m == u32::from(n)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let m = mask128(self.prefix);
                u128::from(a) & m == u128::from(n)
            }
            _ => false,
        }
    }
}

pub(crate) fn mask32(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    }
}

pub(crate) fn mask128(prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(prefix.min(128)))
    }
}

/// One test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prim {
    /// `tcp`: always true for what wsdump keeps.
    Tcp,
    /// `ip`: IPv4.
    Ip,
    /// `ip6`: IPv6.
    Ip6,
    /// `host ADDR` with its direction qualifier.
    Host {
        /// Which address is compared.
        dir: Dir,
        /// The address it must equal.
        addr: IpAddr,
    },
    /// `net NET` with its direction qualifier.
    Net {
        /// Which address is tested.
        dir: Dir,
        /// The network it must lie in.
        net: Net,
    },
    /// `port N` is `lo == hi == N`; `portrange A-B` is `lo = A, hi = B` (`A <= B`).
    Port {
        /// Which TCP port is tested.
        dir: Dir,
        /// Lowest port that matches.
        lo: u16,
        /// Highest port that matches (inclusive).
        hi: u16,
    },
}

/// A parsed expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    /// One test.
    Prim(Prim),
    /// `not`/`!`.
    Not(Box<Expr>),
    /// Two or more terms (`a and b and c` is one node: no recursion per term).
    And(Vec<Expr>),
    /// Two or more terms.
    Or(Vec<Expr>),
}

/// How deeply expressions may nest (parentheses, `not`, alternating `and`/`or`): every
/// walk over an expression recurses, and a hostile `((((...` must not exhaust the stack.
pub const MAX_DEPTH: usize = 200;

impl Expr {
    /// `port P or port Q ...` for a `--port` list; `None` when the list is empty. Three or
    /// more consecutive ports become one `portrange` (a shorter program).
    pub fn any_port(ports: &[u16]) -> Option<Expr> {
        let mut sorted = ports.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let mut runs: Vec<(u16, u16)> = Vec::new();
        for p in sorted {
            match runs.last_mut() {
                Some((_, hi)) if u32::from(*hi) + 1 == u32::from(p) => *hi = p,
                _ => runs.push((p, p)),
            }
        }
        let port = |lo, hi| {
            Expr::Prim(Prim::Port {
                dir: Dir::Either,
                lo,
                hi,
            })
        };
        let mut v: Vec<Expr> = Vec::new();
        for (lo, hi) in runs {
            if hi - lo >= 2 {
                v.push(port(lo, hi));
            } else {
                v.extend((lo..=hi).map(|p| port(p, p)));
            }
        }
        match v.len() {
            0 => None,
            1 => v.pop(),
            _ => Some(Expr::Or(v)),
        }
    }

    /// Evaluates the expression on a TCP segment from `src` to `dst`.
    pub fn matches(&self, src: SocketAddr, dst: SocketAddr) -> bool {
        match self {
            Expr::Prim(p) => prim_matches(p, src, dst),
            Expr::Not(e) => !e.matches(src, dst),
            Expr::And(v) => v.iter().all(|e| e.matches(src, dst)),
            Expr::Or(v) => v.iter().any(|e| e.matches(src, dst)),
        }
    }
}

fn by_dir<T>(dir: Dir, s: T, d: T, f: impl Fn(T) -> bool) -> bool {
    match dir {
        Dir::Src => f(s),
        Dir::Dst => f(d),
        Dir::Either => f(s) || f(d),
        Dir::Both => f(s) && f(d),
    }
}

fn prim_matches(p: &Prim, src: SocketAddr, dst: SocketAddr) -> bool {
    match *p {
        Prim::Tcp => true,
        Prim::Ip => src.is_ipv4(),
        Prim::Ip6 => src.is_ipv6(),
        Prim::Host { dir, addr } => by_dir(dir, src.ip(), dst.ip(), |a| a == addr),
        Prim::Net { dir, net } => by_dir(dir, src.ip(), dst.ip(), |a| net.contains(a)),
        Prim::Port { dir, lo, hi } => {
            by_dir(dir, src.port(), dst.port(), |p| (lo..=hi).contains(&p))
        }
    }
}

impl fmt::Display for Dir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dir::Src => "src ",
            Dir::Dst => "dst ",
            Dir::Either => "",
            Dir::Both => "src and dst ",
        })
    }
}

impl fmt::Display for Prim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Prim::Tcp => f.write_str("tcp"),
            Prim::Ip => f.write_str("ip"),
            Prim::Ip6 => f.write_str("ip6"),
            Prim::Host { dir, addr } => write!(f, "{dir}host {addr}"),
            Prim::Net { dir, net } => write!(f, "{dir}net {}/{}", net.addr, net.prefix),
            Prim::Port { dir, lo, hi } if lo == hi => write!(f, "{dir}port {lo}"),
            Prim::Port { dir, lo, hi } => write!(f, "{dir}portrange {lo}-{hi}"),
        }
    }
}

/// Fully parenthesized, every qualifier spelled out: shows how an expression was read.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Prim(p) => write!(f, "{p}"),
            Expr::Not(e) => write!(f, "not {e}"),
            Expr::And(v) | Expr::Or(v) => {
                let op = if matches!(self, Expr::And(_)) {
                    " and "
                } else {
                    " or "
                };
                f.write_str("(")?;
                for (i, e) in v.iter().enumerate() {
                    if i > 0 {
                        f.write_str(op)?;
                    }
                    write!(f, "{e}")?;
                }
                f.write_str(")")
            }
        }
    }
}

/// What wsdump captures: TCP over IPv4/IPv6, restricted by an optional expression.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaptureFilter {
    /// `None`: every TCP segment.
    pub expr: Option<Expr>,
}

impl CaptureFilter {
    /// Parses an expression; an empty or all-blank one keeps all TCP.
    pub fn parse(text: &str) -> Result<CaptureFilter, ParseError> {
        Ok(CaptureFilter { expr: parse(text)? })
    }

    /// Parses the words after the options, joined by spaces as tcpdump does
    /// (`wsdump -i lo host 127.0.0.1 and port 80`). Error positions are in the joined text.
    pub fn from_args<S: AsRef<str>>(args: &[S]) -> Result<CaptureFilter, ParseError> {
        let joined: Vec<&str> = args.iter().map(|s| s.as_ref()).collect();
        CaptureFilter::parse(&joined.join(" "))
    }

    /// The filter for a `--port` list alone.
    pub fn ports(ports: &[u16]) -> CaptureFilter {
        CaptureFilter {
            expr: Expr::any_port(ports),
        }
    }

    /// ANDs `port P or port Q ...` (the `--port` values) with the expression.
    pub fn and_ports(self, ports: &[u16]) -> CaptureFilter {
        self.and(Expr::any_port(ports))
    }

    /// ANDs another expression with this one.
    pub fn and(self, other: Option<Expr>) -> CaptureFilter {
        let expr = match (self.expr, other) {
            (Some(a), Some(b)) => Some(Expr::And(vec![a, b])),
            (a, b) => a.or(b),
        };
        CaptureFilter { expr }
    }

    /// Whether a TCP segment from `src` to `dst` passes.
    pub fn matches(&self, src: SocketAddr, dst: SocketAddr) -> bool {
        self.expr.as_ref().is_none_or(|e| e.matches(src, dst))
    }

    /// [`CaptureFilter::matches`] on a decoded segment.
    pub fn matches_segment(&self, seg: &Segment<'_>) -> bool {
        self.matches(seg.src, seg.dst)
    }

    /// The classic BPF program for frames of `linktype` (see [`bpf::compile`]).
    pub fn compile(
        &self,
        linktype: crate::capture::LinkType,
        snaplen: u32,
    ) -> Result<Vec<libc::sock_filter>, bpf::CompileError> {
        bpf::compile(self.expr.as_ref(), linktype, snaplen)
    }
}

impl fmt::Display for CaptureFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.expr {
            None => f.write_str("tcp"),
            Some(e) => write!(f, "tcp and {e}"),
        }
    }
}

/// Why an expression was refused: a message and the byte offset in the expression text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// Byte offset in the expression text of the word the error is about (the text's length
    /// when the expression ended too soon).
    pub pos: usize,
    /// What is wrong, without the `capture filter:` prefix that [`ParseError::render`] and
    /// `Display` add.
    pub msg: String,
}

impl ParseError {
    /// The message with the expression and a caret under the position:
    ///
    /// ```text
    /// capture filter: wsdump captures TCP only; `udp` is not supported
    ///   udp port 53
    ///   ^
    /// ```
    pub fn render(&self, text: &str) -> String {
        let col = text
            .get(..self.pos.min(text.len()))
            .map_or(0, |s| s.chars().count());
        format!(
            "capture filter: {}\n  {}\n  {}^",
            self.msg,
            text,
            " ".repeat(col)
        )
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "capture filter: {} (at offset {})", self.msg, self.pos)
    }
}

impl std::error::Error for ParseError {}

// ---------------------------------------------------------------------------------------
// Lexer

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Word(String),
    LParen,
    RParen,
    Not,
    And,
    Or,
    /// `[`, `]`, `=`, `<`, `>`, `&`, `|`, `+`, ... : the start of an arithmetic expression.
    Punct(String),
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '-' | '_' | '/')
}

fn lex(text: &str) -> Result<Vec<(usize, Tok)>, ParseError> {
    let mut out = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = text[i..].chars().next().unwrap_or(' ');
        let start = i;
        if c.is_whitespace() {
            i += c.len_utf8();
            continue;
        }
        let two = text.get(i..i + 2);
        let tok = if c == '(' {
            i += 1;
            Tok::LParen
        } else if c == ')' {
            i += 1;
            Tok::RParen
        } else if two == Some("&&") {
            i += 2;
            Tok::And
        } else if two == Some("||") {
            i += 2;
            Tok::Or
        } else if two == Some("!=") {
            i += 2;
            Tok::Punct("!=".into())
        } else if c == '!' {
            i += 1;
            Tok::Not
        } else if is_word_char(c) {
            while i < b.len() && is_word_char(b[i] as char) {
                i += 1;
            }
            match &text[start..i] {
                "and" => Tok::And,
                "or" => Tok::Or,
                "not" => Tok::Not,
                w => Tok::Word(w.to_string()),
            }
        } else if c.is_ascii_punctuation() {
            i += 1;
            Tok::Punct(c.to_string())
        } else {
            return Err(ParseError {
                pos: start,
                msg: format!("unexpected character `{c}`"),
            });
        };
        out.push((start, tok));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Parser

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Proto {
    Tcp,
    Ip,
    Ip6,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Host,
    Net,
    Port,
    PortRange,
}

/// The qualifiers a bare value inherits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Qual {
    proto: Option<Proto>,
    dir: Dir,
    kind: Kind,
}

const OTHER_PROTOS: &[&str] = &[
    "udp", "icmp", "icmp6", "sctp", "igmp", "igrp", "pim", "ah", "esp", "vrrp", "carp",
];
const LINK_WORDS: &[&str] = &[
    "ether",
    "arp",
    "rarp",
    "vlan",
    "mpls",
    "pppoed",
    "pppoes",
    "geneve",
    "fddi",
    "tr",
    "wlan",
    "llc",
    "atalk",
    "aarp",
    "decnet",
    "iso",
    "stp",
    "ipx",
    "netbeui",
    "lat",
    "moprc",
    "mopdl",
    "isis",
    "clnp",
    "esis",
    "l1",
    "l2",
    "iih",
    "lsp",
    "snp",
    "csnp",
    "psnp",
    "radio",
    "type",
    "subtype",
    "dir",
    "addr1",
    "addr2",
    "addr3",
    "addr4",
    "ra",
    "ta",
    "atm",
    "lane",
    "oam",
    "oamf4",
    "metac",
    "bcc",
    "sc",
    "ilmic",
    "connectmsg",
    "metaconnect",
];
const LENGTH_WORDS: &[&str] = &["greater", "less", "len"];
const OTHER_WORDS: &[&str] = &[
    "proto",
    "protochain",
    "gateway",
    "broadcast",
    "multicast",
    "inbound",
    "outbound",
    "ifname",
    "on",
    "rnr",
    "rulenum",
    "reason",
    "rset",
    "srnr",
    "subrulenum",
    "action",
];

fn unsupported(word: &str) -> Option<String> {
    let w = word;
    if OTHER_PROTOS.contains(&w) {
        Some(format!("wsdump captures TCP only; `{w}` is not supported"))
    } else if LINK_WORDS.contains(&w) {
        Some(format!(
            "link-layer primitives are not supported (`{w}`); wsdump filters on TCP/IP \
             addresses and ports"
        ))
    } else if LENGTH_WORDS.contains(&w) {
        Some(format!("packet-length tests (`{w}`) are not supported"))
    } else if w == "proto" || w == "protochain" {
        Some(format!(
            "`{w}` is not supported; wsdump keeps TCP only (write `tcp`, `ip` or `ip6`)"
        ))
    } else if OTHER_WORDS.contains(&w) {
        Some(format!("`{w}` is not supported"))
    } else {
        None
    }
}

fn keyword(w: &str) -> bool {
    matches!(
        w,
        "host" | "net" | "port" | "portrange" | "src" | "dst" | "tcp" | "ip" | "ip6" | "mask"
    ) || unsupported(w).is_some()
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    at: usize,
    end: usize,
    qual: Option<Qual>,
}

fn err<T>(pos: usize, msg: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError {
        pos,
        msg: msg.into(),
    })
}

/// Parses an expression; `Ok(None)` for an empty one.
pub fn parse(text: &str) -> Result<Option<Expr>, ParseError> {
    let toks = lex(text)?;
    if toks.is_empty() {
        return Ok(None);
    }
    let mut p = Parser {
        toks,
        at: 0,
        end: text.len(),
        // tcpdump refuses a bare value with nothing before it to inherit from.
        qual: None,
    };
    let (e, _) = p.expr(0)?;
    if let Some((pos, t)) = p.toks.get(p.at) {
        return match t {
            Tok::RParen => err(*pos, "`)` without a matching `(`"),
            Tok::Punct(s) => err(
                *pos,
                format!("`{s}`: byte-offset and arithmetic expressions are not supported"),
            ),
            _ => err(*pos, "expected `and` or `or` here"),
        };
    }
    Ok(Some(e))
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at).map(|t| &t.1)
    }
    fn peek_at(&self, n: usize) -> Option<&Tok> {
        self.toks.get(self.at + n).map(|t| &t.1)
    }
    fn pos(&self) -> usize {
        self.toks.get(self.at).map_or(self.end, |t| t.0)
    }
    fn word(&self) -> Option<&str> {
        match self.peek() {
            Some(Tok::Word(w)) => Some(w),
            _ => None,
        }
    }

    /// expr := unary ((and | or) unary)*, left-associative, `and` and `or` of equal rank.
    /// Returns the expression and its depth.
    fn expr(&mut self, depth: usize) -> Result<(Expr, usize), ParseError> {
        let (first, mut d) = self.unary(depth)?;
        let mut terms = vec![first];
        let mut op: Option<bool> = None;
        loop {
            let is_and = match self.peek() {
                Some(Tok::And) => true,
                Some(Tok::Or) => false,
                _ => break,
            };
            let pos = self.pos();
            self.at += 1;
            if op.is_some_and(|o| o != is_and) {
                // `a or b and c`: `(a or b)` becomes the first term of the `and`.
                let prev = std::mem::take(&mut terms);
                terms.push(if op == Some(true) {
                    Expr::And(prev)
                } else {
                    Expr::Or(prev)
                });
                d += 1;
                if depth + d > MAX_DEPTH {
                    return err(pos, format!("expression nested more than {MAX_DEPTH} deep"));
                }
            }
            op = Some(is_and);
            let (r, rd) = self.unary(depth)?;
            d = d.max(rd);
            terms.push(r);
        }
        Ok(match op {
            None => (terms.pop().expect("one term"), d),
            Some(true) => (Expr::And(terms), d + 1),
            Some(false) => (Expr::Or(terms), d + 1),
        })
    }

    fn unary(&mut self, depth: usize) -> Result<(Expr, usize), ParseError> {
        let pos = self.pos();
        if depth > MAX_DEPTH {
            return err(pos, format!("expression nested more than {MAX_DEPTH} deep"));
        }
        match self.peek().cloned() {
            None => err(pos, "expression ends where a primitive was expected"),
            Some(Tok::Not) => {
                self.at += 1;
                let (e, d) = self.unary(depth + 1)?;
                Ok((Expr::Not(Box::new(e)), d + 1))
            }
            Some(Tok::LParen) => {
                self.at += 1;
                let saved = self.qual;
                let (e, d) = self.expr(depth + 1)?;
                match self.peek() {
                    Some(Tok::RParen) => self.at += 1,
                    _ => return err(self.pos(), "missing `)`"),
                }
                self.qual = saved;
                Ok((e, d))
            }
            Some(Tok::RParen) => err(pos, "`)` where a primitive was expected"),
            Some(Tok::And) | Some(Tok::Or) => err(pos, "`and`/`or` where a primitive was expected"),
            Some(Tok::Punct(p)) => err(
                pos,
                format!("`{p}`: byte-offset and arithmetic expressions are not supported"),
            ),
            Some(Tok::Word(_)) => Ok((self.primitive()?, 1)),
        }
    }

    fn primitive(&mut self) -> Result<Expr, ParseError> {
        let start = self.pos();
        let mut proto = None;
        let mut dir = None;
        let mut kind = None;
        // Protocol qualifier or a protocol alone.
        if let Some(w) = self.word() {
            let p = match w {
                "tcp" => Some(Proto::Tcp),
                "ip" => Some(Proto::Ip),
                "ip6" => Some(Proto::Ip6),
                _ => None,
            };
            if let Some(p) = p {
                if matches!(self.peek_at(1), Some(Tok::Punct(s)) if s == "[") {
                    return err(
                        self.toks[self.at + 1].0,
                        format!("byte-offset expressions (`{w}[...]`) are not supported"),
                    );
                }
                self.at += 1;
                proto = Some(p);
                let more = matches!(self.word(), Some(w) if !matches!(w, "tcp" | "ip" | "ip6"));
                if !more {
                    // `tcp`, `ip`, `ip6` alone: nothing to inherit afterwards.
                    self.qual = None;
                    return Ok(Expr::Prim(match p {
                        Proto::Tcp => Prim::Tcp,
                        Proto::Ip => Prim::Ip,
                        Proto::Ip6 => Prim::Ip6,
                    }));
                }
            }
        }
        if let Some(w) = self.word()
            && let Some(msg) = unsupported(w)
        {
            return err(self.pos(), msg);
        }
        // Direction.
        match self.word() {
            Some("src") | Some("dst") => {
                let first = self.word() == Some("src");
                self.at += 1;
                let combined = match (self.peek(), self.peek_at(1)) {
                    (Some(Tok::Or), Some(Tok::Word(w))) if w == "dst" || w == "src" => {
                        Some(Dir::Either)
                    }
                    (Some(Tok::And), Some(Tok::Word(w))) if w == "dst" || w == "src" => {
                        Some(Dir::Both)
                    }
                    _ => None,
                };
                dir = Some(match combined {
                    Some(d) => {
                        self.at += 2;
                        d
                    }
                    None if first => Dir::Src,
                    None => Dir::Dst,
                });
            }
            _ => {}
        }
        // Kind.
        match self.word() {
            Some("host") => kind = Some(Kind::Host),
            Some("net") => kind = Some(Kind::Net),
            Some("port") => kind = Some(Kind::Port),
            Some("portrange") => kind = Some(Kind::PortRange),
            _ => {}
        }
        if kind.is_some() {
            self.at += 1;
        }
        if let Some(w) = self.word()
            && let Some(msg) = unsupported(w)
        {
            return err(self.pos(), msg);
        }
        let qual = if proto.is_none() && dir.is_none() && kind.is_none() {
            match self.qual {
                Some(q) => q,
                None => {
                    let w = self.word().unwrap_or("");
                    let kw = if w.bytes().all(|b| b.is_ascii_digit()) {
                        "port"
                    } else if w.contains('/') {
                        "net"
                    } else {
                        "host"
                    };
                    return err(
                        start,
                        format!(
                            "`{w}` needs a qualifier (as in tcpdump, a bare value only \
                             repeats the qualifiers of a primitive before it, like `80` in \
                             `port 443 or 80`): write `{kw} {w}`"
                        ),
                    );
                }
            }
        } else {
            Qual {
                proto,
                dir: dir.unwrap_or(Dir::Either),
                kind: kind.unwrap_or(Kind::Host),
            }
        };
        let vpos = self.pos();
        let Some(value) = self.word().map(str::to_string) else {
            return err(vpos, "a value (address, network or port) is expected here");
        };
        if keyword(&value) {
            return err(vpos, format!("`{value}` where a value was expected"));
        }
        self.at += 1;
        let prim = self.value(qual, &value, vpos)?;
        self.qual = Some(qual);
        Ok(Expr::Prim(prim))
    }

    fn value(&mut self, q: Qual, v: &str, pos: usize) -> Result<Prim, ParseError> {
        let dir = q.dir;
        match (q.proto, q.kind) {
            (Some(Proto::Tcp), Kind::Host | Kind::Net) => {
                return err(
                    pos,
                    "`tcp` cannot qualify a host or net (as in tcpdump); write `tcp and host ...`",
                );
            }
            (Some(p @ (Proto::Ip | Proto::Ip6)), Kind::Port | Kind::PortRange) => {
                let n = if p == Proto::Ip { "ip" } else { "ip6" };
                return err(
                    pos,
                    format!(
                        "`{n}` cannot qualify a port (as in tcpdump); write `{n} and port ...`"
                    ),
                );
            }
            _ => {}
        }
        let family_ok = |a: &IpAddr| match q.proto {
            Some(Proto::Ip) => a.is_ipv4(),
            Some(Proto::Ip6) => a.is_ipv6(),
            _ => true,
        };
        let family_err = |a: &IpAddr| {
            format!(
                "`{a}` is an {} address, but the qualifier is `{}`",
                if a.is_ipv4() { "IPv4" } else { "IPv6" },
                if q.proto == Some(Proto::Ip) {
                    "ip"
                } else {
                    "ip6"
                }
            )
        };
        match q.kind {
            Kind::Host => {
                let addr = host_addr(v).map_err(|m| ParseError { pos, msg: m })?;
                if !family_ok(&addr) {
                    return err(pos, family_err(&addr));
                }
                Ok(Prim::Host { dir, addr })
            }
            Kind::Net => {
                let net = self.net(v, pos)?;
                if !family_ok(&net.addr) {
                    return err(pos, family_err(&net.addr));
                }
                Ok(Prim::Net { dir, net })
            }
            Kind::Port => {
                let p = port_value(v).map_err(|m| ParseError { pos, msg: m })?;
                Ok(Prim::Port { dir, lo: p, hi: p })
            }
            Kind::PortRange => {
                let Some((a, b)) = v.split_once('-') else {
                    return err(
                        pos,
                        format!("`{v}`: a port range is `LOW-HIGH`, e.g. `7000-7999`"),
                    );
                };
                let a = port_value(a).map_err(|m| ParseError { pos, msg: m })?;
                let b = port_value(b).map_err(|m| ParseError { pos, msg: m })?;
                Ok(Prim::Port {
                    dir,
                    lo: a.min(b),
                    hi: a.max(b),
                })
            }
        }
    }

    /// `10`, `10.1`, `10.1.2`, `10.1.2.3`, with `/len` or a following `mask M`; IPv6 with
    /// an optional `/len`.
    fn net(&mut self, v: &str, pos: usize) -> Result<Net, ParseError> {
        let e = |m: String| ParseError { pos, msg: m };
        let (a, len) = match v.split_once('/') {
            Some((a, l)) => {
                let l: u8 = l
                    .parse()
                    .map_err(|_| e(format!("`{l}` is not a prefix length")))?;
                (a, Some(l))
            }
            None => (v, None),
        };
        let (addr, natural) = if a.contains(':') {
            let a6: Ipv6Addr = a
                .parse()
                .map_err(|_| e(format!("`{a}` is not an IPv6 address")))?;
            (IpAddr::V6(a6), 128u8)
        } else {
            let parts: Vec<&str> = a.split('.').collect();
            if parts.len() > 4 || parts.iter().any(|p| p.is_empty()) {
                return Err(e(format!("`{a}` is not an IPv4 network")));
            }
            let mut o = [0u8; 4];
            for (i, p) in parts.iter().enumerate() {
                o[i] = dec_u8(p).ok_or_else(|| {
                    if p.chars().all(|c| c.is_ascii_alphabetic() || c == '-') {
                        e(format!(
                            "`{a}`: host and network names are not resolved; give a number"
                        ))
                    } else {
                        e(format!("`{a}` is not an IPv4 network"))
                    }
                })?;
            }
            (IpAddr::V4(Ipv4Addr::from(o)), 8 * parts.len() as u8)
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let mut prefix = len.unwrap_or(natural);
        if len.is_none() && self.word() == Some("mask") {
            let mpos = self.pos();
            self.at += 1;
            let Some(m) = self.word().map(str::to_string) else {
                return err(self.pos(), "a netmask is expected after `mask`");
            };
            let IpAddr::V4(_) = addr else {
                return err(
                    mpos,
                    "`mask` is for IPv4 networks; write `net ADDR/LEN` for IPv6",
                );
            };
            let m4: Ipv4Addr = m.parse().map_err(|_| ParseError {
                pos: self.pos(),
                msg: format!("`{m}` is not a netmask"),
            })?;
            let mv = u32::from(m4);
            if mv.leading_ones() + mv.trailing_zeros() != 32 {
                return err(self.pos(), format!("`{m}` is not a contiguous netmask"));
            }
            self.at += 1;
            prefix = mv.leading_ones() as u8;
        }
        if prefix > max {
            return Err(e(format!("prefix length {prefix} is longer than {max}")));
        }
        let clean = match addr {
            IpAddr::V4(a4) => u32::from(a4) & !mask32(prefix) == 0,
            IpAddr::V6(a6) => u128::from(a6) & !mask128(prefix) == 0,
        };
        if !clean {
            return Err(e(format!(
                "non-network bits set in `{v}` (as tcpdump says); did you mean `host`?"
            )));
        }
        Ok(Net { addr, prefix })
    }
}

/// Decimal 0..=255, no sign, no leading `+`.
fn dec_u8(s: &str) -> Option<u8> {
    if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn host_addr(v: &str) -> Result<IpAddr, String> {
    if v.contains('/') {
        return Err(format!(
            "`{v}`: a host has no prefix length; write `net {v}`"
        ));
    }
    if let Ok(a) = v.parse::<Ipv6Addr>() {
        return Ok(IpAddr::V6(a));
    }
    let parts: Vec<&str> = v.split('.').collect();
    if parts.len() == 4 && parts.iter().all(|p| dec_u8(p).is_some()) {
        let o: Vec<u8> = parts.iter().filter_map(|p| dec_u8(p)).collect();
        return Ok(IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], o[3])));
    }
    if v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "`{v}` is not an IP address (did you mean `port {v}`?)"
        ));
    }
    if v.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(format!(
            "`{v}` is not a full IPv4 address (for a network write `net {v}`)"
        ));
    }
    Err(format!(
        "`{v}` is not an IP address (host names are not resolved)"
    ))
}

/// A port number or one of the two names wsdump knows.
fn port_value(v: &str) -> Result<u16, String> {
    match v {
        "http" => return Ok(80),
        "https" => return Ok(443),
        _ => {}
    }
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return v
            .parse::<u16>()
            .map_err(|_| format!("port `{v}` is out of range (0-65535)"));
    }
    Err(format!(
        "`{v}` is not a port number (the only port names wsdump knows are `http` and `https`)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> String {
        match parse(s) {
            Ok(Some(e)) => e.to_string(),
            Ok(None) => "<all>".into(),
            Err(e) => format!("error at {}: {}", e.pos, e.msg),
        }
    }

    #[test]
    fn primitives() {
        assert_eq!(p("port 7272"), "port 7272");
        assert_eq!(p("host 127.0.0.1"), "host 127.0.0.1");
        assert!(p("127.0.0.1").contains("write `host 127.0.0.1`"));
        assert!(p("(127.0.0.1)").contains("needs a qualifier"));
        assert_eq!(p("src host ::1"), "src host ::1");
        assert_eq!(p("dst 10.0.0.1"), "dst host 10.0.0.1");
        assert_eq!(p("src or dst port 80"), "port 80");
        assert_eq!(p("src and dst port 80"), "src and dst port 80");
        assert_eq!(p("tcp dst port https"), "dst port 443");
        assert_eq!(p("portrange 8000-7000"), "portrange 7000-8000");
        assert_eq!(p("net 10"), "net 10.0.0.0/8");
        assert_eq!(p("net 192.168.1"), "net 192.168.1.0/24");
        assert_eq!(p("net 10.0.0.0 mask 255.255.0.0"), "net 10.0.0.0/16");
        assert_eq!(p("ip6 net fe80::/10"), "net fe80::/10");
        assert_eq!(p("ip host 1.2.3.4"), "host 1.2.3.4");
        assert_eq!(p("tcp"), "tcp");
        assert_eq!(p("ip6 && !ip"), "(ip6 and not ip)");
        assert_eq!(p("   "), "<all>");
    }

    #[test]
    fn and_or_equal_precedence_left_to_right_like_pcap_filter() {
        // pcap-filter(7): "Alternation and concatenation have equal precedence and associate
        // left to right"; tcpdump -d compiles `A or B and C` as `(A or B) and C`.
        assert_eq!(
            p("host 1.1.1.1 or host 2.2.2.2 and port 80"),
            "((host 1.1.1.1 or host 2.2.2.2) and port 80)"
        );
        assert_eq!(
            p("port 1 and port 2 or port 3"),
            "((port 1 and port 2) or port 3)"
        );
        // `not` binds tightest.
        assert_eq!(p("not port 1 and port 2"), "(not port 1 and port 2)");
        assert_eq!(p("not (port 1 and port 2)"), "not (port 1 and port 2)");
        assert_eq!(p("! ! tcp"), "not not tcp");
        assert_eq!(
            p("host 1.2.3.4 and (port 80 or port 7272)"),
            "(host 1.2.3.4 and (port 80 or port 7272))"
        );
    }

    #[test]
    fn qualifier_inheritance() {
        assert_eq!(p("port 80 or 8080"), "(port 80 or port 8080)");
        assert_eq!(
            p("tcp dst port 80 or 443 or 8080"),
            "(dst port 80 or dst port 443 or dst port 8080)"
        );
        assert_eq!(
            p("src host 1.1.1.1 or 2.2.2.2"),
            "(src host 1.1.1.1 or src host 2.2.2.2)"
        );
        assert_eq!(p("port 80 and not 81"), "(port 80 and not port 81)");
        assert_eq!(p("not port 80 or 81"), "(not port 80 or port 81)");
        // Inside parentheses the outer qualifiers carry on ...
        assert_eq!(
            p("port 80 or (81 or 82)"),
            "(port 80 or (port 81 or port 82))"
        );
        // ... and after them, those from before the parenthesis apply again.
        assert_eq!(
            p("port 80 and (host 1.1.1.1 or 2.2.2.2) or 81"),
            "((port 80 and (host 1.1.1.1 or host 2.2.2.2)) or port 81)"
        );
        assert!(
            p("tcp or 80").starts_with("error at 7:"),
            "{}",
            p("tcp or 80")
        );
        assert!(p("80").contains("write `port 80`"), "{}", p("80"));
        // After a parenthesis closes, what was before it applies again (nothing here).
        assert!(p("(host 1.1.1.1) and (2.2.2.2)").contains("needs a qualifier"));
        assert_eq!(
            p("host 1.1.1.1 and (2.2.2.2)"),
            "(host 1.1.1.1 and host 2.2.2.2)"
        );
    }

    #[test]
    fn errors_say_what_and_where() {
        let e = parse("port 80 or udp port 53").unwrap_err();
        assert_eq!(e.pos, 11);
        assert_eq!(e.msg, "wsdump captures TCP only; `udp` is not supported");
        assert_eq!(
            e.render("port 80 or udp port 53"),
            "capture filter: wsdump captures TCP only; `udp` is not supported\n  \
             port 80 or udp port 53\n             ^"
        );
        for (s, pos, has) in [
            ("icmp", 0, "TCP only"),
            ("ether host 00:11:22:33:44:55", 0, "link-layer"),
            ("vlan and port 80", 0, "link-layer"),
            ("greater 100", 0, "packet-length"),
            ("tcp[13] & 2 != 0", 3, "byte-offset"),
            ("port 80 and len > 10", 12, "packet-length"),
            ("ip proto 6", 3, "`proto`"),
            ("port 70000", 5, "out of range"),
            ("port ftp", 5, "`http` and `https`"),
            ("host example.com", 5, "not resolved"),
            ("host 10.1", 5, "net 10.1"),
            ("net 10.1.2.3/8", 4, "non-network bits"),
            ("net 10.0.0.0/33", 4, "longer than 32"),
            ("tcp host 1.2.3.4", 9, "cannot qualify a host"),
            ("ip port 80", 8, "cannot qualify a port"),
            ("ip6 host 1.2.3.4", 9, "IPv4 address"),
            ("ip host ::1", 8, "IPv6 address"),
            ("(port 80", 8, "missing `)`"),
            ("port 80)", 7, "without a matching"),
            ("port 80 port 81", 8, "expected `and` or `or`"),
            ("port", 4, "value"),
            ("port 80 and", 11, "expression ends"),
            ("host 1.2.3.4/24", 5, "net 1.2.3.4/24"),
            ("portrange 80", 10, "LOW-HIGH"),
            ("port 80 # x", 8, "byte-offset and arithmetic"),
        ] {
            let e = parse(s).expect_err(s);
            assert_eq!(e.pos, pos, "{s}: {}", e.msg);
            assert!(e.msg.contains(has), "{s}: {}", e.msg);
        }
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn evaluation() {
        let f = |e: &str, s: &str, d: &str| CaptureFilter::parse(e).unwrap().matches(sa(s), sa(d));
        assert!(f("port 7272", "127.0.0.1:5000", "127.0.0.1:7272"));
        assert!(f("port 7272", "127.0.0.1:7272", "127.0.0.1:5000"));
        assert!(!f("src port 7272", "127.0.0.1:5000", "127.0.0.1:7272"));
        assert!(f("src and dst net 127", "127.0.0.1:5000", "127.0.0.2:7272"));
        assert!(!f("src and dst net 127", "127.0.0.1:5000", "10.0.0.2:7272"));
        assert!(f("portrange 7000-7999", "[::1]:5000", "[::1]:7272"));
        assert!(f("ip6 and host ::1", "[::1]:5000", "[::2]:7272"));
        assert!(!f("ip", "[::1]:5000", "[::2]:7272"));
        assert!(!f("host ::ffff:1.2.3.4", "1.2.3.4:5000", "1.2.3.5:7272"));
        assert!(f("net fe80::/10", "[fe80::1]:1", "[::2]:2"));
        assert!(f("", "1.1.1.1:1", "2.2.2.2:2"));
        let both = CaptureFilter::parse("host 1.1.1.1")
            .unwrap()
            .and_ports(&[80, 81, 80]);
        assert_eq!(
            both.to_string(),
            "tcp and (host 1.1.1.1 and (port 80 or port 81))"
        );
        assert!(both.matches(sa("1.1.1.1:81"), sa("2.2.2.2:2")));
        assert!(!both.matches(sa("1.1.1.1:82"), sa("2.2.2.2:2")));
        assert_eq!(CaptureFilter::ports(&[]).expr, None);
        assert_eq!(
            CaptureFilter::ports(&[7272, 9, 80, 7273, 7271, 81, 80]).to_string(),
            "tcp and (port 9 or port 80 or port 81 or portrange 7271-7273)"
        );
        assert_eq!(
            CaptureFilter::ports(&[65535, 65534, 65533]).to_string(),
            "tcp and portrange 65533-65535"
        );
        let args = CaptureFilter::from_args(&["host", "1.1.1.1", "and", "port", "80"]).unwrap();
        assert_eq!(args.to_string(), "tcp and (host 1.1.1.1 and port 80)");
    }

    /// Token soup never panics; what parses prints back as an expression that parses to the
    /// same tree.
    #[test]
    fn token_soup_and_round_trip() {
        let words = [
            "host",
            "net",
            "port",
            "portrange",
            "src",
            "dst",
            "tcp",
            "ip",
            "ip6",
            "and",
            "or",
            "not",
            "!",
            "&&",
            "||",
            "(",
            ")",
            "80",
            "7272",
            "1-1024",
            "127.0.0.1",
            "::1",
            "10.0.0.0/8",
            "fe80::/10",
            "mask",
            "255.0.0.0",
            "http",
            "udp",
            "[",
            "]",
            "é",
            "10",
            "65536",
            "1.2.3.4.5",
            ":::",
            "/",
        ];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut ok = 0;
        for _ in 0..20_000 {
            let mut t = String::new();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let n = 1 + (x % 9) as usize;
            for k in 0..n {
                let w = words[((x >> (k * 5)) % words.len() as u64) as usize];
                t.push_str(w);
                t.push(' ');
            }
            if let Ok(Some(e)) = parse(&t) {
                ok += 1;
                let back = e.to_string();
                assert_eq!(parse(&back), Ok(Some(e)), "{t:?} -> {back:?}");
            }
        }
        assert!(ok > 100, "{ok}");
        // Deep nesting is refused, not a stack overflow.
        let deep = format!("{}port 80{}", "(".repeat(5000), ")".repeat(5000));
        assert!(parse(&deep).unwrap_err().msg.contains("nested"));
        let nots = format!("{}tcp", "not ".repeat(5000));
        assert!(parse(&nots).unwrap_err().msg.contains("nested"));
        let wide = vec!["port 1"; 5000].join(" or ");
        assert!(parse(&wide).is_ok());
    }
}
