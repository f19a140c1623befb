//! avgpool's conformance: adaptive average pooling forward and its input gradient,
//! against `reference::avgpool`.

use super::suite::{each, Case};
use super::{dims_str, run_op, Outcome, TensorRng};
use crate::error::Result;
use crate::gpu::{Gpu, Precision};
use crate::kernels;
use crate::kernels::Nchw;
use crate::reference;

/// avgpool/forward and avgpool/backward.
pub fn cases(gpu: &Gpu) -> Vec<Case<'_>> {
    let pools = [
        ((1, 8, 7, 7), (7, 7)),     // identity, as at 224x224 input
        ((3, 5, 13, 15), (7, 7)),   // overlapping bins (the quick set's)
        ((2, 4, 1, 1), (7, 7)),     // replication
        ((1, 2, 224, 224), (7, 7)), // large bins
        ((1, 3, 10, 9), (3, 4)),
    ];
    let mut v = each("avgpool/forward", "", pools, Some(1), move |(d, o), s| {
        forward(gpu, d, o, s)
    });
    // Windows that overlap (13 -> 7, 5 -> 3), that repeat one input (1x1 -> 7x7, a VGG at
    // 32x32), that split unevenly (2 -> 7), and the identity.
    let pools = [
        ((2, 3, 13, 5), (7, 3)),
        ((3, 5, 1, 1), (7, 7)),
        ((1, 4, 2, 9), (7, 4)),
        ((2, 2, 14, 14), (7, 7)),
        ((1, 3, 4, 4), (4, 4)),
    ];
    v.extend(each(
        "avgpool/backward",
        "",
        pools,
        Some(0),
        move |(d, o), s| backward(gpu, d, o, s),
    ));
    v
}

/// Adaptive average pooling to `out`.
pub async fn forward(gpu: &Gpu, dims: Nchw, out: (usize, usize), seed: u64) -> Result<Outcome> {
    let mut rng = TensorRng::new(seed);
    let (n, c, h, w) = dims;
    let x = rng.uniform(n * c * h * w);
    let k = kernels::avgpool::forward(gpu, dims, out, Precision::F32)?;
    let got = run_op(gpu, &k, &[&x], n * c * out.0 * out.1, None).await?;
    let want = reference::avgpool::forward(&x, dims, out.0, out.1);
    Ok(Outcome::new(
        "avgpool/forward",
        format!("{} -> {}x{}", dims_str(dims), out.0, out.1),
        &got,
        &want,
    ))
}

/// The adaptive average pool's input gradient, on windows that overlap and repeat.
pub async fn backward(gpu: &Gpu, dims: Nchw, out: (usize, usize), seed: u64) -> Result<Outcome> {
    let (n, c, h, w) = dims;
    let mut rng = TensorRng::new(seed);
    let dy = rng.range(n * c * out.0 * out.1, -1.0, 1.0);
    let want = reference::avgpool::backward(&dy, dims, out.0, out.1);
    let k = kernels::avgpool::backward(gpu, dims, out)?;
    let got = run_op(gpu, &k, &[&dy], n * c * h * w, None).await?;
    Ok(Outcome::new(
        "avgpool/backward",
        format!("{} -> {}x{}", dims_str(dims), out.0, out.1),
        &got,
        &want,
    ))
}
