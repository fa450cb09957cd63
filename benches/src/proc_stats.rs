//! CPU time and memory of another process, read from `/proc`, so a bench can
//! measure each daemon separately (user + system, peak RSS) while it runs.

use std::time::Duration;

/// Clock ticks per second of `/proc/<pid>/stat`; 100 on every Linux we run on
/// (`getconf CLK_TCK`), and the bench reports seconds, so the rounding is 10 ms.
const CLK_TCK: f64 = 100.0;

/// User + system CPU of `pid` so far, or `None` once it is gone.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields are counted after its ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // After ')': state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_secs_f64((utime + stime) / CLK_TCK))
}

/// `(current RSS, peak RSS)` of `pid` in bytes, from VmRSS and VmHWM.
pub fn rss(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(key))?;
        line[key.len()..].trim().trim_end_matches("kB").trim().parse().ok()
    };
    Some((kib("VmRSS:")? * 1024, kib("VmHWM:")? * 1024))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        // Burn CPU until at least one clock tick (10 ms) is charged to us: on
        // a loaded machine a fixed wall time may get less than a tick. A
        // reader that never sees the ticks fails at the deadline.
        let mut x = 0u64;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let cpu = loop {
            for _ in 0..1_000_000 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
            std::hint::black_box(x);
            let cpu = cpu_time(me).unwrap();
            if cpu > Duration::ZERO || std::time::Instant::now() > deadline {
                break cpu;
            }
        };
        assert!(cpu > Duration::ZERO, "no CPU time read for this process");
        let (now, peak) = rss(me).unwrap();
        assert!(now > 0 && peak >= now);
        assert!(cpu_time(u32::MAX).is_none());
    }
}
