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
///
/// Eight bytes are tested at a time for one that needs a look: an ASCII control or DEL, or
/// the lead byte of a C1 control or an invisible character (`C2 D8 E1 E2 EF F3`). Anything
/// else, ASCII or any other script, is copied in runs.
pub fn text(s: &str, out: &mut String) {
    out.reserve(s.len());
    let b = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        if let Some(w) = word(b, i) {
            let m = text_special(w);
            if m == 0 {
                i += 8;
                continue;
            }
            // The lowest flagged byte is a true one: skip the ordinary bytes before it.
            i += (m.trailing_zeros() / 8) as usize;
        }
        let c = b[i];
        if c >= 0x20 && c != 0x7f && !special_lead(c) {
            // Printable ASCII, a continuation byte, or a lead byte of nothing special.
            i += 1;
            continue;
        }
        if c < 0x80 {
            out.push_str(&s[start..i]);
            match c {
                b'\n' => out.push_str("\\n"),
                b'\r' => out.push_str("\\r"),
                b'\t' => out.push_str("\\t"),
                0x1b => out.push_str("\\e"),
                _ => {
                    out.push_str("\\x");
                    hex(&[c], out);
                }
            }
            i += 1;
            start = i;
            continue;
        }
        // A lead byte (`s` is UTF-8 and lead bytes are never continuation bytes), so `i` is a
        // character boundary.
        let ch = s[i..].chars().next().unwrap_or('\0');
        let n = ch.len_utf8();
        if ('\u{80}'..='\u{9f}').contains(&ch) || invisible(ch) {
            out.push_str(&s[start..i]);
            let _ = write!(out, "\\u{{{:04x}}}", ch as u32);
            start = i + n;
        }
        i += n;
    }
    out.push_str(&s[start..]);
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Eight bytes from `b[i..]`, when there are eight.
#[inline(always)]
fn word(b: &[u8], i: usize) -> Option<u64> {
    let c: &[u8; 8] = b.get(i..i + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(*c))
}

/// Non-zero when some byte of `x` is below `n` (`n` <= 128): the high bit of such bytes is
/// set. A borrow can only start at a byte below `n`, so the lowest set bit is always a true
/// match (higher ones may be false); an OR of such masks keeps that property.
#[inline(always)]
fn has_less(x: u64, n: u8) -> u64 {
    x.wrapping_sub(LO * n as u64) & !x & HI
}

/// Non-zero when some byte of `x` equals `v`.
#[inline(always)]
fn has_byte(x: u64, v: u8) -> u64 {
    has_less(x ^ (LO * v as u64), 1)
}

/// Non-zero when some byte needs a look in [`text`]: a control, DEL, or a lead byte of a
/// C1 control or an invisible character.
#[inline(always)]
fn text_special(x: u64) -> u64 {
    has_less(x, 0x20)
        | has_byte(x, 0x7f)
        | has_byte(x, 0xc2)
        | has_byte(x, 0xd8)
        | has_byte(x, 0xe1)
        | has_byte(x, 0xe2)
        | has_byte(x, 0xef)
        | has_byte(x, 0xf3)
}

/// Lead bytes of the characters [`text`] escapes beyond ASCII (C1 controls, [`invisible`]).
#[inline(always)]
fn special_lead(c: u8) -> bool {
    matches!(c, 0xc2 | 0xd8 | 0xe1 | 0xe2 | 0xef | 0xf3)
}

/// Non-zero when some byte needs a JSON escape: a control, DEL, `"` or `\\`.
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn json_special(x: u64) -> u64 {
    has_less(x, 0x20) | has_byte(x, 0x7f) | has_byte(x, b'"') | has_byte(x, b'\\')
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

/// Appends `s` as a JSON string literal, quotes included: `"`, `\\`, controls and DEL
/// escaped, all other UTF-8 as is.
pub fn json_str(s: &str, out: &mut String) {
    let b = s.as_bytes();
    // SAFETY: what is appended is `s`'s own bytes, in order, with ASCII escape sequences in
    // place of some ASCII bytes, so `out` holds UTF-8 again when this function returns.
    let v = unsafe { out.as_mut_vec() };
    v.push(b'"');
    let mut i = 0;
    while i < b.len() {
        // Blocks bound the worst-case reservation (every byte a six-byte `\u00XX`), so that
        // the reused line buffer grows with what is written, not six times the payload.
        let end = (i + JSON_BLOCK).min(b.len());
        v.reserve((end - i) * 6 + 16);
        // SAFETY: room for `(end - i) * 6 + 16` bytes was just reserved.
        i = unsafe { json_block(b, i, end, v) };
    }
    v.push(b'"');
}

const JSON_BLOCK: usize = 4096;

/// Each byte's JSON form, little-endian in the low `len` bytes of a word, so that an escape
/// is one unaligned store whatever its length.
struct JsonEsc {
    word: u64,
    len: u8,
}

static JSON_ESC: [JsonEsc; 256] = {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut t = [const { JsonEsc { word: 0, len: 0 } }; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        let (bytes, len): ([u8; 8], u8) = match b {
            b'"' => ([b'\\', b'"', 0, 0, 0, 0, 0, 0], 2),
            b'\\' => ([b'\\', b'\\', 0, 0, 0, 0, 0, 0], 2),
            b'\n' => ([b'\\', b'n', 0, 0, 0, 0, 0, 0], 2),
            b'\r' => ([b'\\', b'r', 0, 0, 0, 0, 0, 0], 2),
            b'\t' => ([b'\\', b't', 0, 0, 0, 0, 0, 0], 2),
            0..=0x1f | 0x7f => (
                [
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[(b >> 4) as usize],
                    HEX[(b & 15) as usize],
                    0,
                    0,
                ],
                6,
            ),
            _ => ([b, 0, 0, 0, 0, 0, 0, 0], 1),
        };
        t[c] = JsonEsc {
            word: u64::from_le_bytes(bytes),
            len,
        };
        c += 1;
    }
    t
};

/// Writes `b`'s byte at `*src` in JSON form at `d`; returns the new write position.
///
/// # Safety
/// `src` is readable and 8 bytes at `d` are writable.
#[inline(always)]
unsafe fn json_byte(src: *const u8, d: *mut u8) -> *mut u8 {
    unsafe {
        let e = &JSON_ESC[*src as usize];
        d.cast::<u64>().write_unaligned(e.word.to_le());
        d.add(e.len as usize)
    }
}

/// Escapes `b[i..end]` onto `v`, returns `end`.
///
/// Sixteen bytes are classified at a time (SSE2, part of every x86-64) into an exact bit mask
/// of the bytes that need an escape. Payloads are often JSON themselves, with a quote every
/// few bytes, so the work per escape must be small and must not wait on memory: the ordinary
/// run before it is one 16-byte store, the escape one 8-byte store, and the write position
/// moves by what was meant. The next load's address comes from the mask, not from the
/// previous escape.
///
/// # Safety
/// `i <= end <= b.len()`, and `(end - i) * 6 + 16` bytes are reserved in `v`.
#[cfg(target_arch = "x86_64")]
unsafe fn json_block(b: &[u8], mut i: usize, end: usize, v: &mut Vec<u8>) -> usize {
    // SAFETY: `d` never passes `start + 6 * (bytes consumed)` (a byte yields at most six), and
    // no store reaches 16 bytes past `d`, so all stores stay within the reservation. Blocks
    // are read in place only while 32 bytes are readable there; the last bytes of the
    // string go through a zero-padded copy. `set_len` covers only bytes written.
    unsafe {
        let start = v.as_mut_ptr().add(v.len());
        let mut d = start;
        let src = b.as_ptr();
        while i + 16 <= end && i + 32 <= b.len() {
            d = json_sse2(src.add(i), 16, d);
            i += 16;
        }
        if i < end {
            let r = end - i;
            let mut pad = [0u8; 48];
            pad[..r].copy_from_slice(&b[i..end]);
            d = json_sse2(pad.as_ptr(), r.min(16), d);
            if r > 16 {
                d = json_sse2(pad.as_ptr().add(16), r - 16, d);
            }
        }
        let len = v.len() + d.offset_from(start) as usize;
        v.set_len(len);
    }
    end
}

/// Escapes the first `n` (at most 16) bytes at `src` to `d`; returns the new write position.
///
/// # Safety
/// 32 bytes at `src` are readable, `6 * n + 16` bytes at `d` writable.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn json_sse2(src: *const u8, n: usize, mut d: *mut u8) -> *mut u8 {
    use std::arch::x86_64::*;
    unsafe {
        let x = _mm_loadu_si128(src.cast());
        let ctl = _mm_cmpeq_epi8(_mm_min_epu8(x, _mm_set1_epi8(0x1f)), x);
        let quote = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'"' as i8));
        let bslash = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'\\' as i8));
        let del = _mm_cmpeq_epi8(x, _mm_set1_epi8(0x7f));
        let sp = _mm_or_si128(_mm_or_si128(quote, bslash), _mm_or_si128(del, ctl));
        let mut m = _mm_movemask_epi8(sp) as u32 & ((1u32 << n) - 1);
        let mut p = 0;
        while m != 0 {
            let k = m.trailing_zeros() as usize;
            _mm_storeu_si128(d.cast(), _mm_loadu_si128(src.add(p).cast()));
            d = json_byte(src.add(k), d.add(k - p));
            p = k + 1;
            m &= m - 1;
        }
        _mm_storeu_si128(d.cast(), _mm_loadu_si128(src.add(p).cast()));
        d.add(n - p)
    }
}

/// Portable form of the above, eight bytes at a time: the lowest flagged byte of a word is
/// a true one, so the ordinary bytes before it are stored as the whole word and the write
/// position moved by what was meant.
///
/// # Safety
/// As for the x86-64 version.
#[cfg(not(target_arch = "x86_64"))]
unsafe fn json_block(b: &[u8], mut i: usize, end: usize, v: &mut Vec<u8>) -> usize {
    // SAFETY: as for the x86-64 version; loads of `b[i..i + 8]` only when `i + 8 <= end`.
    unsafe {
        let start = v.as_mut_ptr().add(v.len());
        let mut d = start;
        let src = b.as_ptr();
        while i + 8 <= end {
            let w = src.add(i).cast::<u64>().read_unaligned();
            d.cast::<u64>().write_unaligned(w);
            let m = json_special(u64::from_le(w));
            if m == 0 {
                i += 8;
                d = d.add(8);
                continue;
            }
            let k = (m.trailing_zeros() / 8) as usize;
            d = json_byte(src.add(i + k), d.add(k));
            i += k + 1;
        }
        while i < end {
            d = json_byte(src.add(i), d);
            i += 1;
        }
        let len = v.len() + d.offset_from(start) as usize;
        v.set_len(len);
    }
    end
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
    use proptest::prelude::*;

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

    /// The plain char-by-char definitions the fast paths must match.
    fn text_ref(s: &str, out: &mut String) {
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

    fn json_ref(s: &str, out: &mut String) {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x20 || c == '\x7f' => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }

    /// Characters near every boundary the word-at-a-time tests draw.
    fn tricky() -> impl Strategy<Value = String> {
        tricky_up_to(64)
    }

    fn tricky_up_to(n: usize) -> impl Strategy<Value = String> {
        let pick = prop::sample::select(vec![
            'a',
            'Z',
            ' ',
            '~',
            '\x7f',
            '\x00',
            '\x1f',
            '\n',
            '\t',
            '\r',
            '\x1b',
            '"',
            '\\',
            '\u{80}',
            '\u{9f}',
            '\u{a0}',
            '\u{ad}',
            '\u{e9}',
            '\u{61c}',
            '\u{180e}',
            '\u{200b}',
            '\u{200f}',
            '\u{2010}',
            '\u{2028}',
            '\u{202e}',
            '\u{2060}',
            '\u{206f}',
            '\u{feff}',
            '\u{fff9}',
            '\u{fffc}',
            '\u{e0000}',
            '\u{e007f}',
            '\u{1f680}',
            'ж',
            '日',
        ]);
        prop::collection::vec(pick, 0..n).prop_map(|v| v.into_iter().collect())
    }

    proptest! {
        #[test]
        fn fast_paths_match_the_definitions(s in tricky(), any in ".{0,40}") {
            for s in [s.as_str(), any.as_str()] {
                let (mut a, mut b) = (String::new(), String::new());
                text(s, &mut a);
                text_ref(s, &mut b);
                prop_assert_eq!(&a, &b);
                let (mut a, mut b) = (String::new(), String::new());
                json_str(s, &mut a);
                json_ref(s, &mut b);
                prop_assert_eq!(&a, &b);
            }
        }

        /// Strings long enough to cross the JSON escaper's 4 KiB blocks, appended after
        /// what a line already holds.
        #[test]
        fn json_str_on_long_strings(s in tricky_up_to(3000), lead in "[a-z\"]{0,20}") {
            let (mut a, mut b) = (lead.clone(), lead.clone());
            json_str(&s, &mut a);
            json_ref(&s, &mut b);
            prop_assert_eq!(&a, &b);
        }
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
