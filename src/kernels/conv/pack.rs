//! Repacks canonical conv weights into a forward variant's layout on the GPU
//! (shaders/conv/pack.wgsl; shaders/conv/winograd_pack.wgsl for Winograd's transformed
//! weights; shaders/conv/pack16.wgsl for the cooperative-matrix variants' f16 rows):
//! training updates canonical weights.

use super::{ConvTune, Packing};
use crate::error::{shape_err, Result};
use crate::gpu::Gpu;
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
            let kp = super::k_pad(c_in, k);
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
                shader!("conv/pack16"),
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
            shader!("conv/winograd_pack"),
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
            shader!("conv/pack"),
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
