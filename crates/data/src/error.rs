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
        "{file}: not found in {}{}{} and {}; put the file there, or point HEBB_DATA_DIR (or --data-dir) at a directory that has it{}",
        data_dir.display(),
        if *data_dir_missing { " (the directory does not exist)" } else { "" },
        also_searched.iter().map(|d| format!(" nor in {}", d.display())).collect::<String>(),
        match url { Some(url) => format!("could not be downloaded from {url} ({reason})"), None => reason.clone() },
        debian_hint(also_searched)
    )]
    Missing {
        /// The file, relative to the data directory (e.g. `mnist/train-images-idx3-ubyte.gz`).
        file: String,
        /// Where it would be downloaded from, if known.
        url: Option<String>,
        /// The data directory that was searched.
        data_dir: PathBuf,
        /// Whether the data directory did not exist (hebb creates it for a
        /// download; the message says so when the download failed).
        data_dir_missing: bool,
        /// Other directories that were searched, after `data_dir` (for
        /// Fashion-MNIST, Debian's `/usr/share/datasets/fashion-mnist`; when
        /// that is among them, the message says that Debian's
        /// `dataset-fashion-mnist` package installs the files there).
        also_searched: Vec<PathBuf>,
        /// Why it could not be fetched.
        reason: String,
    },
    /// The data directory, or the folder of a data file in it (`iris/`), is
    /// a file, not a directory (`--data-dir README.md`): nothing can be
    /// found or downloaded there.
    #[error(
        "{}: {} is not a directory, so the data file {file} cannot be there; point HEBB_DATA_DIR (or --data-dir) at a directory that has the data files (iris/, mnist/, fashion-mnist/), or at one to download them into",
        path.display(),
        if path == data_dir { "the data directory".to_string() } else { format!("the folder of the data file (in the data directory {})", data_dir.display()) }
    )]
    NotADirectory {
        /// The file standing where a directory should be.
        path: PathBuf,
        /// The data directory.
        data_dir: PathBuf,
        /// The data file looked for, relative to the data directory
        /// (e.g. `iris/iris_training.csv`).
        file: String,
    },
    /// A directory stands where a data file should be (a file unpacked into a
    /// folder of its own name, or a path given one level too short).
    #[error("{}: is a directory, not the data file {file}; put the file there in place of the directory, or point HEBB_DATA_DIR (or --data-dir) at a directory that has it", path.display())]
    IsDirectory {
        /// The path of the directory.
        path: PathBuf,
        /// The data file expected there, relative to the data directory
        /// (e.g. `iris/iris_training.csv`).
        file: String,
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
    /// A file does not start like an IDX file: two zero bytes, a type byte
    /// and a number of dimensions (`00 00 08 03` for MNIST images).
    #[error("{}: not an IDX file: it starts with {}{}, but an IDX file starts with two zero bytes, a type byte and a number of dimensions", path.display(), hex_bytes(found), idx_signature_hint(found))]
    IdxMagic {
        /// The file.
        path: PathBuf,
        /// Its first bytes (after gzip decompression, if it is compressed), up to 4.
        found: Vec<u8>,
    },
    /// The IDX element type is not unsigned bytes (`0x08`), the only type
    /// MNIST and Fashion-MNIST use.
    #[error("{}: IDX element type 0x{code:02x} ({}) is not supported; only 0x08 (unsigned byte) is", path.display(), idx_type_name(*code))]
    IdxType {
        /// The file.
        path: PathBuf,
        /// The type byte found (third byte of the file).
        code: u8,
    },
    /// The IDX header declares a number of dimensions outside `1..=4`.
    #[error("{}: the IDX header declares {dims} dimensions; hebb reads 1 to 4", path.display())]
    IdxDims {
        /// The file.
        path: PathBuf,
        /// The number of dimensions declared (fourth byte of the file).
        dims: u8,
    },
    /// The IDX header declares more data than hebb will allocate
    /// ([`MAX_IDX_BYTES`](crate::idx::MAX_IDX_BYTES)); nothing was allocated.
    #[error("{}: the IDX header declares shape {shape:?}, more than the {limit} bytes hebb reads from one file", path.display())]
    IdxTooLarge {
        /// The file.
        path: PathBuf,
        /// The declared dimensions.
        shape: Vec<u32>,
        /// The limit in bytes.
        limit: usize,
    },
    /// The file (after decompression) holds fewer bytes than its IDX header
    /// declares, or ends inside the header: a truncated download or copy.
    #[error("{}: truncated: {expected} bytes expected ({what}), the file holds {found}{}", path.display(), if *compressed { " after gzip decompression" } else { "" })]
    IdxTruncated {
        /// The file.
        path: PathBuf,
        /// What the expected length covers, e.g. `header of 3 dimensions`
        /// or `16-byte header + [10000, 28, 28] bytes of data`.
        what: String,
        /// Bytes the file must hold.
        expected: u64,
        /// Bytes it holds.
        found: u64,
        /// Whether the counts are of the decompressed stream.
        compressed: bool,
    },
    /// The file (after decompression) holds more bytes than its IDX header
    /// declares.
    #[error("{}: {} bytes after the {expected} that the IDX header declares ({what}); the file is not a well-formed IDX file", path.display(), match found { Some(found) => format!("{} trailing", found.saturating_sub(*expected)), None => "trailing data".to_string() })]
    IdxTrailing {
        /// The file.
        path: PathBuf,
        /// What the expected length covers.
        what: String,
        /// Bytes the file should hold (after decompression).
        expected: u64,
        /// Bytes it holds, where known (a plain file); `None` for a gzip
        /// stream, which is not decompressed past the first extra byte.
        found: Option<u64>,
    },
    /// A gzip-compressed file is corrupt or ends early.
    #[error("{}: corrupt or truncated gzip data after {decompressed} decompressed bytes: {source}", path.display())]
    Gzip {
        /// The file.
        path: PathBuf,
        /// Bytes decompressed before the error.
        decompressed: u64,
        /// flate2's error.
        source: std::io::Error,
    },
    /// An IDX array has the wrong number of dimensions for its role
    /// (images must be `[N, rows, cols]`, labels `[N]`).
    #[error("{}: expected {role} of rank {expected}, found shape {shape:?}", path.display())]
    IdxRank {
        /// The file.
        path: PathBuf,
        /// `images` or `labels`.
        role: &'static str,
        /// The rank required.
        expected: usize,
        /// The shape found.
        shape: Vec<usize>,
    },
    /// An image file and its label file hold different numbers of examples.
    #[error("{} holds {images} images but {} holds {labels} labels", images_path.display(), labels_path.display())]
    CountMismatch {
        /// The image file.
        images_path: PathBuf,
        /// Images in it.
        images: usize,
        /// The label file.
        labels_path: PathBuf,
        /// Labels in it.
        labels: usize,
    },
    /// A label in an IDX label file is not below the number of classes.
    #[error("{}: label {label} at index {index} is out of range for {classes} classes (0..{classes})", path.display())]
    IdxLabelOutOfRange {
        /// The label file.
        path: PathBuf,
        /// 0-based index of the label in the file.
        index: usize,
        /// The label found.
        label: u8,
        /// Number of classes (10 for MNIST and Fashion-MNIST).
        classes: usize,
    },
    /// Building a tensor failed.
    #[error(transparent)]
    Tensor(#[from] hebb_tensor::Error),
    /// [`MiniBatches::new`](crate::batches::MiniBatches::new) got a batch
    /// size of 0.
    #[error(
        "batch size must be at least 1, got 0 (for {n_samples} samples; \
         use MiniBatches::full for batch gradient descent)"
    )]
    ZeroBatchSize {
        /// The number of samples the batches were for.
        n_samples: usize,
    },
}

/// `Result` with hebb-data's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// The end of [`Error::Missing`]'s message when Debian's Fashion-MNIST
/// directory was searched: the package that installs the files there.
fn debian_hint(also_searched: &[PathBuf]) -> String {
    let debian = std::path::Path::new(crate::fashion_mnist::DEBIAN_DIR);
    if !also_searched.iter().any(|dir| dir == debian) {
        return String::new();
    }
    format!(
        "; on Debian, `apt-get install dataset-fashion-mnist` installs Fashion-MNIST in {}, \
         where hebb looks",
        debian.display()
    )
}

/// `bytes` as space-separated lowercase hex, e.g. `89 50 4e 47`.
fn hex_bytes(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "nothing (the file is empty)".to_string();
    }
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    hex.join(" ")
}

/// A hint naming a well-known format whose signature `bytes` start with.
fn idx_signature_hint(bytes: &[u8]) -> &'static str {
    const KNOWN: &[(&[u8], &str)] = &[
        (b"\x89PNG", " (a PNG image)"),
        (b"\x1f\x8b", " (gzip data inside a gzip file)"),
        (b"PK\x03\x04", " (a zip archive)"),
        (
            b"<",
            " (HTML or XML: an error page saved in place of the data?)",
        ),
        (b"\x93NUMPY", " (a NumPy .npy file)"),
    ];
    KNOWN
        .iter()
        .find(|(sig, _)| bytes.starts_with(sig) || (bytes.len() >= 2 && sig.starts_with(bytes)))
        .map_or("", |(_, hint)| hint)
}

/// The name of IDX type code `code`, as in LeCun's description of the format.
pub(crate) fn idx_type_name(code: u8) -> &'static str {
    match code {
        0x08 => "unsigned byte",
        0x09 => "signed byte",
        0x0B => "short, 2 bytes",
        0x0C => "int, 4 bytes",
        0x0D => "float, 4 bytes",
        0x0E => "double, 8 bytes",
        _ => "not an IDX type",
    }
}
