//! Adaptive average pooling to a fixed output size (7x7 before VGG's classifier).

use super::{bind, check_buffer, dispatch, fold, shader};
use crate::error::{shape_err, Result};
use crate::gpu::{Gpu, Precision};
use crate::kernels::WG;

pub struct AdaptiveAvgPool {
    pub precision: Precision,
    pub dims: (usize, usize, usize, usize),
    pub out: (usize, usize),
    pipeline: wgpu::ComputePipeline,
}

impl AdaptiveAvgPool {
    pub fn new(gpu: &Gpu, dims: (usize, usize, usize, usize), out: (usize, usize)) -> Result<Self> {
        AdaptiveAvgPool::with_precision(gpu, dims, out, Precision::F32)
    }

    /// As `new`, with tensors stored as `precision`.
    pub fn with_precision(
        gpu: &Gpu,
        dims: (usize, usize, usize, usize),
        out: (usize, usize),
        precision: Precision,
    ) -> Result<Self> {
        let (n, c, h, w) = dims;
        if n * c * h * w == 0 || out.0 == 0 || out.1 == 0 {
            return Err(shape_err!(
                "adaptive pool {dims:?} -> {out:?} has an empty dimension"
            ));
        }
        let pipeline = gpu.pipeline(
            &shader!("avgpool/forward").with_precision(precision),
            "main",
            &[
                ("N", n as f64),
                ("C", c as f64),
                ("H", h as f64),
                ("W", w as f64),
                ("OH", out.0 as f64),
                ("OW", out.1 as f64),
                ("WG", WG as f64),
            ],
        )?;
        Ok(AdaptiveAvgPool {
            dims,
            out,
            precision,
            pipeline,
        })
    }

    pub fn output_len(&self) -> usize {
        self.dims.0 * self.dims.1 * self.out.0 * self.out.1
    }

    pub fn bind(
        &self,
        gpu: &Gpu,
        input: &wgpu::Buffer,
        output: &wgpu::Buffer,
    ) -> Result<wgpu::BindGroup> {
        let (n, c, h, w) = self.dims;
        check_buffer(
            gpu,
            "adaptive pool input",
            input,
            n * c * h * w,
            self.precision.bytes(),
        )?;
        check_buffer(
            gpu,
            "adaptive pool output",
            output,
            self.output_len(),
            self.precision.bytes(),
        )?;
        Ok(bind(
            gpu,
            &self.pipeline,
            "adaptive_avgpool",
            &[input, output],
        ))
    }

    pub fn encode(
        &self,
        gpu: &Gpu,
        pass: &mut wgpu::ComputePass<'_>,
        bg: &wgpu::BindGroup,
    ) -> Result<()> {
        let (x, z) = fold(gpu, (self.output_len() as u64).div_ceil(WG as u64))?;
        dispatch(pass, &self.pipeline, bg, (x, 1, z));
        Ok(())
    }
}
