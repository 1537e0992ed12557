//! `megaqa parity`: the same questions on two devices, or on one device against a
//! results file exported elsewhere (the web app, another machine).

use std::collections::HashMap;
use std::process::ExitCode;

use anyhow::{Result, bail};
use megaqa::text::Dataset;
use megaqa::text::scoring::{compute_exact, compute_f1};
use megaqa::{QuestionResult, ResultsFile};

use megaqa::model::device::DeviceKind;

use crate::args::{Compute, DefaultsArgs, ParityArgs};
use crate::shared::{batch_size, load_engine, open_device, read_text, write_atomic};

/// One question to run: (SQuAD id, question, passage).
type Item = (Option<String>, String, String);

fn run_device(
    a: &ParityArgs,
    items: &[Item],
    device: DeviceKind,
    precision: Compute,
) -> Result<ResultsFile> {
    let opened = open_device(Some(device))?;
    let engine = load_engine(&a.model, &opened, DefaultsArgs::default(), precision)?;
    let batch = batch_size(a.batch_size, &opened);
    let mut results = Vec::with_capacity(items.len());
    for chunk in items.chunks(batch * 4) {
        let pairs: Vec<(&str, &str)> = chunk
            .iter()
            .map(|(_, q, c)| (q.as_str(), c.as_str()))
            .collect();
        for ((id, q, c), ans) in chunk.iter().zip(engine.answer_many(&pairs, batch)?) {
            results.push(QuestionResult::new(id.clone(), q, c, &ans));
        }
    }
    // The backend's name says the precision when it is not f32.
    let name = match precision {
        Compute::F32 => opened.name.clone(),
        p => format!("{}, {p}", opened.name),
    };
    Ok(ResultsFile::new(&engine.model_sha256, &name, results))
}

pub fn run(a: ParityArgs) -> Result<ExitCode> {
    let against = match &a.against {
        Some(path) => Some(
            ResultsFile::parse(&path.display().to_string(), &read_text(path)?)
                .map_err(anyhow::Error::msg)?,
        ),
        None => None,
    };
    // The questions: a SQuAD file, or the passages the results file carries.
    let (items, source): (Vec<Item>, String) = match (&a.data, &against) {
        (Some(path), _) => {
            let data = Dataset::open(path)?;
            let items = data
                .examples
                .iter()
                .map(|e| {
                    (
                        Some(e.id.clone()),
                        e.question.clone(),
                        e.context.to_string(),
                    )
                })
                .collect();
            (items, path.display().to_string())
        }
        (None, Some(r)) => {
            let mut items = Vec::new();
            for (i, x) in r.results.iter().enumerate() {
                let Some(c) = &x.context else {
                    bail!(
                        "{}: results[{i}] carries no passage (`context`): give the SQuAD file with --data",
                        a.against
                            .as_ref()
                            .map(|p| p.display().to_string())
                            .unwrap_or_default()
                    );
                };
                items.push((x.id.clone(), x.question.clone(), c.clone()));
            }
            let file = a
                .against
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            (items, file)
        }
        (None, None) => {
            bail!("give the questions with --data SQUAD.json (or --against RESULTS.json)")
        }
    };
    let ra = run_device(&a, &items, a.device_a, a.precision)?;
    if let Some(path) = &a.export {
        write_atomic(path, serde_json::to_string(&ra)?.as_bytes())?;
        eprintln!(
            "megaqa: wrote {} results of {} to {}",
            ra.results.len(),
            ra.backend,
            path.display()
        );
    }
    let rb = match (against, &a.device_b) {
        (Some(r), _) => {
            let path = a.against.as_ref().expect("parsed above");
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
        (None, Some(d)) => run_device(&a, &items, *d, a.precision_b.unwrap_or(a.precision))?,
        (None, None) => bail!("give --device-b D or --against RESULTS.json"),
    };
    // B's results by (id, question). A web session has no ids and may ask one question
    // over several passages (or the same one twice), so each key holds its results in
    // order and each of A's takes the first one over the same passage.
    let mut by_key: HashMap<(String, String), Vec<&QuestionResult>> = HashMap::new();
    for r in &rb.results {
        let key = (r.id.clone().unwrap_or_default(), r.question.clone());
        by_key.entry(key).or_default().push(r);
    }
    let (mut max_d, mut same, mut em, mut f1, mut compared) = (0f32, 0usize, 0f64, 0f64, 0usize);
    let mut worst = String::new();
    for x in &ra.results {
        let key = (x.id.clone().unwrap_or_default(), x.question.clone());
        let Some(left) = by_key.get_mut(&key).filter(|l| !l.is_empty()) else {
            continue;
        };
        let Some(at) = left
            .iter()
            .position(|y| y.context_sha256 == x.context_sha256)
        else {
            let name = x.id.clone().unwrap_or_else(|| x.question.clone());
            bail!("question `{name}`: the two runs saw different passages");
        };
        let y = left.remove(at);
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
                    worst = x.id.clone().unwrap_or_else(|| format!("{:?}", x.question));
                }
            }
        }
        same += usize::from(x.answer == y.answer && x.start == y.start && x.end == y.end);
        em += compute_exact(&x.answer, &y.answer);
        f1 += compute_f1(&x.answer, &y.answer);
        compared += 1;
    }
    if compared == 0 {
        bail!("no question of {source} is in both runs");
    }
    let n = compared as f64;
    println!(
        "A: {}   B: {}   questions compared: {compared} of {}",
        ra.backend,
        rb.backend,
        items.len()
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
    if compared < items.len() && a.against.is_some() {
        eprintln!(
            "megaqa: note: the results file covers {compared} of {} questions",
            items.len()
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
