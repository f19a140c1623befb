//! One training step of a whole network on the CPU: forward keeping every layer's output,
//! softmax cross-entropy, backward through every layer, SGD on every parameter. Dropout is
//! the identity here (the GPU comparison runs with it off); batch norm uses batch
//! statistics and updates the running ones, as PyTorch's train mode does.

use super::{avgpool, batchnorm, conv, elementwise, linear, lrn, optim, pool, softmax};
use crate::error::{shape_err, Result};
use crate::model::{Model, Op, Tensor, Weights, BN_EPS};

/// Hyperparameters of one step.
#[derive(Clone, Copy, Debug)]
pub struct Sgd {
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
}

/// Runs one step on `x` [n, c, h, w] with `labels`, updating `weights` (and their batch
/// norm running statistics) and `velocity` (momentum buffers by parameter name, created
/// as zeros when missing). Returns the mean loss and the correct count.
pub fn step(
    model: &Model,
    weights: &mut Weights,
    velocity: &mut Weights,
    x: &Tensor,
    labels: &[u32],
    sgd: Sgd,
) -> Result<(f64, usize)> {
    let n = x.shape[0];
    let (outs, argmax) = forward(model, weights, x)?;
    let logits = outs.last().map_or(&x.data, |o| o);
    let (loss, dz, correct) = softmax::xent(logits, n, model.classes(), labels, 1.0 / n as f64);
    let grads = backward(model, weights, x, &outs, &argmax, dz)?;
    apply_sgd(weights, velocity, grads, sgd)?;
    Ok((loss, correct))
}

fn get(w: &Weights, name: String) -> Result<Vec<f32>> {
    Ok(w.get(&name)
        .ok_or_else(|| shape_err!("no tensor {name}"))?
        .data
        .clone())
}

/// The smallest gap, relative to the larger value, between the two largest inputs of any
/// 2x2 max-pool window in a training forward of `x` (exact ties of zeros, ReLU's, left
/// out: every implementation breaks them alike). Below the f32 rounding the GPU and this
/// reference accumulate over a few layers (about 1e-6), the two may pick different inputs
/// and route the gradient to different places, both correctly: a comparison of training
/// steps needs inputs with no such near-tie.
pub fn pool_margin(model: &Model, weights: &Weights, x: &Tensor) -> Result<f64> {
    let mut w = weights.clone();
    let (outs, _) = forward(model, &mut w, x)?;
    let n = x.shape[0];
    let mut margin = f64::INFINITY;
    for (i, l) in model.layers().iter().enumerate() {
        if l.op != Op::MaxPool {
            continue;
        }
        let input: &[f32] = if i == 0 { &x.data } else { &outs[i - 1] };
        let [c, h, wd] = l.input;
        for p in 0..n * c {
            for oy in 0..h / 2 {
                for ox in 0..wd / 2 {
                    let mut v: Vec<f64> = (0..4)
                        .map(|t| input[(p * h + oy * 2 + t / 2) * wd + ox * 2 + t % 2] as f64)
                        .collect();
                    v.sort_by(|a, b| b.total_cmp(a));
                    if v[0] != 0.0 {
                        margin = margin.min((v[0] - v[1]) / v[0].abs());
                    }
                }
            }
        }
    }
    Ok(margin)
}

/// The forward pass keeping every layer's output, and each max pool's argmax; batch norm
/// updates its running statistics in `weights`.
#[allow(clippy::type_complexity)]
fn forward(
    model: &Model,
    weights: &mut Weights,
    x: &Tensor,
) -> Result<(Vec<Vec<f32>>, Vec<Vec<u32>>)> {
    let n = x.shape[0];
    let layers = model.layers();
    let mut outs: Vec<Vec<f32>> = Vec::new();
    let mut argmax: Vec<Vec<u32>> = vec![Vec::new(); layers.len()];
    let mut cur = x.data.clone();
    for (i, l) in layers.iter().enumerate() {
        let [c, h, w] = l.input;
        let dims = (n, c, h, w);
        let k = &l.key;
        cur = match l.op {
            Op::Conv { c_out, k: ks, .. } => {
                let (wt, bs) = (
                    get(weights, format!("{k}.weight"))?,
                    get(weights, format!("{k}.bias"))?,
                );
                conv::forward(&cur, dims, (&wt, &bs), c_out, ks, false)
            }
            Op::BatchNorm { c: ch } => {
                let (g, bt) = (
                    get(weights, format!("{k}.weight"))?,
                    get(weights, format!("{k}.bias"))?,
                );
                let (y, mean, var) = batchnorm::train(&cur, dims, &g, &bt, BN_EPS as f64);
                let mut rm = get(weights, format!("{k}.running_mean"))?;
                let mut rv = get(weights, format!("{k}.running_var"))?;
                batchnorm::running_update(&mut rm, &mut rv, &mean, &var, n * h * w, 0.1);
                weights.insert(&format!("{k}.running_mean"), Tensor::new(vec![ch], rm)?);
                weights.insert(&format!("{k}.running_var"), Tensor::new(vec![ch], rv)?);
                y
            }
            Op::Relu => cur.iter().map(|&v| super::relu(v as f64) as f32).collect(),
            Op::Lrn(p) => lrn::forward(&cur, dims, &p),
            Op::MaxPool => {
                let (y, idx) = pool::forward(&cur, dims);
                argmax[i] = idx;
                y
            }
            Op::AdaptiveAvgPool { h: oh, w: ow } if (h, w) == (oh, ow) => cur,
            Op::AdaptiveAvgPool { h: oh, w: ow } => avgpool::forward(&cur, dims, oh, ow),
            Op::Flatten | Op::Dropout { .. } => cur,
            Op::Linear { k: kk, n: no } => {
                let (wt, bs) = (
                    get(weights, format!("{k}.weight"))?,
                    get(weights, format!("{k}.bias"))?,
                );
                linear::forward(&cur, n, kk, &wt, &bs, no, false)
            }
        };
        outs.push(cur.clone());
    }
    Ok((outs, argmax))
}

/// Every parameter's gradient, by name, from the loss gradient `g` of the logits.
fn backward(
    model: &Model,
    weights: &Weights,
    x: &Tensor,
    outs: &[Vec<f32>],
    argmax: &[Vec<u32>],
    mut g: Vec<f32>,
) -> Result<Vec<(String, Vec<f32>)>> {
    let n = x.shape[0];
    let layers = model.layers();
    let mut grads: Vec<(String, Vec<f32>)> = Vec::new();
    for i in (0..layers.len()).rev() {
        let l = &layers[i];
        let [c, h, w] = l.input;
        let dims = (n, c, h, w);
        let xin: &[f32] = if i == 0 { &x.data } else { &outs[i - 1] };
        let k = &l.key;
        g = match l.op {
            Op::Conv { c_out, k: ks, .. } => {
                let wt = get(weights, format!("{k}.weight"))?;
                let (dx, dw, db) = conv::backward(xin, dims, &wt, &g, c_out, ks);
                grads.push((format!("{k}.weight"), dw));
                grads.push((format!("{k}.bias"), db));
                dx
            }
            Op::BatchNorm { .. } => {
                let gm = get(weights, format!("{k}.weight"))?;
                let (dx, dg, dbt) = batchnorm::backward(xin, dims, &gm, BN_EPS as f64, &g);
                grads.push((format!("{k}.weight"), dg));
                grads.push((format!("{k}.bias"), dbt));
                dx
            }
            Op::Relu => elementwise::relu_backward(&outs[i], &g),
            Op::Lrn(p) => lrn::backward(xin, dims, &p, &g),
            Op::MaxPool => pool::backward(&g, &argmax[i], dims),
            Op::AdaptiveAvgPool { h: oh, w: ow } if (h, w) != (oh, ow) => {
                avgpool::backward(&g, dims, oh, ow)
            }
            Op::AdaptiveAvgPool { .. } | Op::Flatten | Op::Dropout { .. } => g,
            Op::Linear { k: kk, n: no } => {
                let wt = get(weights, format!("{k}.weight"))?;
                let (dx, dw, db) = linear::backward(xin, n, kk, &wt, &g, no);
                grads.push((format!("{k}.weight"), dw));
                grads.push((format!("{k}.bias"), db));
                dx
            }
        };
    }
    Ok(grads)
}

/// SGD with momentum and weight decay on each named parameter (momentum buffers created
/// as zeros where missing).
fn apply_sgd(
    weights: &mut Weights,
    velocity: &mut Weights,
    grads: Vec<(String, Vec<f32>)>,
    sgd: Sgd,
) -> Result<()> {
    for (name, gr) in grads {
        let t = weights
            .get_mut(&name)
            .ok_or_else(|| shape_err!("no tensor {name}"))?;
        if velocity.get(&name).is_none() {
            velocity.insert(&name, Tensor::zeros(t.shape.clone()));
        }
        let v = velocity
            .get_mut(&name)
            .ok_or_else(|| shape_err!("no velocity {name}"))?;
        optim::sgd(
            &mut t.data,
            &gr,
            &mut v.data,
            sgd.lr,
            sgd.momentum,
            sgd.weight_decay,
        );
    }
    Ok(())
}
