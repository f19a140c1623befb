//! 2-D convolution, stride 1, "same" padding, square kernel of size 1 or 3 (VGG uses 3x3
//! everywhere and 1x1 in config C), with bias and optional fused ReLU, by pass as the
//! shaders are (`shaders/conv/<pass>/`): the variants' table (variant.rs), the choice of a
//! variant (select.rs), the forward kernel (forward.rs), the input gradient
//! (backward_data.rs), the weight gradient (backward_weight.rs), and the weight layouts
//! each of them reads (layout.rs).

mod backward_data;
pub mod backward_weight;
mod forward;
mod layout;
mod select;
mod variant;

pub use backward_data::dgrad;
pub use backward_weight::{wgrad, Wgrad};
pub use forward::Conv2d;
pub use layout::{flip, pack, ConvParams};
pub use select::{select, ConvTune};
pub use variant::{ConvVariant, Needs, Packing, Tiling, VariantSpec};

use crate::error::{shape_err, Result};

/// NCHW input [n, c_in, h, w] -> output [n, c_out, h, w]; weight [c_out, c_in, k, k].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvShape {
    pub n: usize,
    pub c_in: usize,
    pub c_out: usize,
    pub h: usize,
    pub w: usize,
    pub k: usize,
}

impl ConvShape {
    pub fn new(n: usize, c_in: usize, c_out: usize, h: usize, w: usize, k: usize) -> Self {
        ConvShape {
            n,
            c_in,
            c_out,
            h,
            w,
            k,
        }
    }
    pub fn input_len(&self) -> usize {
        self.n * self.c_in * self.h * self.w
    }
    pub fn output_len(&self) -> usize {
        self.n * self.c_out * self.h * self.w
    }
    pub fn weight_len(&self) -> usize {
        self.c_out * self.c_in * self.k * self.k
    }
    /// Multiply-adds of one forward pass.
    pub fn macs(&self) -> u64 {
        (self.output_len() * self.c_in * self.k * self.k) as u64
    }
    /// The tuning file's key: `c_in,c_out,h,w,k` (the best choice does not depend on the
    /// batch much, so one entry serves every batch).
    pub fn tuning_key(&self) -> String {
        format!(
            "{},{},{},{},{}",
            self.c_in, self.c_out, self.h, self.w, self.k
        )
    }
    /// The kernel sizes every conv shader handles.
    pub(crate) fn check_kernel_size(&self) -> Result<()> {
        if self.k != 1 && self.k != 3 {
            return Err(shape_err!("conv kernel size {} (1 or 3 supported)", self.k));
        }
        Ok(())
    }
    /// The shape's override constants, as every conv shader names them.
    pub(crate) fn consts(&self) -> Vec<(&'static str, f64)> {
        consts![
            N = self.n,
            C_IN = self.c_in,
            C_OUT = self.c_out,
            H = self.h,
            W = self.w,
            KS = self.k,
        ]
        .to_vec()
    }
    fn validate(&self) -> Result<()> {
        self.check_kernel_size()?;
        if [self.n, self.c_in, self.c_out, self.h, self.w].contains(&0) {
            return Err(shape_err!("conv shape has a zero dimension: {self:?}"));
        }
        Ok(())
    }
}
