//! Conv weight layouts: the canonical [c_out, c_in, k, k] weights packed on the GPU for
//! each forward variant (shaders/conv/layout/pack.wgsl and pack_half.wgsl for the blocked
//! layouts, winograd.wgsl for Winograd's transformed weights, pack16.wgsl for the
//! cooperative-matrix variants' f16 rows), once at inference's upload and once per step in
//! training, which updates the canonical weights; and flipped for the input gradient. The
//! reference packing the GPU's is checked against is `reference::conv::pack`.

use super::{ConvTune, Packing};
use crate::error::{shape_err, Result};
use crate::gpu::{Gpu, Precision};
use crate::kernels::{per_elem, shader, Kernel, WG};

/// Packs a canonical conv weight into the layout `tune` reads, stored as
/// `tune.weight_precision(storage)`: buffers (canonical f32 weight, packed weight). The one
/// preparation of conv weights: inference's upload runs it once ([`ConvTune::upload`]),
/// training once per step. The bias needs no kernel: it is the canonical bias followed by
/// zeros up to whole blocks.
pub fn pack(
    gpu: &Gpu,
    c_in: usize,
    c_out: usize,
    k: usize,
    tune: ConvTune,
    storage: Precision,
) -> Result<Kernel> {
    let spec = tune.variant.spec();
    let tm = spec.tm.unwrap_or(tune.tm) as usize;
    let (packed, _) = tune.packed_elems(c_in, c_out, k);
    let bindings = vec![("weight", c_out * c_in * k * k), ("packed", packed)];
    let (src, consts, groups) = match spec.packing {
        Packing::Gemm16 => {
            let kp = k_pad(c_in, k);
            let consts = consts![
                C_OUT = c_out,
                ROW = c_in * k * k,
                K_PAD = kp,
                M_PAD = packed / kp,
                WG = WG,
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
            consts![
                C_IN = c_in,
                C_OUT = c_out,
                WG = WG,
                T = if spec.packing == Packing::Winograd {
                    6.0
                } else {
                    4.0
                },
            ]
            .to_vec(),
            // One invocation per (output channel padded to 8, input channel) pair.
            per_elem(c_out.div_ceil(8) * 8 * c_in),
        ),
        Packing::Blocked | Packing::Subgroup => {
            let consts = consts![
                C_IN = c_in,
                C_OUT = c_out,
                KS = k,
                TM = tm,
                SUBGROUP = spec.packing == Packing::Subgroup,
                WG = WG,
            ]
            .to_vec();
            if tune.weight_precision(storage) == Precision::F16 {
                // f16 halves, two to a u32, as Gemm16's.
                let bindings = vec![("weight", c_out * c_in * k * k, 4), ("packed", packed, 2)];
                return Kernel::with_bindings(
                    gpu,
                    shader!("conv/layout/pack_half"),
                    "main",
                    &consts,
                    per_elem(packed.div_ceil(2)),
                    bindings,
                );
            }
            (shader!("conv/layout/pack"), consts, per_elem(packed))
        }
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
        &consts![C_IN = c_in, C_OUT = c_out, KS = k, WG = WG],
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

    /// Uploads the weights and bias of a (c_in, c_out, k) conv, stored as `precision`:
    /// the canonical weight once, packed on the GPU by [`pack`] (as training repacks it),
    /// and the bias zero padded to whole blocks.
    pub fn upload(
        &self,
        gpu: &Gpu,
        (c_in, c_out, k): (usize, usize, usize),
        (weight, bias): (&[f32], &[f32]),
        precision: Precision,
    ) -> Result<ConvParams> {
        if weight.len() != c_out * c_in * k * k || bias.len() != c_out {
            return Err(shape_err!(
                "conv weight/bias have {}/{} elements, {c_out}x{c_in}x{k}x{k} needs {}/{c_out}",
                weight.len(),
                bias.len(),
                c_out * c_in * k * k,
            ));
        }
        let op = pack(gpu, c_in, c_out, k, *self, precision)?;
        let (wl, bl) = self.packed_elems(c_in, c_out, k);
        let bytes = wl * self.weight_precision(precision).bytes();
        let canonical = gpu.upload("conv weight (canonical)", weight)?;
        let packed = gpu.alloc("conv weight", bytes.div_ceil(4) as u64 * 4)?;
        let bg = op.bind(gpu, &[&canonical, &packed])?;
        gpu.run_pass(&op.name, |p| op.encode(gpu, p, &bg))?;
        let mut b = bias.to_vec();
        b.resize(bl, 0.0);
        Ok(ConvParams {
            weight: packed,
            bias: gpu.upload_as("conv bias", &b, precision)?,
        })
    }
}

/// Columns of the Gemm16 packing: c_in * k * k rounded up to the 16 of a matrix tile.
pub(super) fn k_pad(c_in: usize, k: usize) -> usize {
    (c_in * k * k).div_ceil(16) * 16
}

/// Weights and bias in the kernel's packed layout, on the GPU.
pub struct ConvParams {
    pub weight: wgpu::Buffer,
    pub bias: wgpu::Buffer,
}
