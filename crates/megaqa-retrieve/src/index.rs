//! The inverted index and Okapi BM25 ranking over passages.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::RetrieveError;
use crate::documents::{self, Document};
use crate::passages::{self, Passage, PassageConfig};
use crate::words::{is_term, terms, words};

/// A file the collection was read from, as the index remembers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// How the user named it (shown in answers).
    pub name: String,
    /// Where to read it again (an absolute path natively).
    pub location: String,
    pub sha256: String,
}

/// Documents and the files they came from.
#[derive(Debug, Clone, Default)]
pub struct Collection {
    pub sources: Vec<Source>,
    pub documents: Vec<Document>,
    /// Per document: its index in `sources`.
    pub document_source: Vec<u32>,
}

impl Collection {
    /// Adds the documents of one file; returns how many it held.
    pub fn add(
        &mut self,
        name: &str,
        location: &str,
        bytes: &[u8],
    ) -> Result<usize, RetrieveError> {
        self.add_hashed(name, location, bytes, documents::sha256_hex(bytes))
    }

    /// [`Collection::add`] for bytes whose sha256 the caller has already computed.
    pub(crate) fn add_hashed(
        &mut self,
        name: &str,
        location: &str,
        bytes: &[u8],
        sha256: String,
    ) -> Result<usize, RetrieveError> {
        let docs = documents::read(name, bytes)?;
        let n = docs.len();
        let source = self.sources.len() as u32;
        self.sources.push(Source {
            name: name.into(),
            location: location.into(),
            sha256,
        });
        self.document_source.extend(std::iter::repeat_n(source, n));
        self.documents.extend(docs);
        Ok(n)
    }
}

/// BM25's two constants: term-frequency saturation `k1` and length normalisation `b`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bm25 {
    pub k1: f32,
    pub b: f32,
}

impl Default for Bm25 {
    /// Robertson and Zaragoza's usual values.
    fn default() -> Self {
        Self { k1: 1.2, b: 0.75 }
    }
}

/// What the index file holds: everything but the documents' text.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Stored {
    pub config: PassageConfig,
    pub sources: Vec<Source>,
    pub document_names: Vec<String>,
    pub document_source: Vec<u32>,
    pub passages: Vec<Passage>,
    /// Terms per passage.
    pub lengths: Vec<u32>,
    /// Sorted; `postings[i]` belongs to `terms[i]`.
    pub terms: Vec<String>,
    /// Per term: (passage, occurrences), by passage.
    pub postings: Vec<Vec<(u32, u32)>>,
}

/// One ranked passage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub passage: usize,
    pub score: f32,
}

/// A searchable collection: documents, their passages and the index over them.
#[derive(Debug, Clone)]
pub struct Library {
    pub(crate) stored: Stored,
    pub documents: Vec<Document>,
    lookup: HashMap<String, u32>,
    mean_length: f32,
    pub bm25: Bm25,
}

impl Library {
    /// Cuts every document into passages and indexes them.
    pub fn build(collection: Collection, config: PassageConfig) -> Result<Self, RetrieveError> {
        let mut passages = Vec::new();
        let mut lengths = Vec::new();
        let mut by_term: HashMap<String, Vec<(u32, u32)>> = HashMap::new();
        for (d, doc) in collection.documents.iter().enumerate() {
            let all = words(&doc.text);
            for r in passages::pieces(&doc.text, &all, &config) {
                let p = passages.len() as u32;
                let (start, end) = (all[r.start].start, all[r.end - 1].end);
                let mut counts: HashMap<&str, u32> = HashMap::new();
                let mut n = 0;
                for word in &all[r] {
                    if is_term(&word.text) {
                        *counts.entry(word.text.as_str()).or_default() += 1;
                        n += 1;
                    }
                }
                for (t, c) in counts {
                    by_term.entry(t.to_owned()).or_default().push((p, c));
                }
                passages.push(Passage {
                    doc: d as u32,
                    start: start as u32,
                    end: end as u32,
                });
                lengths.push(n);
            }
        }
        if passages.is_empty() {
            return Err(RetrieveError::Empty(collection.sources.len()));
        }
        let mut terms: Vec<(String, Vec<(u32, u32)>)> = by_term.into_iter().collect();
        terms.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (_, p) in &mut terms {
            p.sort_unstable();
        }
        let (terms, postings) = terms.into_iter().unzip();
        let stored = Stored {
            config,
            sources: collection.sources,
            document_names: collection
                .documents
                .iter()
                .map(|d| d.name.clone())
                .collect(),
            document_source: collection.document_source,
            passages,
            lengths,
            terms,
            postings,
        };
        Ok(Self::from_parts(stored, collection.documents))
    }

    pub(crate) fn from_parts(stored: Stored, documents: Vec<Document>) -> Self {
        let lookup = stored
            .terms
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        let total: u64 = stored.lengths.iter().map(|&n| n as u64).sum();
        let mean_length = (total as f32 / stored.lengths.len().max(1) as f32).max(1.0);
        Self {
            stored,
            documents,
            lookup,
            mean_length,
            bm25: Bm25::default(),
        }
    }

    pub fn passages(&self) -> &[Passage] {
        &self.stored.passages
    }

    pub fn sources(&self) -> &[Source] {
        &self.stored.sources
    }

    pub fn config(&self) -> PassageConfig {
        self.stored.config
    }

    /// Distinct terms in the index.
    pub fn vocabulary(&self) -> usize {
        self.stored.terms.len()
    }

    /// The text of a passage.
    pub fn text(&self, p: &Passage) -> &str {
        let text = &self.documents[p.doc as usize].text;
        let byte = |c: u32| {
            text.char_indices()
                .nth(c as usize)
                .map_or(text.len(), |(b, _)| b)
        };
        &text[byte(p.start)..byte(p.end)]
    }

    /// The `k` passages BM25 ranks highest for `question`, best first (ties: earlier
    /// passage first). Passages sharing no term with the question are never returned.
    pub fn search(&self, question: &str, k: usize) -> Result<Vec<Hit>, RetrieveError> {
        let mut q = terms(question);
        if q.is_empty() {
            return Err(RetrieveError::NoTerms(question.trim().into()));
        }
        q.sort_unstable();
        q.dedup();
        let n = self.stored.passages.len() as f32;
        let Bm25 { k1, b } = self.bm25;
        let mut scores = vec![0f32; self.stored.passages.len()];
        for t in &q {
            let Some(&i) = self.lookup.get(t) else {
                continue;
            };
            let postings = &self.stored.postings[i as usize];
            let df = postings.len() as f32;
            let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
            for &(p, tf) in postings {
                let len = self.stored.lengths[p as usize] as f32;
                let tf = tf as f32;
                let norm = k1 * (1.0 - b + b * len / self.mean_length);
                scores[p as usize] += idf * tf * (k1 + 1.0) / (tf + norm);
            }
        }
        let mut hits: Vec<Hit> = scores
            .into_iter()
            .enumerate()
            .filter(|&(_, s)| s > 0.0)
            .map(|(passage, score)| Hit { passage, score })
            .collect();
        hits.sort_unstable_by(|x, y| y.score.total_cmp(&x.score).then(x.passage.cmp(&y.passage)));
        hits.truncate(k);
        Ok(hits)
    }
}
