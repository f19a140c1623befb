//! Conv input gradient from the canonical weight (shaders/conv/dgrad.wgsl).

use super::ConvShape;
use crate::error::shape_err;
use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels::per_elem;
use crate::kernels::{shader, Kernel, WG};

/// Conv input gradient from the canonical weight: buffers (dy, w, dx).
pub fn dgrad(gpu: &Gpu, s: ConvShape) -> Result<Kernel> {
    if s.k != 1 && s.k != 3 {
        return Err(shape_err!("conv kernel size {} (1 or 3 supported)", s.k));
    }
    Kernel::new(
        gpu,
        shader!("conv/dgrad"),
        "main",
        &[
            ("N", s.n as f64),
            ("C_IN", s.c_in as f64),
            ("C_OUT", s.c_out as f64),
            ("H", s.h as f64),
            ("W", s.w as f64),
            ("KS", s.k as f64),
            ("WG", WG as f64),
        ],
        per_elem(s.n * s.c_in * s.h * s.w.div_ceil(4)),
        vec![
            ("dy", s.output_len()),
            ("w", s.weight_len()),
            ("dx", s.input_len()),
        ],
    )
}
