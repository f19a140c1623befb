//! `vgg`: the command-line front end. Parses, calls the library, prints.

use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use vgg_wgpu::gpu::Precision;
use vgg_wgpu::graph::{self, Graph, Limits};
use vgg_wgpu::io::image::Preprocess;
use vgg_wgpu::kernels::conv::ConvTune;
use vgg_wgpu::model::summary::{bytes as fmt_bytes, thousands};
use vgg_wgpu::model::{Model, Summary, NAMES};
use vgg_wgpu::{bench, check, gpu, Error, Gpu, GpuOptions, Network};

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
    /// Report a wait for the GPU longer than this many seconds as an error instead of
    /// waiting on (a hung or far too slow adapter) [default: 600]
    #[arg(long, value_name = "SECONDS", env = "VGG_GPU_TIMEOUT", value_parser = positive_seconds)]
    gpu_timeout: Option<f64>,
}

impl AdapterArgs {
    fn options(&self) -> GpuOptions {
        GpuOptions {
            adapter: self.adapter.clone(),
            backend: self.backend.clone(),
            bounds_checks: self.bounds_checks,
            timeout: self.gpu_timeout.map(std::time::Duration::from_secs_f64),
            shader_dir: None,
        }
    }
}

#[derive(Args, Clone)]
struct ModelArgs {
    /// A built-in model (vgg11, vgg11_lrn, vgg13, vgg16_c, vgg16, vgg19, vgg11_bn, vgg13_bn,
    /// vgg16_bn, vgg19_bn) or a layer list: channel counts for 3x3 convs, N:1 for a 1x1
    /// conv, M for max pool, L for LRN, e.g. "32,M,64,M,128,128,M"
    #[arg(long, short, default_value = "vgg16")]
    model: String,
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

fn parse_hw(s: &str) -> Result<(usize, usize), String> {
    let (h, w) = s.split_once(['x', 'X']).unwrap_or((s, s));
    match (h.trim().parse::<usize>(), w.trim().parse::<usize>()) {
        (Ok(h), Ok(w)) if h > 0 && w > 0 => Ok((h, w)),
        _ => Err(format!("'{s}' is not a size like 224x224")),
    }
}

impl ModelArgs {
    fn build(&self) -> vgg_wgpu::Result<Model> {
        let mut m = Model::parse(&self.model)?;
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
enum Command {
    /// List every adapter with its backend, driver, limits and features
    Devices {
        /// Backends to list: vulkan, gl, metal, dx12 (comma-separated) [default: all]
        #[arg(long, env = "WGPU_BACKEND")]
        backend: Option<String>,
    },
    /// Conformance: every forward and backward kernel, whole-network forwards and one
    /// training step on fresh random inputs against the CPU reference, each run twice to
    /// check determinism; a table per adapter, exit code 1 on any failure
    #[command(
        after_help = "Each row: op, shape, max abs error, relative L2 error, max ULP \
        distance, `det` where a second run on the same input gave the same bits, pass or \
        FAIL with the reason. Cases the adapter cannot run (no shader-f16, no subgroups) are \
        listed as skipped with the reason. VGG_SHADER_DIR=DIR replaces built-in kernels \
        shaders/OP/PASS.wgsl with DIR/OP/PASS.wgsl, to try a patched kernel; the report names \
        them."
    )]
    Check {
        #[command(flatten)]
        gpu: AdapterArgs,
        /// Check every adapter found (on --backend), one after another
        #[arg(long, conflicts_with = "adapter")]
        all: bool,
        /// Add the full-size cases: VGG16's 392 MiB first FC layer (split over bindings
        /// where needed) and the whole VGG16 at 224x224
        #[arg(long)]
        full: bool,
        /// Seed for the random inputs [default: drawn from the clock and printed]
        #[arg(long, env = "VGG_SEED")]
        seed: Option<u64>,
        /// Write the report as JSON to FILE, or to stdout when no FILE is given (the table
        /// then goes to stderr)
        #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "-")]
        json: Option<PathBuf>,
        /// Write the report as Markdown to FILE
        #[arg(long, value_name = "FILE")]
        markdown: Option<PathBuf>,
        /// Run each case once (skip the determinism check, which runs it twice)
        #[arg(long)]
        no_determinism: bool,
        /// Report a case that takes longer than this (seconds, CPU reference included) as slow
        #[arg(long, value_name = "SECONDS", default_value_t = 30.0, value_parser = positive_seconds)]
        slow: f64,
    },
    /// Per-layer table of a model (output shape, parameters, MACs, activation bytes), its
    /// totals, and the executor's GPU memory plan at a batch size
    Summary {
        #[command(flatten)]
        model: ModelArgs,
        /// Batch size to plan for
        #[arg(long, short, default_value_t = 1)]
        batch: usize,
        /// List the built-in models and exit
        #[arg(long)]
        list: bool,
        /// Also print the training memory plan at this batch (micro-batch) size
        #[arg(long)]
        train: bool,
        /// Micro-batches per step, for --train
        #[arg(long, default_value_t = 1)]
        accumulate: usize,
        #[command(flatten)]
        gpu: AdapterArgs,
    },
    /// Classify images (top-k classes with probabilities), or extract a layer's features
    Infer {
        #[command(flatten)]
        model: ModelArgs,
        /// Weights: a safetensors file with torchvision's names (see tools/export_torchvision.py)
        #[arg(long, short)]
        weights: PathBuf,
        /// Image files (JPEG, PNG) or directories of them
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// Images per forward pass
        #[arg(long, short, default_value_t = 8)]
        batch_size: usize,
        /// Classes shown per image
        #[arg(long, default_value_t = 5)]
        top: usize,
        /// Print the results as JSON on stdout
        #[arg(long)]
        json: bool,
        /// Class names, one per line [default: ImageNet's 1000 when the model has 1000
        /// classes, else class numbers]
        #[arg(long)]
        labels: Option<PathBuf>,
        /// Shorter side after resizing (torchvision's preset: 256)
        #[arg(long, default_value_t = 256)]
        resize: u32,
        /// Side of the center crop (torchvision's preset: 224), which is the network's
        /// input size
        #[arg(long, default_value_t = 224)]
        crop: u32,
        /// Stop at the first file that is not a readable image, before classifying any
        /// [default: skip it with a warning]
        #[arg(long)]
        strict: bool,
        /// Extract this layer's output (pool5, relu5_3, fc7, ...; see `vgg summary`)
        /// instead of classifying; needs --out
        #[arg(long, requires = "out")]
        features: Option<String>,
        /// Where --features go: a .npy file (one array, images in input order) or a
        /// .safetensors file (the layer's name as tensor name, file list in the metadata)
        #[arg(long, requires = "features")]
        out: Option<PathBuf>,
        /// The paper's dense evaluation: no crop (the shorter side resized to --resize,
        /// at least 224), the FC layers run as convolutions over the whole image, class
        /// posteriors averaged over positions and over the mirrored image
        #[arg(long, conflicts_with = "features")]
        dense: bool,
        /// Storage of weights and activations on the GPU: f32, or f16 (half the memory and
        /// bandwidth; needs the adapter's shader-f16 feature; arithmetic stays f32)
        #[arg(long, default_value = "f32", value_parser = ["f32", "f16"])]
        precision: String,
        #[command(flatten)]
        gpu: AdapterArgs,
    },
    /// Train a model on the GPU (SGD with momentum 0.9 and weight decay 5e-4), evaluating
    /// on a held-out split after every epoch and checkpointing
    Train {
        #[command(flatten)]
        model: ModelArgs,
        /// Use the demo's small VGG for 28x28 digits instead of --model
        #[arg(long)]
        mnist_model: bool,
        /// The data: a file (mnist-csv), IMAGES,LABELS (mnist-idx), or batch files
        /// comma-separated (cifar10) [default: the bundled 5000 MNIST digits]
        #[arg(long)]
        data: Option<String>,
        /// mnist-csv, mnist-idx, cifar10, or folder (one subdirectory of JPEG/PNG images per
        /// class, resized and center-cropped to the model's input)
        #[arg(long, default_value = "mnist-csv")]
        format: String,
        /// Random horizontal flips and crops (from a 4-pixel padding) of the training
        /// images [default: on for cifar10 and folder, off for digits]
        #[arg(long)]
        augment: Option<bool>,
        #[arg(long, default_value_t = 10)]
        epochs: usize,
        /// Images per micro-batch
        #[arg(long, short, default_value_t = 32)]
        batch_size: usize,
        /// Micro-batches per optimisation step (a logical batch of batch-size x accumulate)
        #[arg(long, default_value_t = 1)]
        accumulate: usize,
        #[arg(long, default_value_t = 0.05)]
        lr: f32,
        /// constant, step:EVERY:FACTOR, or plateau[:PATIENCE] (the paper's: divide by 10
        /// when held-out accuracy stops improving)
        #[arg(long, default_value = "plateau:2")]
        schedule: String,
        /// Seed of the initial weights, the shuffling and the dropout masks
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Images held out (the last ones) for evaluation
        #[arg(long, default_value_t = 1000)]
        holdout: usize,
        /// Turn dropout off
        #[arg(long)]
        no_dropout: bool,
        /// Directory for checkpoint.safetensors (every epoch), metrics.csv, and at the end
        /// model.safetensors and metrics.svg (loss and accuracy per epoch)
        #[arg(long, default_value = "train-out")]
        out: PathBuf,
        /// Continue from OUT/checkpoint.safetensors exactly where it stopped
        #[arg(long)]
        resume: bool,
        #[command(flatten)]
        gpu: AdapterArgs,
    },
    /// Classify the held-out bundled MNIST digits with the committed model trained by this
    /// engine, on the GPU; no download, no arguments needed
    Demo {
        #[command(flatten)]
        gpu: AdapterArgs,
    },
    /// Benchmark every kernel at every distinct layer shape of a model, against the
    /// adapter's measured peak and the CPU reference, plus whole networks end to end
    Bench {
        #[command(flatten)]
        model: ModelArgs,
        /// Batch sizes, comma-separated
        #[arg(long, short, default_value = "1")]
        batch: String,
        /// Finish within a minute on a CPU driver: 32x32 input (unless --input), 3 runs,
        /// default variants only, one small network run
        #[arg(long)]
        quick: bool,
        /// Timed runs per kernel, after one warm-up [default: 10, quick: 3]
        #[arg(long)]
        runs: Option<usize>,
        /// Skip the CPU reference timings (they take a while at full size)
        #[arg(long)]
        no_cpu: bool,
        /// First search conv variants and tunables per layer shape (at the first --batch),
        /// and store the best for this adapter and driver in the tuning file the executor reads
        /// ($VGG_TUNING_FILE, else ~/.cache/vgg-wgpu/tuning.json)
        #[arg(long)]
        tune: bool,
        /// Whole networks to run end to end, comma-separated, or "none" (which also skips
        /// the training step) [default: vgg11,vgg16,vgg19 and a vgg11 training step; quick:
        /// the --model]
        #[arg(long)]
        networks: Option<String>,
        /// The large batch of the end-to-end runs (the other is 1) [default: 8, quick: 2]
        #[arg(long)]
        e2e_batch: Option<usize>,
        /// Write the report as JSON to FILE, or to stdout when no FILE is given (the table
        /// then goes to stderr)
        #[arg(long, num_args = 0..=1, default_missing_value = "-", value_name = "FILE")]
        json: Option<PathBuf>,
        /// Write the report as a Markdown table
        #[arg(long, value_name = "FILE")]
        markdown: Option<PathBuf>,
        /// Write an SVG chart of each layer's GFLOP/s against the measured peak
        #[arg(long, value_name = "FILE.svg")]
        plot: Option<PathBuf>,
        /// Print this run beside another report (e.g. from tools/bench_torch.py) with ratios
        #[arg(long, value_name = "FILE")]
        compare: Option<PathBuf>,
        /// Do not run: load this saved report instead (to print it, compare it, or write
        /// it as Markdown or SVG)
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
        #[command(flatten)]
        gpu: AdapterArgs,
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
        Command::Check {
            gpu,
            all,
            full,
            seed,
            json,
            markdown,
            no_determinism,
            slow,
        } => {
            let opts = check::suite::SuiteOptions {
                seed: seed.unwrap_or_else(clock_seed),
                full,
                determinism: !no_determinism,
                slow_seconds: slow,
            };
            conformance(&gpu.options(), all, &opts, json, markdown)
        }
        Command::Summary {
            model,
            batch,
            list,
            train,
            accumulate,
            gpu,
        } => {
            if list {
                for (name, what) in NAMES {
                    println!("{name:<10} {what}");
                }
                return Ok(ExitCode::SUCCESS);
            }
            let model = model.build()?;
            summary(&model, batch, &gpu.options())?;
            if train {
                let opts = vgg_wgpu::train::TrainOptions {
                    batch,
                    accumulate: accumulate.max(1),
                    ..Default::default()
                };
                let device = Gpu::new(&gpu.options()).ok();
                let plan = vgg_wgpu::train::memory_plan(&model, &opts, |s| match &device {
                    Some(g) => vgg_wgpu::kernels::conv::select(g, s, None),
                    None => ConvTune {
                        variant: vgg_wgpu::kernels::conv::ConvVariant::Direct,
                        wg: 64,
                        tm: 8,
                    },
                });
                println!(
                    "training memory plan at micro-batch {batch} x {} (every activation kept \
                     for the backward pass):",
                    opts.accumulate
                );
                for (what, b) in &plan {
                    println!("  {what:<52} {:>12}", fmt_bytes(*b));
                }
                let total: u64 = plan.iter().map(|p| p.1).sum();
                println!(
                    "  {:<52} {:>12} ({} bytes)",
                    "total",
                    fmt_bytes(total),
                    thousands(total)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Infer {
            model,
            weights,
            images,
            batch_size,
            top,
            json,
            labels,
            resize,
            crop,
            strict,
            features,
            out,
            dense,
            precision,
            gpu,
        } => {
            if let Some((h, w)) = model
                .input
                .filter(|hw| *hw != (crop as usize, crop as usize))
            {
                return Err(Error::InvalidOption {
                    option: "--input".into(),
                    message: format!(
                        "{h}x{w} disagrees with --crop {crop}: for infer the crop is the \
                         network's input; set --crop (and --resize) instead"
                    ),
                });
            }
            let mut model = model.build()?;
            if model.config().input != (crop as usize, crop as usize) {
                let c = model.config().in_channels;
                model = model.with_input(c, crop as usize, crop as usize)?;
            }
            let opts = InferArgs {
                batch_size,
                top,
                json,
                labels,
                pre: Preprocess {
                    resize,
                    crop: Some(crop),
                    ..Preprocess::default()
                },
                strict,
                features,
                out,
                dense,
                precision: if precision == "f16" {
                    Precision::F16
                } else {
                    Precision::F32
                },
            };
            infer(&model, &weights, &images, &opts, &gpu.options())
        }
        Command::Train {
            model,
            mnist_model,
            data,
            format,
            augment,
            epochs,
            batch_size,
            accumulate,
            lr,
            schedule,
            seed,
            holdout,
            no_dropout,
            out,
            resume,
            gpu,
        } => {
            let model = if mnist_model {
                vgg_wgpu::train::mnist_model()?
            } else {
                model.build()?
            };
            let [ic, ih, iw] = model.input_dims();
            let data = load_data(&format, data.as_deref(), ic, ih.max(iw) as u32)?;
            let (train, test) = data.split(holdout)?;
            let o = vgg_wgpu::train::fit::FitOptions {
                epochs,
                lr,
                schedule: vgg_wgpu::train::fit::Schedule::parse(&schedule)?,
                train: vgg_wgpu::train::TrainOptions {
                    batch: batch_size,
                    accumulate,
                    dropout: !no_dropout,
                    seed,
                    ..Default::default()
                },
                out: Some(out.clone()),
                augment: augment.unwrap_or(format == "cifar10" || format == "folder"),
                augment_pad: 4,
            };
            let gpu = Gpu::new(&gpu.options())?;
            eprintln!(
                "training {} on {} ({} train, {} held out) on {}",
                model.name(),
                format,
                train.len(),
                test.len(),
                gpu.describe()
            );
            let init = vgg_wgpu::Weights::init(&model, vgg_wgpu::Init::Kaiming, seed);
            let ckpt = out.join("checkpoint.safetensors");
            if resume && !ckpt.exists() {
                return Err(vgg_wgpu::io::file_err(
                    &ckpt,
                    "no checkpoint to resume from",
                ));
            }
            let t0 = std::time::Instant::now();
            let mut done = 0usize;
            let (weights, _) = vgg_wgpu::train::fit::fit(
                &gpu,
                &model,
                &init,
                &train,
                &test,
                &o,
                resume.then_some(ckpt.as_path()),
                |epoch, s, steps, st| {
                    done += st.images;
                    let rate = done as f64 / t0.elapsed().as_secs_f64();
                    let left = (steps - s) * st.images;
                    eprint!(
                        "\repoch {epoch}/{epochs} step {s}/{steps} loss {:.4} acc {:5.1}% {:.0} images/s, epoch ETA {:.0} s   ",
                        st.loss,
                        100.0 * st.correct as f64 / st.images as f64,
                        rate,
                        left as f64 / rate
                    );
                },
                |e| {
                    eprintln!(
                        "\repoch {}: loss {:.4}, train accuracy {:.2}%, held-out accuracy {:.2}%, lr {}, {:.0} images/s",
                        e.epoch,
                        e.loss,
                        100.0 * e.train_accuracy,
                        100.0 * e.test_accuracy,
                        e.lr,
                        e.images_per_second
                    );
                },
            )?;
            let path = out.join("model.safetensors");
            weights.save(&path)?;
            let (csv, svg) = (out.join("metrics.csv"), out.join("metrics.svg"));
            vgg_wgpu::train::fit::plot_metrics(&csv, &svg)?;
            eprintln!(
                "wrote {} (metrics in {}, plotted in {})",
                path.display(),
                csv.display(),
                svg.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo { gpu } => demo(&gpu.options()),
        Command::Bench {
            model,
            batch,
            quick,
            runs,
            no_cpu,
            tune,
            networks,
            e2e_batch,
            json,
            markdown,
            plot,
            compare,
            report,
            gpu,
        } => {
            let batches = batch
                .split(',')
                .map(|b| b.trim().parse::<usize>().ok().filter(|b| *b > 0))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| Error::InvalidOption {
                    option: "--batch".into(),
                    message: format!("'{batch}' is not a list of batch sizes"),
                })?;
            let other = compare
                .as_deref()
                .map(bench::Report::load_json)
                .transpose()?;
            let mut o = bench::suite::default_options(model.build()?, quick)?;
            o.batches = batches;
            o.cpu = !no_cpu;
            o.tune = tune;
            if let Some(r) = runs {
                o.runs = r.max(1);
            }
            if let Some(b) = e2e_batch {
                o.e2e_batch = b;
            }
            if let Some(list) = networks {
                o.networks = if list.trim() == "none" {
                    o.training.clear();
                    Vec::new()
                } else {
                    list.split(',')
                        .map(|n| Model::parse(n.trim()))
                        .collect::<vgg_wgpu::Result<Vec<_>>>()?
                };
            }
            let report = match report {
                Some(p) => bench::Report::load_json(&p)?,
                None => {
                    let gpu = Gpu::new(&gpu.options())?;
                    eprintln!("adapter: {}", gpu.describe());
                    bench::run(&gpu, &o, |line| eprintln!("{line}"))?
                }
            };
            let table = report.table();
            let json_stdout = json.as_deref() == Some(std::path::Path::new("-"));
            if json_stdout {
                eprint!("{table}");
                let text = serde_json::to_string_pretty(&report)
                    .map_err(|e| Error::Shape(e.to_string()))?;
                println!("{text}");
            } else {
                print!("{table}");
            }
            if let Some(p) = json.filter(|_| !json_stdout) {
                report.save_json(&p)?;
                eprintln!("wrote {}", p.display());
            }
            if let Some(p) = markdown {
                vgg_wgpu::io::write_atomically(&p, report.markdown().as_bytes())?;
                eprintln!("wrote {}", p.display());
            }
            if let Some(p) = plot {
                report.plot_svg(&p)?;
                eprintln!("wrote {}", p.display());
            }
            if let Some(other) = other {
                let text = report.compare(&other);
                if json_stdout {
                    eprint!("{text}");
                } else {
                    print!("{text}");
                }
            }
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

/// A positive, finite number of seconds (at most a year, which Duration can hold).
fn positive_seconds(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 3.2e7 => Ok(v),
        _ => Err(format!("'{s}' is not a positive number of seconds")),
    }
}

/// `vgg check`: the suite on one adapter or all, the table as it goes, the reports at the end.
fn conformance(
    gpu_opts: &GpuOptions,
    all: bool,
    opts: &check::suite::SuiteOptions,
    json: Option<PathBuf>,
    markdown: Option<PathBuf>,
) -> vgg_wgpu::Result<ExitCode> {
    use check::report::{AdapterReport, Report, Status};
    let gpu_opts = gpu_opts.clone().with_env();
    let adapters = gpu::enumerate(gpu_opts.backends()?);
    let chosen: Vec<(usize, wgpu::Adapter)> = if all {
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
    let say = |line: &str| {
        if json_stdout {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
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
                let (outcomes, skipped) = check::suite::run(&gpu, opts, |o| say(&o.to_string()));
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

fn write_text(path: &Path, text: &str) -> vgg_wgpu::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| vgg_wgpu::Error::File {
            path: dir.display().to_string(),
            message: e.to_string(),
        })?;
    }
    std::fs::write(path, text).map_err(|e| vgg_wgpu::Error::File {
        path: path.display().to_string(),
        message: e.to_string(),
    })
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

/// The layer table, then the memory plan on the chosen adapter (or, with none found, under
/// wgpu's default limits).
fn summary(model: &Model, batch: usize, opts: &GpuOptions) -> vgg_wgpu::Result<()> {
    let table = Summary { model, batch };
    println!("{table}");
    let gpu = Gpu::new(opts);
    let (limits, tune, budget, on) = match &gpu {
        Ok(g) => {
            let tune = ConvTune::default_for(g);
            let weights = graph::weight_bytes(model, tune);
            let budget = g.memory_available().map(|a| {
                if g.is_cpu() {
                    a
                } else {
                    a.saturating_sub(weights)
                }
            });
            let limits = Limits {
                max_binding: g.max_binding_bytes(),
                max_buffer: g.limits().max_buffer_size,
            };
            (limits, tune, budget, g.describe())
        }
        Err(e) => {
            let d = wgpu::Limits::default();
            let limits = Limits {
                max_binding: d.max_storage_buffer_binding_size,
                max_buffer: d.max_buffer_size,
            };
            let tune = ConvTune {
                variant: vgg_wgpu::kernels::conv::ConvVariant::Direct,
                wg: 64,
                tm: 8,
            };
            (limits, tune, None, format!("wgpu's default limits ({e})"))
        }
    };
    let last = &model.layers()[model.layers().len() - 1].name;
    let g = Graph::build(model, &[last])?;
    let plan = graph::plan::plan(&g, batch, limits, budget)?;
    let weights = graph::weight_bytes(model, tune);
    println!("planned GPU memory at batch {batch} on {on}:");
    println!(
        "  weights {} (conv weights packed for the {:?} kernel, batch norm folded)",
        fmt_bytes(weights),
        tune.variant
    );
    println!(
        "  activations {} in {} reused buffers (the input included; all layer outputs \
         together would take {})",
        fmt_bytes(plan.activation_bytes()),
        plan.slots.len(),
        fmt_bytes(table.activation_bytes())
    );
    println!("  output readback {}", fmt_bytes(plan.readback));
    println!(
        "  total {} ({} bytes)",
        fmt_bytes(weights + plan.bytes()),
        thousands(weights + plan.bytes())
    );
    for (i, s) in plan.stages.iter().enumerate() {
        let first = &g.nodes[s.nodes.start].name;
        let last = &g.nodes[s.nodes.end - 1].name;
        let how = if plan.chunked(i) {
            format!(
                "in {} groups of up to {} images (one image's tensors times the batch would \
                 pass the {} binding limit)",
                plan.chunks(i).len(),
                s.chunk,
                fmt_bytes(limits.max_binding)
            )
        } else {
            "over the whole batch".to_string()
        };
        println!("  {first} .. {last}: {} GPU ops {how}", s.nodes.len());
    }
    Ok(())
}

struct InferArgs {
    batch_size: usize,
    top: usize,
    json: bool,
    labels: Option<PathBuf>,
    pre: Preprocess,
    strict: bool,
    features: Option<String>,
    out: Option<PathBuf>,
    dense: bool,
    precision: Precision,
}

fn infer(
    model: &Model,
    weights: &std::path::Path,
    inputs: &[PathBuf],
    a: &InferArgs,
    opts: &GpuOptions,
) -> vgg_wgpu::Result<ExitCode> {
    use vgg_wgpu::infer;
    use vgg_wgpu::io;
    let files = vgg_wgpu::io::image::collect_images(inputs)?;
    if files.is_empty() {
        return Err(Error::InvalidOption {
            option: "images".into(),
            message: format!(
                "no image files ({}) found in the paths given",
                vgg_wgpu::io::image::IMAGE_EXTENSIONS.join(", ")
            ),
        });
    }
    if let Some(out) = &a.out {
        let ext = out.extension().and_then(|e| e.to_str()).unwrap_or("");
        if ext != "npy" && ext != "safetensors" {
            return Err(Error::InvalidOption {
                option: "--out".into(),
                message: format!("{}: use a .npy or .safetensors file name", out.display()),
            });
        }
    }
    if let Some(layer) = &a.features {
        if layer != graph::PROB {
            model.layer_index(layer)?;
        }
    }
    let labels = match &a.labels {
        Some(p) => io::labels::from_file(p)?,
        None if model.classes() == 1000 => io::labels::imagenet(),
        None => (0..model.classes()).map(|i| format!("class {i}")).collect(),
    };
    let w = io::load_weights(weights, model)?;
    let gpu = Gpu::new(opts)?;
    let net_opts = vgg_wgpu::NetworkOptions {
        precision: a.precision,
        ..Default::default()
    };
    let mut net = Network::with_options(&gpu, model, &w, net_opts)?;
    drop(w);
    let t0 = std::time::Instant::now();
    let mut json_results = Vec::new();
    let label = |i: usize| {
        labels
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("class {i}"))
    };
    let run_opts = infer::Options {
        pre: a.pre.clone(),
        batch_size: a.batch_size,
        top: a.top,
        strict: a.strict,
        features: a.features.as_deref(),
        dense: a.dense,
    };
    let (stats, feats, kept) = infer::run(&mut net, &files, &run_opts, |r| {
        if a.features.is_some() {
            return;
        }
        if a.json {
            let top: Vec<_> = r
                .top
                .iter()
                .map(|&(c, p)| serde_json::json!({"class": c, "label": label(c), "probability": p}))
                .collect();
            json_results.push(serde_json::json!({
                "file": r.path.display().to_string(),
                "top": top,
            }));
        } else {
            println!("{}", r.path.display());
            for (rank, &(c, p)) in r.top.iter().enumerate() {
                let name = label(c);
                let class = if name == format!("class {c}") {
                    name
                } else {
                    format!("{name} (class {c})")
                };
                println!("  {:>2}  {:>7.3}%  {class}", rank + 1, p * 100.0);
            }
        }
    })?;
    let total = t0.elapsed().as_secs_f64();
    for e in &stats.skipped {
        eprintln!("warning: skipped {e}");
    }
    if let (Some(out), Some(f), Some(layer)) = (&a.out, &feats, &a.features) {
        let names: Vec<String> = kept.iter().map(|p| p.display().to_string()).collect();
        if out.extension().and_then(|e| e.to_str()) == Some("npy") {
            io::npy::save(out, f)?;
        } else {
            let meta = [
                ("model".to_string(), model.name().to_string()),
                ("layer".to_string(), layer.clone()),
                ("files".to_string(), serde_json::json!(names).to_string()),
            ];
            io::save_safetensors(
                out,
                &[(layer.as_str(), f)],
                Some(meta.into_iter().collect()),
            )?;
        }
        eprintln!(
            "wrote {} of shape {:?} to {}",
            layer,
            f.shape,
            out.display()
        );
    }
    if a.json && a.features.is_none() {
        let skipped: Vec<String> = stats.skipped.iter().map(|e| e.to_string()).collect();
        let doc = serde_json::json!({
            "model": model.name(),
            "adapter": gpu.describe(),
            "results": json_results,
            "skipped": skipped,
            "images_per_second": stats.images as f64 / total,
        });
        println!("{doc:#}");
    }
    let n = stats.images.max(1) as f64;
    eprintln!(
        "{}: {} images in {total:.2} s: {:.2} images/s, {:.1} ms per image (forward {:.1} ms, \
         decoding {:.1} ms) on {}",
        model.name(),
        stats.images,
        stats.images as f64 / total,
        1e3 * total / n,
        1e3 * stats.forward.as_secs_f64() / n,
        1e3 * stats.decode.as_secs_f64() / n,
        gpu.describe()
    );
    Ok(if stats.images == 0 {
        eprintln!("error: no image could be classified");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Training data by format; `channels` and `side` size the images of a folder.
fn load_data(
    format: &str,
    data: Option<&str>,
    channels: usize,
    side: u32,
) -> vgg_wgpu::Result<vgg_wgpu::io::datasets::Dataset> {
    use vgg_wgpu::io::datasets as ds;
    let paths: Vec<PathBuf> = data
        .map(|d| d.split(',').map(PathBuf::from).collect())
        .unwrap_or_default();
    match (format, paths.as_slice()) {
        ("mnist-csv", []) => ds::mnist_5k(),
        ("mnist-csv", [p]) => ds::mnist_csv(p),
        ("mnist-idx", [i, l]) => ds::mnist_idx(i, l),
        ("cifar10", ps) if !ps.is_empty() => {
            ds::cifar10(&ps.iter().map(|p| p.as_path()).collect::<Vec<_>>())
        }
        ("folder", [dir]) => ds::folder(dir, channels, side).map(|(d, _)| d),
        _ => Err(Error::InvalidOption {
            option: "--data/--format".into(),
            message: format!(
                "{format} takes: mnist-csv [FILE] (default: the bundled digits), mnist-idx \
                 IMAGES,LABELS, cifar10 BATCH[,BATCH...], folder DIR"
            ),
        }),
    }
}

/// The committed model and held-out digits, on the GPU.
fn demo(opts: &GpuOptions) -> vgg_wgpu::Result<ExitCode> {
    use vgg_wgpu::io::datasets as ds;
    let model = vgg_wgpu::train::mnist_model()?;
    let weights = vgg_wgpu::train::demo_weights()?;
    let (_, test) = ds::mnist_5k()?.split(1000)?;
    let gpu = Gpu::new(opts)?;
    println!("adapter: {}", gpu.describe());
    let t0 = std::time::Instant::now();
    let mut net = Network::new(&gpu, &model, &weights)?;
    let acc = vgg_wgpu::train::fit::evaluate(&mut net, &test)?;
    let secs = t0.elapsed().as_secs_f64();
    // Eight digits spread over the held-out set (it is in class order).
    let picks: Vec<usize> = (0..8).map(|i| i * 125 + 7).collect();
    let sample = test.select(&picks);
    let x = vgg_wgpu::Tensor::new(vec![8, 1, 28, 28], sample.images)?;
    let logits = net.forward(&x)?;
    println!(
        "{} (trained by this engine, {} parameters) on the 1000 held-out digits of the \
         bundled MNIST subset:",
        model.name(),
        model.params()
    );
    for (i, &at) in picks.iter().enumerate() {
        let p = vgg_wgpu::io::labels::top_k(logits.row(i), 1)[0].0;
        println!(
            "  held-out digit {at:>3}: label {}, predicted {p}",
            sample.labels[i]
        );
    }
    println!(
        "accuracy {:.1}% ({} of 1000) in {:.2} s",
        100.0 * acc,
        (acc * 1000.0).round(),
        secs
    );
    Ok(ExitCode::SUCCESS)
}
