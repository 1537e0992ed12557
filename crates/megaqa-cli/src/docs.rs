//! A collection to ask: documents read from files and folders (`--docs`), or an index
//! file made by `megaqa index` (`--index`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use megaqa_retrieve::{Collection, Kind, Library, PassageConfig};

/// Files under `paths`: each file named, and the files of each folder (recursively,
/// sorted, only those of a kind megaqa reads).
fn files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).with_context(|| format!("{}: cannot read", p.display()))?;
        if meta.is_dir() {
            let mut found = Vec::new();
            walk(p, &mut found)?;
            found.sort();
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in
        std::fs::read_dir(dir).with_context(|| format!("{}: cannot read", dir.display()))?
    {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if Kind::of(&path.to_string_lossy()).is_some() {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads the documents under `paths`. A file that is not text (binary, not UTF-8, not a
/// SQuAD file, an unknown kind) is skipped with a warning naming it.
pub fn collect(paths: &[PathBuf]) -> Result<Collection> {
    let mut c = Collection::default();
    let mut skipped = 0;
    for f in files(paths)? {
        let name = f.display().to_string();
        let bytes = std::fs::read(&f).with_context(|| format!("{name}: cannot read"))?;
        let location = std::fs::canonicalize(&f).unwrap_or(f.clone());
        match c.add(&name, &location.to_string_lossy(), &bytes) {
            Ok(_) => {}
            Err(e) if e.is_about_one_file() => {
                eprintln!("megaqa: warning: skipped {e}");
                skipped += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
    if c.documents.is_empty() {
        let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        bail!(
            "no documents to read in {} ({skipped} file(s) skipped; megaqa reads .txt, .md and SQuAD .json)",
            names.join(", ")
        );
    }
    Ok(c)
}

/// The library to search: built from `docs` now, or opened from `index`.
pub fn open(docs: &[PathBuf], index: Option<&Path>) -> Result<Library> {
    match index {
        Some(file) => {
            let bytes =
                std::fs::read(file).with_context(|| format!("{}: cannot read", file.display()))?;
            Ok(Library::from_bytes(
                &file.display().to_string(),
                &bytes,
                |loc| std::fs::read(loc).map_err(|e| format!("{loc}: {e}")),
            )?)
        }
        None => Ok(Library::build(collect(docs)?, PassageConfig::default())?),
    }
}
