//! Numerically stable softmax over the last dimension of a [rows, cols] matrix.

mod xent;

pub use xent::xent;

use super::{shader, Kernel};
use crate::error::{shape_err, Result};
use crate::gpu::{Gpu, Precision};

/// The kernel over `rows` rows of `cols`, tensors stored as `precision`: one workgroup per
/// row; bindings input, output.
pub fn forward(gpu: &Gpu, rows: usize, cols: usize, precision: Precision) -> Result<Kernel> {
    if rows == 0 || cols == 0 {
        return Err(shape_err!("softmax over an empty [{rows}, {cols}] matrix"));
    }
    let consts = consts![ROWS = rows, COLS = cols];
    let (len, e) = (rows * cols, precision.bytes());
    let shader = shader!("softmax/forward").with_precision(precision);
    let bindings = vec![("input", len, e), ("output", len, e)];
    Kernel::with_bindings(gpu, shader, "main", &consts, rows as u64, bindings)
}
