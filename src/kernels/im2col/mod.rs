//! Window gathering for dense evaluation: every kh x kw window (stride 1, no padding) of an
//! NCHW map becomes one row [C * kh * kw], so FC layers run as convolutions.

use super::{bind, check_buffer, dispatch, fold, shader};
use crate::error::{shape_err, Result};
use crate::gpu::{Gpu, Precision};
use crate::kernels::WG;

pub struct Im2col {
    /// Input dims (n, c, h, w).
    pub dims: (usize, usize, usize, usize),
    pub window: (usize, usize),
    pub precision: Precision,
    pipeline: wgpu::ComputePipeline,
}

impl Im2col {
    pub fn new(
        gpu: &Gpu,
        dims: (usize, usize, usize, usize),
        window: (usize, usize),
    ) -> Result<Self> {
        Im2col::with_precision(gpu, dims, window, Precision::F32)
    }

    /// As `new`, with tensors stored as `precision`.
    pub fn with_precision(
        gpu: &Gpu,
        dims: (usize, usize, usize, usize),
        window: (usize, usize),
        precision: Precision,
    ) -> Result<Self> {
        let (n, c, h, w) = dims;
        let (kh, kw) = window;
        if n * c == 0 || kh == 0 || kw == 0 || h < kh || w < kw {
            return Err(shape_err!(
                "a {kh}x{kw} window does not fit a {h}x{w} map (input {dims:?})"
            ));
        }
        let pipeline = gpu.pipeline(
            &shader!("im2col/forward").with_precision(precision),
            "main",
            &[
                ("N", n as f64),
                ("C", c as f64),
                ("H", h as f64),
                ("W", w as f64),
                ("KH", kh as f64),
                ("KW", kw as f64),
                ("WG", WG as f64),
            ],
        )?;
        Ok(Im2col {
            dims,
            window,
            precision,
            pipeline,
        })
    }

    /// Window positions per image.
    pub fn positions(&self) -> usize {
        let (_, _, h, w) = self.dims;
        (h - self.window.0 + 1) * (w - self.window.1 + 1)
    }

    pub fn output_len(&self) -> usize {
        let (n, c, _, _) = self.dims;
        n * self.positions() * c * self.window.0 * self.window.1
    }

    pub fn bind(
        &self,
        gpu: &Gpu,
        input: &wgpu::Buffer,
        output: &wgpu::Buffer,
    ) -> Result<wgpu::BindGroup> {
        let (n, c, h, w) = self.dims;
        let e = self.precision.bytes();
        check_buffer(gpu, "im2col input", input, n * c * h * w, e)?;
        check_buffer(gpu, "im2col output", output, self.output_len(), e)?;
        Ok(bind(gpu, &self.pipeline, "im2col", &[input, output]))
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
