//! Tensors as read from a checkpoint: element type, shape and little-endian bytes,
//! shared with the buffer they came from so that reading a checkpoint copies nothing,
//! or still in the file ([`ByteSource`]) until the network takes them.

use std::sync::Arc;

/// Element types that checkpoints store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    F32,
    F16,
    BF16,
    F64,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl DType {
    pub fn size(self) -> usize {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::BF16 | DType::I16 => 2,
            DType::I8 | DType::U8 | DType::Bool => 1,
        }
    }

    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F16 | DType::BF16 | DType::F64)
    }
}

/// A file a checkpoint's tensors are read from when they are needed, not held in memory
/// all at once: a browser keeps a big model in a file of its origin's private file
/// system, and a WebGPU network built from it needs each tensor's bytes in wasm memory
/// (which never shrinks) only while that tensor is uploaded.
pub trait ByteSource: Send + Sync {
    /// Fills `out` with the bytes at `offset`; an error says what failed, naming the file.
    fn read_at(&self, offset: u64, out: &mut [u8]) -> Result<(), String>;
}

/// A file on disk as a [`ByteSource`].
pub struct FileSource {
    file: std::sync::Mutex<std::fs::File>,
    name: String,
}

impl FileSource {
    /// Opens `path`, with its length.
    pub fn open(path: &std::path::Path) -> std::io::Result<(Self, u64)> {
        let file = std::fs::File::open(path)?;
        let len = file.metadata()?.len();
        let name = path.display().to_string();
        Ok((
            Self {
                file: std::sync::Mutex::new(file),
                name,
            },
            len,
        ))
    }
}

impl ByteSource for FileSource {
    fn read_at(&self, offset: u64, out: &mut [u8]) -> Result<(), String> {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = self
            .file
            .lock()
            .map_err(|_| format!("{}: unreadable", self.name))?;
        f.seek(SeekFrom::Start(offset))
            .and_then(|_| f.read_exact(out))
            .map_err(|e| {
                format!(
                    "{}: cannot read {} bytes at {offset}: {e}",
                    self.name,
                    out.len()
                )
            })
    }
}

/// A view of contiguous little-endian tensor bytes inside a shared buffer, or in a
/// [`ByteSource`] (then `buffer` is empty and `start` unused).
#[derive(Clone)]
pub struct RawTensor {
    pub dtype: DType,
    pub shape: Vec<usize>,
    buffer: Arc<Vec<u8>>,
    start: usize,
    /// Where the bytes are when not in `buffer`: the source, and the offset there.
    elsewhere: Option<(Arc<dyn ByteSource>, u64)>,
    /// An int8 matrix's scale per row (the converted format's int8): its values are
    /// the integers times their row's scale, computed when read, so that the f32
    /// matrix never exists beside the rest of the file.
    row_scales: Option<Arc<Vec<f32>>>,
}

impl std::fmt::Debug for RawTensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RawTensor({:?}, {:?})", self.dtype, self.shape)
    }
}

impl RawTensor {
    /// A view of `buffer[start..]`; `None` when the tensor would run past the buffer.
    pub fn view(
        dtype: DType,
        shape: Vec<usize>,
        buffer: Arc<Vec<u8>>,
        start: usize,
    ) -> Option<Self> {
        let len = numel(&shape)?.checked_mul(dtype.size())?;
        (start.checked_add(len)? <= buffer.len()).then_some(Self {
            dtype,
            shape,
            buffer,
            start,
            elsewhere: None,
            row_scales: None,
        })
    }

    /// A tensor whose bytes stay at `offset` in `source` until read ([`RawTensor::load`]);
    /// `None` when its size overflows.
    pub fn elsewhere(
        dtype: DType,
        shape: Vec<usize>,
        source: Arc<dyn ByteSource>,
        offset: u64,
    ) -> Option<Self> {
        numel(&shape)?.checked_mul(dtype.size())?;
        Some(Self {
            dtype,
            shape,
            buffer: Arc::new(Vec::new()),
            start: 0,
            elsewhere: Some((source, offset)),
            row_scales: None,
        })
    }

    /// Whether the bytes are in memory (else [`RawTensor::load`] reads them).
    pub fn is_held(&self) -> bool {
        self.elsewhere.is_none()
    }

    /// The tensor with its bytes in memory, in a buffer of its own if they were read
    /// from its source.
    pub fn load(self) -> Result<Self, String> {
        let Some((source, offset)) = &self.elsewhere else {
            return Ok(self);
        };
        let mut bytes = vec![0u8; self.byte_len()];
        source.read_at(*offset, &mut bytes)?;
        Ok(Self {
            buffer: Arc::new(bytes),
            start: 0,
            elsewhere: None,
            ..self
        })
    }

    fn byte_len(&self) -> usize {
        self.numel() * self.dtype.size()
    }

    /// An f32 tensor that owns its values.
    pub fn from_f32(shape: Vec<usize>, values: &[f32]) -> Self {
        let bytes = super::safetensors::le_bytes(values, f32::to_le_bytes);
        Self {
            dtype: DType::F32,
            shape,
            buffer: Arc::new(bytes),
            start: 0,
            elsewhere: None,
            row_scales: None,
        }
    }

    /// This int8 matrix read as its integers times `scales` (one per row).
    pub fn with_row_scales(mut self, scales: Vec<f32>) -> Self {
        debug_assert!(self.dtype == DType::I8 && self.shape.first() == Some(&scales.len()));
        self.row_scales = Some(Arc::new(scales));
        self
    }

    /// Whether [`RawTensor::to_f32`] reads real values: a float tensor, or int8 with
    /// its scales.
    pub fn is_float(&self) -> bool {
        self.dtype.is_float() || self.row_scales.is_some()
    }

    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether this tensor keeps its own memory: no other tensor holds its buffer, so
    /// dropping it frees its bytes.
    pub fn owns_buffer(&self) -> bool {
        Arc::strong_count(&self.buffer) == 1
    }

    /// The bytes of a tensor held in memory ([`RawTensor::is_held`]); one still in its
    /// source is read with [`RawTensor::load`] or [`RawTensor::read_f32_range`].
    pub fn bytes(&self) -> &[u8] {
        assert!(self.is_held(), "RawTensor::bytes of a tensor not loaded");
        &self.buffer[self.start..self.start + self.byte_len()]
    }

    /// The tensor's bytes, consuming it: its own buffer, without a copy, when it has
    /// one. A tensor not held must be loaded first.
    pub fn into_bytes(self) -> Vec<u8> {
        let len = self.byte_len();
        if self.start != 0 || !self.owns_buffer() {
            return self.bytes().to_vec();
        }
        let mut bytes = Arc::unwrap_or_clone(self.buffer);
        bytes.truncate(len);
        bytes
    }

    /// The values as f32, consuming the tensor. An f32 tensor that owns its buffer is
    /// converted a piece at a time from its end, giving its bytes back as it goes
    /// ([`move_from_end`]): a big matrix is never held twice.
    pub fn into_f32(self) -> Option<Vec<f32>> {
        let n = self.numel();
        if self.dtype != DType::F32 || self.start != 0 || !self.owns_buffer() || !self.is_held() {
            return self.to_f32();
        }
        let mut bytes = Arc::unwrap_or_clone(self.buffer);
        bytes.truncate(n * 4);
        let mut values = vec![0f32; n];
        move_from_end(&mut bytes, 0, &mut values, |b, out| {
            for (v, c) in out.iter_mut().zip(b.chunks_exact(4)) {
                *v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
        });
        Some(values)
    }

    /// [`RawTensor::into_f32`] for a tensor that may not be held: one still in its
    /// source is read and widened 8 MB at a time, so that its bytes are never held
    /// beside its values. `Err` when a read fails.
    pub fn read_f32(self) -> Result<Option<Vec<f32>>, String> {
        if self.is_held() {
            return Ok(self.into_f32());
        }
        let n = self.numel();
        let per_piece = ((8 << 20) / self.dtype.size()).max(1);
        let mut values = Vec::with_capacity(n);
        for start in (0..n).step_by(per_piece) {
            match self.read_f32_range(start..n.min(start + per_piece))? {
                Some(piece) => values.extend(piece),
                None => return Ok(None),
            }
        }
        Ok(Some(values))
    }

    /// The values as f32; `None` for integer and boolean tensors.
    pub fn to_f32(&self) -> Option<Vec<f32>> {
        self.f32_range(0..self.numel())
    }

    /// Values `range` (in row-major order) as f32: a part of a big tensor without a
    /// copy of all of it. `None` for integer and boolean tensors, and where the bytes
    /// could not be read from the tensor's source ([`RawTensor::read_f32_range`] says
    /// why).
    pub fn f32_range(&self, range: std::ops::Range<usize>) -> Option<Vec<f32>> {
        self.read_f32_range(range).ok().flatten()
    }

    /// [`RawTensor::f32_range`], reading a tensor not held from its source (only the
    /// range): `Err` when that read fails, `Ok(None)` for integer and boolean tensors.
    pub fn read_f32_range(
        &self,
        range: std::ops::Range<usize>,
    ) -> Result<Option<Vec<f32>>, String> {
        let size = self.dtype.size();
        let bytes = (range.start * size)..(range.end * size);
        let read;
        let b = match &self.elsewhere {
            None => &self.bytes()[bytes],
            Some((source, offset)) => {
                let mut buf = vec![0u8; bytes.len()];
                source.read_at(offset + bytes.start as u64, &mut buf)?;
                read = buf;
                &read[..]
            }
        };
        Ok(Some(match self.dtype {
            DType::F32 => b
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            DType::F16 => b
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            DType::BF16 => b
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            DType::F64 => b
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or_default()) as f32)
                .collect(),
            DType::I8 => {
                let Some(scales) = self.row_scales.as_ref() else {
                    return Ok(None);
                };
                let cols = self.shape.get(1).copied().unwrap_or(0).max(1);
                let (mut row, mut col) = (range.start / cols, range.start % cols);
                b.iter()
                    .map(|&q| {
                        let v = q as i8 as f32 * scales[row];
                        col += 1;
                        if col == cols {
                            (row, col) = (row + 1, 0);
                        }
                        v
                    })
                    .collect()
            }
            _ => return Ok(None),
        }))
    }
}

/// Moves `source[start..]` into `out` through `decode` (bytes to `out`'s items), 8 MB
/// at a time from the end, shrinking `source` after each piece: memory beyond its new
/// length goes back to the system (glibc shrinks a big allocation in place), and
/// `out`, made with `vec![0; n]`, costs nothing until its pages are written. So the
/// bytes are never held twice, where a plain copy holds them twice for a moment.
pub fn move_from_end<T>(
    source: &mut Vec<u8>,
    start: usize,
    out: &mut [T],
    decode: impl Fn(&[u8], &mut [T]),
) {
    const PIECE: usize = 8 << 20;
    let item = (source.len() - start) / out.len().max(1);
    let per_piece = (PIECE / item.max(1)).max(1);
    let mut end = out.len();
    while end > 0 {
        let from = end.saturating_sub(per_piece);
        decode(
            &source[start + from * item..start + end * item],
            &mut out[from..end],
        );
        source.truncate(start + from * item);
        source.shrink_to_fit();
        end = from;
    }
}

/// Product of dimensions, `None` on overflow.
pub fn numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An int8 matrix with row scales reads the same whole and in pieces that start
    /// and end inside rows (the fingerprint reads 64k values at a time).
    #[test]
    fn int8_with_scales_reads_the_same_in_pieces() {
        let (rows, cols) = (5, 7);
        let bytes: Vec<u8> = (0..rows * cols)
            .map(|i| ((i * 13 % 200) as i32 - 100) as i8 as u8)
            .collect();
        let scales: Vec<f32> = (0..rows).map(|r| 0.5 + r as f32).collect();
        let t = RawTensor::view(DType::I8, vec![rows, cols], Arc::new(bytes.clone()), 0).unwrap();
        assert!(
            !t.is_float() && t.to_f32().is_none(),
            "no scales: not values"
        );
        let t = t.with_row_scales(scales.clone());
        let whole = t.to_f32().unwrap();
        for (i, v) in whole.iter().enumerate() {
            assert_eq!(*v, bytes[i] as i8 as f32 * scales[i / cols]);
        }
        let pieces: Vec<f32> = [0..3, 3..10, 10..11, 11..35]
            .into_iter()
            .flat_map(|r| t.f32_range(r).unwrap())
            .collect();
        assert_eq!(pieces, whole);
    }

    /// Moving in pieces from the end gives the values a plain conversion gives,
    /// across several pieces and a short last one, and leaves the source empty.
    #[test]
    fn values_moved_from_the_end_in_pieces_are_the_values() {
        let n = 5 * (1 << 20) + 3; // 20 MB of f32: three pieces of 8 MB, the last short
        let values: Vec<f32> = (0..n).map(|i| (i as f32).sin()).collect();
        let bytes = super::super::safetensors::le_bytes(&values, f32::to_le_bytes);
        let t = RawTensor::view(DType::F32, vec![n], Arc::new(bytes.clone()), 0).unwrap();
        assert_eq!(t.into_f32().unwrap(), values);
        let mut source = [vec![7u8; 11], bytes.clone()].concat();
        let mut moved = vec![0u8; bytes.len()];
        move_from_end(&mut source, 11, &mut moved, |b, out| out.copy_from_slice(b));
        assert_eq!(moved, bytes);
        assert_eq!(source, vec![7u8; 11]);
    }
}
