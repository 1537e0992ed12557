//! `--precision int8` as loading builds it (each matmul and the word embeddings
//! quantised straight from the checkpoint's rows) computes exactly what quantising the
//! f32 network after building computes, and stays near the f32 logits.

mod common;

use common::{Expected, fixture, load, max_diff};
use megaqa_model::{Checkpoint, DeviceKind, QaModel, device};

#[test]
fn int8_built_from_rows_equals_the_f32_network_quantised() {
    let dev = device::open(DeviceKind::Cpu).unwrap();
    let exp = Expected::load();
    for (name, input) in [("megatron-tiny", "input_a"), ("bert-tiny", "input_b")] {
        let batch = exp.batch(input);
        let f32 = load(name, &dev);
        let want = f32.run(&batch, &dev).unwrap();
        let mut after = load(name, &dev);
        let bytes = after.quantize_int8();
        let ckpt = Checkpoint::open(fixture(name)).unwrap();
        let built = QaModel::from_weights_int8(&ckpt.config, ckpt.weights, &dev).unwrap();
        assert!(
            built.embeddings.word_int8.is_some() && built.layers.iter().all(|l| l.int8.is_some())
        );
        assert!(bytes > 0);
        let (a, b) = (
            after.run(&batch, &dev).unwrap(),
            built.run(&batch, &dev).unwrap(),
        );
        // The same integers and scales: the same logits to the bit.
        assert_eq!((&a.start, &a.end), (&b.start, &b.end), "{name}");
        let d = max_diff(&a.start, &want.start).max(max_diff(&a.end, &want.end));
        eprintln!("{name}: int8 logits within {d:.2e} of f32");
        assert!(d > 0.0 && d < 0.05, "{name}: int8 logits off f32's by {d}");
    }
}
