//! The command line: one module per command, each a clap `Args` struct with its `run`.
//! Shared argument groups (the adapter, the model) and small parsers live here.

/// `println!` that returns an error when stdout cannot be written (see output.rs).
macro_rules! outln {
    ($($t:tt)*) => { $crate::cli::output::stdout(format_args!($($t)*), true) };
}
/// `print!` that returns an error when stdout cannot be written.
macro_rules! out {
    ($($t:tt)*) => { $crate::cli::output::stdout(format_args!($($t)*), false) };
}
/// `eprintln!` without the panic: best effort, a failure noted for the exit status.
macro_rules! errln {
    ($($t:tt)*) => { $crate::cli::output::stderr(format_args!($($t)*), true) };
}
/// `eprint!` without the panic.
macro_rules! err {
    ($($t:tt)*) => { $crate::cli::output::stderr(format_args!($($t)*), false) };
}

pub mod bench;
pub mod check;
pub mod convert;
pub mod demo;
pub mod devices;
pub mod eval;
pub mod infer;
pub mod output;
pub mod progress;
pub mod summary;
pub mod train;

use clap::{Args, Parser, Subcommand};
use std::path::Path;
use std::process::ExitCode;
use vgg_wgpu::model::Model;
use vgg_wgpu::{Error, GpuOptions};

#[derive(Parser)]
#[command(
    name = "vgg",
    version,
    about = "VGG networks on any GPU wgpu reaches, with hand-written WGSL kernels",
    long_about = "VGG networks on any GPU wgpu reaches (Vulkan, Metal, DX12, OpenGL, and \
                  software drivers such as Mesa's lavapipe), with hand-written WGSL kernels \
                  checked against an independent CPU reference.\n\n\
                  Start with `vgg devices` to see the adapters, then `vgg check` to verify \
                  every kernel on one of them (under a minute; `vgg check --full` for every \
                  case)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Clone)]
pub struct AdapterArgs {
    /// Adapter to use: an index from `vgg devices`, or a case-insensitive substring of its
    /// name, driver or driver version ("swiftshader", "mesa 25") [default: $VGG_ADAPTER,
    /// else the best found: discrete, then integrated, then software; among equals, the one
    /// with more of shader-f16, subgroups and timestamps]
    #[arg(long)]
    adapter: Option<String>,
    /// Backends to consider: vulkan, gl, metal, dx12 (comma-separated) [default:
    /// $WGPU_BACKEND, else all]
    #[arg(long)]
    backend: Option<String>,
    /// Compile kernels with runtime bounds checks (slower; for debugging a driver) [also
    /// on with VGG_BOUNDS_CHECKS=1]
    #[arg(long)]
    bounds_checks: bool,
    /// Report a wait for the GPU longer than this many seconds as an error instead of
    /// waiting on (a hung or far too slow adapter) [default: $VGG_GPU_TIMEOUT, else 600]
    #[arg(long, value_name = "SECONDS", value_parser = positive_seconds)]
    gpu_timeout: Option<f64>,
}

impl AdapterArgs {
    pub fn options(&self) -> GpuOptions {
        GpuOptions {
            adapter: self.adapter.clone(),
            backend: self.backend.clone(),
            bounds_checks: self.bounds_checks,
            timeout: self.gpu_timeout.map(std::time::Duration::from_secs_f64),
            shader_dir: None,
            no_workarounds: false,
        }
    }
}

#[derive(Args, Clone)]
pub struct ModelArgs {
    /// A built-in model (vgg11, vgg11_lrn, vgg13, vgg16_c, vgg16, vgg19, vgg11_bn, vgg13_bn,
    /// vgg16_bn, vgg19_bn) or a layer list: channel counts for 3x3 convs, N:1 for a 1x1
    /// conv, M for max pool, L for LRN, e.g. "32,M,64,M,128,128,M" [default: vgg16, or
    /// for infer what the weights file records]
    #[arg(long, short)]
    model: Option<String>,
    /// Input height and width, HxW [default: 224x224]
    #[arg(long, value_parser = parse_hw)]
    input: Option<(usize, usize)>,
    /// Input channels [default: 3]
    #[arg(long)]
    in_channels: Option<usize>,
    /// Number of classes [default: 1000]
    #[arg(long)]
    classes: Option<usize>,
    /// Hidden FC widths, comma-separated, or "none" [default: 4096,4096]
    #[arg(long)]
    hidden: Option<String>,
    /// Scale every conv's channel count by this factor
    #[arg(long)]
    width: Option<f64>,
    /// Add batch norm after every conv
    #[arg(long)]
    bn: bool,
    /// Adaptive average pool before the classifier, HxW, or "none" [default: 7x7]
    #[arg(long)]
    avgpool: Option<String>,
}

pub fn parse_hw(s: &str) -> Result<(usize, usize), String> {
    let (h, w) = s.split_once(['x', 'X']).unwrap_or((s, s));
    match (h.trim().parse::<usize>(), w.trim().parse::<usize>()) {
        (Ok(h), Ok(w)) if h > 0 && w > 0 => Ok((h, w)),
        _ => Err(format!("'{s}' is not a size like 224x224")),
    }
}

impl ModelArgs {
    /// The model the flags describe, from vgg16 where `--model` is not given.
    pub fn build(&self) -> vgg_wgpu::Result<Model> {
        // A layer list is checked at the input the flags give, not at the default 224x224.
        let spec = self.model.as_deref().unwrap_or("vgg16");
        let base = Model::parse_as(spec, |c| {
            if let Some(input) = self.input {
                c.input = input;
            }
            if let Some(ch) = self.in_channels {
                c.in_channels = ch;
            }
        })?;
        self.build_from(base)
    }

    /// Whether `--classes` was given.
    pub fn classes(&self) -> Option<usize> {
        self.classes
    }

    /// Whether `--model` was given.
    pub fn names_model(&self) -> bool {
        self.model.is_some()
    }

    /// The model a weights file's card records, with the flags given applied; an error
    /// naming the file and the field where a flag disagrees with it (the weights would not
    /// fit the model asked for).
    pub fn against_card(&self, card: &Model, file: &Path) -> vgg_wgpu::Result<Model> {
        let asked = match &self.model {
            Some(_) => self.build()?,
            None => self.build_from(card.clone())?,
        };
        let (a, c) = (asked.config(), card.config());
        let differs: Option<(&str, String, String)> = if a.features != c.features {
            Some(("layers", "--model".into(), String::new()))
        } else if a.batch_norm != c.batch_norm {
            Some((
                "batch norm",
                c.batch_norm.to_string(),
                a.batch_norm.to_string(),
            ))
        } else if a.in_channels != c.in_channels {
            Some((
                "input channels",
                c.in_channels.to_string(),
                a.in_channels.to_string(),
            ))
        } else if a.hidden != c.hidden {
            Some((
                "hidden widths",
                format!("{:?}", c.hidden),
                format!("{:?}", a.hidden),
            ))
        } else if a.classes != c.classes {
            Some(("classes", c.classes.to_string(), a.classes.to_string()))
        } else if a.avgpool != c.avgpool {
            Some((
                "average pool",
                format!("{:?}", c.avgpool),
                format!("{:?}", a.avgpool),
            ))
        } else {
            None
        };
        match differs {
            None => Ok(asked),
            Some(("layers", _, _)) => Err(vgg_wgpu::io::file_err(
                file,
                format!(
                    "holds a model of other layers ({}) than --model asks for ({})",
                    card.name(),
                    asked.name()
                ),
            )),
            Some((field, theirs, ours)) => Err(vgg_wgpu::io::file_err(
                file,
                format!("holds a model with {field} {theirs}; the flags ask for {ours}"),
            )),
        }
    }

    /// `base` with the flags given applied.
    pub fn build_from(&self, base: Model) -> vgg_wgpu::Result<Model> {
        let mut m = base;
        if self.input.is_some() || self.in_channels.is_some() {
            let (h, w) = self.input.unwrap_or(m.config().input);
            m = m.with_input(self.in_channels.unwrap_or(m.config().in_channels), h, w)?;
        }
        if let Some(c) = self.classes {
            m = m.with_classes(c)?;
        }
        if let Some(h) = &self.hidden {
            let widths = if h.trim() == "none" {
                Vec::new()
            } else {
                h.split(',')
                    .map(|v| v.trim().parse::<usize>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| Error::InvalidOption {
                        option: "--hidden".into(),
                        message: format!("'{h}' is not a comma-separated list of widths"),
                    })?
            };
            m = m.with_hidden(&widths)?;
        }
        if let Some(f) = self.width {
            m = m.with_width(f)?;
        }
        if self.bn {
            m = m.with_batch_norm(true)?;
        }
        if let Some(a) = &self.avgpool {
            let pool = if a.trim() == "none" {
                None
            } else {
                Some(parse_hw(a).map_err(|message| Error::InvalidOption {
                    option: "--avgpool".into(),
                    message,
                })?)
            };
            m = m.with_avgpool(pool)?;
        }
        Ok(m)
    }
}

#[derive(Subcommand)]
pub enum Command {
    /// List every adapter with its backend, driver, limits and features
    Devices(devices::Args),
    /// Conformance: every forward and backward kernel, a whole-network forward and a
    /// training step on fresh random inputs against the CPU reference, each run twice to
    /// check determinism; a table per adapter, exit code 1 on any failure
    #[command(
        after_help = "Without options it runs the quick set: one or two cases of every \
        kernel and pass (every conv and FC variant the adapter offers) at small shapes, VGG16 \
        at 32x32 and a training step; 45 s on lavapipe with 2 CPU cores and a cold shader \
        cache, as on a fresh machine. --standard adds the edge cases (odd sizes, 1x1, grids \
        past 65535 workgroups, tensors over the binding limit); --full adds the full-size \
        cases too, 11 minutes on the same machine, cold (2026-12-02).\n\n\
        Each row: op, shape, max abs error, relative L2 error, max ULP \
        distance, `det` where a second run on the same input gave the same bits, pass or \
        FAIL with the reason. Cases the adapter cannot run (no shader-f16, no subgroups) are \
        listed as skipped with the reason. VGG_SHADER_DIR=DIR replaces built-in kernels \
        shaders/OP/PASS.wgsl with DIR/OP/PASS.wgsl, to try a patched kernel; the report names \
        them."
    )]
    Check(check::Args),
    /// Per-layer table of a model (output shape, parameters, MACs, activation bytes), its
    /// totals, and the executor's GPU memory plan at a batch size
    Summary(summary::Args),
    /// Classify images (top-k classes with probabilities), or extract a layer's features
    Infer(infer::Args),
    /// Train a model on the GPU (SGD with momentum 0.9 and weight decay 5e-4), evaluating
    /// on a held-out split after every epoch and checkpointing
    Train(train::Args),
    /// The paper's evaluation on a labelled folder: top-1 and top-5 error of a center crop,
    /// dense evaluation, multi-crop (5x5 crops and their mirrors) and the two combined, at
    /// one test scale and averaged over several; one table row each, with images/s
    Eval(eval::Args),
    /// Classify the held-out bundled MNIST digits with the committed model trained by this
    /// engine, on the GPU; no download, no arguments needed
    Demo(demo::Args),
    /// Benchmark every kernel at every distinct layer shape of a model, against the
    /// adapter's measured peak and the CPU reference, plus whole networks end to end
    Bench(bench::Args),
    /// Convert weights (a PyTorch .pth as torch.save writes it, an ONNX graph, or safetensors) to
    /// safetensors that record the model, its preprocessing and class names; no Python
    Convert(convert::Args),
}

impl Command {
    pub fn run(self) -> vgg_wgpu::Result<ExitCode> {
        match self {
            Command::Devices(a) => a.run(),
            Command::Check(a) => a.run(),
            Command::Summary(a) => a.run(),
            Command::Infer(a) => a.run(),
            Command::Train(a) => a.run(),
            Command::Eval(a) => a.run(),
            Command::Demo(a) => a.run(),
            Command::Bench(a) => a.run(),
            Command::Convert(a) => a.run(),
        }
    }
}

/// The precision a `--precision` value names (`f32`, `f16`), or None.
pub fn precision_named(name: &str) -> Option<vgg_wgpu::gpu::Precision> {
    match name.trim() {
        "f32" => Some(vgg_wgpu::gpu::Precision::F32),
        "f16" => Some(vgg_wgpu::gpu::Precision::F16),
        _ => None,
    }
}

/// A positive, finite number of seconds (at most a year, which Duration can hold).
pub fn positive_seconds(s: &str) -> Result<f64, String> {
    vgg_wgpu::gpu::seconds(s).ok_or_else(|| format!("'{s}' is not a positive number of seconds"))
}

/// A parser of a count from 1 to `max`: an option sizing a loop or a list is bounded
/// before anything is allocated by it.
pub fn count_parser(max: usize) -> impl Fn(&str) -> Result<usize, String> + Clone {
    move |s: &str| match s.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!("'{s}' is not a whole number from 1 to {max}")),
    }
}

/// Writes a report, creating its folder (atomically: only a regular file is replaced).
pub fn write_text(path: &Path, text: &str) -> vgg_wgpu::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| vgg_wgpu::io::file_err(dir, e))?;
    }
    vgg_wgpu::io::write_atomically(path, text.as_bytes())
}
