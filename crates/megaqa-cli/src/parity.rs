//! `megaqa parity`: the same questions on two devices, or on one device against a
//! results file exported elsewhere (the web app, another machine).

use std::collections::HashMap;
use std::process::ExitCode;

use anyhow::{Result, bail};
use megaqa::text::Dataset;
use megaqa::text::scoring::{compute_exact, compute_f1};
use megaqa::{QuestionResult, ResultsFile};

use crate::args::ParityArgs;
use crate::shared::{load_engine, open_device, read_text, write_atomic};

fn run_device(a: &ParityArgs, data: &Dataset, device: &str) -> Result<ResultsFile> {
    let opened = open_device(Some(device))?;
    let engine = load_engine(&a.model, &opened)?;
    let mut results = Vec::with_capacity(data.examples.len());
    for chunk in data.examples.chunks(a.batch_size.max(1) * 4) {
        let items: Vec<(&str, &str)> = chunk
            .iter()
            .map(|e| (e.question.as_str(), &*e.context))
            .collect();
        for (ex, ans) in chunk.iter().zip(engine.answer_many(&items, a.batch_size)?) {
            results.push(QuestionResult::new(
                Some(ex.id.clone()),
                &ex.question,
                &ex.context,
                &ans,
            ));
        }
    }
    Ok(ResultsFile::new(
        &engine.model_sha256,
        &opened.name,
        results,
    ))
}

pub fn run(a: ParityArgs) -> Result<ExitCode> {
    let data = Dataset::open(&a.data)?;
    let ra = run_device(&a, &data, &a.device_a)?;
    if let Some(path) = &a.export {
        write_atomic(path, serde_json::to_string(&ra)?.as_bytes())?;
        eprintln!(
            "megaqa: wrote {} results of {} to {}",
            ra.results.len(),
            ra.backend,
            path.display()
        );
    }
    let rb = match (&a.against, &a.device_b) {
        (Some(path), _) => {
            let r = ResultsFile::parse(&path.display().to_string(), &read_text(path)?)
                .map_err(anyhow::Error::msg)?;
            if r.model_sha256 != ra.model_sha256 {
                bail!(
                    "{}: made with another model (sha256 {}), not {} ({})",
                    path.display(),
                    r.model_sha256,
                    a.model.display(),
                    ra.model_sha256
                );
            }
            r
        }
        (None, Some(d)) => run_device(&a, &data, d)?,
        (None, None) => bail!("give --device-b D or --against RESULTS.json"),
    };
    let by_key: HashMap<(String, String), &QuestionResult> = rb
        .results
        .iter()
        .map(|r| ((r.id.clone().unwrap_or_default(), r.question.clone()), r))
        .collect();
    let (mut max_d, mut same, mut em, mut f1, mut compared) = (0f32, 0usize, 0f64, 0f64, 0usize);
    let mut worst = String::new();
    for x in &ra.results {
        let key = (x.id.clone().unwrap_or_default(), x.question.clone());
        let Some(y) = by_key.get(&key) else { continue };
        if x.context_sha256 != y.context_sha256 {
            bail!("question `{}`: the two runs saw different passages", key.0);
        }
        let shape = |r: &QuestionResult| r.start_logits.iter().map(Vec::len).collect::<Vec<_>>();
        if shape(x) != shape(y) || shape(x) != y.end_logits.iter().map(Vec::len).collect::<Vec<_>>()
        {
            bail!(
                "question `{}`: the runs split the passage into different windows ({:?} vs {:?} tokens)",
                key.0,
                shape(x),
                shape(y)
            );
        }
        for (xs, ys) in x
            .start_logits
            .iter()
            .chain(&x.end_logits)
            .zip(y.start_logits.iter().chain(&y.end_logits))
        {
            for (u, v) in xs.iter().zip(ys) {
                let d = (u - v).abs();
                if d > max_d || d.is_nan() {
                    max_d = if d.is_nan() { f32::INFINITY } else { d };
                    worst = key.0.clone();
                }
            }
        }
        same += usize::from(x.answer == y.answer && x.start == y.start && x.end == y.end);
        em += compute_exact(&x.answer, &y.answer);
        f1 += compute_f1(&x.answer, &y.answer);
        compared += 1;
    }
    if compared == 0 {
        bail!("no question of {} is in both runs", a.data.display());
    }
    let n = compared as f64;
    println!(
        "A: {}   B: {}   questions compared: {compared} of {}",
        ra.backend,
        rb.backend,
        data.examples.len()
    );
    println!(
        "max |d logit|: {max_d:.3e} (question {worst})   tolerance {:.1e}",
        a.tolerance
    );
    println!(
        "identical answers: {same}/{compared} ({:.2}%)",
        100.0 * same as f64 / n
    );
    println!(
        "B against A: EM {:.2}  F1 {:.2}",
        100.0 * em / n,
        100.0 * f1 / n
    );
    if compared < data.examples.len() && a.against.is_some() {
        eprintln!(
            "megaqa: note: the results file covers {compared} of {} questions",
            data.examples.len()
        );
    }
    if max_d > a.tolerance {
        eprintln!(
            "error: parity failed: max |d logit| {max_d:.3e} exceeds the tolerance {:.1e}",
            a.tolerance
        );
        return Ok(ExitCode::FAILURE);
    }
    println!("parity: ok");
    Ok(ExitCode::SUCCESS)
}
