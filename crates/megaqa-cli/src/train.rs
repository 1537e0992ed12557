//! `megaqa train`: fine-tuning with a progress bar, metrics.jsonl, checkpoints and
//! a loss curve in the output directory.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use indicatif::{ProgressBar, ProgressStyle};
use megaqa::model::Checkpoint;
use megaqa::text::Dataset;
use megaqa::train::{Event, TrainConfig, Trainer, optim::AdamWConfig, plot, state};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::args::TrainArgs;
use crate::shared::{open_device, peak_rss_mb, write_atomic};

const METRICS: &str = "metrics.jsonl";

fn config_of(a: &TrainArgs) -> Result<TrainConfig> {
    Ok(TrainConfig {
        epochs: a.epochs,
        batch_size: a.batch_size,
        grad_accum: a.grad_accum,
        lr: a.lr,
        warmup_ratio: a.warmup_ratio,
        adamw: AdamWConfig {
            weight_decay: a.weight_decay,
            ..AdamWConfig::default()
        },
        max_grad_norm: a.max_grad_norm,
        max_steps: a.max_steps,
        max_seq_len: a.max_seq_len,
        doc_stride: a.doc_stride,
        precision: a.precision,
        dropout: a.dropout,
        seed: a.seed,
        save_every: a.save_every,
        log_every: a.log_every,
        negatives: a.negatives,
        swap_negatives: a.swap_negatives,
        holdout_articles: a.holdout_articles,
        group_by_length: a.group_by_length,
    })
}

/// Reads and checks a SQuAD file for training: its errors come before any work.
fn read_data(path: &Path, spans: bool) -> Result<(Dataset, String)> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let digest = format!("{:x}", Sha256::digest(&bytes));
    let data = Dataset::from_bytes(&path.display().to_string(), &bytes)?;
    if data.examples.is_empty() {
        bail!("{}: holds no questions", path.display());
    }
    if spans {
        data.check_answer_spans()?;
        if data.examples.iter().all(|e| e.is_impossible()) {
            bail!(
                "{}: none of its {} questions has an answer: there are no spans to learn from",
                path.display(),
                data.examples.len()
            );
        }
    }
    Ok((data, digest))
}

/// Keeps the metric lines up to `step` (a resumed run redoes what came after).
fn truncate_metrics(path: &Path, step: u64) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let kept: String = text
        .lines()
        .filter(|l| {
            serde_json::from_str::<Value>(l)
                .ok()
                .and_then(|v| v.get("step").and_then(Value::as_u64))
                .is_some_and(|s| s <= step)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    write_atomic(path, kept.as_bytes())
}

/// (step, loss) of every logged step in metrics.jsonl.
fn loss_points(path: &Path) -> Vec<(u64, f64)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| Some((v.get("step")?.as_u64()?, v.get("loss")?.as_f64()?)))
        .collect()
}

pub fn run(a: TrainArgs) -> Result<ExitCode> {
    let (train, digest) = read_data(&a.train, true)?;
    let eval = match &a.eval {
        Some(p) => Some(read_data(p, false)?.0),
        None => None,
    };
    let opened = open_device(a.device)?;
    let saved = state::saved_step(&a.out).map_err(anyhow::Error::msg)?;
    let mut trainer = match (a.resume, saved) {
        (true, Some(step)) => {
            eprintln!(
                "megaqa: resuming {} from step {step} with its saved settings",
                a.out.display()
            );
            truncate_metrics(&a.out.join(METRICS), step)?;
            Trainer::resume(&a.out, opened.device.clone(), &train, digest)
        }
        (false, Some(step)) => bail!(
            "{}: already holds a training run (step {step}): pass --resume to continue it, or choose another --out",
            a.out.display()
        ),
        (resume, None) => {
            if resume {
                eprintln!(
                    "megaqa: {} holds no checkpoint yet; starting from {}",
                    a.out.display(),
                    a.model.display()
                );
            }
            if !a.model.exists() {
                bail!("{}: no such file or directory", a.model.display());
            }
            let config = config_of(&a)?;
            let ckpt = Checkpoint::open(&a.model)?;
            if !ckpt.has_qa_head() {
                eprintln!(
                    "megaqa: {} has no QA head; a new one is initialised at random (N(0, 0.02))",
                    a.model.display()
                );
            }
            // Built (data checked, windows made) before anything is written.
            let trainer =
                Trainer::new(ckpt, opened.device.clone(), config, &train, digest, &a.out);
            if trainer.is_ok() && a.export.is_none() {
                std::fs::create_dir_all(&a.out)
                    .with_context(|| format!("{}: cannot create", a.out.display()))?;
                let _ = std::fs::remove_file(a.out.join(METRICS));
            }
            trainer
        }
    }
    .map_err(anyhow::Error::msg)?;

    let total = trainer.total_steps();
    if let Some(path) = &a.export {
        trainer.export(path).map_err(anyhow::Error::msg)?;
        eprintln!(
            "megaqa: wrote {} windows and {total} updates of {}x{} windows to {}; nothing trained",
            trainer.features.len(),
            trainer.config.batch_size,
            trainer.config.grad_accum,
            path.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "megaqa: {} questions -> {} windows; {} updates of {}x{} windows ({} per epoch), precision {:?}, on {}",
        train.examples.len(),
        trainer.features.len(),
        total,
        trainer.config.batch_size,
        trainer.config.grad_accum,
        trainer.steps_per_epoch(),
        trainer.config.precision,
        opened.name
    );
    let metrics_path = a.out.join(METRICS);
    let mut metrics = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&metrics_path)
        .with_context(|| format!("{}: cannot open", metrics_path.display()))?;
    let bar = ProgressBar::new(total);
    bar.set_position(trainer.step);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {msg}  ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    // A test hook that simulates a crash right after a given update.
    let abort_after: Option<u64> = std::env::var("MEGAQA_TEST_ABORT_AFTER_STEP")
        .ok()
        .and_then(|s| s.parse().ok());
    // `bar.println` prints nothing when stderr is not a terminal (logs, CI): notes
    // go out through `suspend`, which prints either way.
    let note = |text: String| bar.suspend(|| eprintln!("{text}"));
    let mut eval_secs = 0.0;
    let mut on = |event: &Event| -> Result<(), String> {
        let line = match event {
            Event::Step {
                step,
                loss,
                lr,
                windows_per_s,
                grad_norm,
                loss_scale,
            } => {
                bar.set_position(*step);
                bar.set_message(format!(
                    "loss {loss:.4}  lr {lr:.2e}  {windows_per_s:.1} windows/s"
                ));
                Some(
                    json!({"step": step, "loss": loss, "lr": lr, "windows_per_s": windows_per_s,
                            "grad_norm": grad_norm, "loss_scale": loss_scale}),
                )
            }
            Event::Overflow { step, loss_scale } => {
                note(format!(
                    "megaqa: step {step}: f16 gradients overflowed; update skipped, loss scale now {loss_scale}"
                ));
                None
            }
            Event::Eval {
                set,
                epoch,
                step,
                seconds,
                scores,
            } => {
                eval_secs += seconds;
                let mut v = json!({"set": set, "epoch": epoch, "step": step});
                if let Value::Object(m) = &mut v {
                    m.extend(scores.clone());
                }
                let get = |k: &str| scores.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN);
                note(if *set == "holdout" {
                    format!(
                        "megaqa: epoch {epoch:.2}: null threshold {:.3} chosen on the held-out articles (f1 {:.2} there), stored in the model",
                        get("best_null_threshold"),
                        get("f1_at_best_null_threshold"),
                    )
                } else {
                    format!(
                        "megaqa: epoch {epoch:.2}: exact {:.2}, f1 {:.2}; best --null-threshold on this data {:.3} (f1 {:.2})",
                        get("exact"),
                        get("f1"),
                        get("best_null_threshold"),
                        get("f1_at_best_null_threshold"),
                    )
                });
                Some(v)
            }
            Event::Saved { .. } => None,
        };
        if let Some(v) = line {
            writeln!(metrics, "{v}")
                .and_then(|_| metrics.flush())
                .map_err(|e| format!("{}: {e}", metrics_path.display()))?;
        }
        if let (Event::Step { step, .. }, Some(n)) = (event, abort_after)
            && *step == n
        {
            std::process::abort();
        }
        Ok(())
    };
    let started = std::time::Instant::now();
    let first = trainer.step;
    trainer
        .run(eval.as_ref(), &mut on)
        .map_err(|e| anyhow!(e))?;
    bar.finish_and_clear();
    let points = loss_points(&metrics_path);
    let svg_path = a.out.join("loss.svg");
    write_atomic(
        &svg_path,
        plot::loss_svg(&points, &format!("megaqa train: {}", a.train.display())).as_bytes(),
    )?;
    let secs = started.elapsed().as_secs_f64();
    let training = (secs - eval_secs).max(1e-9);
    let done = trainer.step - first;
    eprintln!(
        "megaqa: {done} updates in {training:.1} s ({:.2} windows/s) + {eval_secs:.1} s evaluating; peak memory {:.0} MB; model in {out} (use --model {out}); loss curve {}",
        trainer.features.len() as f64 * done as f64 / trainer.steps_per_epoch() as f64 / training,
        peak_rss_mb(),
        svg_path.display(),
        out = a.out.display(),
    );
    Ok(ExitCode::SUCCESS)
}
