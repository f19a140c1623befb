//! Batch norm backward, first pass: the per-channel sums and the gamma/beta gradients
//! (shaders/batchnorm/backward_reduce.wgsl).

use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels::{nchw_consts, shader, Kernel};

/// Batch norm backward sums (and dgamma, dbeta): buffers (x, dy, stats, sums `[c][2]`,
/// dgamma, dbeta).
pub fn backward_reduce(
    gpu: &Gpu,
    n: usize,
    c: usize,
    hw: usize,
    accumulate: bool,
) -> Result<Kernel> {
    let mut k = nchw_consts(n, c, hw);
    k.extend(consts![ACCUMULATE = accumulate]);
    let len = n * c * hw;
    Kernel::new(
        gpu,
        shader!("batchnorm/backward_reduce"),
        "main",
        &k,
        c as u64,
        vec![
            ("x", len),
            ("dy", len),
            ("stats", 2 * c),
            ("sums", 2 * c),
            ("dgamma", c),
            ("dbeta", c),
        ],
    )
}
