//! PyTorch checkpoints as `torch.save` writes them, read without Python and without
//! running anything from the file: the zip format (the default since PyTorch 1.6: a
//! `data.pkl` pickle plus one entry per storage) and the legacy format (torchvision's own
//! hub files for VGG: five pickles in a row, then the raw storages).
//!
//! The pickle is run on a small stack machine that knows only the opcodes a state dict
//! uses and only these callables: `collections.OrderedDict`, `torch._utils.
//! _rebuild_tensor_v2` and `_rebuild_parameter`, the storage types (as persistent ids). Any
//! other global, the way a pickle runs arbitrary code, is refused by name. No maintained
//! crate fits: serde-pickle does not take persistent ids, which every torch tensor is.

use super::file_err;
use crate::error::Result;
use crate::model::{Tensor, Weights};
use std::collections::HashMap;
use std::path::Path;

/// Limits of the stack machine, far above a state dict's and far below what would
/// exhaust memory: entries on the stack and in the memo.
const MAX_STACK: usize = 1 << 20;
const MAX_MEMO: usize = 1 << 20;
/// Values a pickle may copy out of its memo, all together: a memo read copies the value,
/// so a list appended to itself through the memo would otherwise double at every step.
const MAX_COPIED: usize = 1 << 24;
/// Containers inside containers: a state dict nests four deep (a checkpoint's optimizer
/// state five or six). The bound keeps every walk of a value (copy, count, drop) on a
/// stack of at most this many frames: a pickle nesting a tuple a million deep would
/// otherwise overflow the thread's stack in the drop of the value alone.
const MAX_DEPTH: u32 = 64;

/// A storage's element type.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Dtype {
    F32,
    F16,
    Bf16,
    F64,
    /// Integer storages (BN's `num_batches_tracked`): skipped.
    Int(usize),
}

impl Dtype {
    fn of(storage: &str) -> Option<Dtype> {
        Some(match storage {
            "FloatStorage" => Dtype::F32,
            "HalfStorage" => Dtype::F16,
            "BFloat16Storage" => Dtype::Bf16,
            "DoubleStorage" => Dtype::F64,
            "LongStorage" => Dtype::Int(8),
            "IntStorage" => Dtype::Int(4),
            "ShortStorage" => Dtype::Int(2),
            "CharStorage" | "ByteStorage" | "BoolStorage" => Dtype::Int(1),
            _ => return None,
        })
    }
    fn size(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::F16 | Dtype::Bf16 => 2,
            Dtype::F64 => 8,
            Dtype::Int(n) => n,
        }
    }
}

#[derive(Clone, Debug)]
enum Value {
    None,
    /// A bool, float or bytes: values a state dict may carry that no tensor needs.
    Other,
    Int(i64),
    Str(String),
    /// An integer past 8 bytes, little-endian (the legacy format's magic number).
    Big(Vec<u8>),
    /// Containers carry their nesting depth (1 + their deepest item's, MAX_DEPTH), kept
    /// as items are added so no check walks the items again.
    Tuple(Vec<Value>, u32),
    List(Vec<Value>, u32),
    Dict(Vec<(Value, Value)>, u32),
    Global(String),
    Storage {
        dtype: Dtype,
        key: String,
        numel: usize,
    },
    Tensor(Box<PthTensor>),
    Mark,
}

#[derive(Clone, Debug)]
struct PthTensor {
    dtype: Dtype,
    key: String,
    numel: usize,
    offset: usize,
    size: Vec<usize>,
    stride: Vec<usize>,
}

/// Callables the machine may call, by their pickled `module.name`.
const ORDERED_DICT: &str = "collections.OrderedDict";
const REBUILD_TENSOR: &str = "torch._utils._rebuild_tensor_v2";
const REBUILD_PARAMETER: &str = "torch._utils._rebuild_parameter";

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    memo: HashMap<u32, Value>,
    /// Values copied from the memo so far (MAX_COPIED).
    copied: usize,
}

/// The values in `v`, itself included (recursion bounded by MAX_DEPTH).
fn count(v: &Value) -> usize {
    match v {
        Value::Tuple(t, _) | Value::List(t, _) => 1 + t.iter().map(count).sum::<usize>(),
        Value::Dict(d, _) => 1 + d.iter().map(|(k, v)| count(k) + count(v)).sum::<usize>(),
        _ => 1,
    }
}

type Fail = String;

impl Value {
    fn depth(&self) -> u32 {
        match self {
            Value::Tuple(_, d) | Value::List(_, d) | Value::Dict(_, d) => *d,
            _ => 0,
        }
    }
}

/// The depth of a container holding an item of depth `item` beside what it already held
/// at depth `had`, refused past MAX_DEPTH.
fn nest(had: u32, item: u32) -> std::result::Result<u32, Fail> {
    let d = had.max(item + 1);
    if d > MAX_DEPTH {
        return Err(format!(
            "a pickle nesting containers more than {MAX_DEPTH} deep"
        ));
    }
    Ok(d)
}

/// A tuple of `items`, its depth checked.
fn tuple(items: Vec<Value>) -> std::result::Result<Value, Fail> {
    let d = items.iter().try_fold(1, |d, v| nest(d, v.depth()))?;
    Ok(Value::Tuple(items, d))
}

impl<'a> Machine<'a> {
    fn new(data: &'a [u8], pos: usize) -> Machine<'a> {
        Machine {
            data,
            pos,
            stack: Vec::new(),
            memo: HashMap::new(),
            copied: 0,
        }
    }

    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], Fail> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.data.len());
        let end = end.ok_or_else(|| "the pickle ends inside an opcode".to_string())?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> std::result::Result<u8, Fail> {
        Ok(self.take(1)?[0])
    }
    fn le(&mut self, n: usize) -> std::result::Result<u64, Fail> {
        let b = self.take(n)?;
        Ok(b.iter().rev().fold(0u64, |a, v| (a << 8) | *v as u64))
    }
    fn line(&mut self) -> std::result::Result<String, Fail> {
        let rest = &self.data[self.pos..];
        let n = rest
            .iter()
            .position(|b| *b == b'\n')
            .ok_or("a GLOBAL without its newline")?;
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.pos += n + 1;
        Ok(s)
    }
    fn text(&mut self, n: usize) -> std::result::Result<String, Fail> {
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| "a string that is not UTF-8".into())
    }
    fn push(&mut self, v: Value) -> std::result::Result<(), Fail> {
        if self.stack.len() >= MAX_STACK {
            return Err(format!("a pickle stack past {MAX_STACK} entries"));
        }
        self.stack.push(v);
        Ok(())
    }
    fn pop(&mut self) -> std::result::Result<Value, Fail> {
        self.stack
            .pop()
            .ok_or_else(|| "a pickle that pops an empty stack".into())
    }
    /// Everything above the topmost mark, which is removed.
    fn pop_mark(&mut self) -> std::result::Result<Vec<Value>, Fail> {
        let at = self
            .stack
            .iter()
            .rposition(|v| matches!(v, Value::Mark))
            .ok_or("a pickle that pops to a mark it never set")?;
        let items = self.stack.split_off(at + 1);
        self.stack.pop();
        Ok(items)
    }
    fn memo_put(&mut self, k: u32) -> std::result::Result<(), Fail> {
        let v = self.stack.last().ok_or("MEMOIZE on an empty stack")?;
        self.copied = self.copied.saturating_add(count(v));
        if self.copied > MAX_COPIED {
            return Err(format!(
                "a pickle copying more than {MAX_COPIED} values to its memo"
            ));
        }
        let v = v.clone();
        if self.memo.len() >= MAX_MEMO && !self.memo.contains_key(&k) {
            return Err(format!("a pickle memo past {MAX_MEMO} entries"));
        }
        self.memo.insert(k, v);
        Ok(())
    }
    fn memo_get(&mut self, k: u32) -> std::result::Result<(), Fail> {
        let v = self
            .memo
            .get(&k)
            .ok_or("a memo entry read before written")?;
        self.copied = self.copied.saturating_add(count(v));
        if self.copied > MAX_COPIED {
            return Err(format!(
                "a pickle copying more than {MAX_COPIED} values from its memo"
            ));
        }
        let v = v.clone();
        self.push(v)
    }

    /// Runs to STOP and returns the result, leaving `pos` after it. Each opcode family has
    /// its method, which says whether it knew the opcode.
    fn run(&mut self) -> std::result::Result<Value, Fail> {
        loop {
            let op = self.u8()?;
            if op == b'.' {
                return self.pop();
            }
            if !(self.values(op)? || self.memo_op(op)? || self.objects(op)? || self.items(op)?) {
                return Err(format!(
                    "pickle opcode 0x{op:02x} at byte {}, which a state dict does not use",
                    self.pos - 1
                ));
            }
        }
    }

    /// Constants: the framing opcodes, marks, empty containers, numbers, strings and bytes.
    fn values(&mut self, op: u8) -> std::result::Result<bool, Fail> {
        match op {
            0x80 => {
                self.u8()?; // PROTO
            }
            0x95 => {
                self.le(8)?; // FRAME: a length hint
            }
            0x30 => {
                self.pop()?; // POP
            }
            b'(' => self.push(Value::Mark)?,
            b'}' => self.push(Value::Dict(Vec::new(), 1))?,
            b']' => self.push(Value::List(Vec::new(), 1))?,
            b')' => self.push(Value::Tuple(Vec::new(), 1))?,
            b'N' => self.push(Value::None)?,
            0x88 => self.push(Value::Other)?,
            0x89 => self.push(Value::Other)?,
            b'J' => {
                let v = self.le(4)? as u32 as i32 as i64;
                self.push(Value::Int(v))?
            }
            b'K' => {
                let v = self.u8()? as i64;
                self.push(Value::Int(v))?
            }
            b'M' => {
                let v = self.le(2)? as i64;
                self.push(Value::Int(v))?
            }
            0x8a => {
                // LONG1: a little-endian two's complement integer of n bytes.
                let n = self.u8()? as usize;
                let b = self.take(n)?;
                if n > 8 {
                    self.push(Value::Big(b.to_vec()))?;
                    return Ok(true);
                }
                let mut v = b.iter().rev().fold(0i64, |a, x| (a << 8) | *x as i64);
                if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
                    v -= 1i64 << (8 * n);
                }
                self.push(Value::Int(v))?
            }
            b'G' => {
                self.take(8)?;
                self.push(Value::Other)?
            }
            b'X' => {
                let n = self.le(4)? as usize;
                let s = self.text(n)?;
                self.push(Value::Str(s))?
            }
            0x8c => {
                let n = self.u8()? as usize;
                let s = self.text(n)?;
                self.push(Value::Str(s))?
            }
            0x8d => {
                let n = usize::try_from(self.le(8)?).map_err(|_| "a string past memory")?;
                let s = self.text(n)?;
                self.push(Value::Str(s))?
            }
            b'C' => {
                let n = self.u8()? as usize;
                self.take(n)?;
                self.push(Value::Other)?
            }
            b'B' => {
                let n = self.le(4)? as usize;
                self.take(n)?;
                self.push(Value::Other)?
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The memo: MEMOIZE, PUT and GET.
    fn memo_op(&mut self, op: u8) -> std::result::Result<bool, Fail> {
        match op {
            b'q' => {
                let k = self.u8()? as u32;
                self.memo_put(k)?
            }
            b'r' => {
                let k = self.le(4)? as u32;
                self.memo_put(k)?
            }
            0x94 => {
                let k = self.memo.len() as u32;
                self.memo_put(k)?
            }
            b'h' => {
                let k = self.u8()? as u32;
                self.memo_get(k)?
            }
            b'j' => {
                let k = self.le(4)? as u32;
                self.memo_get(k)?
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Tuples, globals, persistent ids (tensor storages) and calls.
    fn objects(&mut self, op: u8) -> std::result::Result<bool, Fail> {
        match op {
            b't' => {
                let items = self.pop_mark()?;
                let t = tuple(items)?;
                self.push(t)?
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                if self.stack.len() < n {
                    return Err("a tuple of more items than the stack holds".into());
                }
                let items = self.stack.split_off(self.stack.len() - n);
                let t = tuple(items)?;
                self.push(t)?
            }
            b'c' => {
                let module = self.line()?;
                let name = self.line()?;
                self.push(Value::Global(format!("{module}.{name}")))?
            }
            0x93 => {
                let name = self.pop()?;
                let module = self.pop()?;
                match (module, name) {
                    (Value::Str(m), Value::Str(n)) => {
                        self.push(Value::Global(format!("{m}.{n}")))?
                    }
                    _ => return Err("STACK_GLOBAL without two strings".into()),
                }
            }
            b'Q' => {
                let pid = self.pop()?;
                let v = persistent(pid)?;
                self.push(v)?
            }
            b'R' => {
                let args = self.pop()?;
                let f = self.pop()?;
                let v = call(f, args)?;
                self.push(v)?
            }
            0x81 => {
                // NEWOBJ: cls.__new__(cls, *args); only an OrderedDict.
                let args = self.pop()?;
                let cls = self.pop()?;
                let v = call(cls, args)?;
                self.push(v)?
            }
            b'b' => {
                // BUILD: an object's state. A state dict's OrderedDict carries its
                // `_metadata` (module versions) this way; it is not needed.
                self.pop()?;
                if !matches!(self.stack.last(), Some(Value::Dict(..) | Value::Tensor(_))) {
                    return Err("BUILD on something other than a dict or tensor".into());
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Items added to the dict or list below them.
    fn items(&mut self, op: u8) -> std::result::Result<bool, Fail> {
        match op {
            b's' => {
                let v = self.pop()?;
                let k = self.pop()?;
                match self.stack.last_mut() {
                    Some(Value::Dict(d, depth)) => {
                        *depth = nest(nest(*depth, k.depth())?, v.depth())?;
                        d.push((k, v))
                    }
                    _ => return Err("SETITEM on something other than a dict".into()),
                }
            }
            b'u' => {
                let items = self.pop_mark()?;
                if items.len() % 2 != 0 {
                    return Err("SETITEMS with an odd number of items".into());
                }
                let mut it = items.into_iter();
                let Some(Value::Dict(d, depth)) = self.stack.last_mut() else {
                    return Err("SETITEMS on something other than a dict".into());
                };
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    *depth = nest(nest(*depth, k.depth())?, v.depth())?;
                    d.push((k, v));
                }
            }
            b'a' => {
                let v = self.pop()?;
                match self.stack.last_mut() {
                    Some(Value::List(l, depth)) => {
                        *depth = nest(*depth, v.depth())?;
                        l.push(v)
                    }
                    _ => return Err("APPEND on something other than a list".into()),
                }
            }
            b'e' => {
                let items = self.pop_mark()?;
                match self.stack.last_mut() {
                    Some(Value::List(l, depth)) => {
                        *depth = items.iter().try_fold(*depth, |d, v| nest(d, v.depth()))?;
                        l.extend(items)
                    }
                    _ => return Err("APPENDS on something other than a list".into()),
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// A persistent id: ('storage', storage type, key, location, numel[, view metadata]).
fn persistent(pid: Value) -> std::result::Result<Value, Fail> {
    let Value::Tuple(t, _) = pid else {
        return Err("a persistent id that is not a tuple".into());
    };
    match t.as_slice() {
        [Value::Str(kind), Value::Global(ty), Value::Str(key), _, Value::Int(numel), ..]
            if kind == "storage" =>
        {
            let short = ty.rsplit('.').next().unwrap_or(ty);
            let dtype = Dtype::of(short)
                .ok_or_else(|| format!("a storage of type {ty}, which is not supported"))?;
            let numel =
                usize::try_from(*numel).map_err(|_| format!("a storage of {numel} elements"))?;
            Ok(Value::Storage {
                dtype,
                key: key.clone(),
                numel,
            })
        }
        _ => Err("a persistent id that is not a storage".into()),
    }
}

fn usizes(v: &Value, what: &str) -> std::result::Result<Vec<usize>, Fail> {
    match v {
        Value::Tuple(t, _) | Value::List(t, _) => t
            .iter()
            .map(|x| match x {
                Value::Int(i) => usize::try_from(*i).map_err(|_| format!("a negative {what}")),
                _ => Err(format!("a {what} that is not an integer")),
            })
            .collect(),
        _ => Err(format!("a {what} that is not a tuple")),
    }
}

/// The few callables a state dict needs; any other is how a pickle runs code.
fn call(f: Value, args: Value) -> std::result::Result<Value, Fail> {
    let Value::Global(name) = f else {
        return Err("a call of something that is not a global".into());
    };
    let Value::Tuple(args, _) = args else {
        return Err(format!("{name} called without an argument tuple"));
    };
    match name.as_str() {
        ORDERED_DICT if args.is_empty() => Ok(Value::Dict(Vec::new(), 1)),
        REBUILD_TENSOR => match args.as_slice() {
            [Value::Storage { dtype, key, numel }, Value::Int(offset), size, stride, ..] => {
                Ok(Value::Tensor(Box::new(PthTensor {
                    dtype: *dtype,
                    key: key.clone(),
                    numel: *numel,
                    offset: usize::try_from(*offset).map_err(|_| "a negative offset")?,
                    size: usizes(size, "size")?,
                    stride: usizes(stride, "stride")?,
                })))
            }
            _ => Err(format!("{name} with arguments it does not take")),
        },
        REBUILD_PARAMETER => match args.into_iter().next() {
            Some(t @ Value::Tensor(_)) => Ok(t),
            _ => Err(format!("{name} without a tensor")),
        },
        _ => Err(format!(
            "the file calls {name}, which would run code from the file; only PyTorch state \
             dicts (tensors by name) are read"
        )),
    }
}

/// The tensors of a state dict (or of a dict holding one under `state_dict` or `model`).
fn tensors(v: Value) -> std::result::Result<Vec<(String, PthTensor)>, Fail> {
    let Value::Dict(d, _) = v else {
        return Err("the pickle holds no dict of tensors".into());
    };
    let mut out = Vec::new();
    let mut nested = None;
    for (k, v) in d {
        match (k, v) {
            (Value::Str(k), Value::Tensor(t)) => out.push((k, *t)),
            (Value::Str(k), d @ Value::Dict(..)) if k == "state_dict" || k == "model" => {
                nested = Some(d)
            }
            _ => {}
        }
    }
    match (out.is_empty(), nested) {
        (true, Some(d)) => tensors(d),
        (true, None) => Err("the pickle's dict holds no tensors".into()),
        _ => Ok(out),
    }
}

/// One tensor's f32 values from its storage's bytes (little-endian), following its size,
/// stride and offset; every index is checked against the storage first.
fn values(t: &PthTensor, storage: &[u8]) -> std::result::Result<Vec<f32>, Fail> {
    let e = t.dtype.size();
    // Checked, not wrapped: 2^62 elements of 4 bytes would wrap to 0 bytes and pass.
    let need = t.numel.checked_mul(e).filter(|n| *n <= storage.len());
    if need.is_none() {
        return Err(format!(
            "storage {} holds {} bytes for {} elements of {e} bytes",
            t.key,
            storage.len(),
            t.numel
        ));
    }
    if t.size.len() != t.stride.len() {
        return Err("a tensor whose size and stride differ in rank".into());
    }
    let count = t
        .size
        .iter()
        .try_fold(1usize, |a, s| a.checked_mul(*s))
        .ok_or("a tensor whose size overflows")?;
    if count > t.numel {
        return Err(format!(
            "a tensor of {count} elements over a storage of {}",
            t.numel
        ));
    }
    if count > 0 {
        // The last element's index bounds every other's (sizes and strides are unsigned).
        t.size
            .iter()
            .zip(&t.stride)
            .try_fold(t.offset, |a, (s, st)| {
                a.checked_add((s - 1).checked_mul(*st)?)
            })
            .filter(|l| *l < t.numel)
            .ok_or_else(|| format!("a tensor reaching past its storage {}", t.key))?;
    }
    let get = |i: usize| -> std::result::Result<f32, Fail> {
        let b = i
            .checked_mul(e)
            .and_then(|at| storage.get(at..at.checked_add(e)?))
            .ok_or_else(|| format!("a tensor reaching past its storage {}", t.key))?;
        Ok(match t.dtype {
            Dtype::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            Dtype::F16 => half::f16::from_le_bytes([b[0], b[1]]).to_f32(),
            Dtype::Bf16 => half::bf16::from_le_bytes([b[0], b[1]]).to_f32(),
            Dtype::F64 => {
                f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
            }
            Dtype::Int(_) => 0.0,
        })
    };
    // count <= numel <= storage bytes / e: the allocation is bounded by the file's size.
    let mut out = Vec::with_capacity(count);
    let mut idx = vec![0usize; t.size.len()];
    for _ in 0..count {
        let at = t.offset + idx.iter().zip(&t.stride).map(|(i, s)| i * s).sum::<usize>();
        out.push(get(at)?);
        // The next index in row-major order.
        for d in (0..idx.len()).rev() {
            idx[d] += 1;
            if idx[d] < t.size[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    Ok(out)
}

/// The float tensors of a `torch.save` file's bytes, by state-dict name; `path` names it
/// in errors. Integer tensors (`num_batches_tracked`) are skipped.
pub fn read_pth(bytes: &[u8], path: &Path) -> Result<Weights> {
    let fail = |m: String| file_err(path, format!("not a readable PyTorch file: {m}"));
    let (named, storages) = if bytes.starts_with(b"PK\x03\x04") {
        zip_format(bytes).map_err(fail)?
    } else if bytes.starts_with(&[0x80, 0x02, 0x8a, 0x0a]) {
        legacy_format(bytes).map_err(fail)?
    } else {
        return Err(fail("neither a zip archive nor a pickle".into()));
    };
    let mut w = Weights::new();
    for (name, t) in named {
        if matches!(t.dtype, Dtype::Int(_)) {
            continue;
        }
        let storage = storages
            .get(&t.key)
            .ok_or_else(|| fail(format!("tensor '{name}' names a missing storage {}", t.key)))?;
        let data = values(&t, storage).map_err(|m| fail(format!("tensor '{name}': {m}")))?;
        w.insert(&name, Tensor::new(t.size.clone(), data)?);
    }
    Ok(w)
}

type Parsed<'a> = (Vec<(String, PthTensor)>, HashMap<String, &'a [u8]>);

/// `torch.save`'s zip: `<dir>/data.pkl` and `<dir>/data/<key>` per storage, stored.
fn zip_format(bytes: &[u8]) -> std::result::Result<Parsed<'_>, Fail> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("a broken zip archive ({e})"))?;
    let mut pkl = None;
    let mut entries = Vec::new();
    for i in 0..archive.len() {
        let f = archive
            .by_index_raw(i)
            .map_err(|e| format!("zip entry {i}: {e}"))?;
        let name = f.name().to_string();
        if f.compression() != zip::CompressionMethod::Stored {
            return Err(format!(
                "zip entry {name} is compressed; torch.save stores them"
            ));
        }
        let start = f
            .data_start()
            .and_then(|s| usize::try_from(s).ok())
            .ok_or_else(|| format!("zip entry {name} without a readable data offset"))?;
        let len = usize::try_from(f.compressed_size()).map_err(|_| "a zip entry past memory")?;
        let end = start
            .checked_add(len)
            .filter(|e| *e <= bytes.len())
            .ok_or_else(|| format!("zip entry {name} reaches past the file"))?;
        let data = &bytes[start..end];
        if name.ends_with("/data.pkl") || name == "data.pkl" {
            pkl = Some((name.trim_end_matches("data.pkl").to_string(), data));
        } else {
            entries.push((name, data));
        }
    }
    let (dir, pkl) = pkl.ok_or("no data.pkl in the zip archive")?;
    let mut m = Machine::new(pkl, 0);
    let named = tensors(m.run()?)?;
    let prefix = format!("{dir}data/");
    let storages = entries
        .into_iter()
        .filter_map(|(n, d)| Some((n.strip_prefix(&prefix)?.to_string(), d)))
        .collect();
    Ok((named, storages))
}

/// The legacy format: pickles of the magic number, the protocol version, the system info,
/// the object and its storage keys, then per key (in that order) an 8-byte element count
/// and the storage's bytes.
fn legacy_format(bytes: &[u8]) -> std::result::Result<Parsed<'_>, Fail> {
    // 0x1950a86a20f9469cfc6c, little-endian.
    const MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
    let mut m = Machine::new(bytes, 0);
    match m.run()? {
        Value::Big(b) if b == MAGIC => {}
        _ => return Err("a pickle without PyTorch's magic number".into()),
    }
    // The protocol version and the system info.
    m.stack.clear();
    m.run()?;
    m.stack.clear();
    m.run()?;
    m.stack.clear();
    m.memo.clear();
    let named = tensors(m.run()?)?;
    m.stack.clear();
    m.memo.clear();
    let keys = match m.run()? {
        Value::List(l, _) => l
            .into_iter()
            .map(|k| match k {
                Value::Str(s) => Ok(s),
                _ => Err("a storage key that is not a string".to_string()),
            })
            .collect::<std::result::Result<Vec<_>, _>>()?,
        _ => return Err("no list of storage keys after the object".into()),
    };
    let sizes: HashMap<&str, usize> = named
        .iter()
        .map(|(_, t)| (t.key.as_str(), t.dtype.size()))
        .collect();
    let mut storages = HashMap::new();
    for key in keys {
        let numel = usize::try_from(m.le(8)?).map_err(|_| "a storage past memory")?;
        let e = sizes
            .get(key.as_str())
            .copied()
            .ok_or_else(|| format!("storage {key} belongs to no tensor"))?;
        let len = numel
            .checked_mul(e)
            .ok_or_else(|| format!("storage {key}'s size overflows"))?;
        let data = m.take(len)?;
        storages.insert(key, data);
    }
    Ok((named, storages))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        std::fs::read(p).unwrap()
    }

    fn err(bytes: &[u8]) -> String {
        match read_pth(bytes, Path::new("x.pth")) {
            Ok(_) => panic!("read"),
            Err(e) => e.to_string(),
        }
    }

    /// The legacy format's first three pickles, then `obj` and an empty key list.
    fn legacy(obj: &[u8]) -> Vec<u8> {
        let mut b = vec![0x80, 0x02, 0x8a, 0x0a];
        b.extend([
            0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, b'.',
        ]);
        b.extend([0x80, 0x02, b'M', 0xe9, 0x03, b'.']);
        b.extend([0x80, 0x02, b'}', b'.']);
        b.extend(obj);
        b.extend([0x80, 0x02, b']', b'.']);
        b
    }

    #[test]
    fn a_pickle_that_calls_code_is_refused_by_name() {
        let mut obj = vec![0x80, 0x02, b'c'];
        obj.extend(b"os\nsystem\n");
        obj.push(b'X');
        obj.extend(4u32.to_le_bytes());
        obj.extend(b"echo");
        obj.extend([0x85, b'R', b'.']);
        let e = err(&legacy(&obj));
        assert!(e.contains("os.system") && e.contains("run code"), "{e}");
    }

    #[test]
    fn a_tensor_past_its_storage_is_refused() {
        // {'w': _rebuild_tensor_v2(<storage 's', 4 floats>, 2, (3,), (1,), False, ())}
        let mut obj = vec![0x80, 0x02, b'}', 0x8c, 1, b'w', b'c'];
        obj.extend(b"torch._utils\n_rebuild_tensor_v2\n");
        obj.push(b'(');
        obj.push(b'(');
        obj.extend([0x8c, 7]);
        obj.extend(b"storage");
        obj.push(b'c');
        obj.extend(b"torch\nFloatStorage\n");
        obj.extend([0x8c, 1, b's', 0x8c, 3]);
        obj.extend(b"cpu");
        obj.extend([b'K', 4, b't', b'Q']);
        obj.extend([
            b'K', 2, b'K', 3, 0x85, b'K', 1, 0x85, 0x89, b')', b't', b'R', b's', b'.',
        ]);
        let mut b = legacy(&obj);
        // The key list names 's', and its 4 floats follow.
        b.truncate(b.len() - 4);
        b.extend([0x80, 0x02, b']', 0x8c, 1, b's', b'a', b'.']);
        b.extend(4u64.to_le_bytes());
        b.extend([0u8; 16]);
        let e = err(&b);
        assert!(e.contains("past its storage"), "{e}");
    }

    /// An 8-byte LONG1 integer, so any u64 fits.
    fn long(v: u64) -> Vec<u8> {
        let mut b = vec![0x8a, 8];
        b.extend(v.to_le_bytes());
        b
    }

    /// A legacy file of `{'w': _rebuild_tensor_v2(<storage 's' of numel>, offset, size,
    /// stride)}` whose tail stores `stored` floats for 's'.
    fn one_tensor(numel: u64, offset: u64, size: &[u64], stride: &[u64], stored: u64) -> Vec<u8> {
        let mut obj = vec![0x80, 0x02, b'}', 0x8c, 1, b'w', b'c'];
        obj.extend(b"torch._utils\n_rebuild_tensor_v2\n");
        obj.extend([b'(', b'(', 0x8c, 7]);
        obj.extend(b"storage");
        obj.push(b'c');
        obj.extend(b"torch\nFloatStorage\n");
        obj.extend([0x8c, 1, b's', 0x8c, 3]);
        obj.extend(b"cpu");
        obj.extend(long(numel));
        obj.extend([b't', b'Q']);
        obj.extend(long(offset));
        for dims in [size, stride] {
            obj.push(b'(');
            for d in dims {
                obj.extend(long(*d));
            }
            obj.push(b't');
        }
        obj.extend([0x89, b')', b't', b'R', b's', b'.']);
        let mut b = legacy(&obj);
        b.truncate(b.len() - 4);
        b.extend([0x80, 0x02, b']', 0x8c, 1, b's', b'a', b'.']);
        b.extend(stored.to_le_bytes());
        b.extend(vec![0u8; stored as usize * 4]);
        b
    }

    #[test]
    fn sizes_that_wrap_are_refused_before_any_slice_or_allocation() {
        // 2^62 floats are 2^64 bytes, 0 when wrapped: the storage's 2048 bytes would pass.
        let e = err(&one_tensor(1 << 62, 0, &[1 << 62], &[1], 512));
        assert!(e.contains("storage s holds 2048 bytes"), "{e}");
        // The same through sizes and a stride: 2^31 x 2^31 elements.
        let e = err(&one_tensor(
            1 << 62,
            0,
            &[1 << 31, 1 << 31],
            &[1 << 31, 1],
            512,
        ));
        assert!(e.contains("storage s holds 2048 bytes"), "{e}");
        // A stride whose product with the size wraps, over an honest storage.
        let e = err(&one_tensor(512, 0, &[5, 2], &[1 << 62, 1], 512));
        assert!(e.contains("past its storage"), "{e}");
        let e = err(&one_tensor(512, i64::MAX as u64, &[2], &[1], 512));
        assert!(e.contains("past its storage"), "{e}");
        // And the honest tensor reads.
        let w = read_pth(
            &one_tensor(512, 2, &[3, 5], &[5, 1], 512),
            Path::new("x.pth"),
        );
        assert!(w.is_ok());
    }

    #[test]
    fn pickles_nesting_a_million_deep_are_refused_at_the_depth_bound() {
        let n = 1_000_000;
        // `n` containers opened, `inner` pushed, and each closed into the one below.
        let wrap = |open: &[u8], inner: &[u8], close: &[u8], n: usize| {
            let mut b = vec![0x80, 0x02];
            for _ in 0..n {
                b.extend(open);
            }
            b.extend(inner);
            for _ in 0..n {
                b.extend(close);
            }
            b.push(b'.');
            b
        };
        let memo_chain = {
            // (x,) memoized and read back, a million times: each read copies the chain.
            let mut b = vec![0x80, 0x02, b')'];
            for _ in 0..n {
                b.extend([b'q', 0, 0x30, b'h', 0, 0x85]);
            }
            b.push(b'.');
            b
        };
        let cases = [
            ("tuples by MARK", wrap(b"(", b"", b"t", n)),
            ("lists", wrap(b"]", b"]", b"a", n)),
            // Each level pushes its key too: half as many stay under the stack bound.
            ("dict values", wrap(b"}K\x01", b"N", b"s", n / 2)),
            ("lists by MARK", wrap(b"](", b"", b"e", n / 2)),
            ("memo chain", memo_chain),
        ];
        for (what, pickle) in cases {
            let e = err(&legacy(&pickle));
            assert!(e.contains("more than 64 deep"), "{what}: {e}");
        }
    }

    /// Reads `n` copies of `good`, each with one byte among its first `span` replaced, from
    /// a fixed xorshift seed: an error or a result, never a panic.
    fn mutate_each(good: &[u8], seed: u64, n: usize, span: usize, path: &Path) {
        let mut x = seed;
        for _ in 0..n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut b = good.to_vec();
            let at = (x as usize >> 8) % span.min(b.len());
            b[at] = (x & 0xff) as u8;
            let _ = read_pth(&b, path);
        }
    }

    /// The fuzz target's hostile seeds (fuzz/seeds/pth: nesting past the bound, sizes
    /// that wrap) are refused, and so are mutated copies, without a panic.
    #[test]
    fn the_fuzz_seeds_are_refused_and_their_mutations_never_panic() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/pth");
        let mut seeds = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let good = std::fs::read(&path).unwrap();
            assert!(read_pth(&good, &path).is_err(), "{}", path.display());
            mutate_each(&good, 0x2545f4914f6cdd1d, 500, good.len(), &path);
            seeds += 1;
        }
        assert!(seeds >= 6);
    }

    #[test]
    fn truncated_and_mutated_files_fail_without_panicking() {
        for name in ["tiny_a.pth", "tiny_bn_legacy.pth"] {
            let good = fixture(name);
            assert!(read_pth(&good, Path::new(name)).is_ok());
            for cut in [0, 1, 10, 100, 1000, good.len() / 2, good.len() - 1] {
                assert!(
                    read_pth(&good[..cut], Path::new(name)).is_err(),
                    "{name} cut {cut}"
                );
            }
            // Mutations of the pickles and zip headers near the start, from a fixed seed.
            mutate_each(&good, 0x9e3779b97f4a7c15, 2000, 4096, Path::new(name));
        }
    }
}
