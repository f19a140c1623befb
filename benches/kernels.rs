//! `cargo bench`: the same suite as `vgg bench` (every kernel at every distinct VGG16 layer
//! shape, against the adapter's measured peak and the CPU reference, plus vgg11/16/19 end
//! to end). Pick the adapter with VGG_ADAPTER / WGPU_BACKEND; VGG_BENCH_QUICK=1 runs the
//! one-minute version.

use vgg_wgpu::{bench, Gpu, GpuOptions, Model};

fn main() {
    let quick = std::env::var("VGG_BENCH_QUICK").is_ok_and(|v| v != "0");
    let run = || -> vgg_wgpu::Result<()> {
        let gpu = Gpu::new(&GpuOptions::default())?;
        eprintln!("adapter: {}", gpu.describe());
        let o = bench::suite::default_options(Model::vgg16(), quick)?;
        let report = bench::run(&gpu, &o, |line| eprintln!("{line}"))?;
        print!("{}", report.table());
        Ok(())
    };
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
