//! lrn's benchmark rows: local response normalisation (config A-LRN's constants) forward
//! and backward.

use super::{dims_str, entry, grad, len, unary, with_cpu, Io, Lens, Row, Settings};
use crate::bench::report::Kernel;
use crate::error::Result;
use crate::gpu::{Gpu, Precision};
use crate::kernels::Nchw;
use crate::kernels::{self, lrn::LrnParams};
use crate::reference;

/// Local response normalisation.
pub async fn forward(gpu: &Gpu, dims: Nchw, set: Settings) -> Result<Kernel> {
    let p = LrnParams::default();
    let k = kernels::lrn::forward(gpu, dims, p, Precision::F32)?;
    let lens = Lens {
        input: len(dims),
        output: len(dims),
    };
    let (t, cpu) = unary(gpu, set, 5, &k, lens, &[], |x| {
        reference::lrn::forward(x, dims, &p)
    })
    .await?;
    let bytes = 8.0 * len(dims) as f64;
    Ok(with_cpu(
        entry("lrn/forward", dims_str(dims), t, 0.0, bytes),
        cpu,
    ))
}

/// The LRN gradient, from the forward's input and the output gradient.
pub async fn backward(gpu: &Gpu, dims: Nchw, set: Settings) -> Result<Kernel> {
    let io = Io {
        inputs: &[len(dims), len(dims)],
        zeroed: &[],
        output: len(dims),
    };
    let row = Row {
        op: "lrn/backward",
        shape: dims_str(dims),
        flops: 0.0,
    };
    let k = kernels::lrn::backward(gpu, dims, LrnParams::default())?;
    grad(gpu, set, &k, io, row, None).await
}
