//! Local response normalisation across channels (PyTorch semantics): forward and backward.

use super::{f, Real};
use crate::model::LrnParams;

/// Local response normalisation across channels, PyTorch's `LocalResponseNorm`:
/// b_c = a_c / (k + alpha / size * sum_{c' in window(c)} a_c'^2)^beta, where the window
/// spans channels c - size/2 ..= c + (size - 1)/2 and zeros stand beyond the edges.
pub fn forward<T: Real>(
    x: &[T],
    (n, c, h, w): (usize, usize, usize, usize),
    p: &LrnParams,
) -> Vec<T> {
    let LrnParams {
        size,
        alpha,
        beta,
        k,
    } = *p;
    assert_eq!(x.len(), n * c * h * w);
    let mut out = vec![T::of(0.0); x.len()];
    let lo = size / 2;
    let hi = (size - 1) / 2;
    for b in 0..n {
        for ch in 0..c {
            for p in 0..h * w {
                let mut sq = 0.0f64;
                let first = ch.saturating_sub(lo);
                let last = (ch + hi).min(c - 1);
                for j in first..=last {
                    let v: f64 = x[(b * c + j) * h * w + p].into();
                    sq += v * v;
                }
                let d = (k as f64 + alpha as f64 / size as f64 * sq).powf(beta as f64);
                let i = (b * c + ch) * h * w + p;
                out[i] = T::of(Into::<f64>::into(x[i]) / d);
            }
        }
    }
    out
}

/// Gradient of `lrn` (PyTorch's LocalResponseNorm) given dy.
pub fn backward<T: Real>(
    x: &[T],
    (n, c, h, w): (usize, usize, usize, usize),
    p: &LrnParams,
    dy: &[T],
) -> Vec<T> {
    let size = p.size;
    let (alpha, beta, k) = (p.alpha as f64, p.beta as f64, p.k as f64);
    let (lo, hi) = (size / 2, (size - 1) / 2);
    let hw = h * w;
    let at = |b: usize, ch: usize, p: usize| (b * c + ch) * hw + p;
    // d_i = k + alpha/size * sum of squares over i's window.
    let d = |b: usize, i: usize, p: usize| {
        let sq: f64 = (i.saturating_sub(lo)..=(i + hi).min(c - 1))
            .map(|j| f(x[at(b, j, p)]).powi(2))
            .sum();
        k + alpha / size as f64 * sq
    };
    let mut dx = vec![T::of(0.0); x.len()];
    for b in 0..n {
        for p in 0..hw {
            let ds: Vec<f64> = (0..c).map(|i| d(b, i, p)).collect();
            for j in 0..c {
                let xj = f(x[at(b, j, p)]);
                // Channels i whose window holds j: i - lo <= j <= i + hi.
                let cross: f64 = (j.saturating_sub(hi)..=(j + lo).min(c - 1))
                    .map(|i| f(dy[at(b, i, p)]) * f(x[at(b, i, p)]) * ds[i].powf(-beta - 1.0))
                    .sum();
                let g = f(dy[at(b, j, p)]) * ds[j].powf(-beta)
                    - 2.0 * alpha * beta / size as f64 * xj * cross;
                dx[at(b, j, p)] = T::of(g);
            }
        }
    }
    dx
}
