//! Batch norm backward, second pass: the input gradient (shaders/batchnorm/backward_apply.wgsl).

use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels::{nchw_consts, per_elem, shader, Kernel, WG};

/// Batch norm input gradient: buffers (x, dy, gamma, stats, sums, dx).
pub fn backward_apply(gpu: &Gpu, n: usize, c: usize, hw: usize) -> Result<Kernel> {
    let mut k = nchw_consts(n, c, hw);
    k.extend(consts![WG = WG]);
    let len = n * c * hw;
    Kernel::new(
        gpu,
        shader!("batchnorm/backward_apply"),
        "main",
        &k,
        per_elem(len),
        vec![
            ("x", len),
            ("dy", len),
            ("gamma", c),
            ("stats", 2 * c),
            ("sums", 2 * c),
            ("dx", len),
        ],
    )
}
