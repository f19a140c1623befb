//! The training API end to end: a model with seeded weights, one SGD step on a random
//! batch, timed after a first step that allocates and compiles.
//!
//! cargo run --release --example train_step -- [MODEL] [BATCH] [SIDE]

use std::time::Instant;
use vgg_wgpu::train::{TrainOptions, Trainer};
use vgg_wgpu::{Gpu, GpuOptions, Init, Model, Tensor, Weights};

fn main() -> vgg_wgpu::Result<()> {
    let mut args = std::env::args().skip(1);
    let model = Model::parse(&args.next().unwrap_or_else(|| "vgg11".into()))?;
    let batch: usize = args.next().and_then(|b| b.parse().ok()).unwrap_or(2);
    let side: usize = args.next().and_then(|b| b.parse().ok()).unwrap_or(224);
    // Below 224 the 7x7 average pool upsamples the last map, and trains as it is.
    let model = model.with_input(model.config().in_channels, side, side)?;

    let gpu = Gpu::new(&GpuOptions::default())?;
    let weights = Weights::init(&model, Init::Kaiming, 0);
    let opts = TrainOptions {
        batch,
        ..Default::default()
    };
    let mut trainer = Trainer::new(&gpu, &model, &weights, opts)?;
    for (name, size) in trainer.grouped() {
        println!("{name}: in groups of {size} images (the batch's tensors pass one binding)");
    }
    let [c, h, w] = model.input_dims();
    let pixels = (0..batch * c * h * w)
        .map(|i| (i % 251) as f32 / 251.0)
        .collect();
    let x = Tensor::new(vec![batch, c, h, w], pixels)?;
    let labels: Vec<u32> = (0..batch as u32).map(|i| i % 10).collect();

    let t = Instant::now();
    trainer.step(&x, &labels, 0.01)?;
    println!(
        "first step (buffers, pipelines, the step): {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let stats = trainer.step(&x, &labels, 0.01)?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{} {side}x{side} on {}: {:.3} s per training step at batch {batch} ({stats:?})",
        model.name(),
        gpu.describe(),
        secs
    );
    Ok(())
}
