//! pool's benchmark rows: 2x2 max pooling forward (inference form, no argmax) and its
//! gradient through the argmax.

use super::{dims_str, entry, grad, len, unary, with_cpu, Io, Lens, Row, Settings};
use crate::bench::report::Kernel;
use crate::error::Result;
use crate::gpu::{Gpu, Precision};
use crate::kernels;
use crate::kernels::Nchw;
use crate::reference;

/// 2x2 max pooling (inference form, no argmax).
pub async fn forward(gpu: &Gpu, dims: Nchw, set: Settings) -> Result<Kernel> {
    let k = kernels::pool::forward(gpu, dims, false, Precision::F32)?;
    let out = kernels::pool::output_len(dims);
    let lens = Lens {
        input: len(dims),
        output: out,
    };
    let (t, cpu) = unary(gpu, set, 3, &k, lens, &[], |x| {
        reference::pool::forward(x, dims)
    })
    .await?;
    let bytes = 4.0 * (len(dims) + out) as f64;
    Ok(with_cpu(
        entry("pool/forward", dims_str(dims), t, 0.0, bytes),
        cpu,
    ))
}

/// The max-pool gradient (`dims` the forward's input): a gather through the argmax.
pub async fn backward(gpu: &Gpu, dims: Nchw, set: Settings) -> Result<Kernel> {
    let out = kernels::pool::output_len(dims);
    let io = Io {
        inputs: &[out, out],
        zeroed: &[],
        output: len(dims),
    };
    let row = Row {
        op: "pool/backward",
        shape: dims_str(dims),
        flops: 0.0,
    };
    grad(
        gpu,
        set,
        &kernels::pool::backward(gpu, dims)?,
        io,
        row,
        None,
    )
    .await
}
