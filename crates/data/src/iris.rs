//! Reader for TensorFlow's Iris CSV files (lecture 12.1, 12.2, 12.6).
//!
//! The format is the one `tf.contrib.learn.datasets.base.load_csv_with_header`
//! reads: a header line `N,F,name_0,...,name_{C-1}` (e.g.
//! `120,4,setosa,versicolor,virginica`), then `N` rows of `F` float features
//! followed by an integer class label in `0..C`.
//!
//! The lecture loads these files with `pd.read_csv(path, header=0)` and
//! centres each split with its own column means,
//! `x = x - np.mean(x, axis=0)`, before `tf.cast(x, tf.float32)`;
//! [`IrisSplit::centred`] and [`IrisSplit::features_tensor`] reproduce that
//! bit for bit:
//!
//! ```text
//! mean_j = (x_0j + x_1j + ... + x_(N-1)j) / N     (f64, rows added in order)
//! x'_ij  = x_ij - mean_j
//! ```
//!
//! Differences from pandas, all deliberate: the row count in the header is
//! enforced ([`Error::RowCount`]), every row must have exactly `F + 1`
//! fields ([`Error::RowLength`]; pandas would pad short rows with NaN), and an
//! empty field is an error rather than NaN. Spaces around fields are ignored,
//! as Python's `float()` ignores them. A label may be written `2` or, since
//! pandas reads such a column as floats that the lecture then casts to
//! `int32`, `2.0`; a label with a fractional part (`2.5`) is rejected rather
//! than truncated.

use std::path::Path;

use hebb_tensor::Tensor;

use crate::manifest::{IRIS_TEST, IRIS_TRAINING};
use crate::{DataDir, Error, Result};

/// One split of an Iris-format CSV file: `N` rows of `F` features and a label.
///
/// The fields are public plain data; the methods do not panic if they are
/// made inconsistent, but [`features_tensor`](Self::features_tensor) then
/// returns a shape error.
#[derive(Debug, Clone, PartialEq)]
pub struct IrisSplit {
    /// Features, row-major, shape `[N, F]`, as parsed (f64, correctly rounded
    /// like pandas).
    pub features: Vec<f64>,
    /// Class labels, shape `[N]`, each in `0..class_names.len()`.
    pub labels: Vec<usize>,
    /// `F`, the number of features per row (4 for Iris).
    pub n_features: usize,
    /// Class names from the header, in label order
    /// (`setosa`, `versicolor`, `virginica` for Iris).
    pub class_names: Vec<String>,
}

impl IrisSplit {
    /// `N`, the number of rows.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the split has no rows.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// `C`, the number of classes named in the header.
    pub fn n_classes(&self) -> usize {
        self.class_names.len()
    }

    /// The features as an `f32` tensor of shape `[N, F]`, each value rounded
    /// to the nearest `f32` (`tf.cast(x, tf.float32)`).
    ///
    /// # Errors
    /// [`Error::Tensor`] if `features.len() != N * F`.
    pub fn features_tensor(&self) -> Result<Tensor> {
        Ok(Tensor::from_f64(
            &self.features,
            &[self.len(), self.n_features],
        )?)
    }

    /// The labels one-hot encoded, shape `[N, C]`
    /// (`tf.one_hot(tf.constant(y, dtype=tf.int32), C)`).
    ///
    /// # Errors
    /// [`Error::Tensor`] if a label is `>= C`.
    pub fn one_hot(&self) -> Result<Tensor> {
        Ok(Tensor::one_hot(&self.labels, self.n_classes())?)
    }

    /// Column means, shape `[F]`, as `np.mean(x, axis=0)` computes them on a
    /// C-order float64 array: the rows are added one after another in f64,
    /// then divided by `N`. An empty split gives NaN means, as NumPy does.
    pub fn column_means(&self) -> Vec<f64> {
        let mut rows = self.rows();
        let Some(first) = rows.next() else {
            return vec![f64::NAN; self.n_features];
        };
        let mut sums = first.to_vec();
        let mut n = 1usize;
        for row in rows {
            sums.iter_mut().zip(row).for_each(|(s, x)| *s += x);
            n += 1;
        }
        sums.iter().map(|s| s / n as f64).collect()
    }

    /// A copy with this split's own column means subtracted from every row
    /// (lecture 12.5: `x_train = x_train - np.mean(x_train, axis=0)`; the
    /// test split is centred with the test means, as the lecture does).
    /// Shape `[N, F]` as before; labels and class names are unchanged.
    pub fn centred(&self) -> IrisSplit {
        let means = self.column_means();
        let features = self
            .rows()
            .flat_map(|row| row.iter().zip(&means).map(|(x, m)| x - m))
            .collect();
        IrisSplit {
            features,
            ..self.clone()
        }
    }

    fn rows(&self) -> std::slice::ChunksExact<'_, f64> {
        self.features.chunks_exact(self.n_features.max(1))
    }
}

/// Reads one Iris-format CSV file (format and differences from pandas in the
/// [module docs](crate::iris)).
///
/// # Errors
/// [`Error::Io`] if the file cannot be opened, [`Error::Csv`] if it is not
/// readable CSV (e.g. invalid UTF-8), [`Error::Header`] for a missing or
/// malformed header, [`Error::RowLength`], [`Error::Parse`] and
/// [`Error::LabelOutOfRange`] for a bad row, [`Error::RowCount`] if the file
/// has more or fewer rows than the header declares. Each names the file, and
/// row errors the 1-based line (the header is line 1) and column.
pub fn read_iris_csv(path: impl AsRef<Path>) -> Result<IrisSplit> {
    let path = path.as_ref();
    let file = std::fs::File::open(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let csv_error = |source| Error::Csv {
        path: path.to_path_buf(),
        source,
    };
    let header_error = |detail: String| Error::Header {
        path: path.to_path_buf(),
        detail,
    };

    let mut records = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(file)
        .into_records();

    let header = records
        .next()
        .transpose()
        .map_err(csv_error)?
        .ok_or_else(|| header_error("the file is empty".into()))?;
    let count = |column: usize, what: &str| -> Result<usize> {
        let field = header.get(column).unwrap_or_default();
        field.parse().map_err(|_| {
            header_error(format!(
                "{field:?} (column {}) is not a {what}; expected `rows,features,class names...`",
                column + 1
            ))
        })
    };
    let declared = count(0, "row count")?;
    let n_features = count(1, "feature count")?;
    let class_names: Vec<String> = header.iter().skip(2).map(String::from).collect();
    if class_names.is_empty() {
        return Err(header_error(
            "no class names after the row and feature counts".into(),
        ));
    }
    let expected = n_features
        .checked_add(1)
        .ok_or_else(|| header_error(format!("feature count {n_features} is too large")))?;

    let mut split = IrisSplit {
        features: Vec::new(),
        labels: Vec::new(),
        n_features,
        class_names,
    };
    for record in records {
        let record = record.map_err(csv_error)?;
        let line = record.position().map_or(0, csv::Position::line);
        let fields: Vec<&str> = record.iter().collect();
        let Some((label, features)) = fields.split_last().filter(|_| fields.len() == expected)
        else {
            return Err(Error::RowLength {
                path: path.to_path_buf(),
                line,
                expected,
                found: fields.len(),
            });
        };
        let parse_error = |column: usize, detail: String| Error::Parse {
            path: path.to_path_buf(),
            line,
            column,
            detail,
        };
        for (i, field) in features.iter().enumerate() {
            let x = field
                .parse::<f64>()
                .map_err(|_| parse_error(i + 1, format!("{field:?} is not a number")))?;
            if !x.is_finite() {
                // Rust, like pandas, parses "nan" and "inf"; a measurement cannot be either.
                return Err(parse_error(
                    i + 1,
                    format!("{field:?} is not a finite number"),
                ));
            }
            split.features.push(x);
        }
        let label = parse_label(label).ok_or_else(|| {
            parse_error(
                expected,
                format!("{label:?} is not a class label (a non-negative integer)"),
            )
        })?;
        if label >= split.n_classes() {
            return Err(Error::LabelOutOfRange {
                path: path.to_path_buf(),
                line,
                column: expected,
                label,
                classes: split.n_classes(),
            });
        }
        split.labels.push(label);
    }
    if split.len() != declared {
        return Err(Error::RowCount {
            path: path.to_path_buf(),
            declared,
            found: split.len(),
        });
    }
    Ok(split)
}

/// A label written as an integer (`2`) or an integral float (`2.0`).
fn parse_label(field: &str) -> Option<usize> {
    field.parse().ok().or_else(|| {
        let v: f64 = field.parse().ok()?;
        // Below 2^53 every integral f64 converts to usize exactly.
        (v >= 0.0 && v.fract() == 0.0 && v < 9_007_199_254_740_992.0).then_some(v as usize)
    })
}

/// Loads TensorFlow's Iris data set as `(train, test)`: 120 and 30 rows of 4
/// features, 3 classes (lecture 12.5), from `iris/iris_training.csv` and
/// `iris/iris_test.csv` in `data_dir`, downloading them if missing.
///
/// # Errors
/// Those of [`DataDir::file`] (missing and offline, failed download) and of
/// [`read_iris_csv`].
pub fn load_iris(data_dir: &DataDir) -> Result<(IrisSplit, IrisSplit)> {
    let train = read_iris_csv(data_dir.file(IRIS_TRAINING)?)?;
    let test = read_iris_csv(data_dir.file(IRIS_TEST)?)?;
    Ok((train, test))
}

/// Loads the test split of TensorFlow's Iris data set alone: 30 rows of 4
/// features, 3 classes, from `iris/iris_test.csv` in `data_dir`,
/// downloading it if missing. `iris/iris_training.csv` is neither read nor
/// needed (for evaluating a trained model, as `cargo xtask model evaluate
/// --dataset iris` does).
///
/// # Errors
/// Those of [`DataDir::file`] and [`read_iris_csv`], for the test file.
pub fn load_iris_test(data_dir: &DataDir) -> Result<IrisSplit> {
    read_iris_csv(data_dir.file(IRIS_TEST)?)
}
