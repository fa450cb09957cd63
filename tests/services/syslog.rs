//! A real rsyslogd (Debian's package), run unprivileged in the foreground
//! with its own config, work dir and pid file, for the syslog intake tests.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub struct Rsyslog {
    child: Child,
    pub dir: PathBuf,
    log: PathBuf,
}

impl Rsyslog {
    /// Starts `rsyslogd -n` with `config` (written to `dir/rsyslog.conf`;
    /// `@DIR@` in it becomes `dir`). No imuxsock or imklog: only what the
    /// config loads.
    pub fn start(dir: &Path, config: &str) -> Rsyslog {
        std::fs::create_dir_all(dir).unwrap();
        let conf = dir.join("rsyslog.conf");
        std::fs::write(&conf, config.replace("@DIR@", &dir.display().to_string())).unwrap();
        let log = dir.join("rsyslogd.out");
        let f = std::fs::File::create(&log).unwrap();
        let bin = ["/usr/sbin/rsyslogd", "/sbin/rsyslogd"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("rsyslogd not installed (run scripts/setup)");
        let child = Command::new(bin)
            .arg("-n")
            .arg("-f")
            .arg(&conf)
            .arg("-i")
            .arg(dir.join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .expect("starting rsyslogd");
        Rsyslog {
            child,
            dir: dir.to_path_buf(),
            log,
        }
    }

    /// What rsyslogd printed (errors in its config show up here).
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
