//! The kernel benchmark (`cargo bench`): conv3x3 and the FC GEMM at two VGG16 layer shapes
//! each, plus every other forward kernel, with GFLOP/s or GB/s and the adapter's name.
//! Pick the adapter with VGG_ADAPTER / WGPU_BACKEND; VGG_BENCH_QUICK=1 takes fewer runs.

use vgg_wgpu::{bench, Gpu, GpuOptions};

fn main() {
    let gpu = match Gpu::new(&GpuOptions::default()) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    println!("adapter: {}", gpu.describe());
    let quick = std::env::var("VGG_BENCH_QUICK").is_ok_and(|v| v != "0");
    let res = bench::suite(&gpu, quick, |m| println!("{m}"));
    if let Err(e) = res {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
