//! The engine's side of the page, in the Web Worker: the backend, the loaded model,
//! the indexed documents and the session's answers. Each [`Request`] from the page
//! runs here as a task; what the page should show goes back as [`Event`]s, so that
//! loading, compiling GPU kernels and answering never hold the page's thread.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use burn::tensor::DType;
use megaqa::model::Checkpoint;
use megaqa::model::checkpoint::DType as RawDType;
use megaqa::text::best_passage;
use megaqa::{Answered, Engine, Fingerprint, QuestionResult, ResultsFile, Shapes};
use megaqa_retrieve::Library;
use sha2::{Digest, Sha256};
use wasm_bindgen_futures::spawn_local;

use crate::compute::{self, Compute};
use crate::documents;
use crate::protocol::{Cached, Event, Load, LoadFrom, ModelInfo, Request, Shown, Source, Span};
use crate::{post, store};

/// Windows per network call.
const BATCH: usize = 8;
/// A model file over this size (a download or a picked converted file) is hashed as it
/// arrives (sha2 in wasm) and streamed into an OPFS file, from which the network is
/// built a tensor at a time ([`streamed`]): the file is never whole in wasm memory,
/// which never shrinks (SubtleCrypto and a whole-file `Response` would each copy it
/// out of wasm memory too). Below it, reading it whole costs less than the time saved:
/// SubtleCrypto hashes the shipped 46 MB model in 0.05 s (sha2 in wasm: ~0.25 s), and
/// its write to the Cache API overlaps building the network.
const BIG_DOWNLOAD: u64 = 256 << 20;

/// Progress is posted each time this many more bytes have arrived (and at the end).
const PROGRESS_STEP: u64 = 1 << 20;

#[derive(Default)]
struct Host {
    compute: Option<Compute>,
    /// The `?bucket=N` the page asked for, else `Shapes::GPU` on WebGPU.
    bucket: Option<usize>,
    /// The `?precision=` the page asked for (see `Request::Start`).
    f16: Option<bool>,
    /// Whether the loaded engine computes in f16 (the export says so).
    in_f16: bool,
    engine: Option<Rc<Engine>>,
    /// The browser storage key of the loaded model.
    loaded: Option<String>,
    /// The page's threshold for a new worker, if it set one (else `NEW_WORKER_OVER`).
    new_worker_over: Option<u64>,
    /// The page's size over which a model is streamed, if it set one (else
    /// `BIG_DOWNLOAD`).
    stream_over: Option<u64>,
    library: Option<Rc<Library>>,
    session: Vec<QuestionResult>,
    /// The loaded model's copy in browser storage, while the browser writes it.
    storing: Option<store::Writing>,
    /// The loaded model's fingerprint (what exports identify it by), computed while the
    /// worker is idle: off the way to the first answer.
    model_sha256: Option<ModelSha>,
}

enum ModelSha {
    Pending(Fingerprint),
    Done(String),
    Failed(String),
}

/// Values hashed per slice of the idle fingerprint: ~10 ms in wasm, so a question asked
/// meanwhile waits at most that long.
const FINGERPRINT_SLICE: usize = 1 << 20;

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(callback: &js_sys::Function, ms: i32) -> wasm_bindgen::JsValue;
}

/// Lets the worker take what is waiting (a question) before going on.
async fn yield_to_events() {
    let later = js_sys::Promise::new(&mut |resolve, _| {
        set_timeout(&resolve, 0);
    });
    let _ = wasm_bindgen_futures::JsFuture::from(later).await;
}

/// Steps the loaded model's fingerprint a slice at a time, yielding between slices,
/// until it is done (or replaced by another model's, which this then finishes too).
async fn fingerprint_while_idle() {
    loop {
        yield_to_events().await;
        if HOST.with(|h| step_fingerprint(&mut h.borrow_mut(), FINGERPRINT_SLICE)) {
            return;
        }
    }
}

/// Steps the fingerprint by `values`; whether it is no longer pending.
fn step_fingerprint(h: &mut Host, values: usize) -> bool {
    let Some(ModelSha::Pending(f)) = &mut h.model_sha256 else {
        return true;
    };
    let next = match f.step(values) {
        Ok(None) => return false,
        Ok(Some(digest)) => ModelSha::Done(digest.to_string()),
        Err(e) => ModelSha::Failed(e.to_string()),
    };
    h.model_sha256 = Some(next);
    true
}

thread_local! {
    static HOST: RefCell<Host> = RefCell::new(Host::default());
}

/// Runs one request from the page; `files` are those posted with it.
pub fn handle(request: Request, files: Vec<web_sys::File>) {
    spawn_local(async move {
        match request {
            Request::Start {
                force_cpu,
                bucket,
                f16,
                model,
                fallback,
                new_worker_over,
                stream_over,
            } => {
                HOST.with(|h| {
                    let mut h = h.borrow_mut();
                    h.new_worker_over = new_worker_over;
                    h.stream_over = stream_over;
                });
                start((force_cpu, bucket, f16), model, files, fallback).await
            }
            Request::Load(load) => replace_model(load, files).await,
            Request::Documents => read_documents(files).await,
            Request::ForgetDocuments => {
                HOST.with(|h| h.borrow_mut().library = None);
                post(&Event::Documents(None));
                if let Err(e) = documents::forget().await {
                    post(&Event::Error(Some(e)));
                }
            }
            Request::Delete(key) => {
                if let Err(e) = store::delete(&key).await {
                    post(&Event::Error(Some(e)));
                }
                list_stored().await;
            }
            Request::Ask {
                question,
                passage,
                documents,
            } => ask(question, passage, documents).await,
            Request::Export => export(),
        }
    });
}

/// Opens the backend, loads the first model (or `fallback`, from browser storage, if
/// that fails) and brings back the kept documents.
async fn start(
    (force_cpu, bucket, f16): (bool, Option<usize>, Option<bool>),
    model: Load,
    files: Vec<web_sys::File>,
    fallback: Option<Cached>,
) {
    let c = compute::open(force_cpu).await;
    post(&Event::Backend {
        label: c.label(),
        f16: c.f16,
        note: c.fallback_reason.clone(),
    });
    HOST.with(|h| {
        let mut h = h.borrow_mut();
        h.compute = Some(c);
        h.bucket = bucket.filter(|n| (1..=512).contains(n));
        h.f16 = f16;
    });
    list_stored().await;
    let (question, passage) = (model.question.clone(), model.passage.clone());
    if let Some(failed) = load_model(model, files).await
        && let Some(c) = fallback
    {
        let name = c.name.clone();
        let load = Load {
            from: LoadFrom::Stored(c),
            question,
            passage,
        };
        if load_model(load, vec![]).await.is_none() {
            post(&Event::Error(Some(format!(
                "{failed} (the model before it, {name}, is loaded again)"
            ))));
        }
    }
    match documents::kept().await {
        Ok(files) if !files.is_empty() => install_documents(&files, false).await,
        Ok(_) => {}
        Err(e) => post(&Event::Note(e)),
    }
}

async fn list_stored() {
    match store::list().await {
        Ok(list) => post(&Event::Stored(list)),
        Err(e) => post(&Event::Note(e)),
    }
}

/// Above this much wasm memory, a worker with a model loaded hands a new model to a
/// new worker ([`Event::Restart`]): wasm memory never shrinks, so the old model's
/// memory would stay the tab's while the new one is added (a 345M model in f16 and
/// then in f32 left the tab at 7.5 GB). Below it, a model is replaced in place: faster,
/// and the session's answers stay.
const NEW_WORKER_OVER: u64 = 512 << 20;

/// Loads a model in place of the loaded one: in this worker, or, if this worker holds
/// much memory, in a new one once the model passed the checks made before its bytes
/// arrive (so that a bad URL leaves the loaded model as it was).
async fn replace_model(load: Load, files: Vec<web_sys::File>) {
    let (loaded, over) = HOST.with(|h| {
        let h = h.borrow();
        (
            h.loaded.clone(),
            h.new_worker_over.unwrap_or(NEW_WORKER_OVER),
        )
    });
    let memory = core::arch::wasm32::memory_size(0) as u64 * 65536;
    let Some(loaded) = loaded.filter(|_| memory > over) else {
        load_model(load, files).await;
        return;
    };
    post(&Event::Busy(true));
    post(&Event::Error(None));
    match check_before_loading(&load, &files).await {
        Ok(()) => {
            // The new worker falls back on the loaded model's stored copy: whole first.
            let storing = HOST.with(|h| h.borrow_mut().storing.take());
            if let Some(w) = storing {
                let _ = w.done().await;
            }
            let fallback = store::list()
                .await
                .ok()
                .and_then(|list| list.into_iter().find(|c| c.key == loaded));
            post(&Event::Restart { load, fallback });
        }
        Err(e) => {
            post(&Event::Error(Some(e)));
            post(&Event::Busy(false));
        }
    }
}

/// What can be known of a model before all of it is read: a URL answers (and its
/// header, the first bytes, fits this tab), or a file's header fits.
async fn check_before_loading(load: &Load, files: &[web_sys::File]) -> Result<(), String> {
    let Some(c) = HOST.with(|h| h.borrow().compute.clone()) else {
        return Ok(());
    };
    match &load.from {
        LoadFrom::Stored(_) => Ok(()),
        LoadFrom::Url(url) => {
            if store::has(url).await {
                return Ok(());
            }
            let name = url_file(url);
            // The download stops (this error) once the header is judged.
            const JUDGED: &str = "judged";
            let judged = store::fetch_with_progress(url, |got, total| {
                match compute::judge_head(&c, got, total, streams(total)) {
                    Ok(true) => Err(JUDGED.into()),
                    Ok(false) => Ok(()),
                    Err(e) => Err(format!("{name}: {e}")),
                }
            })
            .await;
            match judged {
                Err(e) if e != JUDGED => Err(e),
                _ => Ok(()),
            }
        }
        LoadFrom::Files => {
            for f in files {
                let streamed = files.len() == 1 && converted(f) && streams(Some(f.size() as u64));
                judge_file(&c, f, streamed).await?;
            }
            Ok(())
        }
    }
}

/// Refuses a local model file too big for this tab from its header (its first MB).
async fn judge_file(c: &Compute, f: &web_sys::File, streamed: bool) -> Result<(), String> {
    let head = store::read_head(f, 1 << 20).await?;
    compute::judge_head(c, &head, Some(f.size() as u64), streamed)
        .map(|_| ())
        .map_err(|e| format!("{}: {e}", f.name()))
}

/// Whether a model file of `size` goes to browser storage as it arrives and is read
/// from there a tensor at a time ([`streamed`]): a big one, where this context can
/// write OPFS files synchronously.
fn streams(size: Option<u64>) -> bool {
    size.is_some_and(is_big) && store::opfs::writable_here()
}

/// Whether a model file of `size` is big: hashed as it arrives, and streamed into
/// browser storage (or, where that cannot be, written there from wasm memory first).
fn is_big(size: u64) -> bool {
    size > HOST.with(|h| h.borrow().stream_over.unwrap_or(BIG_DOWNLOAD))
}

/// Whether a picked file is (by its name) one `megaqa convert` wrote.
fn converted(f: &web_sys::File) -> bool {
    f.name().ends_with(".safetensors")
}

/// The file name at the end of a model's URL, which messages name it by.
fn url_file(url: &str) -> String {
    url.rsplit('/').next().unwrap_or(url).to_string()
}

/// Loads a model from a URL (or browser storage), storage or files, and installs it;
/// the error shown if it could not.
async fn load_model(load: Load, files: Vec<web_sys::File>) -> Option<String> {
    post(&Event::Busy(true));
    post(&Event::Error(None));
    let opened = match &load.from {
        LoadFrom::Url(url) => from_url(url).await,
        LoadFrom::Stored(c) => from_storage(c).await.map(|o| (o, None)),
        LoadFrom::Files => from_files(&files).await,
    };
    post(&Event::Progress(None));
    let engine = match opened {
        Ok(((origin, ckpt, bytes, sha), writing)) => {
            // Where browser storage keeps it (what a new worker loads again).
            let key = match &load.from {
                LoadFrom::Url(url) => store::absolute(url),
                LoadFrom::Stored(c) => c.key.clone(),
                LoadFrom::Files => store::absolute(&store::local_key(&origin, &sha)),
            };
            let engine = install(origin, ckpt, bytes, sha);
            if engine.is_ok() {
                HOST.with(|h| h.borrow_mut().loaded = Some(key));
            }
            // The browser goes on keeping the model in storage while it answers: the
            // first question does not wait for that copy (nor does the stored list,
            // which the cache gives only after the write). A new worker waits for it
            // (`replace_model`).
            HOST.with(|h| h.borrow_mut().storing = writing.clone());
            spawn_local(async move {
                if let Some(w) = writing
                    && let Err(e) = w.done().await
                {
                    post(&Event::Note(e));
                }
                list_stored().await;
            });
            engine
        }
        Err(e) => {
            list_stored().await;
            Err(e)
        }
    };
    if let Err(e) = &engine {
        post(&Event::Error(Some(e.clone())));
    }
    post(&Event::Busy(false));
    match engine {
        Ok(engine) => {
            warm(engine, &load.question, &load.passage).await;
            spawn_local(fingerprint_while_idle());
            None
        }
        Err(e) => Some(e),
    }
}

type Opened = (String, Checkpoint, u64, String);

/// sha256 of a big file while it arrives, a chunk at a time, so that it is never handed
/// whole to SubtleCrypto, which would copy it out of wasm.
#[derive(Default)]
struct Hashing(Option<Sha256>);

impl Hashing {
    fn started() -> Self {
        Self(Some(Sha256::new()))
    }

    fn feed(&mut self, chunk: &[u8]) {
        if let Some(h) = &mut self.0 {
            h.update(chunk);
        }
    }

    /// The hex digest, if hashing was started.
    fn finish(self) -> Option<String> {
        self.0.map(|h| format!("{:x}", h.finalize()))
    }
}

/// A model file arriving a chunk at a time (downloaded, or read from a picked file):
/// refused from its header once that has come if it does not fit this tab, hashed if
/// big, and shown as progress.
struct Arrival {
    name: String,
    total: Option<u64>,
    /// Whether it goes to browser storage as it arrives ([`streamed`]).
    streamed: bool,
    /// The first bytes, until the header in them is judged (then `None`).
    head: Option<Vec<u8>>,
    backend: Option<Compute>,
    received: u64,
    shown: u64,
    hashing: Hashing,
}

impl Arrival {
    fn new(name: &str, total: Option<u64>, streamed: bool) -> Self {
        let backend = HOST.with(|h| h.borrow().compute.clone());
        Self {
            name: name.into(),
            total,
            streamed,
            head: backend.is_some().then(Vec::new),
            backend,
            received: 0,
            shown: 0,
            hashing: if total.is_some_and(is_big) {
                Hashing::started()
            } else {
                Hashing::default()
            },
        }
    }

    /// Takes what of `got` (all received so far, read whole into memory) is new.
    fn take_new(&mut self, got: &[u8]) -> Result<(), String> {
        self.take(&got[self.received as usize..])
    }

    /// Takes the next `chunk` (first an empty one, judging the size alone).
    fn take(&mut self, chunk: &[u8]) -> Result<(), String> {
        if let (Some(head), Some(c)) = (&mut self.head, &self.backend) {
            head.extend_from_slice(chunk);
            if compute::judge_head(c, head, self.total, self.streamed)
                .map_err(|e| format!("{}: {e}", self.name))?
            {
                self.head = None;
            }
        }
        self.hashing.feed(chunk);
        self.received += chunk.len() as u64;
        if self.received >= self.shown + PROGRESS_STEP || Some(self.received) == self.total {
            self.shown = self.received;
            post(&Event::Progress(Some((self.received, self.total))));
        }
        Ok(())
    }
}

/// A model read from a URL, and its write to browser storage if it was downloaded.
async fn from_url(url: &str) -> Result<(Opened, Option<store::Writing>), String> {
    let name = url_file(url);
    let offline = || {
        post(&Event::Status(
            "loaded from browser storage (works offline)".into(),
        ))
    };
    if let Some(opened) = from_kept_file(url, url).await? {
        offline();
        return Ok((opened, None));
    }
    if let Some((bytes, sha)) = store::get(url).await.ok().flatten() {
        offline();
        return read_whole(Some(url), url, &name, bytes, sha, true).await;
    }
    post(&Event::Status(format!("downloading {url}…")));
    let mut response = store::fetch(url).await?;
    let total = store::content_length(&response);
    if streams(total) {
        if let Some(opened) = streamed(Some(url), url, &name, &response, total).await? {
            return Ok((opened, None));
        }
        response = store::fetch(url).await?;
    }
    let mut arrival = Arrival::new(&name, total, false);
    let bytes = store::read_body(&response, url, None, |got| arrival.take_new(got)).await?;
    read_whole(
        Some(url),
        url,
        &name,
        bytes,
        arrival.hashing.finish(),
        false,
    )
    .await
}

/// A model's bytes read whole (downloaded, picked, or from the Cache API), hashed if
/// they were not, kept (unless `kept` already) and read into a checkpoint. Kept under
/// `key`, or, for a picked file, under its name and sha256.
async fn read_whole(
    key: Option<&str>,
    origin: &str,
    name: &str,
    bytes: Vec<u8>,
    sha: Option<String>,
    kept: bool,
) -> Result<(Opened, Option<store::Writing>), String> {
    let sha = match sha {
        Some(sha) => sha,
        None => store::sha256_hex(&bytes).await,
    };
    let key = key.map_or_else(|| store::local_key(name, &sha), str::to_string);
    let len = bytes.len() as u64;
    let (ckpt, writing) = keep_and_read(&key, origin, name, bytes, &sha, kept).await?;
    Ok(((origin.to_string(), ckpt, len, sha), writing))
}

/// A big model (a download or a picked file) streamed into browser storage as it
/// arrives and read from there a tensor at a time while the network is built
/// ([`Checkpoint::from_source`]): never whole in wasm memory, which never shrinks. Kept
/// under `key`, or, for a picked file, under its name and sha256. `None` when browser
/// storage could not keep it (the page gets a note saying why): the caller reads it
/// into memory instead.
async fn streamed(
    key: Option<&str>,
    origin: &str,
    name: &str,
    response: &web_sys::Response,
    total: Option<u64>,
) -> Result<Option<Opened>, String> {
    let mut arrival = Arrival::new(name, total, true);
    let kept = async {
        let (file, len) =
            store::stream_to_opfs(response, origin, |chunk| arrival.take(chunk)).await?;
        let sha = arrival.hashing.finish().unwrap_or_default();
        let key = key.map_or_else(|| store::local_key(name, &sha), str::to_string);
        store::keep_file(&key, name, &sha, len, &file)
            .await
            .map_err(store::Streamed::Storage)?;
        // Read where it was just written (its entry names this file).
        let Ok((reader, len)) = store::opfs::Reader::open(&file).await else {
            return Err(store::Streamed::Storage(format!(
                "{name}: kept in browser storage, but it cannot be read back"
            )));
        };
        match read_in_place(origin, reader, len, sha) {
            Ok(opened) => Ok(opened),
            Err(e) => {
                let _ = store::delete(&key).await;
                Err(store::Streamed::Read(e))
            }
        }
    };
    match kept.await {
        Ok(opened) => Ok(Some(opened)),
        Err(store::Streamed::Read(e)) => Err(e),
        Err(store::Streamed::Storage(e)) => {
            post(&Event::Note(format!("{e}: reading it into memory instead")));
            Ok(None)
        }
    }
}

/// A model kept in an OPFS file under `key`, opened where it lies: its header read now,
/// each tensor while the network is built. `None` if it is not kept so.
async fn from_kept_file(key: &str, origin: &str) -> Result<Option<Opened>, String> {
    let Some((reader, len, sha)) = store::kept_file(key).await else {
        return Ok(None);
    };
    read_in_place(origin, reader, len, sha.unwrap_or_default()).map(Some)
}

/// The checkpoint in an OPFS file opened by `reader` (`len` bytes, sha256 `sha`): its
/// header read now, each tensor while the network is built.
fn read_in_place(
    origin: &str,
    reader: store::opfs::Reader,
    len: u64,
    sha: String,
) -> Result<Opened, String> {
    let ckpt = Checkpoint::from_source(origin, std::sync::Arc::new(reader), len)
        .map_err(|e| e.to_string())?;
    Ok((origin.into(), ckpt, len, sha))
}

/// A model's bytes handed to browser storage under `key` (kept for offline use; not
/// when `kept` already), then moved into a checkpoint (no second copy): the browser
/// writes a small one while the engine is built, and the write comes back to be
/// waited on; a big one that could not be streamed ([`streamed`]: storage full, or no
/// synchronous OPFS here) is written from wasm memory first (`store::put_big`), so that
/// the tab never holds a copy of all of it. Dropped from storage again if unreadable.
async fn keep_and_read(
    key: &str,
    origin: &str,
    name: &str,
    bytes: Vec<u8>,
    sha: &str,
    kept: bool,
) -> Result<(Checkpoint, Option<store::Writing>), String> {
    let mut bytes = bytes;
    let mut stored_whole = false;
    let writing = if kept {
        None
    } else if is_big(bytes.len() as u64) {
        post(&Event::Status("keeping it in browser storage…".into()));
        let (b, written) = store::put_big(key, name, bytes, sha).await;
        bytes = b;
        match written {
            Ok(()) => stored_whole = true,
            Err(e) => post(&Event::Note(e)),
        }
        None
    } else {
        match store::start_put(key, name, &bytes, sha).await {
            Ok(w) => Some(w),
            Err(e) => {
                post(&Event::Note(e));
                None
            }
        }
    };
    match Checkpoint::from_bytes(origin, name, bytes) {
        Ok(ckpt) => Ok((ckpt, writing)),
        Err(e) => {
            if let Some(w) = writing {
                let _ = w.done().await;
                let _ = store::delete(key).await;
            } else if stored_whole {
                let _ = store::delete(key).await;
            }
            Err(e.to_string())
        }
    }
}

async fn from_storage(c: &Cached) -> Result<Opened, String> {
    if let Some(opened) = from_kept_file(&c.key, &c.name).await? {
        return Ok(opened);
    }
    let (bytes, _) = store::get(&c.key)
        .await?
        .ok_or_else(|| format!("{} is no longer stored", c.name))?;
    let ckpt = Checkpoint::from_bytes(&c.name, &c.name, bytes).map_err(|e| e.to_string())?;
    Ok((c.name.clone(), ckpt, c.bytes, c.sha256.clone()))
}

/// A `.nemo`, a converted `.safetensors`, or a Hugging Face set; kept in storage in
/// the converted form (one file, whatever was selected). A converted file is kept as it
/// is, as a download is ([`converted_file`]).
async fn from_files(files: &[web_sys::File]) -> Result<(Opened, Option<store::Writing>), String> {
    if let [f] = files
        && converted(f)
    {
        return converted_file(f).await;
    }
    let mut map = BTreeMap::new();
    let mut total = 0u64;
    let backend = HOST.with(|h| h.borrow().compute.clone());
    for f in files {
        post(&Event::Status(format!("reading {}…", f.name())));
        if let Some(c) = &backend {
            judge_file(c, f, false).await?;
        }
        let b = store::read_file(f, |got| {
            post(&Event::Progress(Some((total + got.len() as u64, None))));
            Ok(())
        })
        .await?;
        total += b.len() as u64;
        map.insert(f.name(), b);
    }
    let ckpt = if map.contains_key("config.json") {
        Checkpoint::from_hf_files("selected files", map)
    } else if map.len() == 1 {
        let (name, bytes) = map.into_iter().next().expect("one file");
        Checkpoint::from_bytes(&name, &name, bytes)
    } else {
        return Err("select one file (.nemo or a converted .safetensors), or a Hugging Face set: config.json + model.safetensors (or pytorch_model.bin) + vocab.txt".into());
    }
    .map_err(|e| e.to_string())?;
    let first = files.first().map(|f| f.name()).unwrap_or_default();
    let name = format!(
        "{}.megaqa.safetensors",
        first.trim_end_matches(".safetensors")
    );
    let bytes = ckpt.to_converted_bytes(false).map_err(|e| e.to_string())?;
    let sha = store::sha256_hex(&bytes).await;
    let key = store::local_key(&name, &sha);
    if let Err(e) = store::put(&key, &name, &bytes, sha.clone()).await {
        post(&Event::Note(e));
    }
    Ok(((name, ckpt, total, sha), None))
}

/// One `.safetensors` file picked: megaqa's converted form if it loads, so it is kept
/// as it is and read as a download is: a big one streamed into browser storage and
/// read from there ([`streamed`]), a small one read whole ([`keep_and_read`]).
async fn converted_file(f: &web_sys::File) -> Result<(Opened, Option<store::Writing>), String> {
    let name = f.name();
    let size = f.size() as u64;
    post(&Event::Status(format!("reading {name}…")));
    if streams(Some(size)) {
        let body = web_sys::Response::new_with_opt_blob(Some(f))
            .map_err(|_| format!("{name}: cannot read"))?;
        if let Some(opened) = streamed(None, &name, &name, &body, Some(size)).await? {
            return Ok((opened, None));
        }
    }
    let mut arrival = Arrival::new(&name, Some(size), false);
    let bytes = store::read_file(f, |got| arrival.take_new(got)).await?;
    read_whole(None, &name, &name, bytes, arrival.hashing.finish(), false).await
}

/// Builds the engine for a checkpoint (on WebGPU unless the model does not fit) and
/// makes it the one that answers.
fn install(
    origin: String,
    ckpt: Checkpoint,
    bytes: u64,
    sha256: String,
) -> Result<Rc<Engine>, String> {
    let Some(compute) = HOST.with(|h| h.borrow().compute.clone()) else {
        return Err("the backend is not ready".into());
    };
    let cfg = ckpt.config.clone();
    let largest = ckpt
        .weights
        .iter()
        .map(|(n, t)| (n.clone(), t.shape.iter().product::<usize>() as u64 * 4))
        .max_by_key(|(_, b)| *b);
    let mut device = compute.device.clone();
    let mut on_gpu = compute.max_binding.is_some();
    let mut note = None;
    if let Some((name, size)) = largest
        && let Some(why) = compute::does_not_fit(&compute, &name, size)
    {
        note = Some(format!("{why}: running it on the CPU instead."));
        device = burn::tensor::Device::flex();
        on_gpu = false;
    }
    // 16-bit weights and compute on WebGPU where the adapter has `shader-f16` (half the
    // memory and the GPU time), unless the page asked for f32; the CPU keeps f32.
    let asked = HOST.with(|h| h.borrow().f16);
    let f16 = on_gpu && compute.f16 && asked != Some(false);
    if asked == Some(true) && !f16 {
        let why = if on_gpu {
            "this WebGPU adapter has no shader-f16"
        } else {
            "the CPU backend computes in f32"
        };
        let f32_instead = format!("f16 asked for, but {why}: f32.");
        note = Some(match note {
            Some(n) => format!("{n} {f32_instead}"),
            None => f32_instead,
        });
    }
    let dtype = if f16 { DType::F16 } else { DType::F32 };
    let count = |sixteen: bool| {
        ckpt.weights
            .values()
            .filter(|t| !sixteen || matches!(t.dtype, RawDType::F16 | RawDType::BF16))
            .map(|t| t.numel() as u64)
            .sum::<u64>()
    };
    let keep_16bit = !on_gpu && compute::keeps_16bit(count(false), count(true));
    let built = if keep_16bit {
        Engine::new_16bit_fingerprint_later(ckpt, device)
    } else {
        Engine::new_fingerprint_later(ckpt, device, dtype)
    };
    let (mut engine, fingerprint) = built.map_err(|e| e.to_string())?;
    if on_gpu {
        let bucket = HOST.with(|h| h.borrow().bucket);
        engine.shapes = bucket.map_or(Shapes::GPU, |step| Shapes::Buckets { step });
    }
    post(&Event::Model(ModelInfo {
        name: origin,
        bytes,
        sha256,
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
        compute: match (f16, keep_16bit) {
            (true, _) => "f16",
            (false, true) => "f32 (weights kept in 16 bits)",
            (false, false) => "f32",
        }
        .into(),
        note,
    }));
    let engine = Rc::new(engine);
    HOST.with(|h| {
        let mut h = h.borrow_mut();
        h.engine = Some(engine.clone());
        h.in_f16 = f16;
        h.model_sha256 = Some(ModelSha::Pending(fingerprint));
    });
    Ok(engine)
}

/// On WebGPU, answers the boxes' question and passage right after loading (and drops
/// the answer), so that the kernels compile (seconds on a software GPU) before the
/// first question, not in it. A question asked meanwhile waits on the same work.
async fn warm(engine: Rc<Engine>, question: &str, passage: &str) {
    let Shapes::Buckets { step } = engine.shapes else {
        post(&Event::Ready(Some("yes".into())));
        return;
    };
    post(&Event::Ready(None));
    let t0 = js_sys::Date::now();
    let (q, p) = if question.trim().is_empty() || passage.trim().is_empty() {
        ("Who designed it?", "It was designed by an engineer.")
    } else {
        (question, passage)
    };
    match engine.ask_async(q, p, BATCH).await {
        Ok(_) => post(&Event::Ready(Some(format!(
            "yes · GPU kernels compiled in {:.1} s (lengths padded to multiples of {step} tokens)",
            (js_sys::Date::now() - t0) / 1e3
        )))),
        Err(e) => {
            // Questions still run (and compile on first use); say why it is slow.
            post(&Event::Ready(Some(format!(
                "yes, but compiling ahead failed: {e}"
            ))));
            post(&Event::Error(Some(format!("warming up the GPU: {e}"))));
        }
    }
}

async fn ask(question: String, passage: String, use_documents: bool) {
    let (engine, library) = HOST.with(|h| {
        let h = h.borrow();
        (h.engine.clone(), h.library.clone())
    });
    let library = library.filter(|_| use_documents);
    let refused = if engine.is_none() {
        Some("load a model first")
    } else if question.trim().is_empty() || (library.is_none() && passage.trim().is_empty()) {
        Some("type a passage and a question")
    } else {
        None
    };
    let (Some(engine), None) = (engine, refused) else {
        post(&Event::Error(refused.map(String::from)));
        post(&Event::Busy(false));
        return;
    };
    post(&Event::Busy(true));
    post(&Event::Error(None));
    let answered = match &library {
        None => engine
            .ask_async(&question, &passage, BATCH)
            .await
            .map_err(|e| e.to_string())
            .map(|a| {
                let s = shown(&passage, &a);
                (passage.clone(), a, s)
            }),
        Some(lib) => ask_documents(&engine, lib, &question).await,
    };
    match answered {
        Ok((context, a, shown)) => {
            let mut r = QuestionResult::new(None, &question, &context, &a);
            r.context = Some(context);
            let session = HOST.with(|h| {
                let mut h = h.borrow_mut();
                h.session.push(r);
                h.session.len()
            });
            post(&Event::Answer { shown, session });
        }
        Err(e) => post(&Event::Error(Some(e))),
    }
    post(&Event::Busy(false));
}

/// What the page shows of an answer read from `passage`.
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

async fn read_documents(files: Vec<web_sys::File>) {
    post(&Event::Error(None));
    let mut read = Vec::new();
    for f in &files {
        match store::read_file(f, |_| Ok(())).await {
            Ok(b) => read.push((f.name(), b)),
            Err(e) => return post(&Event::Error(Some(e))),
        }
    }
    install_documents(&read, true).await;
}

/// Indexes documents and makes them what questions search (`keep`: store them too).
async fn install_documents(files: &[(String, Vec<u8>)], keep: bool) {
    match documents::index(files) {
        Ok(ix) => {
            HOST.with(|h| h.borrow_mut().library = Some(Rc::new(ix.library)));
            post(&Event::Documents(Some(ix.summary)));
            if keep && let Err(e) = documents::keep(files).await {
                post(&Event::Note(e));
            }
        }
        Err(e) => post(&Event::Error(Some(e))),
    }
}

/// The session as a megaqa results file, for `megaqa parity --against`.
fn export() {
    let file = HOST.with(|h| {
        let mut h = h.borrow_mut();
        h.engine.as_ref()?;
        // Asked before the idle fingerprint is done: the rest now.
        step_fingerprint(&mut h, usize::MAX);
        let model_sha256 = match &h.model_sha256 {
            Some(ModelSha::Done(digest)) => digest.clone(),
            Some(ModelSha::Failed(e)) => return Some(Err(e.clone())),
            _ => return None,
        };
        let compute = h.compute.as_ref()?;
        // A 16-bit session is compared with `megaqa parity --precision f16`.
        let backend = format!("{}{}", compute.label(), if h.in_f16 { ", f16" } else { "" });
        Some(Ok(ResultsFile::new(
            &model_sha256,
            &backend,
            h.session.clone(),
        )))
    });
    let file = match file {
        Some(Ok(file)) => file,
        Some(Err(e)) => {
            let e = format!("the model's fingerprint could not be computed ({e}): no export");
            return post(&Event::Error(Some(e)));
        }
        None => return post(&Event::Error(Some("nothing to export yet".into()))),
    };
    match serde_json::to_string_pretty(&file) {
        Ok(text) => post(&Event::Export(text)),
        Err(e) => post(&Event::Error(Some(e.to_string()))),
    }
}
