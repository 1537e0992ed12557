//! PyTorch zip checkpoints (`torch.save` since 1.6): `<dir>/data.pkl` describes the
//! state dict, `<dir>/data/<key>` holds each storage's raw little-endian bytes.

use std::collections::BTreeMap;
use std::io::{Cursor, Read};
use std::sync::Arc;

use super::pickle::{self, TensorRef, Value};
use super::tensor::{RawTensor, numel};

/// Reads every tensor of a torch zip checkpoint. Errors are plain messages; the
/// caller adds the file name.
pub fn read(bytes: &[u8]) -> Result<BTreeMap<String, RawTensor>, String> {
    if bytes.starts_with(&[0x80, 0x02, 0x8a, 0x0a]) || bytes.starts_with(&[0x80, 0x02]) {
        return Err("legacy (pre-1.6, non-zip) torch format; re-save it with torch.save in a current PyTorch".into());
    }
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| format!("not a torch zip checkpoint: {e}"))?;
    let pkl_name = zip
        .file_names()
        .filter(|n| *n == "data.pkl" || n.ends_with("/data.pkl"))
        .min_by_key(|n| n.len())
        .map(str::to_owned)
        .ok_or("torch zip checkpoint has no data.pkl")?;
    let prefix = pkl_name
        .strip_suffix("data.pkl")
        .unwrap_or_default()
        .to_owned();
    if let Ok(mut f) = zip.by_name(&format!("{prefix}byteorder")) {
        let mut order = String::new();
        f.read_to_string(&mut order)
            .map_err(|e| format!("byteorder record: {e}"))?;
        if order.trim() != "little" {
            return Err(format!(
                "byte order `{}` is not supported (only little-endian)",
                order.trim()
            ));
        }
    }
    let pkl = read_entry(&mut zip, &pkl_name)?;
    let root = pickle::interpret(&pkl).map_err(|e| e.to_string())?;
    let entries = state_dict_entries(root)?;

    let mut storages: BTreeMap<String, Arc<Vec<u8>>> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for (name, t) in entries {
        if !storages.contains_key(&t.storage_key) {
            if t.storage_key.contains('/') || t.storage_key.contains("..") {
                return Err(format!(
                    "tensor `{name}`: storage key `{}` is not a plain name",
                    t.storage_key
                ));
            }
            let data = read_entry(&mut zip, &format!("{prefix}data/{}", t.storage_key))
                .map_err(|e| format!("tensor `{name}`: {e}"))?;
            storages.insert(t.storage_key.clone(), Arc::new(data));
        }
        let storage = storages[&t.storage_key].clone();
        let tensor = materialize(&t, storage).map_err(|e| format!("tensor `{name}`: {e}"))?;
        out.insert(name, tensor);
    }
    Ok(out)
}

fn read_entry(zip: &mut zip::ZipArchive<Cursor<&[u8]>>, name: &str) -> Result<Vec<u8>, String> {
    let mut f = zip
        .by_name(name)
        .map_err(|e| format!("zip entry `{name}`: {e}"))?;
    // The declared size is only a hint: never allocate more than the archive could hold.
    let mut data = Vec::new();
    f.read_to_end(&mut data)
        .map_err(|e| format!("zip entry `{name}`: {e}"))?;
    Ok(data)
}

/// A state dict is a dict of name -> tensor; Lightning-style checkpoints nest it
/// under `state_dict`. Non-tensor values (metadata) are skipped.
fn state_dict_entries(root: Value) -> Result<Vec<(String, TensorRef)>, String> {
    let Value::Dict(items) = root else {
        return Err("checkpoint pickle is not a dict".into());
    };
    let nested = items.iter().find_map(|(k, v)| match (k, v) {
        (Value::Str(k), Value::Dict(_)) if k == "state_dict" => Some(v.clone()),
        _ => None,
    });
    if let Some(inner) = nested {
        return state_dict_entries(inner);
    }
    let mut out = Vec::new();
    for (k, v) in items {
        match (k, v) {
            (Value::Str(k), Value::Tensor(t)) => out.push((k, t)),
            (Value::Str(_), _) => {}
            (k, _) => return Err(format!("state dict key {k:?} is not a string")),
        }
    }
    Ok(out)
}

/// Turns a (storage, offset, shape, stride) record into contiguous bytes, checking
/// that every element it addresses lies inside the storage.
fn materialize(t: &TensorRef, storage: Arc<Vec<u8>>) -> Result<RawTensor, String> {
    let size = t.dtype.size();
    let n = numel(&t.shape).ok_or("element count overflows")?;
    let last = if n == 0 {
        0
    } else {
        t.shape
            .iter()
            .zip(&t.stride)
            .try_fold(t.offset, |acc, (&d, &s)| {
                acc.checked_add((d - 1).checked_mul(s)?)
            })
            .ok_or("stride arithmetic overflows")?
    };
    let storage_elems = storage.len() / size;
    if n > 0 && last >= storage_elems {
        return Err(format!(
            "shape {:?} with stride {:?} at offset {} reaches element {last}, past the storage's {storage_elems} elements",
            t.shape, t.stride, t.offset
        ));
    }
    let contiguous = {
        let mut expect = 1;
        let mut ok = true;
        for (&d, &s) in t.shape.iter().zip(&t.stride).rev() {
            if d > 1 && s != expect {
                ok = false;
            }
            expect *= d;
        }
        ok
    };
    if contiguous {
        return RawTensor::view(t.dtype, t.shape.clone(), storage, t.offset * size)
            .ok_or_else(|| "tensor runs past its storage".to_string());
    }
    // Strided view: gather the elements in row-major order.
    let mut out = Vec::with_capacity(n * size);
    let mut index = vec![0usize; t.shape.len()];
    for _ in 0..n {
        let elem = t.offset
            + index
                .iter()
                .zip(&t.stride)
                .map(|(i, s)| i * s)
                .sum::<usize>();
        out.extend_from_slice(&storage[elem * size..(elem + 1) * size]);
        for d in (0..index.len()).rev() {
            index[d] += 1;
            if index[d] < t.shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
    RawTensor::view(t.dtype, t.shape.clone(), Arc::new(out), 0)
        .ok_or_else(|| "gather failed".to_string())
}
