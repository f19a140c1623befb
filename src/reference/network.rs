//! A whole network on the CPU, layer by layer from the reference ops and the model's layer
//! list, unfused and in f32 storage with f64 accumulation: the yardstick for the executor.

use super::{adaptive_avg_pool, batchnorm, conv2d, linear, lrn, maxpool2x2};
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
                conv2d(&x, dims, get("weight")?, get("bias")?, c_out, k, false)
            }
            Op::BatchNorm { .. } => batchnorm(
                &x,
                dims,
                get("weight")?,
                get("bias")?,
                get("running_mean")?,
                get("running_var")?,
                BN_EPS,
                false,
            ),
            Op::Relu => x.iter().map(|v| v.max(0.0)).collect(),
            Op::Lrn(p) => lrn(&x, dims, p.size, p.alpha, p.beta, p.k),
            Op::MaxPool => maxpool2x2(&x, dims).0,
            Op::AdaptiveAvgPool { h, w } => adaptive_avg_pool(&x, dims, h, w),
            Op::Flatten | Op::Dropout { .. } => x,
            Op::Linear { k, n: n_out } => {
                linear(&x, n, k, get("weight")?, get("bias")?, n_out, false)
            }
        };
    }
    let mut shape = vec![n];
    shape.extend(model.layers()[last].shape());
    Tensor::new(shape, x)
}
