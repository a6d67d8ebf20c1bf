//! Timestamps as text, in UTC so output does not depend on where it is printed.

use crate::capture::Timestamp;
use std::fmt::Write;

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn frac(ts: Timestamp, out: &mut String) {
    if ts.nano_precision {
        let _ = write!(out, ".{:09}", ts.nanos);
    } else {
        let _ = write!(out, ".{:06}", ts.nanos / 1000);
    }
}

/// `HH:MM:SS.ffffff`, like tcpdump's default.
pub fn clock(ts: Timestamp, out: &mut String) {
    let s = ts.secs.rem_euclid(86_400);
    let _ = write!(out, "{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
    frac(ts, out);
}

/// RFC 3339 in UTC: `2026-11-24T17:50:00.524412Z`.
pub fn rfc3339(ts: Timestamp, out: &mut String) {
    let (y, m, d) = civil(ts.secs.div_euclid(86_400));
    let _ = write!(out, "{y:04}-{m:02}-{d:02}T");
    clock(ts, out);
    out.push('Z');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        let mut o = String::new();
        rfc3339(Timestamp::from_micros(1_764_056_651, 341_570), &mut o);
        assert_eq!(o, "2025-11-25T07:44:11.341570Z");
        o.clear();
        rfc3339(Timestamp::from_nanos(951_782_400, 5), &mut o);
        assert_eq!(o, "2000-02-29T00:00:00.000000005Z");
        o.clear();
        rfc3339(Timestamp::from_micros(0, 0), &mut o);
        assert_eq!(o, "1970-01-01T00:00:00.000000Z");
    }
}
