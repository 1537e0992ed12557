//! Unanswerable training examples made by editing the question: one name or number in
//! it is swapped for another of the same article that its paragraph never mentions.
//!
//! Why: a question over another paragraph ([`crate::negatives`]) is an easy negative:
//! the paragraph is about something else. SQuAD 2.0's unanswerable questions were
//! written against the paragraph itself, often (21% in its paper) by swapping an entity
//! or a number ("When did the Norman conquest of *Italy* begin?" over a paragraph about England),
//! so the paragraph still looks right and only the detail is missing. These are made
//! the same way, from answerable questions, over their own paragraph (target [CLS]).
//!
//! What is swapped: the question's rarest word (within the article) that its paragraph
//! holds and that is a name (capitalized wherever the article writes it) or a number.
//! What replaces it: a word of the same kind (a name; a number with as many digits)
//! from the rest of the article that the paragraph does not hold, drawn by a seeded
//! generator. Questions with no such pair get none.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::negatives::{Article, articles, spans, splitmix64, unit, words};
use crate::squad::Example;

/// An article's names and numbers: what a swap takes out and puts in.
struct Names {
    /// Lower-cased words the article writes in lower case somewhere: not names.
    lowercase: HashSet<String>,
    /// Its names and numbers as written, each with its lower-cased form, in order.
    pool: Vec<(String, String)>,
}

impl Names {
    fn of(article: &Article) -> Self {
        let mut lowercase = HashSet::new();
        let mut candidates = BTreeSet::new();
        for context in &article.paragraphs {
            // A sentence's first word is capitalized whatever it is: it says nothing.
            let mut sentence_start = true;
            let mut last = 0;
            for (at, w) in spans(context) {
                sentence_start |= context[last..at].contains(['.', '!', '?', '\n']);
                last = at + w.len();
                if w.chars().next().is_some_and(char::is_lowercase) {
                    lowercase.insert(w.to_lowercase());
                } else if !sentence_start || is_number(w) {
                    candidates.insert(w);
                }
                sentence_start = false;
            }
        }
        let mut names = Names {
            lowercase,
            pool: vec![],
        };
        names.pool = candidates
            .into_iter()
            .filter(|c| names.swappable(c))
            .map(|c| (c.to_string(), c.to_lowercase()))
            .collect();
        names
    }

    /// Capitalized, and never written in lower case in the article.
    fn is_name(&self, word: &str) -> bool {
        word.chars().next().is_some_and(char::is_uppercase)
            && !self.lowercase.contains(&word.to_lowercase())
    }

    fn swappable(&self, word: &str) -> bool {
        is_number(word) || self.is_name(word)
    }
}

fn is_number(word: &str) -> bool {
    word.bytes().all(|b| b.is_ascii_digit())
}

/// Two swappable words of the same kind: both names, or both numbers of as many
/// digits (a year for a year).
fn same_kind(a: &str, b: &str) -> bool {
    match (is_number(a), is_number(b)) {
        (true, true) => a.len() == b.len(),
        (false, false) => true,
        _ => false,
    }
}

/// `examples` followed by about `per_question` (at most 1) swapped-question negatives
/// for each answerable one, each over the question's own paragraph. They get the id
/// `ID#swap` and come grouped by paragraph.
pub fn with_swapped_questions(examples: &[Example], per_question: f64, seed: u64) -> Vec<Example> {
    let mut out = examples.to_vec();
    if per_question <= 0.0 {
        return out;
    }
    let articles = articles(examples);
    let names: HashMap<&str, Names> = articles.iter().map(|(t, a)| (*t, Names::of(a))).collect();
    let mut rng = seed ^ 0x7377_6170_7065_6421; // "swapped!"
    // ((article, paragraph), example) for each negative, to group them by paragraph.
    let mut made: Vec<((usize, usize), Example)> = vec![];
    for ex in examples.iter().filter(|e| !e.is_impossible()) {
        if unit(&mut rng) >= per_question {
            continue;
        }
        let (a, names) = (&articles[&*ex.title], &names[&*ex.title]);
        let p = a.paragraph(&ex.context);
        let paragraph = &a.words[p];
        let question = spans(&ex.question);
        let in_question = words(&ex.question);
        // The rarest name or number the question shares with its paragraph (the first
        // on a tie); its first word is skipped: capitalized as the sentence's start.
        let mut target: Option<(usize, &str, f64)> = None;
        for &(at, w) in question.iter().skip(1) {
            let lw = w.to_lowercase();
            if !paragraph.contains(&lw) || !names.swappable(w) {
                continue;
            }
            let r = a.idf(&lw);
            if target.is_none_or(|(_, _, best)| r > best) {
                target = Some((at, w, r));
            }
        }
        let Some((at, word, _)) = target else {
            continue;
        };
        let pool: Vec<&String> = names
            .pool
            .iter()
            .filter(|(c, lc)| {
                same_kind(word, c) && !paragraph.contains(lc) && !in_question.contains(lc)
            })
            .map(|(c, _)| c)
            .collect();
        if pool.is_empty() {
            continue;
        }
        let with = pool[(splitmix64(&mut rng) % pool.len() as u64) as usize];
        let edited = format!(
            "{}{with}{}",
            &ex.question[..at],
            &ex.question[at + word.len()..]
        );
        made.push((
            (a.index, p),
            Example {
                id: format!("{}#swap", ex.id),
                title: ex.title.clone(),
                context: ex.context.clone(),
                question: edited,
                answers: vec![],
                path: format!("{} (\"{word}\" swapped for \"{with}\")", ex.path),
            },
        ));
    }
    // Grouped by paragraph, so that training tokenizes each context once.
    made.sort_by_key(|(p, _)| *p);
    out.extend(made.into_iter().map(|(_, e)| e));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::negatives::tests::{check_seeded_rate, ex};

    const P1: &str = "The Norman conquest of England began in 1066. William led it.";
    const P2: &str = "In 1130 the Normans founded a kingdom in Sicily, ruled by Roger.";
    const P3: &str = "Normandy lies in France. The duchy was founded by Rollo in 911.";

    fn sample() -> Vec<Example> {
        vec![
            ex(
                "a",
                "Normans",
                P1,
                "When did the conquest of England begin?",
                Some("1066"),
            ),
            ex(
                "b",
                "Normans",
                P1,
                "Who led the conquest in 1066?",
                Some("William"),
            ),
            ex(
                "c",
                "Normans",
                P2,
                "Who ruled the kingdom in Sicily?",
                Some("Roger"),
            ),
            ex("d", "Normans", P3, "What is not asked in France?", None),
        ]
    }

    #[test]
    fn none_asked_leaves_the_examples_as_they_are() {
        assert_eq!(with_swapped_questions(&sample(), 0.0, 1), sample());
    }

    #[test]
    fn a_name_or_number_of_the_paragraph_is_swapped_for_one_it_lacks() {
        let out = with_swapped_questions(&sample(), 1.0, 5);
        let made = &out[sample().len()..];
        // The unanswerable question makes none; the other three make one each.
        assert_eq!(made.len(), 3, "{made:#?}");
        for m in made {
            let src = sample()
                .into_iter()
                .find(|e| m.id == format!("{}#swap", e.id))
                .unwrap();
            assert!(m.answers.is_empty());
            assert_eq!(m.context, src.context);
            assert_ne!(m.question, src.question);
            // Exactly one word differs, and the paragraph holds the old one, not the new.
            let old = spans(&src.question);
            let new = spans(&m.question);
            assert_eq!(old.len(), new.len(), "{}", m.question);
            let diff: Vec<_> = old.iter().zip(&new).filter(|(o, n)| o.1 != n.1).collect();
            assert_eq!(diff.len(), 1, "{} -> {}", src.question, m.question);
            let (o, n) = (diff[0].0.1.to_lowercase(), diff[0].1.1.to_lowercase());
            let para = words(&src.context);
            assert!(
                para.contains(&o) && !para.contains(&n),
                "{o} -> {n} in {}",
                src.context
            );
        }
        // Never a sentence's first word ("The", "In") as a name.
        for m in made {
            assert!(
                !m.question.contains(" The ") && !m.question.contains(" In "),
                "{}",
                m.question
            );
        }
    }

    #[test]
    fn years_take_years_and_the_rarest_word_goes() {
        let out = with_swapped_questions(&sample(), 1.0, 9);
        // "1066" is in P1 only; "conquest" is not a name. Four-digit: 1130 (911 has 3).
        let b = out.iter().find(|e| e.id == "b#swap").unwrap();
        assert_eq!(b.question, "Who led the conquest in 1130?");
        // "Sicily" is the question's only name; P2 lacks Norman, England, France and
        // Rollo. "William" and "Normandy" open sentences: never taken for names.
        let c = out.iter().find(|e| e.id == "c#swap").unwrap();
        let with = c
            .question
            .strip_prefix("Who ruled the kingdom in ")
            .unwrap();
        assert!(
            ["Norman?", "England?", "France?", "Rollo?"].contains(&with),
            "{}",
            c.question
        );
    }

    #[test]
    fn rates_are_seeded_and_about_right() {
        check_seeded_rate(&sample(), with_swapped_questions);
    }
}
