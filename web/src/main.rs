//! The megaqa browser app. See `app.rs`; natively this binary only says where it belongs.

#[cfg(target_arch = "wasm32")]
fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(|| leptos::view! { <p>"megaqa"</p> });
    let _ = megaqa::Engine::new;
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("megaqa-web is the browser app: build it with `trunk build --release`");
}
