//! The conv variants as data: one `VariantSpec` row per variant (its shader, weight
//! packing, fixed tunables, what the adapter must offer, how it tiles the output), read by
//! the forward kernel, the packers, the selector and the tuner instead of each testing the
//! variant.

use super::ConvTune;
use crate::gpu::Gpu;
use crate::kernels::shader;

/// Which implementation runs the convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvVariant {
    /// Register-blocked, no workgroup memory: weights are workgroup-uniform loads.
    Direct,
    /// As Direct, with the weights of 8 channels shared across a subgroup by broadcast.
    Subgroup,
    /// As Direct, with each chunk of weights staged through workgroup memory.
    Shared,
    /// An implicit GEMM for GPUs: 128 channels x 128 pixels per workgroup of 256, weights
    /// and gathered input patches staged in workgroup memory, 8 x 8 outputs per invocation.
    /// Its tunables are fixed: `wg` 256, `tm` 128 (the weight packing's channel block).
    Gemm,
    /// Winograd F(4x4, 3x3), 3x3 kernels only: 4x4 output tiles of 8 channels per
    /// invocation, a quarter of the direct kernels' multiplies; the transformed weights are
    /// shared across a subgroup (at least 8 lanes) by broadcast, as Subgroup does.
    Winograd,
    /// Winograd F(2x2, 3x3), 3x3 kernels only: Winograd's layout on 2x2 tiles, 16
    /// multiplies per 4 outputs; four times the tiles, for small feature maps.
    Winograd2,
    /// An implicit GEMM on cooperative matrices (tensor cores): f16 operands, f32 sums, 64
    /// channels x 64 pixels per workgroup of 4 subgroups. Adapters that list
    /// [`crate::gpu::COOP_SHAPE`] only; the executor's choice for `--precision f16` there.
    Coop,
    /// Coop's kernel with the matrix operations done lane by lane: slow, and never chosen
    /// by the selector or the tuner; it exists so CI's CPU drivers test the kernel's
    /// staging, tiling and epilogue, leaving only the cooperative-matrix calls untested
    /// without a GPU.
    CoopEmulated,
}

impl ConvVariant {
    pub const ALL: [ConvVariant; 8] = [
        ConvVariant::Direct,
        ConvVariant::Shared,
        ConvVariant::Subgroup,
        ConvVariant::Gemm,
        ConvVariant::Winograd,
        ConvVariant::Winograd2,
        ConvVariant::Coop,
        ConvVariant::CoopEmulated,
    ];

    /// Whether the variant rounds its operands to f16 whatever the tensors' precision (so
    /// its error is f16's, and only `--precision f16` selects it).
    pub fn f16_operands(self) -> bool {
        self.spec().packing == Packing::Gemm16
    }

    /// The name the tuning file and the reports use (`Direct`, `Subgroup`, ...).
    pub fn name(self) -> String {
        format!("{self:?}")
    }

    pub fn from_name(name: &str) -> Option<ConvVariant> {
        ConvVariant::ALL.into_iter().find(|v| v.name() == name)
    }
}

/// How a variant reads its weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Packing {
    /// `[c_out / tm][c_in][k][k][tm]`: blocks of `tm` output channels.
    Blocked,
    /// `[c_out / 8][c_in][k][8][4]`: blocks of 8 channels, one vec4 of taps per kernel row.
    Subgroup,
    /// `[c_out / tm][c_in][36][tm]`: each 3x3 kernel transformed to Winograd's 6x6 domain
    /// (U = G g G^T).
    Winograd,
    /// `[c_out / tm][c_in][16][tm]`: F(2x2, 3x3)'s 4x4 transform domain.
    Winograd2,
    /// `[c_out / 64 * 64][k_pad]`: each channel's weights as one row in (ci, ky, kx) order,
    /// f16, zero padded to 64 rows and to k_pad = c_in * k * k rounded up to 16 columns.
    Gemm16,
}

/// What an adapter must offer to run a variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Needs {
    Nothing,
    /// Subgroups of at least this many lanes.
    Subgroups(u32),
    /// This many invocations per workgroup.
    Invocations(u32),
    /// Cooperative matrices of [`crate::gpu::COOP_SHAPE`] and subgroups of one fixed size
    /// (the workgroup is 4 of them).
    CoopMatrix,
    /// shader-f16 and subgroups of one fixed size of at least this many lanes.
    FixedSubgroups(u32),
}

/// How a variant covers the output: the grid's x runs over (images x) tiles, y over
/// channel blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tiling {
    /// `wg` lanes of 4 adjacent pixels per workgroup, within one image's rows.
    Lanes,
    /// 128 pixels of the whole batch per workgroup.
    Pixels128,
    /// `wg` lanes of one 4x4 pixel tile each per workgroup, within one image.
    Tiles4x4,
    /// As Tiles4x4 with 2x2 tiles.
    Tiles2x2,
    /// 64 channels x 64 pixels of the whole batch per workgroup.
    Gemm64,
}

/// Everything that distinguishes a conv variant, in one place: the table the kernel, the
/// weight packing, the selector and the tuner read instead of each testing the variant.
#[derive(Clone, Copy, Debug)]
pub struct VariantSpec {
    pub variant: ConvVariant,
    pub shader: crate::gpu::Shader,
    pub packing: Packing,
    /// Tunables the shader fixes; `None` where the tuner may choose.
    pub wg: Option<u32>,
    pub tm: Option<u32>,
    pub needs: Needs,
    pub tiling: Tiling,
    /// The kernel sizes it computes.
    pub kernels: &'static [usize],
}

pub(super) const SPECS: [VariantSpec; 8] = [
    VariantSpec {
        variant: ConvVariant::Direct,
        shader: shader!("conv/forward/direct"),
        packing: Packing::Blocked,
        wg: None,
        tm: None,
        needs: Needs::Nothing,
        tiling: Tiling::Lanes,
        kernels: &[1, 3],
    },
    VariantSpec {
        variant: ConvVariant::Shared,
        shader: shader!("conv/forward/shared"),
        packing: Packing::Blocked,
        wg: None,
        tm: None,
        needs: Needs::Nothing,
        tiling: Tiling::Lanes,
        kernels: &[1, 3],
    },
    VariantSpec {
        variant: ConvVariant::Subgroup,
        shader: shader!("conv/forward/subgroup"),
        packing: Packing::Subgroup,
        wg: None,
        tm: Some(8),
        needs: Needs::Subgroups(8),
        tiling: Tiling::Lanes,
        kernels: &[1, 3],
    },
    VariantSpec {
        variant: ConvVariant::Gemm,
        shader: shader!("conv/forward/gemm"),
        packing: Packing::Blocked,
        wg: Some(256),
        tm: Some(128),
        needs: Needs::Invocations(256),
        tiling: Tiling::Pixels128,
        kernels: &[1, 3],
    },
    VariantSpec {
        variant: ConvVariant::Winograd,
        shader: shader!("conv/forward/winograd"),
        packing: Packing::Winograd,
        wg: None,
        tm: Some(8),
        needs: Needs::Subgroups(8),
        tiling: Tiling::Tiles4x4,
        kernels: &[3],
    },
    VariantSpec {
        variant: ConvVariant::Winograd2,
        shader: shader!("conv/forward/winograd2"),
        packing: Packing::Winograd2,
        wg: None,
        tm: Some(8),
        needs: Needs::Subgroups(8),
        tiling: Tiling::Tiles2x2,
        kernels: &[3],
    },
    // `wg` is nominal: the shader runs 4 subgroups, 4 x the adapter's subgroup size.
    VariantSpec {
        variant: ConvVariant::Coop,
        shader: shader!("conv/forward/coop"),
        packing: Packing::Gemm16,
        wg: Some(128),
        tm: Some(64),
        needs: Needs::CoopMatrix,
        tiling: Tiling::Gemm64,
        kernels: &[1, 3],
    },
    VariantSpec {
        variant: ConvVariant::CoopEmulated,
        shader: shader!("conv/forward/coop_emulated"),
        packing: Packing::Gemm16,
        wg: Some(128),
        tm: Some(64),
        needs: Needs::FixedSubgroups(8),
        tiling: Tiling::Gemm64,
        kernels: &[1, 3],
    },
];

impl ConvVariant {
    /// This variant's row of the table.
    pub fn spec(self) -> &'static VariantSpec {
        // Every variant has a row (a test checks it).
        SPECS
            .iter()
            .find(|s| s.variant == self)
            .unwrap_or(&SPECS[0])
    }
}

impl VariantSpec {
    /// Why `gpu` cannot run this variant, or None where it can.
    pub fn missing(&self, gpu: &Gpu) -> Option<String> {
        let name = &gpu.info().name;
        match self.needs {
            Needs::Nothing => None,
            Needs::Subgroups(n) if !gpu.subgroups_of_at_least(n) => Some(format!(
                "the {:?} conv variant needs subgroups of at least {n} lanes, which {name} \
                 lacks",
                self.variant
            )),
            Needs::Invocations(n) if gpu.limits().max_compute_invocations_per_workgroup < n => {
                Some(format!(
                    "the {:?} conv variant needs {n} invocations per workgroup; {name} allows {}",
                    self.variant,
                    gpu.limits().max_compute_invocations_per_workgroup
                ))
            }
            Needs::CoopMatrix if !gpu.cooperative_matrix() => Some(format!(
                "the {:?} conv variant needs cooperative matrices of {}, which {name} does \
                 not offer",
                self.variant,
                crate::gpu::COOP_SHAPE
            )),
            Needs::CoopMatrix | Needs::FixedSubgroups(_) if gpu.fixed_subgroup().is_none() => {
                Some(format!(
                    "the {:?} conv variant needs subgroups of one fixed size, which {name} \
                     does not promise",
                    self.variant
                ))
            }
            Needs::FixedSubgroups(n) if !gpu.subgroups_of_at_least(n) => Some(format!(
                "the {:?} conv variant needs subgroups of at least {n} lanes, which {name} \
                 lacks",
                self.variant
            )),
            Needs::FixedSubgroups(_) if !gpu.features().contains(wgpu::Features::SHADER_F16) => {
                Some(format!(
                    "the {:?} conv variant needs shader-f16, which {name} lacks",
                    self.variant
                ))
            }
            _ => None,
        }
    }

    /// `tune` with the tunables this variant fixes.
    pub(super) fn fix(&self, tune: ConvTune) -> ConvTune {
        ConvTune {
            variant: self.variant,
            wg: self.wg.unwrap_or(tune.wg),
            tm: self.tm.unwrap_or(tune.tm),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_its_row_of_the_table() {
        for v in ConvVariant::ALL {
            assert_eq!(v.spec().variant, v);
        }
        assert_eq!(SPECS.len(), ConvVariant::ALL.len());
    }
}
