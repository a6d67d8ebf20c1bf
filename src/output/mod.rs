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
    pub enabled: bool,
    pub time: Style,
    pub addr: Style,
    pub c2s: Style,
    pub s2c: Style,
    pub tcp: Style,
    pub http: Style,
    pub opcode: Style,
    pub control: Style,
    pub flag: Style,
    pub warn: Style,
    pub dim: Style,
}

impl Palette {
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
