//! `megaqa evaluate`: the official SQuAD v2.0 figures.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, bail};
use megaqa::text::Dataset;
use megaqa::text::scoring::evaluate;
use serde_json::Value;

use crate::args::EvaluateArgs;
use crate::shared::read_text;

/// A JSON object `{id: value}` in file order.
fn read_map(path: &Path) -> Result<Vec<(String, Value)>> {
    let text = read_text(path)?;
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(m)) => Ok(m.into_iter().collect()),
        Ok(_) => bail!("{}: expected a JSON object {{id: value}}", path.display()),
        Err(e) => bail!("{}: malformed JSON: {e}", path.display()),
    }
}

pub fn run(a: EvaluateArgs) -> Result<ExitCode> {
    let data = Dataset::open(&a.data)?;
    let mut preds = Vec::new();
    for (id, v) in read_map(&a.predictions)? {
        match v {
            Value::String(s) => preds.push((id, s)),
            other => bail!(
                "{}: prediction for `{id}` is not a string: {other}",
                a.predictions.display()
            ),
        }
    }
    let na = match &a.na_prob_file {
        None => None,
        Some(f) => {
            let mut out = Vec::new();
            for (id, v) in read_map(f)? {
                let Some(x) = v.as_f64() else {
                    bail!("{}: value for `{id}` is not a number: {v}", f.display())
                };
                out.push((id, x));
            }
            Some(out)
        }
    };
    let scores = evaluate(&data, &preds, na.as_deref(), a.na_prob_thresh)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&Value::Object(scores))?);
    } else {
        for (k, v) in &scores {
            println!("{k:>18}: {v}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
