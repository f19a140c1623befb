//! `vgg`: the command-line front end. Parses, calls the library, prints.

use clap::{Args, Parser, Subcommand};
use std::process::ExitCode;
use vgg_wgpu::{bench, check, gpu, Gpu, GpuOptions};

#[derive(Parser)]
#[command(
    name = "vgg",
    version,
    about = "VGG networks on any GPU wgpu reaches, with hand-written WGSL kernels",
    long_about = "VGG networks on any GPU wgpu reaches (Vulkan, Metal, DX12, OpenGL, and \
                  software drivers such as Mesa's lavapipe), with hand-written WGSL kernels \
                  checked against an independent CPU reference.\n\n\
                  Start with `vgg devices` to see the adapters, then `vgg check` to verify \
                  every kernel on one of them."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct AdapterArgs {
    /// Adapter to use: an index from `vgg devices` or a case-insensitive name substring
    /// [default: the best found: discrete, then integrated, then software]
    #[arg(long, env = "VGG_ADAPTER")]
    adapter: Option<String>,
    /// Backends to consider: vulkan, gl, metal, dx12 (comma-separated) [default: all]
    #[arg(long, env = "WGPU_BACKEND")]
    backend: Option<String>,
    /// Compile kernels with runtime bounds checks (slower; for debugging a driver)
    #[arg(long, env = "VGG_BOUNDS_CHECKS")]
    bounds_checks: bool,
}

impl AdapterArgs {
    fn options(&self) -> GpuOptions {
        GpuOptions {
            adapter: self.adapter.clone(),
            backend: self.backend.clone(),
            bounds_checks: self.bounds_checks,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// List every adapter with its backend, driver, limits and features
    Devices {
        /// Backends to list: vulkan, gl, metal, dx12 (comma-separated) [default: all]
        #[arg(long, env = "WGPU_BACKEND")]
        backend: Option<String>,
    },
    /// Run every kernel on random inputs and compare with the CPU reference
    Check {
        #[command(flatten)]
        gpu: AdapterArgs,
        /// Also run VGG16's 392 MiB first FC layer (split over bindings where needed)
        #[arg(long)]
        full: bool,
        /// Seed for the random inputs [default: drawn from the clock and printed]
        #[arg(long, env = "VGG_SEED")]
        seed: Option<u64>,
    },
    /// Time the kernels at VGG16 layer shapes (GFLOP/s or GB/s)
    Bench {
        #[command(flatten)]
        gpu: AdapterArgs,
        /// Fewer timed runs per kernel
        #[arg(long)]
        quick: bool,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> vgg_wgpu::Result<ExitCode> {
    match cli.command {
        Command::Devices { backend } => devices(backend),
        Command::Check { gpu, full, seed } => {
            let gpu = Gpu::new(&gpu.options())?;
            let seed = seed.unwrap_or_else(clock_seed);
            println!("adapter: {}", gpu.describe());
            println!("seed: {seed} (replay with --seed {seed})");
            let outcomes = check::self_check(&gpu, seed, full, |o| println!("{o}"))?;
            let failed = outcomes.iter().filter(|o| !o.passed()).count();
            println!("{} passed, {failed} failed", outcomes.len() - failed);
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Bench { gpu, quick } => {
            let gpu = Gpu::new(&gpu.options())?;
            println!("adapter: {}", gpu.describe());
            bench::suite(&gpu, quick, |m| println!("{m}"))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
}

fn bytes(b: u64) -> String {
    if b >= 1 << 30 {
        format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64)
    } else if b >= 1 << 20 {
        format!("{} MiB", b >> 20)
    } else {
        format!("{} KiB", b >> 10)
    }
}

fn devices(backend: Option<String>) -> vgg_wgpu::Result<ExitCode> {
    let opts = GpuOptions {
        backend,
        ..Default::default()
    };
    let adapters = gpu::enumerate(opts.backends()?);
    if adapters.is_empty() {
        return Err(vgg_wgpu::Error::NoAdapter {
            backends: opts.backend.unwrap_or_else(|| "all".into()),
        });
    }
    println!(
        "{:<3} {:<34} {:<7} {:<13} {:<36} {:>10} {:>12} {:>8} {:>6}  features",
        "#", "name", "backend", "type", "driver", "max buffer", "max binding", "wg mem", "wg inv"
    );
    for (i, a) in adapters.iter().enumerate() {
        let info = a.get_info();
        let l = a.limits();
        let features: Vec<&str> = gpu::WANTED_FEATURES
            .iter()
            .filter(|(f, _)| a.features().contains(*f))
            .map(|(_, n)| *n)
            .collect();
        let driver = format!("{} {}", info.driver, info.driver_info);
        println!(
            "{:<3} {:<34} {:<7} {:<13} {:<36} {:>10} {:>12} {:>8} {:>6}  {}",
            i,
            info.name,
            format!("{:?}", info.backend),
            format!("{:?}", info.device_type),
            driver.trim(),
            bytes(l.max_buffer_size),
            bytes(l.max_storage_buffer_binding_size),
            bytes(l.max_compute_workgroup_storage_size as u64),
            l.max_compute_invocations_per_workgroup,
            if features.is_empty() {
                "-".to_string()
            } else {
                features.join(", ")
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}
