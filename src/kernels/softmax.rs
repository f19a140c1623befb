//! Numerically stable softmax over the last dimension of a [rows, cols] matrix.

use super::{bind, check_buffer, dispatch, fold, shader};
use crate::error::{shape_err, Result};
use crate::gpu::Gpu;

pub struct Softmax {
    pub rows: usize,
    pub cols: usize,
    pipeline: wgpu::ComputePipeline,
}

impl Softmax {
    pub fn new(gpu: &Gpu, rows: usize, cols: usize) -> Result<Self> {
        if rows == 0 || cols == 0 {
            return Err(shape_err!("softmax over an empty [{rows}, {cols}] matrix"));
        }
        let pipeline = gpu.pipeline(
            &shader!("softmax"),
            "main",
            &[("ROWS", rows as f64), ("COLS", cols as f64)],
        )?;
        Ok(Softmax {
            rows,
            cols,
            pipeline,
        })
    }

    pub fn bind(
        &self,
        gpu: &Gpu,
        input: &wgpu::Buffer,
        output: &wgpu::Buffer,
    ) -> Result<wgpu::BindGroup> {
        check_buffer(gpu, "softmax input", input, self.rows * self.cols, 4)?;
        check_buffer(gpu, "softmax output", output, self.rows * self.cols, 4)?;
        Ok(bind(gpu, &self.pipeline, "softmax", &[input, output]))
    }

    pub fn encode(
        &self,
        gpu: &Gpu,
        pass: &mut wgpu::ComputePass<'_>,
        bg: &wgpu::BindGroup,
    ) -> Result<()> {
        let (x, z) = fold(gpu, self.rows as u64)?;
        dispatch(pass, &self.pipeline, bg, (x, 1, z));
        Ok(())
    }
}
