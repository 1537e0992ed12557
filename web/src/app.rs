//! The page: its state (shared by the panels through Leptos context), what it does
//! with the engine's events, and its layout. The engine itself runs in a Web Worker
//! (`bridge`, `host`): this thread renders and posts requests, nothing more.

use leptos::prelude::*;

use crate::answer_panel::AnswerPanel;
use crate::ask_panel::AskPanel;
use crate::bridge;
use crate::model_panel::ModelPanel;
use crate::protocol::{Cached, Event, Load, LoadFrom, ModelInfo, Request, Shown};

/// The model the page loads unless `?model=URL` says otherwise: all-MiniLM-L6-v2
/// fine-tuned on SQuAD by `megaqa train` (scripts/train-squad-model.sh).
pub const DEFAULT_URL: &str = "./models/minilm-l6-squad.megaqa.safetensors";
/// What the page says about the default model (the README's model card, short).
pub const DEFAULT_CARD: &str = include_str!("../../assets/models/minilm-l6-squad.card.txt");
/// The 20-question demo network (scripts/make-demo-model.sh), for tests.
pub const DEMO_URL: &str = "./models/demo-tiny.megaqa.safetensors";
/// The passage and question the page starts with (and compiles its kernels on): text
/// written for megaqa, so the shipped model never saw it.
const DEMO_PASSAGE: &str = include_str!("../../assets/demo/unseen-passage.txt");
const DEMO_QUESTION: &str = "Who designed the Larkspur Bridge?";

/// Everything the page shows, as signals; the panels take it from context.
#[derive(Clone, Copy)]
pub struct Page {
    pub backend: RwSignal<String>,
    pub backend_note: RwSignal<Option<String>>,
    pub f16: RwSignal<bool>,
    pub model: RwSignal<Option<ModelInfo>>,
    pub progress: RwSignal<Option<(u64, Option<u64>)>>,
    pub status: RwSignal<String>,
    pub error: RwSignal<Option<String>>,
    pub stored: RwSignal<Vec<Cached>>,
    pub url: RwSignal<String>,
    pub passage: RwSignal<String>,
    pub question: RwSignal<String>,
    pub result: RwSignal<Option<Shown>>,
    /// The alternative chosen in the answer panel, if any.
    pub selected: RwSignal<Option<usize>>,
    pub busy: RwSignal<bool>,
    /// Questions answered in this session (what the export holds).
    pub session: RwSignal<usize>,
    /// The indexed documents ("3 file(s), …"), and whether questions search them.
    pub docs: RwSignal<Option<String>>,
    pub use_docs: RwSignal<bool>,
    /// None while the GPU compiles the model's kernels; then what the page says.
    pub ready: RwSignal<Option<String>>,
    /// What a new worker loads first, when it replaces one ([`Event::Restart`]).
    restart: StoredValue<Option<(Load, Option<Cached>)>>,
    /// The files of the last load from files: a new worker needs them again.
    files: StoredValue<Vec<web_sys::File>, LocalStorage>,
}

/// The page's state, for a panel.
pub fn page() -> Page {
    expect_context::<Page>()
}

impl Page {
    fn new() -> Self {
        Self {
            backend: RwSignal::new("starting…".into()),
            backend_note: RwSignal::new(None),
            f16: RwSignal::new(false),
            model: RwSignal::new(None),
            progress: RwSignal::new(None),
            status: RwSignal::new(String::new()),
            error: RwSignal::new(None),
            stored: RwSignal::new(vec![]),
            url: RwSignal::new(start_url()),
            passage: RwSignal::new(DEMO_PASSAGE.trim().into()),
            question: RwSignal::new(DEMO_QUESTION.into()),
            result: RwSignal::new(None),
            selected: RwSignal::new(None),
            busy: RwSignal::new(false),
            session: RwSignal::new(0),
            docs: RwSignal::new(None),
            use_docs: RwSignal::new(false),
            ready: RwSignal::new(None),
            restart: StoredValue::new(None),
            files: StoredValue::new_local(vec![]),
        }
    }

    /// What the page does with an event from the engine.
    fn on(&self, event: Event) {
        match event {
            // The worker listens: open the backend and load the first model (or, in a
            // worker that replaces one, the model it was replaced for).
            Event::Started => {
                let (model, fallback) = self
                    .restart
                    .try_update_value(Option::take)
                    .flatten()
                    .unwrap_or_else(|| (self.request(LoadFrom::Url(start_url())), None));
                let files = match model.from {
                    LoadFrom::Files => self.files.get_value(),
                    _ => vec![],
                };
                bridge::send(
                    &Request::Start {
                        force_cpu: query("backend").as_deref() == Some("cpu"),
                        bucket: query("bucket").and_then(|v| v.parse().ok()),
                        f16: match query("precision").as_deref() {
                            Some("f16") => Some(true),
                            Some("f32") => Some(false),
                            _ => None,
                        },
                        model,
                        fallback,
                        new_worker_over: query_mib("new_worker_mb"),
                        stream_over: query_mib("stream_mb"),
                    },
                    &files,
                );
            }
            // A new worker gives the old one's memory back; its session goes with it.
            Event::Restart { load, fallback } => {
                self.restart.set_value(Some((load, fallback)));
                self.session.set(0);
                self.model.set(None);
                self.result.set(None);
                self.status
                    .set("starting a new engine, to give the last model's memory back…".into());
                if let Err(e) = bridge::restart() {
                    self.busy.set(false);
                    self.error.set(Some(e));
                }
            }
            Event::Backend { label, f16, note } => {
                self.backend.set(label);
                self.f16.set(f16);
                self.backend_note.set(note);
            }
            Event::Note(note) => self.backend_note.set(Some(note)),
            Event::Status(s) => self.status.set(s),
            Event::Progress(p) => self.progress.set(p),
            Event::Busy(b) => self.busy.set(b),
            Event::Model(m) => {
                // Its note (if any) shows in the model panel.
                self.status.set(String::new());
                self.model.set(Some(m));
            }
            Event::Ready(r) => self.ready.set(r),
            Event::Error(e) => {
                // An error ends what the status said was going on ("downloading…").
                if e.is_some() {
                    self.status.set(String::new());
                }
                self.error.set(e);
            }
            Event::Stored(list) => self.stored.set(list),
            Event::Documents(summary) => {
                self.use_docs.set(summary.is_some());
                self.docs.set(summary);
            }
            Event::Answer { shown, session } => {
                self.selected.set(None);
                self.result.set(Some(shown));
                self.session.set(session);
            }
            Event::Export(text) => {
                if let Err(e) = crate::download::save("megaqa-session.json", &text) {
                    self.error.set(Some(e));
                }
            }
        }
    }

    /// A load request: the boxes' question and passage are what GPU kernels compile on.
    fn request(&self, from: LoadFrom) -> Load {
        Load {
            from,
            question: self.question.get_untracked(),
            passage: self.passage.get_untracked(),
        }
    }

    /// Loads a model from a URL, browser storage, or `files`.
    pub fn load(&self, from: LoadFrom, files: &[web_sys::File]) {
        self.busy.set(true);
        self.error.set(None);
        if matches!(from, LoadFrom::Files) {
            self.files.set_value(files.to_vec());
        }
        bridge::send(&Request::Load(self.request(from)), files);
    }

    /// Asks the question in the box, of the passage or the documents.
    pub fn ask(&self) {
        self.busy.set(true);
        bridge::send(
            &Request::Ask {
                question: self.question.get_untracked(),
                passage: self.passage.get_untracked(),
                documents: self.use_docs.get_untracked(),
            },
            &[],
        );
    }
}

/// Sizes in decimal units, as the CLI prints them (1 MB = 10^6 bytes).
pub fn human_bytes(n: u64) -> String {
    if n >= 1_000_000 {
        format!("{:.1} MB", n as f64 / 1e6)
    } else {
        format!("{:.1} kB", n as f64 / 1e3)
    }
}

/// Reloads the page with `key=value` in its query string (the rest kept).
pub fn reload_with(key: &str, value: &str) {
    let Some(location) = web_sys::window().map(|w| w.location()) else {
        return;
    };
    let search = location.search().unwrap_or_default();
    let mut pairs: Vec<String> = search
        .trim_start_matches('?')
        .split('&')
        .filter(|kv| !kv.is_empty() && kv.split('=').next() != Some(key))
        .map(String::from)
        .collect();
    pairs.push(format!("{key}={value}"));
    let _ = location.set_search(&pairs.join("&"));
}

/// The value of `key` in the page's query string (`?backend=cpu&bucket=32`).
fn query(key: &str) -> Option<String> {
    let search = web_sys::window()?.location().search().ok()?;
    search
        .trim_start_matches('?')
        .split('&')
        .find_map(|kv| Some(kv.strip_prefix(key)?.strip_prefix('=')?.to_string()))
}

/// A size the page's URL gives in MiB (`?key=N`), in bytes.
fn query_mib(key: &str) -> Option<u64> {
    query(key)?.parse::<u64>().ok().map(|mb| mb << 20)
}

/// The model to load first: the page's `?model=URL`, else the shipped model.
fn start_url() -> String {
    query("model").unwrap_or_else(|| DEFAULT_URL.to_string())
}

/// Whether `origin` (a URL, or a file name from browser storage) is the file at `url`.
pub fn names(origin: &str, url: &str) -> bool {
    url.rsplit('/').next().is_some_and(|f| origin.ends_with(f))
}

#[component]
pub fn App() -> impl IntoView {
    let page = Page::new();
    provide_context(page);
    if let Err(e) = bridge::start(move |event| page.on(event)) {
        page.error.set(Some(e));
    }
    view! {
        <header>
            <h1>"megaqa"</h1>
            <p class="tagline">"Extractive question answering in your browser: no server, offline after the first load."</p>
        </header>
        <main>
            <ModelPanel />
            <AskPanel />
            <AnswerPanel />
        </main>
        <footer>
            <p>"The starting passage was written for megaqa; the model was trained on SQuAD (CC BY-SA 4.0). megaqa runs the same Rust engine natively and here."</p>
        </footer>
    }
}
