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
        &[
            ("N", n as f64),
            ("C", c as f64),
            ("H", h as f64),
            ("W", w as f64),
            ("WG", WG as f64),
        ],
        per_elem(n * c * h * w),
        vec![("dy", out), ("argmax", out), ("dx", n * c * h * w)],
    )
}
