//! Which variant and tunables a conv layer runs with: an explicit choice, the tuning file,
//! or the measured defaults per adapter and shape.

use super::{ConvShape, ConvVariant};
use crate::gpu::tuning::TunedConv;
use crate::gpu::{Gpu, Precision};

/// The conv configuration of a layer of `shape` whose tensors are stored as `precision`,
/// in order: an `explicit` choice; for f16 on an adapter with cooperative matrices, the
/// tensor-core variant (Coop: f16 operands is what `--precision f16` means there); the
/// adapter's entry in the tuning file (where the adapter can run it); the measured
/// default. The executor and the trainer both choose through this.
pub fn select(
    gpu: &Gpu,
    shape: ConvShape,
    explicit: Option<ConvTune>,
    precision: Precision,
) -> ConvTune {
    // A variant that cannot compute this kernel size (Winograd on a 1x1 layer) is passed
    // over for the next choice, so one explicit choice serves a whole network.
    let handles = |t: &ConvTune| t.variant.spec().kernels.contains(&shape.k);
    let offered = ConvTune::variants_for(gpu);
    let coop = offered
        .iter()
        .find(|t| t.variant == ConvVariant::Coop)
        .filter(|_| precision == Precision::F16);
    explicit
        .filter(handles)
        .or_else(|| coop.copied().filter(handles))
        .or_else(|| {
            let tune = ConvTune::from_tuned(gpu.tuning().conv(gpu, &shape.tuning_key())?)?;
            // The tuning file is shared by both precisions: an f16-operand entry (none is
            // written, but a file may be edited) would lower an f32 network's accuracy.
            offered
                .iter()
                .any(|v| v.variant == tune.variant && !v.variant.f16_operands())
                .then_some(tune)
                .filter(handles)
        })
        .unwrap_or_else(|| ConvTune::default_for_shape(gpu, &shape))
}

/// Tunables. `tm` is the output channels per invocation (direct) and `wg` the workgroup size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTune {
    pub variant: ConvVariant,
    pub wg: u32,
    pub tm: u32,
}

impl ConvTune {
    /// A tuning file's entry, where it names a known variant.
    pub fn from_tuned(t: &TunedConv) -> Option<ConvTune> {
        Some(ConvTune {
            variant: ConvVariant::from_name(&t.variant)?,
            wg: t.wg,
            tm: t.tm,
        })
    }

    /// The default for an adapter, from measurements recorded in the README.
    pub fn default_for(gpu: &Gpu) -> ConvTune {
        // Not Gemm, yet: on an H100 it ran VGG16's convolutions at batch 32 in 62 ms against
        // 79 for Subgroup (one noisy run each), but whole forwards were no faster with it
        // (batch 128: 256 to 272 ms over three runs, against 262 ms). `vgg bench --tune`
        // picks it per layer where it wins.
        let variant = if gpu.subgroups_of_at_least(8) {
            ConvVariant::Subgroup
        } else {
            ConvVariant::Direct
        };
        // Measured on lavapipe (README): 16 lanes per workgroup beat 64 there; GPUs want
        // wider workgroups to fill their SIMD units.
        let wg = if gpu.is_cpu() { 16 } else { 64 };
        ConvTune { variant, wg, tm: 8 }
    }

    /// The default for a layer of `shape`: as `default_for`, with Winograd for 3x3 layers
    /// on CPU drivers with subgroups: F(4x4, 3x3) where an image has at least 16 tiles of
    /// 4x4, else F(2x2, 3x3) where it has at least 16 of 2x2. Measured on lavapipe
    /// (README): F(4x4) 2.0-2.5x faster than Subgroup from 14x14 up to 224x224 and 1.3-1.4x
    /// faster than F(2x2) there; at 8x8 and 7x7 (4 tiles of 4x4, most of a 16-lane workgroup
    /// idle) F(4x4) is 1.8x slower than Subgroup and F(2x2) 1.5x faster; at 4x4 and below
    /// Subgroup is the fastest. On GPUs they are the tuner's to choose until measured there.
    pub fn default_for_shape(gpu: &Gpu, shape: &ConvShape) -> ConvTune {
        let tiles = |t: usize| shape.h.div_ceil(t) * shape.w.div_ceil(t);
        if shape.k == 3 && gpu.is_cpu() && gpu.subgroups_of_at_least(8) {
            let variant = if tiles(4) >= 16 {
                Some(ConvVariant::Winograd)
            } else if tiles(2) >= 16 {
                Some(ConvVariant::Winograd2)
            } else {
                None
            };
            if let Some(variant) = variant {
                return ConvTune {
                    variant,
                    wg: 16,
                    tm: 8,
                };
            }
        }
        ConvTune::default_for(gpu)
    }

    /// Every variant this adapter can run, each with the default tunables where it does
    /// not fix its own.
    pub fn variants_for(gpu: &Gpu) -> Vec<ConvTune> {
        let d = ConvTune::default_for(gpu);
        ConvVariant::ALL
            .iter()
            .map(|v| v.spec())
            .filter(|s| s.missing(gpu).is_none())
            .map(|s| s.fix(d))
            .collect()
    }
}
