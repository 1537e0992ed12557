//! The index file: a header (magic, format version, sha256 of the payload), then the
//! index in postcard's compact binary form. Document texts are not stored: they are read
//! again from their files, whose sha256 must match, so a changed file is noticed.

use sha2::{Digest, Sha256};

use crate::index::{Library, Stored};
use crate::{Collection, RetrieveError};

const MAGIC: &[u8; 13] = b"MEGAQA-INDEX\n";
/// Bump when `Stored` or the passage or word rules change.
pub const FORMAT: u32 = 1;

impl Library {
    /// The index as file bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let payload = postcard::to_allocvec(&self.stored).expect("the index serialises");
        let mut out = Vec::with_capacity(payload.len() + 64);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT.to_le_bytes());
        out.extend_from_slice(&Sha256::digest(&payload));
        out.extend_from_slice(&payload);
        out
    }

    /// Opens index file `file` (its bytes), reading every indexed file again with `read`
    /// (given the source's location) and checking it is unchanged.
    pub fn from_bytes(
        file: &str,
        bytes: &[u8],
        mut read: impl FnMut(&str) -> Result<Vec<u8>, String>,
    ) -> Result<Self, RetrieveError> {
        let bad = |message: String| RetrieveError::IndexFile {
            file: file.into(),
            message,
        };
        let header = MAGIC.len() + 4 + 32;
        if bytes.len() < header || &bytes[..MAGIC.len()] != MAGIC {
            return Err(bad(
                "not a megaqa index (run `megaqa index --docs ... --out FILE`)".into(),
            ));
        }
        let version = u32::from_le_bytes(bytes[MAGIC.len()..MAGIC.len() + 4].try_into().unwrap());
        if version != FORMAT {
            return Err(bad(format!(
                "index format {version}, this megaqa reads format {FORMAT}: run `megaqa index` again"
            )));
        }
        let (sum, payload) = bytes[MAGIC.len() + 4..].split_at(32);
        if Sha256::digest(payload).as_slice() != sum {
            return Err(bad(
                "corrupted (its checksum does not match its contents)".into()
            ));
        }
        let stored: Stored =
            postcard::from_bytes(payload).map_err(|e| bad(format!("corrupted ({e})")))?;
        let mut collection = Collection::default();
        for s in &stored.sources {
            let missing = |message: String| RetrieveError::Missing {
                index: file.into(),
                source_name: s.name.clone(),
                message,
            };
            let data = read(&s.location).map_err(missing)?;
            let now = crate::documents::sha256_hex(&data);
            if now != s.sha256 {
                return Err(RetrieveError::Stale {
                    index: file.into(),
                    source_name: s.name.clone(),
                    was: s.sha256[..12].into(),
                    now: now[..12].into(),
                });
            }
            collection.add_hashed(&s.name, &s.location, &data, now)?;
        }
        let names: Vec<&str> = collection
            .documents
            .iter()
            .map(|d| d.name.as_str())
            .collect();
        let chars: Vec<usize> = collection
            .documents
            .iter()
            .map(|d| d.text.chars().count())
            .collect();
        let consistent = names == stored.document_names
            && stored.passages.len() == stored.lengths.len()
            && stored.terms.len() == stored.postings.len()
            && stored.passages.iter().all(|p| {
                chars
                    .get(p.doc as usize)
                    .is_some_and(|&n| p.start <= p.end && p.end as usize <= n)
            })
            && stored
                .postings
                .iter()
                .flatten()
                .all(|&(p, _)| (p as usize) < stored.passages.len());
        if !consistent {
            return Err(bad(
                "corrupted (its passages do not fit its documents)".into()
            ));
        }
        Ok(Library::from_parts(stored, collection.documents))
    }
}
