//! Conv weight layouts: the canonical [c_out, c_in, k, k] weights packed for each forward
//! variant on the CPU (inference uploads them once) and on the GPU (training updates
//! canonical weights and repacks them each step), and flipped for the input gradient.
//!
//! On the GPU: repacks canonical conv weights into a forward variant's layout on the GPU
//! (shaders/conv/layout/pack.wgsl; shaders/conv/layout/winograd.wgsl for Winograd's transformed
//! weights; shaders/conv/layout/pack16.wgsl for the cooperative-matrix variants' f16 rows):
//! training updates canonical weights.

use super::{ConvTune, Packing};
use crate::error::{shape_err, Result};
use crate::gpu::{Gpu, Precision};
use crate::kernels::{per_elem, shader, Kernel, WG};

/// Repacks a canonical conv weight into the layout `tune` reads: buffers (canonical
/// weight, packed weight). The bias needs no kernel: it is the canonical bias followed by
/// zeros up to whole blocks, a buffer copy.
pub fn pack(gpu: &Gpu, c_in: usize, c_out: usize, k: usize, tune: ConvTune) -> Result<Kernel> {
    let spec = tune.variant.spec();
    let tm = spec.tm.unwrap_or(tune.tm) as usize;
    let (packed, _) = tune.packed_elems(c_in, c_out, k);
    let bindings = vec![("weight", c_out * c_in * k * k), ("packed", packed)];
    let (src, consts, groups) = match spec.packing {
        Packing::Gemm16 => {
            let kp = k_pad(c_in, k);
            let consts = [
                ("C_OUT", c_out as f64),
                ("ROW", (c_in * k * k) as f64),
                ("K_PAD", kp as f64),
                ("M_PAD", (packed / kp) as f64),
                ("WG", WG as f64),
            ];
            // f16 halves, two to a u32: the packed binding holds `packed` 2-byte elements.
            let bindings = vec![("weight", c_out * c_in * k * k, 4), ("packed", packed, 2)];
            return Kernel::with_bindings(
                gpu,
                shader!("conv/layout/pack16"),
                "main",
                &consts,
                per_elem(packed / 2),
                bindings,
            );
        }
        Packing::Winograd | Packing::Winograd2 if k != 3 => {
            return Err(shape_err!(
                "Winograd packing needs a 3x3 kernel, not {k}x{k}"
            ));
        }
        Packing::Winograd | Packing::Winograd2 => (
            shader!("conv/layout/winograd"),
            vec![
                ("C_IN", c_in as f64),
                ("C_OUT", c_out as f64),
                ("WG", WG as f64),
                (
                    "T",
                    if spec.packing == Packing::Winograd {
                        6.0
                    } else {
                        4.0
                    },
                ),
            ],
            // One invocation per (output channel padded to 8, input channel) pair.
            per_elem(c_out.div_ceil(8) * 8 * c_in),
        ),
        Packing::Blocked | Packing::Subgroup => (
            shader!("conv/layout/pack"),
            vec![
                ("C_IN", c_in as f64),
                ("C_OUT", c_out as f64),
                ("KS", k as f64),
                ("TM", tm as f64),
                ("SUBGROUP", (spec.packing == Packing::Subgroup) as u8 as f64),
                ("WG", WG as f64),
            ],
            per_elem(packed),
        ),
    };
    Kernel::new(gpu, src, "main", &consts, groups, bindings)
}

/// Buffers (canonical weight, flipped weight), both `c_out * c_in * k * k` f32.
pub fn flip(gpu: &Gpu, c_in: usize, c_out: usize, k: usize) -> Result<Kernel> {
    if k.is_multiple_of(2) {
        return Err(shape_err!(
            "the flipped-weight input gradient needs an odd kernel, not {k}"
        ));
    }
    let len = c_out * c_in * k * k;
    Kernel::new(
        gpu,
        shader!("conv/layout/flip"),
        "main",
        &[
            ("C_IN", c_in as f64),
            ("C_OUT", c_out as f64),
            ("KS", k as f64),
            ("WG", WG as f64),
        ],
        per_elem(len),
        vec![("weight", len), ("flipped", len)],
    )
}

impl ConvTune {
    /// Elements of the packed (weight, bias) buffers for a conv with these channels and
    /// kernel size: whole blocks of output channels, zero padded.
    pub fn packed_elems(&self, c_in: usize, c_out: usize, k: usize) -> (usize, usize) {
        let spec = self.variant.spec();
        let tm = spec.fix(*self).tm as usize;
        let per_block = match spec.packing {
            Packing::Blocked => c_in * k * k * tm,
            Packing::Subgroup => c_in * k * tm * 4,
            Packing::Winograd => c_in * 36 * tm,
            Packing::Winograd2 => c_in * 16 * tm,
            Packing::Gemm16 => k_pad(c_in, k) * tm,
        };
        let blocks = c_out.div_ceil(tm);
        (blocks * per_block, blocks * tm)
    }

    /// Reorders torchvision weights [c_out, c_in, k, k] and bias `[c_out]` into the layout the
    /// variant reads: `[c_out / tm][c_in][k][k][tm]` (direct, shared) or
    /// `[c_out / 8][c_in][k][8][4]` (subgroup: one vec4 of taps per channel and row), zero
    /// padded; the bias is padded to whole blocks. The layout does not depend on the batch
    /// or image size, so one upload serves every `Conv2d` of these channels.
    pub fn pack(
        &self,
        c_in: usize,
        c_out: usize,
        k: usize,
        weight: &[f32],
        bias: &[f32],
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        if weight.len() != c_out * c_in * k * k || bias.len() != c_out {
            return Err(shape_err!(
                "conv weight/bias have {}/{} elements, {c_out}x{c_in}x{k}x{k} needs {}/{c_out}",
                weight.len(),
                bias.len(),
                c_out * c_in * k * k,
            ));
        }
        let spec = self.variant.spec();
        let tm = spec.fix(*self).tm as usize;
        let (w_len, b_len) = self.packed_elems(c_in, c_out, k);
        let mut w = vec![0.0f32; w_len];
        let mut b = bias.to_vec();
        b.resize(b_len, 0.0);
        if spec.packing == Packing::Gemm16 {
            let (row, kp) = (c_in * k * k, k_pad(c_in, k));
            for co in 0..c_out {
                w[co * kp..co * kp + row].copy_from_slice(&weight[co * row..(co + 1) * row]);
            }
            return Ok((w, b));
        }
        if let Some(gm) = spec.packing.winograd_g() {
            if k != 3 {
                return Err(shape_err!(
                    "Winograd packing needs a 3x3 kernel, not {k}x{k}"
                ));
            }
            let pos = gm.len() * gm.len();
            for co in 0..c_out {
                let (blk, m) = (co / tm, co % tm);
                for ci in 0..c_in {
                    let g = &weight[(co * c_in + ci) * 9..][..9];
                    for (j, u) in transform_weight(g, gm).into_iter().enumerate() {
                        w[((blk * c_in + ci) * pos + j) * tm + m] = u as f32;
                    }
                }
            }
            return Ok((w, b));
        }
        let sg = spec.packing == Packing::Subgroup;
        let kk = k * k;
        for co in 0..c_out {
            let (blk, m) = (co / tm, co % tm);
            for ci in 0..c_in {
                for ky in 0..k {
                    for kx in 0..k {
                        let src = weight[((co * c_in + ci) * k + ky) * k + kx];
                        let dst = if sg {
                            (((blk * c_in + ci) * k + ky) * tm + m) * 4 + kx
                        } else {
                            ((blk * c_in + ci) * kk + ky * k + kx) * tm + m
                        };
                        w[dst] = src;
                    }
                }
            }
        }
        Ok((w, b))
    }

    /// How the packed weights are stored for tensors of `precision`: as `precision`,
    /// except Winograd's, which stay f32. Rounding the transformed weights U to f16 costs
    /// more than rounding the weights themselves: the output transform sums 36 products
    /// with coefficients up to 8 and cancels, and measured 1.8e-3 relative L2 against the
    /// reference on f16-rounded operands, past the f16 kernel tolerance (1e-3); with f32
    /// weights the f16 path keeps the error of its output rounding.
    pub fn weight_precision(&self, precision: Precision) -> Precision {
        match self.variant.spec().packing {
            Packing::Winograd | Packing::Winograd2 => Precision::F32,
            // The tensor cores' operand type.
            Packing::Gemm16 => Precision::F16,
            _ => precision,
        }
    }

    /// Packs and uploads the weights and bias of a (c_in, c_out, k) conv, stored as
    /// `precision`.
    pub fn upload(
        &self,
        gpu: &Gpu,
        (c_in, c_out, k): (usize, usize, usize),
        (weight, bias): (&[f32], &[f32]),
        precision: Precision,
    ) -> Result<ConvParams> {
        let (w, b) = self.pack(c_in, c_out, k, weight, bias)?;
        Ok(ConvParams {
            weight: gpu.upload_as("conv weight", &w, self.weight_precision(precision))?,
            bias: gpu.upload_as("conv bias", &b, precision)?,
        })
    }
}

/// Columns of the Gemm16 packing: c_in * k * k rounded up to the 16 of a matrix tile.
pub(super) fn k_pad(c_in: usize, k: usize) -> usize {
    (c_in * k * k).div_ceil(16) * 16
}

/// Winograd F(4x4, 3x3)'s weight transform G.
const WINOGRAD_G: [[f64; 3]; 6] = [
    [1.0 / 4.0, 0.0, 0.0],
    [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
    [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
    [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
    [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
    [0.0, 0.0, 1.0],
];

/// Winograd F(2x2, 3x3)'s weight transform G.
const WINOGRAD2_G: [[f64; 3]; 4] = [
    [1.0, 0.0, 0.0],
    [0.5, 0.5, 0.5],
    [0.5, -0.5, 0.5],
    [0.0, 0.0, 1.0],
];

impl Packing {
    /// The weight transform G of a Winograd packing.
    fn winograd_g(self) -> Option<&'static [[f64; 3]]> {
        match self {
            Packing::Winograd => Some(&WINOGRAD_G),
            Packing::Winograd2 => Some(&WINOGRAD2_G),
            _ => None,
        }
    }
}

/// U = G g G^T of one 3x3 kernel for the transform `gm` (t x 3): t x t, row-major, f64.
fn transform_weight(g: &[f32], gm: &[[f64; 3]]) -> Vec<f64> {
    let t = gm.len();
    let gg: Vec<[f64; 3]> = gm
        .iter()
        .map(|row| std::array::from_fn(|k| (0..3).map(|i| row[i] * g[i * 3 + k] as f64).sum()))
        .collect();
    let mut u = vec![0.0f64; t * t];
    for a in 0..t {
        for b in 0..t {
            u[a * t + b] = (0..3).map(|k| gg[a][k] * gm[b][k]).sum();
        }
    }
    u
}

/// Weights and bias in the kernel's packed layout, on the GPU.
pub struct ConvParams {
    pub weight: wgpu::Buffer,
    pub bias: wgpu::Buffer,
}
