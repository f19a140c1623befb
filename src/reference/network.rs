//! A whole network on the CPU, layer by layer from the reference ops and the model's layer
//! list, unfused and in f32 storage with f64 accumulation: the yardstick for the executor.

use super::{avgpool, batchnorm, conv, im2col, linear, lrn, pool};
use crate::error::{shape_err, Result};
use crate::model::{Model, Op, Tensor, Weights, BN_EPS};

/// Runs `model` on `input` [n, c, h, w] up to and including layer `last` (all layers when
/// `None`) and returns that layer's output, [n, c, h, w] or [n, f] once flattened.
pub fn forward(
    model: &Model,
    weights: &Weights,
    input: &Tensor,
    last: Option<usize>,
) -> Result<Tensor> {
    let [c, h, w] = model.input_dims();
    if input.shape.len() != 4 || input.shape[1..] != [c, h, w] || input.shape[0] == 0 {
        return Err(shape_err!(
            "input of shape {:?}, {} takes [n, {c}, {h}, {w}]",
            input.shape,
            model.name()
        ));
    }
    let n = input.shape[0];
    let last = last.unwrap_or(model.layers().len() - 1);
    let mut x = input.data.clone();
    for layer in &model.layers()[..=last] {
        let [ic, ih, iw] = layer.input;
        let dims = (n, ic, ih, iw);
        let get = |suffix: &str| -> Result<&[f32]> {
            let name = format!("{}.{suffix}", layer.key);
            let shape = layer
                .tensors()
                .into_iter()
                .find(|t| t.0 == name)
                .map(|t| t.1)
                .unwrap_or_default();
            Ok(&weights.expect(&name, &shape)?.data)
        };
        x = match layer.op {
            Op::Conv { c_out, k, .. } => {
                conv::forward(&x, dims, (get("weight")?, get("bias")?), c_out, k, false)
            }
            Op::BatchNorm { .. } => batchnorm::forward(
                &x,
                dims,
                (get("weight")?, get("bias")?),
                (get("running_mean")?, get("running_var")?),
                BN_EPS,
                false,
            ),
            Op::Relu => x.iter().map(|&v| super::relu(v as f64) as f32).collect(),
            Op::Lrn(p) => lrn::forward(&x, dims, &p),
            Op::MaxPool => pool::forward(&x, dims).0,
            Op::AdaptiveAvgPool { h, w } => avgpool::forward(&x, dims, h, w),
            Op::Flatten | Op::Dropout { .. } => x,
            Op::Linear { k, n: n_out } => {
                linear::forward(&x, n, k, get("weight")?, get("bias")?, n_out, false)
            }
        };
    }
    let mut shape = vec![n];
    shape.extend(model.layers()[last].shape());
    Tensor::new(shape, x)
}

/// Dense evaluation on the CPU: the feature layers as in [`forward`], then each FC layer
/// applied at every window position of the last feature map (fc6's window is the average
/// pool's output size). Returns [n, positions, classes].
pub fn forward_dense(model: &Model, weights: &Weights, input: &Tensor) -> Result<Tensor> {
    let layers = model.layers();
    let pool = layers
        .iter()
        .position(|l| matches!(l.op, Op::AdaptiveAvgPool { .. }))
        .ok_or_else(|| shape_err!("dense evaluation needs the model's average pool"))?;
    let Op::AdaptiveAvgPool { h: kh, w: kw } = layers[pool].op else {
        return Err(shape_err!("layer {pool} is not the average pool"));
    };
    let n = input.shape[0];
    let feats = forward(model, weights, input, Some(pool - 1))?;
    let [c, h, w] = layers[pool].input;
    if h < kh || w < kw {
        return Err(shape_err!(
            "a {h}x{w} feature map is smaller than the {kh}x{kw} window"
        ));
    }
    let positions = (h - kh + 1) * (w - kw + 1);
    let mut x = im2col::forward(&feats.data, (n, c, h, w), kh, kw);
    let mut classes = 0;
    for layer in &layers[pool + 1..] {
        match layer.op {
            Op::Linear { k, n: n_out } => {
                let wt = weights.expect(&format!("{}.weight", layer.key), &[n_out, k])?;
                let b = weights.expect(&format!("{}.bias", layer.key), &[n_out])?;
                x = linear::forward(&x, n * positions, k, &wt.data, &b.data, n_out, false);
                classes = n_out;
            }
            Op::Relu => x
                .iter_mut()
                .for_each(|v| *v = super::relu(*v as f64) as f32),
            _ => {}
        }
    }
    Tensor::new(vec![n, positions, classes], x)
}
