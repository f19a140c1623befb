//! Shared set-up: one device per adapter per test binary, and a fresh seed per run (fixed
//! with `VGG_SEED`). Tests run on the adapter `VGG_ADAPTER` / `WGPU_BACKEND` pick (else the
//! best found), or on every adapter found when `VGG_TEST_ALL_ADAPTERS=1`: a test body
//! wrapped in `on_each_gpu` runs once per adapter, and `gpu()` inside it is that adapter.

#![allow(dead_code)]

use std::cell::Cell;
use std::sync::{Mutex, OnceLock};
use vgg_wgpu::check::Outcome;
use vgg_wgpu::{Gpu, GpuOptions};

/// The devices the tests run on.
pub fn gpus() -> &'static [Gpu] {
    static GPUS: OnceLock<Vec<Gpu>> = OnceLock::new();
    GPUS.get_or_init(|| {
        let all = std::env::var("VGG_TEST_ALL_ADAPTERS").is_ok_and(|v| v == "1");
        let gpus: Vec<Gpu> = if all {
            let opts = GpuOptions::default()
                .with_env()
                .unwrap_or_else(|e| panic!("{e}"));
            let backends = opts.backends().unwrap_or_else(|e| panic!("{e}"));
            vgg_wgpu::gpu::enumerate(backends)
                .into_iter()
                .filter_map(|a| match Gpu::open(a, &opts) {
                    Ok(g) => Some(g),
                    // An adapter wgpu lists but cannot compute on is not ours to test.
                    Err(vgg_wgpu::Error::Unsupported(m)) => {
                        eprintln!("not tested: {m}");
                        None
                    }
                    Err(e) => panic!("{e}"),
                })
                .collect()
        } else {
            vec![Gpu::new(&GpuOptions::default()).unwrap_or_else(|e| panic!("{e}"))]
        };
        assert!(!gpus.is_empty(), "no adapter to test on");
        for g in &gpus {
            eprintln!("adapter: {}", g.describe());
        }
        gpus
    })
}

thread_local! {
    /// Index into `gpus()` of the adapter the current test thread runs on.
    static CURRENT: Cell<usize> = const { Cell::new(0) };
}

/// The adapter the calling test runs on now.
pub fn gpu() -> &'static Gpu {
    &gpus()[CURRENT.with(|c| c.get())]
}

/// Runs `body` once per test adapter, with `gpu()` returning each in turn.
pub fn on_each_gpu(body: impl Fn()) {
    // wgpu's OpenGL backend has one GL context per device, locked by each call, and a call
    // that waits over 6 s for the lock panics: a shader compile on llvmpipe can hold it that
    // long. Tests take turns on an OpenGL device.
    static GL_TURN: Mutex<()> = Mutex::new(());
    for i in 0..gpus().len() {
        CURRENT.with(|c| c.set(i));
        if gpus().len() > 1 {
            eprintln!("-- on {}", gpus()[i].describe());
        }
        let _turn = (gpus()[i].info().backend == wgpu::Backend::Gl)
            .then(|| GL_TURN.lock().unwrap_or_else(|e| e.into_inner()));
        body();
    }
    CURRENT.with(|c| c.set(0));
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

/// Runs a check case (natively its future is ready once its waits return), prints the
/// outcome with the adapter and fails the test if it does not pass.
pub fn assert_pass(case: impl std::future::Future<Output = vgg_wgpu::Result<Outcome>>) {
    let o = pollster::block_on(case).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("[{}] {o}", gpu().info().name);
    assert!(o.passed(), "{o}");
}
