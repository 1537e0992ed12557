//! The network's parameters under their canonical checkpoint names (see
//! `checkpoint::names`), for visitors that need names: export to a checkpoint,
//! and the optimizer, whose state is saved and resumed by name.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use std::collections::BTreeMap;

use burn::tensor::{Device, Tensor};

use crate::checkpoint::{RawTensor, Weights};
use crate::config::ModelConfig;
use crate::network::QaModel;

/// What a visit does with each parameter, given its canonical name and whether the
/// checkpoint stores it transposed relative to Burn (Linear weights: Burn
/// `[in, out]`, checkpoints `[out, in]`).
pub trait VisitByName {
    fn param<const D: usize>(&mut self, name: String, transposed: bool, param: &Param<Tensor<D>>);
}

/// [`VisitByName`] for a mapper: each parameter is replaced by what it returns.
pub trait MapByName {
    fn param<const D: usize>(
        &mut self,
        name: String,
        transposed: bool,
        param: Param<Tensor<D>>,
    ) -> Param<Tensor<D>>;
}

/// Burn's module visitor and mapper for a [`VisitByName`] / [`MapByName`]: the one
/// place where Burn's module paths (`layers.3.qkv.weight`, `embeddings.ln.gamma`)
/// become canonical names.
pub struct ByName<V> {
    path: Vec<String>,
    pub inner: V,
}

impl<V> ByName<V> {
    pub fn new(inner: V) -> Self {
        ByName {
            path: Vec::new(),
            inner,
        }
    }
}

impl<V: VisitByName> ModuleVisitor for ByName<V> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let (name, transposed) = canonical(&self.path);
        self.inner.param(name, transposed, param);
    }
}

impl<V: MapByName> ModuleMapper for ByName<V> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (name, transposed) = canonical(&self.path);
        self.inner.param(name, transposed, param)
    }
}

/// The canonical name of the parameter at a Burn module path, and whether it is
/// stored transposed (see [`VisitByName`]).
pub fn canonical(path: &[String]) -> (String, bool) {
    let joined = path.join(".");
    if let Some(table) = joined
        .strip_prefix("embeddings.")
        .and_then(|rest| rest.strip_suffix(".weight"))
        .filter(|t| matches!(*t, "word" | "position" | "token_type"))
    {
        return (format!("embeddings.{table}"), false);
    }
    if let Some(module) = joined.strip_suffix(".gamma") {
        return (format!("{module}.weight"), false);
    }
    if let Some(module) = joined.strip_suffix(".beta") {
        return (format!("{module}.bias"), false);
    }
    let transpose = joined.ends_with(".weight");
    (joined, transpose)
}

/// Row-major `[rows, cols]` values transposed.
pub fn transpose<T: Copy + Default>(values: &[T], rows: usize, cols: usize) -> Vec<T> {
    let mut t = vec![T::default(); values.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = values[r * cols + c];
        }
    }
    t
}

struct Exporter {
    out: Weights,
    error: Option<String>,
}

impl VisitByName for Exporter {
    fn param<const D: usize>(&mut self, name: String, transposed: bool, param: &Param<Tensor<D>>) {
        let tensor = param.val();
        let mut shape = tensor.dims().to_vec();
        let values = match tensor.into_data().convert::<f32>().try_into_vec::<f32>() {
            Ok(v) => v,
            Err(e) => {
                self.error.get_or_insert(format!("{name}: {e:?}"));
                return;
            }
        };
        let values = if transposed && D == 2 {
            let t = transpose(&values, shape[0], shape[1]);
            shape.swap(0, 1);
            t
        } else {
            values
        };
        self.out.insert(name, RawTensor::from_f32(shape, &values));
    }
}

/// Every parameter a network of `cfg` has, by canonical name, with its shape in
/// checkpoint layout: read off the network itself (its uninitialised skeleton), so
/// the names and shapes a checkpoint is checked against are the ones loading fills.
pub fn checkpoint_shapes(cfg: &ModelConfig) -> BTreeMap<String, Vec<usize>> {
    struct Shapes(BTreeMap<String, Vec<usize>>);
    impl VisitByName for Shapes {
        fn param<const D: usize>(&mut self, name: String, transposed: bool, p: &Param<Tensor<D>>) {
            let mut shape = p.lazy_shape().to_vec();
            if transposed {
                shape.reverse();
            }
            self.0.insert(name, shape);
        }
    }
    let mut shapes = ByName::new(Shapes(BTreeMap::new()));
    // Nothing is allocated on the device: the skeleton's parameters stay lazy.
    QaModel::skeleton(cfg, &Device::flex()).visit(&mut shapes);
    shapes.inner.0
}

impl QaModel {
    /// Every parameter in f32 under its canonical name, in checkpoint layout: what
    /// `Checkpoint::to_converted_bytes` writes and `QaModel::from_weights` reads back.
    /// Reads the device synchronously (native only).
    pub fn to_weights(&self) -> Result<Weights, String> {
        let mut ex = ByName::new(Exporter {
            out: Weights::new(),
            error: None,
        });
        self.visit(&mut ex);
        match ex.inner.error {
            Some(e) => Err(format!("reading parameter {e}")),
            None => Ok(ex.inner.out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Vec<String> {
        s.split('.').map(str::to_string).collect()
    }

    #[test]
    fn burn_paths_map_to_canonical_names() {
        assert_eq!(
            canonical(&p("embeddings.word.weight")),
            ("embeddings.word".into(), false)
        );
        assert_eq!(
            canonical(&p("layers.3.qkv.weight")),
            ("layers.3.qkv.weight".into(), true)
        );
        assert_eq!(
            canonical(&p("layers.3.qkv.bias")),
            ("layers.3.qkv.bias".into(), false)
        );
        assert_eq!(
            canonical(&p("final_ln.gamma")),
            ("final_ln.weight".into(), false)
        );
        assert_eq!(
            canonical(&p("embeddings.ln.beta")),
            ("embeddings.ln.bias".into(), false)
        );
    }
}
