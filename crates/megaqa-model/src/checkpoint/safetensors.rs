//! safetensors files, read in place from a shared buffer, and written from
//! (name, dtype, shape, bytes) entries: megaqa's one reader and one writer.

use std::collections::BTreeMap;
use std::sync::Arc;

use safetensors::{Dtype, SafeTensors};

use super::tensor::{ByteSource, DType, RawTensor};

/// Tensors plus the free-form `__metadata__` strings of the header.
pub struct SafetensorsFile {
    pub tensors: BTreeMap<String, RawTensor>,
    pub metadata: BTreeMap<String, String>,
}

/// The header's length from a safetensors file's first 8 bytes, within safetensors' own
/// limit (100 MB).
fn header_len(first: [u8; 8]) -> Result<u64, String> {
    let len = u64::from_le_bytes(first);
    if len > 100_000_000 {
        return Err(format!("header of {len} bytes"));
    }
    Ok(len)
}

/// The `__metadata__` strings of the safetensors file at `path`, reading its header
/// only (a training run's step, without reading its weights).
pub fn read_metadata(path: &std::path::Path) -> Result<BTreeMap<String, String>, String> {
    use std::io::Read;
    #[derive(serde::Deserialize)]
    struct Header {
        #[serde(rename = "__metadata__", default)]
        metadata: BTreeMap<String, String>,
    }
    let bad = |why: String| format!("{}: not a valid safetensors file: {why}", path.display());
    let mut f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut len = [0u8; 8];
    f.read_exact(&mut len)
        .map_err(|_| bad("shorter than 8 bytes".into()))?;
    let len = header_len(len).map_err(bad)?;
    let mut header = vec![0; len as usize];
    f.read_exact(&mut header)
        .map_err(|_| bad(format!("shorter than its {len}-byte header")))?;
    serde_json::from_slice::<Header>(&header)
        .map(|h| h.metadata)
        .map_err(|e| bad(format!("header: {e}")))
}

/// What a safetensors file holds, from its header alone: enough to judge the memory a
/// model will take from the first bytes of its download, before the rest arrives.
#[derive(Debug, Clone, PartialEq)]
pub struct Census {
    /// Values in all tensors.
    pub values: u64,
    /// Values in f16 and bf16 tensors.
    pub values_16bit: u64,
    /// Bytes of tensor data (the file less its header).
    pub data_bytes: u64,
    /// The tensor with the most values, and how many.
    pub largest: (String, u64),
}

/// One tensor as a safetensors header lists it. Sizes are u64 (wasm32's usize cannot
/// count a file over 4 GB).
#[derive(serde::Deserialize)]
struct Listed {
    dtype: String,
    shape: Vec<u64>,
    data_offsets: [u64; 2],
}

/// A safetensors header: its length, its tensors by name, and its `__metadata__`.
type Header = (u64, BTreeMap<String, Listed>, BTreeMap<String, String>);

/// A safetensors header from a file's first bytes. `Ok(None)` while the header has not
/// all arrived, an error if they do not start a safetensors file.
fn header(head: &[u8]) -> Result<Option<Header>, String> {
    let bad = |why: String| format!("not a valid safetensors file: {why}");
    let Some(len) = head.get(..8) else {
        return Ok(None);
    };
    let len = header_len(len.try_into().expect("8 bytes")).map_err(bad)?;
    // The JSON header's `{` tells a safetensors file from others (a gzip's length field
    // can look plausible) before waiting for the length it states.
    if head.get(8).is_some_and(|&b| b != b'{') {
        return Err(bad("no JSON header".into()));
    }
    let Some(text) = head.get(8..8 + len as usize) else {
        return Ok(None);
    };
    let mut entries: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(text).map_err(|e| bad(format!("header: {e}")))?;
    let metadata = match entries.remove("__metadata__") {
        None => BTreeMap::new(),
        Some(m) => serde_json::from_value(m).map_err(|e| bad(format!("`__metadata__`: {e}")))?,
    };
    let mut tensors = BTreeMap::new();
    for (name, entry) in entries {
        let e: Listed =
            serde_json::from_value(entry).map_err(|e| bad(format!("tensor `{name}`: {e}")))?;
        tensors.insert(name, e);
    }
    Ok(Some((len, tensors, metadata)))
}

/// The census of a safetensors file from its first bytes: `Ok(None)` while the header
/// has not all arrived, an error if they do not start a safetensors file.
pub fn census(head: &[u8]) -> Result<Option<Census>, String> {
    let Some((_, tensors, _)) = header(head)? else {
        return Ok(None);
    };
    let mut census = Census {
        values: 0,
        values_16bit: 0,
        data_bytes: 0,
        largest: (String::new(), 0),
    };
    for (name, e) in tensors {
        let values = e.shape.iter().try_fold(1u64, |n, &d| n.checked_mul(d));
        let values = values.ok_or_else(|| {
            format!("not a valid safetensors file: tensor `{name}`: shape overflows")
        })?;
        census.values = census.values.saturating_add(values);
        if matches!(e.dtype.as_str(), "F16" | "BF16") {
            census.values_16bit = census.values_16bit.saturating_add(values);
        }
        census.data_bytes = census.data_bytes.max(e.data_offsets[1]);
        if values > census.largest.1 {
            census.largest = (name, values);
        }
    }
    Ok(Some(census))
}

/// The tensors of the `len`-byte safetensors file in `source`, left there: only the
/// header is read now, each tensor when it is loaded ([`RawTensor::load`]). Checked as
/// the in-memory reader checks a file: known dtypes, and data offsets that tile the
/// data exactly, each tensor's as long as its shape says.
pub fn read_from(source: Arc<dyn ByteSource>, len: u64) -> Result<SafetensorsFile, String> {
    let bad = |why: String| format!("not a valid safetensors file: {why}");
    let mut first = [0u8; 8];
    if len < 8 {
        return Err(bad("shorter than 8 bytes".into()));
    }
    source.read_at(0, &mut first)?;
    let header_bytes = header_len(first).map_err(bad)?;
    let data_start = 8 + header_bytes;
    if data_start > len {
        return Err(bad(format!("shorter than its {header_bytes}-byte header")));
    }
    let mut head = vec![0u8; data_start as usize];
    source.read_at(0, &mut head)?;
    let (_, listed, metadata) = header(&head)?.ok_or_else(|| bad("no header".into()))?;
    let mut found: Vec<(String, Listed)> = listed.into_iter().collect();
    found.sort_by_key(|(_, e)| e.data_offsets);
    let mut tensors = BTreeMap::new();
    let mut end = 0u64;
    for (name, e) in found {
        let [begin, stop] = e.data_offsets;
        // The header's name read as safetensors' own dtype (the names are its serde names).
        let dtype = serde_json::from_value(serde_json::Value::String(e.dtype.clone()))
            .ok()
            .and_then(dtype_of)
            .ok_or_else(|| format!("tensor `{name}` has unsupported dtype {}", e.dtype))?;
        let shape: Option<Vec<usize>> = e.shape.iter().map(|&d| d.try_into().ok()).collect();
        let bytes = e
            .shape
            .iter()
            .try_fold(dtype.size() as u64, |n, &d| n.checked_mul(d));
        if begin != end || stop < begin || Some(stop - begin) != bytes {
            return Err(bad(format!(
                "tensor `{name}`: data offsets [{begin}, {stop}] do not follow the tensor before at {end} with the {} bytes of its {} shape {:?}",
                bytes.unwrap_or(0),
                e.dtype,
                e.shape
            )));
        }
        end = stop;
        let tensor = shape
            .and_then(|shape| {
                RawTensor::elsewhere(dtype, shape, source.clone(), data_start + begin)
            })
            .ok_or_else(|| bad(format!("tensor `{name}`: shape {:?} overflows", e.shape)))?;
        tensors.insert(name, tensor);
    }
    if data_start + end != len {
        return Err(bad(format!(
            "its tensors take {end} bytes after the header, the file has {}",
            len - data_start
        )));
    }
    Ok(SafetensorsFile { tensors, metadata })
}

/// The element type megaqa reads for a safetensors dtype; `None` for those it does not.
fn dtype_of(dtype: Dtype) -> Option<DType> {
    Some(match dtype {
        Dtype::F32 => DType::F32,
        Dtype::F16 => DType::F16,
        Dtype::BF16 => DType::BF16,
        Dtype::F64 => DType::F64,
        Dtype::I64 => DType::I64,
        Dtype::I32 => DType::I32,
        Dtype::I16 => DType::I16,
        Dtype::I8 => DType::I8,
        Dtype::U8 => DType::U8,
        Dtype::BOOL => DType::Bool,
        _ => return None,
    })
}

/// The tensors of a safetensors file, each moved into a buffer of its own: the file's
/// buffer shrinks from its end as they are taken (`move_from_end`), so reading never
/// holds a tensor twice, and later each tensor's memory goes as soon as the network
/// has used it. Sharing the one buffer instead kept all of the file alive until the
/// last tensor was used: loading peaked at twice the weights.
///
/// The largest tensor is not moved: it keeps the file's buffer itself (slid to its
/// front). Each move needs a free block of the tensor's size, and memory that never
/// shrinks (wasm's) has no free block that big left by then: moving a 345M model's
/// 62.5 MB word embeddings grew a tab's memory by that much. So the few tensors before
/// the largest are copied out first (the embeddings' small neighbours), then those
/// after it are moved from the end, and what is left of the buffer is the largest.
pub fn read(mut buffer: Vec<u8>) -> Result<SafetensorsFile, String> {
    let (_, meta) = SafeTensors::read_metadata(&buffer)
        .map_err(|e| format!("not a valid safetensors file: {e}"))?;
    let st = SafeTensors::deserialize(&buffer)
        .map_err(|e| format!("not a valid safetensors file: {e}"))?;
    let base = buffer.as_ptr() as usize;
    let mut found = Vec::new();
    for (name, view) in st.tensors() {
        let dtype = dtype_of(view.dtype())
            .ok_or_else(|| format!("tensor `{name}` has unsupported dtype {:?}", view.dtype()))?;
        let start = view.data().as_ptr() as usize - base;
        found.push((start, view.data().len(), name, dtype, view.shape().to_vec()));
    }
    let metadata = meta
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    found.sort_by_key(|t| t.0);
    let largest = (0..found.len()).max_by_key(|&i| found[i].1);
    let mut tensors = BTreeMap::new();
    let mut add = |name: String, dtype, shape, bytes: Vec<u8>| {
        let tensor = RawTensor::view(dtype, shape, Arc::new(bytes), 0)
            .ok_or_else(|| format!("tensor `{name}` runs past the end of the file"))?;
        tensors.insert(name, tensor);
        Ok::<_, String>(())
    };
    let Some(largest) = largest else {
        return Ok(SafetensorsFile { tensors, metadata });
    };
    let after = found.split_off(largest + 1);
    let (start, len, name, dtype, shape) = found.pop().expect("the largest is in `found`");
    if start + len > buffer.len() {
        return Err(format!("tensor `{name}` runs past the end of the file"));
    }
    // Before the largest (small ones, copied); then after it, last in the file first,
    // so that each truncation frees what was just copied.
    for (s, l, name, dtype, shape) in found {
        let bytes = buffer.get(s..s + l).map(<[u8]>::to_vec).unwrap_or_default();
        add(name, dtype, shape, bytes)?;
    }
    for (s, l, name, dtype, shape) in after.into_iter().rev() {
        buffer.truncate(s + l);
        let mut bytes = vec![0u8; l];
        super::tensor::move_from_end(&mut buffer, s, &mut bytes, |b, out| out.copy_from_slice(b));
        buffer.truncate(s);
        add(name, dtype, shape, bytes)?;
    }
    buffer.truncate(start + len);
    buffer.copy_within(start.., 0);
    buffer.truncate(len);
    buffer.shrink_to_fit();
    add(name, dtype, shape, buffer)?;
    Ok(SafetensorsFile { tensors, metadata })
}

/// Values as little-endian bytes (`le_bytes(&v, f32::to_le_bytes)`).
pub fn le_bytes<T: Copy, const N: usize>(values: &[T], to: impl Fn(T) -> [u8; N]) -> Vec<u8> {
    values.iter().flat_map(|&v| to(v)).collect()
}

/// One tensor to write: its name, dtype, shape and little-endian bytes.
pub type Entry = (String, Dtype, Vec<usize>, Vec<u8>);

/// A safetensors file of `entries` with `metadata` in its header. The same entries and
/// metadata always give the same bytes, so a file's sha256 can be checked.
pub fn write(
    entries: &[Entry],
    metadata: std::collections::HashMap<String, String>,
) -> Result<Vec<u8>, String> {
    let views = entries
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            safetensors::tensor::TensorView::new(*dtype, shape.clone(), bytes)
                .map(|v| (name.clone(), v))
                .map_err(|e| format!("{name}: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let file = safetensors::serialize(views, Some(metadata)).map_err(|e| e.to_string())?;
    Ok(with_sorted_metadata(file))
}

/// `file` with its header's metadata keys in order. safetensors writes them in the
/// order of the `HashMap` it is given, which changes from run to run.
fn with_sorted_metadata(file: Vec<u8>) -> Vec<u8> {
    let n = u64::from_le_bytes(file[..8].try_into().expect("8 bytes")) as usize;
    let mut header: serde_json::Value =
        serde_json::from_slice(&file[8..8 + n]).expect("safetensors wrote its own header");
    if let Some(serde_json::Value::Object(m)) = header.get_mut("__metadata__") {
        m.sort_keys();
    }
    let mut sorted = serde_json::to_vec(&header).expect("a JSON value serialises");
    // The data's offsets are from the end of the header, so only its padding (to 8
    // bytes, with spaces, as safetensors pads) depends on the header's length.
    sorted.resize(sorted.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + sorted.len() + file.len() - 8 - n);
    out.extend((sorted.len() as u64).to_le_bytes());
    out.extend(sorted);
    out.extend(&file[8 + n..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same tensors and metadata give the same bytes however the metadata map was
    /// built, and read back alike.
    #[test]
    fn files_are_written_the_same_every_time() {
        let entries: Vec<Entry> = vec![(
            "w".into(),
            Dtype::F32,
            vec![2],
            vec![0, 0, 128, 63, 0, 0, 0, 64],
        )];
        let keys: Vec<(String, String)> = (0..12)
            .map(|i| (format!("key.{i}"), format!("value {i}")))
            .collect();
        let forward: std::collections::HashMap<_, _> = keys.iter().cloned().collect();
        let backward: std::collections::HashMap<_, _> = keys.iter().rev().cloned().collect();
        let (a, b) = (
            write(&entries, forward.clone()).unwrap(),
            write(&entries, backward).unwrap(),
        );
        assert_eq!(a, b);
        let st = SafeTensors::deserialize(&a).unwrap();
        assert_eq!(st.tensor("w").unwrap().data(), &entries[0].3[..]);
        let (_, meta) = SafeTensors::read_metadata(&a).unwrap();
        assert_eq!(meta.metadata().clone().unwrap(), forward);
        assert_eq!((8 + u64::from_le_bytes(a[..8].try_into().unwrap())) % 8, 0);
    }

    /// The census is read from the first bytes alone, and waits for the whole header.
    #[test]
    fn census_reads_the_header_of_a_download_that_has_only_begun() {
        let entries: Vec<Entry> = vec![
            ("small".into(), Dtype::F16, vec![3, 2], vec![0; 12]),
            ("big".into(), Dtype::F16, vec![5, 4], vec![0; 40]),
            ("wide".into(), Dtype::F32, vec![2], vec![0; 8]),
        ];
        let file = write(&entries, [("k".into(), "v".into())].into()).unwrap();
        let header_end = 8 + u64::from_le_bytes(file[..8].try_into().unwrap()) as usize;
        let expected = Census {
            values: 28,
            values_16bit: 26,
            data_bytes: 60,
            largest: ("big".into(), 20),
        };
        assert_eq!(census(&file[..header_end]).unwrap(), Some(expected.clone()));
        assert_eq!(census(&file).unwrap(), Some(expected));
        assert_eq!(census(&file[..header_end - 1]).unwrap(), None);
        assert_eq!(census(&file[..5]).unwrap(), None);
        let not = census(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03").unwrap_err();
        assert!(not.starts_with("not a valid safetensors file"), "{not}");
    }

    /// Every tensor read keeps its own buffer (none shares one), with the bytes the
    /// file had: what lets loading free each tensor once the network took it. The
    /// largest ("b", in the middle) keeps the file's buffer; those before it are
    /// copied, those after it moved from the end.
    #[test]
    fn tensors_are_read_into_buffers_of_their_own() {
        let entries: Vec<Entry> = [("a", 3usize), ("b", 1000), ("c", 17), ("d", 40)]
            .iter()
            .map(|&(name, n)| {
                let v: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 3.0).collect();
                (
                    name.to_string(),
                    Dtype::F32,
                    vec![n],
                    le_bytes(&v, f32::to_le_bytes),
                )
            })
            .collect();
        let file = read(write(&entries, Default::default()).unwrap()).unwrap();
        for (name, _, shape, bytes) in &entries {
            let t = &file.tensors[name];
            assert_eq!((&t.shape, t.bytes()), (shape, bytes.as_slice()), "{name}");
            assert!(t.owns_buffer(), "{name} shares a buffer");
        }
    }
}
