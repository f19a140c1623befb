//! The conformance suite behind `vgg check`: every forward and backward kernel at a fixed
//! set of shapes with the edge cases (1x1 spatial, odd sizes, channel counts off every
//! tile, tensors over the binding limit, grids over 65535 workgroups in a dimension), a
//! whole-network forward and one training step, each against the CPU reference, each run
//! twice to check that the same input gives the same bits.

use super::{Determinism, Outcome};
use crate::error::Result;
use crate::gpu::{Gpu, Precision};
use crate::kernels::conv::ConvShape;
use crate::kernels::linear::LinearShape;
use std::future::Future;
use std::pin::Pin;
// std's Instant panics in a browser page; this one reads the page's clock there.
use web_time::Instant;

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

/// A running case: a future, so that a browser page can await its readbacks (`run` blocks
/// on it natively).
pub type Running<'a> = Pin<Box<dyn Future<Output = Result<Vec<Outcome>>> + 'a>>;

type Run<'a> = Box<dyn Fn(u64) -> Running<'a> + 'a>;

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

pub(super) fn case<'a, F: Future<Output = Result<Vec<Outcome>>> + 'a>(
    op: &str,
    shape: &str,
    f: impl Fn(u64) -> F + 'a,
) -> Case<'a> {
    Case::Run {
        op: op.into(),
        shape: shape.into(),
        run: Box::new(move |s| Box::pin(f(s))),
        f16: false,
        quick: false,
    }
}

pub(super) fn one<'a, F: Future<Output = Result<Outcome>> + 'a>(
    op: &str,
    shape: &str,
    f: impl Fn(u64) -> F + 'a,
) -> Case<'a> {
    case(op, shape, move |s| {
        let run = f(s);
        async move { run.await.map(|o| vec![o]) }
    })
}

/// One case of `op` (shape label `label`) per entry of `shapes`, run as `f(shape, seed)`;
/// the one at index `quick`, if any, in the quick set.
pub(super) fn each<'a, T, R, F>(
    op: &str,
    label: &str,
    shapes: impl IntoIterator<Item = T>,
    quick: Option<usize>,
    f: impl Fn(T, u64) -> F + Copy + 'a,
) -> Vec<Case<'a>>
where
    T: Copy + 'a,
    R: Into<Vec<Outcome>>,
    F: Future<Output = Result<R>> + 'a,
{
    shapes
        .into_iter()
        .enumerate()
        .map(|(i, d)| {
            let run = move |s| {
                let run = f(d, s);
                async move { run.await.map(Into::into) }
            };
            case(op, label, run).quick_if(Some(i) == quick)
        })
        .collect()
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
    // Each op's cases, in the order of OPS.
    let all = [
        super::conv::cases(gpu),
        super::pool::cases(gpu),
        super::linear::cases(gpu, opts),
        super::batchnorm::cases(gpu),
        super::lrn::cases(gpu),
        super::softmax::cases(gpu),
        super::avgpool::cases(gpu),
        super::im2col::cases(gpu),
        super::elementwise::cases(gpu),
        super::optim::cases(gpu),
        super::network::cases(gpu, opts),
        super::train::cases(gpu),
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
/// Natively it blocks on [`run_async`]; a page, which cannot block, awaits that instead.
pub fn run_counted(
    gpu: &Gpu,
    opts: &SuiteOptions,
    report: impl FnMut(&Outcome),
    starting: impl FnMut(usize, &[(String, String)]),
) -> (Vec<Outcome>, Vec<Skipped>) {
    #[cfg(not(target_arch = "wasm32"))]
    {
        pollster::block_on(run_async(gpu, opts, report, starting))
    }
    #[cfg(target_arch = "wasm32")]
    {
        let _ = (gpu, opts, report, starting);
        let reason = "a page cannot block on the GPU: await run_async";
        let skipped = Skipped {
            op: "check".into(),
            reason: reason.into(),
        };
        (Vec::new(), vec![skipped])
    }
}

/// The suite as a future: what `run_counted` blocks on natively and a browser page awaits.
/// Each case's readbacks are awaited, so the page's event loop answers them.
pub async fn run_async(
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
        let first = run(seed).await;
        let seconds = started.elapsed().as_secs_f64();
        let mut results = match first {
            Ok(r) => r,
            Err(e) => vec![Outcome::failed(&op, shape.clone(), e.to_string())],
        };
        if opts.determinism && results.iter().all(|o| o.error.is_none()) {
            match run(seed).await {
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
