//! `--conn` selectors: which connection(s) to show, with a clear error for what cannot
//! select anything (`--conn foo bar`, `--conn 70000`, `--conn 1.2.3`).
//!
//! A selector is one of:
//!
//! | text                          | selects connections                          |
//! |-------------------------------|----------------------------------------------|
//! | `7272`                        | with port 7272 on either side (1-65535)      |
//! | `127.0.0.1`, `::1`            | with that address on either side             |
//! | `127.0.0.1:7272`, `[::1]:7272`| with that address and port on one side       |
//! | `[::1]`                       | the address, bracketed                       |
//! | `#3`                          | the third connection of the capture (from 1) |
//! | `mynick`                      | labelled so (a word: a letter or `_`, then letters, digits, `_`, `-`, `.`) |
//!
//! An IPv6 address with a port needs brackets: `::1:80` is the address `::1:80`. Addresses
//! compare in canonical form, so `::ffff:10.0.0.1` selects `10.0.0.1`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// One `--conn` value, parsed (the module documentation lists the forms).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnSelector {
    /// A TCP port on either side (never 0).
    Port(u16),
    /// An address on either side, compared in canonical form (an IPv4-mapped IPv6 address
    /// equals its IPv4 address).
    Addr(IpAddr),
    /// An address and port on one side, either one.
    Endpoint(SocketAddr),
    /// The connection's sequence number in the capture (`ConnInfo::id`, from 1).
    Id(u64),
    /// A word matched exactly against the label the caller passes to [`ConnSelector::matches`].
    Label(String),
}

/// Why a selector was refused; the message says what would have been accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnSelectorError {
    /// The text as given (untrimmed), for the message.
    pub input: String,
    /// What is wrong and what is accepted, without the `--conn` prefix `Display` adds.
    pub msg: String,
}

impl fmt::Display for ConnSelectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "--conn `{}`: {}", self.input, self.msg)
    }
}

impl std::error::Error for ConnSelectorError {}

const EXPECTED: &str = "expected a port (7272), an address (127.0.0.1, ::1), address:port \
                        (127.0.0.1:7272, [::1]:7272), a connection number (#3) or a label \
                        (a word)";

fn port(s: &str) -> Result<u16, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{s}` is not a port number"));
    }
    match s.parse::<u32>() {
        Ok(0) => Err("port 0 is not a port a TCP connection can use (1-65535)".into()),
        Ok(p) if p <= 65535 => Ok(p as u16),
        _ => Err(format!("port {s} is out of range (1-65535)")),
    }
}

fn looks_v4(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.') && s.contains('.')
}

fn v4(s: &str) -> Result<Ipv4Addr, String> {
    s.parse()
        .map_err(|_| format!("`{s}` is not an IPv4 address (four numbers 0-255 separated by dots)"))
}

fn is_label(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_alphabetic() || f == '_')
        && c.all(|x| x.is_alphanumeric() || matches!(x, '_' | '-' | '.'))
}

impl ConnSelector {
    /// Parses one selector; surrounding whitespace is ignored.
    ///
    /// # Errors
    /// A [`ConnSelectorError`] for text that is none of the forms, or names a port or
    /// connection number that cannot exist (port 0 or above 65535, `#0`).
    pub fn parse(text: &str) -> Result<ConnSelector, ConnSelectorError> {
        let s = text.trim();
        let e = |msg: String| ConnSelectorError {
            input: text.to_string(),
            msg,
        };
        if s.is_empty() {
            return Err(e(format!("empty selector; {EXPECTED}")));
        }
        if let Some(n) = s.strip_prefix('#') {
            if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                return Err(e(format!(
                    "`#` is followed by a connection number (#1, #2, ...), not `{n}`"
                )));
            }
            return match n.parse::<u64>() {
                Ok(0) => Err(e("connection numbers start at #1".into())),
                Ok(id) => Ok(ConnSelector::Id(id)),
                Err(_) => Err(e(format!("connection number {n} is too large"))),
            };
        }
        if let Some(rest) = s.strip_prefix('[') {
            let Some((inside, after)) = rest.split_once(']') else {
                return Err(e("missing `]` after the IPv6 address".into()));
            };
            let a: Ipv6Addr = inside
                .parse()
                .map_err(|_| e(format!("`{inside}` is not an IPv6 address")))?;
            if after.is_empty() {
                return Ok(ConnSelector::Addr(IpAddr::V6(a)));
            }
            let Some(p) = after.strip_prefix(':') else {
                return Err(e(format!(
                    "unexpected `{after}` after `]` (write `[{inside}]:PORT`)"
                )));
            };
            let p = port(p).map_err(e)?;
            return Ok(ConnSelector::Endpoint(SocketAddr::new(IpAddr::V6(a), p)));
        }
        if s.bytes().all(|b| b.is_ascii_digit()) {
            return port(s).map(ConnSelector::Port).map_err(e);
        }
        if let Ok(a) = s.parse::<Ipv6Addr>() {
            return Ok(ConnSelector::Addr(IpAddr::V6(a)));
        }
        if looks_v4(s) {
            return v4(s).map(|a| ConnSelector::Addr(IpAddr::V4(a))).map_err(e);
        }
        if let Some((host, p)) = s.rsplit_once(':')
            && looks_v4(host)
        {
            let a = v4(host).map_err(e)?;
            let p = port(p).map_err(e)?;
            return Ok(ConnSelector::Endpoint(SocketAddr::new(IpAddr::V4(a), p)));
        }
        if s.contains(':') {
            return Err(e(format!(
                "`{s}` is neither an IPv6 address nor address:port (an IPv6 address with a \
                 port needs brackets: [::1]:7272)"
            )));
        }
        if is_label(s) {
            return Ok(ConnSelector::Label(s.to_string()));
        }
        Err(e(format!("not a connection selector; {EXPECTED}")))
    }

    /// Whether the connection numbered `id` between `client` and `server`, labelled `label`
    /// (if it has one), is selected.
    pub fn matches(
        &self,
        id: u64,
        client: SocketAddr,
        server: SocketAddr,
        label: Option<&str>,
    ) -> bool {
        let same_ip = |a: IpAddr, b: IpAddr| a.to_canonical() == b.to_canonical();
        match self {
            ConnSelector::Port(p) => client.port() == *p || server.port() == *p,
            ConnSelector::Addr(a) => same_ip(client.ip(), *a) || same_ip(server.ip(), *a),
            ConnSelector::Endpoint(e) => [client, server]
                .iter()
                .any(|s| s.port() == e.port() && same_ip(s.ip(), e.ip())),
            ConnSelector::Id(n) => id == *n,
            ConnSelector::Label(l) => label == Some(l.as_str()),
        }
    }
}

impl FromStr for ConnSelector {
    type Err = ConnSelectorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ConnSelector::parse(s)
    }
}

/// The selector in the form `parse` reads back.
impl fmt::Display for ConnSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnSelector::Port(p) => write!(f, "{p}"),
            ConnSelector::Addr(a) => write!(f, "{a}"),
            ConnSelector::Endpoint(e) => write!(f, "{}", crate::packet::fmt_addr(e)),
            ConnSelector::Id(n) => write!(f, "#{n}"),
            ConnSelector::Label(l) => f.write_str(l),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> ConnSelector {
        ConnSelector::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn accepted_forms() {
        assert_eq!(p("7272"), ConnSelector::Port(7272));
        assert_eq!(p(" 65535 "), ConnSelector::Port(65535));
        assert_eq!(
            p("127.0.0.1"),
            ConnSelector::Addr("127.0.0.1".parse().unwrap())
        );
        assert_eq!(p("::1"), ConnSelector::Addr("::1".parse().unwrap()));
        assert_eq!(
            p("[fe80::1]"),
            ConnSelector::Addr("fe80::1".parse().unwrap())
        );
        assert_eq!(
            p("127.0.0.1:7272"),
            ConnSelector::Endpoint(sa("127.0.0.1:7272"))
        );
        assert_eq!(p("[::1]:7272"), ConnSelector::Endpoint(sa("[::1]:7272")));
        assert_eq!(p("#3"), ConnSelector::Id(3));
        assert_eq!(p("mynick"), ConnSelector::Label("mynick".into()));
        assert_eq!(p("web-1.a_b"), ConnSelector::Label("web-1.a_b".into()));
        // Without brackets the trailing group is part of the IPv6 address.
        assert_eq!(p("::1:80"), ConnSelector::Addr("::1:80".parse().unwrap()));
        for s in [
            "7272",
            "10.0.0.1",
            "::1",
            "10.0.0.1:80",
            "[::1]:80",
            "#12",
            "nick",
        ] {
            assert_eq!(p(s).to_string(), s);
            assert_eq!(p(&p(s).to_string()), p(s));
        }
    }

    #[test]
    fn refused_with_reasons() {
        for (s, has) in [
            ("", "empty"),
            ("   ", "empty"),
            ("0", "port 0"),
            ("70000", "out of range"),
            ("99999999999999999999", "out of range"),
            ("1.2.3", "not an IPv4 address"),
            ("1.2.3.256", "not an IPv4 address"),
            ("1.2.3.4:0", "port 0"),
            ("1.2.3.4:", "not a port"),
            ("1.2.3.4:http", "not a port"),
            ("1.2.3.4:65536", "out of range"),
            ("[::1", "missing `]`"),
            ("[::g]:80", "not an IPv6 address"),
            ("[::1]80", "unexpected `80`"),
            ("[::1]:", "not a port"),
            ("#", "connection number"),
            ("#x", "connection number"),
            ("#0", "start at #1"),
            ("#99999999999999999999999", "too large"),
            ("foo bar", "not a connection selector"),
            ("-1", "not a connection selector"),
            ("3abc", "not a connection selector"),
            ("a:b", "brackets"),
            ("*", "not a connection selector"),
        ] {
            let e = ConnSelector::parse(s).expect_err(s);
            assert!(e.msg.contains(has), "{s:?}: {e}");
            assert!(e.to_string().starts_with("--conn `"), "{e}");
        }
    }

    #[test]
    fn matching() {
        let c = sa("10.0.0.1:40000");
        let s = sa("10.0.0.2:7272");
        let m = |sel: &str, label| p(sel).matches(4, c, s, label);
        assert!(m("7272", None));
        assert!(m("40000", None));
        assert!(!m("7273", None));
        assert!(m("10.0.0.2", None));
        assert!(m("::ffff:10.0.0.1", None), "canonical form");
        assert!(!m("10.0.0.3", None));
        assert!(m("10.0.0.2:7272", None));
        assert!(m("10.0.0.1:40000", None));
        assert!(!m("10.0.0.1:7272", None), "address and port of one side");
        assert!(m("#4", None));
        assert!(!m("#5", None));
        assert!(m("mynick", Some("mynick")));
        assert!(!m("mynick", Some("other")));
        assert!(!m("mynick", None));
        let c6 = sa("[::1]:5000");
        let s6 = sa("[fe80::1]:80");
        assert!(p("[fe80::1]:80").matches(1, c6, s6, None));
        assert!(p("::1").matches(1, c6, s6, None));
        assert!(!p("[::1]:80").matches(1, c6, s6, None));
    }
}
