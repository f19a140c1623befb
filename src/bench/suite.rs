//! The whole benchmark: peaks, every kernel at every distinct layer shape of a model,
//! optional tuning, and networks end to end.

use super::report::{self, Adapter, Kernel, Network, Peak, Report};
use super::{ops, time_async, tune, Settings};
use crate::error::Result;
use crate::gpu::{tuning, Gpu, Precision};
use crate::graph::choice::{Choose, Numerics};
use crate::kernels::conv::{ConvShape, ConvTune};
use crate::kernels::linear::{LinearShape, LinearVariant};
use crate::model::{Init, Model, Op, Tensor, Weights};

#[derive(Clone, Debug)]
pub struct Options {
    /// The model whose layer shapes are measured (VGG16 by default), at its input size.
    pub model: Model,
    pub batches: Vec<usize>,
    /// Timed runs per kernel (after one warm-up).
    pub runs: usize,
    /// Fewer runs, default variants only, a smaller network run.
    pub quick: bool,
    /// Time the CPU reference of each op too.
    pub cpu: bool,
    /// Search conv tunables first and store the best in the tuning file.
    pub tune: bool,
    /// Whole networks: these models at batch 1 and at each of `e2e_batch`, in each of
    /// these precisions (f16 where the adapter has shader-f16).
    pub networks: Vec<Model>,
    pub precisions: Vec<Precision>,
    pub e2e_batch: Vec<usize>,
    /// Training steps (forward, backward, SGD; dropout on) of these models at `train_batch`.
    pub training: Vec<Model>,
    pub train_batch: usize,
    /// Time the kernels at every layer shape (off: only the peaks and the end-to-end rows).
    pub kernels: bool,
}

/// One distinct shape of an op, with the layers that have it.
struct Site<T> {
    shape: T,
    layers: Vec<String>,
}

fn collect<T: PartialEq + Copy>(sites: &mut Vec<Site<T>>, shape: T, layer: &str) {
    match sites.iter_mut().find(|s| s.shape == shape) {
        Some(s) => s.layers.push(layer.to_string()),
        None => sites.push(Site {
            shape,
            layers: vec![layer.to_string()],
        }),
    }
}

/// A conv layer's (c_in, c_out, h, w, k).
type ConvSite = (usize, usize, usize, usize, usize);
/// A map's (c, h, w).
type Map = (usize, usize, usize);

/// The distinct per-image shapes of each op in a model, with the layers that have them.
struct Sites {
    convs: Vec<Site<ConvSite>>,
    pools: Vec<Site<Map>>,
    /// (k, n_out).
    fcs: Vec<Site<(usize, usize)>>,
    lrn: (Map, String),
    bn: Vec<Site<Map>>,
    /// The average pool's input and output size.
    avg: Option<(Map, (usize, usize))>,
}

impl Sites {
    /// A model without LRN or batch norm gets them at its first conv's output (the shape
    /// A-LRN's lrn1 and a _bn model's bn1_1 have).
    fn of(m: &Model) -> Sites {
        let (mut convs, mut pools, mut fcs) = (Vec::new(), Vec::new(), Vec::new());
        let (mut lrn, mut bn, mut avg) = (None, Vec::new(), None);
        let mut first_conv_out = None;
        for (i, l) in m.layers().iter().enumerate() {
            let [c, h, w] = l.input;
            match l.op {
                Op::Conv { c_in, c_out, k } => {
                    collect(&mut convs, (c_in, c_out, h, w, k), &l.name);
                    first_conv_out.get_or_insert((c_out, h, w));
                    if let Some(next) = m.layers().get(i + 1) {
                        if matches!(next.op, Op::BatchNorm { .. }) {
                            collect(&mut bn, (c_out, h, w), &next.name);
                        }
                    }
                }
                Op::MaxPool => collect(&mut pools, (c, h, w), &l.name),
                Op::Linear { k, n } => collect(&mut fcs, (k, n), &l.name),
                Op::Lrn(_) => {
                    lrn.get_or_insert(((c, h, w), l.name.clone()));
                }
                Op::AdaptiveAvgPool { h: oh, w: ow } => avg = Some(((c, h, w), (oh, ow))),
                _ => {}
            }
        }
        let first = first_conv_out.unwrap_or((64, 224, 224));
        if bn.is_empty() {
            bn.push(Site {
                shape: first,
                layers: vec!["(a _bn model's bn1_1 shape)".into()],
            });
        }
        Sites {
            convs,
            pools,
            fcs,
            lrn: lrn.unwrap_or((first, "(A-LRN's lrn1 shape)".into())),
            bn,
            avg,
        }
    }
}

/// Prints a finished entry and keeps it.
fn push(out: &mut Vec<Kernel>, k: Kernel, progress: &mut dyn FnMut(&str)) {
    progress(&format!(
        "{:<16} {:<22} {:<30} {:>10.3} ms",
        k.op, k.layers, k.shape, k.median_ms
    ));
    out.push(k);
}

/// Runs the benchmark and returns its report; `progress` gets a line per finished item.
/// Natively it blocks on [`run_async`]; a page, which cannot block, awaits that instead.
pub fn run(gpu: &Gpu, o: &Options, progress: impl FnMut(&str)) -> Result<Report> {
    crate::gpu::blocking(run_async(gpu, o, progress))
}

/// The benchmark as a future: each timing's readbacks (and, in a page, the wall clock's end
/// of the GPU's work) are awaited. Natively `run` blocks on it.
pub async fn run_async(gpu: &Gpu, o: &Options, mut progress: impl FnMut(&str)) -> Result<Report> {
    let progress: &mut dyn FnMut(&str) = &mut progress;
    let set = Settings {
        runs: o.runs,
        cpu: o.cpu,
    };
    let mut kernels: Vec<Kernel> = Vec::new();
    let mut notes = Vec::new();
    let (fma, copy) = ops::peak::peaks(gpu, o.runs.max(5)).await?;
    let peak = Peak {
        gflops: fma.gflops.unwrap_or(0.0),
        gbytes_per_s: copy.gbytes_per_s,
    };
    push(&mut kernels, fma, progress);
    push(&mut kernels, copy, progress);
    let m = &o.model;
    let sites = Sites::of(m);
    let tuning = tuned(gpu, o, &sites, &mut notes, progress).await?;
    for &b in o.batches.iter().filter(|_| o.kernels) {
        let mut at = Batch {
            gpu,
            o,
            sites: &sites,
            b,
            set,
            out: &mut kernels,
            progress: &mut *progress,
        };
        at.forward(&tuning, &mut notes).await?;
        at.backward().await?;
        if !o.quick && gpu.features().contains(wgpu::Features::SHADER_F16) {
            at.f16().await?;
        }
    }
    for k in &mut kernels {
        k.fraction_of_peak = match k.gflops {
            Some(g) if peak.gflops > 0.0 => Some(g / peak.gflops),
            None if peak.gbytes_per_s > 0.0 => Some(k.gbytes_per_s / peak.gbytes_per_s),
            _ => None,
        };
    }
    let (networks, failures) = networks(gpu, o, progress).await?;
    let [c, h, w] = m.input_dims();
    Ok(Report {
        schema: report::SCHEMA.into(),
        tool: "vgg-wgpu".into(),
        adapter: Adapter::from(gpu),
        date: crate::check::report::today(),
        git_commit: crate::check::report::git_commit(),
        model: m.name().into(),
        input: format!("{c}x{h}x{w}"),
        batches: o.batches.clone(),
        quick: o.quick,
        peak: Some(peak),
        kernels,
        networks,
        notes,
        failures,
    })
}

/// The tuning file, after `--tune` searched every conv shape's configurations and every FC
/// shape's variants at the first batch size and stored the best (the networks timed later
/// select by it).
async fn tuned(
    gpu: &Gpu,
    o: &Options,
    sites: &Sites,
    notes: &mut Vec<String>,
    progress: &mut dyn FnMut(&str),
) -> Result<tuning::TuningFile> {
    let tuning_path = tuning::default_path();
    let mut tuning = match &tuning_path {
        Some(p) => tuning::TuningFile::load(p)?,
        None => tuning::TuningFile::default(),
    };
    if !o.tune {
        return Ok(tuning);
    }
    let b = o.batches[0];
    for site in &sites.convs {
        let (ci, co, h, w, k) = site.shape;
        let s = ConvShape::new(b, ci, co, h, w, k);
        progress(&format!(
            "tuning {} ({})",
            site.layers.join(", "),
            s.tuning_key()
        ));
        let (best, _) = tune::search(gpu, s, o.runs.clamp(3, 5), &mut *progress).await?;
        progress(&format!(
            "  best {}/wg{}/tm{}: {:.3} ms (default {:.3} ms)",
            best.variant, best.wg, best.tm, best.median_ms, best.default_ms
        ));
        tuning
            .adapters
            .entry(tuning::adapter_key(gpu))
            .or_default()
            .conv
            .insert(s.tuning_key(), best);
    }
    for site in &sites.fcs {
        let (k, n_out) = site.shape;
        let s = LinearShape { m: b, k, n_out };
        let default = LinearVariant::default_for(gpu);
        let set = Settings {
            runs: o.runs.clamp(3, 5),
            cpu: false,
        };
        // Every f32 FC variant is a finalist (there are two), the default first; the
        // f16-operand ones are chosen by precision, not by the tuning file.
        let finalists: Vec<LinearVariant> = std::iter::once(default)
            .chain(
                LinearVariant::offered(gpu)
                    .into_iter()
                    .filter(|v| *v != default && !v.f16_operands()),
            )
            .collect();
        let c = tune::confirm(finalists.len(), async |i| {
            let k = ops::linear::forward(gpu, s, Precision::F32, finalists[i], set).await?;
            Ok(k.median_ms)
        })
        .await?;
        let best = finalists[c.kept];
        let ms = |v: LinearVariant| {
            let i = finalists.iter().position(|f| *f == v).unwrap_or(0);
            c.medians[i]
        };
        progress(&format!(
            "tuning {} ({}): kept {:?} {:.3} ms (default {:.3} ms, spread {:.3} ms)",
            site.layers.join(", "),
            s.tuning_key(),
            best,
            ms(best),
            ms(default),
            c.spread
        ));
        let entry = tuning::TunedLinear {
            variant: best.name(),
            median_ms: ms(best),
            default_ms: ms(default),
        };
        tuning
            .adapters
            .entry(tuning::adapter_key(gpu))
            .or_default()
            .linear
            .insert(s.tuning_key(), entry);
    }
    if let Some(p) = &tuning_path {
        tuning.save(p)?;
        notes.push(format!("tuning saved to {}", p.display()));
    }
    gpu.set_tuning(tuning.clone());
    Ok(tuning)
}

/// The kernel entries at one batch size.
struct Batch<'a, 'p> {
    gpu: &'a Gpu,
    o: &'a Options,
    sites: &'a Sites,
    b: usize,
    set: Settings,
    out: &'a mut Vec<Kernel>,
    progress: &'a mut (dyn FnMut(&str) + 'p),
}

impl Batch<'_, '_> {
    /// Whether a tensor of `elems` f32 fits one binding (the executor splits larger
    /// batches; the kernels alone cannot).
    fn fits(&self, elems: usize) -> bool {
        (elems * 4) as u64 <= self.gpu.max_binding_bytes()
    }

    fn keep(&mut self, mut k: Kernel, layers: String) {
        k.layers = layers;
        push(self.out, k, self.progress);
    }

    fn conv_shape(&self, site: &Site<ConvSite>) -> ConvShape {
        let (ci, co, h, w, k) = site.shape;
        ConvShape::new(self.b, ci, co, h, w, k)
    }

    /// Every forward kernel: conv (each variant, or the default with --quick, and the
    /// tuned one), pool, batch norm, LRN, the average pool and dense im2col, FC, softmax.
    async fn forward(
        &mut self,
        tuning: &tuning::TuningFile,
        notes: &mut Vec<String>,
    ) -> Result<()> {
        let (gpu, o, sites, b, set) = (self.gpu, self.o, self.sites, self.b, self.set);
        for site in &sites.convs {
            let s = self.conv_shape(site);
            if !self.fits(s.input_len().max(s.output_len())) {
                notes.push(format!(
                    "{} at batch {b} skipped: a tensor passes the binding limit (the executor \
                     splits such batches)",
                    site.layers.join(", ")
                ));
                continue;
            }
            let default = ConvTune::default_for_shape(gpu, &s);
            let tuned = tuning
                .conv(gpu, &s.tuning_key())
                .and_then(ConvTune::from_tuned);
            let mut tunes: Vec<ConvTune> = if o.quick {
                vec![default]
            } else {
                // f16-operand variants are timed in the f16 rows, at the precision that
                // selects them.
                ConvTune::variants_for(gpu)
                    .into_iter()
                    .filter(|t| t.variant.spec().kernels.contains(&s.k))
                    .filter(|t| !t.variant.f16_operands())
                    .collect()
            };
            if let Some(t) = tuned.filter(|t| !tunes.contains(t)) {
                tunes.push(t);
            }
            for t in tunes {
                let mut k = ops::conv::forward(gpu, s, Some(t), Precision::F32, set).await?;
                k.tuned = Some(t) == tuned;
                self.keep(k, site.layers.join(", "));
            }
        }
        for site in &sites.pools {
            let (c, h, w) = site.shape;
            if self.fits(b * c * h * w) {
                let k = ops::pool::forward(gpu, (b, c, h, w), set).await?;
                self.keep(k, site.layers.join(", "));
            }
        }
        for site in &sites.bn {
            let (c, h, w) = site.shape;
            if self.fits(b * c * h * w) {
                let k = ops::batchnorm::affine(gpu, (b, c, h, w), set).await?;
                self.keep(k, site.layers.join(", "));
            }
        }
        let ((c, h, w), name) = &sites.lrn;
        if self.fits(b * c * h * w) {
            let k = ops::lrn::forward(gpu, (b, *c, *h, *w), set).await?;
            self.keep(k, name.clone());
        }
        if let Some(((c, h, w), out)) = sites.avg {
            let k = ops::avgpool::forward(gpu, (b, c, h, w), out, set).await?;
            self.keep(k, "avgpool".into());
            let k = ops::avgpool::backward(gpu, (b, c, h, w), out, set).await?;
            self.keep(k, "avgpool (training)".into());
            // Dense evaluation of an image 5 positions larger each way than the training size.
            let k = ops::im2col::forward(gpu, (b, c, out.0 + 5, out.1 + 5), out, set).await?;
            self.keep(k, "dense fc6 windows".into());
        }
        let linear_variants = if o.quick {
            vec![LinearVariant::default_for(gpu)]
        } else {
            // f16-operand variants are timed in the f16 rows.
            LinearVariant::offered(gpu)
                .into_iter()
                .filter(|v| !v.f16_operands())
                .collect()
        };
        for site in &sites.fcs {
            let (k, n_out) = site.shape;
            for &v in &linear_variants {
                let s = LinearShape { m: b, k, n_out };
                let e = ops::linear::forward(gpu, s, Precision::F32, v, set).await?;
                self.keep(e, site.layers.join(", "));
            }
        }
        let k = ops::softmax::forward(gpu, b, o.model.classes(), set).await?;
        self.keep(k, "prob".into());
        Ok(())
    }

    /// Backward and training kernels at every distinct conv and FC shape, the small ones
    /// (pool, LRN, batch norm, ReLU, loss, SGD, the overflow check) at the first pool's
    /// input, and dropout at the first FC layer's output.
    async fn backward(&mut self) -> Result<()> {
        let (gpu, o, sites, b, set) = (self.gpu, self.o, self.sites, self.b, self.set);
        // What `vgg train` chooses at f32.
        let choose = Choose {
            gpu,
            numerics: Numerics::training(Precision::F32),
            conv: None,
            linear: None,
        };
        for site in &sites.convs {
            let s = self.conv_shape(site);
            if self.fits(s.input_len().max(s.output_len())) {
                for e in ops::conv::backward(gpu, s, set).await? {
                    self.keep(e, site.layers.join(", "));
                }
                let e = ops::conv::pack(gpu, s, choose.conv(s), Precision::F32, set).await?;
                self.keep(e, site.layers.join(", "));
            }
        }
        for site in &sites.fcs {
            let (k, n_out) = site.shape;
            // The backward of a weight over one binding runs per chunk in training.
            if self.fits(k * n_out) {
                for e in ops::linear::backward(gpu, LinearShape { m: b, k, n_out }, set).await? {
                    self.keep(e, site.layers.join(", "));
                }
            }
        }
        let Some(site) = sites.pools.first() else {
            return Ok(());
        };
        let (c, h, w) = site.shape;
        // SGD over the largest conv weight (the step runs once per weight tensor).
        let params = sites
            .convs
            .iter()
            .map(|s| s.shape.0 * s.shape.1 * s.shape.4 * s.shape.4)
            .max()
            .unwrap_or(1);
        if self.fits(b * c * h * w) {
            let d = (b, c, h, w);
            let first = "(the first conv's output)".to_string();
            let rows = [
                (ops::lrn::backward(gpu, d, set).await?, first.clone()),
                (ops::batchnorm::apply(gpu, d, set).await?, first.clone()),
                (ops::batchnorm::backward(gpu, d, set).await?, first.clone()),
                (
                    ops::elementwise::relu_backward(gpu, b * c * h * w, set).await?,
                    first.clone(),
                ),
                (
                    ops::pool::backward(gpu, d, set).await?,
                    site.layers.join(", "),
                ),
                (
                    ops::softmax::xent(gpu, b, o.model.classes(), set).await?,
                    "loss".into(),
                ),
                (
                    ops::optim::sgd(gpu, params, set).await?,
                    "largest conv weight".into(),
                ),
                (
                    ops::optim::overflow(gpu, params, set).await?,
                    "largest conv weight".into(),
                ),
            ];
            for (e, layers) in rows {
                self.keep(e, layers);
            }
        }
        // Dropout follows the first FC layer, as in VGG.
        if let Some(fc) = sites.fcs.first() {
            let e = ops::elementwise::dropout(gpu, b * fc.shape.1, set).await?;
            self.keep(e, fc.layers.join(", "));
        }
        Ok(())
    }

    /// f16 storage at the most expensive conv (at every conv where the adapter has tensor
    /// cores: the variant f16 selects there is another kernel) and the largest FC layer,
    /// each in what the selector picks for f16.
    async fn f16(&mut self) -> Result<()> {
        let (gpu, sites, b, set) = (self.gpu, self.sites, self.b, self.set);
        let costly = sites
            .convs
            .iter()
            .max_by_key(|s| s.shape.0 * s.shape.1 * s.shape.2 * s.shape.3 * s.shape.4);
        let convs: Vec<_> = if gpu.cooperative_matrix() {
            sites.convs.iter().collect()
        } else {
            costly.into_iter().collect()
        };
        // What `vgg infer --precision f16` chooses.
        let choose = Choose {
            gpu,
            numerics: Numerics::inference(Precision::F16),
            conv: None,
            linear: None,
        };
        for site in convs {
            let s = self.conv_shape(site);
            if self.fits(s.input_len().max(s.output_len())) {
                let t = choose.conv(s);
                let mut e = ops::conv::forward(gpu, s, Some(t), Precision::F16, set).await?;
                e.is_default = true;
                self.keep(e, site.layers.join(", "));
                let e = ops::conv::pack(gpu, s, t, Precision::F16, set).await?;
                self.keep(e, site.layers.join(", "));
            }
        }
        let fcs: Vec<_> = if gpu.cooperative_matrix() {
            sites.fcs.iter().collect()
        } else {
            sites
                .fcs
                .iter()
                .max_by_key(|s| s.shape.0 * s.shape.1)
                .into_iter()
                .collect()
        };
        for site in fcs {
            let (k, n_out) = site.shape;
            let s = LinearShape { m: b, k, n_out };
            let v = choose.linear(s);
            let e = ops::linear::forward(gpu, s, Precision::F16, v, set).await?;
            self.keep(e, site.layers.join(", "));
        }
        Ok(())
    }
}

/// The whole networks at batch 1 and each of `e2e_batch`, then the training steps.
/// A row that fails (a batch past the adapter's limits, a kernel the driver rejects) is
/// returned with its error, and the others still run: one report keeps all that could be
/// measured. A lost device ends the rows.
async fn networks(
    gpu: &Gpu,
    o: &Options,
    progress: &mut dyn FnMut(&str),
) -> Result<(Vec<Network>, Vec<String>)> {
    let mut networks = Vec::new();
    let mut failures = Vec::new();
    let mut row = |what: String, r: Result<Network>, progress: &mut dyn FnMut(&str)| match r {
        Ok(n) => {
            progress(&format!(
                "{what}: {:.1} ms, {:.2} images/s",
                n.ms_per_batch, n.images_per_second
            ));
            Some(n)
        }
        Err(e) => {
            progress(&format!("{what}: FAILED: {e}"));
            failures.push(format!("{what}: {e}"));
            None
        }
    };
    let f16_ok = gpu.features().contains(wgpu::Features::SHADER_F16);
    for &p in o
        .precisions
        .iter()
        .filter(|p| **p == Precision::F32 || f16_ok)
    {
        let name = format!("{p:?}").to_lowercase();
        for net in &o.networks {
            for &b in std::iter::once(&1).chain(&o.e2e_batch) {
                if b == 0
                    || networks.iter().any(|n: &Network| {
                        n.model == net.name() && n.batch == b && n.precision == name
                    })
                {
                    continue;
                }
                if gpu.is_lost() {
                    break;
                }
                let what = format!("{} {name} batch {b}", net.name());
                let r = network(gpu, net, b, o.runs.clamp(1, 3), p).await;
                networks.extend(row(what, r, progress));
            }
        }
    }
    for &p in o
        .precisions
        .iter()
        .filter(|p| **p == Precision::F32 || f16_ok)
    {
        for net in &o.training {
            if gpu.is_lost() {
                break;
            }
            let what = format!(
                "{} {} training step at batch {}",
                net.name(),
                format!("{p:?}").to_lowercase(),
                o.train_batch
            );
            let r = training_step(gpu, net, o.train_batch, o.runs.clamp(1, 3), p).await;
            networks.extend(row(what, r, progress));
        }
    }
    if gpu.is_lost() {
        failures.push("the device was lost: the rows after it did not run".into());
    }
    Ok((networks, failures))
}

/// Checks that a batch of `batch` inputs of `model` fits the adapter's buffers before the
/// bench draws it on the host (a batch from the command line could ask for terabytes).
fn check_batch(gpu: &Gpu, model: &Model, batch: usize) -> Result<()> {
    let per: usize = model.input_dims().iter().product();
    let bytes = batch.checked_mul(per).and_then(|e| e.checked_mul(4));
    let max = gpu.limits().max_buffer_size;
    match bytes {
        Some(b) if b as u64 <= max => Ok(()),
        _ => Err(crate::Error::InvalidOption {
            option: "batch".into(),
            message: format!(
                "{batch} inputs of {} floats pass the adapter's {max}-byte buffer limit",
                per
            ),
        }),
    }
}

/// Seeded Kaiming weights for `model` and a batch of `batch` inputs uniform in [-1, 1)
/// drawn from `seed`, once the batch is known to fit the adapter's buffers.
fn seeded(gpu: &Gpu, model: &Model, batch: usize, seed: u64) -> Result<(Weights, Tensor)> {
    check_batch(gpu, model, batch)?;
    let [c, h, w] = model.input_dims();
    let data = crate::check::TensorRng::new(seed).uniform(batch * c * h * w);
    let x = Tensor::new(vec![batch, c, h, w], data)?;
    Ok((Weights::init(model, Init::Kaiming, 0), x))
}

/// One network end to end with seeded weights: the median wall time of `runs` forwards
/// after a first one that plans, allocates and compiles.
async fn network(
    gpu: &Gpu,
    model: &Model,
    batch: usize,
    runs: usize,
    precision: Precision,
) -> Result<Network> {
    let (weights, x) = seeded(gpu, model, batch, 1)?;
    let opts = crate::graph::NetworkOptions {
        precision,
        ..Default::default()
    };
    let mut net = crate::graph::Network::with_options(gpu, model, &weights, opts)?;
    drop(weights);
    net.forward_async(&x).await?;
    let t = time_async(runs, async || net.forward_async(&x).await).await?;
    Ok(network_row(model, "inference", batch, precision, &t))
}

/// A network row of `mode` from the timing of its runs.
fn network_row(
    model: &Model,
    mode: &str,
    batch: usize,
    precision: Precision,
    t: &crate::bench::Timing,
) -> Network {
    let [c, h, w] = model.input_dims();
    Network {
        model: model.name().into(),
        mode: mode.into(),
        batch,
        input: format!("{c}x{h}x{w}"),
        precision: format!("{precision:?}").to_lowercase(),
        ms_per_batch: t.median_s * 1e3,
        images_per_second: batch as f64 / t.median_s,
        runs: t.runs,
        min_ms: Some(t.min_s * 1e3),
        max_ms: Some(t.max_s * 1e3),
    }
}

/// One training step end to end (upload of the batch, forward, loss, backward, SGD,
/// readback of the losses): the median of `runs` steps after a first one. `precision` is
/// the multiply operands' (`TrainOptions::precision`: f16 is mixed precision with loss
/// scaling).
async fn training_step(
    gpu: &Gpu,
    model: &Model,
    batch: usize,
    runs: usize,
    precision: Precision,
) -> Result<Network> {
    let (weights, x) = seeded(gpu, model, batch, 2)?;
    let opts = crate::train::TrainOptions {
        batch,
        precision,
        ..Default::default()
    };
    let mut t = crate::train::Trainer::new(gpu, model, &weights, opts)?;
    drop(weights);
    let labels: Vec<u32> = (0..batch).map(|i| (i % model.classes()) as u32).collect();
    t.step_async(&x, &labels, 0.01).await?;
    let tm = time_async(runs, async || t.step_async(&x, &labels, 0.01).await).await?;
    Ok(network_row(model, "training", batch, precision, &tm))
}

/// The default options: VGG16's shapes at 224x224, batch 1, 10 runs, the CPU reference,
/// vgg11/16/19 end to end at batch 1 and 8, and a vgg11 training step at batch 2. `quick`
/// shrinks all of it to finish within a minute on a CPU driver: 32x32 input, 3 runs,
/// default variants, one network.
pub fn default_options(model: Model, quick: bool) -> Result<Options> {
    let runs = if quick { 3 } else { 10 };
    let (model, networks, training) = if quick {
        let m = if model.config().input == (224, 224) {
            model.with_input(model.config().in_channels, 32, 32)?
        } else {
            model
        };
        // Training has no backward for an upsampling average pool (1x1 to 7x7 at 32x32).
        let t = m.with_avgpool(None)?;
        (m.clone(), vec![m], vec![t])
    } else {
        let nets = vec![Model::vgg11(), Model::vgg16(), Model::vgg19()];
        (model, nets, vec![Model::vgg11()])
    };
    Ok(Options {
        model,
        batches: vec![1],
        runs,
        quick,
        cpu: true,
        tune: false,
        networks,
        precisions: vec![Precision::F32],
        e2e_batch: vec![if quick { 2 } else { 8 }],
        training,
        train_batch: 2,
        kernels: true,
    })
}
