//! A real rsyslogd (Debian's `rsyslog` and `rsyslog-kafka` packages) run in
//! the foreground with its own config, work dir and pid file: no imuxsock or
//! imklog, so it never touches the machine's own syslog. Killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, signal};

pub struct Rsyslog {
    child: Child,
    pub dir: PathBuf,
    /// The imtcp port it listens on.
    pub tcp_port: u16,
    log: PathBuf,
}

/// The binary: `$LOGPIPE_RSYSLOGD`, else Debian's path.
fn bin() -> PathBuf {
    std::env::var_os("LOGPIPE_RSYSLOGD")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/rsyslogd"))
}

impl Rsyslog {
    /// Starts rsyslogd in `dir` with two inputs, both forwarded by omkafka to
    /// `topic` on `brokers`:
    /// - imfile on `tail_file`, each line sent as read (`%rawmsg%`), the way a
    ///   fleet forwards application syslog files;
    /// - imtcp on a free port, each message re-formatted by rsyslog itself as
    ///   RFC 5424 (`RSYSLOG_SyslogProtocol23Format`, which ends in `\n`).
    pub fn start(dir: &Path, brokers: &str, topic: &str, tail_file: &Path) -> Rsyslog {
        let work = dir.join("work");
        std::fs::create_dir_all(&work).unwrap();
        let tcp_port = free_port();
        let conf = dir.join("rsyslog.conf");
        let kafka_action = |template: &str| {
            format!(
                r#"action(type="omkafka" broker=["{brokers}"] topic="{topic}" template="{template}"
         partitions.auto="on" confParam=["queue.buffering.max.ms=20"])"#
            )
        };
        let text = format!(
            r#"global(workDirectory="{work}" maxMessageSize="64k")
module(load="imfile")
module(load="imtcp")
module(load="omkafka")
template(name="raw" type="string" string="%rawmsg%")
input(type="imfile" file="{tail}" tag="app" ruleset="file_to_kafka" freshStartTail="off")
input(type="imtcp" address="127.0.0.1" port="{tcp_port}" ruleset="tcp_to_kafka")
ruleset(name="file_to_kafka") {{
  {file_action}
}}
ruleset(name="tcp_to_kafka") {{
  {tcp_action}
}}
"#,
            work = work.display(),
            tail = tail_file.display(),
            file_action = kafka_action("raw"),
            tcp_action = kafka_action("RSYSLOG_SyslogProtocol23Format"),
        );
        std::fs::write(&conf, text).unwrap();
        let log = dir.join("rsyslogd.log");
        let f = std::fs::File::create(&log).unwrap();
        let child = Command::new(bin())
            .arg("-n")
            .arg("-f")
            .arg(&conf)
            .arg("-i")
            .arg(dir.join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .unwrap_or_else(|e| panic!("starting rsyslogd (scripts/setup installs rsyslog and rsyslog-kafka): {e}"));
        let mut r = Rsyslog {
            child,
            dir: dir.to_path_buf(),
            tcp_port,
            log,
        };
        // Ready once imtcp accepts connections.
        let up = super::wait_for(Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", tcp_port)).is_ok()
        });
        if !up {
            r.assert_running();
            panic!("rsyslogd did not listen on {tcp_port}:\n{}", r.log());
        }
        r
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("rsyslogd exited early ({status}):\n{}", self.log());
        }
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            signal(self.child.id(), "TERM");
            std::thread::sleep(Duration::from_millis(300));
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
