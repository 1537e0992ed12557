//! Arbitrary bytes into every checkpoint reader: the first byte picks the reader.
//! Any outcome but a panic (or a sanitizer report) is fine; errors are expected.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use megaqa_model::Checkpoint;
use megaqa_model::checkpoint::{pickle, torchzip};

const CONFIG: &[u8] = br#"{"model_type": "megatron-bert", "vocab_size": 256, "hidden_size": 24, "num_hidden_layers": 2, "num_attention_heads": 3, "intermediate_size": 40, "max_position_embeddings": 64}"#;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else { return };
    match which % 5 {
        // A single file: tar / gzip (.nemo) or a converted safetensors file, sniffed.
        0 => drop(Checkpoint::from_bytes("fuzz", "fuzz.nemo", rest.to_vec())),
        1 => drop(torchzip::read(rest)),
        2 => drop(pickle::interpret(rest)),
        // A Hugging Face directory whose weights are the input.
        3 => {
            let mut files = BTreeMap::new();
            files.insert("config.json".to_string(), CONFIG.to_vec());
            files.insert("model.safetensors".to_string(), rest.to_vec());
            drop(Checkpoint::from_hf_files("fuzz", files));
        }
        _ => {
            let mut files = BTreeMap::new();
            files.insert("config.json".to_string(), CONFIG.to_vec());
            files.insert("pytorch_model.bin".to_string(), rest.to_vec());
            drop(Checkpoint::from_hf_files("fuzz", files));
        }
    }
});
