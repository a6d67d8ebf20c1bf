//! Fitting lines to a terminal: display widths (escape sequences of colour take none) and
//! cutting at a column, so that a long payload is one row, not hundreds.

use unicode_width::UnicodeWidthChar;

/// Columns `s` takes on a terminal, the SGR colour sequences (`ESC [ … m`) not counted.
pub fn visible(s: &str) -> usize {
    let mut w = 0;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // Colour sequences are written by the palette only: `ESC [ params m`.
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
            continue;
        }
        w += c.width().unwrap_or(0);
    }
    w
}

/// The longest start of `s` (no colour in it) that takes at most `cols` columns.
pub fn cut(s: &str, cols: usize) -> &str {
    let mut w = 0;
    for (i, c) in s.char_indices() {
        w += c.width().unwrap_or(0);
        if w > cols {
            return &s[..i];
        }
    }
    s
}

/// The length in bytes of the longest start of `s` that takes at most `cols` columns, colour
/// sequences kept whole and not counted.
pub fn cut_painted(s: &str, cols: usize) -> usize {
    let mut w = 0;
    let mut esc = false;
    for (i, c) in s.char_indices() {
        if esc {
            esc = c != 'm';
            continue;
        }
        if c == '\x1b' {
            esc = true;
            continue;
        }
        w += c.width().unwrap_or(0);
        if w > cols {
            return i;
        }
    }
    s.len()
}

/// How many payload bytes a preview `cols` columns wide needs: a column is at most 4 bytes
/// of UTF-8 (an escape shows 1 byte in 4 columns; only zero-width marks take bytes without
/// columns, and then the preview is merely shorter). Saves escaping a 100 KB payload to show
/// 60 columns of it.
pub fn preview_bytes(cols: usize) -> usize {
    cols.saturating_mul(4).saturating_add(64)
}

/// The width of the terminal on standard output: its window size, else `COLUMNS`, else
/// 80. `None` when standard output is not a terminal.
pub fn terminal() -> Option<usize> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        return None;
    }
    // SAFETY: TIOCGWINSZ on fd 1 fills a winsize of the right size, or fails.
    let cols = unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(1, libc::TIOCGWINSZ, &mut ws) == 0 {
            ws.ws_col as usize
        } else {
            0
        }
    };
    if cols > 0 {
        return Some(cols);
    }
    let env = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse().ok());
    Some(env.filter(|&c: &usize| c > 0).unwrap_or(80))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_and_cuts() {
        assert_eq!(visible("\x1b[1;32m → \x1b[0mab"), 5);
        assert_eq!(visible("привет 👋"), 9);
        assert_eq!(cut("привет 👋", 8), "привет ");
        assert_eq!(cut("ab对c", 3), "ab");
        assert_eq!(cut("abc", 10), "abc");
        let painted = "\x1b[2mab\x1b[0mcd";
        assert_eq!(&painted[..cut_painted(painted, 3)], "\x1b[2mab\x1b[0mc");
    }
}
