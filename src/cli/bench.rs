//! `vgg bench`: kernels at every layer shape against the peak and the CPU reference,
//! whole networks end to end, comparisons with another report.

use super::{AdapterArgs, ModelArgs};
use std::path::PathBuf;
use std::process::ExitCode;
use vgg_wgpu::model::Model;
use vgg_wgpu::{bench, Error, Gpu};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Batch sizes, comma-separated
    #[arg(long, short, default_value = "1")]
    pub batch: String,
    /// Finish within a minute on a CPU driver: 32x32 input (unless --input), 3 runs,
    /// default variants only, one small network run
    #[arg(long)]
    pub quick: bool,
    /// Timed runs per kernel, after one warm-up, 1 to 10000 [default: 10, quick: 3]
    #[arg(long, value_parser = super::count_parser(10_000))]
    pub runs: Option<usize>,
    /// Skip the CPU reference timings (they take a while at full size)
    #[arg(long)]
    pub no_cpu: bool,
    /// First search conv variants and tunables per layer shape, and the FC variants per FC
    /// shape (at the first --batch), and store the best for this adapter and driver in the
    /// tuning file the executor and the trainer read ($VGG_TUNING_FILE, else
    /// ~/.cache/vgg-wgpu/tuning.json)
    #[arg(long)]
    pub tune: bool,
    /// Whole networks to run end to end, comma-separated, or "none" (which also skips
    /// the training step) [default: vgg11,vgg16,vgg19 and a vgg11 training step; quick:
    /// the --model]
    #[arg(long)]
    pub networks: Option<String>,
    /// The larger batches of the end-to-end runs, comma-separated (batch 1 always runs)
    /// [default: 8, quick: 2]
    #[arg(long, value_name = "N,..")]
    pub e2e_batch: Option<String>,
    /// Precisions of the end-to-end rows, comma-separated: f32, f16 (skipped without
    /// shader-f16). Inference in f16 stores f16 tensors; a training step in f16 keeps f32
    /// tensors and master weights and scales the loss, as PyTorch's AMP. Both multiply on
    /// tensor cores (f16 operands, f32 sums) where the adapter lists cooperative matrices
    #[arg(long, default_value = "f32", value_name = "LIST")]
    pub precision: String,
    /// Training steps to time, comma-separated models, or "none" [default: vgg11, or with
    /// --quick the --model; none with --networks none]
    #[arg(long, value_name = "MODELS")]
    pub train: Option<String>,
    /// The batch of the training steps
    #[arg(long, default_value_t = 2)]
    pub train_batch: usize,
    /// "none" to skip the per-layer kernel rows and time only the peaks and the end-to-end
    /// rows (--networks, --train), or "all"
    #[arg(long, default_value = "all", value_parser = ["all", "none"])]
    pub kernels: String,
    /// Write the report as JSON to FILE, or to stdout when no FILE is given (the table
    /// then goes to stderr)
    #[arg(long, num_args = 0..=1, default_missing_value = "-", value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write the report as a Markdown table
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Write an SVG chart of each layer's GFLOP/s against the measured peak
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Print this run beside another report (e.g. from tools/bench_torch.py) with ratios
    #[arg(long, value_name = "FILE")]
    pub compare: Option<PathBuf>,
    /// Do not run: load this saved report instead (to print it, compare it, or write
    /// it as Markdown or SVG)
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    #[command(flatten)]
    pub gpu: AdapterArgs,
}

impl Args {
    pub fn run(self) -> vgg_wgpu::Result<ExitCode> {
        let o = self.options()?;
        let other = self
            .compare
            .as_deref()
            .map(bench::Report::load_json)
            .transpose()?;
        let report = match &self.report {
            Some(p) => bench::Report::load_json(p)?,
            None => {
                let gpu = Gpu::new(&self.gpu.options())?;
                errln!("adapter: {}", gpu.describe());
                // The rows are not counted ahead (tuning and batches add to them): a spinner
                // with the time spent, the finished rows printed above it.
                let bar = super::progress::Progress::spinner("benchmarking", self.json.is_some());
                let mut rows = 0;
                let report = bench::run(&gpu, &o, |line| {
                    rows += 1;
                    bar.line(line);
                    bar.set_message(format!("benchmarking: {rows} rows done"));
                })?;
                bar.finish();
                report
            }
        };
        self.write(&report, other.as_ref())?;
        // The reports keep the rows that ran; a row that failed still fails the command.
        if !report.failures.is_empty() {
            errln!(
                "error: {} row(s) failed: {}",
                report.failures.len(),
                report.failures.join("; ")
            );
            return Ok(ExitCode::FAILURE);
        }
        Ok(ExitCode::SUCCESS)
    }

    /// The suite's options: the defaults for the model (or --quick's), with the flags'.
    fn options(&self) -> vgg_wgpu::Result<bench::suite::Options> {
        let mut o = bench::suite::default_options(self.model.build()?, self.quick)?;
        o.batches = batch_list("--batch", &self.batch)?;
        o.cpu = !self.no_cpu;
        o.tune = self.tune;
        if let Some(r) = self.runs {
            o.runs = r;
        }
        if let Some(list) = &self.e2e_batch {
            o.e2e_batch = batch_list("--e2e-batch", list)?;
        }
        let precision = &self.precision;
        o.precisions = precision
            .split(',')
            .map(super::precision_named)
            .collect::<Option<Vec<_>>>()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Error::InvalidOption {
                option: "--precision".into(),
                message: format!("'{precision}' is not a list of f32, f16"),
            })?;
        if let Some(list) = &self.networks {
            if list.trim() == "none" {
                o.training.clear();
            }
            o.networks = models(list)?;
        }
        if let Some(list) = &self.train {
            o.training = models(list)?;
        }
        if self.train_batch == 0 {
            return Err(Error::InvalidOption {
                option: "--train-batch".into(),
                message: "a training step needs at least one image".into(),
            });
        }
        o.train_batch = self.train_batch;
        o.kernels = self.kernels == "all";
        Ok(o)
    }

    /// The table (stdout, or stderr when the JSON goes to stdout), the files asked for, and
    /// the comparison with another report.
    fn write(&self, report: &bench::Report, other: Option<&bench::Report>) -> vgg_wgpu::Result<()> {
        let table = report.table();
        let json_stdout = self.json.as_deref() == Some(std::path::Path::new("-"));
        if json_stdout {
            err!("{table}");
            let text =
                serde_json::to_string_pretty(report).map_err(|e| Error::Shape(e.to_string()))?;
            outln!("{text}")?;
        } else {
            out!("{table}")?;
        }
        if let Some(p) = self.json.as_ref().filter(|_| !json_stdout) {
            report.save_json(p)?;
            errln!("wrote {}", p.display());
        }
        if let Some(p) = &self.markdown {
            vgg_wgpu::io::write_atomically(p, report.markdown().as_bytes())?;
            errln!("wrote {}", p.display());
        }
        if let Some(p) = &self.plot {
            report.plot_svg(p)?;
            errln!("wrote {}", p.display());
        }
        if let Some(other) = other {
            let text = report.compare(other);
            if json_stdout {
                err!("{text}");
            } else {
                out!("{text}")?;
            }
        }
        Ok(())
    }
}

/// A comma-separated list of built-in models or layer lists, or "none".
fn models(list: &str) -> vgg_wgpu::Result<Vec<Model>> {
    if list.trim() == "none" {
        return Ok(Vec::new());
    }
    list.split(',').map(|n| Model::parse(n.trim())).collect()
}

/// A comma-separated list of batch sizes (each at least 1) given to `option`.
fn batch_list(option: &str, list: &str) -> vgg_wgpu::Result<Vec<usize>> {
    list.split(',')
        .map(|b| b.trim().parse::<usize>().ok().filter(|b| *b > 0))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| Error::InvalidOption {
            option: option.into(),
            message: format!("'{list}' is not a list of batch sizes"),
        })
}
