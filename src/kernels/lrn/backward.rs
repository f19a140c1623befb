//! LRN backward (shaders/lrn/backward.wgsl).

use super::LrnParams;
use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels::Nchw;
use crate::kernels::{nchw_consts, per_elem, shader, Kernel, WG};

/// LRN input gradient: buffers (x, dy, dx).
pub fn backward(gpu: &Gpu, (n, c, h, w): Nchw, p: LrnParams) -> Result<Kernel> {
    let mut k = nchw_consts(n, c, h * w);
    k.extend(consts![
        SIZE = p.size,
        ALPHA = p.alpha,
        BETA = p.beta,
        K = p.k,
        WG = WG,
    ]);
    let len = n * c * h * w;
    Kernel::new(
        gpu,
        shader!("lrn/backward"),
        "main",
        &k,
        per_elem(len),
        vec![("x", len), ("dy", len), ("dx", len)],
    )
}
