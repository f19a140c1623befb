//! `vgg check`: the conformance suite on one adapter or all, the table as it goes, the
//! reports at the end.

use super::{positive_seconds, write_text, AdapterArgs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use vgg_wgpu::{check, gpu, Gpu};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub gpu: AdapterArgs,
    /// Check every adapter found (on --backend), one after another
    #[arg(long, conflicts_with = "adapter")]
    pub all: bool,
    /// Add the full-size cases: VGG16's 392 MiB first FC layer (split over bindings
    /// where needed) and the whole VGG16 at 224x224
    #[arg(long)]
    pub full: bool,
    /// Seed for the random inputs [default: drawn from the clock and printed]
    #[arg(long, env = "VGG_SEED")]
    pub seed: Option<u64>,
    /// Write the report as JSON to FILE, or to stdout when no FILE is given (the table
    /// then goes to stderr)
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "-")]
    pub json: Option<PathBuf>,
    /// Write the report as Markdown to FILE
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Only the cases of this op or pass: conv, pool, linear, batchnorm, lrn, softmax,
    /// avgpool, im2col, elementwise, optim, network, train; or one pass, e.g.
    /// conv/backward
    #[arg(long, value_name = "OP")]
    pub op: Option<String>,
    /// Run each case once (skip the determinism check, which runs it twice)
    #[arg(long)]
    pub no_determinism: bool,
    /// Report a case that takes longer than this (seconds, CPU reference included) as slow
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0, value_parser = positive_seconds)]
    pub slow: f64,
    /// Only the cases of one precision: f16 checks what `--precision f16` runs elsewhere
    /// (kernels storing f16; the f16-operand kernels, on tensor cores where the adapter lists
    /// cooperative matrices of 16x16x16 f16->f32, else through their lane-by-lane emulation
    /// where it has subgroups of one fixed size; VGG16 at 32x32 in f16 and a mixed-precision
    /// training step), f32 everything else [default: both]
    #[arg(long, value_parser = ["f32", "f16"])]
    pub precision: Option<String>,
}

impl Args {
    pub fn run(self) -> vgg_wgpu::Result<ExitCode> {
        use check::report::{AdapterReport, Report, Status};
        let opts = check::suite::SuiteOptions {
            seed: self.seed.unwrap_or_else(clock_seed),
            full: self.full,
            determinism: !self.no_determinism,
            slow_seconds: self.slow,
            only: self.op.clone(),
            // clap has checked the name.
            precision: self.precision.as_deref().and_then(super::precision_named),
        };
        if let Some(op) = &self.op {
            let known = check::suite::OPS;
            if !known
                .iter()
                .any(|k| op == k || op.starts_with(&format!("{k}/")))
            {
                return Err(vgg_wgpu::Error::InvalidOption {
                    option: "--op".into(),
                    message: format!("'{op}' is not an op of the suite ({})", known.join(", ")),
                });
            }
        }
        let (json, markdown) = (self.json, self.markdown);
        let gpu_opts = self.gpu.options().with_env()?;
        let adapters = gpu::enumerate(gpu_opts.backends()?);
        let chosen: Vec<(usize, wgpu::Adapter)> = if self.all {
            if adapters.is_empty() {
                return Err(vgg_wgpu::Error::NoAdapter {
                    backends: gpu_opts.backend.clone().unwrap_or_else(|| "all".into()),
                });
            }
            adapters.into_iter().enumerate().collect()
        } else {
            let picked = gpu::select(adapters.clone(), &gpu_opts)?;
            let key = |a: &wgpu::Adapter| {
                let i = a.get_info();
                (i.name, i.backend, i.driver, i.device_type)
            };
            let index = adapters
                .iter()
                .position(|a| key(a) == key(&picked))
                .unwrap_or(0);
            vec![(index, picked)]
        };
        // With the JSON on stdout, the table goes to stderr.
        let json_stdout = json.as_deref() == Some(Path::new("-"));
        // The bar over the cases (stderr) is lifted while a line prints.
        let bar = std::cell::RefCell::new(super::progress::Progress::bar(0, "cases", true));
        let say = |line: &str| {
            bar.borrow().suspend(|| {
                if json_stdout {
                    eprintln!("{line}");
                } else {
                    println!("{line}");
                }
            })
        };
        let seed = opts.seed;
        say(&format!("seed: {seed} (replay with --seed {seed})"));
        let mut report = Report::new(seed, opts.full, opts.determinism);
        for (index, adapter) in chosen {
            let mut ar = AdapterReport::new(index, &adapter.get_info());
            say(&format!("\n== {}", ar.title()));
            match Gpu::open(adapter, &gpu_opts) {
                Err(vgg_wgpu::Error::Unsupported(m)) => {
                    ar.status = Status::Unsupported;
                    ar.message = Some(m);
                }
                Err(e) => ar.message = Some(e.to_string()),
                Ok(gpu) => {
                    ar.describe(&gpu);
                    let started = std::time::Instant::now();
                    bar.replace(super::progress::Progress::bar(0, "cases", json.is_some()));
                    let (outcomes, skipped) = check::suite::run_counted(
                        &gpu,
                        &opts,
                        |o| say(&o.to_string()),
                        |done, total| bar.borrow().set_counts(done as u64, total as u64),
                    );
                    bar.borrow().finish();
                    for s in &skipped {
                        say(&format!("{:<22} skipped: {}", s.op, s.reason));
                    }
                    ar.record(&outcomes, skipped, started.elapsed().as_secs_f64());
                    ar.shader_overrides = gpu.shader_overrides_used();
                    if !ar.shader_overrides.is_empty() {
                        say(&format!(
                            "kernels replaced from VGG_SHADER_DIR: {}",
                            ar.shader_overrides.join(", ")
                        ));
                    }
                }
            }
            say(&ar.summary());
            report.adapters.push(ar);
        }
        if let Some(path) = &json {
            if json_stdout {
                println!("{}", report.json());
            } else {
                write_text(path, &report.json())?;
                say(&format!("wrote {}", path.display()));
            }
        }
        if let Some(path) = &markdown {
            write_text(path, &report.markdown())?;
            say(&format!("wrote {}", path.display()));
        }
        Ok(if report.failed() {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        })
    }
}

fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
}
