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
        serde_json::to_writer_pretty(&mut f, value)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
