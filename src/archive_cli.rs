//! `logpipe archive ls|get|verify`: the auditor's view of the raw archive.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use logpipe_config::Config;
use logpipe_shipper::archive::audit::{self, Filter};

#[derive(Subcommand)]
pub enum ArchiveCommand {
    /// List archived files: key, compressed size, host, date, file.
    Ls {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// Download one archived file, decompressed, byte-exact; checks its SHA-256.
    Get {
        #[command(flatten)]
        common: Common,
        /// Object key (as `ls` prints it).
        key: String,
        /// Where to write the raw bytes (`-`: standard output).
        #[arg(long, short, default_value = "-")]
        output: PathBuf,
    },
    /// Recompute every selected object's SHA-256 and compare it with its metadata.
    Verify {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        filter: FilterArgs,
        /// Keys to verify; all that the filters select when none is given.
        keys: Vec<String>,
    },
}

#[derive(Args)]
pub struct Common {
    /// The config with the [shipper.archive] section.
    #[arg(long, short)]
    config: PathBuf,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct FilterArgs {
    /// Only this host's files.
    #[arg(long)]
    host: Option<String>,
    /// Only files rotated on this UTC date (YYYY-MM-DD).
    #[arg(long, conflicts_with_all = ["from", "to"])]
    date: Option<String>,
    /// Only files rotated on or after this UTC date (YYYY-MM-DD).
    #[arg(long)]
    from: Option<String>,
    /// Only files rotated on or before this UTC date (YYYY-MM-DD).
    #[arg(long)]
    to: Option<String>,
}

impl FilterArgs {
    fn filter(&self) -> anyhow::Result<Filter> {
        for d in [&self.date, &self.from, &self.to].into_iter().flatten() {
            chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .map_err(|_| anyhow::anyhow!("`{d}` is not a date; expected YYYY-MM-DD"))?;
        }
        Ok(Filter {
            host: self.host.clone(),
            from: self.date.clone().or(self.from.clone()),
            to: self.date.clone().or(self.to.clone()),
        })
    }
}

impl ArchiveCommand {
    pub fn config(&self) -> &Path {
        match self {
            ArchiveCommand::Ls { common, .. }
            | ArchiveCommand::Get { common, .. }
            | ArchiveCommand::Verify { common, .. } => &common.config,
        }
    }
}

pub fn run(cmd: ArchiveCommand, config: &Config) -> anyhow::Result<()> {
    let path = cmd.config().to_path_buf();
    let archive = config.shipper(&path)?.archive.clone().ok_or_else(|| {
        anyhow::anyhow!(
            "{}: key `shipper.archive`: expected a [shipper.archive] section",
            path.display()
        )
    })?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async move {
        match cmd {
            ArchiveCommand::Ls { common, filter } => {
                let listed = audit::ls(&archive, &filter.filter()?).await?;
                let mut out = std::io::stdout().lock();
                for l in &listed {
                    if common.json {
                        serde_json::to_writer(&mut out, l)?;
                        writeln!(out)?;
                    } else {
                        writeln!(out, "{}\t{}\t{}\t{}\t{}", l.key, l.size, l.host, l.date, l.file)?;
                    }
                }
                Ok(())
            }
            ArchiveCommand::Get { common, key, output } => {
                let v = if output == Path::new("-") {
                    audit::get(&archive, &key, std::io::stdout()).await?
                } else {
                    // Written next to the target and renamed, so a failed get leaves nothing half-written.
                    let tmp = output.with_extension("part");
                    let f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
                    let v = audit::get(&archive, &key, f).await?;
                    std::fs::rename(&tmp, &output)?;
                    v
                };
                if common.json {
                    eprintln!("{}", serde_json::to_string(&v)?);
                }
                match v.problem {
                    None => Ok(()),
                    Some(p) => Err(anyhow::anyhow!("{key}: {p}")),
                }
            }
            ArchiveCommand::Verify { common, filter, keys } => {
                let results = audit::verify(&archive, &keys, &filter.filter()?).await?;
                let mut out = std::io::stdout().lock();
                let bad = results.iter().filter(|v| !v.ok).count();
                for v in &results {
                    if common.json {
                        serde_json::to_writer(&mut out, v)?;
                        writeln!(out)?;
                    } else if v.ok {
                        writeln!(out, "OK\t{}\t{}\t{}", v.key, v.raw_bytes, v.sha256)?;
                    } else {
                        writeln!(out, "FAILED\t{}\t{}", v.key, v.problem.as_deref().unwrap_or(""))?;
                    }
                }
                if bad > 0 {
                    anyhow::bail!("{bad} of {} objects failed verification", results.len());
                }
                eprintln!("{} objects verified", results.len());
                Ok(())
            }
        }
    })
}
