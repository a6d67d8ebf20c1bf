//! Timestamps as text.
//!
//! [`clock`] and [`rfc3339`] print UTC, so output (JSON in particular) does not depend on
//! where it is printed. [`TimeFormat`] and [`Stamper`] print what tcpdump's `-t` options
//! print, in local time where tcpdump uses local time: the zone comes from `TZ` through the C
//! library's `localtime_r` (after one `tzset`), exactly as tcpdump gets it, so
//! `TZ=Asia/Shanghai`, `TZ=UTC` and POSIX strings such as `TZ=UTC-8` or
//! `TZ=EST5EDT,M3.2.0,M11.1.0` all work.

use crate::capture::Timestamp;
use std::fmt::Write;
use std::sync::Once;

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

/// Which timestamp starts a line, as tcpdump's `-t` options choose.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TimeFormat {
    /// No option: local time of day, `15:44:11.318014`.
    #[default]
    TimeOfDay,
    /// `-t`: no timestamp.
    None,
    /// `-tt`: seconds since the epoch, `1795592651.318014`.
    Epoch,
    /// `-ttt`: time since the previous line, ` 00:00:00.000014` (a leading space, or `-`
    /// when the packet is older than the previous one).
    DeltaPrevious,
    /// `-tttt`: local date and time, `2026-11-25 15:44:11.318014`.
    DateTime,
    /// `-ttttt`: time since the first line, ` 00:00:01.250000`.
    DeltaFirst,
}

impl TimeFormat {
    /// The format for `-t` given `n` times (0: none given); more than five is `-ttttt`, as
    /// tcpdump takes it.
    pub fn from_t_count(n: usize) -> TimeFormat {
        match n {
            0 => TimeFormat::TimeOfDay,
            1 => TimeFormat::None,
            2 => TimeFormat::Epoch,
            3 => TimeFormat::DeltaPrevious,
            4 => TimeFormat::DateTime,
            _ => TimeFormat::DeltaFirst,
        }
    }
}

/// Which clock the local-time formats use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Zone {
    /// The process's zone (`TZ`, else `/etc/localtime`), as tcpdump uses.
    Local,
    /// A fixed offset east of UTC in seconds (`0`: UTC); for tests and `--utc`-like options.
    Fixed(i64),
}

/// A broken-down time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Civil {
    /// The proleptic Gregorian year, astronomically numbered (0 is 1 BCE).
    pub year: i64,
    /// 1 to 12.
    pub month: u32,
    /// Day of the month, from 1.
    pub day: u32,
    /// 0 to 23.
    pub hour: u32,
    /// 0 to 59.
    pub minute: u32,
    /// 0 to 59 (60 only if the C library reports a leap second).
    pub second: u32,
    /// Seconds east of UTC in effect.
    pub utc_offset: i64,
}

/// `secs` since the epoch at a fixed offset east of UTC. Total for every `i64` (the year
/// just gets large).
pub fn civil_at_offset(secs: i64, utc_offset: i64) -> Civil {
    let t = secs.saturating_add(utc_offset);
    let (year, month, day) = civil(t.div_euclid(86_400));
    let s = t.rem_euclid(86_400);
    Civil {
        year,
        month,
        day,
        hour: (s / 3600) as u32,
        minute: (s / 60 % 60) as u32,
        second: (s % 60) as u32,
        utc_offset,
    }
}

/// `secs` in the process's local zone by `localtime_r`, `None` where the C library cannot
/// represent it (a year beyond `int`).
pub fn local_civil(secs: i64) -> Option<Civil> {
    static TZSET: Once = Once::new();
    unsafe extern "C" {
        fn tzset();
    }
    // SAFETY: tzset only reads TZ and the zone files; called once, before any localtime_r.
    TZSET.call_once(|| unsafe { tzset() });
    let t = libc::time_t::try_from(secs).ok()?;
    // SAFETY: all-zero is a valid struct tm.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call; localtime_r is reentrant.
    let r = unsafe { libc::localtime_r(&t, &mut tm) };
    if r.is_null() {
        return None;
    }
    Some(Civil {
        year: i64::from(tm.tm_year) + 1900,
        month: (tm.tm_mon + 1).clamp(1, 12) as u32,
        day: tm.tm_mday.clamp(1, 31) as u32,
        hour: tm.tm_hour.clamp(0, 23) as u32,
        minute: tm.tm_min.clamp(0, 59) as u32,
        // 60 is a leap second (right/ zones).
        second: tm.tm_sec.clamp(0, 60) as u32,
        utc_offset: tm.tm_gmtoff,
    })
}

/// `secs` in `zone`; when the C library cannot convert it, UTC.
pub fn civil_in(secs: i64, zone: Zone) -> Civil {
    match zone {
        Zone::Fixed(off) => civil_at_offset(secs, off),
        Zone::Local => local_civil(secs).unwrap_or_else(|| civil_at_offset(secs, 0)),
    }
}

/// A duration as `HH:MM:SS.ffffff` (hours keep counting past 24, where tcpdump wraps).
fn duration(nanos: u128, nano_precision: bool, out: &mut String) {
    let secs = nanos / 1_000_000_000;
    let frac = (nanos % 1_000_000_000) as u32;
    let _ = write!(
        out,
        "{:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    if nano_precision {
        let _ = write!(out, ".{frac:09}");
    } else {
        let _ = write!(out, ".{:06}", frac / 1000);
    }
}

/// Formats one timestamp. `reference` is the earlier timestamp the delta formats count
/// from (the previous line for `-ttt`, the first for `-ttttt`; `None`: this is the first
/// line, delta zero). Writes nothing for [`TimeFormat::None`]. No separator is added.
pub fn format(
    fmt: TimeFormat,
    ts: Timestamp,
    reference: Option<Timestamp>,
    zone: Zone,
    out: &mut String,
) {
    match fmt {
        TimeFormat::None => {}
        TimeFormat::Epoch => {
            // The sign of the whole value, not of its seconds: -0.5 s is secs -1 + 0.5.
            let n = ts.as_nanos();
            let (sign, a) = if n < 0 { ("-", -n) } else { ("", n) };
            let _ = write!(out, "{sign}{}", a / 1_000_000_000);
            let f = (a % 1_000_000_000) as u32;
            if ts.nano_precision {
                let _ = write!(out, ".{f:09}");
            } else {
                let _ = write!(out, ".{:06}", f / 1000);
            }
        }
        TimeFormat::TimeOfDay | TimeFormat::DateTime => {
            let c = civil_in(ts.secs, zone);
            if fmt == TimeFormat::DateTime {
                let _ = write!(out, "{:04}-{:02}-{:02} ", c.year, c.month, c.day);
            }
            let _ = write!(out, "{:02}:{:02}:{:02}", c.hour, c.minute, c.second);
            frac(ts, out);
        }
        TimeFormat::DeltaPrevious | TimeFormat::DeltaFirst => {
            let d = reference.map_or(0, |r| ts.as_nanos() - r.as_nanos());
            out.push(if d < 0 { '-' } else { ' ' });
            duration(d.unsigned_abs(), ts.nano_precision, out);
        }
    }
}

/// Formats the timestamps of successive lines, remembering the first and previous ones for
/// the delta formats.
#[derive(Clone, Debug)]
pub struct Stamper {
    /// Which of tcpdump's formats is printed.
    pub format: TimeFormat,
    /// The zone of the local-time formats.
    pub zone: Zone,
    first: Option<Timestamp>,
    prev: Option<Timestamp>,
}

impl Stamper {
    /// A stamper that has seen no line yet (the first line's delta is zero).
    pub fn new(format: TimeFormat, zone: Zone) -> Stamper {
        Stamper {
            format,
            zone,
            first: None,
            prev: None,
        }
    }

    /// Appends the line's timestamp (nothing for `-t`); the caller adds the separator.
    pub fn stamp(&mut self, ts: Timestamp, out: &mut String) {
        let reference = match self.format {
            TimeFormat::DeltaFirst => self.first,
            _ => self.prev,
        };
        format(self.format, ts, reference, self.zone, out);
        self.first.get_or_insert(ts);
        self.prev = Some(ts);
    }
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

    fn fmt(f: TimeFormat, ts: Timestamp, r: Option<Timestamp>, off: i64) -> String {
        let mut o = String::new();
        format(f, ts, r, Zone::Fixed(off), &mut o);
        o
    }

    #[test]
    fn tcpdump_formats_at_fixed_offsets() {
        let ts = Timestamp::from_micros(1_795_592_651, 318_014);
        assert_eq!(fmt(TimeFormat::TimeOfDay, ts, None, 0), "07:44:11.318014");
        assert_eq!(
            fmt(TimeFormat::TimeOfDay, ts, None, 8 * 3600),
            "15:44:11.318014"
        );
        assert_eq!(
            fmt(TimeFormat::DateTime, ts, None, 8 * 3600),
            "2026-11-25 15:44:11.318014"
        );
        // West of UTC across midnight and a month boundary.
        let ny = Timestamp::from_micros(1_795_996_800, 5);
        assert_eq!(
            fmt(TimeFormat::DateTime, ny, None, -5 * 3600),
            "2026-11-29 19:00:00.000005"
        );
        assert_eq!(fmt(TimeFormat::None, ts, None, 0), "");
        assert_eq!(fmt(TimeFormat::Epoch, ts, None, 3600), "1795592651.318014");
        assert_eq!(
            fmt(TimeFormat::Epoch, Timestamp::from_nanos(5, 7), None, 0),
            "5.000000007"
        );
        assert_eq!(
            fmt(
                TimeFormat::Epoch,
                Timestamp::from_micros(-1, 500_000),
                None,
                0
            ),
            "-0.500000"
        );
        let later = Timestamp::from_micros(1_795_592_651, 318_028);
        assert_eq!(
            fmt(TimeFormat::DeltaPrevious, later, Some(ts), 0),
            " 00:00:00.000014"
        );
        assert_eq!(
            fmt(TimeFormat::DeltaPrevious, ts, Some(later), 0),
            "-00:00:00.000014"
        );
        assert_eq!(fmt(TimeFormat::DeltaFirst, ts, None, 0), " 00:00:00.000000");
        let much_later = Timestamp::from_micros(1_795_592_651 + 90_061, 318_015);
        assert_eq!(
            fmt(TimeFormat::DeltaFirst, much_later, Some(ts), 0),
            " 25:01:01.000001"
        );
    }

    #[test]
    fn stamper_tracks_first_and_previous() {
        let t = |s, us| Timestamp::from_micros(s, us);
        let run = |f| {
            let mut st = Stamper::new(f, Zone::Fixed(0));
            [t(100, 0), t(101, 500), t(103, 0)]
                .into_iter()
                .map(|ts| {
                    let mut o = String::new();
                    st.stamp(ts, &mut o);
                    o
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            run(TimeFormat::DeltaPrevious),
            [" 00:00:00.000000", " 00:00:01.000500", " 00:00:01.999500"]
        );
        assert_eq!(
            run(TimeFormat::DeltaFirst),
            [" 00:00:00.000000", " 00:00:01.000500", " 00:00:03.000000"]
        );
        assert_eq!(TimeFormat::from_t_count(0), TimeFormat::TimeOfDay);
        assert_eq!(TimeFormat::from_t_count(3), TimeFormat::DeltaPrevious);
        assert_eq!(TimeFormat::from_t_count(9), TimeFormat::DeltaFirst);
    }

    #[test]
    fn extreme_timestamps_do_not_panic() {
        for secs in [i64::MIN, i64::MIN + 1, -1, 0, 1 << 40, i64::MAX] {
            for f in [
                TimeFormat::TimeOfDay,
                TimeFormat::Epoch,
                TimeFormat::DateTime,
                TimeFormat::DeltaFirst,
            ] {
                for zone in [Zone::Local, Zone::Fixed(0), Zone::Fixed(14 * 3600)] {
                    let ts = Timestamp::from_nanos(secs, 999_999_999);
                    let mut o = String::new();
                    format(
                        f,
                        ts,
                        Some(Timestamp::from_nanos(-secs.saturating_add(1), 0)),
                        zone,
                        &mut o,
                    );
                    assert!(!o.is_empty());
                }
            }
        }
        assert_eq!(civil_at_offset(-1, 0).year, 1969);
        assert_eq!(civil_at_offset(-86_400 * 365, 0).year, 1969);
    }
}
