//! lrn's conformance: local response normalisation forward and backward with the paper's
//! constants, against `reference::lrn`.

use super::suite::{each, Case};
use super::{dims_str, run_op, Outcome, TensorRng};
use crate::error::Result;
use crate::gpu::{Gpu, Precision};
use crate::kernels::Nchw;
use crate::kernels::{self, lrn::LrnParams};
use crate::reference;

/// lrn/forward and lrn/backward, with fewer channels than the window and 1x1 maps.
pub fn cases(gpu: &Gpu) -> Vec<Case<'_>> {
    let maps = [
        (1, 3, 13, 15),
        (3, 7, 7, 7),
        (2, 64, 1, 1),
        (1, 2, 5, 5),
        (2, 9, 1, 1),
    ];
    let mut v = each("lrn/forward", "", maps, Some(0), move |d, s| {
        forward(gpu, d, s)
    });
    let maps = [(2, 7, 3, 5), (1, 64, 4, 4), (2, 3, 1, 1)];
    v.extend(each("lrn/backward", "", maps, Some(0), move |d, s| {
        backward(gpu, d, s)
    }));
    v
}

/// LRN with the paper's constants on inputs large enough for the normaliser to matter.
pub async fn forward(gpu: &Gpu, dims: Nchw, seed: u64) -> Result<Outcome> {
    let mut rng = TensorRng::new(seed);
    let (n, c, h, w) = dims;
    let x = rng.range(n * c * h * w, -60.0, 60.0);
    let p = LrnParams::default();
    let k = kernels::lrn::forward(gpu, dims, p, Precision::F32)?;
    let got = run_op(gpu, &k, &[&x], x.len(), None).await?;
    let want = reference::lrn::forward(&x, dims, &p);
    Ok(Outcome::new("lrn/forward", dims_str(dims), &got, &want))
}

/// LRN gradient, on inputs large enough for the normaliser's cross terms to matter.
pub async fn backward(gpu: &Gpu, dims: Nchw, seed: u64) -> Result<Outcome> {
    let (n, c, h, w) = dims;
    let len = n * c * h * w;
    let mut rng = TensorRng::new(seed);
    let x = rng.range(len, -20.0, 20.0);
    let dy = rng.uniform(len);
    let p = LrnParams::default();
    let want = reference::lrn::backward(&x, dims, &p, &dy);
    let got = run_op(
        gpu,
        &kernels::lrn::backward(gpu, dims, p)?,
        &[&x, &dy],
        len,
        None,
    )
    .await?;
    Ok(Outcome::new("lrn/backward", dims_str(dims), &got, &want))
}
