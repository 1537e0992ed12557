//! `megaqa convert`: one self-contained file for the web app and fast loading.

use std::process::ExitCode;

use anyhow::Result;
use megaqa::model::Checkpoint;
use megaqa::model::checkpoint::Storage;
use sha2::{Digest, Sha256};

use crate::args::{ConvertArgs, DtypeArg};
use crate::shared::write_atomic;

pub fn run(a: ConvertArgs) -> Result<ExitCode> {
    if !a.model.exists() {
        anyhow::bail!("{}: no such file or directory", a.model.display());
    }
    let ckpt = Checkpoint::open(&a.model)?;
    if ckpt.tokenizer.is_none() {
        anyhow::bail!(
            "{}: the checkpoint carries no tokenizer (vocab.txt or tokenizer.json) to bundle",
            a.model.display()
        );
    }
    let storage = match a.dtype {
        DtypeArg::F32 => Storage::F32,
        DtypeArg::F16 => Storage::F16,
        DtypeArg::Int8 => Storage::Int8,
    };
    let bytes = ckpt.to_converted_bytes_as(storage, &[])?;
    write_atomic(&a.out, &bytes)?;
    let sha = format!("{:x}", Sha256::digest(&bytes));
    eprintln!(
        "megaqa: wrote {} ({:.1} MB)",
        a.out.display(),
        bytes.len() as f64 / 1e6
    );
    println!("{sha}  {}", a.out.display());
    Ok(ExitCode::SUCCESS)
}
