//! FC gradients per weight chunk (shaders/linear/backward.wgsl, entries `dx` and `dw`):
//! register-blocked GEMMs, 4 rows x 8 columns of the output per invocation.

use super::LinearShape;
use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels::{per_elem, shader, Kernel, WG};

fn linear_consts(s: LinearShape, row0: usize, rows: usize, acc: bool) -> Vec<(&'static str, f64)> {
    consts![
        M = s.m,
        K = s.k,
        N_OUT = s.n_out,
        ROW0 = row0,
        ROWS = rows,
        ACCUMULATE = acc,
        WG = WG,
    ]
    .to_vec()
}

/// FC input gradient through weight rows `row0 .. row0 + rows`: buffers (w chunk, dy,
/// dx). With several chunks, the first writes dx and the others `accumulate`.
pub fn dx(gpu: &Gpu, s: LinearShape, row0: usize, rows: usize, accumulate: bool) -> Result<Kernel> {
    Kernel::new(
        gpu,
        shader!("linear/backward"),
        "dx",
        &linear_consts(s, row0, rows, accumulate),
        per_elem(s.m.div_ceil(4) * s.k.div_ceil(8)),
        vec![("w", rows * s.k), ("dy", s.m * s.n_out), ("dx", s.m * s.k)],
    )
}

/// FC weight gradient of rows `row0 .. row0 + rows`: buffers (x, dy, dw chunk).
pub fn dw(gpu: &Gpu, s: LinearShape, row0: usize, rows: usize, accumulate: bool) -> Result<Kernel> {
    Kernel::new(
        gpu,
        shader!("linear/backward"),
        "dw",
        &linear_consts(s, row0, rows, accumulate),
        per_elem(rows.div_ceil(4) * s.k.div_ceil(8)),
        vec![("x", s.m * s.k), ("dy", s.m * s.n_out), ("dw", rows * s.k)],
    )
}
