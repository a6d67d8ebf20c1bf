//! Making payload bytes safe to show. A packet must never drive the user's terminal: every
//! control character, escape sequence, bidi override and invisible formatting character is
//! shown as a visible escape. JSON strings are escaped per RFC 8259 and always valid UTF-8.

use std::fmt::Write;

/// Characters that are printable in the Unicode sense but reorder or hide text.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00ad}' | '\u{061c}' | '\u{180e}'
        | '\u{200b}'..='\u{200f}'
        | '\u{2028}'..='\u{202e}'
        | '\u{2060}'..='\u{206f}'
        | '\u{feff}'
        | '\u{fff9}'..='\u{fffb}'
        | '\u{e0000}'..='\u{e007f}')
}

/// Appends `s` for a terminal: one message stays one line, nothing is interpreted.
pub fn text(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x1b' => out.push_str("\\e"),
            c if (c as u32) < 0x20 || c == '\x7f' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if ('\u{80}'..='\u{9f}').contains(&c) || invisible(c) => {
                let _ = write!(out, "\\u{{{:04x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// Appends bytes that may not be UTF-8: valid runs as [`text`], other bytes as `\xNN`.
pub fn bytes(mut b: &[u8], out: &mut String) {
    loop {
        match std::str::from_utf8(b) {
            Ok(s) => return text(s, out),
            Err(e) => {
                let (good, bad) = b.split_at(e.valid_up_to());
                text(std::str::from_utf8(good).unwrap_or(""), out);
                let n = e.error_len().unwrap_or(bad.len()).max(1).min(bad.len());
                for &x in &bad[..n] {
                    let _ = write!(out, "\\x{x:02x}");
                }
                b = &bad[n..];
                if b.is_empty() {
                    return;
                }
            }
        }
    }
}

/// Appends `s` as a JSON string literal, quotes included.
pub fn json_str(s: &str, out: &mut String) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: Option<&str> = match b {
            b'"' => Some("\\\""),
            b'\\' => Some("\\\\"),
            b'\n' => Some("\\n"),
            b'\r' => Some("\\r"),
            b'\t' => Some("\\t"),
            0..=0x1f | 0x7f => None,
            _ => continue,
        };
        out.push_str(&s[start..i]);
        match esc {
            Some(e) => out.push_str(e),
            None => {
                let _ = write!(out, "\\u{:04x}", b);
            }
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Lowercase hex of `b`.
pub fn hex(b: &[u8], out: &mut String) {
    const H: &[u8; 16] = b"0123456789abcdef";
    for &x in b {
        out.push(H[(x >> 4) as usize] as char);
        out.push(H[(x & 15) as usize] as char);
    }
}

/// `tcpdump -X` style: offset, 16 bytes in hex pairs, then ASCII with dots.
pub fn hexdump(b: &[u8], indent: &str, out: &mut String) {
    for (i, row) in b.chunks(16).enumerate() {
        let _ = write!(out, "{indent}0x{:04x}:  ", i * 16);
        for j in 0..16 {
            match row.get(j) {
                Some(x) => {
                    let _ = write!(out, "{x:02x}");
                }
                None => out.push_str("  "),
            }
            if j % 2 == 1 {
                out.push(' ');
            }
        }
        out.push(' ');
        for &x in row {
            out.push(if (0x20..0x7f).contains(&x) {
                x as char
            } else {
                '.'
            });
        }
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> String {
        let mut o = String::new();
        text(s, &mut o);
        o
    }

    #[test]
    fn terminal_title_sequence_is_visible() {
        assert_eq!(t("\x1b]0;pwned\x07"), "\\e]0;pwned\\x07");
        assert_eq!(t("a\nb\r\tc\x7f"), "a\\nb\\r\\tc\\x7f");
        assert_eq!(t("\u{9b}31m"), "\\u{009b}31m");
        assert_eq!(t("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert_eq!(t("zero\u{200b}width"), "zero\\u{200b}width");
        assert_eq!(t("привет 👋"), "привет 👋");
    }

    #[test]
    fn invalid_utf8_bytes_are_hex() {
        let mut o = String::new();
        bytes(b"ok\xff\xfe\xe2\x82", &mut o);
        assert_eq!(o, "ok\\xff\\xfe\\xe2\\x82");
    }

    #[test]
    fn json_escapes_controls() {
        let mut o = String::new();
        json_str("a\"b\\c\n\x1b\x7f€", &mut o);
        assert_eq!(o, "\"a\\\"b\\\\c\\n\\u001b\\u007f€\"");
    }

    #[test]
    fn hexdump_layout() {
        let mut o = String::new();
        hexdump(b"Hello, world!\x00\x01\x02\x03", "\t", &mut o);
        assert_eq!(
            o,
            "\t0x0000:  4865 6c6c 6f2c 2077 6f72 6c64 2100 0102  Hello, world!...\n\t0x0010:  03                                       .\n"
        );
    }
}
