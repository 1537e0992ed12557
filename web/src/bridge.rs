//! The page's end of the engine's Web Worker: starts it, posts requests (holding them
//! until the worker says it listens) and hands each event it posts back to the page.

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::prelude::*;

use crate::protocol::{Event, Request};

// The browser's `Worker`, bound here rather than through web-sys's `Worker` feature:
// turning on a web-sys feature rebuilds wgpu and the whole Burn stack for wasm.
#[wasm_bindgen]
extern "C" {
    type Worker;
    #[wasm_bindgen(constructor, catch)]
    fn new(url: &str) -> Result<Worker, JsValue>;
    #[wasm_bindgen(method, js_name = postMessage, catch)]
    fn post_message(this: &Worker, message: &JsValue) -> Result<(), JsValue>;
    #[wasm_bindgen(method, setter)]
    fn set_onmessage(this: &Worker, handler: &js_sys::Function);
    #[wasm_bindgen(method, setter)]
    fn set_onerror(this: &Worker, handler: &js_sys::Function);
    #[wasm_bindgen(method)]
    fn terminate(this: &Worker);
}

/// trunk's loader for the worker's wasm (index.html's `data-type="worker"` link).
const WORKER_URL: &str = "./megaqa-worker_loader.js";

struct Link {
    worker: Worker,
    /// False until the worker's first event: messages posted before its wasm runs
    /// would find no handler, so they wait here.
    listening: bool,
    waiting: Vec<JsValue>,
}

type OnEvent = Rc<dyn Fn(Event)>;

thread_local! {
    static LINK: RefCell<Option<Link>> = const { RefCell::new(None) };
    static ON_EVENT: RefCell<Option<OnEvent>> = const { RefCell::new(None) };
}

/// Starts the worker; `on_event` gets every event it posts.
pub fn start(on_event: impl Fn(Event) + 'static) -> Result<(), String> {
    let on_event: OnEvent = Rc::new(on_event);
    ON_EVENT.with(|h| *h.borrow_mut() = Some(on_event.clone()));
    spawn(on_event)
}

/// Ends the worker, and with it all of its memory, and starts a new one that sends
/// `Started` again; requests sent meanwhile wait for it.
pub fn restart() -> Result<(), String> {
    if let Some(link) = LINK.with(|l| l.borrow_mut().take()) {
        link.worker.terminate();
    }
    let on_event = ON_EVENT
        .with(|h| h.borrow().clone())
        .ok_or("the engine's worker was never started")?;
    spawn(on_event)
}

fn spawn(on_event: OnEvent) -> Result<(), String> {
    let worker = Worker::new(WORKER_URL)
        .map_err(|e| format!("the engine's worker ({WORKER_URL}) did not start: {e:?}"))?;
    let on_failure = on_event.clone();
    let on_message =
        Closure::<dyn Fn(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
            let json = ev.data().as_string().unwrap_or_default();
            let event = match serde_json::from_str::<Event>(&json) {
                Ok(e) => e,
                Err(e) => Event::Error(Some(format!("the engine said something unreadable: {e}"))),
            };
            if event == Event::Started {
                flush();
            }
            on_event(event);
        });
    let on_error = Closure::<dyn Fn(web_sys::Event)>::new(move |ev: web_sys::Event| {
        let message = js_sys::Reflect::get(&ev, &"message".into())
            .ok()
            .and_then(|m| m.as_string())
            .unwrap_or_else(|| "no detail".into());
        on_failure(Event::Error(Some(format!(
            "the engine's worker failed ({message}): reload the page"
        ))));
    });
    worker.set_onmessage(on_message.as_ref().unchecked_ref());
    worker.set_onerror(on_error.as_ref().unchecked_ref());
    // Both live as long as the page (a worker replaced leaves two small closures).
    on_message.forget();
    on_error.forget();
    LINK.with(|l| {
        *l.borrow_mut() = Some(Link {
            worker,
            listening: false,
            waiting: vec![],
        })
    });
    Ok(())
}

/// Posts `request` with `files` (handed over, not copied) to the worker.
pub fn send(request: &Request, files: &[web_sys::File]) {
    let json = serde_json::to_string(request).expect("requests serialise");
    let list: js_sys::Array = files.iter().collect();
    let message: JsValue = js_sys::Array::of2(&json.into(), &list).into();
    LINK.with(|l| match l.borrow_mut().as_mut() {
        Some(link) if link.listening => post(&link.worker, &message),
        Some(link) => link.waiting.push(message),
        None => web_sys::console::error_1(&"megaqa: the engine's worker is not running".into()),
    });
}

fn flush() {
    LINK.with(|l| {
        if let Some(link) = l.borrow_mut().as_mut() {
            link.listening = true;
            for m in link.waiting.drain(..) {
                post(&link.worker, &m);
            }
        }
    });
}

fn post(worker: &Worker, message: &JsValue) {
    if let Err(e) = worker.post_message(message) {
        web_sys::console::error_1(&format!("megaqa: posting to the engine failed: {e:?}").into());
    }
}
