//! The data directory: where data files are looked for, and how a missing
//! one is downloaded.
//!
//! [`DataDir::resolve`] chooses the directory; `cargo xtask`, the tests and
//! the benchmarks all call it, so they read the same files. In order of
//! precedence:
//!
//! 1. the `--data-dir` flag (of `cargo xtask`), if given;
//! 2. the `HEBB_DATA_DIR` environment variable, if set and not empty;
//! 3. `../shared/datasets` beside the checkout (the hebb workspace's parent
//!    directory's `shared/datasets`), if it holds at least one of the files
//!    of the [manifest](crate::manifest::MANIFEST), e.g.
//!    `iris/iris_training.csv`;
//! 4. `datasets/cache/` in the checkout, the git-ignored download cache.
//!
//! A file that is present is used as it is, so a read-only directory (CI
//! reads `../shared/datasets`) works. A missing file listed in the
//! [manifest](crate::manifest) is downloaded into the chosen directory:
//! into a temporary file beside its final path, checked (sha256, or for Iris
//! the parsed header and shape), and only then renamed into place, so a
//! half-written or corrupt download never appears at the final path. A
//! directory where a data file should be is an [`Error::IsDirectory`], not a
//! missing file; a data directory that is a file (`--data-dir README.md`) is
//! an [`Error::NotADirectory`]. A data directory that does not exist is
//! created for a download; if the download fails, the message says that the
//! directory does not exist.

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

    /// The directory `../shared/datasets` is looked for in, relative to the
    /// checkout (step 3 of the [module docs](self)).
    pub const SHARED: &'static str = "../shared/datasets";

    /// Resolves the data directory for the hebb checkout this crate was built
    /// in ([`DataDir::workspace`]): [`resolve_in`](Self::resolve_in) with
    /// that root. `flag` is the `--data-dir` command-line option, if given.
    ///
    /// `cargo xtask`, the tests and the benchmarks all resolve the data
    /// directory this way.
    pub fn resolve(flag: Option<&Path>) -> Self {
        Self::resolve_in(&Self::workspace(), flag)
    }

    /// Resolves the data directory for the checkout at `workspace`, in this
    /// order (the first that applies):
    ///
    /// 1. `flag` (the `--data-dir` option), if given;
    /// 2. `$HEBB_DATA_DIR`, if set and not empty;
    /// 3. `workspace/../shared/datasets`, if it holds at least one file of
    ///    the [manifest](crate::manifest::MANIFEST) (e.g.
    ///    `iris/iris_training.csv`); a file missing there is downloaded into
    ///    it;
    /// 4. `workspace/datasets/cache`, the download cache.
    ///
    /// Nothing is created or checked beyond step 3's look for files.
    pub fn resolve_in(workspace: &Path, flag: Option<&Path>) -> Self {
        Self::new(choose(workspace, flag, std::env::var_os(Self::ENV)))
    }

    /// The hebb checkout (workspace root) this crate was built in: the
    /// directory two levels above this crate's manifest (`crates/data/../..`)
    /// when it has a `datasets/` folder, found at compile time; otherwise
    /// (e.g. the crate was built from a registry download) the current
    /// directory.
    pub fn workspace() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .and_then(Path::parent)
            .filter(|ws| ws.join("datasets").is_dir())
            .map_or_else(
                || std::env::current_dir().unwrap_or_default(),
                Path::to_path_buf,
            )
    }

    /// The default cache, `datasets/cache` in [`DataDir::workspace`].
    pub fn default_cache() -> PathBuf {
        Self::workspace().join("datasets").join("cache")
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
    /// [`Error::Missing`] if the file is absent and not in the manifest,
    /// [`Error::IsDirectory`] if a directory stands at its path,
    /// [`Error::NotADirectory`] if the data directory (or the file's folder)
    /// is a file, and the errors of [`fetch`](Self::fetch).
    pub fn file(&self, rel: &str) -> Result<PathBuf> {
        match DatasetFile::find(rel) {
            Some(entry) => self.fetch(entry),
            None => {
                let path = self.root.join(rel);
                if path.is_file() {
                    return Ok(path);
                }
                not_a_directory(&path, rel)?;
                self.check_folders(&path, rel)?;
                Err(Error::Missing {
                    file: rel.to_string(),
                    url: None,
                    data_dir: self.root.clone(),
                    data_dir_missing: !self.root.exists(),
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
        let path = self.root.join(rel);
        if path.is_file() {
            return Ok(path);
        }
        not_a_directory(&path, rel)?;
        self.check_folders(&path, rel)?;
        let name = rel.rsplit('/').next().unwrap_or(rel);
        if let Some(found) = also_in
            .iter()
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
        {
            return Ok(found);
        }
        self.file(rel).map_err(|mut e| {
            if let Error::Missing { also_searched, .. } = &mut e {
                also_searched.extend(also_in.iter().map(|d| d.to_path_buf()));
            }
            e
        })
    }

    /// The path of `entry` in this directory. If it is not there yet, it is
    /// downloaded from [`url_for`](Self::url_for) into a temporary file in
    /// the same directory (created if needed), checked as `entry.check`
    /// says, and renamed into place. Present files are not re-checked.
    ///
    /// # Errors
    /// - [`Error::IsDirectory`] if a directory stands at the file's path
    ///   (nothing is downloaded).
    /// - [`Error::NotADirectory`] if the data directory, or the file's
    ///   folder in it, is a file (nothing is downloaded).
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
        not_a_directory(&path, entry.path)?;
        self.check_folders(&path, entry.path)?;
        self.download(entry, &self.url_for(entry), &path)?;
        Ok(path)
    }

    /// [`Error::NotADirectory`] if the data directory, or the folder of
    /// data file `rel` (at `path`) in it, exists but is not a directory
    /// (`--data-dir README.md`). Missing folders are fine: a download
    /// creates them.
    fn check_folders(&self, path: &Path, rel: &str) -> Result<()> {
        let folders = [Some(self.root.as_path()), path.parent()];
        for folder in folders.into_iter().flatten() {
            if folder.exists() && !folder.is_dir() {
                return Err(Error::NotADirectory {
                    path: folder.to_path_buf(),
                    data_dir: self.root.clone(),
                    file: rel.to_string(),
                });
            }
        }
        Ok(())
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
                data_dir_missing: !self.root.exists(),
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

/// The data directory for the checkout at `workspace`, given the flag and
/// the value of `HEBB_DATA_DIR` (see [`DataDir::resolve_in`]).
fn choose(workspace: &Path, flag: Option<&Path>, env: Option<OsString>) -> PathBuf {
    if let Some(flag) = flag {
        return flag.to_path_buf();
    }
    if let Some(env) = env.filter(|v| !v.is_empty()) {
        return PathBuf::from(env);
    }
    let shared = shared_beside(workspace);
    if crate::manifest::MANIFEST
        .iter()
        .any(|entry| shared.join(entry.path).is_file())
    {
        return shared;
    }
    workspace.join("datasets").join("cache")
}

/// `workspace/../shared/datasets`, written without the `..` where
/// `workspace` has a parent.
fn shared_beside(workspace: &Path) -> PathBuf {
    match workspace.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.join("shared").join("datasets"),
        _ => workspace.join(DataDir::SHARED),
    }
}

/// [`Error::IsDirectory`] if `path`, where data file `rel` should be, is a
/// directory.
fn not_a_directory(path: &Path, rel: &str) -> Result<()> {
    if path.is_dir() {
        return Err(Error::IsDirectory {
            path: path.to_path_buf(),
            file: rel.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A checkout `root/hebb` (with `datasets/`) beside `root/shared/datasets`.
    fn checkout() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let root = tempfile::tempdir().unwrap();
        let workspace = root.path().join("hebb");
        std::fs::create_dir_all(workspace.join("datasets")).unwrap();
        let shared = root.path().join("shared").join("datasets");
        std::fs::create_dir_all(shared.join("iris")).unwrap();
        (root, workspace, shared)
    }

    #[test]
    fn flag_beats_env_beats_shared_beats_cache() {
        let (_root, ws, shared) = checkout();
        let cache = ws.join("datasets").join("cache");
        let flag = Path::new("/flag");
        let env = || Some(OsString::from("/env"));
        // `../shared/datasets` without data files is passed over.
        assert_eq!(choose(&ws, None, None), cache);
        std::fs::write(shared.join("iris/iris_training.csv"), "x").unwrap();
        assert_eq!(choose(&ws, Some(flag), env()), PathBuf::from("/flag"));
        assert_eq!(choose(&ws, None, env()), PathBuf::from("/env"));
        assert_eq!(choose(&ws, None, None), shared);
        // An empty HEBB_DATA_DIR counts as unset.
        assert_eq!(choose(&ws, None, Some(OsString::new())), shared);
    }

    #[test]
    fn shared_datasets_count_when_they_hold_any_manifest_file() {
        let (_root, ws, shared) = checkout();
        let cache = ws.join("datasets").join("cache");
        // Files hebb does not know, or a directory where a file should be, do not count.
        std::fs::write(shared.join("notes.txt"), "x").unwrap();
        std::fs::create_dir_all(shared.join("iris/iris_test.csv")).unwrap();
        assert_eq!(choose(&ws, None, None), cache);
        std::fs::create_dir_all(shared.join("mnist")).unwrap();
        std::fs::write(shared.join("mnist/t10k-labels-idx1-ubyte.gz"), "x").unwrap();
        assert_eq!(choose(&ws, None, None), shared);
        // A checkout path without a parent: the same directory, written with `..`.
        assert_eq!(
            shared_beside(Path::new("hebb")),
            Path::new("hebb/../shared/datasets")
        );
        assert_eq!(
            shared_beside(Path::new("/work/hebb")),
            Path::new("/work/shared/datasets")
        );
        assert_eq!(
            shared_beside(Path::new(".")),
            Path::new("./../shared/datasets")
        );
    }

    #[test]
    fn workspace_is_this_checkout() {
        let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        assert_eq!(
            DataDir::workspace().canonicalize().unwrap(),
            checkout.canonicalize().unwrap()
        );
        assert_eq!(
            DataDir::default_cache(),
            DataDir::workspace().join("datasets").join("cache")
        );
    }

    #[test]
    fn a_directory_where_a_data_file_should_be_is_reported_as_such() {
        let tmp = tempfile::tempdir().unwrap();
        // A mirror nothing listens on: were a download tried, it would fail as "not found".
        let dir = DataDir::new(tmp.path()).with_mirror("http://127.0.0.1:9");
        for rel in [
            "iris/iris_training.csv",
            "mnist/t10k-images-idx3-ubyte.gz",
            "cifar/data.bin",
        ] {
            std::fs::create_dir_all(tmp.path().join(rel)).unwrap();
            let err = dir.file(rel).unwrap_err();
            assert!(
                matches!(&err, Error::IsDirectory { path, file } if *path == tmp.path().join(rel) && file == rel),
                "{err:?}"
            );
            let msg = err.to_string();
            assert!(
                msg.starts_with(&format!(
                    "{}: is a directory, not the data file {rel}",
                    tmp.path().join(rel).display()
                )),
                "{msg}"
            );
            assert!(!msg.contains("not found"), "{msg}");
        }
        let rel = "fashion-mnist/t10k-labels-idx1-ubyte.gz";
        std::fs::create_dir_all(tmp.path().join(rel)).unwrap();
        let err = dir.file_also_in(rel, &[]).unwrap_err();
        assert!(matches!(err, Error::IsDirectory { .. }), "{err:?}");
    }

    /// `--data-dir README.md` (a file) is named as not a directory (it said
    /// "iris/iris_training.csv: not found in README.md and could not be
    /// downloaded"); a missing data directory is named as such when the
    /// download fails.
    #[test]
    fn a_data_dir_that_is_a_file_or_missing_is_named_as_such() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("README.md");
        std::fs::write(&file, "# not data").unwrap();
        for rel in ["iris/iris_training.csv", "cifar/data.bin"] {
            let dir = DataDir::new(&file).with_mirror("http://127.0.0.1:9");
            let err = dir.file(rel).unwrap_err();
            assert!(
                matches!(&err, Error::NotADirectory { path, data_dir, file: f }
                    if *path == file && *data_dir == file && f == rel),
                "{err:?}"
            );
            assert_eq!(
                err.to_string(),
                format!(
                    "{}: the data directory is not a directory, so the data file {rel} cannot \
                     be there; point HEBB_DATA_DIR (or --data-dir) at a directory that has the \
                     data files (iris/, mnist/, fashion-mnist/), or at one to download them into",
                    file.display()
                )
            );
            assert!(matches!(
                dir.file_also_in(rel, &[]).unwrap_err(),
                Error::NotADirectory { .. }
            ));
        }
        // A file where the data file's folder should be.
        std::fs::write(tmp.path().join("iris"), "").unwrap();
        let dir = DataDir::new(tmp.path()).with_mirror("http://127.0.0.1:9");
        let err = dir.file("iris/iris_test.csv").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: the folder of the data file (in the data directory {}) is not a \
                 directory, so the data file iris/iris_test.csv cannot be there; point \
                 HEBB_DATA_DIR (or --data-dir) at a directory that has the data files (iris/, \
                 mnist/, fashion-mnist/), or at one to download them into",
                tmp.path().join("iris").display(),
                tmp.path().display()
            )
        );

        // A missing data directory: a download would create it; when the
        // download fails, the message says it does not exist.
        let missing = tmp.path().join("nonexistent");
        let dir = DataDir::new(&missing).with_mirror("http://127.0.0.1:9");
        let err = dir.file("iris/iris_training.csv").unwrap_err();
        assert!(
            matches!(
                &err,
                Error::Missing {
                    data_dir_missing: true,
                    ..
                }
            ),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!(
                "iris/iris_training.csv: not found in {} (the directory does not exist) and \
                 could not be downloaded from http://127.0.0.1:9/iris/iris_training.csv",
                missing.display()
            )),
            "{msg}"
        );
        assert!(!missing.exists());
        // An existing, empty one: no such note.
        let dir = DataDir::new(tmp.path()).with_mirror("http://127.0.0.1:9");
        let msg = dir
            .file("mnist/t10k-labels-idx1-ubyte.gz")
            .unwrap_err()
            .to_string();
        assert!(!msg.contains("does not exist"), "{msg}");
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
