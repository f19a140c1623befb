//! The backward-pass and training kernels: ReLU and max-pool gradients, per-channel sums
//! (bias gradients), conv weight and input gradients, FC gradients per weight chunk,
//! softmax cross-entropy, dropout and the fused SGD step. Each is a small op with the same
//! shape as the forward kernels: `new` compiles for a shape, `bind` checks every buffer
//! against it, `encode` dispatches.

use super::{bind, check_buffer, dispatch, fold, shader};
use crate::error::{shape_err, Result};
use crate::gpu::{Gpu, Shader};
use crate::kernels::conv::ConvShape;
use crate::kernels::linear::LinearShape;

const WG: u32 = 64;

/// A compiled kernel with the element counts its bindings must hold, in binding order.
pub struct GradOp {
    pub name: &'static str,
    pipeline: wgpu::ComputePipeline,
    /// Workgroups to dispatch (folded over x and z).
    groups: u64,
    /// (binding name, f32-or-u32 elements it must hold).
    bindings: Vec<(&'static str, usize)>,
}

impl GradOp {
    fn new(
        gpu: &Gpu,
        name: &'static str,
        shader: Shader,
        entry: &'static str,
        consts: &[(&str, f64)],
        groups: u64,
        bindings: Vec<(&'static str, usize)>,
    ) -> Result<GradOp> {
        if groups == 0 || bindings.iter().any(|b| b.1 == 0) {
            return Err(shape_err!("{name}: empty shape"));
        }
        Ok(GradOp {
            name,
            pipeline: gpu.pipeline(&shader, entry, consts)?,
            groups,
            bindings,
        })
    }

    /// A bind group over `buffers` (in binding order), each checked against its size.
    pub fn bind(&self, gpu: &Gpu, buffers: &[&wgpu::Buffer]) -> Result<wgpu::BindGroup> {
        if buffers.len() != self.bindings.len() {
            return Err(shape_err!(
                "{} takes {} buffers, got {}",
                self.name,
                self.bindings.len(),
                buffers.len()
            ));
        }
        for ((what, elems), b) in self.bindings.iter().zip(buffers) {
            check_buffer(gpu, &format!("{} {what}", self.name), b, *elems, 4)?;
        }
        Ok(bind(gpu, &self.pipeline, self.name, buffers))
    }

    pub fn encode(
        &self,
        gpu: &Gpu,
        pass: &mut wgpu::ComputePass<'_>,
        bg: &wgpu::BindGroup,
    ) -> Result<()> {
        let (x, z) = fold(gpu, self.groups)?;
        dispatch(pass, &self.pipeline, bg, (x, 1, z));
        Ok(())
    }
}

fn per_elem(n: usize) -> u64 {
    (n as u64).div_ceil(WG as u64)
}

/// ReLU gradient from the forward output: buffers (y, dy, dx).
pub fn relu_backward(gpu: &Gpu, len: usize) -> Result<GradOp> {
    GradOp::new(
        gpu,
        "relu_backward",
        shader!("relu_backward"),
        "main",
        &[("LEN", len as f64), ("WG", WG as f64)],
        per_elem(len),
        vec![("y", len), ("dy", len), ("dx", len)],
    )
}

/// Max-pool gradient from the forward argmax: buffers (dy, argmax, dx), dx [n, c, h, w].
pub fn maxpool_backward(gpu: &Gpu, (n, c, h, w): (usize, usize, usize, usize)) -> Result<GradOp> {
    let out = n * c * (h / 2) * (w / 2);
    GradOp::new(
        gpu,
        "maxpool_backward",
        shader!("maxpool_backward"),
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

/// Per-channel sums of [n, c, hw] (bias gradients): buffers (x, out[c]).
pub fn channel_sum(gpu: &Gpu, n: usize, c: usize, hw: usize, accumulate: bool) -> Result<GradOp> {
    GradOp::new(
        gpu,
        "channel_sum",
        shader!("channel_sum"),
        "main",
        &[
            ("N", n as f64),
            ("C", c as f64),
            ("HW", hw as f64),
            ("ACCUMULATE", accumulate as u8 as f64),
        ],
        c as u64,
        vec![("x", n * c * hw), ("out", c)],
    )
}

/// Conv weight gradient, canonical [c_out, c_in, k, k]: buffers (x, dy, dw).
pub fn conv_wgrad(gpu: &Gpu, s: ConvShape, accumulate: bool) -> Result<GradOp> {
    if s.k != 1 && s.k != 3 {
        return Err(shape_err!("conv kernel size {} (1 or 3 supported)", s.k));
    }
    GradOp::new(
        gpu,
        "conv_wgrad",
        shader!("conv_wgrad"),
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

/// Conv input gradient from the canonical weight: buffers (dy, w, dx).
pub fn conv_dgrad(gpu: &Gpu, s: ConvShape) -> Result<GradOp> {
    if s.k != 1 && s.k != 3 {
        return Err(shape_err!("conv kernel size {} (1 or 3 supported)", s.k));
    }
    GradOp::new(
        gpu,
        "conv_dgrad",
        shader!("conv_dgrad"),
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

fn linear_consts(s: LinearShape, row0: usize, rows: usize, acc: bool) -> Vec<(&'static str, f64)> {
    vec![
        ("M", s.m as f64),
        ("K", s.k as f64),
        ("N_OUT", s.n_out as f64),
        ("ROW0", row0 as f64),
        ("ROWS", rows as f64),
        ("ACCUMULATE", acc as u8 as f64),
        ("WG", WG as f64),
    ]
}

/// FC input gradient through weight rows `row0 .. row0 + rows`: buffers (w chunk, dy,
/// dx). With several chunks, the first writes dx and the others `accumulate`.
pub fn linear_dx(
    gpu: &Gpu,
    s: LinearShape,
    row0: usize,
    rows: usize,
    accumulate: bool,
) -> Result<GradOp> {
    GradOp::new(
        gpu,
        "linear_dx",
        shader!("linear_backward"),
        "dx",
        &linear_consts(s, row0, rows, accumulate),
        per_elem(s.m * s.k),
        vec![("w", rows * s.k), ("dy", s.m * s.n_out), ("dx", s.m * s.k)],
    )
}

/// FC weight gradient of rows `row0 .. row0 + rows`: buffers (x, dy, dw chunk).
pub fn linear_dw(
    gpu: &Gpu,
    s: LinearShape,
    row0: usize,
    rows: usize,
    accumulate: bool,
) -> Result<GradOp> {
    GradOp::new(
        gpu,
        "linear_dw",
        shader!("linear_backward"),
        "dw",
        &linear_consts(s, row0, rows, accumulate),
        per_elem(rows * s.k),
        vec![("x", s.m * s.k), ("dy", s.m * s.n_out), ("dw", rows * s.k)],
    )
}

/// Softmax cross-entropy with its gradient: buffers (z, labels, dz, stats [rows][2]).
pub fn softmax_xent(gpu: &Gpu, rows: usize, cols: usize, scale: f32) -> Result<GradOp> {
    GradOp::new(
        gpu,
        "softmax_xent",
        shader!("softmax_xent"),
        "main",
        &[
            ("ROWS", rows as f64),
            ("COLS", cols as f64),
            ("SCALE", scale as f64),
        ],
        rows as u64,
        vec![
            ("z", rows * cols),
            ("labels", rows),
            ("dz", rows * cols),
            ("stats", rows * 2),
        ],
    )
}

/// The fused SGD step: buffers (w, g, v, hyperparameters [lr, momentum, wd]).
pub fn sgd(gpu: &Gpu, len: usize) -> Result<GradOp> {
    GradOp::new(
        gpu,
        "sgd",
        shader!("sgd"),
        "main",
        &[("LEN", len as f64), ("WG", WG as f64)],
        per_elem(len),
        vec![("w", len), ("g", len), ("v", len), ("hyper", 3)],
    )
}

/// Dropout with probability `p` (forward on x, or backward on dy with the same seed):
/// buffers (x, seed [1], y).
pub fn dropout(gpu: &Gpu, len: usize, p: f64) -> Result<GradOp> {
    if !(0.0..1.0).contains(&p) {
        return Err(shape_err!("dropout probability {p} must be in [0, 1)"));
    }
    let thresh = crate::reference::backward::dropout_threshold(p);
    GradOp::new(
        gpu,
        "dropout",
        shader!("dropout"),
        "main",
        &[
            ("LEN", len as f64),
            ("P", p),
            ("THRESH", thresh as f64),
            ("WG", WG as f64),
        ],
        per_elem(len),
        vec![("x", len), ("seed", 1), ("y", len)],
    )
}

fn nchw_consts(n: usize, c: usize, hw: usize) -> Vec<(&'static str, f64)> {
    vec![("N", n as f64), ("C", c as f64), ("HW", hw as f64)]
}

/// Batch norm (training) statistics and running update: buffers (x, stats [c][2] =
/// (mean, invstd), running_mean, running_var).
pub fn bn_stats(
    gpu: &Gpu,
    n: usize,
    c: usize,
    hw: usize,
    eps: f32,
    momentum: f32,
) -> Result<GradOp> {
    let mut k = nchw_consts(n, c, hw);
    k.extend([("EPS", eps as f64), ("MOMENTUM", momentum as f64)]);
    GradOp::new(
        gpu,
        "bn_stats",
        shader!("bn_stats"),
        "main",
        &k,
        c as u64,
        vec![
            ("x", n * c * hw),
            ("stats", 2 * c),
            ("running_mean", c),
            ("running_var", c),
        ],
    )
}

/// Batch norm (training) normalisation with the batch statistics, optional ReLU: buffers
/// (x, gamma, beta, stats, y).
pub fn bn_apply(gpu: &Gpu, n: usize, c: usize, hw: usize, relu: bool) -> Result<GradOp> {
    let mut k = nchw_consts(n, c, hw);
    k.extend([("RELU", relu as u8 as f64), ("WG", WG as f64)]);
    let len = n * c * hw;
    GradOp::new(
        gpu,
        "bn_apply",
        shader!("bn_apply"),
        "main",
        &k,
        per_elem(len),
        vec![
            ("x", len),
            ("gamma", c),
            ("beta", c),
            ("stats", 2 * c),
            ("y", len),
        ],
    )
}

/// Batch norm backward sums (and dgamma, dbeta): buffers (x, dy, stats, sums [c][2],
/// dgamma, dbeta).
pub fn bn_backward_reduce(
    gpu: &Gpu,
    n: usize,
    c: usize,
    hw: usize,
    accumulate: bool,
) -> Result<GradOp> {
    let mut k = nchw_consts(n, c, hw);
    k.push(("ACCUMULATE", accumulate as u8 as f64));
    let len = n * c * hw;
    GradOp::new(
        gpu,
        "bn_backward_reduce",
        shader!("bn_backward_reduce"),
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

/// Batch norm input gradient: buffers (x, dy, gamma, stats, sums, dx).
pub fn bn_backward_apply(gpu: &Gpu, n: usize, c: usize, hw: usize) -> Result<GradOp> {
    let mut k = nchw_consts(n, c, hw);
    k.push(("WG", WG as f64));
    let len = n * c * hw;
    GradOp::new(
        gpu,
        "bn_backward_apply",
        shader!("bn_backward_apply"),
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

/// LRN input gradient: buffers (x, dy, dx).
pub fn lrn_backward(
    gpu: &Gpu,
    (n, c, h, w): (usize, usize, usize, usize),
    p: crate::kernels::lrn::LrnParams,
) -> Result<GradOp> {
    let mut k = nchw_consts(n, c, h * w);
    k.extend([
        ("SIZE", p.size as f64),
        ("ALPHA", p.alpha as f64),
        ("BETA", p.beta as f64),
        ("K", p.k as f64),
        ("WG", WG as f64),
    ]);
    let len = n * c * h * w;
    GradOp::new(
        gpu,
        "lrn_backward",
        shader!("lrn_backward"),
        "main",
        &k,
        per_elem(len),
        vec![("x", len), ("dy", len), ("dx", len)],
    )
}

/// Repacks a canonical conv weight into the layout `tune` reads: buffers (canonical
/// weight, packed weight). The bias needs no kernel: it is the canonical bias followed by
/// zeros up to whole blocks, a buffer copy.
pub fn conv_pack(
    gpu: &Gpu,
    c_in: usize,
    c_out: usize,
    k: usize,
    tune: crate::kernels::conv::ConvTune,
) -> Result<GradOp> {
    use crate::kernels::conv::ConvVariant;
    let sg = tune.variant == ConvVariant::Subgroup;
    let tm = if sg { 8 } else { tune.tm as usize };
    let (packed, _) = tune.packed_elems(c_in, c_out, k);
    GradOp::new(
        gpu,
        "conv_pack",
        shader!("conv_pack"),
        "main",
        &[
            ("C_IN", c_in as f64),
            ("C_OUT", c_out as f64),
            ("KS", k as f64),
            ("TM", tm as f64),
            ("SUBGROUP", sg as u8 as f64),
            ("WG", WG as f64),
        ],
        per_elem(packed),
        vec![("weight", c_out * c_in * k * k), ("packed", packed)],
    )
}
