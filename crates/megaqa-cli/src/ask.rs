//! `megaqa ask`: one question over one passage.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Result, bail};
use megaqa::text::best_passage;
use megaqa::text::decode::char_slice;
use serde_json::json;

use crate::args::AskArgs;
use crate::docs;
use crate::shared::{batch_size, load_engine, open_device, read_text};

pub fn run(a: AskArgs) -> Result<ExitCode> {
    if a.question.trim().is_empty() {
        bail!("the question is empty");
    }
    if !a.docs.is_empty() || a.index.is_some() {
        return ask_collection(a);
    }
    let context = match (&a.context, &a.context_file) {
        (Some(c), _) => c.clone(),
        (None, Some(f)) => read_text(f)?,
        (None, None) => bail!("give the passage with --context TEXT or --context-file FILE"),
    };
    if context.trim().is_empty() {
        bail!("the passage is empty");
    }
    let opened = open_device(a.model.device)?;
    let engine = load_engine(&a.model.model, &opened, a.model.defaults, a.model.precision)?;
    let answered = engine.ask(&a.question, &context, batch_size(None, &opened))?;
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

/// One question over documents: BM25 picks `--passages` passages, the reader reads them,
/// and the passage whose answer beats its null score by most answers.
fn ask_collection(a: AskArgs) -> Result<ExitCode> {
    if a.passages == 0 {
        bail!("--passages must be at least 1");
    }
    let t_open = Instant::now();
    let library = docs::open(&a.docs, a.index.as_deref())?;
    let open_ms = t_open.elapsed().as_secs_f64() * 1e3;
    let opened = open_device(a.model.device)?;
    let engine = load_engine(&a.model.model, &opened, a.model.defaults, a.model.precision)?;
    let t0 = Instant::now();
    let hits = library.search(&a.question, a.passages)?;
    let retrieve_ms = t0.elapsed().as_secs_f64() * 1e3;
    if hits.is_empty() {
        // Nothing to read is an answer too ("no answer"), not a failure.
        let why = "no passage of the documents shares a word with the question";
        if a.json {
            let out = json!({"answer": "", "document": null, "start": null, "end": null,
                "probability": null, "null_odds": null, "passage": null, "retrieval_score": null,
                "sentence": "", "passages": [], "note": why});
            println!("{}", serde_json::to_string_pretty(&out)?);
        } else {
            println!("No answer: {why}.");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let texts: Vec<&str> = hits
        .iter()
        .map(|h| library.text(&library.passages()[h.passage]))
        .collect();
    let items: Vec<(&str, &str)> = texts.iter().map(|t| (a.question.as_str(), *t)).collect();
    // The passages are one window each, mostly: they run in the device's batches, as
    // `predict`'s questions do.
    let read = engine.answer_many(&items, batch_size(None, &opened))?;
    let best = best_passage(read.iter().map(|r| &r.prediction)).expect("at least one passage");
    let document = |rank: usize| {
        let p = library.passages()[hits[rank].passage];
        (&library.documents[p.doc as usize], p)
    };
    let (doc, passage) = document(best);
    let p = &read[best].prediction;
    // Character spans in the document, not in the passage.
    let shift = passage.start as usize;
    let timings = json!({
        "open_documents_ms": open_ms,
        "retrieve_ms": retrieve_ms,
        "tokenize_ms": read.iter().map(|r| r.timings.tokenize_ms).sum::<f64>(),
        "network_ms": read.iter().map(|r| r.timings.network_ms).sum::<f64>(),
        "decode_ms": read.iter().map(|r| r.timings.decode_ms).sum::<f64>(),
    });
    if a.json {
        let passages: Vec<_> = hits
            .iter()
            .zip(&read)
            .zip(&texts)
            .enumerate()
            .map(|(rank, ((h, r), text))| {
                let (d, ps) = document(rank);
                json!({
                    "document": d.name, "start": ps.start, "end": ps.end, "score": h.score,
                    "text": text, "answer": r.prediction.text(), "null_odds": r.prediction.null_odds,
                })
            })
            .collect();
        let out = json!({
            "answer": p.text(),
            "document": p.answer.as_ref().map(|_| &doc.name),
            "start": p.answer.as_ref().map(|x| x.start + shift),
            "end": p.answer.as_ref().map(|x| x.end + shift),
            "probability": p.answer.as_ref().map(|x| x.probability),
            "null_odds": p.null_odds,
            "passage": p.answer.as_ref().map(|_| best),
            "retrieval_score": hits[best].score,
            "sentence": p.answer.as_ref().map_or("", |x| x.sentence.as_str()),
            "passages": passages,
            "timings_ms": timings,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    let color = std::io::stdout().is_terminal();
    match &p.answer {
        None => println!(
            "No answer in the {} passage(s) read: none beats its null score (threshold {}).",
            hits.len(),
            engine.decode.null_threshold
        ),
        Some(ans) => {
            println!("Answer: {}", ans.text);
            println!(
                "Document: {}, characters {}-{} (passage {} of {} read, retrieval score {:.2})",
                doc.name,
                ans.start + shift,
                ans.end + shift,
                best + 1,
                hits.len(),
                hits[best].score
            );
            println!(
                "Probability: {:.3}   null odds: {:.3}",
                ans.probability, p.null_odds
            );
            println!();
            println!("{}", excerpt(texts[best], ans.start, ans.end, color));
        }
    }
    println!();
    println!("Passages read (retrieval score, document, characters: the reader's answer):");
    for (rank, (h, r)) in hits.iter().zip(&read).enumerate() {
        let (d, ps) = document(rank);
        let said = match &r.prediction.answer {
            Some(x) => format!("{:?}", x.text),
            None => format!("no answer (best span {:?})", r.prediction.best_span.text),
        };
        println!(
            "{:>3}. {:>6.2}  {} {}-{}: {said}",
            rank + 1,
            h.score,
            d.name,
            ps.start,
            ps.end
        );
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
