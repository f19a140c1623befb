//! The library API end to end: pick a GPU, build VGG16 with seeded random weights, run a
//! batch, read the class scores and a feature map.
//!
//! cargo run --release --example forward -- [MODEL] [BATCH]

use std::time::Instant;
use vgg_wgpu::{Gpu, GpuOptions, Init, Model, Network, Tensor, Weights};

fn main() -> vgg_wgpu::Result<()> {
    let mut args = std::env::args().skip(1);
    let model = Model::parse(&args.next().unwrap_or_else(|| "vgg16".into()))?;
    let batch: usize = args.next().and_then(|b| b.parse().ok()).unwrap_or(1);

    let gpu = Gpu::new(&GpuOptions::default())?;
    let weights = Weights::init(&model, Init::Kaiming, 0);
    let mut net = Network::new(&gpu, &model, &weights)?;

    let [c, h, w] = model.input_dims();
    let pixels = (0..batch * c * h * w)
        .map(|i| (i % 255) as f32 / 255.0)
        .collect();
    let input = Tensor::new(vec![batch, c, h, w], pixels)?;

    // The first forward plans, allocates and compiles; time the second.
    let logits = net.forward(&input)?;
    let t = Instant::now();
    let logits2 = net.forward(&input)?;
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(logits, logits2);
    println!(
        "{} on {}: logits {:?}, {:.3} s per forward, {:.2} images/s",
        model.name(),
        gpu.describe(),
        logits.shape,
        secs,
        batch as f64 / secs
    );
    let pool5 = net.forward_features(&input, "pool5")?;
    println!("pool5 features: {:?}", pool5.shape);
    Ok(())
}
