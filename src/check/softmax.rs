//! softmax's conformance: the forward over rows, and the fused cross-entropy's gradient,
//! loss and correctness, against `reference::softmax`.

use super::suite::{each, Case};
use super::{poisoned, run_op, Outcome, TensorRng};
use crate::error::Result;
use crate::gpu::{Gpu, Precision};
use crate::kernels;
use crate::reference;

/// softmax/forward (one workgroup per row: 70000 rows pass 65535) and softmax/xent.
pub fn cases(gpu: &Gpu) -> Vec<Case<'_>> {
    let rows = [(1, 1000), (3, 1000), (2, 7), (5, 1), (70_000, 3)];
    let mut v = each("softmax/forward", "", rows, Some(0), move |(r, c), s| {
        forward(gpu, r, c, s)
    });
    let rows = [(3, 10), (7, 1000), (2, 3)];
    v.extend(each("softmax/xent", "", rows, Some(0), move |(r, c), s| {
        xent(gpu, r, c, s)
    }));
    v
}

/// Softmax over rows; logits spread over [-20, 20) so the max shift matters.
pub async fn forward(gpu: &Gpu, rows: usize, cols: usize, seed: u64) -> Result<Outcome> {
    let mut rng = TensorRng::new(seed);
    let x = rng.range(rows * cols, -20.0, 20.0);
    let k = kernels::softmax::forward(gpu, rows, cols, Precision::F32)?;
    let got = run_op(gpu, &k, &[&x], rows * cols, None).await?;
    Ok(Outcome::new(
        "softmax/forward",
        format!("{rows}x{cols}"),
        &got,
        &reference::softmax::forward(&x, rows, cols),
    ))
}

/// Softmax cross-entropy: the logits' gradient, and the per-row loss and correctness.
pub async fn xent(gpu: &Gpu, rows: usize, cols: usize, seed: u64) -> Result<Vec<Outcome>> {
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
    let got_dz: Vec<f32> = gpu.read_async(&dzb, rows * cols).await?;
    let stats: Vec<f32> = gpu.read_async(&sb, rows * 2).await?;
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
