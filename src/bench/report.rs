//! The benchmark's results and their forms: a terminal table, JSON (the schema
//! tools/bench_torch.py also writes), Markdown, an SVG plot, and a side-by-side comparison.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const SCHEMA: &str = "vgg-bench/1";

impl Kernel {
    /// The row's cells as the text and Markdown tables show them: op (with " f16"), layers,
    /// shape, variant (marked " (tuned)", or `default` where it is the default), median ms,
    /// rate, fraction of peak, CPU reference ms, speed-up over it.
    fn cells(&self, default: &str) -> [String; 9] {
        let mark = match (self.tuned, self.is_default) {
            (true, _) => " (tuned)",
            (false, true) => default,
            _ => "",
        };
        [
            format!(
                "{}{}",
                self.op,
                if self.precision == "f16" { " f16" } else { "" }
            ),
            self.layers.clone(),
            self.shape.clone(),
            format!("{}{mark}", self.variant),
            ms(self.median_ms),
            rate(self),
            opt(self.fraction_of_peak, |f| format!("{:.0}%", 100.0 * f)),
            opt(self.cpu_reference_ms, ms),
            opt(self.speedup_vs_cpu, |v| format!("{v:.1}x")),
        ]
    }

    /// Reports written before ops were named `op/pass` (conv3x3, maxpool2x2 backward, ...;
    /// the committed ones and tools/bench_torch.py's of that time) read with today's names,
    /// so `--compare` still pairs them.
    fn rename_old_op(&mut self) {
        let (op, conv) = match self.op.as_str() {
            "conv3x3" => ("conv/forward", "3x3"),
            "conv1x1" => ("conv/forward", "1x1"),
            "conv3x3 dgrad" => ("conv/dgrad", "3x3"),
            "conv3x3 wgrad" => ("conv/wgrad", "3x3"),
            "conv3x3 bias grad" => ("conv/bias_grad", "3x3"),
            "conv1x1 dgrad" => ("conv/dgrad", "1x1"),
            "conv1x1 wgrad" => ("conv/wgrad", "1x1"),
            "conv1x1 bias grad" => ("conv/bias_grad", "1x1"),
            "linear" => ("linear/forward", ""),
            "linear dx" => ("linear/dx", ""),
            "linear dw" => ("linear/dw", ""),
            "maxpool2x2" => ("pool/forward", ""),
            "maxpool2x2 backward" => ("pool/backward", ""),
            "batchnorm+relu" => ("batchnorm/affine", ""),
            "batchnorm train apply" => ("batchnorm/apply", ""),
            "batchnorm backward" => ("batchnorm/backward", ""),
            "lrn" => ("lrn/forward", ""),
            "lrn backward" => ("lrn/backward", ""),
            "adaptive_avgpool" => ("avgpool/forward", ""),
            "im2col" => ("im2col/forward", ""),
            "softmax" => ("softmax/forward", ""),
            "softmax xent" => ("softmax/xent", ""),
            "sgd" => ("optim/sgd", ""),
            "peak_fma" => ("peak/fma", ""),
            "peak_copy" => ("peak/copy", ""),
            _ => return,
        };
        self.op = op.into();
        if !conv.is_empty() {
            self.shape = format!("{conv} {}", self.shape);
        }
    }
}

/// One kernel at one shape.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Kernel {
    /// The op and pass, as the shader folder and the conformance suite name them:
    /// conv/forward, conv/dgrad, pool/forward, linear/dw, peak/fma, ...
    pub op: String,
    /// The model's layers with this shape (conv3_2, conv3_3).
    pub layers: String,
    pub shape: String,
    /// Implementation and tunables.
    pub variant: String,
    pub precision: String,
    pub median_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    pub runs: usize,
    /// "timestamp" (GPU timestamp queries) or "wall".
    pub clock: String,
    /// Floating-point operations and bytes moved (at least) per run.
    pub flops: f64,
    pub bytes: f64,
    pub gflops: Option<f64>,
    pub gbytes_per_s: f64,
    /// GFLOP/s over the measured FMA peak for compute kernels, GB/s over the measured copy
    /// bandwidth for data-movement kernels.
    pub fraction_of_peak: Option<f64>,
    pub cpu_reference_ms: Option<f64>,
    pub speedup_vs_cpu: Option<f64>,
    /// What the executor runs by default on this adapter (before tuning).
    pub is_default: bool,
    /// The configuration `vgg bench --tune` chose for this shape.
    pub tuned: bool,
}

/// The adapter's measured peaks.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Peak {
    pub gflops: f64,
    pub gbytes_per_s: f64,
}

fn f32_name() -> String {
    "f32".into()
}

/// PyTorch's name for the engine's precision in the comparison: true f32 against f32, AMP's
/// fp16 against f16.
fn torch_precision(engine: &str) -> &str {
    match engine {
        "f32" => "fp32",
        "f16" => "amp-fp16",
        other => other,
    }
}

/// A whole network, end to end (upload of the input, forward, readback).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Network {
    pub model: String,
    pub mode: String,
    pub batch: usize,
    pub input: String,
    /// The engine's `f32` / `f16` (tensor storage; f16 operands on tensor cores where the
    /// adapter has them); PyTorch's `fp32`, `tf32`, `amp-fp16`. Reports from before the
    /// field were f32.
    #[serde(default = "f32_name")]
    pub precision: String,
    pub ms_per_batch: f64,
    pub images_per_second: f64,
    pub runs: usize,
    /// The fastest and slowest of the runs, ms: the spread around the median. Reports from
    /// before the fields have none.
    #[serde(default)]
    pub min_ms: Option<f64>,
    #[serde(default)]
    pub max_ms: Option<f64>,
}

impl Network {
    /// The row's cells: model, mode, precision, batch, input, median ms per batch, the runs'
    /// spread, images/s.
    fn cells(&self) -> [String; 8] {
        [
            self.model.clone(),
            self.mode.clone(),
            self.precision.clone(),
            self.batch.to_string(),
            self.input.clone(),
            ms(self.ms_per_batch),
            self.spread(),
            format!("{:.2}", self.images_per_second),
        ]
    }

    /// "min-max ms" of the runs, where the report has them.
    pub fn spread(&self) -> String {
        match (self.min_ms, self.max_ms) {
            (Some(a), Some(b)) => format!("{a:.1}-{b:.1}"),
            _ => "-".into(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Adapter {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub schema: String,
    /// "vgg-wgpu" or, from tools/bench_torch.py, "pytorch".
    pub tool: String,
    pub adapter: Adapter,
    /// UTC date of the run, YYYY-MM-DD.
    pub date: String,
    pub git_commit: String,
    pub model: String,
    pub input: String,
    pub batches: Vec<usize>,
    pub quick: bool,
    pub peak: Option<Peak>,
    pub kernels: Vec<Kernel>,
    pub networks: Vec<Network>,
    /// Why a part is missing (e.g. training, before the engine trains).
    pub notes: Vec<String>,
    /// End-to-end rows that could not run, each with its error; the other rows were still
    /// measured. Reports from before the field have none.
    #[serde(default)]
    pub failures: Vec<String>,
}

fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn rate(k: &Kernel) -> String {
    match k.gflops {
        Some(g) => format!("{g:.2} GFLOP/s"),
        None => format!("{:.2} GB/s", k.gbytes_per_s),
    }
}

fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map(f).unwrap_or_else(|| "-".into())
}

impl Report {
    pub fn save_json(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| crate::io::file_err(path, format!("cannot encode JSON: {e}")))?;
        crate::io::write_atomically(path, text.as_bytes())
    }

    pub fn load_json(path: &Path) -> Result<Report> {
        let text = crate::io::read_text(path, 256 << 20, "a benchmark report")?;
        let mut r: Report = serde_json::from_str(&text).map_err(|e| {
            crate::io::file_err(path, format!("not a {SCHEMA} benchmark report: {e}"))
        })?;
        for k in &mut r.kernels {
            k.rename_old_op();
        }
        Ok(r)
    }

    /// One line per kernel, then the networks.
    pub fn table(&self) -> String {
        let mut s = format!(
            "{} on {} ({}, {}), {}, {} at {} input\n",
            self.tool,
            self.adapter.name,
            self.adapter.backend,
            self.adapter.driver,
            self.date,
            self.model,
            self.input
        );
        if let Some(p) = &self.peak {
            s += &format!(
                "measured peak: {:.2} GFLOP/s (FMA), {:.2} GB/s (copy)\n",
                p.gflops, p.gbytes_per_s
            );
        }
        s += &format!(
            "{:<17} {:<22} {:<30} {:<26} {:>9} {:>6} {:>16} {:>6} {:>9} {:>8}\n",
            "kernel",
            "layers",
            "shape",
            "variant",
            "ms",
            "spread",
            "rate",
            "peak",
            "cpu ms",
            "vs cpu"
        );
        for k in &self.kernels {
            let [op, layers, shape, variant, median, rate, peak, cpu, vs] = k.cells(" *");
            s += &format!(
                "{op:<17} {:<22} {:<30} {:<26} {median:>9} {:>5.0}% {rate:>16} {peak:>6} {cpu:>9} \
                 {vs:>8}\n",
                truncate(&layers, 22),
                truncate(&shape, 30),
                truncate(&variant, 26),
                100.0 * (k.max_ms - k.min_ms) / k.median_ms,
            );
        }
        for n in &self.networks {
            let [model, mode, precision, batch, input, per_batch, runs, rate] = n.cells();
            s += &format!(
                "{model} {mode} {precision} batch {batch} at {input}: {per_batch} ms per batch \
                 (runs {runs} ms), {rate} images/s\n",
            );
        }
        for note in &self.notes {
            s += &format!("note: {note}\n");
        }
        for f in &self.failures {
            s += &format!("FAILED: {f}\n");
        }
        s
    }

    pub fn markdown(&self) -> String {
        let mut s = format!(
            "**{}** on **{}** ({}, {}), {}, commit {}, {} at {}.\n\n",
            self.tool,
            self.adapter.name,
            self.adapter.backend,
            self.adapter.driver,
            self.date,
            self.git_commit,
            self.model,
            self.input
        );
        if let Some(p) = &self.peak {
            s += &format!(
                "Measured peak: {:.2} GFLOP/s (FMA kernel), {:.2} GB/s (copy kernel).\n\n",
                p.gflops, p.gbytes_per_s
            );
        }
        s += "| kernel | layers | shape | variant | median ms | rate | of peak | CPU reference ms | vs CPU |\n";
        s += "|---|---|---|---|---:|---:|---:|---:|---:|\n";
        for k in &self.kernels {
            s += &format!("| {} |\n", k.cells(" (default)").join(" | "));
        }
        if !self.networks.is_empty() {
            s += "\n| network | mode | precision | batch | input | ms per batch (median) | runs, ms | images/s |\n|---|---|---|---:|---|---:|---:|---:|\n";
            for n in &self.networks {
                s += &format!("| {} |\n", n.cells().join(" | "));
            }
        }
        for note in &self.notes {
            s += &format!("\n{note}\n");
        }
        for f in &self.failures {
            s += &format!("\n**Failed:** {f}\n");
        }
        s
    }

    /// Each compute kernel's GFLOP/s against the measured FMA peak, as an SVG bar chart.
    pub fn plot_svg(&self, path: &Path) -> Result<()> {
        use plotters::prelude::*;
        let bars: Vec<(String, f64)> = self
            .kernels
            .iter()
            .filter(|k| k.is_default || k.tuned)
            .filter_map(|k| {
                k.gflops.map(|g| {
                    let name = if k.layers.is_empty() {
                        &k.shape
                    } else {
                        &k.layers
                    };
                    (format!("{} {}", k.op, name), g)
                })
            })
            .filter(|(n, _)| !n.starts_with("peak"))
            .collect();
        let peak = self.peak.as_ref().map_or(0.0, |p| p.gflops);
        let top = bars.iter().map(|b| b.1).fold(peak, f64::max) * 1.1 + 1e-9;
        let err =
            |e: &dyn std::fmt::Display| crate::io::file_err(path, format!("cannot plot: {e}"));
        {
            let root =
                SVGBackend::new(path, (960, 120 + 28 * bars.len() as u32)).into_drawing_area();
            root.fill(&WHITE).map_err(|e| err(&e))?;
            let title = format!(
                "{} on {}: GFLOP/s per layer (line: measured FMA peak {:.1})",
                self.model, self.adapter.name, peak
            );
            let mut chart = ChartBuilder::on(&root)
                .caption(title, ("sans-serif", 18))
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(260)
                .build_cartesian_2d(0.0..top, (0..bars.len()).into_segmented())
                .map_err(|e| err(&e))?;
            let labels: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
            chart
                .configure_mesh()
                .disable_y_mesh()
                .x_desc("GFLOP/s")
                .y_labels(bars.len().max(1))
                .y_label_formatter(&|v| match v {
                    SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
                    _ => String::new(),
                })
                .draw()
                .map_err(|e| err(&e))?;
            chart
                .draw_series(bars.iter().enumerate().map(|(i, (_, g))| {
                    Rectangle::new(
                        [
                            (0.0, SegmentValue::Exact(i)),
                            (*g, SegmentValue::Exact(i + 1)),
                        ],
                        BLUE.mix(0.6).filled(),
                    )
                }))
                .map_err(|e| err(&e))?;
            if peak > 0.0 {
                chart
                    .draw_series(LineSeries::new(
                        [
                            (peak, SegmentValue::Exact(0)),
                            (peak, SegmentValue::Exact(bars.len())),
                        ],
                        RED.stroke_width(2),
                    ))
                    .map_err(|e| err(&e))?;
            }
            root.present().map_err(|e| err(&e))?;
        }
        Ok(())
    }

    /// This report beside another (e.g. PyTorch's), matched by op and shape.
    pub fn compare(&self, other: &Report) -> String {
        let mut s = format!(
            "{:<17} {:<30} {:>12} {:>12} {:>8}\n",
            "kernel",
            "shape",
            truncate(&self.tool, 12),
            truncate(&other.tool, 12),
            "ratio"
        );
        s += &format!(
            "(ms, median; ratio = {} time / {} time, above 1 means {} is faster)\n",
            other.tool, self.tool, self.tool
        );
        let mut matched = 0;
        for k in self.kernels.iter().filter(|k| k.is_default) {
            if let Some(o) = other
                .kernels
                .iter()
                .find(|o| o.op == k.op && o.shape == k.shape && o.precision == k.precision)
            {
                matched += 1;
                s += &format!(
                    "{:<17} {:<30} {:>12} {:>12} {:>7.2}x\n",
                    k.op,
                    truncate(&k.shape, 30),
                    ms(k.median_ms),
                    ms(o.median_ms),
                    o.median_ms / k.median_ms
                );
            }
        }
        for n in &self.networks {
            if let Some(o) = other.networks.iter().find(|o| {
                o.model == n.model
                    && o.batch == n.batch
                    && o.mode == n.mode
                    && o.input == n.input
                    && (o.precision == n.precision || o.precision == torch_precision(&n.precision))
            }) {
                matched += 1;
                s += &format!(
                    "{:<17} {:<30} {:>12} {:>12} {:>7.2}x\n",
                    n.model,
                    format!("{} {} batch {}", n.mode, n.precision, n.batch),
                    ms(n.ms_per_batch),
                    ms(o.ms_per_batch),
                    o.ms_per_batch / n.ms_per_batch
                );
            }
        }
        s += &format!(
            "{} vs {} ({}); {matched} entries matched\n",
            self.adapter.name, other.adapter.name, other.date
        );
        s
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let t: String = s.chars().take(n - 1).collect();
        format!("{t}…")
    }
}

impl From<&crate::gpu::Gpu> for Adapter {
    fn from(g: &crate::gpu::Gpu) -> Adapter {
        let i = g.info();
        Adapter {
            name: i.name.clone(),
            backend: format!("{:?}", i.backend),
            device_type: format!("{:?}", i.device_type),
            driver: format!("{} {}", i.driver, i.driver_info).trim().to_string(),
        }
    }
}

/// Fails when a report lacks what the schema promises (used by tests and `--compare`).
pub fn validate(r: &Report) -> Result<()> {
    let bad = |m: &str| Error::Shape(format!("benchmark report: {m}"));
    if r.schema != SCHEMA {
        return Err(bad(&format!("schema {} is not {SCHEMA}", r.schema)));
    }
    if r.kernels.is_empty() {
        return Err(bad("no kernels"));
    }
    for k in &r.kernels {
        if !(k.median_ms > 0.0 && k.min_ms <= k.median_ms && k.median_ms <= k.max_ms) {
            return Err(bad(&format!("{} {}: inconsistent times", k.op, k.shape)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn today_is_a_date() {
        let d = crate::check::report::today();
        assert_eq!(d.len(), 10);
        assert!(d.starts_with("20"), "{d}");
    }
}
