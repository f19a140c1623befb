//! Starting points other than a random draw: which leading layers a fine-tune keeps
//! frozen, weights loaded into a model with another head, and the paper's start of a
//! deeper net from a trained shallower one.

use crate::error::{Error, Result};
use crate::model::{Model, Op, Weights};

/// The number of leading layers of `model` that `--freeze SPEC` keeps fixed: `features`
/// (every conv and batch norm, up to the classifier) or `conv1..convN` / `convN` (blocks 1
/// to N, up to and including poolN).
pub fn frozen_prefix(model: &Model, spec: &str) -> Result<usize> {
    let layers = model.layers();
    let bad = |m: String| Error::InvalidOption {
        option: "--freeze".into(),
        message: m,
    };
    let spec = spec.trim();
    if spec == "features" {
        return layers
            .iter()
            .position(|l| l.flat() || matches!(l.op, Op::AdaptiveAvgPool { .. }))
            .ok_or_else(|| bad("the model has no classifier to train".into()));
    }
    let last = spec.strip_prefix("conv1..").unwrap_or(spec);
    let block = last
        .strip_prefix("conv")
        .and_then(|b| b.parse::<usize>().ok())
        .filter(|b| *b >= 1)
        .ok_or_else(|| {
            bad(format!(
                "'{spec}': use features, or conv1..convN for blocks 1 to N"
            ))
        })?;
    let pool = format!("pool{block}");
    layers
        .iter()
        .position(|l| l.name == pool)
        .map(|i| i + 1)
        .ok_or_else(|| {
            bad(format!(
                "{} has no block {block} ending in {pool}",
                model.name()
            ))
        })
}

/// Weights for `model` from `loaded` (a pretrained file): every tensor of the same name and
/// shape is taken; the last FC layer, where its class count differs, is drawn anew
/// (Kaiming, from `seed`). Returns the weights and the names drawn anew; any other tensor
/// that is missing or of another shape is an error naming it.
pub fn init_from(model: &Model, loaded: &Weights, seed: u64) -> Result<(Weights, Vec<String>)> {
    let mut w = Weights::init(model, crate::model::Init::Kaiming, seed);
    let head = model
        .layers()
        .last()
        .map(|l| l.key.clone())
        .unwrap_or_default();
    let mut fresh = Vec::new();
    for l in model.layers() {
        for (name, shape) in l.tensors() {
            match loaded.get(&name) {
                Some(t) if t.shape == shape => w.insert(&name, t.clone()),
                Some(_) if l.key == head => fresh.push(name),
                Some(t) => {
                    return Err(Error::Shape(format!(
                        "tensor '{name}' is {:?} in the weights, {} layer {} takes {shape:?}",
                        t.shape,
                        model.name(),
                        l.name
                    )))
                }
                None => {
                    return Err(Error::Shape(format!(
                        "the weights have no tensor '{name}' ({} layer {})",
                        model.name(),
                        l.name
                    )))
                }
            }
        }
    }
    Ok((w, fresh))
}

/// How many conv layers and FC layers the paper took from a trained net A into a deeper
/// one: its first four convs and its last three FC layers.
pub const FROM_SHALLOWER: (usize, usize) = (4, 3);

/// The paper's initialisation of a deeper net from a trained shallower one (its config A
/// for B..E): `shallow`'s first four conv layers go to `model`'s layers of the same name
/// (A's conv1_1, conv2_1, conv3_1, conv3_2, which B..E have at the same shapes), its last
/// three FC layers to `model`'s last three, in order; every other tensor, batch norm's
/// included, is drawn by `init` from `seed`. Returns the weights and, per layer taken,
/// "to <- from" names; a layer `model` lacks, or of another shape, is an error naming it.
pub fn init_from_shallower(
    model: &Model,
    shallow: &Model,
    weights: &Weights,
    init: crate::model::Init,
    seed: u64,
) -> Result<(Weights, Vec<String>)> {
    let mut w = Weights::init(model, init, seed);
    let of = |m: &Model, conv: bool| -> Vec<crate::model::Layer> {
        m.layers()
            .iter()
            .filter(|l| match l.op {
                Op::Conv { .. } => conv,
                Op::Linear { .. } => !conv,
                _ => false,
            })
            .cloned()
            .collect()
    };
    let (convs, fcs) = (of(shallow, true), of(model, false));
    let (n_conv, n_fc) = FROM_SHALLOWER;
    let shallow_fcs = of(shallow, false);
    if convs.len() < n_conv || shallow_fcs.len() < n_fc || fcs.len() < n_fc {
        return Err(Error::Shape(format!(
            "initialising from a shallower net takes its first {n_conv} conv layers and last \
             {n_fc} FC layers; {} has {} and {}, {} has {} FC layers",
            shallow.name(),
            convs.len(),
            shallow_fcs.len(),
            model.name(),
            fcs.len()
        )));
    }
    let mut pairs = Vec::new();
    for from in &convs[..n_conv] {
        let to = of(model, true)
            .into_iter()
            .find(|l| l.name == from.name)
            .ok_or_else(|| {
                Error::Shape(format!(
                    "{} has no layer {} to take {}'s",
                    model.name(),
                    from.name,
                    shallow.name()
                ))
            })?;
        pairs.push((from.clone(), to));
    }
    let tail = |v: &[crate::model::Layer]| v[v.len() - n_fc..].to_vec();
    pairs.extend(tail(&shallow_fcs).into_iter().zip(tail(&fcs)));
    let mut taken = Vec::new();
    for (from, to) in pairs {
        for ((src, want), (dst, shape)) in from.tensors().into_iter().zip(to.tensors()) {
            let t = weights.get(&src).ok_or_else(|| {
                Error::Shape(format!(
                    "the weights have no tensor '{src}' ({})",
                    from.name
                ))
            })?;
            if t.shape != shape || want != shape {
                return Err(Error::Shape(format!(
                    "{} {} is {:?}, {} {} takes {shape:?}",
                    shallow.name(),
                    from.name,
                    t.shape,
                    model.name(),
                    to.name
                )));
            }
            w.insert(&dst, t.clone());
        }
        taken.push(format!("{} <- {}", to.name, from.name));
    }
    Ok((w, taken))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Init;

    fn small(m: Model) -> Model {
        m.with_input(3, 32, 32)
            .and_then(|m| m.with_hidden(&[64, 48]))
            .and_then(|m| m.with_classes(10))
            .unwrap()
    }

    /// D from a trained A, as the paper: A's conv1_1, conv2_1, conv3_1 and conv3_2 and its
    /// three FC layers, bitwise; every other tensor as `init` draws it.
    #[test]
    fn a_deeper_net_takes_the_papers_layers_from_net_a() {
        let (a, d) = (small(Model::vgg11()), small(Model::vgg16()));
        let trained = Weights::init(&a, Init::Kaiming, 3);
        let (w, taken) = init_from_shallower(&d, &a, &trained, Init::Paper, 5).unwrap();
        assert!(w.validate(&d).is_ok());
        assert_eq!(
            taken,
            [
                "conv1_1 <- conv1_1",
                "conv2_1 <- conv2_1",
                "conv3_1 <- conv3_1",
                "conv3_2 <- conv3_2",
                "fc6 <- fc6",
                "fc7 <- fc7",
                "fc8 <- fc8"
            ]
        );
        let drawn = Weights::init(&d, Init::Paper, 5);
        let key = |m: &Model, name: &str| {
            let l = m.layers().iter().find(|l| l.name == name).unwrap();
            l.tensors().into_iter().map(|t| t.0).collect::<Vec<_>>()
        };
        for name in [
            "conv1_1", "conv2_1", "conv3_1", "conv3_2", "fc6", "fc7", "fc8",
        ] {
            for (from, to) in key(&a, name).iter().zip(key(&d, name)) {
                assert_eq!(trained.get(from), w.get(&to), "{name}");
            }
        }
        for name in ["conv1_2", "conv2_2", "conv3_3", "conv4_1", "conv5_3"] {
            for t in key(&d, name) {
                assert_eq!(drawn.get(&t), w.get(&t), "{name}");
            }
        }
    }

    /// A net without A's layer names, or with other FC widths, is refused by name.
    #[test]
    fn layers_that_do_not_fit_are_named() {
        let (a, d) = (small(Model::vgg11()), small(Model::vgg16()));
        let trained_d = Weights::init(&d, Init::Kaiming, 3);
        let err = init_from_shallower(&a, &d, &trained_d, Init::Paper, 5)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no layer conv1_2"), "{err}");
        let wide = Model::vgg11()
            .with_input(3, 32, 32)
            .and_then(|m| m.with_hidden(&[32, 48]))
            .and_then(|m| m.with_classes(10))
            .unwrap();
        let trained = Weights::init(&wide, Init::Kaiming, 3);
        let err = init_from_shallower(&d, &wide, &trained, Init::Paper, 5)
            .unwrap_err()
            .to_string();
        assert!(err.contains("fc6") && err.contains("[32, 25088]"), "{err}");
    }
}
