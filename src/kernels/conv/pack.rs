//! Repacks canonical conv weights into a forward variant's layout on the GPU
//! (shaders/conv/pack.wgsl): training updates canonical weights.

use super::{ConvTune, Packing};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels::{per_elem, shader, Kernel, WG};

/// Repacks a canonical conv weight into the layout `tune` reads: buffers (canonical
/// weight, packed weight). The bias needs no kernel: it is the canonical bias followed by
/// zeros up to whole blocks, a buffer copy.
pub fn pack(gpu: &Gpu, c_in: usize, c_out: usize, k: usize, tune: ConvTune) -> Result<Kernel> {
    let spec = tune.variant.spec();
    let sg = spec.packing == Packing::Subgroup;
    let tm = spec.tm.unwrap_or(tune.tm) as usize;
    let (packed, _) = tune.packed_elems(c_in, c_out, k);
    Kernel::new(
        gpu,
        shader!("conv/pack"),
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
