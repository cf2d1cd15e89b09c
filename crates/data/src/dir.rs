//! The data directory: where data files are looked for, and how a missing
//! one is downloaded.
//!
//! The directory is, in order of precedence (DESIGN.md, "Conventions"):
//! the `--data-dir` flag, the `HEBB_DATA_DIR` environment variable, or the
//! git-ignored cache `datasets/cache/` of the hebb workspace. A file that is
//! present is used as it is, so a read-only directory (CI points
//! `HEBB_DATA_DIR` at `../shared/datasets`) works. A missing file listed in
//! the [manifest](crate::manifest) is downloaded into a temporary file beside
//! its final path, checked (sha256, or for Iris the parsed header and shape),
//! and only then renamed into place, so a half-written or corrupt download
//! never appears at the final path.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::manifest::{Check, DatasetFile};
use crate::{Error, Result, read_iris_csv};

/// A data directory, optionally with a mirror to download from instead of
/// the canonical URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
    mirror: Option<String>,
}

impl DataDir {
    /// The environment variable naming the data directory.
    pub const ENV: &'static str = "HEBB_DATA_DIR";

    /// A data directory at `root` (which need not exist yet).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            mirror: None,
        }
    }

    /// Resolves the data directory: `flag` (the `--data-dir` command-line
    /// option) if given, else `$HEBB_DATA_DIR` if set and non-empty, else
    /// [`DataDir::default_cache`].
    pub fn resolve(flag: Option<&Path>) -> Self {
        Self::new(choose(flag, std::env::var_os(Self::ENV)))
    }

    /// The default cache, `datasets/cache` in the hebb workspace.
    ///
    /// The workspace is found at compile time as the directory two levels
    /// above this crate's manifest (`crates/data/../..`) when it has a
    /// `datasets/` folder; otherwise (e.g. the crate was built from a
    /// registry download) it is `datasets/cache` under the current directory.
    pub fn default_cache() -> PathBuf {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .and_then(Path::parent)
            .filter(|ws| ws.join("datasets").is_dir());
        match workspace {
            Some(ws) => ws.join("datasets").join("cache"),
            None => std::env::current_dir()
                .unwrap_or_default()
                .join("datasets")
                .join("cache"),
        }
    }

    /// Downloads from `base_url` instead of the canonical URLs: the file at
    /// relative path `p` is fetched from `{base_url}/{p}`, so a mirror is a
    /// copy of a data directory served over HTTP (tests use a local server).
    pub fn with_mirror(mut self, base_url: impl Into<String>) -> Self {
        self.mirror = Some(base_url.into());
        self
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The URL `entry` is downloaded from: the mirror's if one is set, else
    /// `entry.url`.
    pub fn url_for(&self, entry: &DatasetFile<'_>) -> String {
        match &self.mirror {
            Some(base) => format!("{}/{}", base.trim_end_matches('/'), entry.path),
            None => entry.url.to_string(),
        }
    }

    /// The path of data file `rel` (relative, `/`-separated, e.g.
    /// `iris/iris_training.csv`), downloading it first if it is missing and
    /// listed in the [manifest](crate::manifest::MANIFEST) (see
    /// [`fetch`](Self::fetch)).
    ///
    /// # Errors
    /// [`Error::Missing`] if the file is absent and not in the manifest, and
    /// the errors of [`fetch`](Self::fetch).
    pub fn file(&self, rel: &str) -> Result<PathBuf> {
        match DatasetFile::find(rel) {
            Some(entry) => self.fetch(entry),
            None => {
                let path = self.root.join(rel);
                if path.is_file() {
                    return Ok(path);
                }
                Err(Error::Missing {
                    file: rel.to_string(),
                    url: None,
                    data_dir: self.root.clone(),
                    also_searched: Vec::new(),
                    reason: "hebb knows no URL for it (it is not in the manifest)".into(),
                })
            }
        }
    }

    /// Like [`file`](Self::file), but looks in other directories before
    /// downloading: the path of `rel` in this directory if it is there, else
    /// the first of `also_in` that holds a file of the same name (the last
    /// component of `rel`), else [`file`](Self::file)'s download. Files found
    /// in `also_in` are used as they are, like files already in the data
    /// directory (no sha256 check).
    ///
    /// Fashion-MNIST uses this to find the files of Debian's
    /// `dataset-fashion-mnist` package in `/usr/share/datasets/fashion-mnist`.
    ///
    /// # Errors
    /// Those of [`file`](Self::file); [`Error::Missing`] lists `also_in` in
    /// its `also_searched` field and message.
    pub fn file_also_in(&self, rel: &str, also_in: &[&Path]) -> Result<PathBuf> {
        if self.root.join(rel).is_file() {
            return Ok(self.root.join(rel));
        }
        let name = rel.rsplit('/').next().unwrap_or(rel);
        if let Some(found) = also_in
            .iter()
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
        {
            return Ok(found);
        }
        self.file(rel).map_err(|e| match e {
            Error::Missing {
                file,
                url,
                data_dir,
                mut also_searched,
                reason,
            } => {
                also_searched.extend(also_in.iter().map(|d| d.to_path_buf()));
                Error::Missing {
                    file,
                    url,
                    data_dir,
                    also_searched,
                    reason,
                }
            }
            other => other,
        })
    }

    /// The path of `entry` in this directory. If it is not there yet, it is
    /// downloaded from [`url_for`](Self::url_for) into a temporary file in
    /// the same directory (created if needed), checked as `entry.check`
    /// says, and renamed into place. Present files are not re-checked.
    ///
    /// # Errors
    /// - [`Error::Missing`] if the server cannot be reached (offline,
    ///   unknown host, connection refused, timeout); it names the file, the
    ///   URL and `HEBB_DATA_DIR`.
    /// - [`Error::Download`] if the server answers with an error status, the
    ///   body breaks off, or an Iris file has the wrong header or shape.
    /// - [`Error::Checksum`] if the sha256 differs; nothing is kept.
    /// - [`Error::Io`] if the directory or temporary file cannot be written
    ///   (e.g. a read-only data directory).
    pub fn fetch(&self, entry: &DatasetFile<'_>) -> Result<PathBuf> {
        let path = self.root.join(entry.path);
        if path.is_file() {
            return Ok(path);
        }
        self.download(entry, &self.url_for(entry), &path)?;
        Ok(path)
    }

    fn download(&self, entry: &DatasetFile<'_>, url: &str, path: &Path) -> Result<()> {
        let download_error = |detail: String| Error::Download {
            url: url.to_string(),
            detail,
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_per_read(Some(Duration::from_secs(60)))
            .build()
            .into();
        let mut response = agent.get(url).call().map_err(|e| match e {
            ureq::Error::StatusCode(code) => {
                download_error(format!("the server answered HTTP {code}"))
            }
            other => Error::Missing {
                file: entry.path.to_string(),
                url: Some(url.to_string()),
                data_dir: self.root.clone(),
                also_searched: Vec::new(),
                reason: other.to_string(),
            },
        })?;

        let dir = path.parent().unwrap_or(&self.root);
        let io_error = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        // Dropping `tmp` on any error below deletes the partial file.
        let mut tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".part")
            .tempfile_in(dir)
            .map_err(io_error(dir))?;

        let mut hasher = Sha256::new();
        let mut body = response.body_mut().as_reader();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(download_error(format!("reading the response failed: {e}"))),
            };
            let chunk = buf.get(..n).unwrap_or_default();
            hasher.update(chunk);
            tmp.write_all(chunk).map_err(io_error(tmp.path()))?;
        }
        tmp.as_file().sync_all().map_err(io_error(tmp.path()))?;

        match entry.check {
            Check::Sha256(expected) => {
                let actual = hex::encode(hasher.finalize());
                if !actual.eq_ignore_ascii_case(expected) {
                    return Err(Error::Checksum {
                        url: url.to_string(),
                        path: path.to_path_buf(),
                        expected: expected.to_ascii_lowercase(),
                        actual,
                    });
                }
            }
            Check::IrisCsv {
                rows,
                features,
                classes,
                ..
            } => {
                let split = read_iris_csv(tmp.path())
                    .map_err(|e| download_error(format!("not an Iris CSV file: {e}")))?;
                let got = (split.len(), split.n_features, split.n_classes());
                if got != (rows, features, classes) {
                    return Err(download_error(format!(
                        "expected an Iris CSV file of {rows} rows, {features} features and \
                         {classes} classes, got {} rows, {} features and {} classes",
                        got.0, got.1, got.2
                    )));
                }
            }
            Check::None => {}
        }
        tmp.persist(path).map_err(|e| Error::Io {
            path: path.to_path_buf(),
            source: e.error,
        })?;
        Ok(())
    }
}

/// `flag`, else a non-empty `env`, else the default cache.
fn choose(flag: Option<&Path>, env: Option<OsString>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .or_else(|| env.filter(|v| !v.is_empty()).map(PathBuf::from))
        .unwrap_or_else(DataDir::default_cache)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_beats_env_beats_default() {
        let flag = Path::new("/flag");
        let env = || Some(OsString::from("/env"));
        assert_eq!(choose(Some(flag), env()), PathBuf::from("/flag"));
        assert_eq!(choose(None, env()), PathBuf::from("/env"));
        assert_eq!(
            choose(None, Some(OsString::new())),
            DataDir::default_cache()
        );
        assert_eq!(choose(None, None), DataDir::default_cache());
    }

    #[test]
    fn default_cache_is_in_the_workspace() {
        let datasets = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets");
        let cache = DataDir::default_cache();
        let parent = cache.parent().map(Path::canonicalize);
        assert_eq!(parent.unwrap().unwrap(), datasets.canonicalize().unwrap());
        assert!(DataDir::default_cache().ends_with("datasets/cache"));
    }

    #[test]
    fn mirror_urls_follow_the_data_dir_layout() {
        let entry = DatasetFile::find("mnist/t10k-labels-idx1-ubyte.gz").unwrap();
        let dir = DataDir::new("/d");
        assert_eq!(dir.url_for(entry), entry.url);
        let dir = dir.with_mirror("http://127.0.0.1:8000/");
        assert_eq!(
            dir.url_for(entry),
            "http://127.0.0.1:8000/mnist/t10k-labels-idx1-ubyte.gz"
        );
    }
}
