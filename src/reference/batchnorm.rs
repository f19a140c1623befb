//! Batch norm: inference form (running statistics), training form (batch statistics,
//! running update) and its backward.

use super::{f, Real};

/// Batch norm in inference form: y = (x - mean) / sqrt(var + eps) * gamma + beta.
pub fn forward(
    x: &[f32],
    (n, c, h, w): (usize, usize, usize, usize),
    (gamma, beta): (&[f32], &[f32]),
    (mean, var): (&[f32], &[f32]),
    eps: f32,
    relu: bool,
) -> Vec<f32> {
    assert_eq!(x.len(), n * c * h * w);
    let mut out = vec![0.0f32; x.len()];
    for b in 0..n {
        for ch in 0..c {
            let inv = 1.0 / (var[ch] as f64 + eps as f64).sqrt();
            for p in 0..h * w {
                let i = (b * c + ch) * h * w + p;
                let v = ((x[i] as f64 - mean[ch] as f64) * inv * gamma[ch] as f64 + beta[ch] as f64)
                    as f32;
                out[i] = if relu {
                    super::relu(v as f64) as f32
                } else {
                    v
                };
            }
        }
    }
    out
}

/// Batch norm in training form: per-channel mean and biased variance over (n, h, w),
/// y = gamma (x - mean) / sqrt(var + eps) + beta. Returns (y, mean, biased var).
#[allow(clippy::type_complexity)]
pub fn train<T: Real>(
    x: &[T],
    (n, c, h, w): (usize, usize, usize, usize),
    gamma: &[T],
    beta: &[T],
    eps: f64,
) -> (Vec<T>, Vec<f64>, Vec<f64>) {
    let hw = h * w;
    let cnt = (n * hw) as f64;
    let mut y = vec![T::of(0.0); x.len()];
    let (mut means, mut vars) = (vec![0.0; c], vec![0.0; c]);
    for ch in 0..c {
        let vals = || (0..n).flat_map(move |b| (0..hw).map(move |p| (b * c + ch) * hw + p));
        let mean = vals().map(|i| f(x[i])).sum::<f64>() / cnt;
        let var = vals().map(|i| (f(x[i]) - mean).powi(2)).sum::<f64>() / cnt;
        let inv = 1.0 / (var + eps).sqrt();
        for i in vals() {
            y[i] = T::of((f(x[i]) - mean) * inv * f(gamma[ch]) + f(beta[ch]));
        }
        means[ch] = mean;
        vars[ch] = var;
    }
    (y, means, vars)
}

/// PyTorch's running-statistics update: running = (1 - momentum) running + momentum batch,
/// with the unbiased variance (count / (count - 1)) for running_var.
pub fn running_update(
    running_mean: &mut [f32],
    running_var: &mut [f32],
    mean: &[f64],
    var_biased: &[f64],
    count: usize,
    momentum: f64,
) {
    let unbias = count as f64 / (count as f64 - 1.0).max(1.0);
    for ch in 0..running_mean.len() {
        running_mean[ch] =
            ((1.0 - momentum) * running_mean[ch] as f64 + momentum * mean[ch]) as f32;
        running_var[ch] =
            ((1.0 - momentum) * running_var[ch] as f64 + momentum * var_biased[ch] * unbias) as f32;
    }
}

/// Gradients of `batchnorm_train`: (dx, dgamma, dbeta).
#[allow(clippy::type_complexity)]
pub fn backward<T: Real>(
    x: &[T],
    (n, c, h, w): (usize, usize, usize, usize),
    gamma: &[T],
    eps: f64,
    dy: &[T],
) -> (Vec<T>, Vec<T>, Vec<T>) {
    let hw = h * w;
    let cnt = (n * hw) as f64;
    let mut dx = vec![T::of(0.0); x.len()];
    let (mut dg, mut dbt) = (vec![T::of(0.0); c], vec![T::of(0.0); c]);
    for ch in 0..c {
        let vals = || (0..n).flat_map(move |b| (0..hw).map(move |p| (b * c + ch) * hw + p));
        let mean = vals().map(|i| f(x[i])).sum::<f64>() / cnt;
        let var = vals().map(|i| (f(x[i]) - mean).powi(2)).sum::<f64>() / cnt;
        let inv = 1.0 / (var + eps).sqrt();
        let xhat = |i: usize| (f(x[i]) - mean) * inv;
        let sum_dy: f64 = vals().map(|i| f(dy[i])).sum();
        let sum_dy_xhat: f64 = vals().map(|i| f(dy[i]) * xhat(i)).sum();
        for i in vals() {
            let g = f(gamma[ch]) * inv / cnt * (cnt * f(dy[i]) - sum_dy - xhat(i) * sum_dy_xhat);
            dx[i] = T::of(g);
        }
        dg[ch] = T::of(sum_dy_xhat);
        dbt[ch] = T::of(sum_dy);
    }
    (dx, dg, dbt)
}
