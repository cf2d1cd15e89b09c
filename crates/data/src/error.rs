//! The error type of hebb-data.

use std::path::PathBuf;

/// Errors returned while locating, downloading and parsing data sets.
///
/// Every variant names the file (or URL) it is about; CSV errors also give the
/// 1-based line number in the file (the header is line 1) and, where one field
/// is at fault, its 1-based column, e.g.
/// `datasets/iris/iris_training.csv: line 7, column 3: "abc" is not a number`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading, creating or renaming a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The CSV reader itself failed (an I/O error mid-file, invalid UTF-8);
    /// the csv crate's message gives the position.
    #[error("{}: {source}", path.display())]
    Csv {
        /// The CSV file.
        path: PathBuf,
        /// The csv crate's error.
        source: csv::Error,
    },
    /// A field could not be parsed (a feature that is not a number, a label
    /// that is not a non-negative integer).
    #[error("{}: line {line}, column {column}: {detail}", path.display())]
    Parse {
        /// The CSV file.
        path: PathBuf,
        /// 1-based line number in the file (the header is line 1).
        line: u64,
        /// 1-based column number.
        column: usize,
        /// What is wrong, quoting the field.
        detail: String,
    },
    /// The header line is missing or malformed.
    #[error("{}: line 1 (header): {detail}", path.display())]
    Header {
        /// The CSV file.
        path: PathBuf,
        /// What is wrong with the header.
        detail: String,
    },
    /// A data row has the wrong number of fields.
    #[error("{}: line {line}: expected {expected} fields (the features and a label), found {found}", path.display())]
    RowLength {
        /// The CSV file.
        path: PathBuf,
        /// 1-based line number in the file.
        line: u64,
        /// Fields a row must have (features + 1).
        expected: usize,
        /// Fields the row has.
        found: usize,
    },
    /// A class label is not below the number of classes named in the header.
    #[error("{}: line {line}, column {column}: label {label} is out of range for {classes} classes (0..{classes})", path.display())]
    LabelOutOfRange {
        /// The CSV file.
        path: PathBuf,
        /// 1-based line number in the file.
        line: u64,
        /// 1-based column of the label.
        column: usize,
        /// The label found.
        label: usize,
        /// Number of classes named in the header.
        classes: usize,
    },
    /// The header declares a different number of rows than the file has
    /// (for example, a truncated file).
    #[error("{}: the header declares {declared} rows but the file has {found}", path.display())]
    RowCount {
        /// The CSV file.
        path: PathBuf,
        /// Row count from the header.
        declared: usize,
        /// Data rows actually present.
        found: usize,
    },
    /// A data file is not in the data directory and could not be downloaded
    /// (offline, or no URL is known for it).
    #[error(
        "{file}: not found in {} and {}; put the file there, or point HEBB_DATA_DIR (or --data-dir) at a directory that has it",
        data_dir.display(),
        match url { Some(url) => format!("could not be downloaded from {url} ({reason})"), None => reason.clone() }
    )]
    Missing {
        /// The file, relative to the data directory (e.g. `mnist/train-images-idx3-ubyte.gz`).
        file: String,
        /// Where it would be downloaded from, if known.
        url: Option<String>,
        /// The data directory that was searched.
        data_dir: PathBuf,
        /// Why it could not be fetched.
        reason: String,
    },
    /// The server was reached but the download failed (an HTTP error status,
    /// a connection dropped mid-body, or content that is not the expected file).
    #[error("download of {url} failed: {detail}")]
    Download {
        /// The URL.
        url: String,
        /// What went wrong.
        detail: String,
    },
    /// A downloaded file does not have the expected sha256; it was not kept.
    #[error("{url}: sha256 is {actual}, expected {expected}; the download was discarded and nothing was written to {}", path.display())]
    Checksum {
        /// Where the file came from.
        url: String,
        /// Where it would have been stored.
        path: PathBuf,
        /// Expected sha256 (lowercase hex).
        expected: String,
        /// sha256 of the bytes received (lowercase hex).
        actual: String,
    },
    /// Building a tensor failed.
    #[error(transparent)]
    Tensor(#[from] hebb_tensor::Error),
}

/// `Result` with hebb-data's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
