//! Timestamp pieces shared by the formats: fixed-width digits, month names,
//! calendar validation and RFC 3339.

use logpipe_schemas::time::{micros_from_parts, Micros};

use super::R;

#[inline(always)]
fn err<'a, O>() -> R<'a, O> {
    Err(nom::Err::Error(()))
}

/// Exactly two ASCII digits.
#[inline(always)]
pub(crate) fn dig2(i: &[u8]) -> R<'_, u32> {
    match i {
        [a @ b'0'..=b'9', b @ b'0'..=b'9', rest @ ..] => Ok((rest, (a - b'0') as u32 * 10 + (b - b'0') as u32)),
        _ => err(),
    }
}

/// Exactly four ASCII digits.
#[inline(always)]
pub(crate) fn dig4(i: &[u8]) -> R<'_, u32> {
    let (i, hi) = dig2(i)?;
    let (i, lo) = dig2(i)?;
    Ok((i, hi * 100 + lo))
}

/// One literal byte.
#[inline(always)]
pub(crate) fn byte(c: u8) -> impl Fn(&[u8]) -> R<'_, u8> {
    move |i: &[u8]| match i.split_first() {
        Some((&b, rest)) if b == c => Ok((rest, b)),
        _ => err(),
    }
}

/// A three-letter English month abbreviation (`Jan`..`Dec`, case as written
/// by syslog and web servers: first letter upper case) to 1..=12.
#[inline]
pub(crate) fn month_abbr(i: &[u8]) -> R<'_, u32> {
    if i.len() < 3 {
        return err();
    }
    let m = match &i[..3] {
        b"Jan" => 1,
        b"Feb" => 2,
        b"Mar" => 3,
        b"Apr" => 4,
        b"May" => 5,
        b"Jun" => 6,
        b"Jul" => 7,
        b"Aug" => 8,
        b"Sep" => 9,
        b"Oct" => 10,
        b"Nov" => 11,
        b"Dec" => 12,
        _ => return err(),
    };
    Ok((&i[3..], m))
}

pub(crate) fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

pub(crate) fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Calendar and clock ranges: month 1-12, day valid for the month, hour 0-23,
/// minute 0-59, second 0-59 (no leap second: RFC 5424 forbids it, and the
/// other formats never write one).
pub(crate) fn valid_civil(year: i64, month: u32, day: u32, hour: u32, minute: u32, second: u32) -> bool {
    (1..=12).contains(&month)
        && day >= 1
        && day <= days_in_month(year, month)
        && hour < 24
        && minute < 60
        && second < 60
}

/// How strictly to read RFC 3339.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rfc3339 {
    /// RFC 5424's TIMESTAMP: upper-case `T` and `Z`, at most 6 fraction digits.
    Syslog,
    /// Timestamps found in JSON / logfmt: also `t`/`z`/space separators and up
    /// to 9 fraction digits (truncated to microseconds).
    Lenient,
}

/// Why an RFC 3339 timestamp was rejected.
pub(crate) enum TsError {
    Syntax,
    Range,
}

/// Parses `YYYY-MM-DDThh:mm:ss[.frac](Z|±hh:mm)` at the start of `i`.
#[inline]
pub(crate) fn rfc3339(i: &[u8], mode: Rfc3339) -> Result<(&[u8], Micros), TsError> {
    let syn = |_| TsError::Syntax;
    // `YYYY-MM-DDThh:mm:ss` has a fixed layout: check it as one 19-byte
    // block (separators, then digits) instead of step by step.
    let Some(head) = i.first_chunk::<19>() else {
        return Err(TsError::Syntax);
    };
    let t_ok = match head[10] {
        b'T' => true,
        b't' | b' ' => mode == Rfc3339::Lenient,
        _ => false,
    };
    // `&` rather than `&&`: no early exit, so the checks unroll branch-free.
    let mut ok = t_ok & (head[4] == b'-') & (head[7] == b'-') & (head[13] == b':') & (head[16] == b':');
    for k in [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18] {
        ok &= head[k].wrapping_sub(b'0') < 10;
    }
    if !ok {
        return Err(TsError::Syntax);
    }
    let d2 = |k: usize| (head[k] - b'0') as u32 * 10 + (head[k + 1] - b'0') as u32;
    let (year, month, day) = (d2(0) * 100 + d2(2), d2(5), d2(8));
    let (hour, minute, second) = (d2(11), d2(14), d2(17));
    let mut i = &i[19..];
    let mut micros = 0u32;
    if let Some((b'.', rest)) = i.split_first() {
        let n = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let max = if mode == Rfc3339::Syslog { 6 } else { 9 };
        if n == 0 || n > max {
            return Err(TsError::Syntax);
        }
        const SCALE: [u32; 6] = [100_000, 10_000, 1_000, 100, 10, 1];
        for (&d, scale) in rest[..n.min(6)].iter().zip(SCALE) {
            micros += (d - b'0') as u32 * scale;
        }
        i = &rest[n..];
    }
    let (i, offset) = match i.split_first() {
        Some((b'Z', rest)) => (rest, 0i32),
        Some((b'z', rest)) if mode == Rfc3339::Lenient => (rest, 0),
        Some((&sign @ (b'+' | b'-'), rest)) => {
            let (rest, oh) = dig2(rest).map_err(syn)?;
            let (rest, _) = byte(b':')(rest).map_err(syn)?;
            let (rest, om) = dig2(rest).map_err(syn)?;
            if oh > 23 || om > 59 {
                return Err(TsError::Range);
            }
            let secs = (oh * 3600 + om * 60) as i32;
            (rest, if sign == b'-' { -secs } else { secs })
        }
        _ => return Err(TsError::Syntax),
    };
    if !valid_civil(year as i64, month, day, hour, minute, second) {
        return Err(TsError::Range);
    }
    Ok((
        i,
        micros_from_parts(year as i64, month, day, hour, minute, second, micros, offset),
    ))
}

/// A whole string that is an RFC 3339 timestamp (lenient), else `None`.
pub(crate) fn rfc3339_exact(s: &str) -> Option<Micros> {
    match rfc3339(s.as_bytes(), Rfc3339::Lenient) {
        Ok((b"", ts)) => Some(ts),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logpipe_schemas::time::rfc3339 as fmt;

    fn p(s: &str, m: Rfc3339) -> Option<String> {
        match rfc3339(s.as_bytes(), m) {
            Ok((b"", ts)) => Some(fmt(ts)),
            _ => None,
        }
    }

    #[test]
    fn rfc3339_forms() {
        let s = Rfc3339::Syslog;
        assert_eq!(p("1985-04-12T23:20:50.52Z", s).unwrap(), "1985-04-12T23:20:50.520000Z");
        assert_eq!(
            p("1985-04-12T19:20:50.52-04:00", s).unwrap(),
            "1985-04-12T23:20:50.520000Z"
        );
        assert_eq!(p("2003-10-11T22:14:15.003Z", s).unwrap(), "2003-10-11T22:14:15.003000Z");
        assert_eq!(
            p("2003-08-24T05:14:15.000003-07:00", s).unwrap(),
            "2003-08-24T12:14:15.000003Z"
        );
        assert_eq!(
            p("2024-02-29T00:00:00+05:30", s).unwrap(),
            "2024-02-28T18:30:00.000000Z"
        );
        for bad in [
            "2003-08-24T05:14:15.000000003-07:00",
            "2003-13-24T05:14:15Z",
            "2023-02-29T05:14:15Z",
            "2003-08-24t05:14:15Z",
            "2003-08-24T05:14:15z",
            "2003-08-24T24:00:00Z",
            "2003-08-24T05:14:60Z",
            "2003-08-24T05:14:15",
            "2003-08-24T05:14:15.Z",
            "2003-08-24T05:14:15+0700",
            "2003-8-24T05:14:15Z",
        ] {
            assert_eq!(p(bad, s), None, "{bad}");
        }
        let l = Rfc3339::Lenient;
        assert_eq!(
            p("2003-08-24 05:14:15.123456789z", l).unwrap(),
            "2003-08-24T05:14:15.123456Z"
        );
    }

    #[test]
    fn months_and_leap_years() {
        assert_eq!(month_abbr(b"Dec 1").unwrap(), (&b" 1"[..], 12));
        assert!(month_abbr(b"dec").is_err());
        assert!(month_abbr(b"De").is_err());
        assert_eq!(days_in_month(2000, 2), 29);
        assert_eq!(days_in_month(1900, 2), 28);
        assert_eq!(days_in_month(2024, 13), 0);
    }
}
