//! The copy kernel (shaders/peak/copy.wgsl): the adapter's practical memory bandwidth.

use crate::error::{shape_err, Result};
use crate::gpu::Gpu;
use crate::kernels::{dispatch, fold, shader, WG};

/// Copies `len` f32 (a multiple of 4) as vec4.
pub struct PeakCopy {
    pub len: usize,
    pipeline: wgpu::ComputePipeline,
}

impl PeakCopy {
    pub fn new(gpu: &Gpu, len: usize) -> Result<Self> {
        if len == 0 || !len.is_multiple_of(4) {
            return Err(shape_err!(
                "copy length {len} must be a positive multiple of 4"
            ));
        }
        let pipeline = gpu.pipeline(&shader!("peak/copy"), "main", &[("WG", WG as f64)])?;
        Ok(PeakCopy { len, pipeline })
    }
    /// Bytes moved by one run.
    pub fn bytes(&self) -> f64 {
        (self.len * 8) as f64
    }
    pub fn bind(
        &self,
        gpu: &Gpu,
        input: &wgpu::Buffer,
        output: &wgpu::Buffer,
    ) -> Result<wgpu::BindGroup> {
        crate::kernels::check_buffer(gpu, "copy input", input, self.len, 4)?;
        crate::kernels::check_buffer(gpu, "copy output", output, self.len, 4)?;
        // Both bound exactly, since the shader sizes its work by the output's length.
        let b = (self.len * 4) as u64;
        Ok(crate::kernels::bind_ranges(
            gpu,
            &self.pipeline,
            "peak_copy",
            &[(input, 0, Some(b)), (output, 0, Some(b))],
        ))
    }
    pub fn encode(
        &self,
        gpu: &Gpu,
        pass: &mut wgpu::ComputePass<'_>,
        bg: &wgpu::BindGroup,
    ) -> Result<()> {
        let (x, z) = fold(gpu, (self.len as u64 / 4).div_ceil(WG as u64))?;
        dispatch(pass, &self.pipeline, bg, (x, 1, z));
        Ok(())
    }
}
