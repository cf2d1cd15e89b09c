//! The part of [HDF5] that Keras model files use, read and written in pure
//! Rust: groups, attributes and contiguous `f32`/`f64`/integer datasets.
//!
//! Keras writes `.h5` model files (`model.save("mnist_model.h5")`, the
//! lecture's 13.6) and the `model.weights.h5` inside a `.keras` archive
//! with h5py, whose default layout is HDF5's oldest: a version 0 superblock,
//! version 1 object headers, and groups as symbol tables (a version 1
//! B-tree of symbol-table nodes whose names live in a local heap).
//! Attributes hold strings (fixed-length, or variable-length in the global
//! heap) and small numeric arrays; datasets are stored contiguously.
//!
//! **Read**: superblocks 0–3, object headers 1 and 2 (with continuation
//! blocks; checksums of version 2 structures are verified), symbol-table
//! groups and compact (link-message) groups, attributes of version 1–3 with
//! fixed- and variable-length strings, integers and floats of either byte
//! order, scalar and simple dataspaces, contiguous and compact datasets.
//! Not read (an [`Error::Hdf5Unsupported`]
//! when the object is needed, or [`Node::Unsupported`] in the tree): chunked
//! or compressed datasets, dense (fractal-heap) link or attribute storage,
//! soft and external links, shared messages and committed datatypes,
//! compound, enum, array and reference types.
//!
//! **Written** ([`write()`], [`to_bytes`]): what h5py writes by default, so that
//! h5py (libhdf5) reads it: superblock 0, version 1 object headers, symbol
//! table groups (leaf `K` raised above h5py's 4 when a group is large, so
//! every B-tree has one level), fixed-length string and `f64`/`i64`
//! attributes, contiguous little-endian datasets.
//!
//! Every size, offset and count read from a file is checked against the
//! file's length before it is used or allocated; each structure is parsed
//! at most once (a link cycle is an error), and the total work is bounded
//! by a multiple of the file size. A damaged file gives an
//! [`Error::Hdf5`] naming the file and the byte offset,
//! never a panic.
//!
//! ```
//! use hebb_serialize::hdf5::{self, Attribute, Dataset, Group};
//!
//! let mut root = Group::default();
//! root.attributes.push(Attribute::string("model_config", "{\"class_name\": \"Sequential\"}"));
//! root.insert("model_weights/dense/kernel", Dataset::from_f32(&[2, 2], &[1.0, 2.0, 3.0, 4.0])?.into())?;
//! let bytes = hdf5::to_bytes(&root)?;
//!
//! let file = hdf5::parse(bytes, "model.h5".as_ref())?;
//! assert_eq!(file.root.attribute("model_config").and_then(|a| a.as_str()), Some("{\"class_name\": \"Sequential\"}"));
//! let kernel = file.root.dataset("model_weights/dense/kernel").unwrap();
//! assert_eq!(kernel.shape, [2, 2]);
//! assert_eq!(kernel.to_f32()?, [1.0, 2.0, 3.0, 4.0]);
//! # Ok::<(), hebb_serialize::Error>(())
//! ```
//!
//! [HDF5]: https://support.hdfgroup.org/documentation/hdf5/latest/_f_m_t3.html

mod checksum;
mod read;
mod write;

use std::sync::Arc;

pub use read::{MAX_DEPTH, parse, read};
pub use write::{to_bytes, write};

use crate::{Error, Result};

/// A group: attributes and named members (sorted by name in files read;
/// in insertion order when built, sorted on writing).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Group {
    /// The group's attributes, in file order.
    pub attributes: Vec<Attribute>,
    /// `(name, member)`; names contain no `/`.
    pub members: Vec<(String, Node)>,
}

/// A member of a group.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// A group.
    Group(Group),
    /// A dataset hebb can read.
    Dataset(Dataset),
    /// An object hebb does not read (a chunked dataset, a soft link, a
    /// committed datatype, ...): why not, for the error if it is needed.
    Unsupported(String),
}

impl From<Group> for Node {
    fn from(g: Group) -> Self {
        Node::Group(g)
    }
}

impl From<Dataset> for Node {
    fn from(d: Dataset) -> Self {
        Node::Dataset(d)
    }
}

/// The element type of a dataset (held little-endian in memory whatever the file's order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    /// IEEE 754 binary32.
    F32,
    /// IEEE 754 binary64.
    F64,
    /// A signed integer of this many bytes (1, 2, 4 or 8).
    Int(u8),
    /// An unsigned integer of this many bytes (1, 2, 4 or 8).
    Uint(u8),
}

impl Dtype {
    /// Bytes per element (integers: 1, 2, 4 or 8; another width counts as 1
    /// and is refused by [`to_bytes`]).
    pub fn size(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::F64 => 8,
            Dtype::Int(n) | Dtype::Uint(n) => usize::from(n).max(1),
        }
    }

    /// NumPy's name: `float32`, `int64`, `uint8`, ...
    pub fn name(self) -> String {
        match self {
            Dtype::F32 => "float32".into(),
            Dtype::F64 => "float64".into(),
            Dtype::Int(n) => format!("int{}", u32::from(n) * 8),
            Dtype::Uint(n) => format!("uint{}", u32::from(n) * 8),
        }
    }
}

/// Shared, immutable bytes: a dataset read from a file points into the
/// file's buffer instead of copying it.
#[derive(Clone)]
pub(crate) struct Bytes {
    buf: Arc<[u8]>,
    start: usize,
    end: usize,
}

impl Bytes {
    pub(crate) fn new(buf: Arc<[u8]>, start: usize, end: usize) -> Self {
        debug_assert!(start <= end && end <= buf.len());
        Self { buf, start, end }
    }

    fn owned(v: Vec<u8>) -> Self {
        let end = v.len();
        Self {
            buf: v.into(),
            start: 0,
            end,
        }
    }

    fn as_slice(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or(&[])
    }
}

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{} bytes>", self.end - self.start)
    }
}

impl PartialEq for Bytes {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

/// A dataset: element type, shape (`[]` for a scalar) and its elements,
/// row-major, little-endian.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// The dataset's attributes.
    pub attributes: Vec<Attribute>,
    /// The element type.
    pub dtype: Dtype,
    /// The shape; `[]` is a scalar (one element).
    pub shape: Vec<usize>,
    data: Bytes,
}

impl Dataset {
    /// A dataset of `f32` values of `shape` (`[]` for a scalar).
    ///
    /// # Errors
    /// [`Error::Hdf5Value`] if `values.len()` is not the product of `shape`.
    pub fn from_f32(shape: &[usize], values: &[f32]) -> Result<Self> {
        Self::from_le(
            Dtype::F32,
            shape,
            values.len(),
            values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        )
    }

    /// A dataset of `i64` values (Keras stores an optimiser's `iteration` as an `int64` scalar).
    ///
    /// # Errors
    /// As [`from_f32`](Self::from_f32).
    pub fn from_i64(shape: &[usize], values: &[i64]) -> Result<Self> {
        Self::from_le(
            Dtype::Int(8),
            shape,
            values.len(),
            values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        )
    }

    fn from_le(dtype: Dtype, shape: &[usize], n: usize, data: Vec<u8>) -> Result<Self> {
        if element_count(shape) != Some(n) {
            return Err(Error::Hdf5Value {
                detail: format!("{n} values do not fill a dataset of shape {shape:?}"),
            });
        }
        Ok(Self {
            attributes: Vec::new(),
            dtype,
            shape: shape.to_vec(),
            data: Bytes::owned(data),
        })
    }

    pub(crate) fn from_parts(dtype: Dtype, shape: Vec<usize>, data: Bytes) -> Self {
        Self {
            attributes: Vec::new(),
            dtype,
            shape,
            data,
        }
    }

    /// Number of elements (1 for a scalar).
    pub fn len(&self) -> usize {
        self.data.as_slice().len() / self.dtype.size()
    }

    /// Whether the dataset has no elements (a dimension is 0).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The raw little-endian bytes.
    pub fn raw(&self) -> &[u8] {
        self.data.as_slice()
    }

    /// The elements as `f32`: exact for `float32` datasets, rounded for
    /// `float64` and integers (as NumPy's `astype(float32)`).
    ///
    /// # Errors
    /// None for the types [`Dtype`] holds; the `Result` is for symmetry
    /// with the other readers.
    pub fn to_f32(&self) -> Result<Vec<f32>> {
        Ok(self.to_f64_iter().map(|v| v as f32).collect())
    }

    /// The elements as `f64` (exact for floats and for integers below 2^53).
    pub fn to_f64(&self) -> Vec<f64> {
        self.to_f64_iter().collect()
    }

    fn to_f64_iter(&self) -> Box<dyn Iterator<Item = f64> + '_> {
        let raw = self.data.as_slice();
        match self.dtype {
            // f32 stays exact: f32 -> f64 -> f32 is the identity, NaN payloads included.
            Dtype::F32 => Box::new(
                raw.chunks_exact(4)
                    .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]]))),
            ),
            Dtype::F64 => Box::new(raw.chunks_exact(8).map(|c| {
                let mut b = [0u8; 8];
                b.copy_from_slice(c);
                f64::from_le_bytes(b)
            })),
            Dtype::Int(n) => Box::new(
                raw.chunks_exact(usize::from(n).clamp(1, 8))
                    .map(move |c| sign_extend(c) as f64),
            ),
            Dtype::Uint(n) => Box::new(
                raw.chunks_exact(usize::from(n).clamp(1, 8))
                    .map(|c| zero_extend(c) as f64),
            ),
        }
    }

    /// The single element of a scalar (or one-element) integer dataset.
    ///
    /// # Errors
    /// [`Error::Hdf5Value`] if the dataset is not one integer.
    pub fn to_i64_scalar(&self) -> Result<i64> {
        let raw = self.data.as_slice();
        let fail = || Error::Hdf5Value {
            detail: format!(
                "expected one integer, got {} of shape {:?}",
                self.dtype.name(),
                self.shape
            ),
        };
        if self.len() != 1 {
            return Err(fail());
        }
        match self.dtype {
            Dtype::Int(_) => Ok(sign_extend(raw)),
            Dtype::Uint(_) => i64::try_from(zero_extend(raw)).map_err(|_| fail()),
            Dtype::F32 | Dtype::F64 => Err(fail()),
        }
    }
}

fn sign_extend(c: &[u8]) -> i64 {
    let mut b = [0u8; 8];
    let negative = c.last().is_some_and(|&x| x & 0x80 != 0);
    if negative {
        b = [0xff; 8];
    }
    b[..c.len().min(8)].copy_from_slice(&c[..c.len().min(8)]);
    i64::from_le_bytes(b)
}

fn zero_extend(c: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b[..c.len().min(8)].copy_from_slice(&c[..c.len().min(8)]);
    u64::from_le_bytes(b)
}

/// `Π shape` (1 for a scalar), `None` on overflow.
pub(crate) fn element_count(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

/// An attribute: a name, a shape (`[]` for a scalar) and its values.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    /// The attribute's name.
    pub name: String,
    /// The shape; `[]` is a scalar.
    pub shape: Vec<usize>,
    /// The values, row-major.
    pub value: Value,
}

/// The values of an attribute.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Strings (fixed- or variable-length in the file; written fixed-length).
    Strings(Vec<String>),
    /// Floating-point numbers (written as `float64`).
    Floats(Vec<f64>),
    /// Integers (written as `int64`).
    Ints(Vec<i64>),
    /// A type hebb does not read, and why.
    Unsupported(String),
}

impl Attribute {
    /// A scalar string attribute (as Keras' `f.attrs["model_config"] = json.encode("utf8")`).
    pub fn string(name: &str, value: &str) -> Self {
        Self {
            name: name.into(),
            shape: Vec::new(),
            value: Value::Strings(vec![value.into()]),
        }
    }

    /// A 1-D string attribute (Keras' `layer_names`, `weight_names`).
    pub fn strings(name: &str, values: &[&str]) -> Self {
        Self {
            name: name.into(),
            shape: vec![values.len()],
            value: Value::Strings(values.iter().map(|s| s.to_string()).collect()),
        }
    }

    /// A 1-D `float64` attribute (Keras writes `weight_names` of a layer
    /// without weights as an empty `float64` array).
    pub fn floats(name: &str, values: &[f64]) -> Self {
        Self {
            name: name.into(),
            shape: vec![values.len()],
            value: Value::Floats(values.to_vec()),
        }
    }

    /// The value of a scalar (or one-element) string attribute.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Strings(v) if v.len() == 1 => Some(&v[0]),
            _ => None,
        }
    }

    /// The strings of a string attribute; an empty numeric array (Keras'
    /// `weight_names` of a layer without weights) counts as no strings.
    pub fn as_strings(&self) -> Option<Vec<&str>> {
        match &self.value {
            Value::Strings(v) => Some(v.iter().map(String::as_str).collect()),
            Value::Floats(v) if v.is_empty() => Some(Vec::new()),
            Value::Ints(v) if v.is_empty() => Some(Vec::new()),
            _ => None,
        }
    }
}

impl Group {
    /// The attribute called `name`.
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }

    /// The member called `name` (one path component).
    pub fn member(&self, name: &str) -> Option<&Node> {
        self.members.iter().find(|(n, _)| n == name).map(|(_, m)| m)
    }

    /// The node at `path` (`a/b/c`, relative to this group).
    pub fn get(&self, path: &str) -> Option<&Node> {
        let mut parts = path.split('/');
        let first = parts.next()?;
        let mut node = self.member(first)?;
        for part in parts {
            match node {
                Node::Group(g) => node = g.member(part)?,
                _ => return None,
            }
        }
        Some(node)
    }

    /// The group at `path`.
    pub fn group(&self, path: &str) -> Option<&Group> {
        match self.get(path)? {
            Node::Group(g) => Some(g),
            _ => None,
        }
    }

    /// The dataset at `path`.
    pub fn dataset(&self, path: &str) -> Option<&Dataset> {
        match self.get(path)? {
            Node::Dataset(d) => Some(d),
            _ => None,
        }
    }

    /// Inserts `node` at `path` (`a/b/c`), creating the groups on the way
    /// (h5py's `create_dataset("a/b/c")`).
    ///
    /// # Errors
    /// [`Error::Hdf5Value`] for an empty path component or `.`, a
    /// name that is already taken, or a path through a dataset.
    pub fn insert(&mut self, path: &str, node: Node) -> Result<()> {
        let bad = |detail: String| Error::Hdf5Value { detail };
        let parts: Vec<&str> = path.split('/').collect();
        if parts
            .iter()
            .any(|p| p.is_empty() || *p == "." || p.contains('\0'))
        {
            return Err(bad(format!("invalid HDF5 path {path:?}")));
        }
        let (last, dirs) = parts
            .split_last()
            .ok_or_else(|| bad(format!("invalid HDF5 path {path:?}")))?;
        let mut group = self;
        for dir in dirs {
            let index = match group.members.iter().position(|(n, _)| n == dir) {
                Some(i) => i,
                None => {
                    group
                        .members
                        .push(((*dir).to_string(), Node::Group(Group::default())));
                    group.members.len() - 1
                }
            };
            group = match &mut group.members[index].1 {
                Node::Group(g) => g,
                _ => return Err(bad(format!("{path}: {dir} is not a group"))),
            };
        }
        if group.members.iter().any(|(n, _)| n == last) {
            return Err(bad(format!("{path}: the name is already taken")));
        }
        group.members.push(((*last).to_string(), node));
        Ok(())
    }
}

/// A parsed HDF5 file: its root group.
#[derive(Debug, Clone, PartialEq)]
pub struct File {
    /// The root group (`/`).
    pub root: Group,
}
