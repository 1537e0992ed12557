//! The model panel: the backend, the loaded model (with the shipped model's card),
//! download progress, loading by URL or files, and the models kept in the browser.

use leptos::prelude::*;
use wasm_bindgen::JsCast;

use crate::app::{DEFAULT_CARD, DEFAULT_URL, DEMO_URL, human_bytes, names, page, reload_with};
use crate::bridge;
use crate::protocol::{Cached, LoadFrom, Request};

#[component]
pub fn ModelPanel() -> impl IntoView {
    let p = page();
    let on_files = move |ev: leptos::ev::Event| {
        let Some(list) = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
            .and_then(|i| i.files())
        else {
            return;
        };
        let files: Vec<web_sys::File> = (0..list.length()).filter_map(|i| list.get(i)).collect();
        if !files.is_empty() {
            p.load(LoadFrom::Files, &files);
        }
    };
    view! {
        <section class="panel" aria-labelledby="model-h">
            <h2 id="model-h">"Model"</h2>
            <p id="backend" data-testid="backend">
                "Backend: " <strong>{move || p.backend.get()}</strong>
                {move || if p.f16.get() { " · f16 available" } else { " · no f16" }}
            </p>
            <Show when=move || p.backend_note.get().is_some()>
                <p class="note">{move || p.backend_note.get().unwrap_or_default()}</p>
            </Show>
            {move || p.model.get().map(|m| {
                let demo = names(&m.name, DEMO_URL);
                let card = names(&m.name, DEFAULT_URL).then_some(DEFAULT_CARD);
                view! {
                    <dl class="model" data-testid="model">
                        <dt>"Loaded"</dt><dd>{m.name.clone()}</dd>
                        <dt>"Size"</dt><dd>{human_bytes(m.bytes)}</dd>
                        <dt>"sha256"</dt><dd class="hash">{m.sha256.clone()}</dd>
                        <dt>"Network"</dt><dd>{m.shape.clone()}</dd>
                        <dt>"Computes in"</dt><dd data-testid="compute">{m.compute.clone()}</dd>
                        <dt>"Ready"</dt>
                        <dd>{move || match p.ready.get() {
                            Some(r) => view! { <span data-testid="ready">{r}</span> }.into_any(),
                            None => view! { <span>"compiling GPU kernels for this model (once)…"</span> }.into_any(),
                        }}</dd>
                    </dl>
                    {m.note.clone().map(|n| view! { <p class="note" data-testid="model-note">{n}</p> })}
                    {card.map(|card| view! { <p class="card" data-testid="card">{card}</p> })}
                    <Show when=move || demo>
                        <p class="warning" role="note">
                            "This demo model is tiny (2 layers × 32) and was trained by megaqa on only 20 SQuAD questions about this passage and the next: it knows those answers and nothing else. It is for tests. For real answers, open the page without "
                            <code>"?model="</code> " (megaqa's SQuAD model) or load a SQuAD-trained checkpoint (for example NVIDIA's Megatron-BERT 345M QA .nemo, or one converted with "
                            <code>"megaqa convert"</code> ") below."
                        </p>
                    </Show>
                }
            })}
            {move || p.progress.get().map(|(n, t)| view! {
                <label class="progress">
                    {format!("{} of {}", human_bytes(n), t.map_or("?".into(), human_bytes))}
                    <progress max=t.unwrap_or(0).max(n) value=n></progress>
                </label>
            })}
            <p class="row">
                <label>
                    <input id="f16" type="checkbox" disabled=move || !p.f16.get()
                        prop:checked=move || p.model.get().is_some_and(|m| m.compute == "f16")
                        on:change=move |ev| reload_with("precision", if event_target_checked(&ev) { "f16" } else { "f32" }) />
                    " Compute in f16 on WebGPU (half the memory; needs the adapter's shader-f16; reloads the page)"
                </label>
            </p>
            <div class="row">
                <label for="model-url">"Model URL"</label>
                <input id="model-url" type="url" prop:value=move || p.url.get()
                    on:input=move |ev| p.url.set(event_target_value(&ev)) />
                <button on:click=move |_| p.load(LoadFrom::Url(p.url.get_untracked()), &[])
                    disabled=move || p.busy.get()>"Load"</button>
            </div>
            <div class="row">
                <label for="model-files">"Or files"</label>
                <input id="model-files" type="file" multiple
                    accept=".nemo,.safetensors,.json,.txt,.bin"
                    on:change=on_files />
            </div>
            <p class="hint">"A .nemo archive, a file from " <code>"megaqa convert"</code>
                ", or a Hugging Face set (config.json + model.safetensors + vocab.txt)."</p>
            <details>
                <summary>{move || format!("Stored in this browser ({})", p.stored.get().len())}</summary>
                <ul class="cached" data-testid="cached">
                    <For each=move || p.stored.get() key=|c| c.key.clone() children=move |c: Cached| {
                        let key = c.key.clone();
                        let label = format!("Delete {}", c.name);
                        let summary = format!("{} · {} · ", c.name, human_bytes(c.bytes));
                        let short: String = c.sha256.chars().take(12).collect();
                        view! {
                            <li>
                                <span>{summary}<span class="hash">{short}</span></span>
                                <button on:click=move |_| p.load(LoadFrom::Stored(c.clone()), &[])>"Use"</button>
                                <button on:click=move |_| bridge::send(&Request::Delete(key.clone()), &[])
                                    aria-label=label>"Delete"</button>
                            </li>
                        }
                    } />
                </ul>
            </details>
        </section>
    }
}
