//! The answer panel: the answer (or "no answer") highlighted in its passage, where it
//! came from when the documents were searched, the alternatives, the timings, and the
//! session export for `megaqa parity --against`.

use leptos::prelude::*;
use megaqa_text::decode::char_slice;

use crate::app::page;
use crate::bridge;
use crate::protocol::{Request, Shown, Source};

/// The passage with the chosen span marked (or plain, when there is none).
fn passage_view(r: &Shown, chosen: Option<usize>) -> AnyView {
    let current = chosen
        .and_then(|i| r.nbest.get(i).cloned())
        .or(r.answer.clone());
    match current {
        Some(s) => {
            let total = r.passage.chars().count();
            view! {
                <p class="passage" data-testid="passage">
                    {char_slice(&r.passage, 0, s.start)}
                    <mark data-testid="highlight" data-start=s.start data-end=s.end>{char_slice(&r.passage, s.start, s.end)}</mark>
                    {char_slice(&r.passage, s.end, total)}
                </p>
            }
            .into_any()
        }
        None => {
            view! { <p class="passage" data-testid="passage">{r.passage.clone()}</p> }.into_any()
        }
    }
}

fn source_view(src: Source) -> impl IntoView {
    view! {
        <p class="source" data-testid="source" data-document=src.document.clone() data-start=src.start>
            "From " <strong>{src.document.clone()}</strong>
            {format!(" · passage {} of {} read · characters {}–{} of the document · retrieval score {:.2}",
                src.rank + 1, src.read.len(), src.start, src.end, src.score)}
        </p>
    }
}

fn read_view(src: Source) -> impl IntoView {
    view! {
        <details class="read">
            <summary>"Passages read"</summary>
            <ol>
                {src.read.into_iter().map(|(d, score, said)| view! {
                    <li>{format!("{score:.2} · {d}: {}", if said.is_empty() { "no answer".to_string() } else { said })}</li>
                }).collect_view()}
            </ol>
        </details>
    }
}

#[component]
pub fn AnswerPanel() -> impl IntoView {
    let p = page();
    let answer = move |r: Shown| {
        let null_wins = r.answer.is_none();
        let nbest = r.nbest.clone();
        let marked = r.clone();
        view! {
            {match &r.answer {
                Some(a) => view! {
                    <p class="answer" data-testid="answer">
                        <strong>{a.text.clone()}</strong>
                        {format!(" · probability {:.3} · characters {}–{}", a.probability, a.start, a.end)}
                    </p>
                    <p class="sentence">"In: " <q>{r.sentence.clone()}</q></p>
                }.into_any(),
                None => view! {
                    <p class="no-answer" data-testid="no-answer">
                        <strong>"No answer in this passage."</strong>
                        {format!(" Null score {:.3}, null odds {:.3}.", r.null_score, r.null_odds)}
                    </p>
                }.into_any(),
            }}
            {r.source.clone().map(source_view)}
            {move || passage_view(&marked, p.selected.get())}
            <p class="timings" data-testid="timings">
                {format!("{} window(s) · tokenize {:.1} ms · network {:.1} ms · decode {:.1} ms",
                    r.windows, r.tokenize_ms, r.network_ms, r.decode_ms)}
            </p>
            {r.source.clone().map(read_view)}
            <h3>"Alternatives"</h3>
            <Show when=move || null_wins>
                <p class="hint" data-testid="null-wins">{format!(
                    "The null answer wins: its score {:.2} beats the best span's by {:.2}, so the spans share almost none of the probability. Beside each span: its score (start + end logit).",
                    r.null_score, r.null_odds)}</p>
            </Show>
            <ol class="nbest">
                {nbest.into_iter().enumerate().map(|(i, s)| view! {
                    <li>
                        <button class=move || if p.selected.get() == Some(i) { "alt chosen" } else { "alt" }
                            aria-pressed=move || (p.selected.get() == Some(i)).to_string()
                            on:click=move |_| p.selected.set(Some(i))>
                            {if null_wins {
                                format!("score {:.2} · {}", s.score, s.text)
                            } else {
                                format!("{:.3} · {}", s.probability, s.text)
                            }}
                        </button>
                    </li>
                }).collect_view()}
            </ol>
        }
    };
    view! {
        <section class="panel" aria-labelledby="answer-h" aria-live="polite">
            <h2 id="answer-h">"Answer"</h2>
            {move || p.result.get().map(answer)}
            <div class="row">
                <button id="export" on:click=move |_| bridge::send(&Request::Export, &[])
                    disabled=move || p.session.get() == 0>
                    {move || format!("Export session ({} question(s))", p.session.get())}
                </button>
            </div>
            <p class="hint">"The export is a megaqa results file: check it against a native run with "
                <code>"megaqa parity --against megaqa-session.json --model MODEL --device-a wgpu"</code> "."</p>
        </section>
    }
}
