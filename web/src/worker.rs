//! The megaqa engine's Web Worker: the same engine as the CLI, on WebGPU or on the CPU
//! in wasm, loading, compiling and answering away from the page's thread. The page
//! (`main.rs`) starts it from `megaqa-worker_loader.js` (trunk's loader shim) and talks
//! to it in `protocol` messages.

#[cfg(target_arch = "wasm32")]
mod compute;
#[cfg(target_arch = "wasm32")]
mod documents;
#[cfg(target_arch = "wasm32")]
mod host;
#[cfg(target_arch = "wasm32")]
mod protocol;
#[cfg(target_arch = "wasm32")]
mod store;

#[cfg(target_arch = "wasm32")]
mod scope {
    use wasm_bindgen::prelude::*;

    // The worker's global scope, bound here rather than through web-sys's
    // `DedicatedWorkerGlobalScope` feature: turning on a web-sys feature rebuilds
    // wgpu and the whole Burn stack for wasm (twice: the web profile and the tests).
    #[wasm_bindgen]
    extern "C" {
        pub type WorkerScope;
        #[wasm_bindgen(method, js_name = postMessage)]
        pub fn post_message(this: &WorkerScope, message: &JsValue);
        #[wasm_bindgen(method, setter)]
        pub fn set_onmessage(this: &WorkerScope, handler: &js_sys::Function);
    }

    pub fn get() -> WorkerScope {
        js_sys::global().unchecked_into()
    }
}

#[cfg(target_arch = "wasm32")]
fn main() {
    use wasm_bindgen::prelude::*;

    console_error_panic_hook::set_once();
    let on_message =
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(|ev: web_sys::MessageEvent| {
            let message = js_sys::Array::from(&ev.data());
            let json = message.get(0).as_string().unwrap_or_default();
            let files: Vec<web_sys::File> = js_sys::Array::from(&message.get(1))
                .iter()
                .map(|f| f.unchecked_into())
                .collect();
            match serde_json::from_str::<protocol::Request>(&json) {
                Ok(request) => host::handle(request, files),
                Err(e) => post(&protocol::Event::Error(Some(format!(
                    "the engine did not understand the page ({e}): reload the page"
                )))),
            }
        });
    scope::get().set_onmessage(on_message.as_ref().unchecked_ref());
    // The handler lives as long as the worker.
    on_message.forget();
    post(&protocol::Event::Started);
}

/// Posts an event to the page.
#[cfg(target_arch = "wasm32")]
fn post(event: &protocol::Event) {
    match serde_json::to_string(event) {
        Ok(json) => scope::get().post_message(&json.into()),
        Err(e) => web_sys::console::error_1(&format!("megaqa worker: {e}").into()),
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("megaqa-worker is the browser app's engine: build it with `trunk build --release`");
}

/// Unit tests that run in the browser (wasm-bindgen-test in headless Chromium):
/// `.ci/run` runs them with `cargo test --target wasm32-unknown-unknown -p megaqa-web`,
/// in a dedicated worker: where the engine runs, with what only workers have (OPFS's
/// synchronous files).
#[cfg(all(test, target_arch = "wasm32"))]
mod tests {
    use wasm_bindgen_test::*;

    wasm_bindgen_test_configure!(run_in_dedicated_worker);

    const DEMO: &[u8] = include_bytes!("../../assets/models/demo-tiny.megaqa.safetensors");

    #[wasm_bindgen_test]
    fn demo_model_loads_from_bytes_and_answers_on_the_cpu_backend() {
        let ckpt = megaqa::model::Checkpoint::from_bytes("demo", "demo.safetensors", DEMO.to_vec())
            .expect("the demo model reads from bytes");
        let engine =
            megaqa::Engine::new(ckpt, burn::tensor::Device::flex(), burn::tensor::DType::F32)
                .expect("engine");
        let passage = include_str!("../../assets/demo/passage.txt");
        let a = engine
            .ask("In what country is Normandy located?", passage, 8)
            .expect("answer");
        assert_eq!(a.prediction.text(), "France");
    }

    /// How the CPU fallback holds a big 16-bit model (weights kept in 16 bits, widened
    /// one matrix at a time) answers as the same file widened on load, in wasm too.
    #[wasm_bindgen_test]
    fn sixteen_bit_weights_kept_on_the_cpu_answer_as_widened_ones() {
        use megaqa::model::Checkpoint;
        let f16 = Checkpoint::from_bytes("demo", "demo.safetensors", DEMO.to_vec())
            .unwrap()
            .to_converted_bytes(true)
            .unwrap();
        let read = || Checkpoint::from_bytes("demo", "demo.f16.safetensors", f16.clone()).unwrap();
        let device = burn::tensor::Device::flex();
        let kept = megaqa::Engine::new_16bit(read(), device.clone()).unwrap();
        let widened = megaqa::Engine::new(read(), device, burn::tensor::DType::F32).unwrap();
        let passage = include_str!("../../assets/demo/passage.txt");
        let q = "In what country is Normandy located?";
        let (a, b) = (
            kept.ask(q, passage, 8).unwrap(),
            widened.ask(q, passage, 8).unwrap(),
        );
        assert_eq!(a.prediction.text(), "France");
        assert_eq!(a.logits, b.logits);
    }

    /// What the page's file picker hands over: a `.nemo`, or a Hugging Face set.
    #[wasm_bindgen_test]
    fn nemo_and_hugging_face_files_load_from_bytes_alike() {
        let dir = "../../tests/fixtures/models/megatron-tiny";
        let nemo = include_bytes!("../../tests/fixtures/models/megatron-tiny.nemo").to_vec();
        let hf = std::collections::BTreeMap::from([
            (
                "config.json".to_string(),
                include_bytes!("../../tests/fixtures/models/megatron-tiny/config.json").to_vec(),
            ),
            (
                "model.safetensors".to_string(),
                include_bytes!("../../tests/fixtures/models/megatron-tiny/model.safetensors")
                    .to_vec(),
            ),
            (
                "vocab.txt".to_string(),
                include_bytes!("../../tests/fixtures/models/megatron-tiny/vocab.txt").to_vec(),
            ),
        ]);
        let a = megaqa::model::Checkpoint::from_bytes("t.nemo", "t.nemo", nemo)
            .expect(".nemo from bytes");
        let b = megaqa::model::Checkpoint::from_hf_files(dir, hf).expect("HF files from bytes");
        let run = |c| {
            let e = megaqa::Engine::new(c, burn::tensor::Device::flex(), burn::tensor::DType::F32)
                .unwrap();
            e.ask(
                "Where is Normandy?",
                "The Normans gave their name to Normandy, a region in France.",
                8,
            )
            .unwrap()
        };
        let (x, y) = (run(a), run(b));
        assert_eq!(x.prediction.text(), y.prediction.text());
        let d = x.logits[0]
            .0
            .iter()
            .zip(&y.logits[0].0)
            .map(|(p, q)| (p - q).abs())
            .fold(0f32, f32::max);
        assert!(d < 1e-5, "max |d| {d}");
    }

    #[wasm_bindgen_test]
    fn a_model_larger_than_the_adapter_allows_is_refused_with_its_sizes() {
        let mut c = crate::compute::Compute::cpu(None);
        assert!(crate::compute::does_not_fit(&c, "embeddings.word", 1 << 30).is_none());
        c.max_binding = Some(128 << 20);
        let why = crate::compute::does_not_fit(&c, "embeddings.word", 256 << 20).unwrap();
        assert!(
            why.contains("embeddings.word") && why.contains("268.4 MB") && why.contains("134.2 MB"),
            "{why}"
        );
        assert!(crate::compute::does_not_fit(&c, "qa.weight", 1024).is_none());
    }

    /// A model is judged from its file's first bytes: one that would not fit in the
    /// tab's wasm memory is refused with what it needs, before the rest downloads.
    #[wasm_bindgen_test]
    fn a_model_too_big_for_the_tabs_memory_is_refused_from_its_header() {
        use crate::compute::{Compute, judge_head, keeps_16bit};
        // A header of `n` tensors of `values` each, of `dtype` (2 or 4 bytes a value).
        let heads = |n: u64, values: u64, dtype: &str| {
            let size = if dtype == "F32" { 4 } else { 2 };
            let entries: Vec<String> = (0..n)
                .map(|i| {
                    let at = i * values * size;
                    format!(
                        r#""w{i}":{{"dtype":"{dtype}","shape":[{values}],"data_offsets":[{at},{}]}}"#,
                        at + values * size
                    )
                })
                .collect();
            let h = format!("{{{}}}", entries.join(","));
            let mut b = (h.len() as u64).to_le_bytes().to_vec();
            b.extend(h.as_bytes());
            b
        };
        let head = |values: u64| heads(1, values, "F16");
        let cpu = Compute::cpu(None);
        // A 345M-parameter model in f16 fits on the CPU.
        assert_eq!(judge_head(&cpu, &head(345_000_000), None, false), Ok(true));
        // The header not all here yet: judged later.
        let big = head(1_200_000_000);
        assert_eq!(
            judge_head(&cpu, &big[..big.len() - 1], None, false),
            Ok(false)
        );
        // Big 16-bit models keep their 16 bits on the CPU (one matrix widened at a
        // time): 1.2B values in f16 need the 2400 MB file and a 400 MB matrix in f32,
        // where widening them all on load would need 5200 MB.
        assert!(keeps_16bit(1_200_000_000, 1_200_000_000));
        assert!(
            !keeps_16bit(100_000_000, 100_000_000),
            "small: f32 is faster"
        );
        assert!(!keeps_16bit(1_200_000_000, 0), "an f32 file");
        assert_eq!(
            judge_head(&cpu, &heads(12, 100_000_000, "F16"), None, false),
            Ok(true)
        );
        let why = judge_head(&cpu, &heads(20, 100_000_000, "F16"), None, false).unwrap_err();
        assert!(
            why.starts_with("it needs about 4400 MB of the tab's memory (its 4000 MB file's 16-bit weights on the CPU)"),
            "{why}"
        );
        let why = judge_head(&cpu, &heads(12, 100_000_000, "F32"), None, false).unwrap_err();
        assert!(
            why.starts_with("it needs about 5200 MB of the tab's memory (4800 MB of f32 weights on the CPU, read from its 4800 MB file)")
                && why.ends_with("more than the 4295 MB that wasm can address: use a smaller model, or a browser with WebGPU"),
            "{why}"
        );
        // A crafted header's sizes do not overflow into "fits".
        assert!(judge_head(&cpu, &head(1 << 62), None, false).is_err());
        // On WebGPU the weights go to the GPU: the file and one tensor's upload.
        let mut gpu = Compute::cpu(None);
        gpu.max_binding = Some(1 << 31);
        assert_eq!(judge_head(&gpu, &head(400_000_000), None, false), Ok(true));
        // Streamed into browser storage and read a tensor at a time, a model bigger
        // than wasm's memory goes to the GPU: only its largest tensor's upload is in
        // the tab at once. The CPU still holds all of its weights.
        let f32_file = heads(12, 100_000_000, "F32");
        assert_eq!(
            judge_head(&gpu, &[], Some(4_800_000_000), true),
            Ok(false),
            "the size alone does not refuse a streamed file"
        );
        assert_eq!(
            judge_head(&gpu, &f32_file, Some(4_800_000_000), true),
            Ok(true)
        );
        let why = judge_head(&gpu, &f32_file, Some(4_800_000_000), false).unwrap_err();
        assert!(why.starts_with("the file is 4800 MB"), "{why}");
        let why = judge_head(&cpu, &f32_file, Some(4_800_000_000), true).unwrap_err();
        assert!(
            why.starts_with("it needs about 5200 MB of the tab's memory (4800 MB of f32 weights"),
            "{why}"
        );
        // A size the server states past wasm's memory is refused before any byte.
        let why = judge_head(&cpu, &[], Some(5_000_000_000), false).unwrap_err();
        assert!(why.starts_with("the file is 5000 MB"), "{why}");
        // Not a safetensors file (a .nemo): its load says what it is.
        assert_eq!(
            judge_head(&cpu, &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3], None, false),
            Ok(true)
        );
    }

    /// Documents chosen in the page are indexed in wasm by the same retriever as the CLI.
    #[wasm_bindgen_test]
    fn documents_are_indexed_and_searched_in_the_browser() {
        let files = vec![
            (
                "bridge.txt".to_string(),
                include_bytes!("../../assets/demo/unseen-passage.txt").to_vec(),
            ),
            (
                "notes.md".to_string(),
                b"# Tea\n\nTea was grown here first.".to_vec(),
            ),
            ("photo.txt".to_string(), b"\x89PNG\0".to_vec()),
        ];
        let ix = crate::documents::index(&files).unwrap();
        assert!(
            ix.summary.starts_with("2 file(s)") && ix.summary.contains("photo.txt"),
            "{}",
            ix.summary
        );
        let hits = ix
            .library
            .search("Who designed the Larkspur Bridge?", 10)
            .unwrap();
        let p = ix.library.passages()[hits[0].passage];
        assert_eq!(ix.library.documents[p.doc as usize].name, "bridge.txt");
        assert!(ix.library.text(&p).contains("Margaret Hale"));
    }

    #[wasm_bindgen_test]
    async fn cache_api_keeps_lists_and_deletes_models() {
        let sha = crate::store::sha256_hex(b"abc").await;
        // SubtleCrypto's digest, checked against the known sha256 of "abc".
        assert_eq!(
            sha,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let key = crate::store::local_key("t.safetensors", &sha);
        let kept = crate::store::put(&key, "t.safetensors", b"abc", sha)
            .await
            .unwrap();
        assert_eq!(kept.bytes, 3);
        // The bytes come back with the sha256 kept beside them (not hashed again).
        assert_eq!(
            crate::store::get(&key).await.unwrap(),
            Some((b"abc".to_vec(), Some(kept.sha256.clone())))
        );
        assert!(
            crate::store::list()
                .await
                .unwrap()
                .iter()
                .any(|c| c.name == "t.safetensors" && c.bytes == 3)
        );
        crate::store::delete(&key).await.unwrap();
        assert!(crate::store::get(&key).await.unwrap().is_none());
    }

    /// A big model is written into an OPFS file straight from wasm memory, listed with
    /// its size, read back whole with its sha256, and its file goes with `delete`.
    #[wasm_bindgen_test]
    async fn a_big_model_is_kept_in_opfs_and_read_back_whole() {
        assert!(
            crate::store::opfs::writable_here(),
            "a worker has OPFS sync access"
        );
        let bytes: Vec<u8> = (0..(20u32 << 20) + 7).map(|i| (i % 253) as u8).collect();
        let sha = crate::store::sha256_hex(&bytes).await;
        let key = crate::store::local_key("opfs.safetensors", &sha);
        let (back, written) =
            crate::store::put_big(&key, "opfs.safetensors", bytes.clone(), &sha).await;
        written.unwrap();
        assert!(back == bytes, "the bytes handed back changed");
        let file = crate::store::opfs::file_name(&key);
        assert!(
            crate::store::opfs::file(&file).await.is_some(),
            "no OPFS file"
        );
        let listed = crate::store::list().await.unwrap();
        assert!(
            listed
                .iter()
                .any(|c| c.key.ends_with("opfs.safetensors") && c.bytes == bytes.len() as u64),
            "not listed with its size: {listed:?}"
        );
        let (read, kept_sha) = crate::store::get(&key).await.unwrap().unwrap();
        assert_eq!(kept_sha.as_deref(), Some(sha.as_str()));
        assert!(read == bytes, "the bytes read back differ");
        crate::store::delete(&key).await.unwrap();
        assert!(crate::store::get(&key).await.unwrap().is_none());
        assert!(
            crate::store::opfs::file(&file).await.is_none(),
            "the OPFS file stayed"
        );
    }

    /// A model streamed into an OPFS file as it arrives (as a big download is) is kept
    /// with its size, opened where it lies and read a tensor at a time while the
    /// network is built: it answers as the same bytes read whole; a second one kept
    /// under the same key replaces the first's file; and `delete` takes the file too.
    #[wasm_bindgen_test]
    async fn a_model_streamed_into_opfs_is_read_where_it_lies() {
        use crate::store;
        let body = |bytes: &[u8]| {
            web_sys::Response::new_with_opt_u8_array(Some(&mut bytes.to_vec())).unwrap()
        };
        let sha = store::sha256_hex(DEMO).await;
        let key = store::local_key("streamed.safetensors", &sha);
        let mut seen = 0;
        let (file, len) = store::stream_to_opfs(&body(DEMO), "streamed.safetensors", |chunk| {
            seen += chunk.len();
            Ok(())
        })
        .await
        .unwrap_or_else(|_| panic!("streaming into OPFS failed"));
        assert_eq!((len, seen), (DEMO.len() as u64, DEMO.len()));
        store::keep_file(&key, "streamed.safetensors", &sha, len, &file)
            .await
            .unwrap();
        let (reader, kept_len, kept_sha) = store::kept_file(&key).await.expect("kept in OPFS");
        assert_eq!((kept_len, kept_sha.as_deref()), (len, Some(sha.as_str())));
        let lazy =
            megaqa::model::Checkpoint::from_source("streamed", std::sync::Arc::new(reader), len)
                .unwrap();
        assert!(lazy.weights.values().all(|t| !t.is_held()));
        let whole =
            megaqa::model::Checkpoint::from_bytes("demo", "demo.safetensors", DEMO.to_vec())
                .unwrap();
        let device = burn::tensor::Device::flex();
        let (a, b) = (
            megaqa::Engine::new(lazy, device.clone(), burn::tensor::DType::F32).unwrap(),
            megaqa::Engine::new(whole, device, burn::tensor::DType::F32).unwrap(),
        );
        assert_eq!(a.model_sha256, b.model_sha256);
        let passage = include_str!("../../assets/demo/passage.txt");
        let q = "In what country is Normandy located?";
        let (x, y) = (a.ask(q, passage, 8).unwrap(), b.ask(q, passage, 8).unwrap());
        assert_eq!((x.prediction.text(), &x.logits), ("France", &y.logits));
        // The same key kept again: its entry names the new file, the old one is gone.
        let (again, _) = store::stream_to_opfs(&body(DEMO), "streamed.safetensors", |_| Ok(()))
            .await
            .unwrap_or_else(|_| panic!("streaming into OPFS failed"));
        assert_ne!(again, file);
        store::keep_file(&key, "streamed.safetensors", &sha, len, &again)
            .await
            .unwrap();
        assert!(
            store::opfs::file(&file).await.is_none(),
            "the replaced file stayed"
        );
        // A check that refuses the bytes stops the stream and leaves no file.
        let refused = store::stream_to_opfs(&body(DEMO), "refused.safetensors", |chunk| {
            if chunk.is_empty() {
                Ok(())
            } else {
                Err("refused".into())
            }
        })
        .await;
        assert!(matches!(refused, Err(store::Streamed::Read(e)) if e == "refused"));
        store::delete(&key).await.unwrap();
        assert!(store::kept_file(&key).await.is_none());
        assert!(
            store::opfs::file(&again).await.is_none(),
            "the OPFS file stayed"
        );
    }

    /// A big model is written from wasm memory in 8 MB pieces (its last one short), and
    /// its bytes come back to the caller, whole, to build the network from; reading it
    /// back, a chunk at a time, gives the same bytes.
    #[wasm_bindgen_test]
    async fn a_big_model_is_kept_in_pieces_and_read_back_whole() {
        let bytes: Vec<u8> = (0..(20u32 << 20) + 7).map(|i| (i % 251) as u8).collect();
        let sha = crate::store::sha256_hex(&bytes).await;
        let key = crate::store::local_key("big.safetensors", &sha);
        let (back, written) =
            crate::store::put_in_pieces(&key, "big.safetensors", bytes.clone(), &sha).await;
        written.unwrap();
        assert!(back == bytes, "the bytes handed back changed");
        let (read, kept_sha) = crate::store::get(&key).await.unwrap().unwrap();
        assert_eq!(kept_sha.as_deref(), Some(sha.as_str()));
        assert!(read == bytes, "the bytes read back differ");
        crate::store::delete(&key).await.unwrap();
    }
}
