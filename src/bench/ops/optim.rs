//! optim's benchmark rows: the fused SGD step and loss-scaled training's overflow check.

use super::{grad, with_bytes, Io, Row, Settings};
use crate::bench::report::Kernel;
use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels;

/// The SGD step over `params` weights.
pub async fn sgd(gpu: &Gpu, params: usize, set: Settings) -> Result<Kernel> {
    // Weights, gradients and momentum, then the hyperparameters in the output slot (zeros:
    // the same loads and stores as any step).
    let io = Io {
        inputs: &[params, params, params],
        zeroed: &[],
        output: kernels::optim::HYPER,
    };
    let row = Row {
        op: "optim/sgd",
        shape: format!("{params} parameters"),
        flops: 0.0,
    };
    let k = grad(gpu, set, &kernels::optim::sgd(gpu, params)?, io, row, None).await?;
    // Traffic: 3 reads, 2 writes.
    Ok(with_bytes(k, 20.0 * params as f64))
}

/// The overflow check over a gradient of `params` elements: one read.
pub async fn overflow(gpu: &Gpu, params: usize, set: Settings) -> Result<Kernel> {
    let io = Io {
        inputs: &[params],
        zeroed: &[],
        output: kernels::optim::HYPER,
    };
    let row = Row {
        op: "optim/overflow",
        shape: format!("{params} parameters"),
        flops: 0.0,
    };
    let k = grad(
        gpu,
        set,
        &kernels::optim::overflow(gpu, params)?,
        io,
        row,
        None,
    )
    .await?;
    Ok(with_bytes(k, 4.0 * params as f64))
}
