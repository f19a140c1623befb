//! Batch statistics and the running-statistics update of training-mode batch norm
//! (shaders/batchnorm/stats.wgsl).

use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels::{nchw_consts, shader, Kernel};

/// Batch norm (training) statistics and running update: buffers (x, stats `[c][2]` =
/// (mean, invstd), running_mean, running_var).
pub fn stats(gpu: &Gpu, n: usize, c: usize, hw: usize, eps: f32, momentum: f32) -> Result<Kernel> {
    let mut k = nchw_consts(n, c, hw);
    k.extend(consts![EPS = eps, MOMENTUM = momentum]);
    Kernel::new(
        gpu,
        shader!("batchnorm/stats"),
        "main",
        &k,
        c as u64,
        vec![
            ("x", n * c * hw),
            ("stats", 2 * c),
            ("running_mean", c),
            ("running_var", c),
        ],
    )
}
