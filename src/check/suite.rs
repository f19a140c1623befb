//! The conformance suite behind `vgg check`: every forward and backward kernel at a fixed
//! set of shapes with the edge cases (1x1 spatial, odd sizes, channel counts off every
//! tile, tensors over the binding limit, grids over 65535 workgroups in a dimension), a
//! whole-network forward and one training step, each against the CPU reference, each run
//! twice to check that the same input gives the same bits.

use super::{backward as bw, Determinism, Outcome, TensorRng, F32_NETWORK_TOL};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Precision};
use crate::kernels::conv::ConvShape;
use crate::kernels::linear::LinearShape;
use crate::model::{Model, Op};
use crate::reference;
use crate::train::{TrainOptions, Trainer};
use crate::{Init, Network, NetworkOptions, Tensor, Weights};
use std::time::Instant;

/// Which cases of the table run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// One or two cases of every kernel and pass at small shapes (every conv and FC
    /// variant the adapter offers, each backward), one network and one training step:
    /// what a new user runs first, about a minute on lavapipe with a cold shader cache.
    Quick,
    /// Every case at the suite's shapes: the edge cases (odd sizes, 1x1, channel counts
    /// off every tile, grids past 65535 workgroups, tensors over the binding limit).
    Standard,
    /// The standard cases and the full-size ones: VGG16's 392 MiB first FC layer (split
    /// over bindings where the adapter needs it) and the whole VGG16 at 224x224.
    Full,
}

/// How to run the suite.
#[derive(Clone, Debug)]
pub struct SuiteOptions {
    pub seed: u64,
    /// Which cases run [default: Standard, what the tests run per op].
    pub scope: Scope,
    /// Run each case a second time on the same input and require the same bits.
    pub determinism: bool,
    /// A case slower than this (seconds, reference included) is reported as slow.
    pub slow_seconds: f64,
    /// Only the ops whose name starts with this (`conv`, `pool/backward`).
    pub only: Option<String>,
    /// Only the cases of this precision: `F16` for what `--precision f16` runs (f16
    /// storage, the f16-operand kernels, an f16 network and training step), `F32` for the
    /// rest [default: both].
    pub precision: Option<Precision>,
}

impl Default for SuiteOptions {
    fn default() -> Self {
        SuiteOptions {
            seed: 0,
            scope: Scope::Standard,
            determinism: true,
            slow_seconds: 30.0,
            only: None,
            precision: None,
        }
    }
}

/// A check the adapter cannot run, and why.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Skipped {
    pub op: String,
    pub reason: String,
}

type Run<'a> = Box<dyn Fn(u64) -> Result<Vec<Outcome>> + 'a>;

/// One entry of the suite: a case to run, or one skipped on this adapter.
pub enum Case<'a> {
    Run {
        op: String,
        shape: String,
        run: Run<'a>,
        /// Checks what f16 runs: f16 storage or f16 operands.
        f16: bool,
        /// One of the quick set (`Scope::Quick`).
        quick: bool,
    },
    Skip(Skipped),
}

impl Case<'_> {
    /// Marks the case as one of f16 (`SuiteOptions::precision`).
    pub(super) fn f16(mut self) -> Self {
        self.mark_f16();
        self
    }

    /// Puts the case in the quick set (`Scope::Quick`).
    pub(super) fn quick(mut self) -> Self {
        if let Case::Run { quick, .. } = &mut self {
            *quick = true;
        }
        self
    }

    /// The quick set's when `first` (the first of a loop's cases, say).
    pub(super) fn quick_if(self, first: bool) -> Self {
        match first {
            true => self.quick(),
            false => self,
        }
    }

    pub(super) fn mark_f16(&mut self) {
        if let Case::Run { f16, .. } = self {
            *f16 = true;
        }
    }

    /// Whether it checks what f16 runs; a skipped case, whether its name says f16.
    pub fn is_f16(&self) -> bool {
        match self {
            Case::Run { f16, .. } => *f16,
            Case::Skip(s) => s.op.contains("f16"),
        }
    }
}

pub(super) fn case<'a>(
    op: &str,
    shape: &str,
    f: impl Fn(u64) -> Result<Vec<Outcome>> + 'a,
) -> Case<'a> {
    Case::Run {
        op: op.into(),
        shape: shape.into(),
        run: Box::new(f),
        f16: false,
        quick: false,
    }
}

pub(super) fn one<'a>(op: &str, shape: &str, f: impl Fn(u64) -> Result<Outcome> + 'a) -> Case<'a> {
    case(op, shape, move |s| f(s).map(|o| vec![o]))
}

pub(super) fn skip<'a>(op: &str, reason: impl Into<String>) -> Case<'a> {
    Case::Skip(Skipped {
        op: op.into(),
        reason: reason.into(),
    })
}

pub(super) fn cs(n: usize, c_in: usize, c_out: usize, h: usize, w: usize, k: usize) -> ConvShape {
    ConvShape::new(n, c_in, c_out, h, w, k)
}

pub(super) fn ls(m: usize, k: usize, n_out: usize) -> LinearShape {
    LinearShape { m, k, n_out }
}

/// The ops of the table, in its order: a case's name is one of these, `/`, its pass.
pub const OPS: [&str; 12] = [
    "conv",
    "pool",
    "linear",
    "batchnorm",
    "lrn",
    "softmax",
    "avgpool",
    "im2col",
    "elementwise",
    "optim",
    "network",
    "train",
];

/// Every case's name, `op/pass` (tests/ops.rs checks that the table holds exactly these;
/// a case's outcomes may name finer passes, as conv/backward's conv/dgrad and conv/wgrad):
/// what `vgg check --op` matches against, and lists when nothing matches.
pub const PASSES: [&str; 23] = [
    "conv/forward",
    "conv/pack",
    "conv/backward",
    "pool/forward",
    "pool/backward",
    "linear/forward",
    "linear/backward",
    "batchnorm/affine",
    "batchnorm/fold",
    "batchnorm/train",
    "lrn/forward",
    "lrn/backward",
    "softmax/forward",
    "softmax/xent",
    "avgpool/forward",
    "avgpool/backward",
    "im2col/forward",
    "elementwise/relu_backward",
    "elementwise/dropout",
    "optim/sgd",
    "optim/overflow",
    "network/forward",
    "train/step",
];

/// The suite for `gpu`: cases that need a feature the adapter lacks come back as skipped.
/// This one table is what `vgg check` runs and what `cargo test` runs per op (tests/ops.rs),
/// so a case added here runs in both. Each case's name is its op and pass (`conv/forward`,
/// `pool/backward`), as the shader folder, the kernels module and the reference name them;
/// `opts.only` keeps the ops whose name starts with it.
pub fn cases<'a>(gpu: &'a Gpu, opts: &SuiteOptions) -> Vec<Case<'a>> {
    let all = [
        super::conv::cases(gpu),
        super::linear::cases(gpu, opts),
        small_op_cases(gpu),
        backward_cases(gpu),
        network_cases(gpu, opts),
    ];
    all.into_iter()
        .flatten()
        .filter(|c| {
            let op = match c {
                Case::Run { op, .. } => op,
                Case::Skip(s) => &s.op,
            };
            let quick = match c {
                Case::Run { quick, .. } => *quick,
                // What the adapter lacks is said whatever the scope.
                Case::Skip(_) => true,
            };
            opts.only.as_deref().is_none_or(|o| op.starts_with(o))
                && (quick || opts.scope != Scope::Quick)
                && opts
                    .precision
                    .is_none_or(|p| c.is_f16() == (p == Precision::F16))
        })
        .collect()
}

/// The forward passes of pool, softmax, lrn, batchnorm (the affine map, and folded into a
/// conv), avgpool and im2col.
fn small_op_cases(gpu: &Gpu) -> Vec<Case<'_>> {
    use super::{adaptive_pool, batchnorm, batchnorm_folded, im2col, lrn, maxpool, softmax};
    let mut v = Vec::new();
    // The quick set takes each op's first case (avgpool's overlapping bins).
    for (i, d) in [(1, 3, 13, 15), (3, 5, 7, 7), (2, 4, 2, 2), (1, 2, 3, 2)]
        .into_iter()
        .enumerate()
    {
        v.push(one("pool/forward", "", move |s| maxpool(gpu, d, s)).quick_if(i == 0));
    }
    // 4.26M and 3 x 128 x 112 x 112 outputs in 64-lane workgroups: 66.5k and 75k workgroups.
    for d in [(1, 17, 1000, 1002), (3, 128, 224, 224)] {
        v.push(one("pool/forward", "grid over 65535", move |s| {
            maxpool(gpu, d, s)
        }));
    }
    // 70000 rows: one workgroup per row.
    for (i, (r, c)) in [(1, 1000), (3, 1000), (2, 7), (5, 1), (70_000, 3)]
        .into_iter()
        .enumerate()
    {
        v.push(one("softmax/forward", "", move |s| softmax(gpu, r, c, s)).quick_if(i == 0));
    }
    for (i, d) in [
        (1, 3, 13, 15),
        (3, 7, 7, 7),
        (2, 64, 1, 1),
        (1, 2, 5, 5),
        (2, 9, 1, 1),
    ]
    .into_iter()
    .enumerate()
    {
        v.push(one("lrn/forward", "", move |s| lrn(gpu, d, s)).quick_if(i == 0));
    }
    for (i, d) in [(3, 13, 13, 15), (1, 3, 7, 7), (2, 5, 1, 1)]
        .into_iter()
        .enumerate()
    {
        for relu in [false, true] {
            v.push(
                one("batchnorm/affine", "", move |s| batchnorm(gpu, d, relu, s))
                    .quick_if(i == 0 && relu),
            );
        }
    }
    for (i, c) in [
        cs(2, 3, 13, 13, 15, 3),
        cs(3, 8, 20, 7, 7, 3),
        cs(1, 5, 6, 1, 1, 3),
    ]
    .into_iter()
    .enumerate()
    {
        v.push(one("batchnorm/fold", "", move |s| batchnorm_folded(gpu, c, s)).quick_if(i == 0));
    }
    for (i, (d, o)) in [
        ((1, 8, 7, 7), (7, 7)),     // identity, as at 224x224 input
        ((3, 5, 13, 15), (7, 7)),   // overlapping bins
        ((2, 4, 1, 1), (7, 7)),     // replication
        ((1, 2, 224, 224), (7, 7)), // large bins
        ((1, 3, 10, 9), (3, 4)),
    ]
    .into_iter()
    .enumerate()
    {
        v.push(one("avgpool/forward", "", move |s| adaptive_pool(gpu, d, o, s)).quick_if(i == 1));
    }
    for (i, (d, win)) in [
        ((2, 5, 9, 11), (7, 7)),
        ((1, 3, 7, 7), (7, 7)),
        ((3, 2, 4, 5), (2, 3)),
        ((1, 16, 12, 12), (1, 1)),
    ]
    .into_iter()
    .enumerate()
    {
        v.push(one("im2col/forward", "", move |s| im2col(gpu, d, win, s)).quick_if(i == 0));
    }
    v
}

/// The backward and training kernels of every op. Reductions over n*h*w positions sum in
/// f32 in another order than the reference's f64; these shapes stay within the kernel
/// tolerance.
fn backward_cases(gpu: &Gpu) -> Vec<Case<'_>> {
    let mut v = super::conv::backward_cases(gpu);
    // The quick set takes each op's first case.
    for (i, d) in [(2, 3, 7, 5), (1, 4, 8, 8), (3, 2, 3, 2)]
        .into_iter()
        .enumerate()
    {
        v.push(one("pool/backward", "", move |s| bw::maxpool(gpu, d, s)).quick_if(i == 0));
    }
    // 4.2M elements: 65.6k workgroups of 64.
    for (i, len) in [1001, 4_200_000].into_iter().enumerate() {
        v.push(
            one("elementwise/relu_backward", "", move |s| {
                bw::relu(gpu, len, s)
            })
            .quick_if(i == 0),
        );
    }
    for (i, p) in [0.5, 0.1].into_iter().enumerate() {
        v.push(
            one("elementwise/dropout", "", move |s| {
                bw::dropout(gpu, 1003, p, s)
            })
            .quick_if(i == 0),
        );
    }
    v.extend(super::linear::backward_cases(gpu));
    v.extend([
        case("optim/sgd", "", |s| bw::sgd(gpu, 1003, s)).quick(),
        case("optim/overflow", "", |s| bw::overflow(gpu, 70001, s)).quick(),
    ]);
    for (i, (r, c)) in [(3, 10), (7, 1000), (2, 3)].into_iter().enumerate() {
        v.push(case("softmax/xent", "", move |s| bw::softmax_xent(gpu, r, c, s)).quick_if(i == 0));
    }
    for (i, d) in [(2, 7, 3, 5), (1, 64, 4, 4), (2, 3, 1, 1)]
        .into_iter()
        .enumerate()
    {
        v.push(one("lrn/backward", "", move |s| bw::lrn(gpu, d, s)).quick_if(i == 0));
    }
    // Windows that overlap (13 -> 7, 5 -> 3), that repeat one input (1x1 -> 7x7, a VGG at
    // 32x32), that split unevenly (2 -> 7), and the identity.
    let pools = [
        ((2, 3, 13, 5), (7, 3)),
        ((3, 5, 1, 1), (7, 7)),
        ((1, 4, 2, 9), (7, 4)),
        ((2, 2, 14, 14), (7, 7)),
        ((1, 3, 4, 4), (4, 4)),
    ];
    for (i, (d, o)) in pools.into_iter().enumerate() {
        v.push(one("avgpool/backward", "", move |s| bw::avgpool(gpu, d, o, s)).quick_if(i == 0));
    }
    // At least 4 values per channel: with 2, batch norm maps them to +-1 whatever they are,
    // dx cancels to ~1e-7, and a relative comparison measures only rounding.
    for (i, d) in [(3, 5, 7, 3), (4, 16, 1, 1), (1, 3, 9, 11)]
        .into_iter()
        .enumerate()
    {
        v.push(case("batchnorm/train", "", move |s| bw::batchnorm(gpu, d, s)).quick_if(i == 0));
    }
    v
}

/// Whole networks forward, and one training step.
fn network_cases<'a>(gpu: &'a Gpu, opts: &SuiteOptions) -> Vec<Case<'a>> {
    let f = "network/forward";
    let mut v = vec![
        // The quick set's network.
        one(f, "vgg16 at 32x32", |s| {
            network(gpu, &small("vgg16")?, 2, None, Precision::F32, s)
        })
        .quick(),
        one(f, "vgg11_bn at 32x32", |s| {
            network(gpu, &small("vgg11_bn")?, 2, None, Precision::F32, s)
        }),
        // Activations over a 64 KiB binding run in groups of images; the FC weight splits.
        one(f, "over binding limit", |s| {
            let m = Model::parse("16,16,M,32,M")
                .and_then(|m| m.with_input(3, 24, 20))
                .and_then(|m| m.with_avgpool(None))
                .and_then(|m| m.with_hidden(&[40]))
                .and_then(|m| m.with_classes(7))?;
            network(gpu, &m, 5, Some(65536), Precision::F32, s)
        }),
        one(f, "1 channel, LRN, 1x1 conv", |s| {
            let m = Model::parse("5,M,12,13:1,L,M,7")
                .and_then(|m| m.with_input(1, 13, 15))
                .and_then(|m| m.with_avgpool(None))
                .and_then(|m| m.with_hidden(&[19]))
                .and_then(|m| m.with_classes(3))?;
            network(gpu, &m, 3, None, Precision::F32, s)
        }),
    ];
    if opts.scope == Scope::Full {
        v.push(one(f, "vgg16 at 224x224", |s| {
            network(gpu, &Model::vgg16(), 1, None, Precision::F32, s)
        }));
    } else {
        v.push(skip(
            &format!("{f} vgg16 224"),
            "full-size case: run with --full",
        ));
    }
    v.push(
        case("train/step", "BN, LRN, 1x1, avgpool, split FC", |s| {
            training_step(gpu, s, Precision::F32)
        })
        .quick(),
    );
    // What --precision f16 runs end to end: f16 storage (tensor cores where the adapter has
    // them), and a mixed-precision training step.
    if gpu.features().contains(wgpu::Features::SHADER_F16) {
        v.push(
            one(f, "vgg16 at 32x32 f16", |s| {
                network(gpu, &small("vgg16")?, 2, None, Precision::F16, s)
            })
            .f16(),
        );
    } else {
        let why = format!("{} lacks the shader-f16 feature", gpu.info().name);
        v.push(skip(&format!("{f} f16"), why));
    }
    v.push(
        case("train/step", "f16, BN, LRN, 1x1, avgpool, split FC", |s| {
            training_step(gpu, s, Precision::F16)
        })
        .f16(),
    );
    v
}

/// A named configuration at 32x32 with small FC layers.
fn small(name: &str) -> Result<Model> {
    Model::by_name(name)?
        .with_input(3, 32, 32)
        .and_then(|m| m.with_hidden(&[64, 48]))
        .and_then(|m| m.with_classes(10))
}

/// Kaiming weights with every bias and batch-norm statistic made non-trivial, so a kernel
/// that dropped a bias or a fold that used the wrong statistic would show.
pub fn random_weights(model: &Model, seed: u64) -> Weights {
    let mut w = Weights::init(model, Init::Kaiming, seed);
    let mut rng = TensorRng::new(seed ^ 0x5eed);
    for l in model.layers() {
        for (name, shape) in l.tensors() {
            let n: usize = shape.iter().product();
            let Some(t) = w.get_mut(&name) else { continue };
            let fresh = match (l.op, name.rsplit('.').next()) {
                (Op::BatchNorm { .. }, Some("weight")) => rng.range(n, 0.5, 1.5),
                (Op::BatchNorm { .. }, Some("running_var")) => rng.range(n, 0.5, 2.0),
                (Op::BatchNorm { .. }, Some(_)) => rng.range(n, -0.2, 0.2),
                (_, Some("bias")) => rng.range(n, -0.1, 0.1),
                // torchvision's N(0, 0.01) FC init lets the biases drown the signal in
                // small networks; a He-scaled uniform keeps every input's effect visible.
                (Op::Linear { k, .. }, Some("weight")) => {
                    let a = (6.0 / k as f32).sqrt();
                    rng.range(n, -a, a)
                }
                _ => continue,
            };
            t.data = fresh;
        }
    }
    w
}

/// A batch of `n` inputs uniform in [-1, 1).
pub fn random_input(model: &Model, n: usize, seed: u64) -> Tensor {
    let [c, h, w] = model.input_dims();
    let data = TensorRng::new(seed).uniform(n * c * h * w);
    Tensor {
        shape: vec![n, c, h, w],
        data,
    }
}

/// The executor's logits (activations poisoned first) against the whole-network reference,
/// in `precision` (f16: storage, and the tensor-core kernels it selects where the adapter
/// has them) at that precision's network tolerance.
pub fn network(
    gpu: &Gpu,
    model: &Model,
    n: usize,
    max_binding: Option<u64>,
    precision: Precision,
    seed: u64,
) -> Result<Outcome> {
    let weights = random_weights(model, seed);
    let x = random_input(model, n, seed + 1);
    let opts = NetworkOptions {
        max_binding,
        precision,
        ..Default::default()
    };
    let mut net = Network::with_options(gpu, model, &weights, opts)?;
    let last = model
        .layers()
        .last()
        .map(|l| l.name.clone())
        .unwrap_or_default();
    net.prepare(n, &[&last])?;
    net.poison();
    let got = net.forward_features(&x, &last)?;
    let want = reference::network::forward(model, &weights, &x, None)?;
    let [c, h, w] = model.input_dims();
    let shape = format!(
        "{} {n}x{c}x{h}x{w}{}{}",
        model.name(),
        match max_binding {
            Some(b) => format!(", bindings of {b} B"),
            None => String::new(),
        },
        match precision {
            Precision::F32 => "",
            Precision::F16 => " f16",
        }
    );
    let tol = match precision {
        Precision::F32 => F32_NETWORK_TOL,
        Precision::F16 => super::F16_NETWORK_TOL,
    };
    Ok(Outcome::new("network/forward", shape, &got.data, &want.data).tol(tol))
}

/// One SGD step of the trainer (momentum, weight decay, batch norm, LRN, a 1x1 conv, the
/// FC weight split over bindings) against the reference step: the loss, and each
/// parameter's update. In `F16` the step is mixed precision (`TrainOptions::precision`):
/// loss-scaled, and on tensor cores where the adapter has them.
pub fn training_step(gpu: &Gpu, seed: u64, precision: Precision) -> Result<Vec<Outcome>> {
    // The last map is 3x2; the average pool to 2x3 overlaps its rows' windows and repeats
    // its columns, as torchvision's 7x7 pool does below 224x224 input.
    let m = Model::parse("6,M,8:1,L,M,10")
        .and_then(|m| m.with_input(2, 12, 10))
        .and_then(|m| m.with_batch_norm(true))
        .and_then(|m| m.with_avgpool(Some((2, 3))))
        .and_then(|m| m.with_hidden(&[12]))
        .and_then(|m| m.with_classes(5))?;
    let w = random_weights(&m, seed);
    let batch = 4;
    let x = random_input(&m, batch, seed + 1);
    let labels: Vec<u32> = (0..batch).map(|i| ((i * 3) % m.classes()) as u32).collect();
    let opts = TrainOptions {
        batch,
        dropout: false,
        // fc's 12x60 weight (2880 bytes) in three chunks.
        max_binding: Some(1000),
        precision,
        ..Default::default()
    };
    let lr = 0.05;
    let mut t = Trainer::new(gpu, &m, &w, opts)?;
    let got = t.step(&x, &labels, lr)?;
    // Where a conv or FC layer multiplies f16 operands, the loss and gradients carry their
    // rounding: 5 layers of operands rounded to f16 (2^-11 = 4.9e-4 relative each, two per
    // product) make at most about 5 x 2 x 4.9e-4 = 4.9e-3 of relative error, within 1e-2.
    // Without them (f32, or f16 on an adapter with no tensor cores) the loss scaling is
    // exact and the f32 tolerances hold.
    let f16_operands = (0..m.layers().len()).any(|l| {
        t.conv_tune(l).is_some_and(|c| c.variant.f16_operands())
            || t.linear_variant(l).is_some_and(|v| v.f16_operands())
    });
    let (loss_tol, update_tol) = if f16_operands {
        (1e-2, 1e-2)
    } else {
        (1e-4, 1e-3)
    };
    if got.skipped {
        return Err(Error::Shape(format!(
            "the step overflowed at a loss scale of {}",
            got.loss_scale
        )));
    }
    let sgd = reference::train::Sgd {
        lr: lr as f64,
        momentum: 0.9,
        weight_decay: 5e-4,
    };
    let (mut rw, mut rv) = (w.clone(), Weights::new());
    let (loss, correct) = reference::train::step(&m, &mut rw, &mut rv, &x, &labels, sgd)?;
    let gw = t.weights()?;
    let tag = format!("{} batch {batch} {precision:?}", m.name());
    let mut out = vec![Outcome::new(
        "train/loss",
        tag.clone(),
        &[got.loss as f32],
        &[loss as f32],
    )
    .tol(loss_tol)
    .indices(&[got.correct as u32], &[correct as u32])];
    for (name, want) in rw.iter() {
        let init = &w
            .get(name)
            .ok_or_else(|| Error::Shape(format!("no {name}")))?
            .data;
        let g = &gw
            .get(name)
            .ok_or_else(|| Error::Shape(format!("the trainer has no {name}")))?
            .data;
        let o = if name.contains("running") {
            // Running statistics are not trained; they follow the batch.
            let o = Outcome::new("train/running_stat", name.clone(), g, &want.data);
            match f16_operands {
                true => o.tol(update_tol),
                false => o,
            }
        } else {
            // The update, not the weight: an update is ~1e-3 of its weight, so a wrong
            // gradient would hide in the weights' rounding. Its f32 rounding (an ulp of the
            // weight) bounds how close it can be, hence the absolute bound.
            let delta = |v: &[f32]| v.iter().zip(init).map(|(a, b)| a - b).collect::<Vec<_>>();
            if delta(&want.data).iter().all(|d| *d == 0.0) {
                return Err(Error::Shape(format!(
                    "the reference step left {name} unchanged: nothing to compare"
                )));
            }
            let ulp = f32::EPSILON as f64 * init.iter().fold(0.0f64, |m, v| m.max(v.abs() as f64));
            let mut o = Outcome::new("train/update", name.clone(), &delta(g), &delta(&want.data))
                .tol(update_tol);
            o.abs_tol = 4.0 * ulp;
            o
        };
        out.push(o);
    }
    Ok(out)
}

/// Runs every case on `gpu`, each twice on the same input when `opts.determinism`, and
/// passes each outcome to `report` as it finishes. A case that errors is a failed outcome
/// naming the op; after a lost or hung device the remaining cases are skipped.
pub fn run(
    gpu: &Gpu,
    opts: &SuiteOptions,
    report: impl FnMut(&Outcome),
) -> (Vec<Outcome>, Vec<Skipped>) {
    run_counted(gpu, opts, report, |_, _| {})
}

/// `run`, also telling `starting` before each case which one of the whole list (op and
/// shape, skipped ones included) starts, and once more at the end with the list's length:
/// what a watchdog needs to name a case that never returns and those left after it.
pub fn run_counted(
    gpu: &Gpu,
    opts: &SuiteOptions,
    mut report: impl FnMut(&Outcome),
    mut starting: impl FnMut(usize, &[(String, String)]),
) -> (Vec<Outcome>, Vec<Skipped>) {
    let (mut outcomes, mut skipped) = (Vec::new(), Vec::new());
    let all = cases(gpu, opts);
    let names: Vec<(String, String)> = all
        .iter()
        .map(|c| match c {
            Case::Skip(s) => (s.op.clone(), String::new()),
            Case::Run { op, shape, .. } => (op.clone(), shape.clone()),
        })
        .collect();
    let total = all.len();
    for (i, c) in all.into_iter().enumerate() {
        starting(i, &names);
        let (op, shape, run) = match c {
            Case::Skip(s) => {
                skipped.push(s);
                continue;
            }
            Case::Run { op, shape, run, .. } => (op, shape, run),
        };
        if gpu.is_lost() {
            skipped.push(Skipped {
                op: format!("{op} {shape}"),
                reason: match gpu.is_hung() {
                    true => "the device hung earlier in the run (a wait passed the GPU timeout)",
                    false => "the device was lost earlier in the run",
                }
                .into(),
            });
            continue;
        }
        let seed = opts.seed.wrapping_add(i as u64);
        let started = Instant::now();
        let first = run(seed);
        let seconds = started.elapsed().as_secs_f64();
        let mut results = match first {
            Ok(r) => r,
            Err(e) => vec![Outcome::failed(&op, shape.clone(), e.to_string())],
        };
        if opts.determinism && results.iter().all(|o| o.error.is_none()) {
            match run(seed) {
                Ok(again) if again.len() == results.len() => {
                    for (o, a) in results.iter_mut().zip(&again) {
                        o.determinism = Determinism::of(&o.output, &a.output);
                    }
                }
                Ok(_) => {
                    for o in &mut results {
                        o.error = Some("the second run gave a different number of results".into());
                    }
                }
                Err(e) => {
                    for o in &mut results {
                        o.error = Some(format!("second run: {e}"));
                    }
                }
            }
        }
        for mut o in results {
            o.output = Vec::new();
            o.seconds = seconds;
            o.slow = seconds > opts.slow_seconds;
            report(&o);
            outcomes.push(o);
        }
    }
    starting(total, &names);
    (outcomes, skipped)
}
