//! batchnorm's benchmark rows: the inference affine map with ReLU, and training's apply
//! and backward.

use super::{dims_str, entry, grad, len, unary, with_cpu, Io, Lens, Row, Settings};
use crate::bench::report::Kernel;
use crate::error::Result;
use crate::gpu::{Gpu, Precision};
use crate::kernels;
use crate::kernels::Nchw;
use crate::reference;

/// Batch norm in inference form with ReLU (the per-channel affine kernel).
pub async fn affine(gpu: &Gpu, dims: Nchw, set: Settings) -> Result<Kernel> {
    let c = dims.1;
    let k = kernels::batchnorm::affine(gpu, dims, true, Precision::F32)?;
    let mut rng = crate::check::TensorRng::new(40);
    let scale = gpu.upload("scale", &rng.range(c, 0.5, 1.5))?;
    let shift = gpu.upload("shift", &rng.uniform(c))?;
    let (g, b, m, v) = (vec![1.0; c], vec![0.0; c], vec![0.0; c], vec![1.0; c]);
    let lens = Lens {
        input: len(dims),
        output: len(dims),
    };
    let (t, cpu) = unary(gpu, set, 4, &k, lens, &[&scale, &shift], |x| {
        reference::batchnorm::forward(x, dims, (&g, &b), (&m, &v), 1e-5, true)
    })
    .await?;
    let bytes = 8.0 * len(dims) as f64;
    Ok(with_cpu(
        entry("batchnorm/affine", dims_str(dims), t, 0.0, bytes),
        cpu,
    ))
}

/// Training's normalisation with batch statistics (ReLU fused).
pub async fn apply(gpu: &Gpu, dims: Nchw, set: Settings) -> Result<Kernel> {
    let (n, c, h, w) = dims;
    let io = Io {
        inputs: &[len(dims), c, c, 2 * c],
        zeroed: &[],
        output: len(dims),
    };
    let row = Row {
        op: "batchnorm/apply",
        shape: dims_str(dims),
        flops: 0.0,
    };
    let k = kernels::batchnorm::apply(gpu, n, c, h * w, true)?;
    grad(gpu, set, &k, io, row, None).await
}

/// Training's input gradient from the per-channel sums.
pub async fn backward(gpu: &Gpu, dims: Nchw, set: Settings) -> Result<Kernel> {
    let (n, c, h, w) = dims;
    let io = Io {
        inputs: &[len(dims), len(dims), c, 2 * c, 2 * c],
        zeroed: &[],
        output: len(dims),
    };
    let row = Row {
        op: "batchnorm/backward",
        shape: dims_str(dims),
        flops: 0.0,
    };
    let k = kernels::batchnorm::backward_apply(gpu, n, c, h * w)?;
    grad(gpu, set, &k, io, row, None).await
}
