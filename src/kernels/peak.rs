//! Two measuring kernels: an FMA-throughput kernel and a copy kernel, whose rates are the
//! adapter's practical arithmetic and memory peaks that the benchmark relates every kernel
//! to.

use super::{dispatch, fold, shader};
use crate::error::{shape_err, Result};
use crate::gpu::Gpu;

const WG: u32 = 64;

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
            &shader!("peak_fma"),
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
        super::check_buffer(gpu, "peak output", output, self.output_len(), 4)?;
        let b = (self.output_len() * 4) as u64;
        Ok(super::bind_ranges(
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

/// What invocation `i` of the FMA kernel stores, computed on the CPU in f64.
pub fn peak_fma_reference(i: usize, iters: usize) -> [f32; 4] {
    let s = (i % 1024) as f64 * 1e-3;
    let mut out = [0.0f32; 4];
    for (lane, o) in out.iter_mut().enumerate() {
        let mut sum = 0.0;
        for chain in 0..4 {
            let mut v = s + 0.1 * lane as f64 + 0.5 * chain as f64;
            for _ in 0..iters {
                v = v * 0.999f32 as f64 + 0.001f32 as f64;
            }
            sum += v;
        }
        *o = sum as f32;
    }
    out
}

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
        let pipeline = gpu.pipeline(&shader!("peak_copy"), "main", &[("WG", WG as f64)])?;
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
        super::check_buffer(gpu, "copy input", input, self.len, 4)?;
        super::check_buffer(gpu, "copy output", output, self.len, 4)?;
        // Both bound exactly, since the shader sizes its work by the output's length.
        let b = (self.len * 4) as u64;
        Ok(super::bind_ranges(
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
