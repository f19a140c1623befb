//! Fully connected layer y = x·Wᵀ + b, W in torchvision's [out, in] layout, optional fused
//! ReLU. A weight larger than one storage binding (VGG16's first FC weight is 392 MiB, over
//! the 128 MiB many adapters allow) is split into row chunks, each its own buffer and
//! dispatch; every chunk writes its own columns of y, so no pass combines partial results.

mod backward;

pub use backward::{dw, dx};

use super::{bind, check_buffer, dispatch, fold, shader};
use crate::error::{shape_err, Error, Result};
use crate::gpu::{Gpu, Precision};

/// x [m, k] -> y [m, n_out].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinearShape {
    pub m: usize,
    pub k: usize,
    pub n_out: usize,
}

impl LinearShape {
    pub fn macs(&self) -> u64 {
        (self.m * self.k * self.n_out) as u64
    }

    /// The tuning file's key: `m,k,n_out`.
    pub fn tuning_key(&self) -> String {
        format!("{},{},{}", self.m, self.k, self.n_out)
    }
}

/// The FC variant of a layer of `shape` whose tensors are stored as `precision`, in
/// order: an `explicit` choice; for f16 at a batch of 16 or more on an adapter with
/// cooperative matrices, the tensor-core variant; the adapter's entry in the tuning file;
/// the measured default. The executor and the trainer both choose through this (in the
/// shared lowering).
pub fn select(
    gpu: &Gpu,
    shape: LinearShape,
    explicit: Option<LinearVariant>,
    precision: Precision,
) -> LinearVariant {
    let coop =
        precision == Precision::F16 && shape.m >= 16 && LinearVariant::Coop.missing(gpu).is_none();
    explicit
        .or_else(|| coop.then_some(LinearVariant::Coop))
        .or_else(|| {
            let t = gpu.tuning();
            LinearVariant::from_name(&t.linear(gpu, &shape.tuning_key())?.variant)
                .filter(|v| !v.f16_operands() && v.missing(gpu).is_none())
        })
        .unwrap_or_else(|| LinearVariant::default_for(gpu))
}

const TN: usize = 4;

/// How a linear layer's work is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinearVariant {
    /// Each invocation computes a register tile (4 batch rows x 4 features, or 8 x 4 with
    /// subgroup sharing of x) over all of k: few, long invocations, the right shape for a
    /// CPU driver's SIMD lanes.
    Rows,
    /// Each workgroup splits k over its invocations and sums in workgroup memory: coalesced
    /// weight reads and enough workgroups to fill a GPU even at batch 1.
    Reduce,
    /// A GEMM on cooperative matrices (tensor cores): f16 operands, f32 sums, 64 features x
    /// 64 batch rows per workgroup of 4 subgroups. For f16 at batches of 16 and more where
    /// the adapter lists [`crate::gpu::COOP_SHAPE`].
    Coop,
    /// Coop's kernel with the matrix operations done lane by lane, for CI's CPU drivers to
    /// test it; never selected.
    CoopEmulated,
}

impl LinearVariant {
    /// `Reduce` on GPUs (130x faster than `Rows` for VGG16's fc6 at batch 1 on an H100),
    /// `Rows` on CPU adapters: on lavapipe the two are equal on fc6 and fc7 and `Rows` is
    /// faster on fc8, since there a workgroup's invocations run one after another.
    pub fn default_for(gpu: &Gpu) -> LinearVariant {
        if gpu.is_cpu() {
            LinearVariant::Rows
        } else {
            LinearVariant::Reduce
        }
    }

    pub const ALL: [LinearVariant; 4] = [
        LinearVariant::Rows,
        LinearVariant::Reduce,
        LinearVariant::Coop,
        LinearVariant::CoopEmulated,
    ];

    /// Whether the variant rounds its operands to f16 whatever the storage precision.
    pub fn f16_operands(self) -> bool {
        matches!(self, LinearVariant::Coop | LinearVariant::CoopEmulated)
    }

    /// Why this adapter cannot run the variant, if it cannot.
    pub fn missing(self, gpu: &Gpu) -> Option<String> {
        let name = &gpu.info().name;
        let fixed = gpu.fixed_subgroup();
        match self {
            LinearVariant::Rows | LinearVariant::Reduce => None,
            LinearVariant::Coop if !gpu.cooperative_matrix() => Some(format!(
                "the Coop FC variant needs cooperative matrices of {}, which {name} does not \
                 offer",
                crate::gpu::COOP_SHAPE
            )),
            _ if fixed.is_none_or(|s| s < 8) => Some(format!(
                "the {self:?} FC variant needs subgroups of one fixed size of at least 8 \
                 lanes, which {name} does not promise"
            )),
            _ if !gpu.features().contains(wgpu::Features::SHADER_F16) => Some(format!(
                "the {self:?} FC variant needs shader-f16, which {name} lacks"
            )),
            _ => None,
        }
    }

    /// The variants this adapter can run.
    pub fn offered(gpu: &Gpu) -> Vec<LinearVariant> {
        LinearVariant::ALL
            .into_iter()
            .filter(|v| v.missing(gpu).is_none())
            .collect()
    }

    /// The name the tuning file and the reports use (`Rows`, `Reduce`).
    pub fn name(self) -> String {
        format!("{self:?}")
    }

    pub fn from_name(name: &str) -> Option<LinearVariant> {
        LinearVariant::ALL.into_iter().find(|v| v.name() == name)
    }
}

/// Weight rows and batch rows per workgroup of the `Coop` variants.
const COOP_BLOCK: usize = 64;
/// Invocations per workgroup of the `Reduce` variant (its shader holds at most 128).
const REDUCE_WG: u32 = 128;
/// Batch rows per workgroup of the `Reduce` variant.
const REDUCE_TM: usize = 8;
/// Output features per workgroup of the `Reduce` variant.
const REDUCE_R: usize = 4;

pub struct Linear {
    pub shape: LinearShape,
    pub relu: bool,
    pub variant: LinearVariant,
    pub subgroup: bool,
    pub precision: Precision,
    wg: u32,
    tm: usize,
    /// (first row, rows, pipeline) per weight chunk.
    chunks: Vec<(usize, usize, wgpu::ComputePipeline)>,
}

/// The weight's row chunks and the bias, on the GPU.
pub struct LinearParams {
    pub chunks: Vec<wgpu::Buffer>,
    pub bias: wgpu::Buffer,
}

/// The (first row, rows) of each weight chunk when one binding holds at most `max_bytes`
/// (capped at the adapter's limit).
pub fn row_chunks(
    gpu: &Gpu,
    k: usize,
    n_out: usize,
    max_bytes: u64,
    precision: Precision,
) -> Result<Vec<(usize, usize)>> {
    let max_bytes = max_bytes.min(gpu.max_binding_bytes());
    let row_bytes = (k * precision.bytes()) as u64;
    let rows_per = (max_bytes / row_bytes) as usize;
    if rows_per == 0 {
        return Err(Error::Limit(format!(
            "one weight row of {k} f32 ({row_bytes} bytes) exceeds the binding limit {max_bytes}"
        )));
    }
    Ok((0..n_out)
        .step_by(rows_per)
        .map(|r0| (r0, rows_per.min(n_out - r0)))
        .collect())
}

impl LinearParams {
    /// Uploads weight [n_out, k] split at `rows` (from [`row_chunks`]), and the bias,
    /// stored as `precision`.
    pub fn upload(
        gpu: &Gpu,
        k: usize,
        n_out: usize,
        rows: &[(usize, usize)],
        weight: &[f32],
        bias: &[f32],
        precision: Precision,
    ) -> Result<LinearParams> {
        if weight.len() != n_out * k || bias.len() != n_out {
            return Err(shape_err!(
                "linear weight/bias have {}/{} elements, {n_out}x{k} needs {}/{n_out}",
                weight.len(),
                bias.len(),
                n_out * k,
            ));
        }
        let chunks = rows
            .iter()
            .map(|(r0, n)| gpu.upload_as("linear weight", &weight[r0 * k..(r0 + n) * k], precision))
            .collect::<Result<Vec<_>>>()?;
        Ok(LinearParams {
            chunks,
            bias: gpu.upload_as("linear bias", bias, precision)?,
        })
    }
}

impl Linear {
    pub fn new(gpu: &Gpu, shape: LinearShape, relu: bool) -> Result<Self> {
        Linear::with_binding_limit(gpu, shape, relu, gpu.max_binding_bytes())
    }

    /// As `new`, but splitting the weight as if one binding held at most `max_bytes`
    /// (tests use it to exercise the split on small shapes).
    pub fn with_binding_limit(
        gpu: &Gpu,
        shape: LinearShape,
        relu: bool,
        max_bytes: u64,
    ) -> Result<Self> {
        Linear::with_options(gpu, shape, relu, max_bytes, Precision::F32)
    }

    /// As `with_binding_limit`, with tensors and weights stored as `precision`, in the
    /// adapter's default variant.
    pub fn with_options(
        gpu: &Gpu,
        shape: LinearShape,
        relu: bool,
        max_bytes: u64,
        precision: Precision,
    ) -> Result<Self> {
        let variant = LinearVariant::default_for(gpu);
        Linear::with_variant(gpu, shape, relu, max_bytes, precision, variant)
    }

    /// As `with_options`, in the given variant.
    pub fn with_variant(
        gpu: &Gpu,
        shape: LinearShape,
        relu: bool,
        max_bytes: u64,
        precision: Precision,
        variant: LinearVariant,
    ) -> Result<Self> {
        let LinearShape { m, k, n_out } = shape;
        if m * k * n_out == 0 {
            return Err(shape_err!(
                "linear layer with an empty dimension: {shape:?}"
            ));
        }
        if let Some(why) = variant.missing(gpu) {
            return Err(Error::Limit(why));
        }
        let subgroup = variant == LinearVariant::Rows && gpu.subgroups_of_at_least(8);
        // The tensor-core kernels run 4 subgroups.
        let coop_wg = 4 * gpu.fixed_subgroup().unwrap_or(32);
        let (name, tm, wg) = match variant {
            LinearVariant::Coop => (
                shader!("linear/coop").with_precision(precision),
                COOP_BLOCK,
                coop_wg,
            ),
            LinearVariant::CoopEmulated => (
                shader!("linear/coop_emulated").with_precision(precision),
                COOP_BLOCK,
                coop_wg,
            ),
            LinearVariant::Reduce => (
                shader!("linear/reduce").with_precision(precision),
                m.min(REDUCE_TM),
                REDUCE_WG,
            ),
            LinearVariant::Rows if subgroup => (
                shader!("linear/subgroup").with_precision(precision),
                8,
                if gpu.is_cpu() { 16 } else { 64 },
            ),
            LinearVariant::Rows => (
                shader!("linear/rows").with_precision(precision),
                4,
                if gpu.is_cpu() { 16 } else { 64 },
            ),
        };
        let mut chunks = Vec::new();
        for (row0, rows) in row_chunks(gpu, k, n_out, max_bytes, precision)? {
            let mut consts = consts![
                M = m,
                K = k,
                N_OUT = n_out,
                ROW0 = row0,
                ROWS = rows,
                RELU = relu,
                WG = wg,
            ]
            .to_vec();
            if variant == LinearVariant::Reduce {
                consts.extend(consts![TMV = tm]);
            }
            let p = gpu.pipeline(&name, "main", &consts)?;
            chunks.push((row0, rows, p));
        }
        Ok(Linear {
            shape,
            relu,
            variant,
            subgroup,
            precision,
            wg,
            tm,
            chunks,
        })
    }

    /// How many bindings the weight is split over.
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// Uploads weight [n_out, k] as row chunks, and the bias.
    pub fn upload(&self, gpu: &Gpu, weight: &[f32], bias: &[f32]) -> Result<LinearParams> {
        let rows: Vec<_> = self.chunks.iter().map(|c| (c.0, c.1)).collect();
        let s = self.shape;
        LinearParams::upload(gpu, s.k, s.n_out, &rows, weight, bias, self.precision)
    }

    /// One bind group per weight chunk.
    pub fn bind(
        &self,
        gpu: &Gpu,
        x: &wgpu::Buffer,
        params: &LinearParams,
        output: &wgpu::Buffer,
    ) -> Result<Vec<wgpu::BindGroup>> {
        let s = self.shape;
        check_buffer(gpu, "linear input", x, s.m * s.k, self.precision.bytes())?;
        check_buffer(
            gpu,
            "linear output",
            output,
            s.m * s.n_out,
            self.precision.bytes(),
        )?;
        check_buffer(
            gpu,
            "linear bias",
            &params.bias,
            s.n_out,
            self.precision.bytes(),
        )?;
        if params.chunks.len() != self.chunks.len() {
            return Err(shape_err!(
                "linear weight has {} chunks, the layer was planned with {}",
                params.chunks.len(),
                self.chunks.len()
            ));
        }
        self.chunks
            .iter()
            .zip(&params.chunks)
            .map(|((_, rows, p), w)| {
                check_buffer(
                    gpu,
                    "linear weight chunk",
                    w,
                    rows * s.k,
                    self.precision.bytes(),
                )?;
                Ok(bind(gpu, p, "linear", &[x, w, &params.bias, output]))
            })
            .collect()
    }

    pub fn encode(
        &self,
        gpu: &Gpu,
        pass: &mut wgpu::ComputePass<'_>,
        bgs: &[wgpu::BindGroup],
    ) -> Result<()> {
        for ((_, rows, p), bg) in self.chunks.iter().zip(bgs) {
            let otiles = match self.variant {
                LinearVariant::Rows => rows.div_ceil(TN * self.wg as usize),
                LinearVariant::Reduce => rows.div_ceil(REDUCE_R),
                LinearVariant::Coop | LinearVariant::CoopEmulated => rows.div_ceil(COOP_BLOCK),
            };
            let total = otiles * self.shape.m.div_ceil(self.tm);
            let (x, z) = fold(gpu, total as u64)?;
            dispatch(pass, p, bg, (x, 1, z));
        }
        Ok(())
    }
}
