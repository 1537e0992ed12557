//! Scoring a run as it trains: the official SQuAD v2.0 figures of the current weights,
//! and the null threshold chosen on the held-out articles.

use megaqa_text::Dataset;
use megaqa_text::scoring::evaluate;
use web_time::Instant;

use super::{Event, Trainer};
use crate::engine::{Engine, tokenizer_of};

impl Trainer {
    /// Official SQuAD v2.0 scores of the current weights on `data`.
    pub fn evaluate(
        &self,
        data: &Dataset,
    ) -> Result<serde_json::Map<String, serde_json::Value>, String> {
        // The weights as they are (no copy through a checkpoint), at the run's window
        // geometry and with the null threshold chosen so far.
        let files = self
            .tokenizer_files
            .as_ref()
            .ok_or("this run has no tokenizer to evaluate with")?;
        let tokenizer = tokenizer_of(
            &self.out.display().to_string(),
            files,
            self.config.windows(),
        )
        .map_err(|e| e.to_string())?;
        let mut engine = Engine::from_network(self.model.clone(), tokenizer, self.device.clone());
        engine.decode.null_threshold = self.null_threshold.unwrap_or(0.0);
        let preds = engine
            .predict_examples(&data.examples, self.config.batch_size)
            .map_err(|e| e.to_string())?;
        let texts: Vec<(String, String)> = preds
            .iter()
            .map(|(id, p)| (id.clone(), p.text().to_string()))
            .collect();
        let odds: Vec<(String, f64)> = preds
            .iter()
            .map(|(id, p)| (id.clone(), p.null_odds))
            .collect();
        let mut scores = evaluate(data, &texts, Some(&odds), 1.0).map_err(|e| e.to_string())?;
        // A model early in training (or trained on little data) often lets the null
        // answer win everywhere. The official best-threshold search, run over the best
        // span of every question with its null odds as the score, says which
        // `--null-threshold` would have scored best here, and what F1 it gets.
        let forced: Vec<(String, String)> = preds
            .iter()
            .map(|(id, p)| (id.clone(), p.best_span.text.clone()))
            .collect();
        let search =
            evaluate(data, &forced, Some(&odds), f64::INFINITY).map_err(|e| e.to_string())?;
        for (from, to) in [
            ("best_f1_thresh", "best_null_threshold"),
            ("best_f1", "f1_at_best_null_threshold"),
        ] {
            if let Some(v) = search.get(from) {
                scores.insert(to.into(), v.clone());
            }
        }
        // The official search reports 0 when answering nothing at all scores best
        // (its sweep starts there with threshold 0, meant for probabilities in [0, 1]);
        // for null odds that means "below every question's odds".
        let unanswerable = data.examples.iter().filter(|e| e.is_impossible()).count();
        let all_null = 100.0 * unanswerable as f64 / data.examples.len().max(1) as f64;
        if search.get("best_f1").and_then(serde_json::Value::as_f64) == Some(all_null) {
            let lowest = odds.iter().map(|(_, o)| *o).fold(f64::INFINITY, f64::min);
            if lowest.is_finite() {
                scores.insert("best_null_threshold".into(), (lowest - 1.0).into());
            }
        }
        Ok(scores)
    }

    /// Chooses the null threshold on the held-out articles (first, so that the
    /// evaluation decodes with it), then scores `eval`, reporting both.
    pub(super) fn evaluate_round(
        &mut self,
        eval: Option<&Dataset>,
        on: &mut dyn FnMut(&Event) -> Result<(), String>,
    ) -> Result<(), String> {
        let spe = self.steps_per_epoch();
        let holdout = self.holdout.take();
        for (set, data) in [("holdout", holdout.as_ref()), ("eval", eval)] {
            let Some(data) = data else { continue };
            let t0 = Instant::now();
            let scores = self.evaluate(data)?;
            if set == "holdout" {
                self.null_threshold = scores
                    .get("best_null_threshold")
                    .and_then(serde_json::Value::as_f64);
            }
            on(&Event::Eval {
                set,
                epoch: self.step as f64 / spe as f64,
                step: self.step,
                seconds: t0.elapsed().as_secs_f64(),
                scores,
            })?;
        }
        self.holdout = holdout;
        Ok(())
    }
}
