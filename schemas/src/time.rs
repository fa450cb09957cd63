//! Calendar arithmetic for timestamps on the hot path.
//!
//! Every document gets an RFC 3339 `@timestamp` and a daily index name, at up to
//! millions of lines a second; these plain functions do that without
//! allocation or time-zone databases (everything logpipe writes is UTC).

/// Microseconds since the Unix epoch, UTC.
pub type Micros = i64;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`). `month` is 1..=12.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`]: (year, month, day).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    (y, m, d)
}

/// Builds a UTC timestamp from calendar fields and an offset from UTC in
/// seconds (east positive), as found in a log line.
// Eight calendar fields are what a log line gives; a struct would only rename them.
#[allow(clippy::too_many_arguments)]
pub fn micros_from_parts(
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    micros: u32,
    utc_offset_secs: i32,
) -> Micros {
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + (hour * 3600 + minute * 60 + second) as i64 - utc_offset_secs as i64;
    secs * 1_000_000 + micros as i64
}

/// Appends `YYYY-MM-DDTHH:MM:SS.ffffffZ` (always six fraction digits, so the
/// strings sort as the instants do).
///
/// Written twice per document at millions of documents a second, so the
/// `YYYY-MM-DDT` part is cached per thread for the last two days seen (lines
/// come in time order, and a document's `@timestamp` and `event.ingested`
/// may fall on different days: a one-day cache missed on every call then).
/// `HH:MM:SS` and `.ffffffZ` are each composed in a register from a digit-pair
/// table and written with one 8-byte store: building the text in a stack
/// buffer with small stores and copying it out made the copy wait (store
/// forwarding fails when a load spans several earlier stores).
pub fn write_rfc3339(out: &mut Vec<u8>, ts: Micros) {
    let secs = ts.div_euclid(1_000_000);
    let frac = ts.rem_euclid(1_000_000) as u32;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u32;
    out.extend_from_slice(&date_prefix(days));
    let hms = pair(sod / 3600) as u64
        | (b':' as u64) << 16
        | (pair(sod / 60 % 60) as u64) << 24
        | (b':' as u64) << 40
        | (pair(sod % 60) as u64) << 48;
    let frac = b'.' as u64
        | (pair(frac / 10_000) as u64) << 8
        | (pair(frac / 100 % 100) as u64) << 24
        | (pair(frac % 100) as u64) << 40
        | (b'Z' as u64) << 56;
    out.extend_from_slice(&hms.to_le_bytes());
    out.extend_from_slice(&frac.to_le_bytes());
}

/// Two ASCII digits of `v` (< 100) as a little-endian `u16`, from the table.
#[inline(always)]
fn pair(v: u32) -> u16 {
    let v = v as usize;
    u16::from_le_bytes([DIGITS2[2 * v], DIGITS2[2 * v + 1]])
}

/// `YYYY-MM-DDT` of a day number, from a two-entry per-thread cache.
fn date_prefix(days: i64) -> [u8; 11] {
    use std::cell::Cell;
    // Separate cells, so a hit reads one day number and one prefix instead
    // of copying the whole cache in and out.
    struct Dates {
        days: [Cell<i64>; 2],
        text: [Cell<[u8; 11]>; 2],
    }
    thread_local! {
        static LAST: Dates = const {
            Dates {
                days: [Cell::new(i64::MIN), Cell::new(i64::MIN)],
                text: [Cell::new([0; 11]), Cell::new([0; 11])],
            }
        };
    }
    LAST.with(|c| {
        if c.days[0].get() == days {
            return c.text[0].get();
        }
        if c.days[1].get() == days {
            return c.text[1].get();
        }
        let (y, mo, dd) = civil_from_days(days);
        let mut p = *b"0000-00-00T";
        let y = y.clamp(0, 9999) as u32;
        put2(&mut p, 0, y / 100);
        put2(&mut p, 2, y % 100);
        put2(&mut p, 5, mo);
        put2(&mut p, 8, dd);
        c.days[1].set(c.days[0].get());
        c.text[1].set(c.text[0].get());
        c.days[0].set(days);
        c.text[0].set(p);
        p
    })
}

/// Two decimal digits of `v` (< 100) at `b[at..at + 2]`, from a table.
#[inline(always)]
fn put2(b: &mut [u8], at: usize, v: u32) {
    let v = v as usize;
    b[at..at + 2].copy_from_slice(&DIGITS2[2 * v..2 * v + 2]);
}

/// "00" to "99".
pub(crate) const DIGITS2: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// RFC 3339 string of a timestamp; convenience for code off the hot path.
pub fn rfc3339(ts: Micros) -> String {
    let mut out = Vec::with_capacity(27);
    write_rfc3339(&mut out, ts);
    String::from_utf8(out).expect("ASCII")
}

/// Expands an index-name pattern with the event's UTC date: `%Y`, `%m`, `%d`
/// are replaced, everything else is kept (`logpipe-%Y.%m.%d`).
pub fn expand_date_pattern(pattern: &str, ts: Micros) -> String {
    let (y, m, d) = civil_from_days(ts.div_euclid(1_000_000).div_euclid(86_400));
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Y') => out.push_str(&format!("{y:04}")),
            Some('m') => out.push_str(&format!("{m:02}")),
            Some('d') => out.push_str(&format!("{d:02}")),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        for days in [-800_000i64, -1, 0, 1, 59, 365, 10_957, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn formats_rfc3339_in_utc() {
        // 2003-10-11T22:14:15.003Z, the RFC 5424 example.
        let ts = micros_from_parts(2003, 10, 11, 22, 14, 15, 3_000, 0);
        assert_eq!(rfc3339(ts), "2003-10-11T22:14:15.003000Z");
        // An offset of -07:00 moves the instant 7 hours later in UTC.
        let ts = micros_from_parts(2003, 8, 24, 5, 14, 15, 3, -7 * 3600);
        assert_eq!(rfc3339(ts), "2003-08-24T12:14:15.000003Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999999Z");
    }

    #[test]
    fn day_cache_follows_the_day() {
        // Alternate days so the per-thread date cache must be refreshed.
        let a = micros_from_parts(2024, 2, 29, 23, 59, 59, 999_999, 0);
        let b = a + 1;
        assert_eq!(rfc3339(a), "2024-02-29T23:59:59.999999Z");
        assert_eq!(rfc3339(b), "2024-03-01T00:00:00.000000Z");
        assert_eq!(rfc3339(a), "2024-02-29T23:59:59.999999Z");
        assert_eq!(
            rfc3339(micros_from_parts(9999, 12, 31, 1, 2, 3, 40, 0)),
            "9999-12-31T01:02:03.000040Z"
        );
    }

    #[test]
    fn expands_index_patterns() {
        let ts = micros_from_parts(2026, 1, 2, 23, 0, 0, 0, 0);
        assert_eq!(expand_date_pattern("logpipe-%Y.%m.%d", ts), "logpipe-2026.01.02");
        assert_eq!(expand_date_pattern("x-%q-%", ts), "x-%q-%");
    }
}
