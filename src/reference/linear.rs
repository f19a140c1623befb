//! Fully connected layers: forward and gradients.

use super::{f, Real};

/// Fully connected: y[m, o] = sum_k x[m, k] * weight[o, k] + bias`[o]` (torchvision's layout).
pub fn forward<T: Real>(
    x: &[T],
    m: usize,
    k: usize,
    weight: &[T],
    bias: &[T],
    n_out: usize,
    relu: bool,
) -> Vec<T> {
    assert_eq!(x.len(), m * k);
    assert_eq!(weight.len(), n_out * k);
    assert_eq!(bias.len(), n_out);
    let mut out = vec![T::of(0.0); m * n_out];
    for r in 0..m {
        let xr = &x[r * k..(r + 1) * k];
        for o in 0..n_out {
            let wr = &weight[o * k..(o + 1) * k];
            let mut acc: f64 = bias[o].into();
            for (a, b) in xr.iter().zip(wr) {
                acc += Into::<f64>::into(*a) * Into::<f64>::into(*b);
            }
            out[r * n_out + o] = T::of(if relu { super::relu(acc) } else { acc });
        }
    }
    out
}

/// Gradients of `linear` (y = x·Wᵀ + b): (dx [m, k], dw [n_out, k], db `[n_out]`).
#[allow(clippy::type_complexity)]
pub fn backward<T: Real>(
    x: &[T],
    m: usize,
    k: usize,
    weight: &[T],
    dy: &[T],
    n_out: usize,
) -> (Vec<T>, Vec<T>, Vec<T>) {
    assert_eq!(x.len(), m * k);
    assert_eq!(dy.len(), m * n_out);
    let mut dx = vec![T::of(0.0); m * k];
    let mut dw = vec![T::of(0.0); n_out * k];
    let mut db = vec![T::of(0.0); n_out];
    for r in 0..m {
        for j in 0..k {
            let s: f64 = (0..n_out)
                .map(|o| f(dy[r * n_out + o]) * f(weight[o * k + j]))
                .sum();
            dx[r * k + j] = T::of(s);
        }
    }
    for o in 0..n_out {
        for j in 0..k {
            let s: f64 = (0..m).map(|r| f(dy[r * n_out + o]) * f(x[r * k + j])).sum();
            dw[o * k + j] = T::of(s);
        }
        db[o] = T::of((0..m).map(|r| f(dy[r * n_out + o])).sum());
    }
    (dx, dw, db)
}
