//! train's conformance: one step of the trainer against the reference step (loss, and
//! each parameter's update), in f32 and mixed precision.

use super::network::{random_input, random_weights};
use super::suite::{case, Case};
use super::Outcome;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Precision};
use crate::model::Model;
use crate::reference;
use crate::train::{TrainOptions, Trainer};
use crate::Weights;

/// train/step in f32, and in f16 (mixed precision: loss-scaled, and on tensor cores where
/// the adapter has them).
pub fn cases(gpu: &Gpu) -> Vec<Case<'_>> {
    vec![
        case("train/step", "BN, LRN, 1x1, avgpool, split FC", move |s| {
            step(gpu, s, Precision::F32)
        })
        .quick(),
        case(
            "train/step",
            "f16, BN, LRN, 1x1, avgpool, split FC",
            move |s| step(gpu, s, Precision::F16),
        )
        .f16(),
    ]
}

/// One SGD step of the trainer (momentum, weight decay, batch norm, LRN, a 1x1 conv, the
/// FC weight split over bindings) against the reference step: the loss, and each
/// parameter's update. In `F16` the step is mixed precision (`TrainOptions::precision`):
/// loss-scaled, and on tensor cores where the adapter has them.
pub async fn step(gpu: &Gpu, seed: u64, precision: Precision) -> Result<Vec<Outcome>> {
    // The last map is 3x2; the average pool to 2x3 overlaps its rows' windows and repeats
    // its columns, as torchvision's 7x7 pool does below 224x224 input.
    let m = Model::parse("6,M,8:1,L,M,10")
        .and_then(|m| m.with_input(2, 12, 10))
        .and_then(|m| m.with_batch_norm(true))
        .and_then(|m| m.with_avgpool(Some((2, 3))))
        .and_then(|m| m.with_hidden(&[12]))
        .and_then(|m| m.with_classes(5))?;
    let w = random_weights(&m, seed);
    let batch = 4;
    let x = random_input(&m, batch, seed + 1);
    let labels: Vec<u32> = (0..batch).map(|i| ((i * 3) % m.classes()) as u32).collect();
    let opts = TrainOptions {
        batch,
        dropout: false,
        // fc's 12x60 weight (2880 bytes) in three chunks.
        max_binding: Some(1000),
        precision,
        ..Default::default()
    };
    let lr = 0.05;
    let mut t = Trainer::new(gpu, &m, &w, opts)?;
    let got = t.step_async(&x, &labels, lr).await?;
    // Where a conv or FC layer multiplies f16 operands, the loss and gradients carry their
    // rounding: 5 layers of operands rounded to f16 (2^-11 = 4.9e-4 relative each, two per
    // product) make at most about 5 x 2 x 4.9e-4 = 4.9e-3 of relative error, within 1e-2.
    // Without them (f32, or f16 on an adapter with no tensor cores) the loss scaling is
    // exact and the f32 tolerances hold.
    let f16_operands = (0..m.layers().len()).any(|l| {
        t.conv_tune(l).is_some_and(|c| c.variant.f16_operands())
            || t.linear_variant(l).is_some_and(|v| v.f16_operands())
    });
    let (loss_tol, update_tol) = if f16_operands {
        (1e-2, 1e-2)
    } else {
        (1e-4, 1e-3)
    };
    if got.skipped {
        return Err(Error::Shape(format!(
            "the step overflowed at a loss scale of {}",
            got.loss_scale
        )));
    }
    let sgd = reference::train::Sgd {
        lr: lr as f64,
        momentum: 0.9,
        weight_decay: 5e-4,
    };
    let (mut rw, mut rv) = (w.clone(), Weights::new());
    let (loss, correct) = reference::train::step(&m, &mut rw, &mut rv, &x, &labels, sgd)?;
    let gw = t.weights_async().await?;
    let tag = format!("{} batch {batch} {precision:?}", m.name());
    let mut out = vec![Outcome::new(
        "train/loss",
        tag.clone(),
        &[got.loss as f32],
        &[loss as f32],
    )
    .tol(loss_tol)
    .indices(&[got.correct as u32], &[correct as u32])];
    for (name, want) in rw.iter() {
        let init = &w
            .get(name)
            .ok_or_else(|| Error::Shape(format!("no {name}")))?
            .data;
        let g = &gw
            .get(name)
            .ok_or_else(|| Error::Shape(format!("the trainer has no {name}")))?
            .data;
        let o = if name.contains("running") {
            // Running statistics are not trained; they follow the batch.
            let o = Outcome::new("train/running_stat", name.clone(), g, &want.data);
            match f16_operands {
                true => o.tol(update_tol),
                false => o,
            }
        } else {
            // The update, not the weight: an update is ~1e-3 of its weight, so a wrong
            // gradient would hide in the weights' rounding. Its f32 rounding (an ulp of the
            // weight) bounds how close it can be, hence the absolute bound.
            let delta = |v: &[f32]| v.iter().zip(init).map(|(a, b)| a - b).collect::<Vec<_>>();
            if delta(&want.data).iter().all(|d| *d == 0.0) {
                return Err(Error::Shape(format!(
                    "the reference step left {name} unchanged: nothing to compare"
                )));
            }
            let largest = init.iter().fold(0.0f64, |m, v| m.max(v.abs() as f64));
            Outcome::new("train/update", name.clone(), &delta(g), &delta(&want.data))
                .tol(update_tol)
                .within_ulps_of(largest)
        };
        out.push(o);
    }
    Ok(out)
}
