//! Max-pool gradient from the forward's argmax (shaders/pool/backward.wgsl).

use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels::Nchw;
use crate::kernels::{per_elem, shader, Kernel, WG};

/// Max-pool gradient from the forward argmax: buffers (dy, argmax, dx), dx [n, c, h, w].
pub fn backward(gpu: &Gpu, (n, c, h, w): Nchw) -> Result<Kernel> {
    let out = n * c * (h / 2) * (w / 2);
    Kernel::new(
        gpu,
        shader!("pool/backward"),
        "main",
        &consts![N = n, C = c, H = h, W = w, WG = WG],
        per_elem(n * c * h * w),
        vec![("dy", out), ("argmax", out), ("dx", n * c * h * w)],
    )
}
