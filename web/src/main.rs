//! The megaqa browser app's page: a Leptos page that renders and posts requests to the
//! engine (the same code as the CLI, on WebGPU or on the CPU in wasm), which runs in a
//! Web Worker (`worker.rs`, its own wasm), so that nothing the engine does holds this
//! thread. This wasm has no Burn in it.

#[cfg(target_arch = "wasm32")]
mod answer_panel;
#[cfg(target_arch = "wasm32")]
mod app;
#[cfg(target_arch = "wasm32")]
mod ask_panel;
#[cfg(target_arch = "wasm32")]
mod bridge;
#[cfg(target_arch = "wasm32")]
mod download;
#[cfg(target_arch = "wasm32")]
mod model_panel;
#[cfg(target_arch = "wasm32")]
mod protocol;

#[cfg(target_arch = "wasm32")]
fn main() {
    console_error_panic_hook::set_once();
    register_service_worker();
    leptos::mount::mount_to_body(app::App);
}

/// The service worker keeps the app itself (html, js, wasm) for offline reloads;
/// models are kept by `store` in the Cache API.
#[cfg(target_arch = "wasm32")]
fn register_service_worker() {
    if let Some(w) = web_sys::window() {
        let sw = w.navigator().service_worker();
        let _ = sw.register("./sw.js");
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("megaqa-web is the browser app's page: build it with `trunk build --release`");
}
