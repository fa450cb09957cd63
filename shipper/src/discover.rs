//! Which files to tail: include globs minus exclude globs.

use std::path::PathBuf;

use logpipe_config::FileInput;

pub struct Discover {
    inputs: Vec<(Vec<String>, Vec<glob::Pattern>)>,
}

impl Discover {
    /// Patterns were validated with the config, so they compile here.
    pub fn new(inputs: &[FileInput]) -> Self {
        let inputs = inputs
            .iter()
            .map(|i| {
                let exclude = i.exclude.iter().filter_map(|p| glob::Pattern::new(p).ok()).collect();
                (i.include.clone(), exclude)
            })
            .collect();
        Discover { inputs }
    }

    /// Regular files matching now, sorted and without duplicates.
    pub fn scan(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for (include, exclude) in &self.inputs {
            for pattern in include {
                let Ok(paths) = glob::glob(pattern) else { continue };
                for path in paths.flatten() {
                    if path.is_file() && !exclude.iter().any(|p| p.matches_path(&path)) {
                        out.push(path);
                    }
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_minus_exclude() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["a.log", "b.log", "c.log.gz", "d.txt"] {
            std::fs::write(dir.path().join(name), b"x\n").unwrap();
        }
        let d = dir.path().display();
        let disc = Discover::new(&[FileInput {
            include: vec![format!("{d}/*.log*")],
            exclude: vec![format!("{d}/*.gz")],
            ..Default::default()
        }]);
        let names: Vec<_> = disc
            .scan()
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
            .collect();
        assert_eq!(names, ["a.log", "b.log"]);
    }
}
