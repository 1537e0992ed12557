//! Files in the browser: fetched with progress, read from local files, and kept in
//! the Cache API so that a reload works offline: models in `megaqa-models` (in
//! megaqa's converted form: one file of weights, config and vocab), the user's
//! documents in `megaqa-documents`.

use js_sys::{Array, Uint8Array};
use sha2::{Digest, Sha256};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Cache, Headers, Request, Response, ResponseInit};

/// Where models are kept.
pub const MODELS: &str = "megaqa-models";
/// Where the documents to ask are kept.
pub const DOCUMENTS: &str = "megaqa-documents";

pub use crate::protocol::Cached;

/// `name` on the global object: the worker's `self` or the page's `window`, which both
/// have `caches`, `crypto` and `fetch` (the engine runs in a worker; tests in a page).
fn global(name: &str) -> Result<JsValue, String> {
    js_sys::Reflect::get(&js_sys::global(), &name.into())
        .ok()
        .filter(|v| !v.is_undefined())
        .ok_or_else(|| format!("this browser has no {name} here"))
}

/// `target.method(args)`, reached by name through `Reflect`: the web-sys bindings for
/// streams' controllers and readers and for OPFS are features that would rebuild the
/// Burn stack for wasm.
fn call(target: &JsValue, method: &str, args: &[&JsValue]) -> Result<JsValue, JsValue> {
    let f: js_sys::Function = js_sys::Reflect::get(target, &method.into())?.dyn_into()?;
    f.apply(target, &args.iter().copied().collect::<Array>())
}

fn js_err(what: &str, e: JsValue) -> String {
    let detail = e
        .as_string()
        .or_else(|| {
            e.dyn_ref::<js_sys::Error>()
                .map(|e| String::from(e.message()))
        })
        .unwrap_or_else(|| format!("{e:?}"));
    format!("{what}: {detail}")
}

/// sha256 of `bytes`, by the browser's SubtleCrypto where it has one (native speed, off
/// the page's thread: sha2 in wasm took ~0.25 s of the page's time for a 46 MB model),
/// else by sha2 (pages served over plain http from another host have no SubtleCrypto).
pub async fn sha256_hex(bytes: &[u8]) -> String {
    let subtle = global("crypto")
        .ok()
        .map(|c| c.unchecked_into::<web_sys::Crypto>().subtle())
        .filter(|s| !JsValue::from(s).is_undefined());
    if let Some(subtle) = subtle
        && let Ok(promise) = subtle.digest_with_str_and_u8_array("SHA-256", bytes)
        && let Ok(digest) = JsFuture::from(promise).await
    {
        let digest = Uint8Array::new(&digest).to_vec();
        return digest.iter().map(|b| format!("{b:02x}")).collect();
    }
    format!("{:x}", Sha256::digest(bytes))
}

async fn open_cache(name: &str) -> Result<Cache, String> {
    let caches: web_sys::CacheStorage = global("caches")
        .map_err(|e| format!("browser storage (Cache API) is unavailable: {e}"))?
        .unchecked_into();
    let cache = JsFuture::from(caches.open(name))
        .await
        .map_err(|e| js_err("opening browser storage", e))?;
    Ok(cache.unchecked_into())
}

/// The cache key of a model: its URL for fetched models, a local path otherwise.
pub fn local_key(name: &str, sha256: &str) -> String {
    format!("./megaqa-local/{}/{}", &sha256[..16], name)
}

/// Keeps `bytes` under `key`, with its name, size and sha256 (of `bytes`, which the
/// caller has already computed) in the headers.
pub async fn put(key: &str, name: &str, bytes: &[u8], sha: String) -> Result<Cached, String> {
    put_in(MODELS, key, name, bytes, sha).await
}

/// [`put`] into the cache named `store`.
pub async fn put_in(
    store: &str,
    key: &str,
    name: &str,
    bytes: &[u8],
    sha: String,
) -> Result<Cached, String> {
    start_put_in(store, key, name, bytes, &sha)
        .await?
        .done()
        .await?;
    Ok(Cached {
        key: key.into(),
        name: name.into(),
        bytes: bytes.len() as u64,
        sha256: sha,
    })
}

/// A write the browser is doing: it has the bytes and writes them off this thread,
/// while the caller goes on (builds the engine); [`Writing::done`] says how it ended.
#[derive(Clone)]
pub struct Writing(js_sys::Promise);

impl Writing {
    pub async fn done(self) -> Result<(), String> {
        JsFuture::from(self.0)
            .await
            .map(|_| ())
            .map_err(|e| js_err("saving in browser storage (is it full?)", e))
    }
}

/// Hands `bytes` to the browser to keep under `key` in the models' cache, as [`put`]
/// does, without waiting for the write.
pub async fn start_put(key: &str, name: &str, bytes: &[u8], sha: &str) -> Result<Writing, String> {
    start_put_in(MODELS, key, name, bytes, sha).await
}

async fn start_put_in(
    store: &str,
    key: &str,
    name: &str,
    bytes: &[u8],
    sha: &str,
) -> Result<Writing, String> {
    let cache = open_cache(store).await?;
    let body = Uint8Array::from(bytes);
    let response =
        Response::new_with_opt_buffer_source_and_init(Some(&body), &entry(name, sha, bytes)?)
            .map_err(|e| js_err("response", e))?;
    Ok(Writing(cache.put_with_str(key, &response)))
}

/// The headers a kept model carries: its name, sha256 and size.
fn entry(name: &str, sha: &str, bytes: &[u8]) -> Result<ResponseInit, String> {
    with_headers(&[
        ("x-megaqa-name", name),
        ("x-megaqa-sha256", sha),
        ("content-length", &bytes.len().to_string()),
        ("content-type", "application/octet-stream"),
    ])
}

/// A `Response`'s init with these headers.
fn with_headers(pairs: &[(&str, &str)]) -> Result<ResponseInit, String> {
    let headers = Headers::new().map_err(|e| js_err("headers", e))?;
    for (k, v) in pairs {
        headers.set(k, v).map_err(|e| js_err("headers", e))?;
    }
    let init = ResponseInit::new();
    init.set_headers(&headers);
    Ok(init)
}

/// Keeps a big model under `key`: its bytes in a file of the origin's private file
/// system (OPFS), written synchronously straight from wasm memory, and a bodiless entry
/// in the models' cache naming that file (so `list`, `get` and `delete` see it like
/// any other). Where this context has no synchronous OPFS access (a page: only
/// dedicated workers, the engine's home, have it), it falls back to
/// [`put_in_pieces`]. Why not always the Cache API: a `Response` body takes each
/// piece as a new JS buffer that only the garbage collector frees, and the tab held
/// up to ~90 MB of them at once for a 669 MB model (and headless Chromium's in-memory
/// storage refused a file that big there). The bytes come back with how the write
/// ended.
pub async fn put_big(
    key: &str,
    name: &str,
    bytes: Vec<u8>,
    sha: &str,
) -> (Vec<u8>, Result<(), String>) {
    if !opfs::writable_here() {
        return put_in_pieces(key, name, bytes, sha).await;
    }
    let file = opfs::file_name(key);
    let written = async {
        opfs::write(&file, &bytes)
            .await
            .map_err(|e| js_err("saving in browser storage (is it full?)", e))?;
        mark_kept(key, name, sha, bytes.len() as u64, &file).await
    }
    .await;
    if written.is_err() {
        let _ = opfs::remove(&file).await;
    }
    (bytes, written)
}

/// The models' cache entry for a model whose bytes are in the OPFS file `file`: a
/// bodiless response with its name, sha256 and size. An entry it replaces that named
/// another file has that file removed.
async fn mark_kept(key: &str, name: &str, sha: &str, len: u64, file: &str) -> Result<(), String> {
    let init = with_headers(&[
        ("x-megaqa-name", name),
        ("x-megaqa-sha256", sha),
        ("x-megaqa-bytes", &len.to_string()),
        (opfs::HEADER, file),
    ])?;
    let marker =
        Response::new_with_opt_str_and_init(None, &init).map_err(|e| js_err("response", e))?;
    let cache = open_cache(MODELS).await?;
    if let Ok(found) = JsFuture::from(cache.match_with_str(key)).await
        && let Some(before) = found.dyn_ref::<Response>()
        && let Ok(Some(old)) = before.headers().get(opfs::HEADER)
        && old != file
    {
        let _ = opfs::remove(&old).await;
    }
    JsFuture::from(cache.put_with_str(key, &marker))
        .await
        .map_err(|e| js_err("saving in browser storage", e))?;
    Ok(())
}

/// How streaming a model into browser storage failed: reading it (the download broke,
/// or `check` refused it), or keeping it (storage is full or unavailable: it can still
/// be read into memory instead).
pub enum Streamed {
    Read(String),
    Storage(String),
}

/// A big model's body streamed into a new OPFS file as it arrives, never held whole in
/// wasm memory: each chunk is written from the browser's own buffer, and `check(chunk)`
/// sees its bytes (copied into wasm memory one chunk at a time: the hash and the
/// header's judgment), first with none. Returns the file and its size, for
/// [`keep_file`]; the file is removed if anything fails.
pub async fn stream_to_opfs(
    response: &Response,
    what: &str,
    mut check: impl FnMut(&[u8]) -> Result<(), String>,
) -> Result<(String, u64), Streamed> {
    check_first(response, &mut check).map_err(Streamed::Read)?;
    // Named before the sha256 a picked file is kept under is known; the cache entry
    // names the file.
    let file = opfs::file_name(&format!("{what}#{}", js_sys::Date::now()));
    let full = |e| Streamed::Storage(js_err("saving in browser storage (is it full?)", e));
    let writer = opfs::Writer::create(&file).await.map_err(full)?;
    let mut chunk = Vec::new();
    let mut storage_failed = None;
    let read = read_chunks(response, what, |part| {
        if let Err(e) = writer.append(part) {
            storage_failed = Some(e);
            return Err("storage".into());
        }
        chunk.resize(part.length() as usize, 0);
        part.copy_to(&mut chunk);
        check(&chunk)
    })
    .await;
    let written = match (read, storage_failed, writer.finish()) {
        (_, Some(e), _) | (Ok(()), None, Err(e)) => Err(full(e)),
        (Err(e), None, _) => Err(Streamed::Read(e)),
        (Ok(()), None, Ok(len)) => Ok((file.clone(), len)),
    };
    if written.is_err() {
        let _ = opfs::remove(&file).await;
    }
    written
}

/// Keeps the OPFS `file` ([`stream_to_opfs`]) under `key`; the file is removed if the
/// entry cannot be written.
pub async fn keep_file(
    key: &str,
    name: &str,
    sha: &str,
    len: u64,
    file: &str,
) -> Result<(), String> {
    let kept = mark_kept(key, name, sha, len, file).await;
    if kept.is_err() {
        let _ = opfs::remove(file).await;
    }
    kept
}

/// A model kept in an OPFS file under `key`, opened for reading where it lies (each
/// tensor when it is needed): the reader, the size and the sha256 stored beside it.
/// `None` when the entry is not in OPFS (or this context cannot read OPFS files
/// synchronously): [`get`] reads it whole.
pub async fn kept_file(key: &str) -> Option<(opfs::Reader, u64, Option<String>)> {
    if !opfs::writable_here() {
        return None;
    }
    let cache = open_cache(MODELS).await.ok()?;
    let found = JsFuture::from(cache.match_with_str(key)).await.ok()?;
    let response: &Response = found.dyn_ref()?;
    let header = |k: &str| response.headers().get(k).ok().flatten();
    let file = header(opfs::HEADER)?;
    let sha = header("x-megaqa-sha256").filter(|s| !s.is_empty());
    let (reader, len) = opfs::Reader::open(&file).await.ok()?;
    Some((reader, len, sha))
}

/// [`put`] for a big model: the browser pulls the bytes from wasm memory 8 MB at a
/// time (a `ReadableStream` body) instead of taking a copy of all of them, and the
/// write is waited for, so that the bytes go on to build the network only once it
/// is done; they come back with how the write ended.
pub async fn put_in_pieces(
    key: &str,
    name: &str,
    bytes: Vec<u8>,
    sha: &str,
) -> (Vec<u8>, Result<(), String>) {
    use std::rc::Rc;
    use wasm_bindgen::closure::Closure;
    const PIECE: usize = 8 << 20;
    let bytes = Rc::new(bytes);
    let pull = {
        let (bytes, mut at) = (bytes.clone(), 0);
        Closure::<dyn FnMut(JsValue)>::new(move |controller: JsValue| {
            let end = (at + PIECE).min(bytes.len());
            let _ = if at < end {
                call(
                    &controller,
                    "enqueue",
                    &[&Uint8Array::from(&bytes[at..end])],
                )
            } else {
                call(&controller, "close", &[])
            };
            at = end;
        })
    };
    let written = async {
        let cache = open_cache(MODELS).await?;
        let source = js_sys::Object::new();
        js_sys::Reflect::set(&source, &"pull".into(), pull.as_ref())
            .map_err(|e| js_err("stream", e))?;
        let class: js_sys::Function = global("ReadableStream")?.unchecked_into();
        let stream = js_sys::Reflect::construct(&class, &Array::of1(&source))
            .map_err(|e| js_err("stream", e))?;
        let response = Response::new_with_opt_readable_stream_and_init(
            Some(&stream.unchecked_into()),
            &entry(name, sha, &bytes)?,
        )
        .map_err(|e| js_err("response", e))?;
        Writing(cache.put_with_str(key, &response)).done().await
    }
    .await;
    // The stream is done with (written, or failed): its closure goes, and with it the
    // only other hold on the bytes.
    drop(pull);
    let bytes = Rc::try_unwrap(bytes).unwrap_or_else(|shared| (*shared).clone());
    (bytes, written)
}

/// The bytes kept under `key`, if any, with the sha256 [`put`] stored beside them
/// (if the entry has one): hashing a model again costs the page ~0.3 s.
pub async fn get(key: &str) -> Result<Option<(Vec<u8>, Option<String>)>, String> {
    get_in(MODELS, key).await
}

/// [`get`] from the cache named `store`.
pub async fn get_in(store: &str, key: &str) -> Result<Option<(Vec<u8>, Option<String>)>, String> {
    let cache = open_cache(store).await?;
    let found = JsFuture::from(cache.match_with_str(key))
        .await
        .map_err(|e| js_err("reading browser storage", e))?;
    if found.is_undefined() {
        return Ok(None);
    }
    let response: Response = found.unchecked_into();
    let header = |k: &str| response.headers().get(k).ok().flatten();
    let sha = header("x-megaqa-sha256").filter(|s| !s.is_empty());
    let what = format!("{key} in browser storage");
    let bytes = match header(opfs::HEADER) {
        // A big model's bytes are in OPFS; gone from there (storage cleared), it is
        // downloaded again.
        Some(file) => match opfs::file(&file).await {
            Some(f) => {
                let body = Response::new_with_opt_blob(Some(&f)).map_err(|e| js_err(&what, e))?;
                read_body(&body, &what, Some(f.size() as u64), |_| Ok(())).await?
            }
            None => return Ok(None),
        },
        None => read_body(&response, &what, None, |_| Ok(())).await?,
    };
    Ok(Some((bytes, sha)))
}

/// Whether a model is kept under `key`, without reading it.
pub async fn has(key: &str) -> bool {
    let Ok(cache) = open_cache(MODELS).await else {
        return false;
    };
    JsFuture::from(cache.match_with_str(key))
        .await
        .is_ok_and(|found| !found.is_undefined())
}

/// `url` made absolute against this context's location: what a cache key is once kept
/// (`Cached::key`), where a model's URL may be relative.
pub fn absolute(url: &str) -> String {
    js_sys::Reflect::get(&js_sys::global(), &"location".into())
        .and_then(|l| js_sys::Reflect::get(&l, &"href".into()))
        .ok()
        .and_then(|base| base.as_string())
        .and_then(|base| web_sys::Url::new_with_base(url, &base).ok())
        .map_or_else(|| url.to_string(), |u| u.href())
}

/// Every model kept, with its size and sha256.
pub async fn list() -> Result<Vec<Cached>, String> {
    list_in(MODELS).await
}

/// Everything kept in the cache named `store`.
pub async fn list_in(store: &str) -> Result<Vec<Cached>, String> {
    let cache = open_cache(store).await?;
    let keys: Array = JsFuture::from(cache.keys())
        .await
        .map_err(|e| js_err("listing browser storage", e))?
        .unchecked_into();
    let mut out = Vec::new();
    for request in keys.iter() {
        let request: Request = request.unchecked_into();
        let found = JsFuture::from(cache.match_with_request(&request))
            .await
            .map_err(|e| js_err("listing browser storage", e))?;
        if found.is_undefined() {
            continue;
        }
        let response: Response = found.unchecked_into();
        let h = response.headers();
        let get = |k: &str| h.get(k).ok().flatten().unwrap_or_default();
        out.push(Cached {
            key: request.url(),
            name: get("x-megaqa-name"),
            bytes: get("x-megaqa-bytes")
                .parse()
                .or_else(|_| get("content-length").parse())
                .unwrap_or(0),
            sha256: get("x-megaqa-sha256"),
        });
    }
    Ok(out)
}

pub async fn delete(key: &str) -> Result<(), String> {
    delete_in(MODELS, key).await
}

pub async fn delete_in(store: &str, key: &str) -> Result<(), String> {
    let cache = open_cache(store).await?;
    if let Ok(found) = JsFuture::from(cache.match_with_str(key)).await
        && let Some(response) = found.dyn_ref::<Response>()
        && let Ok(Some(file)) = response.headers().get(opfs::HEADER)
    {
        opfs::remove(&file)
            .await
            .map_err(|e| js_err("deleting from browser storage", e))?;
    }
    JsFuture::from(cache.delete_with_str(key))
        .await
        .map_err(|e| js_err("deleting from browser storage", e))?;
    Ok(())
}

/// Downloads `url`, calling `progress(received so far, total)` as bytes arrive; an
/// error from `progress` stops the download with that error.
pub async fn fetch_with_progress(
    url: &str,
    mut progress: impl FnMut(&[u8], Option<u64>) -> Result<(), String>,
) -> Result<Vec<u8>, String> {
    let response = fetch(url).await?;
    let total = content_length(&response);
    read_body(&response, url, None, |got| progress(got, total)).await
}

/// `url` requested: its response once the server answered, before the body is read.
pub async fn fetch(url: &str) -> Result<Response, String> {
    let fetch: js_sys::Function = global("fetch")?.unchecked_into();
    let started = fetch
        .call1(&js_sys::global(), &url.into())
        .map_err(|e| js_err(&format!("{url}: download failed"), e))?;
    let response: Response = JsFuture::from(js_sys::Promise::from(started))
        .await
        .map_err(|e| js_err(&format!("{url}: download failed (offline?)"), e))?
        .unchecked_into();
    if !response.ok() {
        return Err(format!(
            "{url}: the server answered {} {}",
            response.status(),
            response.status_text()
        ));
    }
    Ok(response)
}

/// The size the response's headers state.
pub fn content_length(response: &Response) -> Option<u64> {
    response
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|v| v.parse::<u64>().ok())
}

/// A response's body into wasm memory a chunk at a time, as it arrives: never a copy of
/// all of it outside (`array_buffer()` would make one, 669 MB for a 345M model in
/// f16). `check(received so far)` runs first with nothing and after each chunk; its
/// error cancels the stream and is returned.
pub async fn read_body(
    response: &Response,
    what: &str,
    size: Option<u64>,
    mut check: impl FnMut(&[u8]) -> Result<(), String>,
) -> Result<Vec<u8>, String> {
    // Judged before anything is reserved: a size past wasm's memory must not abort here.
    check_first(response, &mut check)?;
    // Reserved whole when the size is known (`size`, else the Content-Length): grown by
    // doubling instead, a 669 MB body held 1.5 GB for a moment.
    let size = size.or_else(|| content_length(response));
    let mut bytes = Vec::with_capacity(size.unwrap_or(0) as usize);
    read_chunks(response, what, |part| {
        // Straight from the chunk into the buffer: one copy, not two.
        let at = bytes.len();
        bytes.resize(at + part.length() as usize, 0);
        part.copy_to(&mut bytes[at..]);
        check(&bytes)
    })
    .await?;
    Ok(bytes)
}

/// `check` run with no bytes yet (the size alone judged) before a body is read; its
/// error cancels the body.
fn check_first(
    response: &Response,
    check: &mut impl FnMut(&[u8]) -> Result<(), String>,
) -> Result<(), String> {
    check(&[]).inspect_err(|_| {
        if let Some(body) = response.body() {
            let _ = call(&body, "cancel", &[]);
        }
    })
}

/// Hands each chunk of a response's body to `each` as it arrives (a JS array, in no
/// particular buffer: `each` copies what it keeps); an error from `each` cancels the
/// stream and is returned.
async fn read_chunks(
    response: &Response,
    what: &str,
    mut each: impl FnMut(&Uint8Array) -> Result<(), String>,
) -> Result<(), String> {
    use js_sys::Reflect;
    /// What a BYOB reader fills at a time.
    const PIECE: u32 = 1 << 20;
    let body = response
        .body()
        .ok_or_else(|| format!("{what}: empty body"))?;
    // A BYOB ("bring your own buffer") reader fills one buffer again and again, handed
    // back and forth, where the default reader makes a new one per chunk that only the
    // garbage collector frees: the tab's memory rose by up to 450 MB over the file's
    // while a 669 MB model downloaded. Bodies that are not byte streams get the default.
    let options = js_sys::Object::new();
    let _ = Reflect::set(&options, &"mode".into(), &"byob".into());
    let byob = call(&body, "getReader", &[&options]).ok();
    let mut view = byob
        .as_ref()
        .map(|_| Uint8Array::new(&js_sys::ArrayBuffer::new(PIECE)));
    let reader: JsValue = match byob {
        Some(r) => r,
        None => body.get_reader().into(),
    };
    let interrupted = |e| js_err(&format!("{what}: reading interrupted"), e);
    loop {
        let read = call(
            &reader,
            "read",
            view.as_ref().map(|v| v.as_ref()).as_slice(),
        )
        .map_err(interrupted)?;
        let chunk = JsFuture::from(js_sys::Promise::from(read))
            .await
            .map_err(interrupted)?;
        let done = Reflect::get(&chunk, &"done".into())
            .map(|d| d.is_truthy())
            .unwrap_or(true);
        if done {
            return Ok(());
        }
        let value = Reflect::get(&chunk, &"value".into()).map_err(|e| js_err(what, e))?;
        let part: Uint8Array = value.unchecked_into();
        if let Err(e) = each(&part) {
            let _ = call(&reader, "cancel", &[]);
            return Err(e);
        }
        if view.is_some() {
            // The buffer comes back (moved) with the chunk: fill it again.
            view = Some(Uint8Array::new_with_byte_offset_and_length(
                &part.buffer(),
                0,
                PIECE,
            ));
        }
    }
}

/// The first `n` bytes of a local file (all of it if shorter).
pub async fn read_head(file: &web_sys::File, n: i32) -> Result<Vec<u8>, String> {
    let cannot = |e| js_err(&format!("{}: cannot read", file.name()), e);
    let head = file.slice_with_i32_and_i32(0, n).map_err(cannot)?;
    let buf = JsFuture::from(head.array_buffer()).await.map_err(cannot)?;
    Ok(Uint8Array::new(&buf).to_vec())
}

/// The bytes of a local file, streamed into wasm memory a chunk at a time (its
/// `arrayBuffer()` would hold a whole copy outside it too); `check(read so far)` runs
/// after each chunk, as in [`fetch_with_progress`].
pub async fn read_file(
    file: &web_sys::File,
    check: impl FnMut(&[u8]) -> Result<(), String>,
) -> Result<Vec<u8>, String> {
    let what = file.name();
    let body = Response::new_with_opt_blob(Some(file))
        .map_err(|e| js_err(&format!("{what}: cannot read"), e))?;
    read_body(&body, &what, Some(file.size() as u64), check).await
}

/// The origin private file system (OPFS), for big models: reached through `Reflect`
/// (web-sys's bindings for it are features that would rebuild the Burn stack for wasm).
pub(crate) mod opfs {
    use js_sys::{Object, Promise, Reflect, Uint8Array};
    use sha2::{Digest, Sha256};

    use super::call;
    use wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_futures::JsFuture;

    /// The models' cache entry header naming the OPFS file that holds the bytes.
    pub const HEADER: &str = "x-megaqa-opfs";

    /// What one synchronous write takes from wasm memory at a time.
    const PIECE: usize = 8 << 20;

    /// The file for a cache key: a hash of it, so that any URL gives a valid name.
    pub fn file_name(key: &str) -> String {
        format!("model-{:x}.safetensors", Sha256::digest(key.as_bytes()))
    }

    /// Whether this context can write OPFS files synchronously (dedicated workers).
    pub fn writable_here() -> bool {
        Reflect::get(&js_sys::global(), &"FileSystemSyncAccessHandle".into())
            .is_ok_and(|c| !c.is_undefined())
            && directory_api().is_some()
    }

    fn directory_api() -> Option<JsValue> {
        let navigator = Reflect::get(&js_sys::global(), &"navigator".into()).ok()?;
        let storage = Reflect::get(&navigator, &"storage".into()).ok()?;
        Reflect::get(&storage, &"getDirectory".into())
            .ok()
            .filter(|f| f.is_function())
            .map(|_| storage)
    }

    /// `await target.method(args)`.
    async fn call_async(
        target: &JsValue,
        method: &str,
        args: &[&JsValue],
    ) -> Result<JsValue, JsValue> {
        JsFuture::from(Promise::from(call(target, method, args)?)).await
    }

    async fn directory() -> Result<JsValue, JsValue> {
        let storage = directory_api().ok_or_else(|| JsValue::from_str("no OPFS here"))?;
        call_async(&storage, "getDirectory", &[]).await
    }

    fn options(key: &str, value: JsValue) -> JsValue {
        let o = Object::new();
        let _ = Reflect::set(&o, &key.into(), &value);
        o.into()
    }

    /// Writes `bytes` as the whole of `file`, from wasm memory, a piece at a time.
    pub async fn write(file: &str, bytes: &[u8]) -> Result<(), JsValue> {
        let writer = Writer::create(file).await?;
        let written = bytes.chunks(PIECE).try_for_each(|piece| {
            // SAFETY: a view of wasm memory, used by the synchronous write at once;
            // `append` allocates nothing in wasm memory before it (only JS objects),
            // so the memory cannot grow and move under the view.
            writer.append(&unsafe { Uint8Array::view(piece) })
        });
        // The handle locks the file until closed: closed whatever happened.
        let finished = writer.finish();
        written.and(finished.map(|_| ()))
    }

    /// `file`'s synchronous access handle (created first if `create`), which locks the
    /// file until closed.
    async fn sync_access(file: &str, create: bool) -> Result<JsValue, JsValue> {
        let dir = directory().await?;
        let create = options("create", create.into());
        let handle = call_async(&dir, "getFileHandle", &[&file.into(), &create]).await?;
        call_async(&handle, "createSyncAccessHandle", &[]).await
    }

    /// An OPFS file written piece by piece through a synchronous access handle (which
    /// locks the file until [`Writer::finish`]).
    pub struct Writer {
        access: JsValue,
        at: std::cell::Cell<u64>,
    }

    impl Writer {
        pub async fn create(file: &str) -> Result<Self, JsValue> {
            let access = sync_access(file, true).await?;
            if let Err(e) = call(&access, "truncate", &[&0.into()]) {
                let _ = call(&access, "close", &[]);
                return Err(e);
            }
            Ok(Self {
                access,
                at: std::cell::Cell::new(0),
            })
        }

        /// Writes `part` (a JS array: no copy through wasm memory) after what is written.
        pub fn append(&self, part: &Uint8Array) -> Result<(), JsValue> {
            let at = options("at", (self.at.get() as f64).into());
            let n = call(&self.access, "write", &[part.as_ref(), &at])?;
            if n.as_f64() != Some(part.length() as f64) {
                return Err(JsValue::from_str(
                    "the write stopped short (is storage full?)",
                ));
            }
            self.at.set(self.at.get() + part.length() as u64);
            Ok(())
        }

        /// Flushes and closes the file; its size.
        pub fn finish(self) -> Result<u64, JsValue> {
            let flushed = call(&self.access, "flush", &[]);
            let _ = call(&self.access, "close", &[]);
            flushed.map(|_| self.at.get())
        }
    }

    /// An OPFS file read where it lies, through a synchronous access handle (closed
    /// when the reader goes): a big model's tensors read one at a time while the
    /// network is built ([`megaqa_model::checkpoint::ByteSource`]).
    pub struct Reader {
        access: JsValue,
        file: String,
    }

    // SAFETY: `ByteSource` asks for Send + Sync, as native sources are shared across
    // threads; this wasm build has one thread (no atomics), so the JS handle is never
    // reached from another.
    unsafe impl Send for Reader {}
    unsafe impl Sync for Reader {}

    impl Reader {
        /// Opens `file` for reading, with its size.
        pub async fn open(file: &str) -> Result<(Self, u64), JsValue> {
            let reader = Self {
                access: sync_access(file, false).await?,
                file: file.into(),
            };
            // Closed by `drop` if this fails.
            let len = call(&reader.access, "getSize", &[])?
                .as_f64()
                .unwrap_or(0.0) as u64;
            Ok((reader, len))
        }
    }

    impl megaqa_model::checkpoint::ByteSource for Reader {
        fn read_at(&self, offset: u64, out: &mut [u8]) -> Result<(), String> {
            let mut done = 0;
            while done < out.len() {
                let at = options("at", ((offset + done as u64) as f64).into());
                // SAFETY: a view of the part of `out` still to fill, used by the
                // synchronous read at once, before anything could allocate (and so
                // move wasm memory).
                let view =
                    unsafe { Uint8Array::view_mut_raw(out[done..].as_mut_ptr(), out.len() - done) };
                let n = call(&self.access, "read", &[&view.into(), &at])
                    .map_err(|e| super::js_err(&format!("{} in browser storage", self.file), e))?
                    .as_f64()
                    .unwrap_or(0.0) as usize;
                if n == 0 {
                    return Err(format!(
                        "{} in browser storage ends at {} bytes, before the {} asked for at {offset}",
                        self.file,
                        offset + done as u64,
                        out.len()
                    ));
                }
                done += n;
            }
            Ok(())
        }
    }

    impl Drop for Reader {
        fn drop(&mut self) {
            let _ = call(&self.access, "close", &[]);
        }
    }

    /// `file` as a `File` (a blob the caller streams), if it exists.
    pub async fn file(name: &str) -> Option<web_sys::Blob> {
        let dir = directory().await.ok()?;
        let handle = call_async(&dir, "getFileHandle", &[&name.into()])
            .await
            .ok()?;
        call_async(&handle, "getFile", &[])
            .await
            .ok()?
            .dyn_into()
            .ok()
    }

    pub async fn remove(name: &str) -> Result<(), JsValue> {
        let dir = directory().await?;
        match call_async(&dir, "removeEntry", &[&name.into()]).await {
            // Already gone is as good as removed.
            Err(e)
                if Reflect::get(&e, &"name".into())
                    .ok()
                    .and_then(|n| n.as_string())
                    .as_deref()
                    == Some("NotFoundError") =>
            {
                Ok(())
            }
            other => other.map(|_| ()),
        }
    }
}
