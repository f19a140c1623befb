//! im2col's conformance: dense evaluation's window gather, against `reference::im2col`.

use super::suite::{each, Case};
use super::{dims_str, run_op, Outcome, TensorRng};
use crate::error::Result;
use crate::gpu::{Gpu, Precision};
use crate::kernels;
use crate::kernels::Nchw;
use crate::reference;

/// im2col/forward, windows as large as the map and 1x1.
pub fn cases(gpu: &Gpu) -> Vec<Case<'_>> {
    let windows = [
        ((2, 5, 9, 11), (7, 7)),
        ((1, 3, 7, 7), (7, 7)),
        ((3, 2, 4, 5), (2, 3)),
        ((1, 16, 12, 12), (1, 1)),
    ];
    each(
        "im2col/forward",
        "",
        windows,
        Some(0),
        move |(d, win), s| forward(gpu, d, win, s),
    )
}

/// Window gathering for dense evaluation.
pub async fn forward(gpu: &Gpu, dims: Nchw, window: (usize, usize), seed: u64) -> Result<Outcome> {
    let mut rng = TensorRng::new(seed);
    let (n, c, h, w) = dims;
    let x = rng.uniform(n * c * h * w);
    let k = kernels::im2col::forward(gpu, dims, window, Precision::F32)?;
    let len = n * kernels::im2col::positions(dims, window) * c * window.0 * window.1;
    let got = run_op(gpu, &k, &[&x], len, None).await?;
    let want = reference::im2col::forward(&x, dims, window.0, window.1);
    Ok(Outcome::new(
        "im2col/forward",
        format!("{} window {}x{}", dims_str(dims), window.0, window.1),
        &got,
        &want,
    ))
}
