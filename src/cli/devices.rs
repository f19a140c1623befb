//! `vgg devices`: every adapter with its backend, driver, limits and features.

use std::process::ExitCode;
use vgg_wgpu::{gpu, GpuOptions};

#[derive(clap::Args)]
pub struct Args {
    /// Backends to list: vulkan, gl, metal, dx12 (comma-separated) [default:
    /// $WGPU_BACKEND, else all]
    #[arg(long)]
    pub backend: Option<String>,
}

impl Args {
    pub fn run(self) -> vgg_wgpu::Result<ExitCode> {
        let opts = GpuOptions {
            backend: self.backend,
            ..Default::default()
        }
        .with_env()?;
        let adapters = gpu::enumerate(opts.backends()?);
        if adapters.is_empty() {
            return Err(vgg_wgpu::Error::NoAdapter {
                backends: opts.backend.unwrap_or_else(|| "all".into()),
            });
        }
        outln!(
            "{:<3} {:<34} {:<7} {:<13} {:<46} {:>10} {:>12} {:>8} {:>6}  features",
            "#",
            "name",
            "backend",
            "type",
            "driver",
            "max buffer",
            "max binding",
            "wg mem",
            "wg inv"
        )?;
        for (i, a) in adapters.iter().enumerate() {
            let info = a.get_info();
            let l = a.limits();
            let mut features: Vec<String> = gpu::WANTED_FEATURES
                .iter()
                .filter(|(f, _)| a.features().contains(*f))
                .map(|(_, n)| n.to_string())
                .collect();
            // The tensor-core shapes, where the driver has cooperative matrices.
            let coop = gpu::coop_shapes(a);
            if !coop.is_empty() {
                features.push(format!("cooperative-matrix {}", coop.join(" / ")));
            }
            let driver = format!("{} {}", info.driver, info.driver_info);
            outln!(
                "{:<3} {:<34} {:<7} {:<13} {:<46} {:>10} {:>12} {:>8} {:>6}  {}",
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
            )?;
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// A byte count as the table shows it.
fn bytes(b: u64) -> String {
    if b >= 1 << 30 {
        format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64)
    } else if b >= 1 << 20 {
        format!("{} MiB", b >> 20)
    } else {
        format!("{} KiB", b >> 10)
    }
}
