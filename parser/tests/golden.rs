//! The exact ECS documents of a few representative lines per format: field
//! order, escaping (quotes, backslashes, control characters, non-ASCII,
//! invalid UTF-8), timestamps and numbers, byte for byte. The parser and the
//! writer are tuned for speed; this pins down that the output stays the same.
//! (For a whole-corpus check, diff `benches/examples/parse_dump.rs` output
//! before and after a change.)

use logpipe_parser::{parse, Format, LineContext};

/// The contexts of `parse_dump`: a shipper's record, and a bare line.
fn ctx(which: usize) -> LineContext<'static> {
    [
        LineContext {
            ingest: 1_718_452_800_000_000,
            host: Some("shipper-1"),
            path: Some("/var/log/syslog"),
            offset: Some(4096),
        },
        LineContext {
            ingest: 1_700_000_000_123_456,
            host: None,
            path: None,
            offset: None,
        },
    ][which]
}

#[test]
fn documents_are_byte_identical() {
    let cases: &[(Format, usize, &[u8], &str)] = &[
        (
            Format::Rfc5424,
            0,
            b"<165>1 2024-06-15T12:00:01.003Z app-3 api 1234 REQ [req@32473 id=\"f81d4fae\" method=\"GET\" status=\"200\"] request served in 12ms",
            r#"{"@timestamp":"2024-06-15T12:00:01.003000Z","message":"request served in 12ms","event":{"original":"<165>1 2024-06-15T12:00:01.003Z app-3 api 1234 REQ [req@32473 id=\"f81d4fae\" method=\"GET\" status=\"200\"] request served in 12ms","ingested":"2024-06-15T12:00:00.000000Z","dataset":"syslog.rfc5424"},"host":{"name":"shipper-1"},"log":{"file":{"path":"/var/log/syslog"},"offset":4096,"syslog":{"priority":165,"facility":{"code":20},"severity":{"code":5},"version":1,"hostname":"app-3","appname":"api","procid":"1234","msgid":"REQ","structured_data":{"req@32473":{"id":"f81d4fae","method":"GET","status":"200"}}}},"process":{"name":"api","pid":1234}}"#,
        ),
        (
            Format::Rfc5424,
            1,
            b"<13>1 2024-06-15T12:00:02+02:00 db-2 postgres 777 - - checkpoint complete: wrote 42 buffers (0.3%)",
            r#"{"@timestamp":"2024-06-15T10:00:02.000000Z","message":"checkpoint complete: wrote 42 buffers (0.3%)","event":{"original":"<13>1 2024-06-15T12:00:02+02:00 db-2 postgres 777 - - checkpoint complete: wrote 42 buffers (0.3%)","ingested":"2023-11-14T22:13:20.123456Z","dataset":"syslog.rfc5424"},"host":{"name":"db-2"},"log":{"syslog":{"priority":13,"facility":{"code":1},"severity":{"code":5},"version":1,"hostname":"db-2","appname":"postgres","procid":"777"}},"process":{"name":"postgres","pid":777}}"#,
        ),
        (
            Format::Rfc5424,
            0,
            b"<14>1 2024-06-15T12:00:00Z h a - - [x@1 k=\"a\\\"b\\\\c\\]d\" e=\"\xc3\xa9\"] tab\x09here \"q\" \xc3\xa9",
            r#"{"@timestamp":"2024-06-15T12:00:00.000000Z","message":"tab\there \"q\" é","event":{"original":"<14>1 2024-06-15T12:00:00Z h a - - [x@1 k=\"a\\\"b\\\\c\\]d\" e=\"é\"] tab\there \"q\" é","ingested":"2024-06-15T12:00:00.000000Z","dataset":"syslog.rfc5424"},"host":{"name":"shipper-1"},"log":{"file":{"path":"/var/log/syslog"},"offset":4096,"syslog":{"priority":14,"facility":{"code":1},"severity":{"code":6},"version":1,"hostname":"h","appname":"a","structured_data":{"x@1":{"k":"a\"b\\c]d","e":"é"}}}},"process":{"name":"a"}}"#,
        ),
        (
            Format::Rfc3164,
            0,
            b"Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=218.188.2.4 \x0d",
            r#"{"@timestamp":"2024-06-14T15:16:01.000000Z","message":"authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=218.188.2.4 ","event":{"original":"Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=218.188.2.4 \r","ingested":"2024-06-15T12:00:00.000000Z","dataset":"syslog.rfc3164"},"host":{"name":"shipper-1"},"log":{"file":{"path":"/var/log/syslog"},"offset":4096,"syslog":{"hostname":"combo","appname":"sshd(pam_unix)","procid":"19939"}},"process":{"name":"sshd(pam_unix)","pid":19939}}"#,
        ),
        (
            Format::Auto,
            1,
            b"Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=218.188.2.4 \x0d",
            r#"{"@timestamp":"2023-06-14T15:16:01.000000Z","message":"authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=218.188.2.4 ","event":{"original":"Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=218.188.2.4 \r","ingested":"2023-11-14T22:13:20.123456Z","dataset":"syslog.rfc3164"},"host":{"name":"combo"},"log":{"syslog":{"hostname":"combo","appname":"sshd(pam_unix)","procid":"19939"}},"process":{"name":"sshd(pam_unix)","pid":19939}}"#,
        ),
        (
            Format::Rfc3164,
            0,
            b"<34>Oct 11 22:14:15 mymachine su: bad su for lonvick on /dev/pts/8\x07",
            r#"{"@timestamp":"2023-10-11T22:14:15.000000Z","message":"bad su for lonvick on /dev/pts/8\u0007","event":{"original":"<34>Oct 11 22:14:15 mymachine su: bad su for lonvick on /dev/pts/8\u0007","ingested":"2024-06-15T12:00:00.000000Z","dataset":"syslog.rfc3164"},"host":{"name":"shipper-1"},"log":{"file":{"path":"/var/log/syslog"},"offset":4096,"syslog":{"priority":34,"facility":{"code":4},"severity":{"code":2},"hostname":"mymachine","appname":"su"}},"process":{"name":"su"}}"#,
        ),
        (
            Format::Access,
            1,
            b"83.149.9.216 - - [17/May/2015:10:05:03 +0000] \"GET /presentations/logstash-monitorama-2013/images/kibana-search.png HTTP/1.1\" 200 203023 \"http://semicomplete.com/presentations/logstash-monitorama-2013/\" \"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_1) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/32.0.1700.77 Safari/537.36\"",
            r#"{"@timestamp":"2015-05-17T10:05:03.000000Z","event":{"original":"83.149.9.216 - - [17/May/2015:10:05:03 +0000] \"GET /presentations/logstash-monitorama-2013/images/kibana-search.png HTTP/1.1\" 200 203023 \"http://semicomplete.com/presentations/logstash-monitorama-2013/\" \"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_1) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/32.0.1700.77 Safari/537.36\"","ingested":"2023-11-14T22:13:20.123456Z","dataset":"access.combined"},"source":{"ip":"83.149.9.216"},"http":{"request":{"method":"GET","referrer":"http://semicomplete.com/presentations/logstash-monitorama-2013/"},"version":"1.1","response":{"status_code":200,"body":{"bytes":203023}}},"url":{"original":"/presentations/logstash-monitorama-2013/images/kibana-search.png"},"user_agent":{"original":"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_1) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/32.0.1700.77 Safari/537.36"}}"#,
        ),
        (
            Format::Access,
            1,
            b"1.2.3.4 - bob [01/Jan/2024:00:00:00 +0530] \"GET /a\\\"b HTTP/1.0\" 404 - \"-\" \"ua \xff\x01\"",
            r#"{"@timestamp":"2023-12-31T18:30:00.000000Z","event":{"original":"1.2.3.4 - bob [01/Jan/2024:00:00:00 +0530] \"GET /a\\\"b HTTP/1.0\" 404 - \"-\" \"ua �\u0001\"","ingested":"2023-11-14T22:13:20.123456Z","dataset":"access.combined"},"source":{"ip":"1.2.3.4"},"user":{"name":"bob"},"http":{"request":{"method":"GET"},"version":"1.0","response":{"status_code":404}},"url":{"original":"/a\"b"},"user_agent":{"original":"ua �\u0001"}}"#,
        ),
    ];
    let mut doc = Vec::new();
    for (format, c, line, want) in cases {
        let ev = parse(*format, line, &ctx(*c)).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(line)));
        doc.clear();
        ev.write_json(&mut doc);
        assert_eq!(
            String::from_utf8_lossy(&doc),
            *want,
            "{format} {}",
            String::from_utf8_lossy(line)
        );
    }
}
