//! Printers: they consume events and write text. No parsing happens here.

pub mod chat;
pub mod chat_view;
pub mod community_id;
pub mod escape;
pub mod explain;
pub mod filter;
pub mod har;
pub mod human;
pub mod json;
pub mod ladder;
pub mod packets;
pub mod redact;
pub mod summary;
pub mod texts;
pub mod time;
pub mod verdict;
pub mod width;

use crate::event::Annotation;
use owo_colors::Style;
use std::borrow::Cow;

/// An annotation's reading as the human views show it in `lang`: translated from its
/// structured form when the language table knows the protocol, else the reader's own text.
pub fn reading_text(lang: texts::Lang, a: &Annotation) -> Cow<'_, str> {
    match app_json(a).and_then(|j| texts::reading(lang, j)) {
        Some(t) => Cow::Owned(t),
        None => Cow::Borrowed(&a.text),
    }
}

/// The structured reading of an annotation (the `app` object of `--json`), from which the
/// views say a reading in another language; none when the reader made no object.
fn app_json(a: &Annotation) -> Option<&serde_json::Value> {
    a.json.is_object().then_some(&a.json)
}

/// Colours, resolved once from `--color`, `NO_COLOR`, `TERM` and isatty. Disabled, every
/// style is plain and nothing but text is written.
#[derive(Clone, Copy, Debug)]
pub struct Palette {
    /// Whether [`paint`](Self::paint) writes ANSI escapes; false, the styles are ignored.
    pub enabled: bool,
    /// Timestamps at the start of a line.
    pub time: Style,
    /// Addresses (`ip:port`) and connection names.
    pub addr: Style,
    /// The client-to-server arrow (` → `).
    pub c2s: Style,
    /// The server-to-client arrow (` ← `).
    pub s2c: Style,
    /// TCP lines (SYN, FIN, RST, …).
    pub tcp: Style,
    /// HTTP request and response lines.
    pub http: Style,
    /// A data frame's or message's opcode (`text`, `binary`).
    pub opcode: Style,
    /// A control frame's opcode (`close`, `ping`, `pong`, RFC 6455 5.5).
    pub control: Style,
    /// Flags and application readings that call for no alarm.
    pub flag: Style,
    /// Violations, refusals, resynchronisations: what went wrong.
    pub warn: Style,
    /// Secondary text: notices, heartbeats, "… more" tails.
    pub dim: Style,
}

impl Palette {
    /// No colour: [`paint`](Self::paint) appends text only (`--color never`, not a tty).
    pub fn plain() -> Self {
        let s = Style::new();
        Palette {
            enabled: false,
            time: s,
            addr: s,
            c2s: s,
            s2c: s,
            tcp: s,
            http: s,
            opcode: s,
            control: s,
            flag: s,
            warn: s,
            dim: s,
        }
    }

    /// The colours of a terminal (`--color always`, or a tty without `NO_COLOR`).
    pub fn colored() -> Self {
        let s = Style::new();
        Palette {
            enabled: true,
            time: s.dimmed(),
            addr: s,
            c2s: s.green().bold(),
            s2c: s.cyan().bold(),
            tcp: s.blue(),
            http: s.magenta(),
            opcode: s.bold(),
            control: s.yellow(),
            flag: s.yellow(),
            warn: s.red().bold(),
            dim: s.dimmed(),
        }
    }

    /// Appends `text` in `style`.
    pub fn paint(&self, style: Style, text: &str, out: &mut String) {
        use std::fmt::Write;
        if self.enabled {
            let _ = write!(out, "{}", style.style(text));
        } else {
            out.push_str(text);
        }
    }
}
