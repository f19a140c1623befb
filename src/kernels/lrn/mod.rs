//! Local response normalisation across channels (config A-LRN), PyTorch semantics.

mod backward;

pub use backward::backward;

use super::{bind, check_buffer, dispatch, fold, shader};
use crate::error::{shape_err, Result};
use crate::gpu::{Gpu, Precision};
use crate::kernels::WG;

/// The LRN constants are model data; the kernel takes them as they are.
pub use crate::model::LrnParams;

pub struct Lrn {
    pub precision: Precision,
    pub dims: (usize, usize, usize, usize),
    pub params: LrnParams,
    pipeline: wgpu::ComputePipeline,
}

impl Lrn {
    pub fn new(gpu: &Gpu, dims: (usize, usize, usize, usize), params: LrnParams) -> Result<Self> {
        Lrn::with_precision(gpu, dims, params, Precision::F32)
    }

    /// As `new`, with tensors stored as `precision`.
    pub fn with_precision(
        gpu: &Gpu,
        dims: (usize, usize, usize, usize),
        params: LrnParams,
        precision: Precision,
    ) -> Result<Self> {
        let (n, c, h, w) = dims;
        if n * c * h * w == 0 || params.size == 0 {
            return Err(shape_err!("LRN over {dims:?} with size {}", params.size));
        }
        let pipeline = gpu.pipeline(
            &shader!("lrn/forward").with_precision(precision),
            "main",
            &[
                ("N", n as f64),
                ("C", c as f64),
                ("HW", (h * w) as f64),
                ("SIZE", params.size as f64),
                ("ALPHA", params.alpha as f64),
                ("BETA", params.beta as f64),
                ("K", params.k as f64),
                ("WG", WG as f64),
            ],
        )?;
        Ok(Lrn {
            dims,
            params,
            precision,
            pipeline,
        })
    }

    fn len(&self) -> usize {
        let (n, c, h, w) = self.dims;
        n * c * h * w
    }

    pub fn bind(
        &self,
        gpu: &Gpu,
        input: &wgpu::Buffer,
        output: &wgpu::Buffer,
    ) -> Result<wgpu::BindGroup> {
        check_buffer(gpu, "LRN input", input, self.len(), self.precision.bytes())?;
        check_buffer(
            gpu,
            "LRN output",
            output,
            self.len(),
            self.precision.bytes(),
        )?;
        Ok(bind(gpu, &self.pipeline, "lrn", &[input, output]))
    }

    pub fn encode(
        &self,
        gpu: &Gpu,
        pass: &mut wgpu::ComputePass<'_>,
        bg: &wgpu::BindGroup,
    ) -> Result<()> {
        let (x, z) = fold(gpu, (self.len() as u64).div_ceil(WG as u64))?;
        dispatch(pass, &self.pipeline, bg, (x, 1, z));
        Ok(())
    }
}
