//! 2x2 max pooling, stride 2, floor for odd sizes, optionally writing argmax indices.

mod backward;

pub use backward::backward;

use super::{bind, check_buffer, dispatch, fold, shader};
use crate::error::{shape_err, Result};
use crate::gpu::{Gpu, Precision};
use crate::kernels::WG;

pub struct MaxPool {
    pub precision: Precision,
    /// Input dims (n, c, h, w).
    pub dims: (usize, usize, usize, usize),
    pub with_index: bool,
    pipeline: wgpu::ComputePipeline,
}

impl MaxPool {
    pub fn new(gpu: &Gpu, dims: (usize, usize, usize, usize), with_index: bool) -> Result<Self> {
        MaxPool::with_precision(gpu, dims, with_index, Precision::F32)
    }

    /// As `new`, with tensors stored as `precision`.
    pub fn with_precision(
        gpu: &Gpu,
        dims: (usize, usize, usize, usize),
        with_index: bool,
        precision: Precision,
    ) -> Result<Self> {
        let (n, c, h, w) = dims;
        if n * c == 0 || h < 2 || w < 2 {
            return Err(shape_err!(
                "max pool input {dims:?} is smaller than 2x2 or empty"
            ));
        }
        let entry = if with_index { "main_index" } else { "main" };
        let pipeline = gpu.pipeline(
            &shader!("pool/forward").with_precision(precision),
            entry,
            &[
                ("N", n as f64),
                ("C", c as f64),
                ("H", h as f64),
                ("W", w as f64),
                ("WG", WG as f64),
            ],
        )?;
        Ok(MaxPool {
            dims,
            with_index,
            precision,
            pipeline,
        })
    }

    pub fn output_dims(&self) -> (usize, usize, usize, usize) {
        let (n, c, h, w) = self.dims;
        (n, c, h / 2, w / 2)
    }

    pub fn output_len(&self) -> usize {
        let (n, c, h, w) = self.output_dims();
        n * c * h * w
    }

    /// `argmax` (u32 per output) is required exactly when the pool was built `with_index`.
    pub fn bind(
        &self,
        gpu: &Gpu,
        input: &wgpu::Buffer,
        output: &wgpu::Buffer,
        argmax: Option<&wgpu::Buffer>,
    ) -> Result<wgpu::BindGroup> {
        let (n, c, h, w) = self.dims;
        check_buffer(
            gpu,
            "max pool input",
            input,
            n * c * h * w,
            self.precision.bytes(),
        )?;
        check_buffer(
            gpu,
            "max pool output",
            output,
            self.output_len(),
            self.precision.bytes(),
        )?;
        match (self.with_index, argmax) {
            (true, Some(a)) => {
                check_buffer(gpu, "max pool argmax", a, self.output_len(), 4)?;
                Ok(bind(gpu, &self.pipeline, "maxpool", &[input, output, a]))
            }
            (false, None) => Ok(bind(gpu, &self.pipeline, "maxpool", &[input, output])),
            _ => Err(shape_err!(
                "max pool built with_index={} needs an argmax buffer exactly then",
                self.with_index
            )),
        }
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
