//! SQuAD v2.0 JSON: the official nested format (`data[].paragraphs[].qas[]`) and
//! the Hugging Face flat format (records with `context`, `question` and
//! `answers: {text: [...], answer_start: [...]}`, as a JSON array, `{"data": [...]}`
//! or JSON lines). Errors name the file and the offending field by its path.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum SquadError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: malformed JSON: {message}")]
    Json { file: String, message: String },
    #[error("{file}: {path}: {message}")]
    Field {
        file: String,
        path: String,
        message: String,
    },
    #[error("{file}: duplicate question id `{id}` at {path} (first at {first})")]
    DuplicateId {
        file: String,
        id: String,
        path: String,
        first: String,
    },
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
}

/// A gold answer: its text and the character offset where it starts in the context.
#[derive(Debug, Clone, PartialEq)]
pub struct GoldAnswer {
    pub text: String,
    pub start: usize,
}

/// One question over one context.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub id: String,
    pub title: String,
    pub context: Arc<str>,
    pub question: String,
    /// Empty for unanswerable questions.
    pub answers: Vec<GoldAnswer>,
    /// Where the question sits in the file, e.g. `data[3].paragraphs[2].qas[7]`.
    pub path: String,
}

impl Example {
    pub fn is_impossible(&self) -> bool {
        self.answers.is_empty()
    }
}

#[derive(Debug, Clone)]
pub struct Dataset {
    pub file: String,
    pub examples: Vec<Example>,
}

struct Ctx<'a> {
    file: &'a str,
}

impl Ctx<'_> {
    fn err(&self, path: &str, message: impl Into<String>) -> SquadError {
        SquadError::Field {
            file: self.file.into(),
            path: path.into(),
            message: message.into(),
        }
    }

    fn field<'v>(&self, obj: &'v Value, path: &str, key: &str) -> Result<&'v Value, SquadError> {
        if !obj.is_object() {
            return Err(self.err(path, "is not an object"));
        }
        obj.get(key)
            .ok_or_else(|| self.err(&format!("{path}.{key}"), "is missing"))
    }

    fn string(&self, obj: &Value, path: &str, key: &str) -> Result<String, SquadError> {
        match self.field(obj, path, key)? {
            Value::String(s) => Ok(s.clone()),
            // Some exports write numeric ids.
            Value::Number(n) if key == "id" => Ok(n.to_string()),
            other => Err(self.err(
                &format!("{path}.{key}"),
                format!("expected a string, found {}", kind(other)),
            )),
        }
    }

    fn array<'v>(
        &self,
        obj: &'v Value,
        path: &str,
        key: &str,
    ) -> Result<&'v Vec<Value>, SquadError> {
        match self.field(obj, path, key)? {
            Value::Array(a) => Ok(a),
            other => Err(self.err(
                &format!("{path}.{key}"),
                format!("expected an array, found {}", kind(other)),
            )),
        }
    }

    fn answer(
        &self,
        path: &str,
        text: &Value,
        start: &Value,
        context_chars: usize,
    ) -> Result<GoldAnswer, SquadError> {
        let text = text.as_str().ok_or_else(|| {
            self.err(
                &format!("{path}.text"),
                format!("expected a string, found {}", kind(text)),
            )
        })?;
        let start_path = format!("{path}.answer_start");
        let start = start.as_u64().ok_or_else(|| {
            self.err(
                &start_path,
                format!("expected a non-negative integer, found {start}"),
            )
        })? as usize;
        if start > context_chars {
            return Err(self.err(
                &start_path,
                format!("{start} is past the end of the context ({context_chars} chars)"),
            ));
        }
        let len = text.chars().count();
        if start + len > context_chars {
            return Err(self.err(
                &start_path,
                format!("answer of {len} chars at {start} runs past the end of the context ({context_chars} chars)"),
            ));
        }
        Ok(GoldAnswer {
            text: text.to_owned(),
            start,
        })
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Dataset {
    pub fn open(path: impl AsRef<std::path::Path>) -> Result<Self, SquadError> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| SquadError::Io {
            file: file.clone(),
            source,
        })?;
        Self::from_bytes(&file, &bytes)
    }

    pub fn from_bytes(file: &str, bytes: &[u8]) -> Result<Self, SquadError> {
        let cx = Ctx { file };
        let text = std::str::from_utf8(bytes).map_err(|e| SquadError::Invalid {
            file: file.into(),
            message: format!("not UTF-8: {e}"),
        })?;
        if text.trim().is_empty() {
            return Err(SquadError::Invalid {
                file: file.into(),
                message: "the file is empty".into(),
            });
        }
        let json_err = |e: serde_json::Error| SquadError::Json {
            file: file.into(),
            message: e.to_string(),
        };
        let mut examples = Vec::new();
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(root)) if root.contains_key("data") => {
                let data = match &root["data"] {
                    Value::Array(a) => a,
                    other => {
                        return Err(
                            cx.err("data", format!("expected an array, found {}", kind(other)))
                        );
                    }
                };
                let nested = data.first().is_some_and(|a| a.get("paragraphs").is_some());
                for (i, item) in data.iter().enumerate() {
                    let path = format!("data[{i}]");
                    if nested {
                        read_article(&cx, item, &path, &mut examples)?;
                    } else {
                        examples.push(read_flat(&cx, item, &path)?);
                    }
                }
            }
            Ok(Value::Object(_)) => {
                // A single flat record is one line of JSON lines.
                for (i, line) in text
                    .lines()
                    .enumerate()
                    .filter(|(_, l)| !l.trim().is_empty())
                {
                    let v: Value = serde_json::from_str(line).map_err(|e| SquadError::Json {
                        file: file.into(),
                        message: format!("line {}: {e}", i + 1),
                    })?;
                    examples.push(read_flat(&cx, &v, &format!("line {}", i + 1))?);
                }
            }
            Ok(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    examples.push(read_flat(&cx, item, &format!("[{i}]"))?);
                }
            }
            Ok(other) => {
                return Err(SquadError::Invalid {
                    file: file.into(),
                    message: format!(
                        "expected a SQuAD object with `data`, found {}",
                        kind(&other)
                    ),
                });
            }
            Err(e)
                if text.trim_start().starts_with('{')
                    && text.lines().filter(|l| !l.trim().is_empty()).count() > 1 =>
            {
                // JSON lines: one flat record per line.
                for (i, line) in text
                    .lines()
                    .enumerate()
                    .filter(|(_, l)| !l.trim().is_empty())
                {
                    let v: Value = match serde_json::from_str(line) {
                        Ok(v) => v,
                        Err(_) => return Err(json_err(e)),
                    };
                    examples.push(read_flat(&cx, &v, &format!("line {}", i + 1))?);
                }
            }
            Err(e) => return Err(json_err(e)),
        }
        if examples.is_empty() {
            return Err(SquadError::Invalid {
                file: file.into(),
                message: "holds no questions".into(),
            });
        }
        let mut seen: HashMap<&str, &str> = HashMap::new();
        for ex in &examples {
            if let Some(first) = seen.insert(&ex.id, &ex.path) {
                return Err(SquadError::DuplicateId {
                    file: file.into(),
                    id: ex.id.clone(),
                    path: ex.path.clone(),
                    first: first.into(),
                });
            }
        }
        Ok(Self {
            file: file.into(),
            examples,
        })
    }

    /// Errors for gold answers whose text is not the context at `answer_start`
    /// (training needs exact spans; evaluation only reads the texts).
    pub fn check_answer_spans(&self) -> Result<(), SquadError> {
        for ex in &self.examples {
            for (i, a) in ex.answers.iter().enumerate() {
                let found = crate::decode::char_slice(
                    &ex.context,
                    a.start,
                    a.start + a.text.chars().count(),
                );
                if found != a.text {
                    return Err(SquadError::Field {
                        file: self.file.clone(),
                        path: format!("{}.answers[{i}]", ex.path),
                        message: format!(
                            "text {:?} does not match the context at {} ({:?})",
                            a.text, a.start, found
                        ),
                    });
                }
            }
        }
        Ok(())
    }
}

fn read_article(
    cx: &Ctx,
    article: &Value,
    path: &str,
    out: &mut Vec<Example>,
) -> Result<(), SquadError> {
    let title = article
        .get("title")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    for (p, para) in cx.array(article, path, "paragraphs")?.iter().enumerate() {
        let ppath = format!("{path}.paragraphs[{p}]");
        let context: Arc<str> = cx.string(para, &ppath, "context")?.into();
        let chars = context.chars().count();
        for (q, qa) in cx.array(para, &ppath, "qas")?.iter().enumerate() {
            let qpath = format!("{ppath}.qas[{q}]");
            let mut answers = Vec::new();
            for (a, ans) in cx.array(qa, &qpath, "answers")?.iter().enumerate() {
                let apath = format!("{qpath}.answers[{a}]");
                let text = cx.field(ans, &apath, "text")?;
                let start = cx.field(ans, &apath, "answer_start")?;
                answers.push(cx.answer(&apath, text, start, chars)?);
            }
            if qa.get("is_impossible").and_then(Value::as_bool) == Some(true) && !answers.is_empty()
            {
                return Err(cx.err(
                    &format!("{qpath}.answers"),
                    "is_impossible is true but answers are given",
                ));
            }
            out.push(Example {
                id: cx.string(qa, &qpath, "id")?,
                title: title.clone(),
                context: context.clone(),
                question: cx.string(qa, &qpath, "question")?,
                answers,
                path: qpath,
            });
        }
    }
    Ok(())
}

fn read_flat(cx: &Ctx, rec: &Value, path: &str) -> Result<Example, SquadError> {
    let context = cx.string(rec, path, "context")?;
    let chars = context.chars().count();
    let apath = format!("{path}.answers");
    let answers_v = cx.field(rec, path, "answers")?;
    let mut answers = Vec::new();
    match answers_v {
        Value::Object(_) => {
            let texts = cx.array(answers_v, &apath, "text")?;
            let starts = cx.array(answers_v, &apath, "answer_start")?;
            if texts.len() != starts.len() {
                return Err(cx.err(
                    &apath,
                    format!(
                        "{} texts but {} answer_start values",
                        texts.len(),
                        starts.len()
                    ),
                ));
            }
            for (i, (t, s)) in texts.iter().zip(starts).enumerate() {
                answers.push(cx.answer(&format!("{apath}[{i}]"), t, s, chars)?);
            }
        }
        Value::Array(items) => {
            for (i, a) in items.iter().enumerate() {
                let p = format!("{apath}[{i}]");
                answers.push(cx.answer(
                    &p,
                    cx.field(a, &p, "text")?,
                    cx.field(a, &p, "answer_start")?,
                    chars,
                )?);
            }
        }
        other => {
            return Err(cx.err(
                &apath,
                format!("expected an object or an array, found {}", kind(other)),
            ));
        }
    }
    Ok(Example {
        id: cx.string(rec, path, "id")?,
        title: rec
            .get("title")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        context: context.into(),
        question: cx.string(rec, path, "question")?,
        answers,
        path: path.into(),
    })
}
