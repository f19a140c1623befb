//! The backward and training kernels against the CPU reference (whose gradients the
//! library's unit tests check against finite differences): fresh random inputs, outputs
//! poisoned with NaN, or prefilled with random values where a kernel accumulates.

use super::{dims_str, poisoned, Dims, Outcome, TensorRng};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels::conv::{ConvShape, ConvTune, ConvVariant, Packing};
use crate::kernels::linear::LinearShape;
use crate::kernels::lrn::LrnParams;
use crate::kernels::{self, Kernel};
use crate::reference;

/// Uploads `inputs`, runs `op` with a last (output) buffer of `out_len` elements holding
/// `prefill` (NaN poison when None), and reads the output back.
pub fn run_op(
    gpu: &Gpu,
    op: &Kernel,
    inputs: &[&[f32]],
    out_len: usize,
    prefill: Option<&[f32]>,
) -> Result<Vec<f32>> {
    let mut bufs = inputs
        .iter()
        .map(|x| gpu.upload(&op.name, x))
        .collect::<Result<Vec<_>>>()?;
    bufs.push(match prefill {
        Some(p) => gpu.upload(&op.name, p)?,
        None => poisoned(gpu, &op.name, out_len)?,
    });
    let refs: Vec<&wgpu::Buffer> = bufs.iter().collect();
    let bg = op.bind(gpu, &refs)?;
    gpu.run_pass(&op.name, |p| op.encode(gpu, p, &bg))?;
    gpu.read(&bufs[bufs.len() - 1], out_len)
}

/// u32 values carried through an f32 upload.
fn bits(v: &[u32]) -> Vec<f32> {
    v.iter().map(|u| f32::from_bits(*u)).collect()
}

fn conv_tag(s: &ConvShape) -> String {
    format!(
        "{}->{} k{}",
        dims_str((s.n, s.c_in, s.h, s.w)),
        s.c_out,
        s.k
    )
}

/// Conv input gradient, weight gradient (fresh and accumulated onto a previous
/// micro-batch's) and bias gradient.
pub fn conv(gpu: &Gpu, s: ConvShape, seed: u64) -> Result<Vec<Outcome>> {
    let mut rng = TensorRng::new(seed);
    let x = rng.uniform(s.input_len());
    let wt = rng.uniform(s.weight_len());
    let dy = rng.uniform(s.output_len());
    let prev = rng.uniform(s.weight_len());
    let (dx, dw, db) =
        reference::conv::backward(&x, (s.n, s.c_in, s.h, s.w), &wt, &dy, s.c_out, s.k);
    let tag = conv_tag(&s);
    let got = run_op(
        gpu,
        &kernels::conv::dgrad(gpu, s)?,
        &[&dy, &wt],
        s.input_len(),
        None,
    )?;
    let mut out = vec![Outcome::new("conv/dgrad", tag.clone(), &got, &dx)];
    // The same gradient as a forward conv of dy with the flipped weight, on every variant
    // the adapter offers that f32 training runs (the f16-operand ones: `conv_f16_operands`).
    for tune in ConvTune::variants_for(gpu)
        .into_iter()
        .filter(|t| t.variant.spec().kernels.contains(&s.k) && !t.variant.f16_operands())
    {
        let got = dgrad_forward(gpu, s, &wt, &dy, tune)?;
        let tag = format!("{tag} {:?}", tune.variant);
        out.push(Outcome::new("conv/dgrad_forward", tag, &got, &dx));
    }
    let f32_kernels = ConvVariant::Direct;
    let got = run_wgrad(gpu, s, &x, &dy, None, f32_kernels)?;
    out.push(Outcome::new("conv/wgrad", tag.clone(), &got, &dw));
    let got = run_wgrad(gpu, s, &x, &dy, Some(&prev), f32_kernels)?;
    let want: Vec<f32> = prev.iter().zip(&dw).map(|(a, b)| a + b).collect();
    out.push(Outcome::new(
        "conv/wgrad_accumulate",
        tag.clone(),
        &got,
        &want,
    ));
    let op = kernels::elementwise::channel_sum(gpu, s.n, s.c_out, s.h * s.w, false)?;
    let got = run_op(gpu, &op, &[&dy], s.c_out, None)?;
    out.push(Outcome::new("conv/bias_grad", tag, &got, &db));
    Ok(out)
}

/// The gradients f16 training computes on tensor cores, after each f16-operand forward
/// variant the adapter offers: dx (the forward kernel over dy with the flipped weight,
/// repacked to f16 on the GPU) and dw (fresh and accumulated). x, the weight and dy are
/// rounded to f16 first and the reference takes the same values, so what remains is f32
/// summation, at the f32 tolerance.
pub fn conv_f16_operands(gpu: &Gpu, s: ConvShape, seed: u64) -> Result<Vec<Outcome>> {
    let mut rng = TensorRng::new(seed);
    let x = super::f16_rounded(rng.uniform(s.input_len()));
    let wt = super::f16_rounded(rng.uniform(s.weight_len()));
    let dy = super::f16_rounded(rng.uniform(s.output_len()));
    let prev = rng.uniform(s.weight_len());
    let (dx, dw, _) =
        reference::conv::backward(&x, (s.n, s.c_in, s.h, s.w), &wt, &dy, s.c_out, s.k);
    let mut out = Vec::new();
    for tune in ConvTune::variants_for(gpu)
        .into_iter()
        .filter(|t| t.variant.spec().kernels.contains(&s.k) && t.variant.f16_operands())
    {
        let tag = format!("{} {:?}", conv_tag(&s), tune.variant);
        let got = dgrad_forward(gpu, s, &wt, &dy, tune)?;
        out.push(Outcome::new("conv/dgrad_forward", tag.clone(), &got, &dx));
        let got = run_wgrad(gpu, s, &x, &dy, None, tune.variant)?;
        out.push(Outcome::new("conv/wgrad", tag.clone(), &got, &dw));
        let got = run_wgrad(gpu, s, &x, &dy, Some(&prev), tune.variant)?;
        let want: Vec<f32> = prev.iter().zip(&dw).map(|(a, b)| a + b).collect();
        out.push(Outcome::new("conv/wgrad_accumulate", tag, &got, &want));
    }
    Ok(out)
}

/// dw of conv `s` from x and dy, both passes where the pixels are split; added onto `prev`
/// where given, into a poisoned buffer otherwise.
fn run_wgrad(
    gpu: &Gpu,
    s: ConvShape,
    x: &[f32],
    dy: &[f32],
    prev: Option<&[f32]>,
    forward: ConvVariant,
) -> Result<Vec<f32>> {
    let op = kernels::conv::backward_weight::wgrad_for(gpu, s, prev.is_some(), forward, s.n)?;
    let (xb, dyb) = (gpu.upload("x", x)?, gpu.upload("dy", dy)?);
    let dw = match prev {
        Some(p) => gpu.upload("dw", p)?,
        None => poisoned(gpu, "dw", s.weight_len())?,
    };
    let need = match forward.f16_operands() {
        true => kernels::conv::backward_weight::coop_partial_len(s),
        false => kernels::conv::backward_weight::partial_len(s, s.n),
    };
    let partials = poisoned(gpu, "partials", need.max(1))?;
    let bgs = op.bind(gpu, &xb, &dyb, &partials, &dw)?;
    gpu.run_pass("conv/wgrad", |p| op.encode(gpu, p, &bgs))?;
    gpu.read(&dw, s.weight_len())
}

/// dx of conv `s` as the trainer computes it: the weight flipped and repacked on the GPU for
/// `tune`, then the forward conv from c_out to c_in channels over dy.
fn dgrad_forward(
    gpu: &Gpu,
    s: ConvShape,
    wt: &[f32],
    dy: &[f32],
    tune: ConvTune,
) -> Result<Vec<f32>> {
    let flipped = run_op(
        gpu,
        &kernels::conv::flip(gpu, s.c_in, s.c_out, s.k)?,
        &[wt],
        wt.len(),
        None,
    )?;
    let d = ConvShape::new(s.n, s.c_out, s.c_in, s.h, s.w, s.k);
    let conv = kernels::conv::Conv2d::with_tune(gpu, d, false, tune)?;
    let (wl, bl) = conv.tune.packed_elems(d.c_in, d.c_out, d.k);
    let packed = run_op(
        gpu,
        &kernels::conv::pack(gpu, d.c_in, d.c_out, d.k, conv.tune)?,
        &[&flipped],
        wl,
        None,
    )?;
    let params = kernels::conv::ConvParams {
        weight: gpu.upload("dgrad weight", &packed)?,
        bias: gpu.upload("dgrad bias", &vec![0.0f32; bl])?,
    };
    let (xb, out) = (gpu.upload("dy", dy)?, poisoned(gpu, "dx", d.output_len())?);
    let bg = conv.bind(gpu, &xb, &params, &out)?;
    gpu.run_pass("conv/dgrad_forward", |p| conv.encode(gpu, p, &bg))?;
    gpu.read(&out, d.output_len())
}

/// Max-pool gradient through the forward argmax (exact: a gather).
pub fn maxpool(gpu: &Gpu, dims: Dims, seed: u64) -> Result<Outcome> {
    let (n, c, h, w) = dims;
    let mut rng = TensorRng::new(seed);
    let x = rng.uniform(n * c * h * w);
    let (_, idx) = reference::pool::forward(&x, dims);
    let dy = rng.uniform(idx.len());
    let want = reference::pool::backward(&dy, &idx, dims);
    let op = kernels::pool::backward(gpu, dims)?;
    let got = run_op(gpu, &op, &[&dy, &bits(&idx)], n * c * h * w, None)?;
    // A gather moves values: anything but the exact value is wrong.
    Ok(Outcome::new("pool/backward", dims_str(dims), &got, &want).tol(0.0))
}

/// ReLU gradient from the forward output.
pub fn relu(gpu: &Gpu, len: usize, seed: u64) -> Result<Outcome> {
    let mut rng = TensorRng::new(seed);
    let y: Vec<f32> = rng.uniform(len).into_iter().map(|v| v.max(0.0)).collect();
    let dy = rng.uniform(len);
    let got = run_op(
        gpu,
        &kernels::elementwise::relu_backward(gpu, len)?,
        &[&y, &dy],
        len,
        None,
    )?;
    let want = reference::elementwise::relu_backward(&y, &dy);
    Ok(Outcome::new("elementwise/relu_backward", len.to_string(), &got, &want).tol(0.0))
}

/// FC gradients with the weight in row chunks, as the forward splits a weight over
/// bindings: dx accumulates over the chunks, dw is per chunk, db is a column sum.
pub fn linear(
    gpu: &Gpu,
    s: LinearShape,
    chunks: &[(usize, usize)],
    seed: u64,
) -> Result<Vec<Outcome>> {
    let mut rng = TensorRng::new(seed);
    let x = rng.uniform(s.m * s.k);
    let wt = rng.uniform(s.n_out * s.k);
    let dy = rng.uniform(s.m * s.n_out);
    let (dx, dw, db) = reference::linear::backward(&x, s.m, s.k, &wt, &dy, s.n_out);
    let tag = format!("{}x{} -> {} ({} chunks)", s.m, s.k, s.n_out, chunks.len());
    let mut got_dx: Option<Vec<f32>> = None;
    let mut got_dw = Vec::with_capacity(dw.len());
    for (j, &(r0, rows)) in chunks.iter().enumerate() {
        let op = kernels::linear::dx(gpu, s, r0, rows, j > 0)?;
        let wc = &wt[r0 * s.k..(r0 + rows) * s.k];
        got_dx = Some(run_op(gpu, &op, &[wc, &dy], s.m * s.k, got_dx.as_deref())?);
        let op = kernels::linear::dw(gpu, s, r0, rows, false)?;
        got_dw.extend(run_op(gpu, &op, &[&x, &dy], rows * s.k, None)?);
    }
    let op = kernels::elementwise::channel_sum(gpu, s.m, s.n_out, 1, false)?;
    let got_db = run_op(gpu, &op, &[&dy], s.n_out, None)?;
    Ok(vec![
        Outcome::new("linear/dx", tag.clone(), &got_dx.unwrap_or_default(), &dx),
        Outcome::new("linear/dw", tag.clone(), &got_dw, &dw),
        Outcome::new("linear/bias_grad", tag, &got_db, &db),
    ])
}

/// Softmax cross-entropy: the logits' gradient, and the per-row loss and correctness.
pub fn softmax_xent(gpu: &Gpu, rows: usize, cols: usize, seed: u64) -> Result<Vec<Outcome>> {
    let mut rng = TensorRng::new(seed);
    let z = rng.range(rows * cols, -4.0, 4.0);
    let labels: Vec<u32> = (0..rows)
        .map(|r| ((r * 7 + seed as usize) % cols) as u32)
        .collect();
    let scale = 1.0 / 16.0;
    // A loss scale of 2^10 from the hyperparameter buffer, as loss-scaled training runs:
    // a power of two, so dz * 2^10 is exact and the reference's tolerance still holds.
    let loss_scale = 1024.0;
    let (loss, dz, correct) = reference::softmax::xent(&z, rows, cols, &labels, scale * loss_scale);
    let op = kernels::softmax::xent(gpu, rows, cols, scale as f32)?;
    let zb = gpu.upload("z", &z)?;
    let lb = gpu.upload("labels", &labels)?;
    let dzb = poisoned(gpu, "dz", rows * cols)?;
    let sb = poisoned(gpu, "stats", rows * 2)?;
    let hb = gpu.upload(
        "hyper",
        &kernels::optim::hyper(0.0, 0.0, 0.0, loss_scale as f32),
    )?;
    let bg = op.bind(gpu, &[&zb, &lb, &dzb, &sb, &hb])?;
    gpu.run_pass(&op.name, |p| op.encode(gpu, p, &bg))?;
    let got_dz: Vec<f32> = gpu.read(&dzb, rows * cols)?;
    let stats: Vec<f32> = gpu.read(&sb, rows * 2)?;
    let got_loss: f64 = stats.chunks(2).map(|s| s[0] as f64).sum::<f64>() / rows as f64;
    let got_correct: Vec<u32> = stats.chunks(2).map(|s| (s[1] == 1.0) as u32).collect();
    // The reference gives only the count of correct rows; the check wants them per row.
    let want_correct: Vec<u32> = (0..rows)
        .map(|r| {
            let row = &z[r * cols..(r + 1) * cols];
            let best = (0..cols).fold(0, |b, i| if row[i] > row[b] { i } else { b });
            (best == labels[r] as usize) as u32
        })
        .collect();
    debug_assert_eq!(want_correct.iter().sum::<u32>() as usize, correct);
    let tag = format!("{rows}x{cols}");
    Ok(vec![
        Outcome::new("softmax/xent", tag.clone(), &got_dz, &dz),
        Outcome::new("softmax/xent_loss", tag, &[got_loss as f32], &[loss as f32])
            .indices(&got_correct, &want_correct),
    ])
}

/// The fused SGD step (momentum, weight decay): weights and velocities. The gradient comes
/// loss-scaled by 2^12 with the scale's inverse in the hyperparameters, as loss-scaled
/// training gives it: powers of two, so unscaling is exact and the f32 tolerance holds.
/// Then the same step with the overflow flag set: weights and momentum must stay bitwise.
pub fn sgd(gpu: &Gpu, len: usize, seed: u64) -> Result<Vec<Outcome>> {
    let mut rng = TensorRng::new(seed);
    let (w0, grad, v0) = (rng.uniform(len), rng.uniform(len), rng.uniform(len));
    let (mut w, mut v) = (w0.clone(), v0.clone());
    reference::optim::sgd(&mut w, &grad, &mut v, 0.05, 0.9, 5e-4);
    let op = kernels::optim::sgd(gpu, len)?;
    let loss_scale = 4096.0f32;
    let scaled: Vec<f32> = grad.iter().map(|g| g * loss_scale).collect();
    let run = |skip: bool| -> Result<(Vec<f32>, Vec<f32>)> {
        let (wb, gb, vb) = (
            gpu.upload("w", &w0)?,
            gpu.upload("g", &scaled)?,
            gpu.upload("v", &v0)?,
        );
        let mut hyper = kernels::optim::hyper(0.05, 0.9, 5e-4, loss_scale);
        if skip {
            hyper[kernels::optim::OVERFLOW] = f32::from_bits(1);
        }
        let hb = gpu.upload("hyper", &hyper)?;
        let bg = op.bind(gpu, &[&wb, &gb, &vb, &hb])?;
        gpu.run_pass(&op.name, |p| op.encode(gpu, p, &bg))?;
        Ok((gpu.read(&wb, len)?, gpu.read(&vb, len)?))
    };
    let (got_w, got_v) = run(false)?;
    let (kept_w, kept_v) = run(true)?;
    let n = len.to_string();
    Ok(vec![
        Outcome::new("optim/sgd", n.clone(), &got_w, &w),
        Outcome::new("optim/sgd_momentum", n.clone(), &got_v, &v),
        Outcome::new("optim/sgd_skipped", n.clone(), &kept_w, &w0).tol(0.0),
        Outcome::new("optim/sgd_skipped", format!("{n} momentum"), &kept_v, &v0).tol(0.0),
    ])
}

/// The overflow check over a gradient of `len` elements: clean, then with one infinity,
/// one NaN, and one infinity in the last element (the flag's value is compared exactly).
pub fn overflow(gpu: &Gpu, len: usize, seed: u64) -> Result<Vec<Outcome>> {
    let mut rng = TensorRng::new(seed);
    let clean = rng.range(len, -1e30, 1e30);
    let at = (seed as usize * 7919) % len;
    let op = kernels::optim::overflow(gpu, len)?;
    let mut out = Vec::new();
    for (what, bad) in [
        ("clean", None),
        ("inf", Some((at, f32::INFINITY))),
        ("nan", Some((at, f32::NAN))),
        ("last -inf", Some((len - 1, f32::NEG_INFINITY))),
    ] {
        let mut g = clean.clone();
        if let Some((i, x)) = bad {
            g[i] = x;
        }
        let gb = gpu.upload("g", &g)?;
        // A fresh buffer per case, its flag 0 as each step's hyperparameters write it.
        let hyper = kernels::optim::hyper(0.05, 0.9, 5e-4, 1.0);
        let hb = gpu.upload("hyper", &hyper)?;
        let bg = op.bind(gpu, &[&gb, &hb])?;
        gpu.run_pass(&op.name, |p| op.encode(gpu, p, &bg))?;
        let flag = gpu.read::<u32>(&hb, kernels::optim::HYPER)?[kernels::optim::OVERFLOW];
        let want = bad.is_some() as u32;
        out.push(
            Outcome::new("optim/overflow", format!("{len} {what}"), &[], &[])
                .indices(&[flag], &[want]),
        );
    }
    Ok(out)
}

/// Dropout with the counter-based mask the reference shares.
pub fn dropout(gpu: &Gpu, len: usize, p: f64, seed: u64) -> Result<Outcome> {
    let mut rng = TensorRng::new(seed);
    let x = rng.uniform(len);
    let mask_seed = seed as u32 | 1;
    let want = reference::elementwise::dropout(&x, p, mask_seed);
    let got = run_op(
        gpu,
        &kernels::elementwise::dropout(gpu, len, p)?,
        &[&x, &bits(&[mask_seed])],
        len,
        None,
    )?;
    let zeros = |v: &[f32]| v.iter().map(|x| (*x == 0.0) as u32).collect::<Vec<_>>();
    Ok(
        Outcome::new("elementwise/dropout", format!("{len} p={p}"), &got, &want)
            .indices(&zeros(&got), &zeros(&want)),
    )
}

/// LRN gradient, on inputs large enough for the normaliser's cross terms to matter.
pub fn lrn(gpu: &Gpu, dims: Dims, seed: u64) -> Result<Outcome> {
    let (n, c, h, w) = dims;
    let len = n * c * h * w;
    let mut rng = TensorRng::new(seed);
    let x = rng.range(len, -20.0, 20.0);
    let dy = rng.uniform(len);
    let p = LrnParams::default();
    let (alpha, beta, kk) = (p.alpha as f64, p.beta as f64, p.k as f64);
    let want = reference::lrn::backward(&x, dims, p.size, alpha, beta, kk, &dy);
    let got = run_op(
        gpu,
        &kernels::lrn::backward(gpu, dims, p)?,
        &[&x, &dy],
        len,
        None,
    )?;
    Ok(Outcome::new("lrn/backward", dims_str(dims), &got, &want))
}

/// The adaptive average pool's input gradient, on windows that overlap and repeat.
pub fn avgpool(gpu: &Gpu, dims: Dims, out: (usize, usize), seed: u64) -> Result<Outcome> {
    let (n, c, h, w) = dims;
    let mut rng = TensorRng::new(seed);
    let dy = rng.range(n * c * out.0 * out.1, -1.0, 1.0);
    let want = reference::avgpool::backward(&dy, dims, out.0, out.1);
    let k = kernels::avgpool::backward(gpu, dims, out)?;
    let got = run_op(gpu, &k, &[&dy], n * c * h * w, None)?;
    Ok(Outcome::new(
        "avgpool/backward",
        format!("{} -> {}x{}", dims_str(dims), out.0, out.1),
        &got,
        &want,
    ))
}

/// Batch norm in training: batch statistics, the running update, the output, and the
/// gradients of input, scale and shift, as one pass of four kernels.
pub fn batchnorm(gpu: &Gpu, dims: Dims, seed: u64) -> Result<Vec<Outcome>> {
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
    let o = |op: &str, b: &wgpu::Buffer, l: usize, want: &[f32]| -> Result<Outcome> {
        Ok(Outcome::new(op, tag.clone(), &gpu.read(b, l)?, want))
    };
    Ok(vec![
        o("batchnorm/train", &yb, len, &y)?,
        o("batchnorm/running_mean", &rmb, c, &rm)?,
        o("batchnorm/running_var", &rvb, c, &rv)?,
        o("batchnorm/dx", &dxb, len, &dx)?,
        o("batchnorm/dgamma", &dgb, c, &dgamma)?,
        o("batchnorm/dbeta", &dbb, c, &dbeta)?,
    ])
}

/// Canonical weights repacked on the GPU into `tune`'s forward layout, against the host
/// packing: exact (a permutation), except Winograd's transform, a sum of 9 products in
/// f32 on the GPU against the f64 sum rounded once on the host (relative error a few f32
/// ulps; 1e-6 allows for 8).
pub fn conv_pack(
    gpu: &Gpu,
    c_in: usize,
    c_out: usize,
    ks: usize,
    tune: ConvTune,
    seed: u64,
) -> Result<Outcome> {
    let w = TensorRng::new(seed).uniform(c_out * c_in * ks * ks);
    let (want, _) = tune.pack(c_in, c_out, ks, &w, &vec![0.0; c_out])?;
    let op = kernels::conv::pack(gpu, c_in, c_out, ks, tune)?;
    let shape = format!("{c_in}->{c_out} k{ks} {:?}/tm{}", tune.variant, tune.tm);
    let packing = tune.variant.spec().packing;
    if packing == Packing::Gemm16 {
        // Two f16 halves per 4-byte word (low half first), against the host's values
        // rounded to f16 to nearest even, as the inference upload rounds them. WGSL lets a
        // conversion to f16 round to either neighbour, so an adapter may differ by one f16
        // ulp per element: relative error at most 2^-10 (9.8e-4), the tolerance.
        let words = run_op(gpu, &op, &[&w], want.len() / 2, None)?;
        let got: Vec<f32> = words
            .iter()
            .flat_map(|x| {
                let b = x.to_bits();
                [b as u16, (b >> 16) as u16].map(|h| half::f16::from_bits(h).to_f32())
            })
            .collect();
        let want = super::f16_rounded(want);
        return Ok(Outcome::new("conv/pack", shape, &got, &want).tol(1e-3));
    }
    let got = run_op(gpu, &op, &[&w], want.len(), None)?;
    let tol = if matches!(packing, Packing::Winograd | Packing::Winograd2) {
        1e-6
    } else {
        0.0
    };
    Ok(Outcome::new("conv/pack", shape, &got, &want).tol(tol))
}
