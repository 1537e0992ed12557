//! `megaqa index`: a collection indexed once, for `ask --index`.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use megaqa_retrieve::{Library, PassageConfig};

use crate::args::IndexArgs;
use crate::docs::collect;
use crate::shared::write_atomic;

pub fn run(a: IndexArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let collection = collect(&a.docs)?;
    let (files, documents) = (collection.sources.len(), collection.documents.len());
    let library = Library::build(collection, PassageConfig::default())?;
    let bytes = library.to_bytes();
    write_atomic(&a.out, &bytes)?;
    eprintln!(
        "megaqa: indexed {documents} document(s) from {files} file(s): {} passages, {} terms in {:.2} s; wrote {} ({:.1} MB)",
        library.passages().len(),
        library.vocabulary(),
        started.elapsed().as_secs_f64(),
        a.out.display(),
        bytes.len() as f64 / 1e6
    );
    Ok(ExitCode::SUCCESS)
}
