//! Conv weight gradient, canonical layout (shaders/conv/wgrad.wgsl).

use super::ConvShape;
use crate::error::shape_err;
use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels::per_elem;
use crate::kernels::{shader, Kernel, WG};

/// Conv weight gradient, canonical [c_out, c_in, k, k]: buffers (x, dy, dw).
pub fn wgrad(gpu: &Gpu, s: ConvShape, accumulate: bool) -> Result<Kernel> {
    if s.k != 1 && s.k != 3 {
        return Err(shape_err!("conv kernel size {} (1 or 3 supported)", s.k));
    }
    Kernel::new(
        gpu,
        shader!("conv/wgrad"),
        "main",
        &[
            ("N", s.n as f64),
            ("C_IN", s.c_in as f64),
            ("C_OUT", s.c_out as f64),
            ("H", s.h as f64),
            ("W", s.w as f64),
            ("KS", s.k as f64),
            ("ACCUMULATE", accumulate as u8 as f64),
            ("WG", WG as f64),
        ],
        per_elem(s.c_out * s.c_in),
        vec![
            ("x", s.input_len()),
            ("dy", s.output_len()),
            ("dw", s.weight_len()),
        ],
    )
}
