//! Documents from files: plain text and Markdown as they are, SQuAD JSON as one document
//! per article (its paragraphs joined by a blank line, so that passages follow them).

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::RetrieveError;

/// A text that answers come from, with the name it is shown under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// The file's name; for a SQuAD file, `file#title`.
    pub name: String,
    pub text: String,
}

/// The kinds of file a collection may hold, by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Squad,
}

impl Kind {
    /// `.txt`, `.text`, `.md` and `.markdown` are text, `.json` SQuAD; anything else is
    /// not read.
    pub fn of(name: &str) -> Option<Kind> {
        let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
        match ext.as_str() {
            "txt" | "text" | "md" | "markdown" => Some(Kind::Text),
            "json" => Some(Kind::Squad),
            _ => None,
        }
    }
}

/// The paragraph separator of SQuAD articles made into documents.
pub const SQUAD_PARAGRAPH_SEPARATOR: &str = "\n\n";

/// sha256 of a file's bytes, in hex: what an index records to notice a changed file.
pub fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// The documents in one file's bytes.
pub fn read(name: &str, bytes: &[u8]) -> Result<Vec<Document>, RetrieveError> {
    let kind = Kind::of(name).ok_or_else(|| RetrieveError::UnknownKind(name.into()))?;
    let text = std::str::from_utf8(bytes).map_err(|e| RetrieveError::NotUtf8 {
        file: name.into(),
        offset: e.valid_up_to(),
    })?;
    if text.contains('\0') {
        return Err(RetrieveError::Binary(name.into()));
    }
    match kind {
        Kind::Text => Ok(vec![Document {
            name: name.into(),
            text: text.into(),
        }]),
        Kind::Squad => squad(name, text),
    }
}

#[derive(Deserialize)]
struct SquadFile {
    data: Vec<Article>,
}
#[derive(Deserialize)]
struct Article {
    #[serde(default)]
    title: String,
    paragraphs: Vec<Paragraph>,
}
#[derive(Deserialize)]
struct Paragraph {
    context: String,
}

fn squad(name: &str, text: &str) -> Result<Vec<Document>, RetrieveError> {
    let file: SquadFile = serde_json::from_str(text).map_err(|e| RetrieveError::Squad {
        file: name.into(),
        message: e.to_string(),
    })?;
    Ok(file
        .data
        .into_iter()
        .enumerate()
        .map(|(i, a)| {
            let title = if a.title.is_empty() {
                format!("article {}", i + 1)
            } else {
                a.title
            };
            let texts: Vec<&str> = a.paragraphs.iter().map(|p| p.context.as_str()).collect();
            Document {
                name: format!("{name}#{title}"),
                text: texts.join(SQUAD_PARAGRAPH_SEPARATOR),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squad_articles_become_documents_of_their_paragraphs() {
        let json = r#"{"version":"v2.0","data":[{"title":"Normans","paragraphs":[
            {"context":"The Normans were a people.","qas":[]},
            {"context":"Rollo was their leader.","qas":[]}]}]}"#;
        let d = read("dev.json", json.as_bytes()).unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].name, "dev.json#Normans");
        assert_eq!(
            d[0].text,
            "The Normans were a people.\n\nRollo was their leader."
        );
    }

    #[test]
    fn bad_files_are_named() {
        let e = read("notes.txt", b"ok \xff\xfe").unwrap_err().to_string();
        assert_eq!(e, "notes.txt: not UTF-8 text (invalid byte at offset 3)");
        let e = read("a.bin.txt", b"x\0y").unwrap_err().to_string();
        assert!(e.contains("binary"), "{e}");
        let e = read("img.png", b"x").unwrap_err().to_string();
        assert!(e.contains(".txt"), "{e}");
        let e = read("bad.json", b"{\"data\": 3}").unwrap_err().to_string();
        assert!(e.starts_with("bad.json: not a SQuAD file"), "{e}");
    }
}
