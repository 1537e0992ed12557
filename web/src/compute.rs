//! Where the network runs in the browser: WebGPU through Burn's wgpu backend when
//! the browser offers an adapter, else Burn's CPU backend (flex) compiled to wasm.

use burn::tensor::Device;

/// The opened backend, described for the page.
#[derive(Clone)]
pub struct Compute {
    pub device: Device,
    /// "WebGPU" or "CPU (wasm)".
    pub backend: &'static str,
    pub adapter: String,
    pub f16: bool,
    /// The largest storage buffer one binding may hold (bytes); `None` on the CPU.
    pub max_binding: Option<u64>,
    /// Why WebGPU is not used, when it is not.
    pub fallback_reason: Option<String>,
}

impl Compute {
    /// "WebGPU (SwiftShader Device)" / "CPU (wasm)": what results files record.
    pub fn label(&self) -> String {
        format!("{} ({})", self.backend, self.adapter)
    }

    /// The CPU backend.
    pub fn cpu(reason: Option<String>) -> Self {
        Self {
            device: Device::flex(),
            backend: "CPU",
            adapter: "flex, wasm".into(),
            f16: false,
            max_binding: None,
            fallback_reason: reason,
        }
    }
}

/// Opens WebGPU, falling back to the CPU with the reason when it is missing or fails.
/// `force_cpu` (the page's `?backend=cpu`) skips WebGPU.
pub async fn open(force_cpu: bool) -> Compute {
    if force_cpu {
        return Compute::cpu(Some("CPU chosen with ?backend=cpu".into()));
    }
    let has_gpu = navigator_gpu().is_some();
    if !has_gpu {
        return Compute::cpu(Some("this browser has no WebGPU (navigator.gpu)".into()));
    }
    match Device::wgpu_options().init_with_setup_async().await {
        Ok((device, setup)) => {
            let info = setup.adapter.get_info();
            let limits = setup.device.limits();
            let f16 = setup
                .device
                .features()
                .contains(burn::tensor::wgpu::wgpu::Features::SHADER_F16);
            // Browsers hide the adapter's name from wgpu; WebGPU's own `adapter.info`
            // still says vendor and architecture (e.g. "google swiftshader").
            let adapter = if info.name.is_empty() {
                browser_adapter_info()
                    .await
                    .unwrap_or_else(|| format!("{:?}", info.backend))
            } else {
                info.name.clone()
            };
            Compute {
                device,
                backend: "WebGPU",
                adapter,
                f16,
                max_binding: Some(limits.max_storage_buffer_binding_size),
                fallback_reason: None,
            }
        }
        Err(e) => {
            // The full reason goes to the console; the page gets the gist.
            web_sys::console::warn_1(&format!("megaqa: WebGPU failed to start: {e}").into());
            let text = e.to_string();
            let gist = if text.contains("No adapter") || text.contains("No suitable adapter") {
                "WebGPU offers no usable adapter here".to_string()
            } else {
                format!(
                    "WebGPU failed to start ({})",
                    text.chars().take(120).collect::<String>()
                )
            };
            Compute::cpu(Some(format!("{gist}; running on the CPU instead.")))
        }
    }
}

/// Why a model with a largest tensor of `bytes` does not fit, if it does not.
pub fn does_not_fit(c: &Compute, tensor: &str, bytes: u64) -> Option<String> {
    let max = c.max_binding?;
    (bytes > max).then(|| {
        format!(
            "the model's largest tensor ({tensor}, {:.1} MB) is larger than this WebGPU adapter allows in one buffer ({:.1} MB)",
            bytes as f64 / 1e6,
            max as f64 / 1e6
        )
    })
}

/// A tab's wasm memory: 65,536 pages of 64 KiB, all that wasm32 can address.
pub const WASM_MEMORY: u64 = 1 << 32;

/// On the CPU, a model whose weights would take more than this in f32 keeps its 16-bit
/// matrices as the file has them and widens one at a time while it is multiplied
/// (`Engine::new_16bit`): the same answers in half the memory, for more time per
/// question (measured in the README). BERT-large-sized models (1.3 GB in f32) need the
/// memory; the shipped model (91 MB in f32) answers faster widened once on load.
pub const KEEP_16BIT_OVER: u64 = 1 << 30;

/// Whether the CPU keeps a model's 16-bit matrices in 16 bits: most of its `values`
/// are 16-bit and their f32 form is over [`KEEP_16BIT_OVER`].
pub fn keeps_16bit(values: u64, values_16bit: u64) -> bool {
    values_16bit.saturating_mul(2) > values && values.saturating_mul(4) > KEEP_16BIT_OVER
}

/// Judges a model file from its first bytes and its size (where the server said it)
/// before the rest is read, so that a model too big for the tab is refused with the
/// memory it needs instead of crashing the tab: `Ok(true)` once judged to fit, or when
/// it cannot be judged (not a safetensors file: its load says what is wrong),
/// `Ok(false)` while the header is still to come. `streamed`: the file goes to browser
/// storage as it arrives and is read from there a tensor at a time, never whole in
/// wasm memory.
pub fn judge_head(
    c: &Compute,
    head: &[u8],
    size: Option<u64>,
    streamed: bool,
) -> Result<bool, String> {
    let mb = |b: u64| format!("{:.0} MB", b as f64 / 1e6);
    if let Some(size) = size.filter(|&s| s > WASM_MEMORY && !streamed) {
        return Err(format!(
            "the file is {}, more than the {} that a tab's wasm memory can hold: use a smaller model, or its f16 file (megaqa convert --dtype f16)",
            mb(size),
            mb(WASM_MEMORY)
        ));
    }
    let census = match megaqa_model::checkpoint::safetensors::census(head) {
        Ok(Some(census)) => census,
        Ok(None) => return Ok(false),
        Err(_) => return Ok(true),
    };
    // A download read whole stays in wasm memory while the network is built; a
    // streamed one is read a tensor at a time. On WebGPU the network goes to the GPU a
    // tensor at a time; on the CPU it is f32 in wasm memory, built as the file's
    // tensors are taken (the file shrinks as it grows), or the file's own 16-bit
    // matrices, one of them widened at a time.
    // Saturating: a crafted header may state any sizes.
    let (name, largest) = &census.largest;
    let largest_f32 = largest.saturating_mul(4);
    let f32_bytes = census.values.saturating_mul(4);
    let on_gpu = c.max_binding.is_some() && does_not_fit(c, name, largest_f32).is_none();
    let (need, what) = if on_gpu && streamed {
        // Its f32 values, read 8 MB at a time.
        let need = largest_f32.saturating_add(8 << 20);
        (
            need,
            format!("its largest tensor's upload, {}", mb(largest_f32)),
        )
    } else if on_gpu {
        let need = census.data_bytes.saturating_add(largest_f32);
        (
            need,
            format!("its {} file and one tensor's upload", mb(census.data_bytes)),
        )
    } else if keeps_16bit(census.values, census.values_16bit) {
        let need = census.data_bytes.saturating_add(largest_f32);
        let what = format!(
            "its {} file's 16-bit weights on the CPU",
            mb(census.data_bytes)
        );
        (need, what)
    } else {
        let file = if streamed { 0 } else { census.data_bytes };
        let need = file.max(f32_bytes).saturating_add(largest_f32);
        let what = format!(
            "{} of f32 weights on the CPU, read from its {} file",
            mb(f32_bytes),
            mb(census.data_bytes)
        );
        (need, what)
    };
    if need <= WASM_MEMORY {
        return Ok(true);
    }
    let instead = if c.max_binding.is_some() {
        "use a smaller model"
    } else {
        "use a smaller model, or a browser with WebGPU"
    };
    Err(format!(
        "it needs about {} of the tab's memory ({what}), more than the {} that wasm can address: {instead}",
        mb(need),
        mb(WASM_MEMORY)
    ))
}

/// `navigator.gpu`, in the worker (the engine's home) or a page (the wasm tests).
fn navigator_gpu() -> Option<wasm_bindgen::JsValue> {
    let navigator = js_sys::Reflect::get(&js_sys::global(), &"navigator".into()).ok()?;
    js_sys::Reflect::get(&navigator, &"gpu".into())
        .ok()
        .filter(|g| !g.is_undefined() && !g.is_null())
}

/// "vendor architecture" from `(await navigator.gpu.requestAdapter()).info`.
async fn browser_adapter_info() -> Option<String> {
    use js_sys::Reflect;
    let gpu = navigator_gpu()?;
    let request = Reflect::get(&gpu, &"requestAdapter".into()).ok()?;
    let promise = js_sys::Function::from(request).call0(&gpu).ok()?;
    let adapter = wasm_bindgen_futures::JsFuture::from(js_sys::Promise::from(promise))
        .await
        .ok()?;
    let info = Reflect::get(&adapter, &"info".into()).ok()?;
    let field = |k: &str| {
        Reflect::get(&info, &k.into())
            .ok()
            .and_then(|v| v.as_string())
            .filter(|s| !s.is_empty())
    };
    let parts: Vec<String> = ["vendor", "architecture", "description"]
        .iter()
        .filter_map(|k| field(k))
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}
