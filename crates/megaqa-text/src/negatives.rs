//! Unanswerable training examples made from answerable ones, and held-out articles.
//!
//! SQuAD v1.1 has no unanswerable questions, and a SQuAD v2.0 model must learn to say
//! "no answer". A question paired with another paragraph of its own article is one:
//! the same topic and names, but not the answer. The first negative of a question is
//! the paragraph that shares the most (rare) words with it, as a retriever would
//! wrongly rank it; any further ones are drawn at random. Paragraphs that contain the
//! answer text are never used (they may well answer the question).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use crate::squad::{Dataset, Example};

/// One step of splitmix64: a small, seeded generator that is the same on every
/// platform and build, so that data made from a seed is reproducible.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform draw in [0, 1) from the generator.
pub(crate) fn unit(state: &mut u64) -> f64 {
    (splitmix64(state) >> 11) as f64 / (1u64 << 53) as f64
}

/// Lower-cased alphanumeric words, each once, in order (so that scores add up in
/// the same order, and ties break the same way, on every run).
pub(crate) fn words(text: &str) -> BTreeSet<String> {
    spans(text)
        .into_iter()
        .map(|(_, w)| w.to_lowercase())
        .collect()
}

/// Alphanumeric words with their byte offsets, as written: what [`words`] lower-cases,
/// and where [`crate::swapped`] edits a question.
pub(crate) fn spans(text: &str) -> Vec<(usize, &str)> {
    let mut out = vec![];
    let mut start = None;
    for (i, c) in text.char_indices().chain([(text.len(), ' ')]) {
        match (c.is_alphanumeric(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s, &text[s..i]));
                start = None;
            }
            _ => {}
        }
    }
    out
}

/// The distinct paragraphs of one article with their word sets and word document
/// frequencies (also what [`crate::swapped`] makes its negatives from).
pub(crate) struct Article {
    /// Position among the articles, in file order.
    pub(crate) index: usize,
    pub(crate) paragraphs: Vec<Arc<str>>,
    /// The paragraphs lower-cased, to look for answer texts in.
    lowered: Vec<String>,
    /// Each paragraph's lower-cased words ([`words`]).
    pub(crate) words: Vec<BTreeSet<String>>,
    df: HashMap<String, usize>,
}

impl Article {
    /// Inverse document frequency of one of the article's (lower-cased) words within
    /// the article: words every paragraph has ("the", the article's title) count for
    /// little.
    pub(crate) fn idf(&self, word: &str) -> f64 {
        ((self.paragraphs.len() as f64 + 1.0) / self.df[word] as f64).ln()
    }

    /// Question-paragraph overlap weighted by [`Article::idf`].
    fn overlap(&self, question: &BTreeSet<String>, p: usize) -> f64 {
        question
            .iter()
            .filter(|w| self.words[p].contains(*w))
            .map(|w| self.idf(w))
            .sum()
    }

    /// Where `context`, one of the article's paragraphs, sits among them.
    pub(crate) fn paragraph(&self, context: &str) -> usize {
        self.paragraphs
            .iter()
            .position(|p| **p == *context)
            .expect("a paragraph of the article")
    }
}

/// The articles of `examples` by title, each with its distinct paragraphs in file order.
pub(crate) fn articles(examples: &[Example]) -> HashMap<&str, Article> {
    let mut articles: HashMap<&str, Article> = HashMap::new();
    for ex in examples {
        let index = articles.len();
        let a = articles.entry(&ex.title).or_insert_with(|| Article {
            index,
            paragraphs: vec![],
            lowered: vec![],
            words: vec![],
            df: HashMap::new(),
        });
        if !a.paragraphs.iter().any(|p| **p == *ex.context) {
            let w = words(&ex.context);
            for word in &w {
                *a.df.entry(word.clone()).or_default() += 1;
            }
            a.paragraphs.push(ex.context.clone());
            a.lowered.push(ex.context.to_lowercase());
            a.words.push(w);
        }
    }
    articles
}

/// `examples` followed by about `per_question` unanswerable examples for each
/// answerable one (the whole part for each, the fraction by a seeded draw), each the
/// question over another paragraph of the same article (same `title`). Negatives get
/// the id `ID#negK` and come grouped by paragraph.
pub fn with_negatives(examples: &[Example], per_question: f64, seed: u64) -> Vec<Example> {
    let mut out = examples.to_vec();
    if per_question <= 0.0 {
        return out;
    }
    let articles = articles(examples);
    let whole = per_question.floor() as usize;
    let frac = per_question - whole as f64;
    let mut rng = seed ^ 0x6E65_6761_7469_7665; // "negative"
    // (article, paragraph, example) for each negative, to group them by paragraph.
    let mut made: Vec<(usize, usize, Example)> = vec![];
    for ex in examples.iter().filter(|e| !e.is_impossible()) {
        let count = whole + usize::from(frac > 0.0 && unit(&mut rng) < frac);
        if count == 0 {
            continue;
        }
        let a = &articles[&*ex.title];
        let answers: Vec<String> = ex.answers.iter().map(|g| g.text.to_lowercase()).collect();
        let mut candidates: Vec<usize> = (0..a.paragraphs.len())
            .filter(|&p| *a.paragraphs[p] != *ex.context)
            .filter(|&p| {
                !answers
                    .iter()
                    .any(|ans| a.lowered[p].contains(ans.as_str()))
            })
            .collect();
        let q = words(&ex.question);
        for k in 0..count.min(candidates.len()) {
            let pick = if k == 0 {
                // The hardest: most shared rare words (the first on a tie).
                let mut best = (0, f64::NEG_INFINITY);
                for (i, &p) in candidates.iter().enumerate() {
                    let score = a.overlap(&q, p);
                    if score > best.1 {
                        best = (i, score);
                    }
                }
                best.0
            } else {
                (splitmix64(&mut rng) % candidates.len() as u64) as usize
            };
            let p = candidates.remove(pick);
            made.push((
                a.index,
                p,
                Example {
                    id: format!("{}#neg{k}", ex.id),
                    title: ex.title.clone(),
                    context: a.paragraphs[p].clone(),
                    question: ex.question.clone(),
                    answers: vec![],
                    path: format!("{} (negative {k})", ex.path),
                },
            ));
        }
    }
    // Grouped by paragraph, so that training tokenizes each context once.
    made.sort_by_key(|(a, p, _)| (*a, *p));
    out.extend(made.into_iter().map(|(_, _, e)| e));
    out
}

impl Dataset {
    /// Titles of the articles, in file order.
    pub fn titles(&self) -> Vec<&str> {
        let mut seen = HashSet::new();
        self.examples
            .iter()
            .map(|e| e.title.as_str())
            .filter(|t| seen.insert(*t))
            .collect()
    }

    /// (all but the last `n` articles, the last `n` articles), by title in file order.
    pub fn split_last_articles(&self, n: usize) -> (Dataset, Dataset) {
        let titles = self.titles();
        let held: HashSet<&str> = titles[titles.len().saturating_sub(n)..]
            .iter()
            .copied()
            .collect();
        let (rest, out): (Vec<Example>, Vec<Example>) = self
            .examples
            .iter()
            .cloned()
            .partition(|e| !held.contains(e.title.as_str()));
        let part = |examples, what: &str| Dataset {
            file: format!("{} ({what})", self.file),
            examples,
        };
        (
            part(rest, "training articles"),
            part(out, "held-out articles"),
        )
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::squad::GoldAnswer;

    /// An example whose answer (if any) is the first occurrence of `answer` in `context`.
    pub(crate) fn ex(
        id: &str,
        title: &str,
        context: &str,
        question: &str,
        answer: Option<&str>,
    ) -> Example {
        Example {
            id: id.into(),
            title: title.into(),
            context: context.into(),
            question: question.into(),
            answers: answer
                .map(|a| {
                    vec![GoldAnswer {
                        text: a.into(),
                        start: context.find(a).unwrap(),
                    }]
                })
                .unwrap_or_default(),
            path: format!("q[{id}]"),
        }
    }

    fn sample() -> Vec<Example> {
        let p1 = "The Normans settled in Normandy, a region of France.";
        let p2 = "Rollo was the first ruler of Normandy and a Viking leader.";
        let p3 = "The Norman conquest of England began in 1066.";
        let p4 = "Paris is the capital of France.";
        vec![
            ex(
                "a",
                "Normans",
                p1,
                "In what country is Normandy located?",
                Some("France"),
            ),
            ex(
                "b",
                "Normans",
                p2,
                "Who was the first ruler of Normandy?",
                Some("Rollo"),
            ),
            ex(
                "c",
                "Normans",
                p3,
                "When did the conquest of England begin?",
                Some("1066"),
            ),
            ex("d", "Normans", p3, "What is not asked here?", None),
            ex(
                "e",
                "Paris",
                p4,
                "What is the capital of France?",
                Some("Paris"),
            ),
        ]
    }

    #[test]
    fn no_negatives_leaves_the_examples_as_they_are() {
        assert_eq!(with_negatives(&sample(), 0.0, 1), sample());
    }

    #[test]
    fn the_first_negative_is_the_same_article_paragraph_sharing_most_words() {
        let out = with_negatives(&sample(), 1.0, 7);
        let negs: Vec<&Example> = out[5..].iter().collect();
        // "Who was the first ruler of Normandy?" shares the rarer "normandy" with p1
        // and only "the" and "of" with p3.
        let b = negs.iter().find(|e| e.id == "b#neg0").unwrap();
        assert!(
            b.context.starts_with("The Normans settled"),
            "{}",
            b.context
        );
        assert!(b.answers.is_empty());
        // "a" (answer France): p2 and p3 do not contain "france"; p2 shares "normandy".
        let a = negs.iter().find(|e| e.id == "a#neg0").unwrap();
        assert!(a.context.starts_with("Rollo"), "{}", a.context);
        // The unanswerable question gets none; the one-paragraph article has no candidate.
        assert!(
            !negs
                .iter()
                .any(|e| e.id.starts_with('d') || e.id.starts_with('e'))
        );
        assert_eq!(negs.len(), 3);
    }

    #[test]
    fn negatives_never_hold_their_answer_nor_their_own_paragraph() {
        let out = with_negatives(&sample(), 3.0, 3);
        let original = sample();
        for n in &out[original.len()..] {
            let src = original.iter().find(|e| n.id.starts_with(&e.id)).unwrap();
            assert_ne!(n.context, src.context);
            let ans = src.answers[0].text.to_lowercase();
            assert!(!n.context.to_lowercase().contains(&ans), "{n:?}");
        }
    }

    /// A rate of 0.25 over 400 answerable questions (copies of `sample`'s first three,
    /// each of which makes one) makes about 100: the same for the same seed, others for
    /// another.
    pub(crate) fn check_seeded_rate(
        sample: &[Example],
        make: fn(&[Example], f64, u64) -> Vec<Example>,
    ) {
        let base: Vec<Example> = (0..400)
            .map(|i| {
                let mut e = sample[i % 3].clone();
                e.id = format!("{i}");
                e
            })
            .collect();
        let a = make(&base, 0.25, 11);
        assert_eq!(a, make(&base, 0.25, 11));
        assert_ne!(a, make(&base, 0.25, 12));
        let made = a.len() - base.len();
        assert!(
            (70..=130).contains(&made),
            "{made} made for 400 questions at 0.25"
        );
    }

    #[test]
    fn fractional_rates_are_seeded_and_about_right() {
        check_seeded_rate(&sample(), with_negatives);
    }

    #[test]
    fn the_last_articles_are_held_out() {
        let d = Dataset {
            file: "f.json".into(),
            examples: sample(),
        };
        assert_eq!(d.titles(), vec!["Normans", "Paris"]);
        let (train, held) = d.split_last_articles(1);
        assert_eq!(train.examples.len(), 4);
        assert_eq!(held.examples.len(), 1);
        assert_eq!(held.examples[0].title, "Paris");
        let (all, none) = d.split_last_articles(0);
        assert_eq!((all.examples.len(), none.examples.len()), (5, 0));
    }
}
