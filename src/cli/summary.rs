//! `vgg summary`: the layer table, the executor's memory plan and, with --train, the
//! trainer's.

use super::{AdapterArgs, ModelArgs};
use std::process::ExitCode;
use vgg_wgpu::gpu::Precision;
use vgg_wgpu::graph::choice::{Choose, ConvChoice, NodeChoice, Numerics};
use vgg_wgpu::graph::{self, Graph, Limits};
use vgg_wgpu::kernels::conv::{ConvShape, ConvTune};
use vgg_wgpu::model::summary::{bytes as fmt_bytes, thousands};
use vgg_wgpu::model::{Model, Summary, NAMES};
use vgg_wgpu::{Gpu, GpuOptions};

/// The conv configuration plans assume when no adapter is found: the plain variant with
/// its default tunables.
const NO_ADAPTER_TUNE: ConvTune = ConvTune {
    variant: vgg_wgpu::kernels::conv::ConvVariant::Direct,
    wg: 64,
    tm: 8,
};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Batch size to plan for
    #[arg(long, short, default_value_t = 1)]
    pub batch: usize,
    /// List the built-in models and exit
    #[arg(long)]
    pub list: bool,
    /// Also print the training memory plan at this batch (micro-batch) size
    #[arg(long)]
    pub train: bool,
    /// Micro-batches per step, for --train
    #[arg(long, default_value_t = 1)]
    pub accumulate: usize,
    #[command(flatten)]
    pub gpu: AdapterArgs,
}

impl Args {
    pub fn run(self) -> vgg_wgpu::Result<ExitCode> {
        let Args {
            model,
            batch,
            list,
            train,
            accumulate,
            gpu,
        } = self;
        if list {
            for (name, what) in NAMES {
                outln!("{name:<10} {what}")?;
            }
            return Ok(ExitCode::SUCCESS);
        }
        let model = model.build()?;
        summary(&model, batch, &gpu.options())?;
        if train {
            let opts = vgg_wgpu::train::TrainOptions {
                batch,
                accumulate,
                ..Default::default()
            };
            let device = Gpu::new(&gpu.options()).ok();
            // wgpu's default binding limit where no adapter is found.
            let binding = device.as_ref().map_or(128 << 20, |g| g.max_binding_bytes());
            let plan = vgg_wgpu::train::memory_plan(&model, &opts, binding, |at, dx| {
                match &device {
                    Some(g) => Choose {
                        gpu: g,
                        numerics: Numerics::training(opts.precision),
                        conv: None,
                        linear: None,
                    }
                    .node(at, dx),
                    // The buffers depend on the conv configurations alone.
                    None => match at.conv_shape() {
                        Some(_) => NodeChoice::Conv(ConvChoice {
                            forward: NO_ADAPTER_TUNE,
                            dx: dx.then_some(NO_ADAPTER_TUNE),
                        }),
                        None => NodeChoice::Fixed,
                    },
                }
            })?;
            outln!(
                "training memory plan at micro-batch {batch} x {} (every activation kept \
                     for the backward pass):",
                opts.accumulate
            )?;
            for (what, b) in &plan.bytes {
                outln!("  {what:<52} {:>12}", fmt_bytes(*b))?;
            }
            let total: u64 = plan.bytes.iter().map(|p| p.1).sum();
            outln!(
                "  {:<52} {:>12} ({} bytes)",
                "total",
                fmt_bytes(total),
                thousands(total)
            )?;
            if !plan.grouped.is_empty() {
                let groups: Vec<String> = plan
                    .grouped
                    .iter()
                    .map(|(name, size)| format!("{name} ({size})"))
                    .collect();
                outln!(
                    "  run in groups of images (a batch's tensor would pass the {} binding \
                     limit), images per group: {}",
                    fmt_bytes(binding),
                    groups.join(", ")
                )?;
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// The layer table, then the memory plan on the chosen adapter (or, with none found, under
/// wgpu's default limits).
fn summary(model: &Model, batch: usize, opts: &GpuOptions) -> vgg_wgpu::Result<()> {
    let table = Summary { model, batch };
    outln!("{table}")?;
    let gpu = Gpu::new(opts);
    let (limits, tune, budget, on) = match &gpu {
        Ok(g) => {
            let tune = ConvTune::default_for_shape(g, &ConvShape::new(1, 64, 64, 224, 224, 3));
            let weights = graph::weight_bytes(model, Precision::F32, |s| inference(g).conv(s));
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
            let tune = NO_ADAPTER_TUNE;
            (limits, tune, None, format!("wgpu's default limits ({e})"))
        }
    };
    let last = &model.layers()[model.layers().len() - 1].name;
    let g = Graph::build(model, &[last])?;
    let plan = graph::plan::plan(&g, batch, limits, budget)?;
    let weights = match &gpu {
        Ok(g) => graph::weight_bytes(model, Precision::F32, |s| inference(g).conv(s)),
        Err(_) => graph::weight_bytes(model, Precision::F32, |_| tune),
    };
    outln!("planned GPU memory at batch {batch} on {on}:")?;
    outln!(
        "  weights {} (conv weights packed for the kernels each layer runs, {:?} for large \
         3x3 layers, batch norm folded)",
        fmt_bytes(weights),
        tune.variant
    )?;
    outln!(
        "  activations {} in {} reused buffers (the input included; all layer outputs \
         together would take {})",
        fmt_bytes(plan.activation_bytes()),
        plan.slots.len(),
        fmt_bytes(table.activation_bytes())
    )?;
    outln!("  output readback {}", fmt_bytes(plan.readback))?;
    outln!(
        "  total {} ({} bytes)",
        fmt_bytes(weights + plan.bytes()),
        thousands(weights + plan.bytes())
    )?;
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
        outln!("  {first} .. {last}: {} GPU ops {how}", s.nodes.len())?;
    }
    Ok(())
}

/// How `vgg infer` at f32 with no fixed variants chooses on `g`.
fn inference(g: &Gpu) -> Choose<'_> {
    Choose {
        gpu: g,
        numerics: Numerics::inference(Precision::F32),
        conv: None,
        linear: None,
    }
}
