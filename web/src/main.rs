//! The megaqa browser app: the engine (the same code as the CLI) on WebGPU, or on
//! the CPU in wasm where WebGPU is missing, behind a Leptos page.

#[cfg(target_arch = "wasm32")]
mod app;
#[cfg(target_arch = "wasm32")]
mod compute;
#[cfg(target_arch = "wasm32")]
mod download;
#[cfg(target_arch = "wasm32")]
mod store;

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
    eprintln!("megaqa-web is the browser app: build it with `trunk build --release`");
}
