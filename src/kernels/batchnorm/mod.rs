//! Batch norm in inference form as a per-channel affine map (optional fused ReLU), and the
//! alternative of folding it into the preceding convolution's weights at load time.

mod apply;
mod backward_apply;
mod backward_reduce;
mod stats;

pub use apply::apply;
pub use backward_apply::backward_apply;
pub use backward_reduce::backward_reduce;
pub use stats::stats;

use super::{per_elem, shader, Kernel};
use crate::error::{shape_err, Result};
use crate::gpu::{Gpu, Precision};
use crate::kernels::Nchw;
use crate::kernels::WG;

/// Running statistics and affine parameters of one batch-norm layer (PyTorch's names).
#[derive(Clone, Debug)]
pub struct BatchNorm {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
    pub mean: Vec<f32>,
    pub var: Vec<f32>,
    pub eps: f32,
}

impl BatchNorm {
    /// Per-channel (scale, shift) with y = x * scale + shift.
    pub fn scale_shift(&self) -> Result<(Vec<f32>, Vec<f32>)> {
        let c = self.gamma.len();
        if [self.beta.len(), self.mean.len(), self.var.len()] != [c, c, c] {
            return Err(shape_err!("batch norm parameters have different lengths"));
        }
        let scale: Vec<f32> = (0..c)
            .map(|i| (self.gamma[i] as f64 / (self.var[i] as f64 + self.eps as f64).sqrt()) as f32)
            .collect();
        let shift = (0..c)
            .map(|i| (self.beta[i] as f64 - self.mean[i] as f64 * scale[i] as f64) as f32)
            .collect();
        Ok((scale, shift))
    }

    /// Folds this batch norm into the convolution before it: weight [c_out, ...] and bias
    /// `[c_out]` become the weight and bias of one convolution computing conv then BN.
    pub fn fold_into_conv(&self, weight: &[f32], bias: &[f32]) -> Result<(Vec<f32>, Vec<f32>)> {
        let (scale, shift) = self.scale_shift()?;
        let c = scale.len();
        if c == 0 || bias.len() != c || !weight.len().is_multiple_of(c) {
            return Err(shape_err!(
                "cannot fold batch norm of {c} channels into a conv with {} outputs",
                bias.len()
            ));
        }
        let per = weight.len() / c;
        let w = weight
            .chunks(per)
            .zip(&scale)
            .flat_map(|(row, s)| row.iter().map(move |v| v * s))
            .collect();
        let b = (0..c).map(|i| bias[i] * scale[i] + shift[i]).collect();
        Ok((w, b))
    }
}

/// `y = x * scale[c] + shift[c]` over NCHW, optionally followed by ReLU (inference's batch
/// norm where it is not folded, and a lone ReLU as the identity map), tensors stored as
/// `precision`: bindings input, scale, shift, output.
pub fn affine(gpu: &Gpu, dims: Nchw, relu: bool, precision: Precision) -> Result<Kernel> {
    let (n, c, h, w) = dims;
    if n * c * h * w == 0 {
        return Err(shape_err!("channel affine over an empty tensor {dims:?}"));
    }
    let consts = consts![N = n, C = c, HW = h * w, RELU = relu, WG = WG];
    let (len, e) = (n * c * h * w, precision.bytes());
    let shader = shader!("batchnorm/affine").with_precision(precision);
    let bindings = vec![
        ("input", len, e),
        ("scale", c, e),
        ("shift", c, e),
        ("output", len, e),
    ];
    Kernel::with_bindings(gpu, shader, "main", &consts, per_elem(len), bindings)
}
