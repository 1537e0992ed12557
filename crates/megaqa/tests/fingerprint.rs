//! A model's fingerprint (`Engine::model_sha256`, what results files and `parity
//! --against` identify a model by) computed a slice at a time, as the browser does while
//! the page is idle, equals the one computed at once, whatever the slices; and it is the
//! digest the shipped model has always had, so results files exported before stay valid.

use std::path::PathBuf;

use burn::tensor::{DType, Device};
use megaqa::model::Checkpoint;
use megaqa::{Engine, Fingerprint};

fn shipped() -> Checkpoint {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../assets/models/minilm-l6-squad.megaqa.safetensors");
    Checkpoint::from_bytes("shipped", "shipped", std::fs::read(path).unwrap()).unwrap()
}

/// The shipped model's fingerprint (the stage-5 model of 2026-11-29). The stage-4
/// model's, a17b1df9…, was checked against the one-pass function the sliced one replaced.
const SHIPPED: &str = "0f1332f326756f3635597b11236ab4965ac5c6f77dbd5881025ee57bfb2bebf3";

#[test]
fn a_fingerprint_in_slices_equals_one_at_once() {
    let ckpt = shipped();
    let whole = Fingerprint::start(&ckpt).finish().unwrap();
    assert_eq!(whole, SHIPPED);
    // One piece a step, a piece and one value (ends mid-piece), a budget that ends on
    // the first tensors' boundaries, and large slices.
    for budget in [1, 65_537, 384, 1_000_000, 5_000_000] {
        let mut f = Fingerprint::start(&ckpt);
        let mut steps = 0;
        let digest = loop {
            steps += 1;
            if let Some(d) = f.step(budget).unwrap() {
                break d.to_string();
            }
        };
        assert_eq!(digest, whole, "slices of {budget} values");
        assert!(steps > 1, "slices of {budget}: {steps} step(s)");
        // Done is done: another step says the same.
        assert_eq!(f.step(budget).unwrap(), Some(whole.as_str()));
    }
    // An engine built with its fingerprint for later has none until it is finished.
    let (engine, later) =
        Engine::new_fingerprint_later(shipped(), Device::flex(), DType::F32).unwrap();
    assert_eq!(engine.model_sha256, "");
    assert_eq!(later.finish().unwrap(), SHIPPED);
    let eager = Engine::new(ckpt, Device::flex(), DType::F32).unwrap();
    assert_eq!(eager.model_sha256, SHIPPED);
}
