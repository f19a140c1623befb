//! `vgg demo`: the committed model on the bundled held-out digits.

use super::AdapterArgs;
use std::process::ExitCode;
use vgg_wgpu::{Gpu, Network};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub gpu: AdapterArgs,
}

impl Args {
    /// The committed model and held-out digits, on the GPU.
    pub fn run(self) -> vgg_wgpu::Result<ExitCode> {
        let opts = &self.gpu.options();
        use vgg_wgpu::io::datasets as ds;
        let model = vgg_wgpu::train::mnist_model()?;
        let weights = vgg_wgpu::train::demo_weights()?;
        let (_, test) = ds::mnist_5k()?.split(1000)?;
        let gpu = Gpu::new(opts)?;
        outln!("adapter: {}", gpu.describe())?;
        let t0 = std::time::Instant::now();
        let mut net = Network::new(&gpu, &model, &weights)?;
        let acc = vgg_wgpu::train::fit::evaluate(&mut net, &test)?;
        let secs = t0.elapsed().as_secs_f64();
        // Eight digits spread over the held-out set (it is in class order).
        let picks: Vec<usize> = (0..8).map(|i| i * 125 + 7).collect();
        let sample = test.select(&picks);
        let x = vgg_wgpu::Tensor::new(vec![8, 1, 28, 28], sample.images)?;
        let logits = net.forward(&x)?;
        outln!(
            "{} (trained by this engine, {} parameters) on the 1000 held-out digits of the \
         bundled MNIST subset:",
            model.name(),
            model.params()
        )?;
        for (i, &at) in picks.iter().enumerate() {
            let p = vgg_wgpu::io::labels::top_k(logits.row(i), 1)[0].0;
            outln!(
                "  held-out digit {at:>3}: label {}, predicted {p}",
                sample.labels[i]
            )?;
        }
        outln!(
            "accuracy {:.1}% ({} of 1000) in {:.2} s",
            100.0 * acc,
            (acc * 1000.0).round(),
            secs
        )?;
        Ok(ExitCode::SUCCESS)
    }
}
