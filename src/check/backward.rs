//! The backward and training kernels against the CPU reference (whose gradients the
//! library's unit tests check against finite differences): fresh random inputs, outputs
//! poisoned with NaN, or prefilled with random values where a kernel accumulates.

use super::{dims_str, poisoned, Dims, Outcome, TensorRng};
use crate::error::Result;
use crate::gpu::Gpu;
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
    let want = reference::lrn::backward(&x, dims, &p, &dy);
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
