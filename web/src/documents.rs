//! The user's documents in the page: files chosen in the Ask panel, indexed here by
//! megaqa's retriever (the same code as `megaqa ask --docs`), and kept in browser
//! storage (`megaqa-documents`) beside the model, so they come back offline.

use megaqa_retrieve::{Collection, Library, PassageConfig};

use crate::store;

pub use crate::protocol::PASSAGES;

/// An indexed collection and what the page says about it.
pub struct Indexed {
    pub library: Library,
    /// "3 files, 41 passages" and any files skipped, with why.
    pub summary: String,
}

/// Indexes `files` (name, bytes). Files that are not text are skipped and named.
pub fn index(files: &[(String, Vec<u8>)]) -> Result<Indexed, String> {
    let mut c = Collection::default();
    let mut skipped = Vec::new();
    for (name, bytes) in files {
        match c.add(name, name, bytes) {
            Ok(_) => {}
            Err(e) if e.is_about_one_file() => skipped.push(e.to_string()),
            Err(e) => return Err(e.to_string()),
        }
    }
    if c.documents.is_empty() {
        return Err(format!("no documents to read: {}", skipped.join("; ")));
    }
    let (n_files, n_docs) = (c.sources.len(), c.documents.len());
    let library = Library::build(c, PassageConfig::default()).map_err(|e| e.to_string())?;
    let mut summary = format!(
        "{n_files} file(s), {n_docs} document(s), {} passages",
        library.passages().len()
    );
    if !skipped.is_empty() {
        summary += &format!(" · skipped: {}", skipped.join("; "));
    }
    Ok(Indexed { library, summary })
}

fn key(name: &str) -> String {
    format!(
        "./megaqa-documents/{}",
        String::from(js_sys::encode_uri_component(name))
    )
}

/// Replaces the kept documents by `files`.
pub async fn keep(files: &[(String, Vec<u8>)]) -> Result<(), String> {
    forget().await?;
    for (name, bytes) in files {
        let sha = store::sha256_hex(bytes).await;
        store::put_in(store::DOCUMENTS, &key(name), name, bytes, sha).await?;
    }
    Ok(())
}

/// The kept documents, by name.
pub async fn kept() -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut out = Vec::new();
    for c in store::list_in(store::DOCUMENTS).await? {
        if let Some((bytes, _)) = store::get_in(store::DOCUMENTS, &c.key).await? {
            out.push((c.name, bytes));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

pub async fn forget() -> Result<(), String> {
    for c in store::list_in(store::DOCUMENTS).await? {
        store::delete_in(store::DOCUMENTS, &c.key).await?;
    }
    Ok(())
}
