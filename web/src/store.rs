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
pub struct Writing(JsFuture);

impl Writing {
    pub async fn done(self) -> Result<(), String> {
        self.0
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
    let headers = Headers::new().map_err(|e| js_err("headers", e))?;
    for (k, v) in [
        ("x-megaqa-name", name),
        ("x-megaqa-sha256", sha),
        ("content-length", &bytes.len().to_string()),
        ("content-type", "application/octet-stream"),
    ] {
        headers.set(k, v).map_err(|e| js_err("headers", e))?;
    }
    let init = ResponseInit::new();
    init.set_headers(&headers);
    let body = Uint8Array::from(bytes);
    let response = Response::new_with_opt_buffer_source_and_init(Some(&body), &init)
        .map_err(|e| js_err("response", e))?;
    Ok(Writing(JsFuture::from(cache.put_with_str(key, &response))))
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
    let sha = response
        .headers()
        .get("x-megaqa-sha256")
        .ok()
        .flatten()
        .filter(|s| !s.is_empty());
    let buf = JsFuture::from(
        response
            .array_buffer()
            .map_err(|e| js_err("reading browser storage", e))?,
    )
    .await
    .map_err(|e| js_err("reading browser storage", e))?;
    Ok(Some((Uint8Array::new(&buf).to_vec(), sha)))
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
            bytes: get("content-length").parse().unwrap_or(0),
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
    let total = response
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|v| v.parse::<u64>().ok());
    let body = response
        .body()
        .ok_or_else(|| format!("{url}: empty body"))?;
    let reader: web_sys::ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    // `progress` refusing stops the download too.
    let mut check = |got: &[u8]| {
        progress(got, total).inspect_err(|_| {
            let _ = reader.cancel();
        })
    };
    // Judged before anything is reserved: a size past wasm's memory must not abort here.
    check(&[])?;
    let mut bytes = Vec::with_capacity(total.unwrap_or(0) as usize);
    loop {
        let chunk = JsFuture::from(reader.read())
            .await
            .map_err(|e| js_err(&format!("{url}: download interrupted"), e))?;
        let done = js_sys::Reflect::get(&chunk, &"done".into())
            .map(|d| d.is_truthy())
            .unwrap_or(true);
        if done {
            break;
        }
        let value =
            js_sys::Reflect::get(&chunk, &"value".into()).map_err(|e| js_err("download", e))?;
        // Straight from the chunk into the buffer: one copy, not two.
        let part: Uint8Array = value.unchecked_into();
        let at = bytes.len();
        bytes.resize(at + part.length() as usize, 0);
        part.copy_to(&mut bytes[at..]);
        check(&bytes)?;
    }
    Ok(bytes)
}

/// The first `n` bytes of a local file (all of it if shorter).
pub async fn read_head(file: &web_sys::File, n: i32) -> Result<Vec<u8>, String> {
    let cannot = |e| js_err(&format!("{}: cannot read", file.name()), e);
    let head = file.slice_with_i32_and_i32(0, n).map_err(cannot)?;
    let buf = JsFuture::from(head.array_buffer()).await.map_err(cannot)?;
    Ok(Uint8Array::new(&buf).to_vec())
}

/// The bytes of a local file.
pub async fn read_file(file: &web_sys::File) -> Result<Vec<u8>, String> {
    let buf = JsFuture::from(file.array_buffer())
        .await
        .map_err(|e| js_err(&format!("{}: cannot read", file.name()), e))?;
    Ok(Uint8Array::new(&buf).to_vec())
}
