//! Object keys from the configured template, and back.
//!
//! Keys are deterministic (same file, same rotation time, same key), so an
//! upload repeated after a crash overwrites its own object instead of adding a
//! second one.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Timelike, Utc};

/// What a key is made of.
pub struct KeyVars<'a> {
    pub prefix: &'a str,
    pub host: &'a str,
    /// File name of the live file (`app.log`).
    pub file: &'a str,
    pub rotated_at_ms: i64,
    pub fingerprint: &'a str,
    pub ext: &'a str,
}

/// `20261123T081910123Z`: sortable, no characters that need escaping in a key or a file name.
pub fn timestamp(ms: i64) -> String {
    let t = utc(ms);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}{:03}Z",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.timestamp_subsec_millis()
    )
}

/// Inverse of [`timestamp`].
pub fn parse_timestamp(s: &str) -> Option<i64> {
    if s.len() != 19 || !s.ends_with('Z') || s.as_bytes()[8] != b'T' {
        return None;
    }
    let t = chrono::NaiveDateTime::parse_from_str(&s[..18], "%Y%m%dT%H%M%S%3f").ok()?;
    Some(t.and_utc().timestamp_millis())
}

fn utc(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// Fills the template's placeholders (validated with the config).
pub fn render(template: &str, v: &KeyVars<'_>) -> String {
    let t = utc(v.rotated_at_ms);
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            return out;
        };
        match &after[..close] {
            "prefix" => out.push_str(v.prefix.trim_matches('/')),
            "host" => out.push_str(v.host),
            "yyyy" => out.push_str(&format!("{:04}", t.year())),
            "mm" => out.push_str(&format!("{:02}", t.month())),
            "dd" => out.push_str(&format!("{:02}", t.day())),
            "hh" => out.push_str(&format!("{:02}", t.hour())),
            "file" => out.push_str(v.file),
            "rotated_at" => out.push_str(&timestamp(v.rotated_at_ms)),
            "fingerprint" => out.push_str(v.fingerprint),
            "ext" => out.push_str(v.ext),
            other => {
                out.push('{');
                out.push_str(other);
                out.push('}');
            }
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    // An empty prefix must not leave a leading or doubled slash.
    while out.contains("//") {
        out = out.replace("//", "/");
    }
    out.trim_start_matches('/').to_string()
}

/// The longest fixed start of every key the template makes with these values
/// known (for listing with an S3 prefix instead of the whole bucket).
pub fn list_prefix(template: &str, known: &BTreeMap<&str, String>) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else { break };
        match known.get(&after[..close]) {
            Some(v) => out.push_str(v),
            None => return clean(out),
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    clean(out)
}

fn clean(mut s: String) -> String {
    while s.contains("//") {
        s = s.replace("//", "/");
    }
    s.trim_start_matches('/').to_string()
}

/// Reads the placeholders' values back out of a key made by `template`, or
/// `None` if the key does not fit it. A placeholder ends at the first
/// occurrence of the literal text that follows it (values never contain it
/// when that text is `/`; for `.` the shortest match that lets the rest fit wins).
pub fn parse(template: &str, key: &str) -> Option<BTreeMap<String, String>> {
    let parts = split(template);
    let mut out = BTreeMap::new();
    if matches(&parts, key, &mut out) {
        Some(out)
    } else {
        None
    }
}

enum Part<'a> {
    Lit(&'a str),
    Var(&'a str),
}

fn split(t: &str) -> Vec<Part<'_>> {
    let mut parts = Vec::new();
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            parts.push(Part::Lit(&rest[..open]));
        }
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else { break };
        parts.push(Part::Var(&after[..close]));
        rest = &after[close + 1..];
    }
    if !rest.is_empty() {
        parts.push(Part::Lit(rest));
    }
    parts
}

fn matches(parts: &[Part<'_>], key: &str, out: &mut BTreeMap<String, String>) -> bool {
    match parts.split_first() {
        None => key.is_empty(),
        Some((Part::Lit(l), rest)) => {
            // A `{prefix}/` rendered from an empty prefix leaves no slash.
            let l = if out.get("prefix").is_some_and(|p| p.is_empty()) {
                l.trim_start_matches('/')
            } else {
                l
            };
            key.strip_prefix(l).is_some_and(|k| matches(rest, k, out))
        }
        Some((Part::Var(name), rest)) => {
            // Try every split point, shortest value first; values never hold `/`
            // except the prefix.
            for end in 0..=key.len() {
                if !key.is_char_boundary(end) {
                    continue;
                }
                let value = &key[..end];
                if *name != "prefix" && value.contains('/') {
                    break;
                }
                if !plausible(name, value) {
                    continue;
                }
                out.insert(name.to_string(), value.to_string());
                if matches(rest, &key[end..], out) {
                    return true;
                }
            }
            out.remove(*name);
            false
        }
    }
}

/// Values a placeholder can take, so `{file}.{rotated_at}` splits right
/// even when the file name has dots.
fn plausible(name: &str, value: &str) -> bool {
    let digits = |n: usize| value.len() == n && value.bytes().all(|b| b.is_ascii_digit());
    match name {
        "yyyy" => digits(4),
        "mm" | "dd" | "hh" => digits(2),
        "rotated_at" => parse_timestamp(value).is_some(),
        "fingerprint" => value.len() == 16 && value.bytes().all(|b| b.is_ascii_hexdigit()),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "{prefix}/{host}/{yyyy}/{mm}/{dd}/{file}.{rotated_at}.{fingerprint}.zst";

    fn vars() -> KeyVars<'static> {
        KeyVars {
            prefix: "logs/",
            host: "web-1",
            file: "app.access.log",
            rotated_at_ms: 1_795_421_950_123, // 2026-11-23T08:19:10.123Z
            fingerprint: "00ab00cd00ef0011",
            ext: "zst",
        }
    }

    #[test]
    fn renders_the_default_template() {
        assert_eq!(
            render(T, &vars()),
            "logs/web-1/2026/11/23/app.access.log.20261123T081910123Z.00ab00cd00ef0011.zst"
        );
        let empty = KeyVars { prefix: "", ..vars() };
        assert!(render(T, &empty).starts_with("web-1/2026/"));
    }

    #[test]
    fn parses_its_own_keys() {
        let key = render(T, &vars());
        let p = parse(T, &key).unwrap();
        assert_eq!(p["host"], "web-1");
        assert_eq!(p["file"], "app.access.log");
        assert_eq!(p["dd"], "23");
        assert_eq!(parse_timestamp(&p["rotated_at"]), Some(vars().rotated_at_ms));
        assert_eq!(p["fingerprint"], "00ab00cd00ef0011");
        assert!(parse(T, "logs/web-1/manifest.json").is_none());
    }

    #[test]
    fn timestamps_roundtrip() {
        let ms = 1_795_421_950_123;
        assert_eq!(parse_timestamp(&timestamp(ms)), Some(ms));
        assert_eq!(parse_timestamp("20261123T0819"), None);
    }

    #[test]
    fn list_prefix_stops_at_the_first_unknown() {
        let known = BTreeMap::from([("prefix", "logs".to_string()), ("host", "web-1".to_string())]);
        assert_eq!(list_prefix(T, &known), "logs/web-1/");
    }
}
