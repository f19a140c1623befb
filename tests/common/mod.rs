//! Shared set-up: one device per test binary, on the adapter `VGG_ADAPTER` / `WGPU_BACKEND`
//! pick (else the best found), and a fresh seed per run (fixed with `VGG_SEED`).

#![allow(dead_code)]

use std::sync::OnceLock;
use vgg_wgpu::check::Outcome;
use vgg_wgpu::{Gpu, GpuOptions};

pub fn gpu() -> &'static Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| {
        let gpu = Gpu::new(&GpuOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        eprintln!("adapter: {}", gpu.describe());
        gpu
    })
}

/// The run's base seed: `VGG_SEED`, else drawn from the clock and printed, so inputs are
/// fresh on every run and any failure can be replayed.
pub fn seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| {
        let s = std::env::var("VGG_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            });
        eprintln!("seed: {s} (replay with VGG_SEED={s})");
        s
    })
}

/// Prints the outcome with the adapter and fails the test if it does not pass.
pub fn assert_pass(o: vgg_wgpu::Result<Outcome>) {
    let o = o.unwrap_or_else(|e| panic!("{e}"));
    eprintln!("[{}] {o}", gpu().info().name);
    assert!(o.passed(), "{o}");
}
