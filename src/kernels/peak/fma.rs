//! The FMA-throughput kernel (shaders/peak/fma.wgsl): the adapter's practical arithmetic peak.

use crate::error::{shape_err, Result};
use crate::gpu::Gpu;
use crate::kernels::{dispatch, fold, shader, WG};

/// `threads` invocations, each `iters` steps of 16 FMA lanes.
pub struct PeakFma {
    pub threads: usize,
    pub iters: usize,
    pipeline: wgpu::ComputePipeline,
}

impl PeakFma {
    pub fn new(gpu: &Gpu, threads: usize, iters: usize) -> Result<Self> {
        if threads == 0 || iters == 0 {
            return Err(shape_err!("peak FMA with no work"));
        }
        let pipeline = gpu.pipeline(
            &shader!("peak/fma"),
            "main",
            &[("ITERS", iters as f64), ("WG", WG as f64)],
        )?;
        Ok(PeakFma {
            threads,
            iters,
            pipeline,
        })
    }
    /// Floating-point operations of one run (2 per FMA).
    pub fn flops(&self) -> f64 {
        (self.threads * self.iters * 16 * 2) as f64
    }
    /// Output: one vec4 per invocation.
    pub fn output_len(&self) -> usize {
        self.threads * 4
    }
    pub fn bind(&self, gpu: &Gpu, output: &wgpu::Buffer) -> Result<wgpu::BindGroup> {
        crate::kernels::check_buffer(gpu, "peak output", output, self.output_len(), 4)?;
        let b = (self.output_len() * 4) as u64;
        Ok(crate::kernels::bind_ranges(
            gpu,
            &self.pipeline,
            "peak_fma",
            &[(output, 0, Some(b))],
        ))
    }
    pub fn encode(
        &self,
        gpu: &Gpu,
        pass: &mut wgpu::ComputePass<'_>,
        bg: &wgpu::BindGroup,
    ) -> Result<()> {
        let (x, z) = fold(gpu, (self.threads as u64).div_ceil(WG as u64))?;
        dispatch(pass, &self.pipeline, bg, (x, 1, z));
        Ok(())
    }
}
