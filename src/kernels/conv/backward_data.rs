//! Conv input gradient from the canonical weight (shaders/conv/backward_data/direct.wgsl).

use super::ConvShape;
use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels::{per_elem, shader, Kernel, WG};

/// Conv input gradient from the canonical weight: buffers (dy, w, dx).
pub fn dgrad(gpu: &Gpu, s: ConvShape) -> Result<Kernel> {
    s.check_kernel_size()?;
    let mut consts = s.consts();
    consts.extend(consts![WG = WG]);
    Kernel::new(
        gpu,
        shader!("conv/backward_data/direct"),
        "main",
        &consts,
        per_elem(s.n * s.c_in * s.h * s.w.div_ceil(4)),
        vec![
            ("dy", s.output_len()),
            ("w", s.weight_len()),
            ("dx", s.input_len()),
        ],
    )
}
