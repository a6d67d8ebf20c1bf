//! NSS key log files (SSLKEYLOGFILE, draft-ietf-tls-keylogfile): one secret a line,
//! `LABEL <client_random hex> <secret hex>`. Browsers and OpenSSL append to the file while
//! they run, so [`KeyLogReader`] re-reads a growing file from where it stopped.
//!
//! The same text is what a pcapng Decryption Secrets Block of type TLSK carries
//! ([`KeyLog::add_dsb`]).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// A ClientHello random: the key of every key log line.
pub type ClientRandom = [u8; 32];

/// pcapng Decryption Secrets Block secret type for TLS key logs ("TLSK").
pub const DSB_TLS_KEY_LOG: u32 = 0x544c_534b;

/// OpenSSL logs `CLIENT_TRAFFIC_SECRET_N` after each KeyUpdate; more than this many per
/// connection is a hostile file, not a browser.
const MAX_TRAFFIC_INDEX: usize = 4096;
/// Longest line kept while waiting for its newline (real lines are under 250 bytes).
const MAX_LINE: usize = 4096;
/// Longest secret accepted, in bytes (SHA-384 secrets are 48).
const MAX_SECRET: usize = 64;

/// Everything the log says about one connection (one client random).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Secrets {
    /// TLS 1.2 and earlier: `CLIENT_RANDOM`, the 48-byte master secret.
    pub master_secret: Option<Vec<u8>>,
    /// TLS 1.3 `CLIENT_EARLY_TRAFFIC_SECRET`: decrypts the client's 0-RTT data.
    pub client_early_traffic: Option<Vec<u8>>,
    /// TLS 1.3 `EARLY_EXPORTER_SECRET` (kept, not used for decryption).
    pub early_exporter: Option<Vec<u8>>,
    /// TLS 1.3 `CLIENT_HANDSHAKE_TRAFFIC_SECRET`: the client's encrypted handshake.
    pub client_handshake_traffic: Option<Vec<u8>>,
    /// TLS 1.3 `SERVER_HANDSHAKE_TRAFFIC_SECRET`: the server's encrypted handshake
    /// (EncryptedExtensions, Certificate, Finished).
    pub server_handshake_traffic: Option<Vec<u8>>,
    /// TLS 1.3 `EXPORTER_SECRET` (kept, not used for decryption).
    pub exporter: Option<Vec<u8>>,
    /// `CLIENT_TRAFFIC_SECRET_N` at index N (0 is the standard label; N > 0 is OpenSSL's).
    pub client_traffic: Vec<Option<Vec<u8>>>,
    /// `SERVER_TRAFFIC_SECRET_N`, indexed as `client_traffic`.
    pub server_traffic: Vec<Option<Vec<u8>>>,
}

impl Secrets {
    /// The client's application traffic secret after `n` KeyUpdates, if logged.
    pub fn client_traffic(&self, n: usize) -> Option<&[u8]> {
        self.client_traffic.get(n)?.as_deref()
    }
    /// The server's application traffic secret after `n` KeyUpdates, if logged.
    pub fn server_traffic(&self, n: usize) -> Option<&[u8]> {
        self.server_traffic.get(n)?.as_deref()
    }
    fn heap(&self) -> usize {
        let one = |s: &Option<Vec<u8>>| s.as_ref().map_or(0, |v| v.capacity());
        one(&self.master_secret)
            + one(&self.client_early_traffic)
            + one(&self.early_exporter)
            + one(&self.client_handshake_traffic)
            + one(&self.server_handshake_traffic)
            + one(&self.exporter)
            + self.client_traffic.iter().map(one).sum::<usize>()
            + self.server_traffic.iter().map(one).sum::<usize>()
            + (self.client_traffic.capacity() + self.server_traffic.capacity())
                * std::mem::size_of::<Option<Vec<u8>>>()
    }
}

/// What one line was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Line {
    /// A secret stored.
    Secret,
    /// Blank, a `#` comment, or a label this version does not use.
    Ignored,
    /// Not `LABEL hex hex`, or hex of the wrong length.
    Malformed,
}

/// Why a Decryption Secrets Block was not taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyLogError {
    /// The block holds another kind of secrets (WireGuard, ZigBee, ...).
    NotTlsKeyLog {
        /// The block's secret type (the TLS one is [`DSB_TLS_KEY_LOG`]).
        secret_type: u32,
    },
}

impl std::fmt::Display for KeyLogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyLogError::NotTlsKeyLog { secret_type } => {
                write!(
                    f,
                    "decryption secrets block of type {secret_type:#010x} is not a TLS key log"
                )
            }
        }
    }
}

impl std::error::Error for KeyLogError {}

/// Secrets by client random, with counts of what was read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyLog {
    map: HashMap<ClientRandom, Secrets>,
    /// Lines that stored a secret.
    pub secrets: u64,
    /// Comments, blank lines, unknown labels.
    pub ignored: u64,
    /// Lines that could not be read; never fatal.
    pub malformed: u64,
}

impl KeyLog {
    /// A key log with no secrets and zero counts.
    pub fn new() -> KeyLog {
        KeyLog::default()
    }

    /// Reads a whole key log file.
    pub fn from_file(path: &Path) -> io::Result<KeyLog> {
        let mut log = KeyLog::new();
        log.add_text(&std::fs::read(path)?);
        Ok(log)
    }

    /// The secrets logged for a client random.
    pub fn get(&self, client_random: &ClientRandom) -> Option<&Secrets> {
        self.map.get(client_random)
    }

    /// Connections (client randoms) with at least one secret.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// No connection has a secret yet.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Heap bytes held, roughly.
    pub fn memory(&self) -> usize {
        self.map.capacity() * (std::mem::size_of::<(ClientRandom, Secrets)>() + 1)
            + self.map.values().map(Secrets::heap).sum::<usize>()
    }

    /// Adds every line of a complete text (a last line without a newline counts too).
    pub fn add_text(&mut self, text: &[u8]) {
        for line in text.split(|&b| b == b'\n') {
            self.add_line(line);
        }
    }

    /// Adds the contents of a pcapng Decryption Secrets Block; only type TLSK is a key log.
    pub fn add_dsb(&mut self, secret_type: u32, data: &[u8]) -> Result<(), KeyLogError> {
        if secret_type != DSB_TLS_KEY_LOG {
            return Err(KeyLogError::NotTlsKeyLog { secret_type });
        }
        // The block's data is padded to 32 bits with zero bytes.
        let end = data.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        self.add_text(&data[..end]);
        Ok(())
    }

    /// Adds one line (without its newline) and says what it was.
    pub fn add_line(&mut self, line: &[u8]) -> Line {
        let what = self.parse_line(line);
        match what {
            Line::Secret => self.secrets += 1,
            Line::Ignored => self.ignored += 1,
            Line::Malformed => self.malformed += 1,
        }
        what
    }

    fn parse_line(&mut self, line: &[u8]) -> Line {
        let line = trim(line);
        if line.is_empty() || line[0] == b'#' {
            return Line::Ignored;
        }
        let mut fields = line
            .split(|&b| b == b' ' || b == b'\t')
            .filter(|f| !f.is_empty());
        let (Some(label), Some(random), Some(secret), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Line::Malformed;
        };
        let Some(slot) = Slot::of(label) else {
            return Line::Ignored;
        };
        let Some(random) = unhex(random).and_then(|r| ClientRandom::try_from(r).ok()) else {
            return Line::Malformed;
        };
        let Some(secret) = unhex(secret) else {
            return Line::Malformed;
        };
        let length_ok = match slot {
            Slot::Master => secret.len() == 48,
            _ => !secret.is_empty() && secret.len() <= MAX_SECRET,
        };
        if !length_ok {
            return Line::Malformed;
        }
        let entry = self.map.entry(random).or_default();
        let put = |list: &mut Vec<Option<Vec<u8>>>, n: usize, secret: Vec<u8>| {
            if list.len() <= n {
                list.resize(n + 1, None);
            }
            list[n] = Some(secret);
        };
        match slot {
            Slot::Master => entry.master_secret = Some(secret),
            Slot::ClientEarly => entry.client_early_traffic = Some(secret),
            Slot::EarlyExporter => entry.early_exporter = Some(secret),
            Slot::ClientHandshake => entry.client_handshake_traffic = Some(secret),
            Slot::ServerHandshake => entry.server_handshake_traffic = Some(secret),
            Slot::Exporter => entry.exporter = Some(secret),
            Slot::ClientTraffic(n) => put(&mut entry.client_traffic, n, secret),
            Slot::ServerTraffic(n) => put(&mut entry.server_traffic, n, secret),
        }
        Line::Secret
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Master,
    ClientEarly,
    EarlyExporter,
    ClientHandshake,
    ServerHandshake,
    Exporter,
    ClientTraffic(usize),
    ServerTraffic(usize),
}

impl Slot {
    fn of(label: &[u8]) -> Option<Slot> {
        Some(match label {
            b"CLIENT_RANDOM" => Slot::Master,
            b"CLIENT_EARLY_TRAFFIC_SECRET" => Slot::ClientEarly,
            b"EARLY_EXPORTER_SECRET" => Slot::EarlyExporter,
            b"CLIENT_HANDSHAKE_TRAFFIC_SECRET" => Slot::ClientHandshake,
            b"SERVER_HANDSHAKE_TRAFFIC_SECRET" => Slot::ServerHandshake,
            b"EXPORTER_SECRET" => Slot::Exporter,
            _ => {
                if let Some(n) = label.strip_prefix(b"CLIENT_TRAFFIC_SECRET_") {
                    Slot::ClientTraffic(index(n)?)
                } else if let Some(n) = label.strip_prefix(b"SERVER_TRAFFIC_SECRET_") {
                    Slot::ServerTraffic(index(n)?)
                } else {
                    return None;
                }
            }
        })
    }
}

fn index(digits: &[u8]) -> Option<usize> {
    if digits.is_empty() || digits.len() > 5 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = std::str::from_utf8(digits).ok()?.parse::<usize>().ok()?;
    (n < MAX_TRAFFIC_INDEX).then_some(n)
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., last] = s {
        if last.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    while let [first, rest @ ..] = s {
        if first.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// Decodes hex (either case); None for odd length or a non-hex digit.
pub fn unhex(s: &[u8]) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    s.chunks_exact(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

/// Lower-case hex, for reports ("no key for client random ...").
pub fn hex(bytes: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(D[(b >> 4) as usize] as char);
        s.push(D[(b & 15) as usize] as char);
    }
    s
}

/// Incremental line splitter: bytes arrive in any pieces; only lines ended by a newline are
/// added, the partial last line waits for the rest.
#[derive(Clone, Debug, Default)]
pub struct LineBuffer {
    partial: Vec<u8>,
    /// The current line grew past the limit: drop it up to its newline.
    discarding: bool,
}

impl LineBuffer {
    /// Adds complete lines of `bytes` to `log`; returns how many lines were completed.
    pub fn feed(&mut self, bytes: &[u8], log: &mut KeyLog) -> usize {
        let mut lines = 0;
        let mut rest = bytes;
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            let (head, tail) = (&rest[..nl], &rest[nl + 1..]);
            if self.discarding {
                self.discarding = false;
                log.malformed += 1;
            } else if self.partial.is_empty() {
                log.add_line(head);
            } else {
                self.partial.extend_from_slice(head);
                let line = std::mem::take(&mut self.partial);
                log.add_line(&line);
                self.partial = line;
                self.partial.clear();
            }
            lines += 1;
            rest = tail;
        }
        if !self.discarding {
            if self.partial.len() + rest.len() > MAX_LINE {
                self.partial = Vec::new();
                self.discarding = true;
            } else {
                self.partial.extend_from_slice(rest);
            }
        }
        lines
    }

    /// Bytes of a line still waiting for its newline.
    pub fn pending(&self) -> usize {
        self.partial.len()
    }
}

/// Follows a key log file that the browser is still writing: each [`poll`](Self::poll) reads
/// what was appended since the last one.
#[derive(Debug)]
pub struct KeyLogReader {
    path: PathBuf,
    offset: u64,
    lines: LineBuffer,
}

impl KeyLogReader {
    /// A reader of the file at `path`, from its start. Nothing is read until the first
    /// [`poll`](Self::poll), so the file need not exist yet.
    pub fn new(path: impl Into<PathBuf>) -> KeyLogReader {
        KeyLogReader {
            path: path.into(),
            offset: 0,
            lines: LineBuffer::default(),
        }
    }

    /// Bytes of the file read so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Reads the bytes appended since the last call into `log`; returns the number of new
    /// complete lines. A file that does not exist yet is not an error (0 lines): the browser
    /// creates it when it makes its first connection. A file that got shorter was replaced,
    /// and is read again from its start.
    pub fn poll(&mut self, log: &mut KeyLog) -> io::Result<usize> {
        let mut file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        let len = file.metadata()?.len();
        if len < self.offset {
            self.offset = 0;
            self.lines = LineBuffer::default();
        }
        if len == self.offset {
            return Ok(0);
        }
        file.seek(SeekFrom::Start(self.offset))?;
        let mut lines = 0;
        let mut buf = [0u8; 8192];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            self.offset += n as u64;
            lines += self.lines.feed(&buf[..n], log);
        }
        Ok(lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R1: &str = "404044b6a7149bdbab454496bfaa712092715f38297dc6fb21ef7ae4d7cb8ae5";
    const S32: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    fn random(h: &str) -> ClientRandom {
        unhex(h.as_bytes()).unwrap().try_into().unwrap()
    }

    #[test]
    fn all_labels_land_in_their_slots() {
        let ms = "ab".repeat(48);
        let text = format!(
            "# comment\n\
             CLIENT_RANDOM {R1} {ms}\n\
             CLIENT_EARLY_TRAFFIC_SECRET {R1} {S32}\n\
             EARLY_EXPORTER_SECRET {R1} {S32}\n\
             CLIENT_HANDSHAKE_TRAFFIC_SECRET {R1} {S32}\n\
             SERVER_HANDSHAKE_TRAFFIC_SECRET {R1} 01{}\n\
             EXPORTER_SECRET {R1} {S32}\n\
             CLIENT_TRAFFIC_SECRET_0 {R1} {S32}\n\
             SERVER_TRAFFIC_SECRET_0 {R1} {S32}\r\n\
             SERVER_TRAFFIC_SECRET_2 {R1} {S32}\n\
             \n\
             SOME_FUTURE_LABEL {R1} {S32}\n",
            &S32[2..]
        );
        let mut log = KeyLog::new();
        log.add_text(text.as_bytes());
        assert_eq!((log.secrets, log.malformed), (9, 0));
        let s = log.get(&random(R1)).unwrap();
        assert_eq!(s.master_secret.as_deref(), Some(&[0xab; 48][..]));
        assert_eq!(s.server_handshake_traffic.as_ref().unwrap()[0], 0x01);
        assert!(s.client_early_traffic.is_some() && s.early_exporter.is_some());
        assert!(s.client_handshake_traffic.is_some() && s.exporter.is_some());
        assert!(s.client_traffic(0).is_some() && s.server_traffic(0).is_some());
        assert!(s.server_traffic(1).is_none() && s.server_traffic(2).is_some());
        assert!(s.server_traffic(99).is_none());
        assert_eq!(log.len(), 1);
        assert!(log.memory() > 0);
    }

    #[test]
    fn malformed_lines_are_counted_not_fatal() {
        let bad = [
            "CLIENT_RANDOM".to_string(),
            format!("CLIENT_RANDOM {R1}"),
            format!("CLIENT_RANDOM {R1} abcd"), // master secret not 48 bytes
            format!("CLIENT_RANDOM {} {}", &R1[2..], "ab".repeat(48)), // random 31 bytes
            format!("CLIENT_TRAFFIC_SECRET_0 {R1} {S32}x"),
            format!("CLIENT_TRAFFIC_SECRET_0 {R1} {S32} extra"),
            format!("CLIENT_TRAFFIC_SECRET_0 zz{} {S32}", &R1[2..]),
            format!("CLIENT_TRAFFIC_SECRET_0 {R1} {}", "ab".repeat(65)),
        ];
        let mut log = KeyLog::new();
        for l in &bad {
            assert_eq!(log.add_line(l.as_bytes()), Line::Malformed, "{l}");
        }
        // Huge or odd traffic indexes are unknown labels, not allocations.
        for l in [
            format!("CLIENT_TRAFFIC_SECRET_99999999999 {R1} {S32}"),
            format!("CLIENT_TRAFFIC_SECRET_4096 {R1} {S32}"),
            format!("CLIENT_TRAFFIC_SECRET_ {R1} {S32}"),
            format!("CLIENT_TRAFFIC_SECRET_-1 {R1} {S32}"),
        ] {
            assert_eq!(log.add_line(l.as_bytes()), Line::Ignored, "{l}");
        }
        assert_eq!(log.malformed, bad.len() as u64);
        assert!(log.is_empty());
        // Garbage bytes of every value never panic.
        let junk: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
        log.add_text(&junk);
    }

    #[test]
    fn line_buffer_waits_for_the_newline() {
        let line = format!("CLIENT_TRAFFIC_SECRET_0 {R1} {S32}\n");
        let mut log = KeyLog::new();
        let mut lb = LineBuffer::default();
        let (a, b) = line.as_bytes().split_at(40);
        assert_eq!(lb.feed(a, &mut log), 0);
        assert!(log.is_empty());
        assert_eq!(lb.pending(), 40);
        assert_eq!(lb.feed(b, &mut log), 1);
        assert_eq!(log.secrets, 1);
        // One byte at a time.
        let other = line.replace("CLIENT", "SERVER");
        for byte in other.as_bytes() {
            lb.feed(std::slice::from_ref(byte), &mut log);
        }
        assert_eq!(log.secrets, 2);
        // An endless line is dropped, once, when its newline finally comes.
        lb.feed(&[b'A'; 10_000], &mut log);
        assert!(lb.pending() <= MAX_LINE);
        lb.feed(&[b'A'; 10_000], &mut log);
        lb.feed(b"\n", &mut log);
        assert_eq!(log.malformed, 1);
        lb.feed(line.as_bytes(), &mut log);
        assert_eq!(log.secrets, 3);
    }

    #[test]
    fn reader_follows_a_growing_file() {
        use std::io::Write;
        let dir = std::env::temp_dir().join(format!("wsdump-keylog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("keys.log");
        let _ = std::fs::remove_file(&path);
        let mut log = KeyLog::new();
        let mut reader = KeyLogReader::new(&path);
        assert_eq!(reader.poll(&mut log).unwrap(), 0, "not created yet");
        let mut f = File::create(&path).unwrap();
        let line = format!("CLIENT_HANDSHAKE_TRAFFIC_SECRET {R1} {S32}\n");
        f.write_all(b"# keys\n").unwrap();
        f.write_all(&line.as_bytes()[..30]).unwrap();
        f.flush().unwrap();
        assert_eq!(reader.poll(&mut log).unwrap(), 1);
        assert_eq!(log.secrets, 0, "partial line must wait");
        f.write_all(&line.as_bytes()[30..]).unwrap();
        f.flush().unwrap();
        assert_eq!(reader.poll(&mut log).unwrap(), 1);
        assert_eq!(log.secrets, 1);
        assert_eq!(reader.poll(&mut log).unwrap(), 0);
        assert_eq!(reader.offset(), (7 + line.len()) as u64);
        // Replaced by a shorter file: read again from the start.
        drop(f);
        std::fs::write(&path, "# new\n").unwrap();
        assert_eq!(reader.poll(&mut log).unwrap(), 1);
        assert_eq!(reader.offset(), 6);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        writeln!(f, "CLIENT_RANDOM {R1} {}", "cd".repeat(48)).unwrap();
        assert_eq!(reader.poll(&mut log).unwrap(), 1);
        assert!(log.get(&random(R1)).unwrap().master_secret.is_some());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn decryption_secrets_block() {
        let mut data = format!("CLIENT_RANDOM {R1} {}\n", "ef".repeat(48)).into_bytes();
        data.extend_from_slice(&[0, 0, 0]);
        let mut log = KeyLog::new();
        assert_eq!(
            log.add_dsb(0x5747_4b4c, &data),
            Err(KeyLogError::NotTlsKeyLog {
                secret_type: 0x5747_4b4c
            })
        );
        log.add_dsb(DSB_TLS_KEY_LOG, &data).unwrap();
        assert_eq!((log.secrets, log.malformed), (1, 0));
    }

    #[test]
    fn the_sample_key_log() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/tls-wss.keylog");
        let log = KeyLog::from_file(&path).unwrap();
        assert_eq!((log.secrets, log.malformed), (5, 0));
        let s = log.get(&random(R1)).unwrap();
        assert!(s.client_handshake_traffic.is_some() && s.server_traffic(0).is_some());
        assert_eq!(hex(&random(R1)), R1);
    }
}
