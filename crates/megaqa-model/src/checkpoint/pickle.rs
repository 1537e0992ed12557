//! A restricted interpreter for the pickles inside PyTorch zip checkpoints
//! (`torch.save` since 1.6: `pytorch_model.bin`, NeMo's `model_weights.ckpt`).
//!
//! Pickles from strangers must never run code, so this is an interpreter, not an
//! unpickler: it understands the opcodes that `torch.save` emits for a state dict,
//! builds plain containers, and resolves exactly the globals that rebuild tensors.
//! Any other global is refused with its name. Every length read from the stream is
//! checked against the bytes that remain before anything is allocated.

use std::collections::HashMap;

use super::tensor::DType;

/// A pickle value restricted to what a state dict holds.
#[derive(Debug, Clone)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    /// One of the allowed globals, by name.
    Global(Allowed),
    /// A persistent id resolved to a storage record of the zip archive.
    Storage {
        key: String,
        dtype: DType,
    },
    /// `_rebuild_tensor_v2(storage, offset, size, stride, ...)`.
    Tensor(TensorRef),
}

/// Where a tensor's elements live in the archive.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRef {
    pub storage_key: String,
    pub dtype: DType,
    pub offset: usize,
    pub shape: Vec<usize>,
    pub stride: Vec<usize>,
}

/// The globals a state dict may reference. Everything else is refused.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Allowed {
    OrderedDict,
    RebuildTensorV2,
    RebuildParameter,
    StorageType(DType),
}

fn resolve_global(module: &str, name: &str) -> Option<Allowed> {
    Some(match (module, name) {
        ("collections", "OrderedDict") => Allowed::OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2") => Allowed::RebuildTensorV2,
        ("torch._utils", "_rebuild_parameter") => Allowed::RebuildParameter,
        ("torch", storage) => Allowed::StorageType(match storage {
            "FloatStorage" => DType::F32,
            "HalfStorage" => DType::F16,
            "BFloat16Storage" => DType::BF16,
            "DoubleStorage" => DType::F64,
            "LongStorage" => DType::I64,
            "IntStorage" => DType::I32,
            "ShortStorage" => DType::I16,
            "CharStorage" => DType::I8,
            "ByteStorage" => DType::U8,
            "BoolStorage" => DType::Bool,
            _ => return None,
        }),
        _ => return None,
    })
}

/// Why a pickle could not be interpreted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PickleError {
    #[error("pickle ends early at byte {0}")]
    Truncated(usize),
    #[error(
        "pickle references the global `{0}`, which megaqa refuses: checkpoints may only hold tensors and plain containers"
    )]
    ForbiddenGlobal(String),
    #[error("pickle opcode 0x{op:02x} at byte {pos} is not supported in a checkpoint")]
    UnsupportedOpcode { op: u8, pos: usize },
    #[error("malformed pickle at byte {pos}: {msg}")]
    Malformed { pos: usize, msg: String },
}

/// Interprets `data` and returns the value on top of the stack at STOP.
pub fn interpret(data: &[u8]) -> Result<Value, PickleError> {
    Machine {
        data,
        pos: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
    }
    .run()
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
}

impl Machine<'_> {
    fn err(&self, msg: impl Into<String>) -> PickleError {
        PickleError::Malformed {
            pos: self.pos,
            msg: msg.into(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&[u8], PickleError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let end = end.ok_or(PickleError::Truncated(self.pos))?;
        let bytes = &self.data[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn u8(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, PickleError> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().unwrap_or_default(),
        ))
    }

    fn u32(&mut self) -> Result<u32, PickleError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().unwrap_or_default(),
        ))
    }

    fn u64(&mut self) -> Result<u64, PickleError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().unwrap_or_default(),
        ))
    }

    fn line(&mut self) -> Result<String, PickleError> {
        let rest = &self.data[self.pos..];
        let len = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or(PickleError::Truncated(self.pos))?;
        let text = String::from_utf8(rest[..len].to_vec())
            .map_err(|_| self.err("global name is not UTF-8"))?;
        self.pos += len + 1;
        Ok(text)
    }

    fn utf8(&mut self, len: usize) -> Result<Value, PickleError> {
        let bytes = self.take(len)?.to_vec();
        String::from_utf8(bytes)
            .map(Value::Str)
            .map_err(|_| self.err("string is not UTF-8"))
    }

    fn pop(&mut self) -> Result<Value, PickleError> {
        if self.marks.last().is_some_and(|&m| m >= self.stack.len()) {
            return Err(self.err("stack underflow past a mark"));
        }
        self.stack.pop().ok_or_else(|| self.err("stack underflow"))
    }

    fn top(&mut self) -> Result<&mut Value, PickleError> {
        let pos = self.pos;
        self.stack.last_mut().ok_or(PickleError::Malformed {
            pos,
            msg: "stack underflow".into(),
        })
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>, PickleError> {
        let mark = self
            .marks
            .pop()
            .ok_or_else(|| self.err("no mark on the stack"))?;
        if mark > self.stack.len() {
            return Err(self.err("mark past the end of the stack"));
        }
        Ok(self.stack.split_off(mark))
    }

    fn memo_get(&mut self, key: u32) -> Result<(), PickleError> {
        let value = self
            .memo
            .get(&key)
            .cloned()
            .ok_or_else(|| self.err(format!("memo key {key} is not set")))?;
        self.stack.push(value);
        Ok(())
    }

    fn memo_put(&mut self, key: u32) -> Result<(), PickleError> {
        let value = self
            .stack
            .last()
            .cloned()
            .ok_or_else(|| self.err("memo of an empty stack"))?;
        self.memo.insert(key, value);
        Ok(())
    }

    fn global(&mut self, module: &str, name: &str) -> Result<(), PickleError> {
        let allowed = resolve_global(module, name)
            .ok_or_else(|| PickleError::ForbiddenGlobal(format!("{module}.{name}")))?;
        self.stack.push(Value::Global(allowed));
        Ok(())
    }

    fn run(mut self) -> Result<Value, PickleError> {
        loop {
            let op_pos = self.pos;
            let op = self.u8()?;
            match op {
                0x80 => {
                    self.u8()?; // PROTO: version
                }
                0x95 => {
                    self.u64()?; // FRAME: length hint only
                }
                b'.' => return self.pop(), // STOP
                b'(' => self.marks.push(self.stack.len()),
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'}' => self.stack.push(Value::Dict(Vec::new())),
                b']' => self.stack.push(Value::List(Vec::new())),
                b')' => self.stack.push(Value::Tuple(Vec::new())),
                b'K' => {
                    let v = self.u8()?;
                    self.stack.push(Value::Int(v.into()))
                }
                b'M' => {
                    let v = self.u16()?;
                    self.stack.push(Value::Int(v.into()))
                }
                b'J' => {
                    let v = self.u32()? as i32;
                    self.stack.push(Value::Int(v.into()))
                }
                0x8a => {
                    // LONG1: little-endian two's complement of n bytes
                    let n = self.u8()? as usize;
                    let bytes = self.take(n)?;
                    if n > 8 {
                        return Err(
                            self.err(format!("integer of {n} bytes does not fit in 64 bits"))
                        );
                    }
                    let mut buf = if bytes.last().is_some_and(|&b| b & 0x80 != 0) {
                        [0xffu8; 8]
                    } else {
                        [0u8; 8]
                    };
                    buf[..n].copy_from_slice(bytes);
                    self.stack.push(Value::Int(i64::from_le_bytes(buf)))
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.take(8)?.try_into().unwrap_or_default());
                    self.stack.push(Value::Float(v))
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    let v = self.utf8(n)?;
                    self.stack.push(v)
                }
                0x8c => {
                    let n = self.u8()? as usize;
                    let v = self.utf8(n)?;
                    self.stack.push(v)
                }
                0x8d => {
                    let n = usize::try_from(self.u64()?)
                        .map_err(|_| PickleError::Truncated(self.pos))?;
                    let v = self.utf8(n)?;
                    self.stack.push(v)
                }
                b'T' | b'B' => {
                    let n = self.u32()? as usize;
                    let v = self.take(n)?.to_vec();
                    self.stack.push(Value::Bytes(v))
                }
                b'U' | b'C' => {
                    let n = self.u8()? as usize;
                    let v = self.take(n)?.to_vec();
                    self.stack.push(Value::Bytes(v))
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.global(&module, &name)?
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module, name) {
                        (Value::Str(m), Value::Str(n)) => self.global(&m, &n)?,
                        _ => return Err(self.err("STACK_GLOBAL needs two strings")),
                    }
                }
                b'q' => {
                    let k = self.u8()?;
                    self.memo_put(k.into())?
                }
                b'r' => {
                    let k = self.u32()?;
                    self.memo_put(k)?
                }
                0x94 => {
                    let k =
                        u32::try_from(self.memo.len()).map_err(|_| self.err("memo too large"))?;
                    self.memo_put(k)?
                }
                b'h' => {
                    let k = self.u8()?;
                    self.memo_get(k.into())?
                }
                b'j' => {
                    let k = self.u32()?;
                    self.memo_get(k)?
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::Tuple(items))
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    if self.stack.len() < n + self.marks.last().copied().unwrap_or(0) {
                        return Err(self.err("stack underflow in tuple"));
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.stack.push(Value::Tuple(items))
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::List(items))
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    let dict =
                        pairs(items).ok_or_else(|| self.err("DICT with an odd number of items"))?;
                    self.stack.push(Value::Dict(dict))
                }
                b'a' => {
                    let v = self.pop()?;
                    match self.top()? {
                        Value::List(l) => l.push(v),
                        _ => return Err(self.err("APPEND to a non-list")),
                    }
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    match self.top()? {
                        Value::List(l) => l.extend(items),
                        _ => return Err(self.err("APPENDS to a non-list")),
                    }
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    match self.top()? {
                        Value::Dict(d) => d.push((k, v)),
                        _ => return Err(self.err("SETITEM on a non-dict")),
                    }
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let new = pairs(items)
                        .ok_or_else(|| self.err("SETITEMS with an odd number of items"))?;
                    match self.top()? {
                        Value::Dict(d) => d.extend(new),
                        _ => return Err(self.err("SETITEMS on a non-dict")),
                    }
                }
                b'b' => {
                    // BUILD: object state (OrderedDict `_metadata`, Parameter hooks); not needed.
                    self.pop()?;
                    self.top()?;
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let storage = persistent_storage(pid).map_err(|m| self.err(m))?;
                    self.stack.push(storage)
                }
                b'R' => {
                    let args = self.pop()?;
                    let func = self.pop()?;
                    let value = reduce(func, args).map_err(|m| PickleError::Malformed {
                        pos: op_pos,
                        msg: m,
                    })?;
                    self.stack.push(value)
                }
                _ => return Err(PickleError::UnsupportedOpcode { op, pos: op_pos }),
            }
        }
    }
}

fn pairs(items: Vec<Value>) -> Option<Vec<(Value, Value)>> {
    if !items.len().is_multiple_of(2) {
        return None;
    }
    let mut it = items.into_iter();
    let mut out = Vec::new();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Some(out)
}

/// `('storage', torch.FloatStorage, key, location, numel)`.
fn persistent_storage(pid: Value) -> Result<Value, String> {
    let Value::Tuple(items) = pid else {
        return Err("persistent id is not a tuple".into());
    };
    match items.as_slice() {
        [
            Value::Str(tag),
            Value::Global(Allowed::StorageType(dtype)),
            Value::Str(key),
            _,
            _,
        ] if tag == "storage" => Ok(Value::Storage {
            key: key.clone(),
            dtype: *dtype,
        }),
        _ => Err("persistent id is not a ('storage', type, key, location, numel) record".into()),
    }
}

fn usize_list(v: &Value, what: &str) -> Result<Vec<usize>, String> {
    let (Value::Tuple(items) | Value::List(items)) = v else {
        return Err(format!("tensor {what} is not a tuple"));
    };
    items
        .iter()
        .map(|i| match i {
            Value::Int(n) if *n >= 0 => Ok(*n as usize),
            _ => Err(format!(
                "tensor {what} holds a negative or non-integer entry"
            )),
        })
        .collect()
}

fn reduce(func: Value, args: Value) -> Result<Value, String> {
    let Value::Tuple(args) = args else {
        return Err("REDUCE arguments are not a tuple".into());
    };
    match func {
        Value::Global(Allowed::OrderedDict) => Ok(Value::Dict(Vec::new())),
        Value::Global(Allowed::RebuildParameter) => args
            .into_iter()
            .next()
            .ok_or_else(|| "_rebuild_parameter without a tensor".to_string()),
        Value::Global(Allowed::RebuildTensorV2) => {
            let [
                Value::Storage { key, dtype },
                Value::Int(offset),
                size,
                stride,
                ..,
            ] = args.as_slice()
            else {
                return Err(
                    "_rebuild_tensor_v2 arguments are not (storage, offset, size, stride, ...)"
                        .into(),
                );
            };
            let shape = usize_list(size, "size")?;
            let stride = usize_list(stride, "stride")?;
            if shape.len() != stride.len() {
                return Err(format!(
                    "tensor size {shape:?} and stride {stride:?} differ in rank"
                ));
            }
            let offset =
                usize::try_from(*offset).map_err(|_| "negative storage offset".to_string())?;
            Ok(Value::Tensor(TensorRef {
                storage_key: key.clone(),
                dtype: *dtype,
                offset,
                shape,
                stride,
            }))
        }
        other => Err(format!("{other:?} is not callable in a checkpoint")),
    }
}
