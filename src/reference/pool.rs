//! 2x2 max pooling, stride 2, floor for odd sizes: forward with argmax, and backward.

use super::{f, Real};

/// 2x2 max pooling, stride 2, floor for odd sizes (PyTorch's default). Also returns, per
/// output, the flat index `iy * w + ix` of the maximum within its input plane, as
/// PyTorch's `return_indices=True` does; the first maximum in scan order wins ties.
pub fn forward<T: Real>(x: &[T], (n, c, h, w): (usize, usize, usize, usize)) -> (Vec<T>, Vec<u32>) {
    assert_eq!(x.len(), n * c * h * w);
    let (oh, ow) = (h / 2, w / 2);
    let mut out = vec![T::of(0.0); n * c * oh * ow];
    let mut idx = vec![0u32; n * c * oh * ow];
    for p in 0..n * c {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut best = f64::NEG_INFINITY;
                let mut best_i = 0usize;
                let mut first = true;
                for dy in 0..2 {
                    for dx in 0..2 {
                        let (iy, ix) = (oy * 2 + dy, ox * 2 + dx);
                        let v: f64 = x[(p * h + iy) * w + ix].into();
                        // NaN propagates as in PyTorch: a NaN input is the maximum.
                        if first || v > best || v.is_nan() && !best.is_nan() {
                            best = v;
                            best_i = iy * w + ix;
                            first = false;
                        }
                    }
                }
                out[(p * oh + oy) * ow + ox] = T::of(best);
                idx[(p * oh + oy) * ow + ox] = best_i as u32;
            }
        }
    }
    (out, idx)
}

/// Gradient of 2x2 max pooling: each output's gradient goes to its argmax (the flat index
/// within the input plane, as `pool::forward` returns it); the rest of the input gets 0.
pub fn backward<T: Real>(
    dy: &[T],
    argmax: &[u32],
    (n, c, h, w): (usize, usize, usize, usize),
) -> Vec<T> {
    let (oh, ow) = (h / 2, w / 2);
    assert_eq!(dy.len(), n * c * oh * ow);
    let mut dx = vec![0.0f64; n * c * h * w];
    for p in 0..n * c {
        for o in 0..oh * ow {
            dx[p * h * w + argmax[p * oh * ow + o] as usize] += f(dy[p * oh * ow + o]);
        }
    }
    dx.into_iter().map(T::of).collect()
}
