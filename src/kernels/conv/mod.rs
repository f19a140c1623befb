//! 2-D convolution, stride 1, "same" padding, square kernel of size 1 or 3 (VGG uses 3x3
//! everywhere and 1x1 in config C), with bias and optional fused ReLU.

mod dgrad;
mod flip;
mod pack;
pub mod wgrad;

pub use dgrad::dgrad;
pub use flip::flip;
pub use pack::pack;
pub use wgrad::{wgrad, Wgrad};

use super::{bind, check_buffer, dispatch, fold, shader};
use crate::error::{shape_err, Error, Result};
use crate::gpu::tuning::TunedConv;
use crate::gpu::{Gpu, Precision};

/// NCHW input [n, c_in, h, w] -> output [n, c_out, h, w]; weight [c_out, c_in, k, k].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvShape {
    pub n: usize,
    pub c_in: usize,
    pub c_out: usize,
    pub h: usize,
    pub w: usize,
    pub k: usize,
}

impl ConvShape {
    pub fn new(n: usize, c_in: usize, c_out: usize, h: usize, w: usize, k: usize) -> Self {
        ConvShape {
            n,
            c_in,
            c_out,
            h,
            w,
            k,
        }
    }
    pub fn input_len(&self) -> usize {
        self.n * self.c_in * self.h * self.w
    }
    pub fn output_len(&self) -> usize {
        self.n * self.c_out * self.h * self.w
    }
    pub fn weight_len(&self) -> usize {
        self.c_out * self.c_in * self.k * self.k
    }
    /// Multiply-adds of one forward pass.
    pub fn macs(&self) -> u64 {
        (self.output_len() * self.c_in * self.k * self.k) as u64
    }
    /// The tuning file's key: `c_in,c_out,h,w,k` (the best choice does not depend on the
    /// batch much, so one entry serves every batch).
    pub fn tuning_key(&self) -> String {
        format!(
            "{},{},{},{},{}",
            self.c_in, self.c_out, self.h, self.w, self.k
        )
    }
    /// The kernel sizes every conv shader handles.
    pub(crate) fn check_kernel_size(&self) -> Result<()> {
        if self.k != 1 && self.k != 3 {
            return Err(shape_err!("conv kernel size {} (1 or 3 supported)", self.k));
        }
        Ok(())
    }
    /// The shape's override constants, as every conv shader names them.
    pub(crate) fn consts(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("N", self.n as f64),
            ("C_IN", self.c_in as f64),
            ("C_OUT", self.c_out as f64),
            ("H", self.h as f64),
            ("W", self.w as f64),
            ("KS", self.k as f64),
        ]
    }
    fn validate(&self) -> Result<()> {
        self.check_kernel_size()?;
        if [self.n, self.c_in, self.c_out, self.h, self.w].contains(&0) {
            return Err(shape_err!("conv shape has a zero dimension: {self:?}"));
        }
        Ok(())
    }
}

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
    /// [c_out / tm][c_in][k][k][tm]: blocks of `tm` output channels.
    Blocked,
    /// [c_out / 8][c_in][k][8][4]: blocks of 8 channels, one vec4 of taps per kernel row.
    Subgroup,
    /// [c_out / tm][c_in][36][tm]: each 3x3 kernel transformed to Winograd's 6x6 domain
    /// (U = G g G^T).
    Winograd,
    /// [c_out / tm][c_in][16][tm]: F(2x2, 3x3)'s 4x4 transform domain.
    Winograd2,
    /// [c_out / 64 * 64][k_pad]: each channel's weights as one row in (ci, ky, kx) order,
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

const SPECS: [VariantSpec; 8] = [
    VariantSpec {
        variant: ConvVariant::Direct,
        shader: shader!("conv/direct"),
        packing: Packing::Blocked,
        wg: None,
        tm: None,
        needs: Needs::Nothing,
        tiling: Tiling::Lanes,
        kernels: &[1, 3],
    },
    VariantSpec {
        variant: ConvVariant::Shared,
        shader: shader!("conv/shared"),
        packing: Packing::Blocked,
        wg: None,
        tm: None,
        needs: Needs::Nothing,
        tiling: Tiling::Lanes,
        kernels: &[1, 3],
    },
    VariantSpec {
        variant: ConvVariant::Subgroup,
        shader: shader!("conv/subgroup"),
        packing: Packing::Subgroup,
        wg: None,
        tm: Some(8),
        needs: Needs::Subgroups(8),
        tiling: Tiling::Lanes,
        kernels: &[1, 3],
    },
    VariantSpec {
        variant: ConvVariant::Gemm,
        shader: shader!("conv/gemm"),
        packing: Packing::Blocked,
        wg: Some(256),
        tm: Some(128),
        needs: Needs::Invocations(256),
        tiling: Tiling::Pixels128,
        kernels: &[1, 3],
    },
    VariantSpec {
        variant: ConvVariant::Winograd,
        shader: shader!("conv/winograd"),
        packing: Packing::Winograd,
        wg: None,
        tm: Some(8),
        needs: Needs::Subgroups(8),
        tiling: Tiling::Tiles4x4,
        kernels: &[3],
    },
    VariantSpec {
        variant: ConvVariant::Winograd2,
        shader: shader!("conv/winograd2"),
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
        shader: shader!("conv/coop"),
        packing: Packing::Gemm16,
        wg: Some(128),
        tm: Some(64),
        needs: Needs::CoopMatrix,
        tiling: Tiling::Gemm64,
        kernels: &[1, 3],
    },
    VariantSpec {
        variant: ConvVariant::CoopEmulated,
        shader: shader!("conv/coop_emulated"),
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
            Needs::CoopMatrix | Needs::FixedSubgroups(_) if fixed_subgroup(gpu).is_none() => {
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
    fn fix(&self, tune: ConvTune) -> ConvTune {
        ConvTune {
            variant: self.variant,
            wg: self.wg.unwrap_or(tune.wg),
            tm: self.tm.unwrap_or(tune.tm),
        }
    }
}

/// The adapter's subgroup size where it is one fixed size (min = max), as the
/// cooperative-matrix kernels need to size their workgroup of 4 subgroups.
pub(crate) fn fixed_subgroup(gpu: &Gpu) -> Option<u32> {
    let i = gpu.info();
    (gpu.features().contains(wgpu::Features::SUBGROUP)
        && i.subgroup_min_size == i.subgroup_max_size
        && i.subgroup_min_size > 0)
        .then_some(i.subgroup_min_size)
}

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

    /// Reorders torchvision weights [c_out, c_in, k, k] and bias [c_out] into the layout the
    /// variant reads: [c_out / tm][c_in][k][k][tm] (direct, shared) or
    /// [c_out / 8][c_in][k][8][4] (subgroup: one vec4 of taps per channel and row), zero
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

    /// Packs and uploads weights and bias, stored as `precision`.
    #[allow(clippy::too_many_arguments)]
    pub fn upload(
        &self,
        gpu: &Gpu,
        c_in: usize,
        c_out: usize,
        k: usize,
        weight: &[f32],
        bias: &[f32],
        precision: Precision,
    ) -> Result<ConvParams> {
        let (w, b) = self.pack(c_in, c_out, k, weight, bias)?;
        Ok(ConvParams {
            weight: gpu.upload_as("conv weight", &w, self.weight_precision(precision))?,
            bias: gpu.upload_as("conv bias", &b, precision)?,
        })
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

/// A compiled convolution for one shape.
pub struct Conv2d {
    pub shape: ConvShape,
    pub relu: bool,
    pub tune: ConvTune,
    pub precision: Precision,
    pipeline: wgpu::ComputePipeline,
}

const TN: usize = 4;

impl Conv2d {
    pub fn new(gpu: &Gpu, shape: ConvShape, relu: bool) -> Result<Conv2d> {
        Conv2d::with_tune(gpu, shape, relu, ConvTune::default_for_shape(gpu, &shape))
    }

    pub fn with_tune(gpu: &Gpu, shape: ConvShape, relu: bool, tune: ConvTune) -> Result<Conv2d> {
        Conv2d::with_precision(gpu, shape, relu, tune, Precision::F32)
    }

    /// As `with_tune`, with tensors and weights stored as `precision`.
    pub fn with_precision(
        gpu: &Gpu,
        shape: ConvShape,
        relu: bool,
        tune: ConvTune,
        precision: Precision,
    ) -> Result<Conv2d> {
        shape.validate()?;
        let spec = tune.variant.spec();
        let fixed = spec.wg.is_some_and(|w| w != tune.wg)
            || spec.tm.is_some_and(|t| {
                // The subgroup variants' 8 channels are their packing, whatever `tm` says.
                t != tune.tm
                    && !matches!(
                        spec.packing,
                        Packing::Subgroup | Packing::Winograd | Packing::Winograd2
                    )
            });
        let tm_ok = spec.tm.is_some() || matches!(tune.tm, 1 | 2 | 4 | 8 | 16);
        // Broadcasts read lanes 0 .. n - 1 of every subgroup: whole groups of n lanes.
        let lanes_ok = match spec.needs {
            Needs::Subgroups(n) => tune.wg.is_multiple_of(n),
            _ => true,
        };
        if fixed || !tm_ok || !lanes_ok || tune.wg == 0 {
            return Err(shape_err!("conv tunables out of range: {tune:?}"));
        }
        if !spec.kernels.contains(&shape.k) {
            return Err(shape_err!(
                "the {:?} conv variant computes kernel sizes {:?}, not {}",
                tune.variant,
                spec.kernels,
                shape.k
            ));
        }
        if let Some(why) = spec.missing(gpu) {
            return Err(Error::Limit(why));
        }
        let tune = spec.fix(tune);
        let mut consts = shape.consts();
        consts.push(("RELU", relu as u8 as f64));
        // The shader declares as overrides only the tunables it leaves free.
        if spec.wg.is_none() {
            consts.push(("WG", tune.wg as f64));
        }
        if spec.tm.is_none() {
            consts.push(("TM", tune.tm as f64));
        }
        if spec.tiling == Tiling::Gemm64 {
            let sg = fixed_subgroup(gpu).unwrap_or(32);
            consts.push(("K_PAD", k_pad(shape.c_in, shape.k) as f64));
            consts.push(("WG", (4 * sg) as f64));
        }
        let pipeline = gpu.pipeline(&spec.shader.with_precision(precision), "main", &consts)?;
        Ok(Conv2d {
            shape,
            relu,
            tune,
            precision,
            pipeline,
        })
    }

    fn blocks(&self) -> usize {
        self.shape.c_out.div_ceil(self.tune.tm as usize)
    }

    /// Elements of the packed weight buffer.
    fn weight_elems(&self) -> usize {
        self.tune
            .packed_elems(self.shape.c_in, self.shape.c_out, self.shape.k)
            .0
    }

    /// Reorders torchvision weights; see [`ConvTune::pack`].
    pub fn pack(&self, weight: &[f32], bias: &[f32]) -> Result<(Vec<f32>, Vec<f32>)> {
        let s = self.shape;
        self.tune.pack(s.c_in, s.c_out, s.k, weight, bias)
    }

    /// Packs and uploads weights and bias.
    pub fn upload(&self, gpu: &Gpu, weight: &[f32], bias: &[f32]) -> Result<ConvParams> {
        let s = self.shape;
        self.tune
            .upload(gpu, s.c_in, s.c_out, s.k, weight, bias, self.precision)
    }

    /// A bind group over input, packed parameters and output, after checking their sizes.
    pub fn bind(
        &self,
        gpu: &Gpu,
        input: &wgpu::Buffer,
        params: &ConvParams,
        output: &wgpu::Buffer,
    ) -> Result<wgpu::BindGroup> {
        let s = self.shape;
        let tm = self.tune.tm as usize;
        let e = self.precision.bytes();
        check_buffer(gpu, "conv input", input, s.input_len(), e)?;
        check_buffer(gpu, "conv output", output, s.output_len(), e)?;
        let we = self.tune.weight_precision(self.precision).bytes();
        check_buffer(gpu, "conv weight", &params.weight, self.weight_elems(), we)?;
        check_buffer(gpu, "conv bias", &params.bias, self.blocks() * tm, e)?;
        Ok(bind(
            gpu,
            &self.pipeline,
            "conv",
            &[input, &params.weight, &params.bias, output],
        ))
    }

    /// Workgroup counts (x, y, z) for this shape.
    pub fn grid(&self, gpu: &Gpu) -> Result<(u32, u32, u32)> {
        let s = self.shape;
        if self.tune.variant.spec().tiling == Tiling::Gemm64 {
            let (x, z) = fold(gpu, (s.n * s.h * s.w).div_ceil(64) as u64)?;
            return Ok((x, self.blocks() as u32, z));
        }
        if self.tune.variant.spec().tiling == Tiling::Pixels128 {
            let tiles = (s.n * s.h * s.w).div_ceil(128);
            let (x, z) = fold(gpu, tiles as u64)?;
            return Ok((x, self.blocks() as u32, z));
        }
        let groups = match self.tune.variant.spec().tiling {
            Tiling::Tiles4x4 => s.h.div_ceil(4) * s.w.div_ceil(4),
            Tiling::Tiles2x2 => s.h.div_ceil(2) * s.w.div_ceil(2),
            _ => s.h * s.w.div_ceil(TN),
        };
        let tiles = groups.div_ceil(self.tune.wg as usize);
        let (x, z) = fold(gpu, (s.n * tiles) as u64)?;
        Ok((x, self.blocks() as u32, z))
    }

    pub fn encode(
        &self,
        gpu: &Gpu,
        pass: &mut wgpu::ComputePass<'_>,
        bg: &wgpu::BindGroup,
    ) -> Result<()> {
        dispatch(pass, &self.pipeline, bg, self.grid(gpu)?);
        Ok(())
    }
}

/// Columns of the Gemm16 packing: c_in * k * k rounded up to the 16 of a matrix tile.
fn k_pad(c_in: usize, k: usize) -> usize {
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

/// U = G g G^T of one 3x3 kernel `g` (row-major) for F(4x4, 3x3), row-major 6x6, in f64
/// so the packed weight is rounded once.
pub fn winograd_weight(g: &[f32]) -> [f64; 36] {
    let mut u = [0.0; 36];
    u.copy_from_slice(&transform_weight(g, &WINOGRAD_G));
    u
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
