//! What a run trains on: labelled windows (negatives included) and the held-out
//! articles, and the seeded order in which updates take them.

use megaqa_model::TokenizerFiles;
use megaqa_text::negatives::splitmix64;
use megaqa_text::{Dataset, TrainFeature, train_features, with_negatives, with_swapped_questions};

use super::TrainConfig;
use crate::engine::tokenizer_of;

/// Windows with the token positions of their answers.
pub struct LabelledBatch {
    pub batch: megaqa_model::Batch,
    pub starts: Vec<i64>,
    pub ends: Vec<i64>,
}

/// Deterministic permutation of `0..n` for one epoch (splitmix64 driving
/// Fisher-Yates): the same on every platform and every build, so that a resumed
/// run sees the same order an uninterrupted one would.
pub fn epoch_order(n: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut state = seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (splitmix64(&mut state) % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

/// The order in which one epoch of a run over `features` takes them: seeded, and with
/// `group_by_length`, cut into chunks of 64 updates each sorted by window length. Made
/// once per epoch ([`EpochOrder`]): made per update, it cost the GPU recipe's 185k
/// windows ~5 ms an update (its export: 120 s, now 34 s), 8% of an update at 500
/// windows/s.
fn order_of_epoch(features: &[TrainFeature], config: &TrainConfig, epoch: u64) -> Vec<usize> {
    let mut order = epoch_order(features.len(), config.seed, epoch);
    if config.group_by_length {
        for chunk in order.chunks_mut(config.batch_size * config.grad_accum * 64) {
            chunk.sort_by_key(|&i| std::cmp::Reverse(features[i].window.len()));
        }
    }
    order
}

/// The order of the epoch last asked for, kept for that epoch's other updates.
#[derive(Default)]
pub(super) struct EpochOrder(Option<(u64, Vec<usize>)>);

impl EpochOrder {
    /// The micro-batches (feature indices) of update `step` of a run over `features`.
    pub(super) fn micro_batches(
        &mut self,
        features: &[TrainFeature],
        config: &TrainConfig,
        steps_per_epoch: u64,
        step: u64,
    ) -> Vec<Vec<usize>> {
        let (epoch, j) = (step / steps_per_epoch, (step % steps_per_epoch) as usize);
        let (_, order) = match &mut self.0 {
            Some(kept) if kept.0 == epoch => kept,
            slot => slot.insert((epoch, order_of_epoch(features, config, epoch))),
        };
        update_of(order, config, j)
    }
}

/// The micro-batches of update `j` of an epoch taken in `order`.
fn update_of(order: &[usize], config: &TrainConfig, j: usize) -> Vec<Vec<usize>> {
    let (b, a) = (config.batch_size, config.grad_accum);
    (0..a)
        .map(|k| {
            let from = ((j * a + k) * b).min(order.len());
            let to = (from + b).min(order.len());
            order[from..to].to_vec()
        })
        .filter(|mb| !mb.is_empty())
        .collect()
}

/// The labelled windows to train on (negatives included) and the held-out articles.
pub(super) fn features_of(
    origin: &str,
    files: Option<&TokenizerFiles>,
    config: &TrainConfig,
    data: &Dataset,
) -> Result<(Vec<TrainFeature>, Option<Dataset>), String> {
    let files = files.ok_or_else(|| {
        format!("{origin}: the checkpoint carries no tokenizer (vocab.txt or tokenizer.json)")
    })?;
    let articles = data.titles().len();
    if config.holdout_articles >= articles {
        return Err(format!(
            "{}: --holdout-articles {} leaves none of its {articles} articles to train on",
            data.file, config.holdout_articles
        ));
    }
    let (train, holdout) = data.split_last_articles(config.holdout_articles);
    let negatives = |d: &Dataset| {
        let other_paragraphs = with_negatives(&d.examples, config.negatives, config.seed);
        with_swapped_questions(&other_paragraphs, config.swap_negatives, config.seed)
    };
    let examples = negatives(&train);
    let tokenizer = tokenizer_of(origin, files, config.windows()).map_err(|e| e.to_string())?;
    let features = train_features(&tokenizer, &examples)
        .map_err(|(i, e)| format!("{}: {}: {e}", data.file, examples[i].path))?;
    if features.is_empty() {
        return Err(format!("{}: no questions to train on", data.file));
    }
    let holdout = (config.holdout_articles > 0).then(|| Dataset {
        examples: negatives(&holdout),
        ..holdout
    });
    Ok((features, holdout))
}
