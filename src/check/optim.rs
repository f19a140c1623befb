//! optim's conformance: the fused SGD step (and the same step skipped on overflow) and the
//! overflow check of loss-scaled training, against `reference::optim`.

use super::suite::{case, Case};
use super::{Outcome, TensorRng};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels;
use crate::reference;

/// optim/sgd and optim/overflow (70001 elements: past one workgroup's share).
pub fn cases(gpu: &Gpu) -> Vec<Case<'_>> {
    vec![
        case("optim/sgd", "", |s| sgd(gpu, 1003, s)).quick(),
        case("optim/overflow", "", |s| overflow(gpu, 70001, s)).quick(),
    ]
}

/// The fused SGD step (momentum, weight decay): weights and velocities. The gradient comes
/// loss-scaled by 2^12 with the scale's inverse in the hyperparameters, as loss-scaled
/// training gives it: powers of two, so unscaling is exact and the f32 tolerance holds.
/// Then the same step with the overflow flag set: weights and momentum must stay bitwise.
pub async fn sgd(gpu: &Gpu, len: usize, seed: u64) -> Result<Vec<Outcome>> {
    let mut rng = TensorRng::new(seed);
    let (w0, grad, v0) = (rng.uniform(len), rng.uniform(len), rng.uniform(len));
    let (mut w, mut v) = (w0.clone(), v0.clone());
    reference::optim::sgd(&mut w, &grad, &mut v, 0.05, 0.9, 5e-4);
    let op = kernels::optim::sgd(gpu, len)?;
    let loss_scale = 4096.0f32;
    let scaled: Vec<f32> = grad.iter().map(|g| g * loss_scale).collect();
    let run = async |skip: bool| -> Result<(Vec<f32>, Vec<f32>)> {
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
        Ok((
            gpu.read_async(&wb, len).await?,
            gpu.read_async(&vb, len).await?,
        ))
    };
    let (got_w, got_v) = run(false).await?;
    let (kept_w, kept_v) = run(true).await?;
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
pub async fn overflow(gpu: &Gpu, len: usize, seed: u64) -> Result<Vec<Outcome>> {
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
        let flag =
            gpu.read_async::<u32>(&hb, kernels::optim::HYPER).await?[kernels::optim::OVERFLOW];
        let want = bad.is_some() as u32;
        out.push(
            Outcome::new("optim/overflow", format!("{len} {what}"), &[], &[])
                .indices(&[flag], &[want]),
        );
    }
    Ok(out)
}
