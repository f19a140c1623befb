//! elementwise's conformance: the ReLU gradient and dropout's counter-based mask, against
//! `reference::elementwise`.

use super::suite::{each, Case};
use super::{bits, run_op, Outcome, TensorRng};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels;
use crate::reference;

/// elementwise/relu_backward (4.2M elements: 65.6k workgroups of 64) and
/// elementwise/dropout.
pub fn cases(gpu: &Gpu) -> Vec<Case<'_>> {
    let lens = [1001, 4_200_000];
    let mut v = each(
        "elementwise/relu_backward",
        "",
        lens,
        Some(0),
        move |len, s| relu_backward(gpu, len, s),
    );
    v.extend(each(
        "elementwise/dropout",
        "",
        [0.5, 0.1],
        Some(0),
        move |p, s| dropout(gpu, 1003, p, s),
    ));
    v
}

/// ReLU gradient from the forward output.
pub async fn relu_backward(gpu: &Gpu, len: usize, seed: u64) -> Result<Outcome> {
    let mut rng = TensorRng::new(seed);
    let y: Vec<f32> = rng.uniform(len).into_iter().map(|v| v.max(0.0)).collect();
    let dy = rng.uniform(len);
    let got = run_op(
        gpu,
        &kernels::elementwise::relu_backward(gpu, len)?,
        &[&y, &dy],
        len,
        None,
    )
    .await?;
    let want = reference::elementwise::relu_backward(&y, &dy);
    Ok(Outcome::new("elementwise/relu_backward", len.to_string(), &got, &want).tol(0.0))
}

/// Dropout with the counter-based mask the reference shares.
pub async fn dropout(gpu: &Gpu, len: usize, p: f64, seed: u64) -> Result<Outcome> {
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
    )
    .await?;
    let zeros = |v: &[f32]| v.iter().map(|x| (*x == 0.0) as u32).collect::<Vec<_>>();
    Ok(
        Outcome::new("elementwise/dropout", format!("{len} p={p}"), &got, &want)
            .indices(&zeros(&got), &zeros(&want)),
    )
}
