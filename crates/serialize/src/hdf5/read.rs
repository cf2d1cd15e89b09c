//! Parsing an HDF5 file held in memory into a [`File`] tree (what is read
//! is listed in the [module docs](super)).
//!
//! The parser never indexes past a buffer: every read goes through
//! [`Cur`], which returns an error naming the byte offset when a structure
//! runs past its end. Sizes read from the file are checked against the
//! file's length before anything is allocated from them, every structure
//! is visited at most once, and the bytes examined are counted against a
//! budget proportional to the file size, so a crafted file cannot make the
//! parser loop, recurse without bound, or allocate more than a small
//! multiple of the file.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use super::checksum::lookup3;
use super::{Attribute, Bytes, Dataset, Dtype, File, Group, Node, Value, element_count};
use crate::{Error, MAX_FILE_BYTES, Result, bounded};

/// Groups nested deeper than this are refused (Keras files nest 4 deep).
pub const MAX_DEPTH: usize = 64;

/// The 8-byte signature that opens every HDF5 superblock.
pub(crate) const SIGNATURE: [u8; 8] = *b"\x89HDF\r\n\x1a\n";

/// HDF5's own limit on the rank of a dataspace.
const MAX_RANK: usize = 32;

/// Message types (HDF5 file format specification, section IV.A.2).
const MSG_DATASPACE: u16 = 0x0001;
const MSG_LINK_INFO: u16 = 0x0002;
const MSG_DATATYPE: u16 = 0x0003;
const MSG_LINK: u16 = 0x0006;
const MSG_EXTERNAL_FILES: u16 = 0x0007;
const MSG_LAYOUT: u16 = 0x0008;
const MSG_FILTERS: u16 = 0x000B;
const MSG_ATTRIBUTE: u16 = 0x000C;
const MSG_CONTINUATION: u16 = 0x0010;
const MSG_SYMBOL_TABLE: u16 = 0x0011;
const MSG_ATTRIBUTE_INFO: u16 = 0x0015;

/// Reads and parses the HDF5 file at `path` (at most
/// [`MAX_FILE_BYTES`](crate::MAX_FILE_BYTES), checked before reading).
///
/// # Errors
/// [`Error::Io`], [`Error::TooLarge`]; [`Error::Hdf5`] for a file that is
/// not HDF5 or is damaged (naming the byte offset); [`Error::Hdf5Unsupported`]
/// for a root that is not a group, or structures beyond the limits.
pub fn read(path: impl AsRef<Path>) -> Result<File> {
    let path = path.as_ref();
    let bytes = bounded::read(path, MAX_FILE_BYTES)?;
    parse(bytes, path)
}

/// Parses a whole HDF5 file held in `bytes`; errors name `path`. Datasets
/// keep pointing into `bytes` (no copy) unless their byte order is
/// big-endian.
///
/// # Errors
/// As [`read`], without the I/O ones.
pub fn parse(bytes: impl Into<Arc<[u8]>>, path: &Path) -> Result<File> {
    let buf: Arc<[u8]> = bytes.into();
    let len = buf.len() as u64;
    let mut parser = Parser {
        buf,
        path,
        base: 0,
        so: 8,
        sl: 8,
        visited: HashSet::new(),
        work: 0,
        work_limit: len.saturating_mul(16).saturating_add(1 << 20),
        global_heaps: HashMap::new(),
    };
    let root = parser.superblock()?;
    match parser.object(root, 0)? {
        Node::Group(root) => Ok(File { root }),
        Node::Dataset(_) => Err(parser.unsupported("the root object is a dataset, not a group")),
        Node::Unsupported(why) => Err(parser.unsupported(format!("the root group: {why}"))),
    }
}

/// A read position in the file: reads are bounds-checked and fail with the
/// offset of the structure being read.
#[derive(Clone)]
struct Cur<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Absolute file offset of `buf[0]`.
    at: u64,
    so: usize,
    sl: usize,
    path: &'a Path,
}

impl<'a> Cur<'a> {
    fn offset(&self) -> u64 {
        self.at + self.pos as u64
    }

    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn error(&self, detail: impl Into<String>) -> Error {
        Error::Hdf5 {
            path: self.path.to_path_buf(),
            offset: self.offset(),
            detail: detail.into(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        match end {
            Some(end) => {
                let s = &self.buf[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(self.error(format!(
                "the structure runs past its end ({n} bytes needed, {} left)",
                self.remaining()
            ))),
        }
    }

    fn skip(&mut self, n: usize) -> Result<()> {
        self.take(n).map(drop)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16> {
        Ok(self.uint(2)? as u16)
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(self.uint(4)? as u32)
    }

    /// A little-endian unsigned integer of `n` (1..=8) bytes.
    fn uint(&mut self, n: usize) -> Result<u64> {
        let b = self.take(n)?;
        let mut v = [0u8; 8];
        let n = n.min(8);
        v[..n].copy_from_slice(&b[..n]);
        Ok(u64::from_le_bytes(v))
    }

    /// A file address; `None` for the undefined address (all bits set).
    fn addr(&mut self) -> Result<Option<u64>> {
        let so = self.so;
        let v = self.uint(so)?;
        let undefined = if so >= 8 {
            u64::MAX
        } else {
            (1u64 << (8 * so)) - 1
        };
        Ok((v != undefined).then_some(v))
    }

    /// A defined file address.
    fn defined_addr(&mut self, what: &str) -> Result<u64> {
        let at = self.offset();
        self.addr()?.ok_or_else(|| Error::Hdf5 {
            path: self.path.to_path_buf(),
            offset: at,
            detail: format!("the {what} address is undefined"),
        })
    }

    /// A length field.
    fn length(&mut self) -> Result<u64> {
        let sl = self.sl;
        self.uint(sl)
    }

    fn expect(&mut self, signature: &[u8], what: &str) -> Result<()> {
        let at = self.offset();
        let got = self.take(signature.len())?;
        if got != signature {
            return Err(Error::Hdf5 {
                path: self.path.to_path_buf(),
                offset: at,
                detail: format!(
                    "expected the {what} signature {:?}, found {:?}",
                    String::from_utf8_lossy(signature),
                    String::from_utf8_lossy(got)
                ),
            });
        }
        Ok(())
    }
}

/// A header message: its type, flags, data, and where the data starts.
struct Message<'a> {
    kind: u16,
    flags: u8,
    data: Cur<'a>,
}

/// A dataspace: `None` shape for HDF5's null dataspace (no elements).
struct Space {
    shape: Option<Vec<usize>>,
}

/// A datatype as far as hebb reads it.
#[derive(Debug, Clone)]
enum Type {
    Number { dtype: Dtype, big_endian: bool },
    FixedString { size: usize, space_padded: bool },
    VlenString,
    Other(String),
}

impl Type {
    /// Bytes per element in attribute data (vlen: length + heap id; 0 for
    /// types hebb does not read).
    fn element_size(&self, so: usize) -> usize {
        match self {
            Type::Number { dtype, .. } => dtype.size(),
            Type::FixedString { size, .. } => *size,
            Type::VlenString => 4 + so + 4,
            Type::Other(_) => 0,
        }
    }
}

/// A group member before it is parsed: its name, and its object header's
/// address or why it has none (a soft link).
type Member = (String, std::result::Result<u64, String>);

/// A local heap's data segment: absolute start and length.
#[derive(Clone, Copy)]
struct LocalHeap {
    start: u64,
    len: usize,
}

struct Parser<'p> {
    buf: Arc<[u8]>,
    path: &'p Path,
    /// The base address: file addresses are relative to it.
    base: u64,
    /// Size of offsets (addresses) in bytes.
    so: usize,
    /// Size of lengths in bytes.
    sl: usize,
    /// `(kind, address)` of every structure parsed, to refuse cycles.
    visited: HashSet<(u8, u64)>,
    /// Bytes examined so far, and the budget.
    work: u64,
    work_limit: u64,
    /// Global heap collections: address -> `(index, absolute start, length)`.
    global_heaps: HashMap<u64, Vec<(u16, u64, u64)>>,
}

impl<'p> Parser<'p> {
    fn bad(&self, offset: u64, detail: impl Into<String>) -> Error {
        Error::Hdf5 {
            path: self.path.to_path_buf(),
            offset,
            detail: detail.into(),
        }
    }

    fn unsupported(&self, detail: impl Into<String>) -> Error {
        Error::Hdf5Unsupported {
            path: self.path.to_path_buf(),
            detail: detail.into(),
        }
    }

    /// Counts `n` bytes of work against the budget.
    fn spend(&mut self, n: u64) -> Result<()> {
        self.work = self.work.saturating_add(n).saturating_add(16);
        if self.work > self.work_limit {
            return Err(self.unsupported(format!(
                "the file's structures add up to more than {} bytes of parsing; refusing to go on",
                self.work_limit
            )));
        }
        Ok(())
    }

    /// Marks a structure as visited; an error if it was already.
    fn visit(&mut self, kind: u8, addr: u64, what: &str) -> Result<()> {
        if !self.visited.insert((kind, addr)) {
            return Err(self.bad(
                self.base.saturating_add(addr),
                format!("the {what} is reached twice (a cycle or a shared structure)"),
            ));
        }
        Ok(())
    }

    /// A cursor over `data` (a part of the buffer starting at absolute `at`).
    fn cur<'a>(&self, data: &'a [u8], at: u64) -> Cur<'a>
    where
        'p: 'a,
    {
        Cur {
            buf: data,
            pos: 0,
            at,
            so: self.so,
            sl: self.sl,
            path: self.path,
        }
    }

    /// A cursor into `buf` (a clone of the file's buffer, so that the
    /// cursor does not borrow the parser) at file address `addr` (relative
    /// to the base), running to the end of the file, or to `len` bytes when given.
    fn at<'a>(&self, buf: &'a [u8], addr: u64, len: Option<u64>) -> Result<Cur<'a>>
    where
        'p: 'a,
    {
        let file_len = self.buf.len() as u64;
        let start = self
            .base
            .checked_add(addr)
            .filter(|&s| s <= file_len)
            .ok_or_else(|| {
                self.bad(
                    self.base.saturating_add(addr),
                    format!("address {addr} lies past the end of the file ({file_len} bytes)"),
                )
            })?;
        let end = match len {
            None => file_len,
            Some(n) => start.checked_add(n).filter(|&e| e <= file_len).ok_or_else(|| {
                self.bad(
                    start,
                    format!(
                        "a structure of {n} bytes at {start} runs past the end of the file ({file_len} bytes)"
                    ),
                )
            })?,
        };
        // start <= end <= buf.len(), both fit in usize as the buffer does.
        let data = &buf[start as usize..end as usize];
        Ok(self.cur(data, start))
    }

    /// Finds the superblock, sets the sizes and the base address, and
    /// returns the root group's object header address.
    fn superblock(&mut self) -> Result<u64> {
        let len = self.buf.len() as u64;
        // The superblock is at 0, or after a user block of 512, 1024, 2048, ... bytes.
        let mut at = 0u64;
        loop {
            if at.saturating_add(8) > len {
                return Err(self.bad(
                    0,
                    "no HDF5 signature (\\x89HDF\\r\\n\\x1a\\n) at byte 0 or after a user block: \
                     not an HDF5 file",
                ));
            }
            if self.buf[at as usize..at as usize + 8] == SIGNATURE {
                break;
            }
            at = if at == 0 { 512 } else { at * 2 };
        }
        let buf = self.buf.clone();
        let data = &buf[at as usize..];
        let mut c = self.cur(data, at);
        c.skip(8)?;
        let version = c.u8()?;
        let sizes = |c: &mut Cur<'_>, so: u8, sl: u8| -> Result<(usize, usize)> {
            for (what, v) in [("offsets", so), ("lengths", sl)] {
                if ![2, 4, 8].contains(&v) {
                    return Err(c.error(format!("size of {what} {v} is not 2, 4 or 8")));
                }
            }
            Ok((usize::from(so), usize::from(sl)))
        };
        let (root, eof) = match version {
            0 | 1 => {
                c.skip(4)?; // free-space, root entry and shared header versions, reserved
                let (so, sl) = (c.u8()?, c.u8()?);
                (self.so, self.sl) = sizes(&mut c, so, sl)?;
                (c.so, c.sl) = (self.so, self.sl);
                c.skip(1 + 2 + 2 + 4)?; // reserved, leaf K, internal K, flags
                if version == 1 {
                    c.skip(4)?; // indexed storage K, reserved
                }
                self.base = c.addr()?.unwrap_or(0);
                c.addr()?; // free-space info
                let eof = c.addr()?;
                c.addr()?; // driver info
                // The root group's symbol table entry.
                c.addr()?; // link name offset
                let root = c.defined_addr("root group object header")?;
                (root, eof)
            }
            2 | 3 => {
                let (so, sl) = (c.u8()?, c.u8()?);
                (self.so, self.sl) = sizes(&mut c, so, sl)?;
                (c.so, c.sl) = (self.so, self.sl);
                c.skip(1)?; // file consistency flags
                self.base = c.addr()?.unwrap_or(0);
                c.addr()?; // superblock extension
                let eof = c.addr()?;
                let root = c.defined_addr("root group object header")?;
                let covered = c.pos;
                let stored = c.u32()?;
                let computed = lookup3(&data[..covered], 0);
                if stored != computed {
                    return Err(self.bad(
                        at + covered as u64,
                        format!(
                            "superblock checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
                        ),
                    ));
                }
                (root, eof)
            }
            v => {
                return Err(self.bad(
                    at + 8,
                    format!("superblock version {v} is not 0, 1, 2 or 3"),
                ));
            }
        };
        if let Some(eof) = eof {
            let end = self.base.saturating_add(eof);
            if end > len {
                return Err(self.bad(
                    at,
                    format!("the file is truncated: the superblock says it ends at byte {end}, but it has {len} bytes"),
                ));
            }
        }
        Ok(root)
    }

    /// The messages of the object header at `addr` (version 1 or 2), with
    /// its continuation blocks followed.
    fn header(&mut self, addr: u64) -> Result<Vec<(u16, u8, u64, usize)>> {
        // First collect the blocks (absolute start, length, version-2 flags) and
        // check them, then cut the messages out of the shared buffer.
        let mut blocks: Vec<(u64, u64, Option<u8>)> = Vec::new();
        let mut pending: Vec<(u64, u64)> = Vec::new();
        let buf = self.buf.clone();
        let first = self.at(&buf, addr, None)?;
        let start = first.at;
        let v2_flags = if first.buf.starts_with(b"OHDR") {
            let mut c = first;
            c.skip(4)?;
            let version = c.u8()?;
            if version != 2 {
                return Err(c.error(format!(
                    "object header version {version} after OHDR is not 2"
                )));
            }
            let flags = c.u8()?;
            if flags & 0x20 != 0 {
                c.skip(16)?; // access, modification, change, birth times
            }
            if flags & 0x10 != 0 {
                c.skip(4)?; // attribute phase change values
            }
            let size = c.uint(1 << (flags & 0x03))?;
            let body = c.offset();
            // The checksum follows the messages and covers everything from "OHDR".
            let total = (body - start)
                .checked_add(size)
                .and_then(|n| n.checked_add(4));
            let total = total.ok_or_else(|| c.error("object header size overflows"))?;
            self.check_sum(start, total)?;
            blocks.push((body, size, Some(flags)));
            Some(flags)
        } else {
            let mut c = first;
            let version = c.u8()?;
            if version != 1 {
                return Err(self.bad(
                    start,
                    format!("expected an object header (version 1, or OHDR), found version byte {version}"),
                ));
            }
            c.skip(1 + 2 + 4)?; // reserved, number of messages, reference count
            let size = u64::from(c.u32()?);
            c.skip(4)?; // alignment padding: messages start 16 bytes in
            blocks.push((c.offset(), size, None));
            None
        };
        let mut messages = Vec::new();
        let mut index = 0;
        while index < blocks.len() {
            let (block_start, size, flags) = blocks[index];
            index += 1;
            self.spend(size)?;
            let rel = block_start - self.base;
            let mut c = self.at(&buf, rel, Some(size))?;
            let header_len = match flags {
                Some(f) if f & 0x04 != 0 => 6,
                Some(_) => 4,
                None => 8,
            };
            while c.remaining() >= header_len {
                let (kind, msg_size, msg_flags) = if flags.is_some() {
                    let kind = u16::from(c.u8()?);
                    let size = c.u16()?;
                    let f = c.u8()?;
                    if header_len == 6 {
                        c.skip(2)?; // creation order
                    }
                    (kind, size, f)
                } else {
                    let kind = c.u16()?;
                    let size = c.u16()?;
                    let f = c.u8()?;
                    c.skip(3)?;
                    (kind, size, f)
                };
                let at = c.offset();
                let data = c.take(usize::from(msg_size))?;
                if kind == MSG_CONTINUATION {
                    let mut d = self.cur(data, at);
                    let cont = d.defined_addr("continuation block")?;
                    let len = d.length()?;
                    pending.push((cont, len));
                } else {
                    messages.push((kind, msg_flags, at, data.len()));
                }
            }
            for (cont, len) in pending.drain(..) {
                self.visit(b'C', cont, "object header continuation block")?;
                let abs = self
                    .base
                    .checked_add(cont)
                    .ok_or_else(|| self.bad(start, "continuation block address overflows"))?;
                if v2_flags.is_some() {
                    // "OCHK", messages, checksum.
                    self.check_sum(abs, len)?;
                    let c = self.at(&buf, cont, Some(len))?;
                    let mut c2 = c.clone();
                    c2.expect(b"OCHK", "object header continuation")?;
                    if len < 8 {
                        return Err(
                            c.error("continuation block shorter than its signature and checksum")
                        );
                    }
                    blocks.push((abs + 4, len - 8, v2_flags));
                } else {
                    self.at(&buf, cont, Some(len))?;
                    blocks.push((abs, len, None));
                }
            }
        }
        Ok(messages)
    }

    /// Checks the lookup3 checksum stored in the last 4 of `len` bytes at absolute `start`.
    fn check_sum(&self, start: u64, len: u64) -> Result<()> {
        let file_len = self.buf.len() as u64;
        let end = start
            .checked_add(len)
            .filter(|&e| e <= file_len && len >= 4);
        let Some(end) = end else {
            return Err(self.bad(
                start,
                format!("a checksummed block of {len} bytes runs past the end of the file ({file_len} bytes)"),
            ));
        };
        let block = &self.buf[start as usize..end as usize];
        let (body, sum) = block.split_at(block.len() - 4);
        let stored = u32::from_le_bytes([sum[0], sum[1], sum[2], sum[3]]);
        let computed = lookup3(body, 0);
        if stored != computed {
            return Err(self.bad(
                end - 4,
                format!("checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"),
            ));
        }
        Ok(())
    }

    /// The object at `addr`: a group, a dataset, or why hebb does not read it.
    fn object(&mut self, addr: u64, depth: usize) -> Result<Node> {
        if depth > MAX_DEPTH {
            return Err(self.unsupported(format!("groups nested deeper than {MAX_DEPTH}")));
        }
        self.visit(b'O', addr, "object header")?;
        let buf = self.buf.clone();
        let messages: Vec<Message<'_>> = self
            .header(addr)?
            .into_iter()
            .map(|(kind, flags, at, len)| Message {
                kind,
                flags,
                data: self.cur(&buf[at as usize..at as usize + len], at),
            })
            .collect();
        let mut attributes = Vec::new();
        let mut symbol_table = None;
        let mut links = Vec::new();
        let mut space = None;
        let mut dtype = None;
        let mut layout = None;
        let mut unsupported: Option<String> = None;
        let mut is_group = false;
        for m in &messages {
            let shared = m.flags & 0x02 != 0;
            match m.kind {
                MSG_DATASPACE | MSG_DATATYPE if shared => {
                    unsupported.get_or_insert("a shared (committed) datatype or dataspace".into());
                }
                MSG_DATASPACE => space = Some(m.data.clone()),
                MSG_DATATYPE => dtype = Some(m.data.clone()),
                MSG_LAYOUT => layout = Some(m.data.clone()),
                MSG_FILTERS => {
                    unsupported.get_or_insert("filters (compression)".into());
                }
                MSG_EXTERNAL_FILES => {
                    unsupported.get_or_insert("data in external files".into());
                }
                MSG_ATTRIBUTE => attributes.push(self.attribute(m.data.clone())?),
                MSG_SYMBOL_TABLE => {
                    is_group = true;
                    let mut c = m.data.clone();
                    symbol_table = Some((
                        c.defined_addr("group B-tree")?,
                        c.defined_addr("local heap")?,
                    ));
                }
                MSG_LINK => {
                    is_group = true;
                    links.push(m.data.clone());
                }
                MSG_LINK_INFO => {
                    is_group = true;
                    let mut c = m.data.clone();
                    c.skip(1)?; // version
                    let flags = c.u8()?;
                    if flags & 0x01 != 0 {
                        c.skip(8)?; // maximum creation index
                    }
                    if c.addr()?.is_some() {
                        return Err(self.unsupported(
                            "a group with dense link storage (a fractal heap, which HDF5 uses for \
                             new-style groups of more than 8 links)",
                        ));
                    }
                }
                MSG_ATTRIBUTE_INFO => {
                    let mut c = m.data.clone();
                    c.skip(1)?; // version
                    let flags = c.u8()?;
                    if flags & 0x01 != 0 {
                        c.skip(2)?; // maximum creation index
                    }
                    if c.addr()?.is_some() {
                        return Err(self.unsupported(
                            "dense attribute storage (a fractal heap of attributes)",
                        ));
                    }
                }
                _ => {}
            }
        }
        drop(messages);
        if is_group {
            let mut members = Vec::new();
            if let Some((btree, heap)) = symbol_table {
                let heap = self.local_heap(heap)?;
                let mut entries = Vec::new();
                self.group_btree(btree, None, heap, &mut entries)?;
                for (name, target) in entries {
                    let node = match target {
                        Ok(child) => self.object(child, depth + 1)?,
                        Err(why) => Node::Unsupported(why),
                    };
                    members.push((name, node));
                }
            }
            for link in links {
                let (name, target) = self.link(link)?;
                let node = match target {
                    Ok(child) => self.object(child, depth + 1)?,
                    Err(why) => Node::Unsupported(why),
                };
                members.push((name, node));
            }
            members.sort_by(|a, b| a.0.cmp(&b.0));
            if let Some(w) = members.windows(2).find(|w| w[0].0 == w[1].0) {
                return Err(self.bad(
                    self.base.saturating_add(addr),
                    format!("the group has two members named {:?}", w[0].0),
                ));
            }
            return Ok(Node::Group(Group {
                attributes,
                members,
            }));
        }
        let (Some(space), Some(dtype), Some(layout)) = (space, dtype, layout) else {
            return Ok(Node::Unsupported(
                "an object that is neither a group nor a dataset (e.g. a committed datatype)"
                    .into(),
            ));
        };
        if let Some(why) = unsupported {
            return Ok(Node::Unsupported(format!("a dataset with {why}")));
        }
        let node = self.dataset(space, dtype, layout)?;
        Ok(match node {
            Node::Dataset(mut d) => {
                d.attributes = attributes;
                Node::Dataset(d)
            }
            other => other,
        })
    }

    /// The dataset described by its dataspace, datatype and layout messages.
    fn dataset(&mut self, space: Cur<'_>, dtype: Cur<'_>, layout: Cur<'_>) -> Result<Node> {
        let at = layout.offset();
        let shape = match self.dataspace(space)?.shape {
            Some(s) => s,
            None => return Ok(Node::Unsupported("a dataset with a null dataspace".into())),
        };
        let (dtype, big_endian) = match self.datatype(dtype, 0)? {
            Type::Number { dtype, big_endian } => (dtype, big_endian),
            Type::FixedString { .. } | Type::VlenString => {
                return Ok(Node::Unsupported("a dataset of strings".into()));
            }
            Type::Other(what) => return Ok(Node::Unsupported(format!("a dataset of {what}"))),
        };
        let nbytes = element_count(&shape)
            .and_then(|n| n.checked_mul(dtype.size()))
            .filter(|&n| (n as u64) <= self.buf.len() as u64 || n == 0);
        let Some(nbytes) = nbytes else {
            return Err(self.bad(
                at,
                format!(
                    "a dataset of shape {shape:?} ({}) is larger than the file",
                    dtype.name()
                ),
            ));
        };
        let mut c = layout;
        let version = c.u8()?;
        // (absolute start of the data, bytes available there)
        let (start, available): (Option<u64>, u64) = match version {
            3 | 4 => {
                let class = c.u8()?;
                match class {
                    0 => {
                        let size = c.u16()?;
                        let s = c.offset();
                        c.skip(usize::from(size))?;
                        (Some(s), u64::from(size))
                    }
                    1 => {
                        let addr = c.addr()?;
                        let size = c.length()?;
                        (addr.map(|a| self.base.saturating_add(a)), size)
                    }
                    2 => return Ok(Node::Unsupported("a chunked dataset".into())),
                    3 => return Ok(Node::Unsupported("a virtual dataset".into())),
                    k => return Err(c.error(format!("unknown data layout class {k}"))),
                }
            }
            1 | 2 => {
                let rank = usize::from(c.u8()?);
                let class = c.u8()?;
                c.skip(5)?;
                match class {
                    0 => {
                        c.skip(rank.saturating_mul(4))?;
                        let size = c.u32()?;
                        let s = c.offset();
                        c.skip(size as usize)?;
                        (Some(s), u64::from(size))
                    }
                    1 => {
                        let addr = c.addr()?;
                        (addr.map(|a| self.base.saturating_add(a)), nbytes as u64)
                    }
                    2 => return Ok(Node::Unsupported("a chunked dataset".into())),
                    k => return Err(c.error(format!("unknown data layout class {k}"))),
                }
            }
            v => return Err(self.bad(at, format!("data layout message version {v} is not 1 to 4"))),
        };
        if nbytes == 0 {
            return Ok(Node::Dataset(Dataset::from_parts(
                dtype,
                shape,
                Bytes::new(self.buf.clone(), 0, 0),
            )));
        }
        let Some(start) = start else {
            return Ok(Node::Unsupported(
                "a dataset whose storage was never written".into(),
            ));
        };
        if available < nbytes as u64 {
            return Err(self.bad(
                at,
                format!(
                    "the dataset's storage holds {available} bytes, but shape {shape:?} of {} needs {nbytes}",
                    dtype.name()
                ),
            ));
        }
        let end = start
            .checked_add(nbytes as u64)
            .filter(|&e| e <= self.buf.len() as u64)
            .ok_or_else(|| {
                self.bad(
                    at,
                    format!(
                        "the dataset's {nbytes} bytes at {start} run past the end of the file ({} bytes)",
                        self.buf.len()
                    ),
                )
            })?;
        let (start, end) = (start as usize, end as usize);
        let data = if big_endian && dtype.size() > 1 {
            self.spend(nbytes as u64)?;
            let mut v = self.buf[start..end].to_vec();
            for e in v.chunks_exact_mut(dtype.size()) {
                e.reverse();
            }
            let n = v.len();
            Bytes::new(v.into(), 0, n)
        } else {
            Bytes::new(self.buf.clone(), start, end)
        };
        Ok(Node::Dataset(Dataset::from_parts(dtype, shape, data)))
    }

    /// A dataspace message.
    fn dataspace(&self, mut c: Cur<'_>) -> Result<Space> {
        let version = c.u8()?;
        let rank = usize::from(c.u8()?);
        let flags = c.u8()?;
        if rank > MAX_RANK {
            return Err(c.error(format!(
                "dataspace rank {rank} exceeds HDF5's maximum of {MAX_RANK}"
            )));
        }
        let null = match version {
            1 => {
                c.skip(5)?;
                false
            }
            2 => match c.u8()? {
                0 | 1 => false,
                2 => true,
                t => return Err(c.error(format!("unknown dataspace type {t}"))),
            },
            v => return Err(c.error(format!("dataspace message version {v} is not 1 or 2"))),
        };
        let mut shape = Vec::with_capacity(rank);
        for _ in 0..rank {
            let d = c.length()?;
            shape.push(
                usize::try_from(d).map_err(|_| c.error(format!("dimension {d} is too large")))?,
            );
        }
        if flags & 0x01 != 0 {
            c.skip(rank.saturating_mul(self.sl))?; // maximum dimensions
        }
        Ok(Space {
            shape: (!null).then_some(shape),
        })
    }

    /// A datatype message (`depth` guards the nesting of variable-length base types).
    fn datatype(&self, mut c: Cur<'_>, depth: u8) -> Result<Type> {
        let b0 = c.u8()?;
        let bits = c.take(3)?;
        let size = c.u32()? as usize;
        let (class, version) = (b0 & 0x0f, b0 >> 4);
        if !(1..=5).contains(&version) {
            return Err(c.error(format!("datatype version {version} is not 1 to 5")));
        }
        let big_endian = bits[0] & 0x01 != 0;
        Ok(match class {
            0 => {
                let offset = c.u16()?;
                let precision = c.u16()?;
                let signed = bits[0] & 0x08 != 0;
                if ![1, 2, 4, 8].contains(&size)
                    || offset != 0
                    || usize::from(precision) != size * 8
                {
                    Type::Other(format!(
                        "a {size}-byte integer with {precision} bits at offset {offset}"
                    ))
                } else if signed {
                    Type::Number {
                        dtype: Dtype::Int(size as u8),
                        big_endian,
                    }
                } else {
                    Type::Number {
                        dtype: Dtype::Uint(size as u8),
                        big_endian,
                    }
                }
            }
            1 => {
                let _offset = c.u16()?;
                let precision = c.u16()?;
                let exp_loc = c.u8()?;
                let exp_size = c.u8()?;
                let mant_loc = c.u8()?;
                let mant_size = c.u8()?;
                let bias = c.u32()?;
                let ieee = (
                    size, precision, exp_loc, exp_size, mant_loc, mant_size, bias,
                );
                if bits[0] & 0x40 != 0 {
                    Type::Other("a VAX-order float".into())
                } else if ieee == (4, 32, 23, 8, 0, 23, 127) {
                    Type::Number {
                        dtype: Dtype::F32,
                        big_endian,
                    }
                } else if ieee == (8, 64, 52, 11, 0, 52, 1023) {
                    Type::Number {
                        dtype: Dtype::F64,
                        big_endian,
                    }
                } else if ieee == (2, 16, 10, 5, 0, 10, 15) {
                    Type::Other("float16 (half precision)".into())
                } else {
                    Type::Other(format!("a non-IEEE {size}-byte float"))
                }
            }
            3 => {
                if size == 0 {
                    return Err(c.error("a fixed-length string type of size 0"));
                }
                Type::FixedString {
                    size,
                    space_padded: bits[0] & 0x0f == 2,
                }
            }
            9 => {
                if bits[0] & 0x0f == 1 {
                    if depth > 0 {
                        return Err(c.error("nested variable-length string types"));
                    }
                    // The base type (characters) follows; check it parses.
                    self.datatype(c, depth + 1)?;
                    Type::VlenString
                } else {
                    Type::Other("a variable-length sequence".into())
                }
            }
            2 => Type::Other("a time type".into()),
            4 => Type::Other("a bitfield".into()),
            5 => Type::Other("an opaque type".into()),
            6 => Type::Other("a compound type".into()),
            7 => Type::Other("a reference type".into()),
            8 => Type::Other("an enumeration".into()),
            10 => Type::Other("an array type".into()),
            k => return Err(c.error(format!("unknown datatype class {k}"))),
        })
    }

    /// An attribute message.
    fn attribute(&mut self, mut c: Cur<'_>) -> Result<Attribute> {
        let at = c.offset();
        let version = c.u8()?;
        let flags = c.u8()?; // reserved in version 1
        let name_size = usize::from(c.u16()?);
        let type_size = usize::from(c.u16()?);
        let space_size = usize::from(c.u16()?);
        let pad = |n: usize| if version == 1 { (n + 7) & !7 } else { n };
        match version {
            1 | 2 => {}
            3 => c.skip(1)?, // name character set
            v => {
                return Err(self.bad(
                    at,
                    format!("attribute message version {v} is not 1, 2 or 3"),
                ));
            }
        }
        let name_bytes = c.take(pad(name_size))?;
        let name_bytes = &name_bytes[..name_size.min(name_bytes.len())];
        let name_end = name_bytes
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(name_bytes.len());
        let name = std::str::from_utf8(&name_bytes[..name_end])
            .map_err(|_| self.bad(at, "an attribute name is not UTF-8"))?
            .to_string();
        let type_at = c.offset();
        let type_bytes = c.take(pad(type_size))?;
        let space_at = c.offset();
        let space_bytes = c.take(pad(space_size))?;
        let data = c;
        if version > 1 && flags & 0x03 != 0 {
            return Ok(Attribute {
                name,
                shape: Vec::new(),
                value: Value::Unsupported("a shared datatype or dataspace".into()),
            });
        }
        let ty = self.datatype(self.cur(type_bytes, type_at), 0)?;
        let space = self.dataspace(self.cur(space_bytes, space_at))?;
        let Some(shape) = space.shape else {
            return Ok(Attribute {
                name,
                shape: Vec::new(),
                value: Value::Unsupported("a null dataspace".into()),
            });
        };
        let elem = match &ty {
            Type::Other(what) => {
                return Ok(Attribute {
                    name,
                    shape,
                    value: Value::Unsupported(what.clone()),
                });
            }
            t => t.element_size(self.so),
        };
        let n = element_count(&shape);
        let need = n.and_then(|n| n.checked_mul(elem));
        let (Some(n), Some(need)) = (n, need) else {
            return Err(self.bad(at, format!("attribute {name}: shape {shape:?} overflows")));
        };
        let mut data = data;
        let raw = data.take(need).map_err(|_| {
            self.bad(
                at,
                format!(
                    "attribute {name}: shape {shape:?} needs {need} bytes of data, the message has {}",
                    data.remaining()
                ),
            )
        })?;
        let value = match ty {
            Type::Number { dtype, big_endian } => {
                let mut v = raw.to_vec();
                if big_endian {
                    for e in v.chunks_exact_mut(elem) {
                        e.reverse();
                    }
                }
                let d = Dataset::from_parts(dtype, shape.clone(), Bytes::new(v.into(), 0, need));
                match dtype {
                    Dtype::F32 | Dtype::F64 => Value::Floats(d.to_f64()),
                    Dtype::Int(_) => {
                        Value::Ints(d.raw().chunks_exact(elem).map(super::sign_extend).collect())
                    }
                    Dtype::Uint(_) => {
                        let vals: Option<Vec<i64>> = d
                            .raw()
                            .chunks_exact(elem)
                            .map(|c| i64::try_from(super::zero_extend(c)).ok())
                            .collect();
                        match vals {
                            Some(v) => Value::Ints(v),
                            None => Value::Unsupported("unsigned integers above i64::MAX".into()),
                        }
                    }
                }
            }
            Type::FixedString { space_padded, .. } => {
                let mut out = Vec::with_capacity(n);
                for s in raw.chunks_exact(elem) {
                    let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
                    let mut s = &s[..end];
                    if space_padded {
                        while let [rest @ .., b' '] = s {
                            s = rest;
                        }
                    }
                    match std::str::from_utf8(s) {
                        Ok(s) => out.push(s.to_string()),
                        Err(_) => {
                            return Ok(Attribute {
                                name,
                                shape,
                                value: Value::Unsupported("strings that are not UTF-8".into()),
                            });
                        }
                    }
                }
                Value::Strings(out)
            }
            Type::VlenString => {
                let mut out = Vec::with_capacity(n);
                for e in raw.chunks_exact(elem) {
                    let mut ec = self.cur(e, at);
                    let len = u64::from(ec.u32()?);
                    let collection = ec.addr()?;
                    let index = ec.u32()?;
                    let bytes = match collection {
                        None if len == 0 => Vec::new(),
                        None => {
                            return Err(self.bad(
                                at,
                                format!("attribute {name}: a string of {len} bytes has no heap"),
                            ));
                        }
                        Some(coll) => {
                            let (start, size) = self.global_heap_object(coll, index)?;
                            if len > size {
                                return Err(self.bad(
                                    start,
                                    format!("attribute {name}: a string of {len} bytes in a heap object of {size}"),
                                ));
                            }
                            self.buf[start as usize..(start + len) as usize].to_vec()
                        }
                    };
                    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
                    match String::from_utf8(bytes[..end].to_vec()) {
                        Ok(s) => out.push(s),
                        Err(_) => {
                            return Ok(Attribute {
                                name,
                                shape,
                                value: Value::Unsupported("strings that are not UTF-8".into()),
                            });
                        }
                    }
                }
                Value::Strings(out)
            }
            Type::Other(what) => Value::Unsupported(what),
        };
        Ok(Attribute { name, shape, value })
    }

    /// The absolute start and the size of object `index` of the global heap collection at `coll`.
    fn global_heap_object(&mut self, coll: u64, index: u32) -> Result<(u64, u64)> {
        if !self.global_heaps.contains_key(&coll) {
            let buf = self.buf.clone();
            let mut c = self.at(&buf, coll, None)?;
            let start = c.at;
            c.expect(b"GCOL", "global heap collection")?;
            let version = c.u8()?;
            if version != 1 {
                return Err(c.error(format!("global heap version {version} is not 1")));
            }
            c.skip(3)?;
            let size = c.length()?;
            if size < 16 {
                return Err(c.error(format!("global heap collection of {size} bytes")));
            }
            self.spend(size)?;
            let mut c = self.at(&buf, coll, Some(size))?;
            c.skip(16)?;
            let mut objects = Vec::new();
            while c.remaining() >= 8 + self.sl {
                let idx = c.u16()?;
                c.skip(2 + 4)?; // reference count, reserved
                let osize = c.length()?;
                if idx == 0 {
                    break; // free space to the end of the collection
                }
                let ostart = c.offset();
                let padded = osize.checked_add(7).map(|n| n & !7);
                let fits = padded.filter(|&p| p <= c.remaining() as u64);
                match fits {
                    Some(p) => c.skip(p as usize)?,
                    None if osize <= c.remaining() as u64 => c.skip(osize as usize)?,
                    None => {
                        return Err(c.error(format!(
                            "global heap object {idx} of {osize} bytes runs past its collection"
                        )));
                    }
                }
                objects.push((idx, ostart, osize));
            }
            let _ = start;
            self.global_heaps.insert(coll, objects);
        }
        let objects = &self.global_heaps[&coll];
        objects
            .iter()
            .find(|(i, _, _)| u32::from(*i) == index)
            .map(|&(_, s, n)| (s, n))
            .ok_or_else(|| {
                self.bad(
                    self.base.saturating_add(coll),
                    format!("global heap object {index} is not in the collection"),
                )
            })
    }

    /// A local heap: where its data segment is.
    fn local_heap(&mut self, addr: u64) -> Result<LocalHeap> {
        let buf = self.buf.clone();
        let mut c = self.at(&buf, addr, None)?;
        c.expect(b"HEAP", "local heap")?;
        let version = c.u8()?;
        if version != 0 {
            return Err(c.error(format!("local heap version {version} is not 0")));
        }
        c.skip(3)?;
        let size = c.length()?;
        c.length()?; // free list head
        let data = c.defined_addr("local heap data segment")?;
        let seg = self.at(&buf, data, Some(size))?;
        Ok(LocalHeap {
            start: seg.at,
            len: seg.buf.len(),
        })
    }

    /// The name at `offset` in a local heap.
    fn heap_name(&mut self, heap: LocalHeap, offset: u64) -> Result<String> {
        let buf = self.buf.clone();
        let seg = &buf[heap.start as usize..heap.start as usize + heap.len];
        let tail = usize::try_from(offset).ok().and_then(|o| seg.get(o..));
        let Some(tail) = tail else {
            return Err(self.bad(
                heap.start,
                format!(
                    "a name offset {offset} lies past the local heap ({} bytes)",
                    heap.len
                ),
            ));
        };
        let end = tail.iter().position(|&b| b == 0).ok_or_else(|| {
            self.bad(
                heap.start.saturating_add(offset),
                "a name in the local heap is not terminated",
            )
        })?;
        let name = &tail[..end];
        self.spend(end as u64)?;
        self.checked_name(name, heap.start.saturating_add(offset))
    }

    /// A link name: UTF-8, not empty, no `/`.
    fn checked_name(&self, name: &[u8], at: u64) -> Result<String> {
        let name =
            std::str::from_utf8(name).map_err(|_| self.bad(at, "a link name is not UTF-8"))?;
        if name.is_empty() || name.contains('/') || name == "." {
            return Err(self.bad(at, format!("invalid link name {name:?}")));
        }
        Ok(name.to_string())
    }

    /// Walks a group's version 1 B-tree, appending its members.
    fn group_btree(
        &mut self,
        addr: u64,
        level: Option<u8>,
        heap: LocalHeap,
        out: &mut Vec<Member>,
    ) -> Result<()> {
        self.visit(b'T', addr, "B-tree node")?;
        let buf = self.buf.clone();
        let mut c = self.at(&buf, addr, None)?;
        c.expect(b"TREE", "B-tree node")?;
        let node_type = c.u8()?;
        if node_type != 0 {
            return Err(c.error(format!(
                "B-tree node type {node_type} where a group node (0) belongs"
            )));
        }
        let node_level = c.u8()?;
        if let Some(l) = level
            && l != node_level
        {
            return Err(c.error(format!(
                "B-tree node of level {node_level} where level {l} belongs"
            )));
        }
        let entries = usize::from(c.u16()?);
        c.addr()?; // left sibling
        c.addr()?; // right sibling
        self.spend((entries as u64 + 1) * (self.so + self.sl) as u64)?;
        let mut children = Vec::with_capacity(entries.min(c.remaining() / (self.so + self.sl)));
        for _ in 0..entries {
            c.length()?; // key: a heap offset
            children.push(c.defined_addr("B-tree child")?);
        }
        c.length()?; // the last key
        for child in children {
            if node_level == 0 {
                self.symbol_node(child, heap, out)?;
            } else {
                self.group_btree(child, Some(node_level - 1), heap, out)?;
            }
        }
        Ok(())
    }

    /// A symbol table node: names (in the local heap) and object addresses.
    fn symbol_node(&mut self, addr: u64, heap: LocalHeap, out: &mut Vec<Member>) -> Result<()> {
        self.visit(b'S', addr, "symbol table node")?;
        let buf = self.buf.clone();
        let mut c = self.at(&buf, addr, None)?;
        c.expect(b"SNOD", "symbol table node")?;
        let version = c.u8()?;
        if version != 1 {
            return Err(c.error(format!("symbol table node version {version} is not 1")));
        }
        c.skip(1)?;
        let n = u64::from(c.u16()?);
        let entry = (2 * self.so + 24) as u64;
        self.spend(n * entry)?;
        let mut entries = Vec::new();
        for _ in 0..n {
            let name = c.uint(self.so)?;
            let object = c.addr()?;
            let cache_type = c.u32()?;
            c.skip(4 + 16)?; // reserved, scratch pad
            // Cache type 2: a soft link (its value in the scratch pad), no object.
            let target = match (cache_type, object) {
                (2, _) => Err("a soft link".to_string()),
                (_, Some(addr)) => Ok(addr),
                (_, None) => Err("a symbol table entry without an object".to_string()),
            };
            entries.push((name, target));
        }
        for (name, target) in entries {
            let name = self.heap_name(heap, name)?;
            out.push((name, target));
        }
        Ok(())
    }

    /// A link message: the name and the target address, or why it is not followed.
    fn link(&self, mut c: Cur<'_>) -> Result<(String, std::result::Result<u64, String>)> {
        let at = c.offset();
        let version = c.u8()?;
        if version != 1 {
            return Err(c.error(format!("link message version {version} is not 1")));
        }
        let flags = c.u8()?;
        let kind = if flags & 0x08 != 0 { c.u8()? } else { 0 };
        if flags & 0x04 != 0 {
            c.skip(8)?; // creation order
        }
        if flags & 0x10 != 0 {
            c.skip(1)?; // name character set
        }
        let len = c.uint(1 << (flags & 0x03))?;
        let len = usize::try_from(len).map_err(|_| c.error("link name length overflows"))?;
        let name = self.checked_name(c.take(len)?, at)?;
        let target = match kind {
            0 => Ok(c.defined_addr("hard link target")?),
            1 => Err("a soft link".to_string()),
            64 => Err("an external link".to_string()),
            k => Err(format!("a user-defined link of type {k}")),
        };
        Ok((name, target))
    }
}
