//! Numerically stable softmax over the last dimension of a [rows, cols] matrix.

mod xent;

pub use xent::xent;

use super::{bind, check_buffer, dispatch, fold, shader};
use crate::error::{shape_err, Result};
use crate::gpu::{Gpu, Precision};

pub struct Softmax {
    pub precision: Precision,
    pub rows: usize,
    pub cols: usize,
    pipeline: wgpu::ComputePipeline,
}

impl Softmax {
    pub fn new(gpu: &Gpu, rows: usize, cols: usize) -> Result<Self> {
        Softmax::with_precision(gpu, rows, cols, Precision::F32)
    }

    /// As `new`, with tensors stored as `precision`.
    pub fn with_precision(
        gpu: &Gpu,
        rows: usize,
        cols: usize,
        precision: Precision,
    ) -> Result<Self> {
        if rows == 0 || cols == 0 {
            return Err(shape_err!("softmax over an empty [{rows}, {cols}] matrix"));
        }
        let pipeline = gpu.pipeline(
            &shader!("softmax/forward").with_precision(precision),
            "main",
            &[("ROWS", rows as f64), ("COLS", cols as f64)],
        )?;
        Ok(Softmax {
            rows,
            cols,
            precision,
            pipeline,
        })
    }

    pub fn bind(
        &self,
        gpu: &Gpu,
        input: &wgpu::Buffer,
        output: &wgpu::Buffer,
    ) -> Result<wgpu::BindGroup> {
        check_buffer(
            gpu,
            "softmax input",
            input,
            self.rows * self.cols,
            self.precision.bytes(),
        )?;
        check_buffer(
            gpu,
            "softmax output",
            output,
            self.rows * self.cols,
            self.precision.bytes(),
        )?;
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
