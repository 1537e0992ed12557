//! `megaqa ask`: one question over one passage.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{Result, bail};
use megaqa::text::decode::char_slice;
use serde_json::json;

use crate::args::AskArgs;
use crate::shared::{load_engine, open_device, read_text};

pub fn run(a: AskArgs) -> Result<ExitCode> {
    let context = match (&a.context, &a.context_file) {
        (Some(c), _) => c.clone(),
        (None, Some(f)) => read_text(f)?,
        (None, None) => bail!("give the passage with --context TEXT or --context-file FILE"),
    };
    if context.trim().is_empty() {
        bail!("the passage is empty");
    }
    if a.question.trim().is_empty() {
        bail!("the question is empty");
    }
    let opened = open_device(a.model.device.as_deref())?;
    let mut engine = load_engine(&a.model.model, &opened)?;
    if let Some(t) = a.null_threshold {
        engine.decode.null_threshold = t;
    }
    let answered = engine.ask(&a.question, &context, 8)?;
    let p = &answered.prediction;
    let top: Vec<_> = p.nbest.iter().take(a.top_k).collect();
    let null_prob = p
        .nbest
        .iter()
        .find(|e| e.text.is_empty())
        .map_or(0.0, |e| e.probability);
    if a.json {
        let out = json!({
            "answer": p.text(),
            "start": p.answer.as_ref().map(|x| x.start),
            "end": p.answer.as_ref().map(|x| x.end),
            "probability": p.answer.as_ref().map_or(null_prob, |x| x.probability),
            "null_odds": p.null_odds,
            "sentence": p.answer.as_ref().map_or("", |x| x.sentence.as_str()),
            "nbest": top.iter().map(|e| json!({"text": e.text, "start": e.start, "end": e.end, "probability": e.probability,
                "start_logit": e.start_logit, "end_logit": e.end_logit})).collect::<Vec<_>>(),
            "timings_ms": answered.timings,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    let color = std::io::stdout().is_terminal();
    match &p.answer {
        None => {
            println!(
                "No answer in this passage (null odds {:.3} > threshold {}).",
                p.null_odds, engine.decode.null_threshold
            );
            let b = &p.best_span;
            println!(
                "Best span was {:?} (probability {:.3}).",
                b.text, b.probability
            );
        }
        Some(ans) => {
            println!("Answer: {}", ans.text);
            println!(
                "Probability: {:.3}   null odds: {:.3}",
                ans.probability, p.null_odds
            );
            println!("Sentence: {}", ans.sentence);
            println!();
            println!("{}", excerpt(&context, ans.start, ans.end, color));
        }
    }
    if top.len() > 1 {
        println!();
        println!("Alternatives:");
        for (i, e) in top.iter().enumerate() {
            let text = if e.text.is_empty() {
                "(no answer)"
            } else {
                e.text.as_str()
            };
            println!("{:>3}. {:.3}  {}", i + 1, e.probability, text);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The passage around the answer, with the answer marked (colour on a terminal).
fn excerpt(context: &str, start: usize, end: usize, color: bool) -> String {
    const AROUND: usize = 300;
    let total = context.chars().count();
    let from = start.saturating_sub(AROUND);
    let to = (end + AROUND).min(total);
    let (open, close) = if color {
        ("\x1b[1;30;43m", "\x1b[0m")
    } else {
        ("[[", "]]")
    };
    format!(
        "{}{}{open}{}{close}{}{}",
        if from > 0 { "…" } else { "" },
        char_slice(context, from, start),
        char_slice(context, start, end),
        char_slice(context, end, to),
        if to < total { "…" } else { "" },
    )
}
