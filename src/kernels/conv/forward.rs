//! The forward convolution of one shape: a compiled variant, its bind group and dispatch.

use super::layout::k_pad;
use super::{ConvParams, ConvShape, ConvTune, Needs, Packing, Tiling};
use crate::error::{shape_err, Error, Result};
use crate::gpu::{Gpu, Precision};
use crate::kernels::{bind, check_buffer, dispatch, fold};

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
        consts.extend(consts![RELU = relu]);
        // The shader declares as overrides only the tunables it leaves free.
        if spec.wg.is_none() {
            consts.extend(consts![WG = tune.wg]);
        }
        if spec.tm.is_none() {
            consts.extend(consts![TM = tune.tm]);
        }
        if spec.tiling == Tiling::Gemm64 {
            let sg = gpu.fixed_subgroup().unwrap_or(32);
            consts.extend(consts![K_PAD = k_pad(shape.c_in, shape.k), WG = 4 * sg]);
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

    /// Uploads weights and bias, packed on the GPU ([`ConvTune::upload`]).
    pub fn upload(&self, gpu: &Gpu, weight: &[f32], bias: &[f32]) -> Result<ConvParams> {
        let s = self.shape;
        self.tune
            .upload(gpu, (s.c_in, s.c_out, s.k), (weight, bias), self.precision)
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
