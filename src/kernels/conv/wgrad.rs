//! Conv weight gradient, canonical layout (shaders/conv/wgrad.wgsl).

use super::ConvShape;
use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels::{per_elem, shader, Kernel, WG};

/// Conv weight gradient, canonical [c_out, c_in, k, k]: buffers (x, dy, dw).
pub fn wgrad(gpu: &Gpu, s: ConvShape, accumulate: bool) -> Result<Kernel> {
    s.check_kernel_size()?;
    let mut consts = s.consts();
    consts.extend([("ACCUMULATE", accumulate as u8 as f64), ("WG", WG as f64)]);
    Kernel::new(
        gpu,
        shader!("conv/wgrad"),
        "main",
        &consts,
        per_elem(s.c_out * s.c_in),
        vec![
            ("x", s.input_len()),
            ("dy", s.output_len()),
            ("dw", s.weight_len()),
        ],
    )
}
