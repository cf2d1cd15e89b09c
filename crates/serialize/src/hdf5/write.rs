//! Writing a [`Group`] tree as an HDF5 file in the layout h5py writes by
//! default (superblock version 0, version 1 object headers, symbol-table
//! groups), so that h5py and libhdf5 read it.
//!
//! Objects are laid out children first: each dataset's data and object
//! header, then each group's local heap (the member names), symbol-table
//! nodes, B-tree node and object header; the superblock at byte 0 points
//! at the root group, written last. All structures are 8-byte aligned,
//! little-endian, with 8-byte addresses and lengths.

use std::path::Path;

use super::read::SIGNATURE;
use super::{Attribute, Dataset, Dtype, Group, Node, Value};
use crate::{Error, Result, atomic};

/// B-tree internal node `K` (h5py's default): a node has up to `2K` children.
const INTERNAL_K: usize = 16;
/// h5py's default leaf `K`: a symbol-table node holds up to `2K` entries.
const DEFAULT_LEAF_K: usize = 4;
/// The undefined address.
const UNDEF: u64 = u64::MAX;
/// "No free block" in a local heap (libhdf5's `H5HL_FREE_NULL`).
const FREE_NULL: u64 = 1;
/// Bytes of a symbol table entry with 8-byte offsets.
const ENTRY_SIZE: usize = 40;
/// Superblock version 0 with 8-byte offsets and lengths.
const SUPERBLOCK_SIZE: usize = 96;

/// Writes `root` as an HDF5 file at `path`, atomically (a temporary file
/// in the same directory, synced, then renamed over `path`).
///
/// # Errors
/// [`Error::AlreadyExists`] if `overwrite` is false and `path` exists;
/// [`Error::Io`] naming `path`; [`Error::Hdf5Value`] as [`to_bytes`].
pub fn write(path: impl AsRef<Path>, root: &Group, overwrite: bool) -> Result<()> {
    atomic::write_atomic(path, &to_bytes(root)?, overwrite)
}

/// The bytes of an HDF5 file holding `root`. Members are written sorted by
/// name (HDF5 keeps them so); attributes in order.
///
/// # Errors
/// [`Error::Hdf5Value`] for a name that HDF5 cannot hold (empty, `.`, with
/// `/` or NUL), two members or two attributes of one name, an attribute
/// over the 64 KiB an HDF5 header message holds, a group of more than
/// 4 million members, or a [`Node::Unsupported`] or
/// [`Value::Unsupported`] (which cannot be written).
pub fn to_bytes(root: &Group) -> Result<Vec<u8>> {
    let largest = largest_group(root);
    let leaf_k = largest.div_ceil(4 * INTERNAL_K).max(DEFAULT_LEAF_K);
    let leaf_k = u16::try_from(leaf_k).map_err(|_| {
        invalid(format!(
            "a group of {largest} members is too large to write"
        ))
    })?;
    let mut w = Writer {
        out: vec![0; SUPERBLOCK_SIZE],
        leaf_k: usize::from(leaf_k),
    };
    let (root_addr, btree, heap) = w.group(root, "/")?;
    let eof = w.out.len() as u64;
    let mut sb = Vec::with_capacity(SUPERBLOCK_SIZE);
    sb.extend(SIGNATURE);
    // Versions: superblock 0, free space 0, root entry 0, reserved, shared header 0;
    // sizes of offsets and lengths 8; reserved.
    sb.extend([0, 0, 0, 0, 0, 8, 8, 0]);
    sb.extend(leaf_k.to_le_bytes());
    sb.extend((INTERNAL_K as u16).to_le_bytes());
    sb.extend(0u32.to_le_bytes()); // file consistency flags
    for a in [0, UNDEF, eof, UNDEF] {
        // base, free-space info, end of file, driver info
        sb.extend(a.to_le_bytes());
    }
    // The root group's symbol table entry, caching its B-tree and heap (cache type 1).
    sb.extend(0u64.to_le_bytes());
    sb.extend(root_addr.to_le_bytes());
    sb.extend(1u32.to_le_bytes());
    sb.extend(0u32.to_le_bytes());
    sb.extend(btree.to_le_bytes());
    sb.extend(heap.to_le_bytes());
    debug_assert_eq!(sb.len(), SUPERBLOCK_SIZE);
    w.out[..SUPERBLOCK_SIZE].copy_from_slice(&sb);
    Ok(w.out)
}

fn invalid(detail: String) -> Error {
    Error::Hdf5Value { detail }
}

/// The most members of any group in the tree.
fn largest_group(g: &Group) -> usize {
    g.members
        .iter()
        .map(|(_, m)| match m {
            Node::Group(c) => largest_group(c),
            _ => 0,
        })
        .max()
        .unwrap_or(0)
        .max(g.members.len())
}

struct Writer {
    out: Vec<u8>,
    leaf_k: usize,
}

fn pad8(v: &mut Vec<u8>) {
    while !v.len().is_multiple_of(8) {
        v.push(0);
    }
}

fn check_name(name: &str, context: &str) -> Result<()> {
    if name.is_empty() || name == "." || name.contains('/') || name.contains('\0') {
        return Err(invalid(format!(
            "{context}: {name:?} is not a valid HDF5 name"
        )));
    }
    Ok(())
}

impl Writer {
    fn align(&mut self) {
        pad8(&mut self.out);
    }

    fn addr(&self) -> u64 {
        self.out.len() as u64
    }

    /// Writes a group and its members; returns its object header, B-tree and heap addresses.
    fn group(&mut self, g: &Group, path: &str) -> Result<(u64, u64, u64)> {
        let mut members: Vec<&(String, Node)> = g.members.iter().collect();
        members.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(w) = members.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(invalid(format!(
                "group {path} has two members named {:?}",
                w[0].0
            )));
        }
        let mut entries = Vec::with_capacity(members.len());
        for (name, node) in &members {
            check_name(name, path)?;
            let child = join(path, name);
            let addr = match node {
                Node::Group(c) => self.group(c, &child)?.0,
                Node::Dataset(d) => self.dataset(d, &child)?,
                Node::Unsupported(why) => {
                    return Err(invalid(format!("{child}: cannot write {why}")));
                }
            };
            entries.push((name.as_str(), addr));
        }

        // The local heap: "" at offset 0, then each name, NUL-terminated, 8-byte padded.
        let mut data = vec![0u8; 8];
        let mut offsets = Vec::with_capacity(entries.len());
        for (name, _) in &entries {
            offsets.push(data.len() as u64);
            data.extend(name.as_bytes());
            data.push(0);
            pad8(&mut data);
        }
        self.align();
        let heap = self.addr();
        self.out.extend(b"HEAP");
        self.out.extend([0, 0, 0, 0]); // version 0, reserved
        self.out.extend((data.len() as u64).to_le_bytes());
        self.out.extend(FREE_NULL.to_le_bytes());
        self.out.extend((heap + 32).to_le_bytes());
        self.out.extend(&data);

        // Symbol-table nodes of up to 2 * leaf_k entries each.
        let capacity = 2 * self.leaf_k;
        let node_size = 8 + capacity * ENTRY_SIZE;
        let mut snods = Vec::new();
        let indices: Vec<usize> = (0..entries.len()).collect();
        for chunk in indices.chunks(capacity) {
            self.align();
            let at = self.addr();
            let start = self.out.len();
            self.out.extend(b"SNOD");
            self.out.extend([1, 0]);
            self.out.extend((chunk.len() as u16).to_le_bytes());
            for &i in chunk {
                self.out.extend(offsets[i].to_le_bytes());
                self.out.extend(entries[i].1.to_le_bytes());
                self.out.extend([0u8; 24]); // cache type 0, reserved, scratch pad
            }
            self.out.resize(start + node_size, 0);
            let last = chunk.last().map_or(0, |&i| offsets[i]);
            snods.push((at, last));
        }
        if snods.len() > 2 * INTERNAL_K {
            return Err(invalid(format!(
                "group {path}: {} members do not fit one B-tree node",
                entries.len()
            )));
        }

        // One B-tree leaf: key 0 is "", key i + 1 the last name in node i.
        self.align();
        let btree = self.addr();
        let start = self.out.len();
        self.out.extend(b"TREE");
        self.out.extend([0, 0]); // group node, level 0
        self.out.extend((snods.len() as u16).to_le_bytes());
        self.out.extend(UNDEF.to_le_bytes());
        self.out.extend(UNDEF.to_le_bytes());
        self.out.extend(0u64.to_le_bytes());
        for (at, last) in &snods {
            self.out.extend(at.to_le_bytes());
            self.out.extend(last.to_le_bytes());
        }
        self.out.resize(
            start + 24 + 2 * INTERNAL_K * 8 + (2 * INTERNAL_K + 1) * 8,
            0,
        );

        let mut messages = Vec::new();
        let mut symbol_table = Vec::with_capacity(16);
        symbol_table.extend(btree.to_le_bytes());
        symbol_table.extend(heap.to_le_bytes());
        messages.push((0x0011u16, 0u8, symbol_table));
        self.attributes(&g.attributes, path, &mut messages)?;
        let addr = self.object_header(&messages, path)?;
        Ok((addr, btree, heap))
    }

    /// Writes a dataset's data and object header; returns the header's address.
    fn dataset(&mut self, d: &Dataset, path: &str) -> Result<u64> {
        let raw = d.raw();
        if let Dtype::Int(n) | Dtype::Uint(n) = d.dtype
            && ![1, 2, 4, 8].contains(&n)
        {
            return Err(invalid(format!("{path}: an integer of {n} bytes")));
        }
        let expected = super::element_count(&d.shape).and_then(|n| n.checked_mul(d.dtype.size()));
        if expected != Some(raw.len()) {
            return Err(invalid(format!(
                "{path}: shape {:?} of {} does not match its {} bytes",
                d.shape,
                d.dtype.name(),
                raw.len()
            )));
        }
        let data_addr = if raw.is_empty() {
            UNDEF
        } else {
            self.align();
            let a = self.addr();
            self.out.extend(raw);
            a
        };
        let mut layout = vec![3u8, 1];
        layout.extend(data_addr.to_le_bytes());
        layout.extend((raw.len() as u64).to_le_bytes());
        let mut messages = vec![
            (0x0001, 0, dataspace(&d.shape)),
            (0x0003, 1, datatype_number(d.dtype)),
            (0x0008, 0, layout),
        ];
        self.attributes(&d.attributes, path, &mut messages)?;
        self.object_header(&messages, path)
    }

    fn attributes(
        &mut self,
        attributes: &[Attribute],
        path: &str,
        messages: &mut Vec<(u16, u8, Vec<u8>)>,
    ) -> Result<()> {
        for (i, a) in attributes.iter().enumerate() {
            check_name(&a.name, &format!("{path}: attribute"))?;
            if attributes[..i].iter().any(|b| b.name == a.name) {
                return Err(invalid(format!(
                    "{path}: two attributes named {:?}",
                    a.name
                )));
            }
            messages.push((0x000C, 0, attribute(a, path)?));
        }
        Ok(())
    }

    /// A version 1 object header holding `messages` (type, flags, data); returns its address.
    fn object_header(&mut self, messages: &[(u16, u8, Vec<u8>)], path: &str) -> Result<u64> {
        let mut body = Vec::new();
        for (kind, flags, data) in messages {
            let mut data = data.clone();
            pad8(&mut data);
            let size = u16::try_from(data.len()).map_err(|_| {
                invalid(format!(
                    "{path}: a header message of {} bytes exceeds HDF5's 64 KiB",
                    data.len()
                ))
            })?;
            body.extend(kind.to_le_bytes());
            body.extend(size.to_le_bytes());
            body.extend([*flags, 0, 0, 0]);
            body.extend(data);
        }
        let count = u16::try_from(messages.len())
            .map_err(|_| invalid(format!("{path}: too many header messages")))?;
        let size = u32::try_from(body.len())
            .map_err(|_| invalid(format!("{path}: object header too large")))?;
        self.align();
        let addr = self.addr();
        self.out.extend([1, 0]);
        self.out.extend(count.to_le_bytes());
        self.out.extend(1u32.to_le_bytes()); // reference count
        self.out.extend(size.to_le_bytes());
        self.out.extend([0u8; 4]);
        self.out.extend(body);
        Ok(addr)
    }
}

fn join(path: &str, name: &str) -> String {
    if path == "/" {
        format!("/{name}")
    } else {
        format!("{path}/{name}")
    }
}

/// A version 1 dataspace message: scalar for `[]`, else simple.
fn dataspace(shape: &[usize]) -> Vec<u8> {
    let mut v = vec![1u8, shape.len() as u8, 0, 0, 0, 0, 0, 0];
    for &d in shape {
        v.extend((d as u64).to_le_bytes());
    }
    v
}

/// A little-endian numeric datatype message.
fn datatype_number(dtype: Dtype) -> Vec<u8> {
    match dtype {
        Dtype::F32 | Dtype::F64 => {
            let (size, sign, exp_loc, exp_size, mant_size, bias): (u32, u8, u8, u8, u8, u32) =
                if dtype == Dtype::F32 {
                    (4, 31, 23, 8, 23, 127)
                } else {
                    (8, 63, 52, 11, 52, 1023)
                };
            // Class 1 version 1; little-endian, implied mantissa MSB (0x20); sign bit position.
            let mut v = vec![0x11, 0x20, sign, 0];
            v.extend(size.to_le_bytes());
            v.extend(0u16.to_le_bytes());
            v.extend((size as u16 * 8).to_le_bytes());
            v.extend([exp_loc, exp_size, 0, mant_size]);
            v.extend(bias.to_le_bytes());
            v
        }
        Dtype::Int(n) | Dtype::Uint(n) => {
            let signed = if matches!(dtype, Dtype::Int(_)) {
                0x08
            } else {
                0
            };
            let mut v = vec![0x10, signed, 0, 0];
            v.extend(u32::from(n).to_le_bytes());
            v.extend(0u16.to_le_bytes());
            v.extend((u16::from(n) * 8).to_le_bytes());
            v
        }
    }
}

/// A version 1 attribute message.
fn attribute(a: &Attribute, path: &str) -> Result<Vec<u8>> {
    let count = super::element_count(&a.shape)
        .ok_or_else(|| invalid(format!("{path}: attribute {}: shape overflows", a.name)))?;
    let (dtype, data) = match &a.value {
        Value::Strings(values) => {
            let size = values.iter().map(String::len).max().unwrap_or(0).max(1);
            let ascii = values.iter().all(|s| s.is_ascii());
            // Class 3 version 1: null-padded, ASCII or UTF-8.
            let charset = if ascii { 0x00 } else { 0x10 };
            let mut t = vec![0x13, 0x01 | charset, 0, 0];
            t.extend((size as u32).to_le_bytes());
            let mut data = Vec::with_capacity(values.len() * size);
            for s in values {
                if s.contains('\0') {
                    return Err(invalid(format!(
                        "{path}: attribute {}: a string with a NUL character",
                        a.name
                    )));
                }
                data.extend(s.as_bytes());
                data.resize(data.len() + size - s.len(), 0);
            }
            (t, data)
        }
        Value::Floats(values) => (
            datatype_number(Dtype::F64),
            values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ),
        Value::Ints(values) => (
            datatype_number(Dtype::Int(8)),
            values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ),
        Value::Unsupported(why) => {
            return Err(invalid(format!(
                "{path}: attribute {}: cannot write {why}",
                a.name
            )));
        }
    };
    let values = match &a.value {
        Value::Strings(v) => v.len(),
        Value::Floats(v) => v.len(),
        Value::Ints(v) => v.len(),
        Value::Unsupported(_) => 0,
    };
    if values != count {
        return Err(invalid(format!(
            "{path}: attribute {}: {values} values for shape {:?}",
            a.name, a.shape
        )));
    }
    let space = dataspace(&a.shape);
    let mut name = a.name.as_bytes().to_vec();
    name.push(0);
    let mut v = vec![1u8, 0];
    v.extend((name.len() as u16).to_le_bytes());
    v.extend((dtype.len() as u16).to_le_bytes());
    v.extend((space.len() as u16).to_le_bytes());
    for mut part in [name, dtype, space] {
        pad8(&mut part);
        v.extend(part);
    }
    v.extend(data);
    if v.len() > usize::from(u16::MAX) - 7 {
        return Err(invalid(format!(
            "{path}: attribute {} of {} bytes exceeds the 64 KiB an HDF5 header message holds",
            a.name,
            v.len()
        )));
    }
    Ok(v)
}
