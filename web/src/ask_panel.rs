//! The ask panel: the passage (typed or from a text file) or the user's documents,
//! the question, and what the engine says while it works.

use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;

use crate::app::page;
use crate::bridge;
use crate::protocol::{PASSAGES, Request};

/// The files chosen in a file input.
fn chosen(ev: &leptos::ev::Event) -> Vec<web_sys::File> {
    let list = ev
        .target()
        .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
        .and_then(|i| i.files());
    list.map_or(vec![], |l| {
        (0..l.length()).filter_map(|i| l.get(i)).collect()
    })
}

#[component]
pub fn AskPanel() -> impl IntoView {
    let p = page();
    // A passage file is small text: read here, into the box.
    let on_passage_file = move |ev: leptos::ev::Event| {
        let Some(file) = chosen(&ev).into_iter().next() else {
            return;
        };
        spawn_local(async move {
            let read = wasm_bindgen_futures::JsFuture::from(file.array_buffer()).await;
            let bytes = read.map(|b| js_sys::Uint8Array::new(&b).to_vec());
            match bytes.map(String::from_utf8) {
                Ok(Ok(t)) => p.passage.set(t),
                Ok(Err(_)) => p
                    .error
                    .set(Some(format!("{}: not UTF-8 text", file.name()))),
                Err(e) => p
                    .error
                    .set(Some(format!("{}: cannot read: {e:?}", file.name()))),
            }
        });
    };
    // Documents are indexed (and kept) by the engine, beside the model.
    let on_docs = move |ev: leptos::ev::Event| {
        let files = chosen(&ev);
        if !files.is_empty() {
            p.error.set(None);
            bridge::send(&Request::Documents, &files);
        }
    };
    let forget_docs = move |_| {
        p.docs.set(None);
        p.use_docs.set(false);
        bridge::send(&Request::ForgetDocuments, &[]);
    };
    view! {
        <section class="panel" aria-labelledby="ask-h">
            <h2 id="ask-h">"Ask"</h2>
            <label for="passage">"Passage"</label>
            <textarea id="passage" rows="8" prop:value=move || p.passage.get()
                on:input=move |ev| p.passage.set(event_target_value(&ev))></textarea>
            <div class="row">
                <label for="passage-file">"Open a .txt file"</label>
                <input id="passage-file" type="file" accept=".txt,text/plain" on:change=on_passage_file />
            </div>
            <div class="row">
                <label for="docs">"Or ask your documents"</label>
                <input id="docs" type="file" multiple accept=".txt,.md,.json,text/plain,text/markdown"
                    on:change=on_docs />
            </div>
            <Show when=move || p.docs.get().is_some()>
                <p class="docs" data-testid="docs">
                    <label>
                        <input id="use-docs" type="checkbox" prop:checked=move || p.use_docs.get()
                            on:change=move |ev| p.use_docs.set(event_target_checked(&ev)) />
                        {move || format!(" Search my documents first ({}; the best {PASSAGES} passages are read)",
                            p.docs.get().unwrap_or_default())}
                    </label>
                    " " <button on:click=forget_docs>"Forget documents"</button>
                </p>
            </Show>
            <label for="question">"Question (Enter asks)"</label>
            <div class="row">
                <input id="question" type="text" prop:value=move || p.question.get()
                    on:input=move |ev| p.question.set(event_target_value(&ev))
                    on:keydown=move |ev: leptos::ev::KeyboardEvent| if ev.key() == "Enter" { p.ask() } />
                <button id="ask" on:click=move |_| p.ask()
                    disabled=move || p.busy.get() || p.model.get().is_none()>"Ask"</button>
            </div>
            <Show when=move || p.error.get().is_some()>
                <p class="error" role="alert" data-testid="error">{move || p.error.get().unwrap_or_default()}</p>
            </Show>
            <p class="status" aria-live="polite">{move || if p.busy.get() { "working…".to_string() } else { p.status.get() }}</p>
        </section>
    }
}
