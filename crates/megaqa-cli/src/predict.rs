//! `megaqa predict`: every question of a SQuAD file.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use megaqa::text::{Answer, Dataset, Prediction, best_passage, output};
use megaqa_retrieve::Hit;
use serde_json::json;

use crate::args::PredictArgs;
use crate::docs;
use crate::shared::{batch_size, load_engine, open_device};

pub fn run(a: PredictArgs) -> Result<ExitCode> {
    let data = Dataset::open(&a.data)?;
    let library = (!a.docs.is_empty() || a.index.is_some())
        .then(|| docs::open(&a.docs, a.index.as_deref()))
        .transpose()?;
    let opened = open_device(a.model.device)?;
    let engine = load_engine(&a.model.model, &opened, a.model.defaults, a.model.precision)?;
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
    let mut retrieved: Vec<(String, serde_json::Value)> = Vec::new();
    // Enough questions per call to fill several batches of windows.
    let batch = batch_size(a.batch_size, &opened);
    let per_call = match library {
        Some(_) => batch,
        None => batch * 4,
    };
    for chunk in data.examples.chunks(per_call) {
        let context = |e: &megaqa::text::Example| format!("question {}", e.path);
        match &library {
            None => {
                let items: Vec<(&str, &str)> = chunk
                    .iter()
                    .map(|e| (e.question.as_str(), &*e.context))
                    .collect();
                let answered = engine
                    .answer_many(&items, batch)
                    .with_context(|| context(&chunk[0]))?;
                for (ex, ans) in chunk.iter().zip(answered) {
                    windows += ans.windows.len();
                    preds.push((ex.id.clone(), ans.prediction));
                }
            }
            Some(lib) => {
                let hits: Vec<Vec<Hit>> = chunk
                    .iter()
                    .map(|e| lib.search(&e.question, a.passages).unwrap_or_default())
                    .collect();
                let items: Vec<(&str, &str)> = chunk
                    .iter()
                    .zip(&hits)
                    .flat_map(|(e, hs)| {
                        hs.iter()
                            .map(|h| (e.question.as_str(), lib.text(&lib.passages()[h.passage])))
                    })
                    .collect();
                let mut answered = engine
                    .answer_many(&items, batch)
                    .with_context(|| context(&chunk[0]))?
                    .into_iter();
                for (ex, hs) in chunk.iter().zip(&hits) {
                    let read: Vec<_> = answered.by_ref().take(hs.len()).collect();
                    windows += read.iter().map(|r| r.windows.len()).sum::<usize>();
                    let ranked: Vec<_> = hs
                        .iter()
                        .map(|h| {
                            let p = lib.passages()[h.passage];
                            json!({"document": lib.documents[p.doc as usize].name,
                                "start": p.start, "end": p.end, "score": h.score})
                        })
                        .collect();
                    retrieved.push((ex.id.clone(), json!(ranked)));
                    let pred = match best_passage(read.iter().map(|r| &r.prediction)) {
                        Some(i) => in_document(
                            read[i].prediction.clone(),
                            lib.passages()[hs[i].passage].start as usize,
                        ),
                        None => nothing_retrieved(),
                    };
                    preds.push((ex.id.clone(), pred));
                }
            }
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
    if library.is_some() {
        let path = a.out.join("retrieval.json");
        let value = serde_json::Value::Object(retrieved.into_iter().collect());
        output::write_json_atomic(&path, &value)
            .with_context(|| format!("{}: cannot write", path.display()))?;
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "megaqa: {} questions, {windows} windows in {secs:.1} s ({:.1} windows/s, batches of {batch}) on {}; wrote {}",
        preds.len(),
        windows as f64 / secs,
        opened.name,
        a.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// A passage's prediction with its character spans moved into the passage's document.
fn in_document(mut p: Prediction, shift: usize) -> Prediction {
    for a in p.answer.iter_mut().chain([&mut p.best_span]) {
        a.start += shift;
        a.end += shift;
    }
    for e in p.nbest.iter_mut().filter(|e| !e.text.is_empty()) {
        e.start += shift;
        e.end += shift;
    }
    p
}

/// The prediction for a question no passage shares a word with: no answer, and odds no
/// threshold turns into one.
fn nothing_retrieved() -> Prediction {
    Prediction {
        answer: None,
        best_span: Answer {
            text: String::new(),
            start: 0,
            end: 0,
            probability: 0.0,
            sentence: String::new(),
        },
        null_score: 0.0,
        null_odds: f64::MAX,
        nbest: Vec::new(),
    }
}
