//! The page: model panel (load from URL or files, cached models), passage and
//! question (or the user's documents, searched first), the answer highlighted in its
//! passage with its n-best list, timings, and the session export for
//! `megaqa parity --against`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use burn::tensor::DType;
use leptos::prelude::*;
use leptos::task::spawn_local;
use megaqa::model::Checkpoint;
use megaqa::text::best_passage;
use megaqa::text::decode::char_slice;
use megaqa::{Answered, Engine, QuestionResult, ResultsFile, Shapes};
use megaqa_retrieve::Library;
use wasm_bindgen::JsCast;

use crate::compute::{self, Compute};
use crate::documents;
use crate::store::{self, Cached};

/// The model the page loads unless `?model=URL` says otherwise: all-MiniLM-L6-v2
/// fine-tuned on SQuAD by `megaqa train` (scripts/train-squad-model.sh).
pub const DEFAULT_URL: &str = "./models/minilm-l6-squad.megaqa.safetensors";
/// What the page says about the default model (the README's model card, short).
const DEFAULT_CARD: &str = include_str!("../../assets/models/minilm-l6-squad.card.txt");
/// The 20-question demo network (scripts/make-demo-model.sh), for tests.
pub const DEMO_URL: &str = "./models/demo-tiny.megaqa.safetensors";
/// The passage and question the page starts with (and compiles its kernels on): text
/// written for megaqa, so the shipped model never saw it.
const DEMO_PASSAGE: &str = include_str!("../../assets/demo/unseen-passage.txt");
const DEMO_QUESTION: &str = "Who designed the Larkspur Bridge?";
/// Windows per network call.
const BATCH: usize = 8;

thread_local! {
    static ENGINE: RefCell<Option<Rc<Engine>>> = const { RefCell::new(None) };
    static COMPUTE: RefCell<Option<Compute>> = const { RefCell::new(None) };
    static SESSION: RefCell<Vec<QuestionResult>> = const { RefCell::new(Vec::new()) };
    static LIBRARY: RefCell<Option<Rc<Library>>> = const { RefCell::new(None) };
}

/// What the page shows about the loaded model.
#[derive(Debug, Clone, PartialEq)]
struct ModelInfo {
    name: String,
    bytes: u64,
    sha256: String,
    /// The engine's fingerprint (what results files carry).
    model_sha256: String,
    shape: String,
    demo: bool,
    /// The model card, for the model the page ships.
    card: Option<&'static str>,
}

/// One span the page can highlight.
#[derive(Debug, Clone, PartialEq)]
struct Span {
    text: String,
    start: usize,
    end: usize,
    probability: f64,
    /// Start + end logit: what the null score is compared with.
    score: f64,
}

/// What the page shows about one answered question.
#[derive(Debug, Clone, PartialEq)]
struct Shown {
    passage: String,
    /// The answer, or None for "no answer in this passage".
    answer: Option<Span>,
    sentence: String,
    null_score: f64,
    null_odds: f64,
    /// Alternatives (non-empty spans) from the n-best list.
    nbest: Vec<Span>,
    windows: usize,
    tokenize_ms: f64,
    network_ms: f64,
    decode_ms: f64,
    /// Where the passage came from, when the question searched the documents.
    source: Option<Source>,
}

/// The document and passage an answer was read from, and the others read.
#[derive(Debug, Clone, PartialEq)]
struct Source {
    document: String,
    /// Characters of the passage in its document.
    start: usize,
    end: usize,
    rank: usize,
    score: f32,
    /// Every passage read: (document, retrieval score, its answer or "").
    read: Vec<(String, f32, String)>,
}

fn shown(passage: &str, a: &Answered) -> Shown {
    let p = &a.prediction;
    let span = |text: &str, start, end, probability, score| Span {
        text: text.into(),
        start,
        end,
        probability,
        score,
    };
    let best_score = p.null_score - p.null_odds;
    Shown {
        passage: passage.into(),
        answer: p
            .answer
            .as_ref()
            .map(|x| span(&x.text, x.start, x.end, x.probability, best_score)),
        sentence: p
            .answer
            .as_ref()
            .map_or(String::new(), |x| x.sentence.clone()),
        null_score: p.null_score,
        null_odds: p.null_odds,
        nbest: p
            .nbest
            .iter()
            .filter(|e| !e.text.is_empty())
            .take(10)
            .map(|e| {
                let score = f64::from(e.start_logit) + f64::from(e.end_logit);
                span(&e.text, e.start, e.end, e.probability, score)
            })
            .collect(),
        windows: a.windows.len(),
        tokenize_ms: a.timings.tokenize_ms,
        network_ms: a.timings.network_ms,
        decode_ms: a.timings.decode_ms,
        source: None,
    }
}

/// Sizes in decimal units, as the CLI prints them (1 MB = 10^6 bytes).
fn human_bytes(n: u64) -> String {
    if n >= 1_000_000 {
        format!("{:.1} MB", n as f64 / 1e6)
    } else {
        format!("{:.1} kB", n as f64 / 1e3)
    }
}

/// The value of `key` in the page's query string (`?backend=cpu&bucket=32`).
fn query(key: &str) -> Option<String> {
    let search = web_sys::window()?.location().search().ok()?;
    search
        .trim_start_matches('?')
        .split('&')
        .find_map(|kv| Some(kv.strip_prefix(key)?.strip_prefix('=')?.to_string()))
}

/// The model to load first: the page's `?model=URL`, else the shipped model.
fn start_url() -> String {
    query("model").unwrap_or_else(|| DEFAULT_URL.to_string())
}

/// Whether `origin` (a URL, or a file name from browser storage) is the file at `url`.
fn names(origin: &str, url: &str) -> bool {
    url.rsplit('/').next().is_some_and(|f| origin.ends_with(f))
}

/// The page's query string says `?backend=cpu`.
fn force_cpu() -> bool {
    query("backend").as_deref() == Some("cpu")
}

/// How WebGPU pads windows: the page's `?bucket=N` token step, else `Shapes::GPU`
/// (an unpadded new length costs seconds of kernel compilation on a software GPU;
/// padded lengths share their kernels).
fn gpu_shapes() -> Shapes {
    query("bucket")
        .and_then(|v| v.parse().ok())
        .filter(|n: &usize| (1..=512).contains(n))
        .map_or(Shapes::GPU, |step| Shapes::Buckets { step })
}

/// Resolves once the browser has painted what the page just changed (a frame, then a
/// task), so that long synchronous work started after it does not hide the change.
async fn after_paint() {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let Some(w) = web_sys::window() else {
            let _ = resolve.call0(&wasm_bindgen::JsValue::NULL);
            return;
        };
        let w2 = w.clone();
        let then = wasm_bindgen::closure::Closure::once_into_js(move || {
            let _ = w2
                .set_timeout_with_callback_and_timeout_and_arguments_0(resolve.unchecked_ref(), 0);
        });
        let _ = w.request_animation_frame(then.unchecked_ref());
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// Builds the engine for checkpoint bytes, on WebGPU unless the model does not fit.
/// On WebGPU lengths are padded to buckets, so that they share their kernels.
fn build_engine(ckpt: Checkpoint, note: &mut Vec<String>) -> Result<Engine, String> {
    let compute = COMPUTE
        .with(|c| c.borrow().clone())
        .ok_or("the backend is not ready")?;
    let largest = ckpt
        .weights
        .iter()
        .map(|(n, t)| (n.clone(), t.shape.iter().product::<usize>() as u64 * 4))
        .max_by_key(|(_, b)| *b);
    let mut device = compute.device.clone();
    let mut on_gpu = compute.max_binding.is_some();
    if let Some((name, bytes)) = largest
        && let Some(why) = compute::does_not_fit(&compute, &name, bytes)
    {
        note.push(format!("{why}: running it on the CPU instead."));
        device = burn::tensor::Device::flex();
        on_gpu = false;
    }
    let mut engine = Engine::new(ckpt, device, DType::F32).map_err(|e| e.to_string())?;
    if on_gpu {
        engine.shapes = gpu_shapes();
    }
    Ok(engine)
}

/// A question over the indexed documents: BM25 passages read in one batch, the answer
/// from the passage whose span beats its null score by most (as `megaqa ask --docs`).
/// Returns the passage read, its answer and what the page shows.
async fn ask_documents(
    engine: &Engine,
    lib: &Library,
    question: &str,
) -> Result<(String, Answered, Shown), String> {
    let hits = lib
        .search(question, documents::PASSAGES)
        .map_err(|e| e.to_string())?;
    if hits.is_empty() {
        return Err("no passage of your documents shares a word with the question".into());
    }
    let texts: Vec<&str> = hits
        .iter()
        .map(|h| lib.text(&lib.passages()[h.passage]))
        .collect();
    let items: Vec<(&str, &str)> = texts.iter().map(|t| (question, *t)).collect();
    let mut read = engine
        .answer_many_async(&items, BATCH)
        .await
        .map_err(|e| e.to_string())?;
    let best = best_passage(read.iter().map(|r| &r.prediction)).expect("at least one passage");
    let name = |h: &megaqa_retrieve::Hit| {
        let p = lib.passages()[h.passage];
        (lib.documents[p.doc as usize].name.clone(), p)
    };
    let (document, p) = name(&hits[best]);
    let source = Source {
        document,
        start: p.start as usize,
        end: p.end as usize,
        rank: best,
        score: hits[best].score,
        read: hits
            .iter()
            .zip(&read)
            .map(|(h, r)| (name(h).0, h.score, r.prediction.text().to_owned()))
            .collect(),
    };
    let a = read.swap_remove(best);
    let mut s = shown(texts[best], &a);
    // The page's timings cover every passage read.
    s.network_ms = a.timings.network_ms * hits.len() as f64;
    s.tokenize_ms = a.timings.tokenize_ms * hits.len() as f64;
    s.source = Some(source);
    Ok((texts[best].to_owned(), a, s))
}

#[component]
pub fn App() -> impl IntoView {
    let backend = RwSignal::new(String::from("starting…"));
    let backend_note = RwSignal::new(None::<String>);
    let f16 = RwSignal::new(false);
    let model = RwSignal::new(None::<ModelInfo>);
    let progress = RwSignal::new(None::<(u64, Option<u64>)>);
    let status = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let cached = RwSignal::new(Vec::<Cached>::new());
    let url = RwSignal::new(start_url());
    let passage = RwSignal::new(String::from(DEMO_PASSAGE.trim()));
    let question = RwSignal::new(String::from(DEMO_QUESTION));
    let result = RwSignal::new(None::<Shown>);
    let selected = RwSignal::new(None::<usize>);
    let busy = RwSignal::new(false);
    let session_len = RwSignal::new(0usize);
    // The indexed documents ("3 file(s), …"), and whether questions search them.
    let docs = RwSignal::new(None::<String>);
    let use_docs = RwSignal::new(false);
    // None while the GPU compiles the model's kernels; then what the page says.
    let ready = RwSignal::new(None::<String>);

    let refresh_cache = move || {
        spawn_local(async move {
            match store::list().await {
                Ok(list) => cached.set(list),
                Err(e) => backend_note.set(Some(e)),
            }
        })
    };

    // Opens a checkpoint from bytes, caches it, and makes it the engine.
    let install =
        move |origin: String, ckpt: Checkpoint, bytes: u64, sha: String| -> Option<Rc<Engine>> {
            let mut notes = vec![];
            let cfg = ckpt.config.clone();
            let demo = names(&origin, DEMO_URL);
            let card = names(&origin, DEFAULT_URL).then_some(DEFAULT_CARD);
            match build_engine(ckpt, &mut notes) {
                Ok(engine) => {
                    model.set(Some(ModelInfo {
                        name: origin,
                        bytes,
                        sha256: sha,
                        model_sha256: engine.model_sha256.clone(),
                        shape: format!(
                            "{} layers × {} hidden, {} heads, {}",
                            cfg.num_layers,
                            cfg.hidden_size,
                            cfg.num_heads,
                            if cfg.pre_layer_norm {
                                "pre-LN (Megatron)"
                            } else {
                                "post-LN (BERT)"
                            }
                        ),
                        demo,
                        card,
                    }));
                    let engine = Rc::new(engine);
                    ENGINE.with(|e| *e.borrow_mut() = Some(engine.clone()));
                    status.set(notes.join(" "));
                    error.set(None);
                    Some(engine)
                }
                Err(e) => {
                    error.set(Some(e));
                    None
                }
            }
        };

    // On WebGPU, answers the question and passage in the boxes right after loading
    // (and drops the answer), so that the kernels compile (seconds on a software GPU)
    // before the first question, not in it. It runs beside the page: a question
    // asked meanwhile waits on the same compilation.
    let warm = move |engine: Option<Rc<Engine>>| async move {
        let Some(engine) = engine else { return };
        let Shapes::Buckets { step } = engine.shapes else {
            ready.set(Some("yes".into()));
            return;
        };
        ready.set(None);
        // Building the kernels holds the main thread for seconds: show the model first.
        after_paint().await;
        let t0 = js_sys::Date::now();
        let (q, p) = (question.get_untracked(), passage.get_untracked());
        let (q, p) = if q.trim().is_empty() || p.trim().is_empty() {
            (DEMO_QUESTION.into(), DEMO_PASSAGE.into())
        } else {
            (q, p)
        };
        match engine.ask_async(&q, &p, BATCH).await {
            Ok(_) => ready.set(Some(format!(
                "yes · GPU kernels compiled in {:.1} s (lengths padded to multiples of {step} tokens)",
                (js_sys::Date::now() - t0) / 1e3
            ))),
            Err(e) => {
                // Questions still run (and compile on first use); say why it is slow.
                ready.set(Some(format!("yes, but compiling ahead failed: {e}")));
                error.set(Some(format!("warming up the GPU: {e}")));
            }
        }
    };

    let load_url = move |target: String| {
        busy.set(true);
        error.set(None);
        spawn_local(async move {
            let name = target.rsplit('/').next().unwrap_or(&target).to_string();
            let loaded = match store::get(&target).await.ok().flatten() {
                Some((b, sha)) => {
                    status.set("loaded from browser storage (works offline)".into());
                    Ok((b, true, sha))
                }
                None => {
                    status.set(format!("downloading {target}…"));
                    store::fetch_with_progress(&target, |n, t| progress.set(Some((n, t))))
                        .await
                        .map(|b| (b, false, None))
                }
            };
            match loaded {
                Ok((bytes, from_cache, kept_sha)) => {
                    let sha = match kept_sha {
                        Some(sha) => sha,
                        None => store::sha256_hex(&bytes).await,
                    };
                    let len = bytes.len() as u64;
                    // A download is kept for offline use before its bytes move into
                    // the checkpoint (no second copy), and dropped again if unreadable.
                    if !from_cache
                        && let Err(e) = store::put(&target, &name, &bytes, sha.clone()).await
                    {
                        backend_note.set(Some(e));
                    }
                    match Checkpoint::from_bytes(&target, &name, bytes) {
                        Ok(ckpt) => spawn_local(warm(install(target.clone(), ckpt, len, sha))),
                        Err(e) => {
                            if !from_cache {
                                let _ = store::delete(&target).await;
                            }
                            error.set(Some(e.to_string()));
                        }
                    }
                }
                Err(e) => error.set(Some(e)),
            }
            progress.set(None);
            busy.set(false);
            refresh_cache();
        });
    };

    let load_cached = move |c: Cached| {
        busy.set(true);
        spawn_local(async move {
            match store::get(&c.key).await {
                Ok(Some((bytes, _))) => match Checkpoint::from_bytes(&c.name, &c.name, bytes) {
                    Ok(ckpt) => spawn_local(warm(install(
                        c.name.clone(),
                        ckpt,
                        c.bytes,
                        c.sha256.clone(),
                    ))),
                    Err(e) => error.set(Some(e.to_string())),
                },
                Ok(None) => error.set(Some(format!("{} is no longer stored", c.name))),
                Err(e) => error.set(Some(e)),
            }
            busy.set(false);
        });
    };

    let on_files = move |ev: leptos::ev::Event| {
        let Some(input) = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
        else {
            return;
        };
        let Some(list) = input.files() else { return };
        let files: Vec<web_sys::File> = (0..list.length()).filter_map(|i| list.get(i)).collect();
        if files.is_empty() {
            return;
        }
        busy.set(true);
        error.set(None);
        spawn_local(async move {
            let mut map = BTreeMap::new();
            let mut total = 0u64;
            for f in &files {
                status.set(format!("reading {}…", f.name()));
                match store::read_file(f).await {
                    Ok(b) => {
                        total += b.len() as u64;
                        progress.set(Some((total, None)));
                        map.insert(f.name(), b);
                    }
                    Err(e) => {
                        error.set(Some(e));
                        busy.set(false);
                        return;
                    }
                }
            }
            let loaded = if map.contains_key("config.json") {
                Checkpoint::from_hf_files("selected files", map)
            } else if map.len() == 1 {
                let (name, bytes) = map.into_iter().next().expect("one file");
                Checkpoint::from_bytes(&name, &name, bytes)
            } else {
                error.set(Some(
                    "select one file (.nemo or a converted .safetensors), or a Hugging Face set: config.json + model.safetensors (or pytorch_model.bin) + vocab.txt".into(),
                ));
                busy.set(false);
                return;
            };
            match loaded {
                Ok(ckpt) => {
                    // Cache the converted form: one file, whatever was selected.
                    let name = format!(
                        "{}.megaqa.safetensors",
                        files[0].name().trim_end_matches(".safetensors")
                    );
                    match ckpt.to_converted_bytes(false) {
                        Ok(bytes) => {
                            let sha = store::sha256_hex(&bytes).await;
                            let key = store::local_key(&name, &sha);
                            if let Err(e) = store::put(&key, &name, &bytes, sha.clone()).await {
                                backend_note.set(Some(e));
                            }
                            spawn_local(warm(install(name, ckpt, total, sha)));
                        }
                        Err(e) => error.set(Some(e.to_string())),
                    }
                }
                Err(e) => error.set(Some(e.to_string())),
            }
            progress.set(None);
            busy.set(false);
            refresh_cache();
        });
    };

    let ask = move || {
        let Some(engine) = ENGINE.with(|e| e.borrow().clone()) else {
            error.set(Some("load a model first".into()));
            return;
        };
        let library = LIBRARY
            .with(|l| l.borrow().clone())
            .filter(|_| use_docs.get_untracked());
        let (q, p) = (question.get_untracked(), passage.get_untracked());
        if q.trim().is_empty() || (library.is_none() && p.trim().is_empty()) {
            error.set(Some("type a passage and a question".into()));
            return;
        }
        busy.set(true);
        error.set(None);
        spawn_local(async move {
            let answered = match &library {
                None => engine.ask_async(&q, &p, BATCH).await.map(|a| {
                    let s = shown(&p, &a);
                    (p.clone(), a, s)
                }),
                Some(lib) => match ask_documents(&engine, lib, &q).await {
                    Ok(x) => Ok(x),
                    Err(e) => {
                        error.set(Some(e));
                        busy.set(false);
                        return;
                    }
                },
            };
            match answered {
                Ok((context, a, s)) => {
                    SESSION.with(|x| {
                        let mut r = QuestionResult::new(None, &q, &context, &a);
                        r.context = Some(context.clone());
                        x.borrow_mut().push(r);
                        session_len.set(x.borrow().len());
                    });
                    selected.set(None);
                    result.set(Some(s));
                }
                Err(e) => error.set(Some(e.to_string())),
            }
            busy.set(false);
        });
    };

    let install_docs = move |files: Vec<(String, Vec<u8>)>, keep: bool| async move {
        match documents::index(&files) {
            Ok(ix) => {
                LIBRARY.with(|l| *l.borrow_mut() = Some(Rc::new(ix.library)));
                docs.set(Some(ix.summary));
                use_docs.set(true);
                if keep && let Err(e) = documents::keep(&files).await {
                    backend_note.set(Some(e));
                }
            }
            Err(e) => error.set(Some(e)),
        }
    };

    let on_docs = move |ev: leptos::ev::Event| {
        let Some(list) = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
            .and_then(|i| i.files())
        else {
            return;
        };
        let files: Vec<web_sys::File> = (0..list.length()).filter_map(|i| list.get(i)).collect();
        error.set(None);
        spawn_local(async move {
            let mut read = Vec::new();
            for f in &files {
                match store::read_file(f).await {
                    Ok(b) => read.push((f.name(), b)),
                    Err(e) => {
                        error.set(Some(e));
                        return;
                    }
                }
            }
            install_docs(read, true).await;
        });
    };

    let forget_docs = move |_| {
        LIBRARY.with(|l| *l.borrow_mut() = None);
        docs.set(None);
        use_docs.set(false);
        spawn_local(async move {
            if let Err(e) = documents::forget().await {
                error.set(Some(e));
            }
        });
    };

    let export = move |_| {
        let (Some(info), Some(c)) = (model.get_untracked(), COMPUTE.with(|c| c.borrow().clone()))
        else {
            return;
        };
        let results = SESSION.with(|s| s.borrow().clone());
        let file = ResultsFile::new(&info.model_sha256, &c.label(), results);
        match serde_json::to_string_pretty(&file) {
            Ok(text) => {
                if let Err(e) = crate::download::save("megaqa-session.json", &text) {
                    error.set(Some(e));
                }
            }
            Err(e) => error.set(Some(e.to_string())),
        }
    };

    // Start: open the backend, then the default model (from storage when cached).
    spawn_local(async move {
        let c = compute::open(force_cpu()).await;
        backend.set(c.label());
        f16.set(c.f16);
        backend_note.set(c.fallback_reason.clone());
        COMPUTE.with(|x| *x.borrow_mut() = Some(c));
        refresh_cache();
        load_url(start_url());
        // Documents kept from an earlier visit.
        match documents::kept().await {
            Ok(files) if !files.is_empty() => install_docs(files, false).await,
            Ok(_) => {}
            Err(e) => backend_note.set(Some(e)),
        }
    });

    let on_passage_file = move |ev: leptos::ev::Event| {
        let Some(file) = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
            .and_then(|i| i.files())
            .and_then(|l| l.get(0))
        else {
            return;
        };
        spawn_local(async move {
            match store::read_file(&file).await {
                Ok(b) => match String::from_utf8(b) {
                    Ok(t) => passage.set(t),
                    Err(_) => error.set(Some(format!("{}: not UTF-8 text", file.name()))),
                },
                Err(e) => error.set(Some(e)),
            }
        });
    };

    view! {
        <header>
            <h1>"megaqa"</h1>
            <p class="tagline">"Extractive question answering in your browser: no server, offline after the first load."</p>
        </header>
        <main>
            <section class="panel" aria-labelledby="model-h">
                <h2 id="model-h">"Model"</h2>
                <p id="backend" data-testid="backend">
                    "Backend: " <strong>{move || backend.get()}</strong>
                    {move || if f16.get() { " · f16 available" } else { " · no f16" }}
                </p>
                <Show when=move || backend_note.get().is_some()>
                    <p class="note">{move || backend_note.get().unwrap_or_default()}</p>
                </Show>
                <Show when=move || model.get().is_some()>
                    {move || model.get().map(|m| view! {
                        <dl class="model" data-testid="model">
                            <dt>"Loaded"</dt><dd>{m.name.clone()}</dd>
                            <dt>"Size"</dt><dd>{human_bytes(m.bytes)}</dd>
                            <dt>"sha256"</dt><dd class="hash">{m.sha256.clone()}</dd>
                            <dt>"Network"</dt><dd>{m.shape.clone()}</dd>
                            <dt>"Ready"</dt>
                            <dd>{move || match ready.get() {
                                Some(r) => view! { <span data-testid="ready">{r}</span> }.into_any(),
                                None => view! { <span>"compiling GPU kernels for this model (once)…"</span> }.into_any(),
                            }}</dd>
                        </dl>
                        {m.card.map(|card| view! {
                            <p class="card" data-testid="card">{card}</p>
                        })}
                        <Show when=move || m.demo>
                            <p class="warning" role="note">
                                "This demo model is tiny (2 layers × 32) and was trained by megaqa on only 20 SQuAD questions about this passage and the next: it knows those answers and nothing else. It is for tests. For real answers, open the page without "
                                <code>"?model="</code> " (megaqa's SQuAD model) or load a SQuAD-trained checkpoint (for example NVIDIA's Megatron-BERT 345M QA .nemo, or one converted with "
                                <code>"megaqa convert"</code> ") below."
                            </p>
                        </Show>
                    })}
                </Show>
                <Show when=move || progress.get().is_some()>
                    {move || progress.get().map(|(n, t)| view! {
                        <label class="progress">
                            {format!("{} of {}", human_bytes(n), t.map_or("?".into(), human_bytes))}
                            <progress max=t.unwrap_or(0).max(n) value=n></progress>
                        </label>
                    })}
                </Show>
                <div class="row">
                    <label for="model-url">"Model URL"</label>
                    <input id="model-url" type="url" prop:value=move || url.get()
                        on:input=move |ev| url.set(event_target_value(&ev)) />
                    <button on:click=move |_| load_url(url.get_untracked()) disabled=move || busy.get()>"Load"</button>
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
                    <summary>{move || format!("Stored in this browser ({})", cached.get().len())}</summary>
                    <ul class="cached" data-testid="cached">
                        <For each=move || cached.get() key=|c| c.key.clone() children=move |c: Cached| {
                            let c2 = c.clone();
                            let key = c.key.clone();
                            view! {
                                <li>
                                    <span>{c.name.clone()} " · " {human_bytes(c.bytes)} " · "
                                        <span class="hash">{c.sha256.chars().take(12).collect::<String>()}</span></span>
                                    <button on:click=move |_| load_cached(c2.clone())>"Use"</button>
                                    <button on:click=move |_| {
                                        let key = key.clone();
                                        spawn_local(async move {
                                            if let Err(e) = store::delete(&key).await { error.set(Some(e)); }
                                            refresh_cache();
                                        });
                                    } aria-label=format!("Delete {}", c.name)>"Delete"</button>
                                </li>
                            }
                        } />
                    </ul>
                </details>
            </section>

            <section class="panel" aria-labelledby="ask-h">
                <h2 id="ask-h">"Ask"</h2>
                <label for="passage">"Passage"</label>
                <textarea id="passage" rows="8" prop:value=move || passage.get()
                    on:input=move |ev| passage.set(event_target_value(&ev))></textarea>
                <div class="row">
                    <label for="passage-file">"Open a .txt file"</label>
                    <input id="passage-file" type="file" accept=".txt,text/plain" on:change=on_passage_file />
                </div>
                <div class="row">
                    <label for="docs">"Or ask your documents"</label>
                    <input id="docs" type="file" multiple accept=".txt,.md,.json,text/plain,text/markdown"
                        on:change=on_docs />
                </div>
                <Show when=move || docs.get().is_some()>
                    <p class="docs" data-testid="docs">
                        <label>
                            <input id="use-docs" type="checkbox" prop:checked=move || use_docs.get()
                                on:change=move |ev| use_docs.set(event_target_checked(&ev)) />
                            {move || format!(" Search my documents first ({}; the best {} passages are read)",
                                docs.get().unwrap_or_default(), documents::PASSAGES)}
                        </label>
                        " " <button on:click=forget_docs>"Forget documents"</button>
                    </p>
                </Show>
                <label for="question">"Question (Enter asks)"</label>
                <div class="row">
                    <input id="question" type="text" prop:value=move || question.get()
                        on:input=move |ev| question.set(event_target_value(&ev))
                        on:keydown=move |ev: leptos::ev::KeyboardEvent| if ev.key() == "Enter" { ask() } />
                    <button id="ask" on:click=move |_| ask()
                        disabled=move || busy.get() || model.get().is_none()>"Ask"</button>
                </div>
                <Show when=move || error.get().is_some()>
                    <p class="error" role="alert" data-testid="error">{move || error.get().unwrap_or_default()}</p>
                </Show>
                <p class="status" aria-live="polite">{move || if busy.get() { "working…".to_string() } else { status.get() }}</p>
            </section>

            <section class="panel" aria-labelledby="answer-h" aria-live="polite">
                <h2 id="answer-h">"Answer"</h2>
                {move || result.get().map(|r| {
                    let current = selected.get().and_then(|i| r.nbest.get(i).cloned()).or(r.answer.clone());
                    let passage_view = match &current {
                        Some(s) => {
                            let total = r.passage.chars().count();
                            view! {
                                <p class="passage" data-testid="passage">
                                    {char_slice(&r.passage, 0, s.start)}
                                    <mark data-testid="highlight" data-start=s.start data-end=s.end>{char_slice(&r.passage, s.start, s.end)}</mark>
                                    {char_slice(&r.passage, s.end, total)}
                                </p>
                            }.into_any()
                        }
                        None => view! { <p class="passage" data-testid="passage">{r.passage.clone()}</p> }.into_any(),
                    };
                    let nbest = r.nbest.clone();
                    let null_wins = r.answer.is_none();
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
                        {r.source.clone().map(|src| view! {
                            <p class="source" data-testid="source" data-document=src.document.clone() data-start=src.start>
                                "From " <strong>{src.document.clone()}</strong>
                                {format!(" · passage {} of {} read · characters {}–{} of the document · retrieval score {:.2}",
                                    src.rank + 1, src.read.len(), src.start, src.end, src.score)}
                            </p>
                        })}
                        {passage_view}
                        <p class="timings" data-testid="timings">
                            {format!("{} window(s) · tokenize {:.1} ms · network {:.1} ms · decode {:.1} ms",
                                r.windows, r.tokenize_ms, r.network_ms, r.decode_ms)}
                        </p>
                        {r.source.clone().map(|src| view! {
                            <details class="read">
                                <summary>"Passages read"</summary>
                                <ol>
                                    {src.read.into_iter().map(|(d, score, said)| view! {
                                        <li>{format!("{score:.2} · {d}: {}", if said.is_empty() { "no answer".to_string() } else { said })}</li>
                                    }).collect_view()}
                                </ol>
                            </details>
                        })}
                        <h3>"Alternatives"</h3>
                        <Show when=move || null_wins>
                            <p class="hint" data-testid="null-wins">{format!(
                                "The null answer wins: its score {:.2} beats the best span's by {:.2}, so the spans share almost none of the probability. Beside each span: its score (start + end logit).",
                                r.null_score, r.null_odds)}</p>
                        </Show>
                        <ol class="nbest">
                            {nbest.into_iter().enumerate().map(|(i, s)| view! {
                                <li>
                                    <button class=move || if selected.get() == Some(i) { "alt chosen" } else { "alt" }
                                        aria-pressed=move || (selected.get() == Some(i)).to_string()
                                        on:click=move |_| selected.set(Some(i))>
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
                })}
                <div class="row">
                    <button id="export" on:click=export disabled=move || session_len.get() == 0>
                        {move || format!("Export session ({} question(s))", session_len.get())}
                    </button>
                </div>
                <p class="hint">"The export is a megaqa results file: check it against a native run with "
                    <code>"megaqa parity --against megaqa-session.json --model MODEL --device-a wgpu"</code> "."</p>
            </section>
        </main>
        <footer>
            <p>"The starting passage was written for megaqa; the model was trained on SQuAD (CC BY-SA 4.0). megaqa runs the same Rust engine natively and here."</p>
        </footer>
    }
}
