//! batchnorm's conformance: the inference affine map (with and without ReLU), batch norm
//! folded into a conv, and training's statistics, running update, output and gradients,
//! against `reference::batchnorm`.

use super::suite::{cs, each, one, Case};
use super::{dims_str, poisoned, run_op, Outcome, TensorRng};
use crate::error::Result;
use crate::gpu::{Gpu, Precision};
use crate::kernels::Nchw;
use crate::kernels::{
    self,
    batchnorm::BatchNorm,
    conv::{Conv2d, ConvShape},
};
use crate::reference;

/// batchnorm/affine, batchnorm/fold and batchnorm/train.
pub fn cases(gpu: &Gpu) -> Vec<Case<'_>> {
    // Each map without and with ReLU; the quick set takes the first with.
    let maps = [(3, 13, 13, 15), (1, 3, 7, 7), (2, 5, 1, 1)];
    let both = maps.into_iter().flat_map(|d| [(d, false), (d, true)]);
    let mut v = each(
        "batchnorm/affine",
        "",
        both,
        Some(1),
        move |(d, relu), s| affine(gpu, d, relu, false, s),
    );
    // NaN through the fused ReLU, at two corners and inside.
    v.push(one("batchnorm/affine", "NaN", move |s| {
        affine(gpu, (2, 5, 7, 3), true, true, s)
    }));
    let convs = [
        cs(2, 3, 13, 13, 15, 3),
        cs(3, 8, 20, 7, 7, 3),
        cs(1, 5, 6, 1, 1, 3),
    ];
    v.extend(each("batchnorm/fold", "", convs, Some(0), move |c, s| {
        fold(gpu, c, s)
    }));
    // At least 4 values per channel: with 2, batch norm maps them to +-1 whatever they are,
    // dx cancels to ~1e-7, and a relative comparison measures only rounding.
    let maps = [(3, 5, 7, 3), (4, 16, 1, 1), (1, 3, 9, 11)];
    v.extend(each("batchnorm/train", "", maps, Some(0), move |d, s| {
        train(gpu, d, s)
    }));
    v
}

fn random_bn(rng: &mut TensorRng, c: usize) -> BatchNorm {
    BatchNorm {
        gamma: rng.range(c, 0.5, 1.5),
        beta: rng.uniform(c),
        mean: rng.uniform(c),
        var: rng.range(c, 0.1, 2.0),
        eps: 1e-5,
    }
}

/// Batch norm (inference) as a per-channel affine kernel, against the unfused reference;
/// with `nan`, on an input that holds NaN, which must come through (`Outcome::through_nan`).
pub async fn affine(gpu: &Gpu, dims: Nchw, relu: bool, nan: bool, seed: u64) -> Result<Outcome> {
    let mut rng = TensorRng::new(seed);
    let (n, c, h, w) = dims;
    let mut x = rng.uniform(n * c * h * w);
    let bn = random_bn(&mut rng, c);
    if nan {
        x = rng.with_nans(x);
    }
    let (scale, shift) = bn.scale_shift()?;
    let k = kernels::batchnorm::affine(gpu, dims, relu, Precision::F32)?;
    let got = run_op(gpu, &k, &[&x, &scale, &shift], x.len(), None).await?;
    let want = reference::batchnorm::forward(
        &x,
        dims,
        (&bn.gamma, &bn.beta),
        (&bn.mean, &bn.var),
        bn.eps,
        relu,
    );
    let shape = format!(
        "{}{}{}",
        if relu { "+relu " } else { "" },
        if nan { "NaN " } else { "" },
        dims_str(dims)
    );
    Ok(Outcome::through_nan(
        "batchnorm/affine",
        shape,
        &got,
        &want,
        |_| false,
    ))
}

/// A convolution with batch norm folded into its weights on the GPU, against the reference
/// convolution followed by the reference batch norm.
pub async fn fold(gpu: &Gpu, s: ConvShape, seed: u64) -> Result<Outcome> {
    let mut rng = TensorRng::new(seed);
    let x = rng.uniform(s.input_len());
    let w = rng.uniform(s.weight_len());
    let b = rng.uniform(s.c_out);
    let bn = random_bn(&mut rng, s.c_out);
    let (fw, fb) = bn.fold_into_conv(&w, &b)?;
    let conv = Conv2d::new(gpu, s, true)?;
    let params = conv.upload(gpu, &fw, &fb)?;
    let xb = gpu.upload("x", &x)?;
    let out = poisoned(gpu, "y", s.output_len())?;
    let bg = conv.bind(gpu, &xb, &params, &out)?;
    gpu.run_pass("conv+bn", |pass| conv.encode(gpu, pass, &bg))?;
    let got = gpu.read_async::<f32>(&out, s.output_len()).await?;
    let dims = (s.n, s.c_in, s.h, s.w);
    let y = reference::conv::forward(&x, dims, (&w, &b), s.c_out, s.k, false);
    let want = reference::batchnorm::forward(
        &y,
        (s.n, s.c_out, s.h, s.w),
        (&bn.gamma, &bn.beta),
        (&bn.mean, &bn.var),
        bn.eps,
        true,
    );
    Ok(Outcome::new(
        "batchnorm/fold",
        format!("{}->{}", dims_str(dims), s.c_out),
        &got,
        &want,
    ))
}

/// Batch norm in training: batch statistics, the running update, the output, and the
/// gradients of input, scale and shift, as one pass of four kernels.
pub async fn train(gpu: &Gpu, dims: Nchw, seed: u64) -> Result<Vec<Outcome>> {
    let (n, c, h, w) = dims;
    let (hw, len) = (h * w, n * c * h * w);
    let mut rng = TensorRng::new(seed);
    let x: Vec<f32> = rng.uniform(len).iter().map(|v| v * 3.0 + 0.5).collect();
    let gamma = rng.range(c, 0.5, 1.5);
    let beta = rng.uniform(c);
    let dy = rng.uniform(len);
    let (rm0, rv0) = (rng.uniform(c), rng.range(c, 0.5, 2.0));
    let (y, mean, var) = reference::batchnorm::train(&x, dims, &gamma, &beta, 1e-5);
    let (mut rm, mut rv) = (rm0.clone(), rv0.clone());
    reference::batchnorm::running_update(&mut rm, &mut rv, &mean, &var, n * hw, 0.1);
    let (dx, dgamma, dbeta) = reference::batchnorm::backward(&x, dims, &gamma, 1e-5, &dy);

    let up = |d: &[f32]| gpu.upload("bn", d);
    let (xb, gb, bb, dyb) = (up(&x)?, up(&gamma)?, up(&beta)?, up(&dy)?);
    let (rmb, rvb) = (up(&rm0)?, up(&rv0)?);
    let p = |elems| poisoned(gpu, "bn", elems);
    let (stats, yb, sums, dgb, dbb, dxb) = (p(2 * c)?, p(len)?, p(2 * c)?, p(c)?, p(c)?, p(len)?);
    let ops = [
        (
            kernels::batchnorm::stats(gpu, n, c, hw, 1e-5, 0.1)?,
            vec![&xb, &stats, &rmb, &rvb],
        ),
        (
            kernels::batchnorm::apply(gpu, n, c, hw, false)?,
            vec![&xb, &gb, &bb, &stats, &yb],
        ),
        (
            kernels::batchnorm::backward_reduce(gpu, n, c, hw, false)?,
            vec![&xb, &dyb, &stats, &sums, &dgb, &dbb],
        ),
        (
            kernels::batchnorm::backward_apply(gpu, n, c, hw)?,
            vec![&xb, &dyb, &gb, &stats, &sums, &dxb],
        ),
    ];
    let bgs = ops
        .iter()
        .map(|(op, b)| op.bind(gpu, b))
        .collect::<Result<Vec<_>>>()?;
    gpu.run_pass("batchnorm training", |pass| {
        for ((op, _), bg) in ops.iter().zip(&bgs) {
            op.encode(gpu, pass, bg)?;
        }
        Ok(())
    })?;
    let tag = dims_str(dims);
    let mut out = Vec::new();
    for (op, b, l, want) in [
        ("batchnorm/train", &yb, len, &y),
        ("batchnorm/running_mean", &rmb, c, &rm),
        ("batchnorm/running_var", &rvb, c, &rv),
        ("batchnorm/dx", &dxb, len, &dx),
        ("batchnorm/dgamma", &dgb, c, &dgamma),
        ("batchnorm/dbeta", &dbb, c, &dbeta),
    ] {
        let got = gpu.read_async(b, l).await?;
        out.push(Outcome::new(op, tag.clone(), &got, want));
    }
    Ok(out)
}
