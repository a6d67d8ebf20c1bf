//! `--ladder`: a sequence diagram per connection, client on the left, server on the right,
//! one arrow per packet of the TCP lifecycle and per HTTP head or websocket message, relative
//! times at the left. Fits 80 columns. A connection's diagram is printed when it ends, or,
//! drawn live ([`LadderPrinter::live`]), row by row as its packets come, each row tagged with
//! its connection's number.

use super::escape;
use crate::capture::Timestamp;
use crate::event::{Dir, Event, EventKind, Message, Opcode, Sink, TcpRole};
use std::collections::HashMap;
use std::io::{self, Write};

const WIDTH: usize = 80;
/// Columns for the relative time, then the two lifelines.
const TIME_COL: usize = 12;
/// Entries kept per connection before the rest are summarised.
const MAX_ROWS: usize = 2000;
/// Entries kept across all connections not yet drawn, so memory stays bounded.
const MAX_TOTAL_ROWS: usize = 200_000;
/// Columns the live view adds before the time for the connection's number (`#12 `).
const LIVE_TAG: usize = 5;
/// Bytes of a label kept for a row: more than 66 columns can show (four bytes a column),
/// so that the cut by width is unchanged; a label of zero-width characters, which no width
/// cut would shorten, cannot make a row large.
const MAX_LABEL: usize = 256;
/// What one row costs beyond its label (time, direction, the `String`, the `Vec` slot).
const ROW_COST: usize = 48;
/// Bytes held for diagrams not yet drawn (titles, rows): past it, rows and new connections
/// are counted, not drawn. 200,000 rows of full labels would be 60 MB.
const MAX_HELD: usize = 8 << 20;

struct Glyphs {
    bar: char,
    line: char,
    right: char,
    left: char,
    ellipsis: &'static str,
}

const UNICODE: Glyphs = Glyphs {
    bar: '│',
    line: '─',
    right: '▶',
    left: '◀',
    ellipsis: "…",
};
const ASCII: Glyphs = Glyphs {
    bar: '|',
    line: '-',
    right: '>',
    left: '<',
    ellipsis: "...",
};

struct Diagram {
    /// When it began, among the diagrams (the key of `order`).
    seq: u64,
    id: u64,
    client: String,
    server: String,
    /// The name an application protocol gave the connection, once known.
    label: Option<String>,
    start: Timestamp,
    rows: Vec<(Timestamp, Option<Dir>, String)>,
    dropped: u64,
    /// Rows drawn live.
    drawn: u64,
}

/// The `--ladder` [`Sink`]: one sequence diagram per connection, written to `W` when the
/// connection ends (or row by row, [`live`](Self::live)).
pub struct LadderPrinter<W: Write> {
    out: W,
    g: &'static Glyphs,
    conns: HashMap<u64, Diagram>,
    /// The diagrams not yet drawn, in the order they began (a sequence number, the
    /// connection): removing one is a lookup, not a scan (many open connections).
    order: std::collections::BTreeMap<u64, u64>,
    started: u64,
    rows: usize,
    /// Bytes held by the diagrams not yet drawn (see [`MAX_HELD`]).
    held: usize,
    /// Connections given no diagram because [`MAX_HELD`] was reached, and their events.
    undrawn: (u64, u64),
    /// Connections counted in `undrawn`, so that each is counted once.
    undrawn_ids: std::collections::HashSet<u64>,
    /// Rows are drawn as they come, not per connection at its end.
    live: bool,
    /// The connection of the last row drawn live.
    last_live: Option<u64>,
}

impl Diagram {
    /// Bytes held, as [`MAX_HELD`] counts them.
    fn cost(&self) -> usize {
        self.client.len()
            + self.server.len()
            + self.label.as_ref().map_or(0, String::len)
            + ROW_COST
            + self
                .rows
                .iter()
                .map(|(_, _, l)| l.len() + ROW_COST)
                .sum::<usize>()
    }

    fn title(&self) -> String {
        let mut client = String::new();
        if let Some(l) = &self.label {
            super::human::label(l, &mut client);
            client.push('@');
        }
        client.push_str(&self.client);
        format!(
            "connection {}: client {client} (left), server {} (right)",
            self.id, self.server
        )
    }
}

/// Whether the terminal's character set is UTF-8, by the locale variables, as a C program
/// would learn it from `nl_langinfo(CODESET)`.
pub fn locale_is_utf8() -> bool {
    for var in ["LC_ALL", "LC_CTYPE", "LANG"] {
        if let Ok(v) = std::env::var(var)
            && !v.is_empty()
        {
            let v = v.to_ascii_lowercase();
            return v.contains("utf-8") || v.contains("utf8");
        }
    }
    false
}

impl<W: Write> LadderPrinter<W> {
    /// A printer writing to `out`, drawing with box-drawing characters and arrows when
    /// `unicode` (see [`locale_is_utf8`]), else with ASCII.
    pub fn new(out: W, unicode: bool) -> Self {
        LadderPrinter {
            out,
            g: if unicode { &UNICODE } else { &ASCII },
            conns: HashMap::new(),
            order: Default::default(),
            started: 0,
            rows: 0,
            held: 0,
            undrawn: (0, 0),
            undrawn_ids: Default::default(),
            live: false,
            last_live: None,
        }
    }

    /// Bytes the diagrams not yet drawn hold (bounded by `MAX_HELD`).
    pub fn held(&self) -> usize {
        self.held
    }

    /// Draws each row when its event comes (live capture, pipes): a connection's title
    /// when its first row is drawn, and `#N` before each row's time, since connections
    /// interleave. The columns are the same for every row.
    pub fn live(mut self) -> Self {
        self.live = true;
        self
    }

    /// One row: the time since the connection began, the lifelines, the arrow.
    fn row(&self, d: &Diagram, ts: Timestamp, dir: Option<Dir>, label: &str, out: &mut String) {
        let g = self.g;
        let rel = (ts.as_nanos() - d.start.as_nanos()).max(0);
        let mut t = format!(
            "+{}.{:06}",
            rel / 1_000_000_000,
            (rel % 1_000_000_000) / 1000
        );
        let mut time_col = TIME_COL;
        if self.live {
            t = format!("#{} {t}", d.id);
            time_col += LIVE_TAG;
        }
        out.push_str(&format!("{t:>width$} ", width = time_col - 1));
        out.push(g.bar);
        out.push_str(&arrow(g, dir, label, WIDTH - time_col - 2));
        out.push(g.bar);
        out.push('\n');
    }

    /// Flushes the writer; call it before the program exits, since `out` may be buffered.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Draws the connections that have not ended (input stopped early, e.g. `-c`).
    pub fn finish(&mut self) -> io::Result<()> {
        let ids = std::mem::take(&mut self.order);
        if self.live {
            return self.out.flush();
        }
        for id in ids.into_values() {
            self.print(id)?;
        }
        let (conns, events) = std::mem::take(&mut self.undrawn);
        if conns > 0 {
            writeln!(
                self.out,
                "({conns} connections with {events} events not drawn: the diagrams waiting to be drawn held {} MiB)",
                MAX_HELD >> 20
            )?;
        }
        self.out.flush()
    }

    fn label(&mut self, ev: &Event<'_>) -> Option<String> {
        Some(match &ev.kind {
            EventKind::Tcp(t) => match t.role {
                TcpRole::Syn => "SYN".into(),
                TcpRole::SynAck => "SYN+ACK".into(),
                TcpRole::HandshakeAck => "ACK".into(),
                TcpRole::Fin => "FIN".into(),
                TcpRole::Rst => "RST".into(),
                TcpRole::Data | TcpRole::Ack | TcpRole::KeepAlive => return None,
            },
            EventKind::HttpRequest(r) => {
                let mut s = format!("{} ", r.method);
                escape::text(&r.path, &mut s);
                if r.websocket_upgrade {
                    s.push_str(" Upgrade");
                }
                s
            }
            EventKind::HttpResponse(r) => {
                let mut s = format!("{} ", r.status);
                escape::text(&r.reason, &mut s);
                s
            }
            EventKind::Message(m) => {
                // A chat protocol message reads better as the sentence it means.
                match ev.app {
                    Some(r) => {
                        let mut s = String::new();
                        escape::text(&r.text, &mut s);
                        s
                    }
                    None => message_label(m),
                }
            }
            EventKind::Gap(g) => format!("[gap: {} bytes lost]", g.len),
            _ => return None,
        })
    }

    fn print(&mut self, id: u64) -> io::Result<()> {
        let Some(d) = self.conns.remove(&id) else {
            return Ok(());
        };
        self.held -= d.cost();
        self.rows -= d.rows.len();
        let mut out = String::new();
        out.push_str(&d.title());
        out.push('\n');
        for (ts, dir, label) in &d.rows {
            self.row(&d, *ts, *dir, label, &mut out);
        }
        if d.dropped > 0 {
            out.push_str(&format!(
                "{:>width$} ({} more events not drawn)\n",
                "",
                d.dropped,
                width = TIME_COL - 1
            ));
        }
        out.push('\n');
        self.out.write_all(out.as_bytes())
    }
}

/// A label as it will be drawn, cut when it is kept rather than when it is printed: to the
/// row's width (what is held is what is shown, a few hundred bytes at most), after a cut to
/// [`MAX_LABEL`] bytes so that measuring it costs little.
fn keep(mut label: String, g: &Glyphs) -> String {
    if label.len() > MAX_LABEL {
        let mut end = MAX_LABEL;
        while !label.is_char_boundary(end) {
            end -= 1;
        }
        label.truncate(end);
        label.push_str(g.ellipsis);
    }
    let max_text = (WIDTH - TIME_COL - 2).saturating_sub(4);
    let text = fit(g, &label, max_text);
    // `fit` pads with one space on each side; `arrow` pads again, and cuts nothing more.
    match text.strip_prefix(' ').and_then(|t| t.strip_suffix(' ')) {
        Some(t) if t.len() < label.len() => t.to_string(),
        _ => label,
    }
}

fn message_label(m: &Message<'_>) -> String {
    let mut s = String::new();
    match m.opcode {
        Opcode::Close => {
            s.push_str("close");
            if let Some(c) = m.close_code {
                s.push_str(&format!(" {c}"));
            }
        }
        Opcode::Text if m.valid_utf8 && m.incomplete.is_none() => {
            s.push_str("text \"");
            escape::bytes(&m.payload[..m.payload.len().min(200)], &mut s);
            s.push('"');
        }
        op => s.push_str(&format!("{op} {} B", m.len)),
    }
    if m.compressed {
        s.push_str(" (deflate)");
    }
    s
}

/// One row body between the lifelines, `width` terminal columns: `── label ──▶` or
/// `◀── label ──`. Widths are display widths (CJK and emoji take two columns), always of
/// whole strings: `unicode-width` measures some sequences differently from the sum of their
/// characters ("❤️" is U+2764 U+FE0F, 1 + 0 as characters but 2 as a string), so what is cut
/// is measured the same way as what is printed.
fn arrow(g: &Glyphs, dir: Option<Dir>, label: &str, width: usize) -> String {
    use unicode_width::UnicodeWidthStr;
    // At least one line character on each side and the arrow head.
    let max_text = width.saturating_sub(4);
    let text = fit(g, label, max_text);
    let n = text.width();
    let fill = width.saturating_sub(n + 1);
    let left = fill / 2;
    let right = fill - left;
    let line = |k: usize| g.line.to_string().repeat(k);
    match dir {
        Some(Dir::C2S) => format!("{}{}{}{}", line(left), text, line(right), g.right),
        Some(Dir::S2C) => format!("{}{}{}{}", g.left, line(left), text, line(right)),
        None => format!("{}{}{} ", " ".repeat(left), text, " ".repeat(right)),
    }
}

/// ` label ` cut to `max_text` columns (with the ellipsis), as a row shows it.
fn fit(g: &Glyphs, label: &str, max_text: usize) -> String {
    use unicode_width::UnicodeWidthStr;
    let mut text = format!(" {label} ");
    if text.width() > max_text {
        // The longest prefix that fits with the ellipsis, by binary search over character
        // boundaries. Width is not monotonic in the prefix (a variation selector can widen or
        // narrow the character before it): the search may settle on a shorter prefix than
        // the longest, but what it returns always fits, because it is measured whole.
        let cuts: Vec<usize> = label
            .char_indices()
            .map(|(i, _)| i)
            .chain(std::iter::once(label.len()))
            .collect();
        let make = |k: usize| format!(" {}{} ", &label[..cuts[k]], g.ellipsis);
        let (mut lo, mut hi) = (0, cuts.len() - 1);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if make(mid).width() <= max_text {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        text = make(lo);
        if text.width() > max_text {
            // Even the bare ellipsis does not fit (a width too small for any label).
            text = " ".repeat(max_text);
        }
    }
    text
}

impl<W: Write> Sink for LadderPrinter<W> {
    fn event(&mut self, ev: &Event<'_>) -> io::Result<bool> {
        let Some(c) = ev.conn else { return Ok(true) };
        if let EventKind::End = ev.kind {
            if let Some(d) = self.conns.get(&c.id) {
                self.order.remove(&d.seq);
                if self.live {
                    let d = self.conns.remove(&c.id).expect("found above");
                    self.held -= d.cost();
                } else {
                    self.print(c.id)?;
                }
            }
            self.undrawn_ids.remove(&c.id);
            return Ok(true);
        }
        let Some(label) = self.label(ev) else {
            return Ok(true);
        };
        let dir = if matches!(ev.kind, EventKind::Gap(_)) {
            None
        } else {
            Some(ev.dir)
        };
        let label = keep(label, self.g);
        if !self.conns.contains_key(&c.id) {
            let d = Diagram {
                seq: self.started + 1,
                id: c.id,
                client: c.client_str().to_string(),
                server: c.server_str().to_string(),
                label: None,
                start: ev.ts,
                rows: Vec::new(),
                dropped: 0,
                drawn: 0,
            };
            if self.held + d.cost() > MAX_HELD || self.undrawn_ids.contains(&c.id) {
                if self.undrawn_ids.insert(c.id) {
                    self.undrawn.0 += 1;
                }
                self.undrawn.1 += 1;
                return Ok(true);
            }
            self.started += 1;
            self.order.insert(self.started, c.id);
            self.held += d.cost();
            self.conns.insert(c.id, d);
        }
        let d = self.conns.get_mut(&c.id).expect("inserted above");
        let named = match ev.label {
            Some(l) if d.label.as_deref() != Some(l) => {
                // Names are short (the annotator keeps at most 64 bytes).
                let before = d.label.as_ref().map_or(0, String::len);
                d.label = Some(l.to_string());
                self.held = self.held + l.len() - before;
                true
            }
            _ => false,
        };
        if self.live {
            let mut out = String::new();
            let d = &self.conns[&c.id];
            if self.last_live.is_none() {
                out.push_str(&d.title());
                out.push('\n');
            } else if d.drawn == 0 || named {
                // A new connection, or one that now has a name: say which it is.
                out.push('\n');
                out.push_str(&d.title());
                out.push('\n');
            }
            self.row(d, ev.ts, dir, &label, &mut out);
            self.last_live = Some(c.id);
            // Nothing is kept but the connection's start and name.
            if let Some(d) = self.conns.get_mut(&c.id) {
                d.drawn += 1;
            }
            return self.out.write_all(out.as_bytes()).map(|_| true);
        }
        let d = self.conns.get_mut(&c.id).expect("inserted above");
        let cost = label.len() + ROW_COST;
        if d.rows.len() < MAX_ROWS && self.rows < MAX_TOTAL_ROWS && self.held + cost <= MAX_HELD {
            d.rows.push((ev.ts, dir, label));
            self.rows += 1;
            self.held += cost;
        } else {
            d.dropped += 1;
        }
        Ok(true)
    }

    fn finish(&mut self) -> io::Result<()> {
        LadderPrinter::finish(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_exactly_80_columns() {
        for g in [&UNICODE, &ASCII] {
            for dir in [Some(Dir::C2S), Some(Dir::S2C), None] {
                for label in [
                    "SYN",
                    "text \"a very long message that goes on and on and on and on and on and on and on\"",
                    "mynick → (private): <b>你对second说: </b>psst second, this one is private 👋👋",
                    "second → all: привет, mynick 👋",
                ] {
                    let a = arrow(g, dir, label, WIDTH - TIME_COL - 2);
                    assert_eq!(
                        unicode_width::UnicodeWidthStr::width(a.as_str()) + TIME_COL + 2,
                        WIDTH,
                        "{a}"
                    );
                }
            }
        }
    }
    /// Labels whose width as a string differs from the sum of their characters' widths, or
    /// that are mostly zero-width: each cut must still leave a row of exactly 80 columns,
    /// measured the way a test (and a terminal, roughly) measures the whole row.
    #[test]
    fn tricky_labels_are_cut_to_exactly_80_columns() {
        use unicode_width::UnicodeWidthStr;
        let heart = "\u{2764}\u{fe0f}";
        let family = "\u{1f468}\u{200d}\u{1f469}\u{200d}\u{1f467}\u{200d}\u{1f466}";
        let mut labels: Vec<String> = Vec::new();
        // The crash: 28 or more hearts (width 2 each as a string, 1 + 0 by characters).
        for n in [27, 28, 29, 33, 40, 100, 500] {
            labels.push(format!("text \"{}\"", heart.repeat(n)));
            labels.push(heart.repeat(n));
        }
        for n in [10, 20, 40] {
            labels.push(format!("text \"{}\"", family.repeat(n)));
            // Combining marks: many characters, few columns.
            labels.push("e\u{301}\u{302}\u{303}".repeat(n * 3));
            // CJK: two columns each, so an odd budget leaves one column to fill.
            labels.push(format!("text \"{}\"", "你好世界".repeat(n)));
            labels.push(format!("x{}", "漢".repeat(n)));
            // Text presentation selector narrows an emoji; a lone selector; mixtures.
            labels.push("\u{1f600}\u{fe0e}".repeat(n));
            labels.push(format!("\u{fe0f}{}", "a\u{fe0f}\u{2764}".repeat(n)));
            labels.push(format!("{}{}", heart.repeat(n), "你".repeat(n)));
            labels.push("\u{1f1fa}\u{1f1f8}".repeat(n)); // flags: regional indicator pairs
            labels.push("\u{1f44b}\u{1f3fd}".repeat(n)); // skin tone modifier
        }
        // Control characters as the printers show them, after escaping.
        let mut esc = String::new();
        escape::text(&"\u{1}\u{1b}[31m\u{7f}\u{202e}\r\n\t".repeat(20), &mut esc);
        labels.push(esc);
        labels.push(String::new());
        for g in [&UNICODE, &ASCII] {
            for dir in [Some(Dir::C2S), Some(Dir::S2C), None] {
                for label in &labels {
                    let a = arrow(g, dir, label, WIDTH - TIME_COL - 2);
                    let row = format!("{:>11} {}{a}{}", "+0.000000", g.bar, g.bar);
                    assert_eq!(row.width(), WIDTH, "{row}");
                    // Whatever was kept is a prefix of the label.
                    let body = a.trim_matches(|c| c == g.line || c == g.left || c == g.right);
                    let kept = body.trim().trim_end_matches(g.ellipsis);
                    assert!(
                        label.starts_with(kept),
                        "{kept:?} not a prefix of {label:?}"
                    );
                }
            }
        }
    }

    /// Narrow widths (not used by the printer, but `arrow` must not underflow on them).
    #[test]
    fn narrow_rows_do_not_underflow() {
        for w in 0..12 {
            for dir in [Some(Dir::C2S), Some(Dir::S2C), None] {
                let _ = arrow(&UNICODE, dir, &"\u{2764}\u{fe0f}".repeat(30), w);
            }
        }
    }

    fn ev<'a>(conn: &'a crate::event::ConnInfo, kind: EventKind<'a>) -> Event<'a> {
        Event {
            ts: Timestamp::default(),
            conn: Some(conn),
            dir: Dir::C2S,
            kind,
            app: None,
            label: None,
        }
    }

    fn conn(id: u64) -> crate::event::ConnInfo {
        let a = std::net::SocketAddr::from(([10, 0, 0, 1], 40000));
        let b = std::net::SocketAddr::from(([10, 0, 0, 2], 80));
        crate::event::ConnInfo {
            id,
            client: a,
            server: b,
        }
    }

    /// Rows are bounded by bytes, not only by count: labels of zero-width characters (which
    /// no cut by width shortens) and many connections that never end stay under the bound,
    /// and what was not drawn is said.
    #[test]
    fn diagrams_held_are_bounded_in_bytes() {
        let mut p = LadderPrinter::new(Vec::new(), true);
        let path = "\u{301}".repeat(2_000);
        let req = crate::event::HttpRequest {
            method: "GET".into(),
            path,
            version: 1,
            headers: Vec::new(),
            websocket_upgrade: false,
            key: None,
            head_len: 0,
        };
        for id in 1..=1000 {
            let c = conn(id);
            for _ in 0..40 {
                p.event(&ev(&c, EventKind::HttpRequest(&req))).unwrap();
                assert!(p.held() <= MAX_HELD);
            }
        }
        p.finish().unwrap();
        let out = String::from_utf8(p.out).unwrap();
        assert!(out.contains("connections with"), "the undrawn are counted");
        assert!(out.contains("more events not drawn"));
        assert!(out.contains("connection 1:"));
    }
}
