//! `megaqa predict`: every question of a SQuAD file.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use megaqa::text::{Dataset, Prediction, output};

use crate::args::PredictArgs;
use crate::shared::{load_engine, open_device};

pub fn run(a: PredictArgs) -> Result<ExitCode> {
    let data = Dataset::open(&a.data)?;
    let opened = open_device(a.model.device.as_deref())?;
    let mut engine = load_engine(&a.model.model, &opened)?;
    if let Some(t) = a.null_threshold {
        engine.decode.null_threshold = t;
    }
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("{}: cannot create", a.out.display()))?;

    let bar = ProgressBar::new(data.examples.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} questions  {msg}  ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let mut windows = 0usize;
    let mut preds: Vec<(String, Prediction)> = Vec::with_capacity(data.examples.len());
    // Enough questions per call to fill several batches of windows.
    for chunk in data.examples.chunks(a.batch_size.max(1) * 4) {
        let items: Vec<(&str, &str)> = chunk
            .iter()
            .map(|e| (e.question.as_str(), &*e.context))
            .collect();
        let answered = engine
            .answer_many(&items, a.batch_size)
            .with_context(|| format!("question {}", chunk[0].path))?;
        for (ex, ans) in chunk.iter().zip(answered) {
            windows += ans.windows.len();
            preds.push((ex.id.clone(), ans.prediction));
        }
        bar.inc(chunk.len() as u64);
        bar.set_message(format!(
            "{:.1} windows/s",
            windows as f64 / started.elapsed().as_secs_f64()
        ));
    }
    bar.finish_and_clear();
    for (name, value) in [
        ("predictions.json", output::predictions_json(&preds)),
        ("null_odds.json", output::null_odds_json(&preds)),
        ("nbest.json", output::nbest_json(&preds)),
    ] {
        let path = a.out.join(name);
        output::write_json_atomic(&path, &value)
            .with_context(|| format!("{}: cannot write", path.display()))?;
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "megaqa: {} questions, {windows} windows in {secs:.1} s ({:.1} windows/s) on {}; wrote {}",
        preds.len(),
        windows as f64 / secs,
        opened.name,
        a.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
