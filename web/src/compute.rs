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
