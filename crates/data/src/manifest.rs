//! The data-set manifest: every file hebb knows how to fetch, where it comes
//! from, and how a download is checked before it is kept.
//!
//! This table mirrors `datasets/manifest.csv` in the repository (a test keeps
//! the two in step). Paths are relative to the data directory
//! ([`DataDir`](crate::DataDir)) and always use `/`.

/// Relative path of TensorFlow's Iris training split (120 rows).
pub const IRIS_TRAINING: &str = "iris/iris_training.csv";
/// Relative path of TensorFlow's Iris test split (30 rows).
pub const IRIS_TEST: &str = "iris/iris_test.csv";

/// How a downloaded file is checked before it is renamed into place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check<'a> {
    /// The bytes must have this sha256 (hex, either case).
    Sha256(&'a str),
    /// The file must parse with [`read_iris_csv`](crate::read_iris_csv) to
    /// `rows` rows of `features` features with `classes` class names.
    ///
    /// `sha256` is that of the copy in `../shared/datasets`, recorded for
    /// reference only: DESIGN.md notes that download.tensorflow.org may serve
    /// other bytes (line endings, a trailing newline) of the same table, so
    /// the parsed header and shape are what is checked.
    IrisCsv {
        /// Data rows (the header's first field).
        rows: usize,
        /// Features per row (the header's second field).
        features: usize,
        /// Number of class names in the header.
        classes: usize,
        /// sha256 of the known copy (not enforced).
        sha256: &'a str,
    },
    /// Nothing is checked.
    None,
}

/// One file of a data set: where it lives under the data directory, where it
/// is downloaded from, and how the download is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatasetFile<'a> {
    /// Path relative to the data directory, with `/` separators
    /// (e.g. `mnist/train-images-idx3-ubyte.gz`).
    pub path: &'a str,
    /// Canonical download URL.
    pub url: &'a str,
    /// Check applied to a download before it is kept.
    pub check: Check<'a>,
}

impl DatasetFile<'_> {
    /// The entry of [`MANIFEST`] with this relative path, if any.
    pub fn find(path: &str) -> Option<&'static DatasetFile<'static>> {
        MANIFEST.iter().find(|f| f.path == path)
    }

    /// The recorded sha256 (hex), whether enforced ([`Check::Sha256`]) or
    /// for reference ([`Check::IrisCsv`]).
    pub fn sha256(&self) -> Option<&str> {
        match self.check {
            Check::Sha256(h) | Check::IrisCsv { sha256: h, .. } => Some(h),
            Check::None => None,
        }
    }
}

/// Every file hebb can download (see `datasets/README.md`):
/// TensorFlow's Iris CSVs (lecture 12.1, 12.2, 12.6), the canonical MNIST IDX
/// files from the mirror torchvision uses (lecture 13), and Fashion-MNIST's
/// IDX files from Zalando's canonical location.
///
/// The Fashion-MNIST sha256 values are those TensorFlow Datasets
/// (`url_checksums/fashion_mnist.txt`) and torchvision (prototype
/// `FashionMNIST._CHECKSUMS`) record; Zalando publishes only MD5s, which the
/// same files match (`datasets/README.md` tells how this was checked).
pub const MANIFEST: &[DatasetFile<'static>] = &[
    DatasetFile {
        path: IRIS_TRAINING,
        url: "http://download.tensorflow.org/data/iris_training.csv",
        check: Check::IrisCsv {
            rows: 120,
            features: 4,
            classes: 3,
            sha256: "c4c7652b14da06ba63b37f9f47d2e9aa4edced85701c9f8fce37501a1ca792e4",
        },
    },
    DatasetFile {
        path: IRIS_TEST,
        url: "http://download.tensorflow.org/data/iris_test.csv",
        check: Check::IrisCsv {
            rows: 30,
            features: 4,
            classes: 3,
            sha256: "3b6dde8ad159a8545d4b4d8290a9cc7d49a9a8803d6ffe755884269371cc1eb1",
        },
    },
    DatasetFile {
        path: "mnist/train-images-idx3-ubyte.gz",
        url: "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz",
        check: Check::Sha256("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
    },
    DatasetFile {
        path: "mnist/train-labels-idx1-ubyte.gz",
        url: "https://ossci-datasets.s3.amazonaws.com/mnist/train-labels-idx1-ubyte.gz",
        check: Check::Sha256("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
    },
    DatasetFile {
        path: "mnist/t10k-images-idx3-ubyte.gz",
        url: "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-images-idx3-ubyte.gz",
        check: Check::Sha256("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
    },
    DatasetFile {
        path: "mnist/t10k-labels-idx1-ubyte.gz",
        url: "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-labels-idx1-ubyte.gz",
        check: Check::Sha256("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
    },
    DatasetFile {
        path: "fashion-mnist/train-images-idx3-ubyte.gz",
        url: "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/train-images-idx3-ubyte.gz",
        check: Check::Sha256("3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"),
    },
    DatasetFile {
        path: "fashion-mnist/train-labels-idx1-ubyte.gz",
        url: "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/train-labels-idx1-ubyte.gz",
        check: Check::Sha256("a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"),
    },
    DatasetFile {
        path: "fashion-mnist/t10k-images-idx3-ubyte.gz",
        url: "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/t10k-images-idx3-ubyte.gz",
        check: Check::Sha256("346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"),
    },
    DatasetFile {
        path: "fashion-mnist/t10k-labels-idx1-ubyte.gz",
        url: "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/t10k-labels-idx1-ubyte.gz",
        check: Check::Sha256("67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"),
    },
];
