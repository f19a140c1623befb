//! pool's conformance: 2x2 max pooling forward (values and argmax) and its gradient
//! through the argmax, against `reference::pool`.

use super::suite::{each, one, Case};
use super::{bits, dims_str, poisoned, run_op, Outcome, TensorRng};
use crate::error::Result;
use crate::gpu::{Gpu, Precision};
use crate::kernels;
use crate::kernels::Nchw;
use crate::reference;

/// pool/forward at odd and 1-pixel maps and grids past 65535 workgroups; pool/backward.
pub fn cases(gpu: &Gpu) -> Vec<Case<'_>> {
    let fwd = move |d, s| forward(gpu, d, false, s);
    let odd = [(1, 3, 13, 15), (3, 5, 7, 7), (2, 4, 2, 2), (1, 2, 3, 2)];
    let mut v = each("pool/forward", "", odd, Some(0), fwd);
    // NaN at two corners and inside: it wins its window, value and index.
    v.push(
        one("pool/forward", "NaN", move |s| {
            forward(gpu, (2, 3, 7, 9), true, s)
        })
        .quick(),
    );
    // 4.26M and 3 x 128 x 112 x 112 outputs in 64-lane workgroups: 66.5k and 75k workgroups.
    let grids = [(1, 17, 1000, 1002), (3, 128, 224, 224)];
    v.extend(each("pool/forward", "grid over 65535", grids, None, fwd));
    let bwd = move |d, s| backward(gpu, d, s);
    v.extend(each(
        "pool/backward",
        "",
        [(2, 3, 7, 5), (1, 4, 8, 8), (3, 2, 3, 2)],
        Some(0),
        bwd,
    ));
    v
}

/// Max pooling, values and argmax indices; with `nan`, on an input that holds NaN, which
/// must come through (`Outcome::through_nan`).
pub async fn forward(gpu: &Gpu, dims: Nchw, nan: bool, seed: u64) -> Result<Outcome> {
    let mut rng = TensorRng::new(seed);
    let (n, c, h, w) = dims;
    let mut x = rng.uniform(n * c * h * w);
    if nan {
        x = rng.with_nans(x);
    }
    let pool = kernels::pool::forward(gpu, dims, true, Precision::F32)?;
    let len = kernels::pool::output_len(dims);
    let xb = gpu.upload("x", &x)?;
    let out = poisoned(gpu, "y", len)?;
    let idx = poisoned(gpu, "argmax", len)?;
    let bg = pool.bind(gpu, &[&xb, &out, &idx])?;
    gpu.run_pass("pool/forward", |pass| pool.encode(gpu, pass, &bg))?;
    let got = gpu.read_async::<f32>(&out, len).await?;
    let got_idx = gpu.read_async::<u32>(&idx, len).await?;
    let (want, want_idx) = reference::pool::forward(&x, dims);
    let shape = format!("{}{}", if nan { "NaN " } else { "" }, dims_str(dims));
    Ok(
        Outcome::through_nan("pool/forward", shape, &got, &want, |_| false)
            .indices(&got_idx, &want_idx),
    )
}

/// Max-pool gradient through the forward argmax (exact: a gather).
pub async fn backward(gpu: &Gpu, dims: Nchw, seed: u64) -> Result<Outcome> {
    let (n, c, h, w) = dims;
    let mut rng = TensorRng::new(seed);
    let x = rng.uniform(n * c * h * w);
    let (_, idx) = reference::pool::forward(&x, dims);
    let dy = rng.uniform(idx.len());
    let want = reference::pool::backward(&dy, &idx, dims);
    let op = kernels::pool::backward(gpu, dims)?;
    let got = run_op(gpu, &op, &[&dy, &bits(&idx)], n * c * h * w, None).await?;
    // A gather moves values: anything but the exact value is wrong.
    Ok(Outcome::new("pool/backward", dims_str(dims), &got, &want).tol(0.0))
}
