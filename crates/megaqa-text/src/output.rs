//! predictions.json, null_odds.json and nbest.json, written atomically (a temp
//! file in the same folder, then a rename), so no reader ever sees half a file.

use std::io::Write;
use std::path::Path;

use serde_json::{Map, Value, json};

use crate::decode::Prediction;

/// `{id: text}`.
pub fn predictions_json(preds: &[(String, Prediction)]) -> Value {
    Value::Object(
        preds
            .iter()
            .map(|(id, p)| (id.clone(), Value::from(p.text())))
            .collect::<Map<_, _>>(),
    )
}

/// `{id: null_odds}`.
pub fn null_odds_json(preds: &[(String, Prediction)]) -> Value {
    Value::Object(
        preds
            .iter()
            .map(|(id, p)| (id.clone(), Value::from(p.null_odds)))
            .collect::<Map<_, _>>(),
    )
}

/// `{id: [{text, probability, start_logit, end_logit, start, end}, ...]}`.
pub fn nbest_json(preds: &[(String, Prediction)]) -> Value {
    Value::Object(
        preds
            .iter()
            .map(|(id, p)| {
                let list = p
                    .nbest
                    .iter()
                    .map(|e| {
                        json!({"text": e.text, "probability": e.probability, "start_logit": e.start_logit,
                               "end_logit": e.end_logit, "start": e.start, "end": e.end})
                    })
                    .collect();
                (id.clone(), Value::Array(list))
            })
            .collect::<Map<_, _>>(),
    )
}

/// Writes `value` as pretty JSON to `path` through a temporary file and a rename.
pub fn write_json_atomic(path: &Path, value: &Value) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value)?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_whole_files_and_leaves_no_temp() {
        let dir = std::env::temp_dir().join(format!("megaqa-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("predictions.json");
        write_json_atomic(&path, &json!({"a": "x"})).unwrap();
        write_json_atomic(&path, &json!({"b": "y"})).unwrap();
        let back: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(back, json!({"b": "y"}));
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "no temp file left"
        );
        // A folder that does not exist: an error, and nothing written.
        assert!(write_atomic(&dir.join("missing/x.json"), b"{}").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
