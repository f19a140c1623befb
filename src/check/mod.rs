//! Comparison of GPU kernels with the CPU reference on fresh random inputs: the shared
//! machinery of the tests, `vgg check` and the benchmark suite. Each op's module (`conv`,
//! `pool`, ... `network`, `train`, named as its shaders, kernels and reference) holds its
//! checks and exports its `cases`; `suite` concatenates them into the conformance suite and
//! runs it, `report` gives its per-adapter tables in text, JSON and Markdown.

pub mod avgpool;
pub mod batchnorm;
pub mod conv;
pub mod elementwise;
pub mod im2col;
pub mod linear;
pub mod lrn;
pub mod network;
pub mod optim;
pub mod pool;
pub mod report;
pub mod softmax;
pub mod suite;
pub mod train;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A seeded generator of test tensors.
pub struct TensorRng(ChaCha8Rng);

impl TensorRng {
    pub fn new(seed: u64) -> Self {
        TensorRng(ChaCha8Rng::seed_from_u64(seed))
    }
    /// Uniform in [-1, 1).
    pub fn uniform(&mut self, len: usize) -> Vec<f32> {
        (0..len)
            .map(|_| self.0.random_range(-1.0f32..1.0))
            .collect()
    }
    /// Uniform in [lo, hi).
    pub fn range(&mut self, len: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..len).map(|_| self.0.random_range(lo..hi)).collect()
    }

    /// A layer's random input, weight and bias of `lens` elements, as f16 values where
    /// `f16`. A kernel whose operands are f16 (tensor cores) then holds them exactly: its
    /// products are exact in f32 and its sums f32's, so a case checks its indexing and
    /// arithmetic at the f32 tolerance; what rounding the operands costs is the precision's
    /// (`--precision f16`), not the kernel's.
    pub fn operands(&mut self, lens: [usize; 3], f16: bool) -> [Vec<f32>; 3] {
        let v = lens.map(|n| self.uniform(n));
        match f16 {
            true => v.map(f16_rounded),
            false => v,
        }
    }

    /// NaN at a tensor's first and last element and one drawn between (corners, where
    /// kernels mask their padding, and the inside): what an overflow upstream leaves.
    pub fn with_nans(&mut self, mut x: Vec<f32>) -> Vec<f32> {
        if !x.is_empty() {
            let (last, inside) = (x.len() - 1, self.0.random_range(0..x.len()));
            for i in [0, inside, last] {
                x[i] = f32::NAN;
            }
        }
        x
    }
}

/// How far a GPU result is from the reference.
#[derive(Clone, Copy, Debug, Default)]
pub struct Diff {
    /// ||gpu - ref|| / ||ref|| (the pass criterion). Infinite if any element is not finite
    /// where the reference is.
    pub rel_l2: f64,
    pub max_abs: f64,
    /// The largest distance in units in the last place between matching elements.
    pub max_ulp: u64,
    /// Elements compared.
    pub len: usize,
}

impl Diff {
    pub fn passes(&self, tol: f64) -> bool {
        self.rel_l2 <= tol
    }
}

impl std::fmt::Display for Diff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ulp = if self.max_ulp == u64::MAX {
            "inf".to_string()
        } else {
            self.max_ulp.to_string()
        };
        write!(
            f,
            "rel_l2 {:>9.2e} max_abs {:>9.2e} max_ulp {ulp:>6}",
            self.rel_l2, self.max_abs
        )
    }
}

fn ordered(v: f32) -> i64 {
    let b = v.to_bits() as i32;
    (if b < 0 { i32::MIN.wrapping_sub(b) } else { b }) as i64
}

/// Compares `got` with `want`. A length mismatch or a NaN/inf where the reference is
/// finite (for instance an unwritten, NaN-poisoned element) makes `rel_l2` infinite.
pub fn compare(got: &[f32], want: &[f32]) -> Diff {
    if got.len() != want.len() {
        return Diff {
            rel_l2: f64::INFINITY,
            max_abs: f64::INFINITY,
            max_ulp: u64::MAX,
            len: got.len().min(want.len()),
        };
    }
    let (mut num, mut den, mut max_abs, mut max_ulp) = (0.0f64, 0.0f64, 0.0f64, 0u64);
    let mut bad = false;
    for (&g, &w) in got.iter().zip(want) {
        if !g.is_finite() && w.is_finite() || g.is_nan() != w.is_nan() {
            bad = true;
            continue;
        }
        let d = (g as f64 - w as f64).abs();
        if d.is_finite() {
            num += d * d;
            max_abs = max_abs.max(d);
        }
        den += (w as f64) * (w as f64);
        max_ulp = max_ulp.max((ordered(g) - ordered(w)).unsigned_abs());
    }
    let rel_l2 = if bad {
        f64::INFINITY
    } else if den == 0.0 {
        if num == 0.0 {
            0.0
        } else {
            f64::INFINITY
        }
    } else {
        (num / den).sqrt()
    };
    Diff {
        rel_l2,
        max_abs: if bad { f64::INFINITY } else { max_abs },
        max_ulp: if bad { u64::MAX } else { max_ulp },
        len: got.len(),
    }
}

use crate::error::Result;
use crate::gpu::{Gpu, Precision};
use crate::kernels::Kernel;
use crate::kernels::Nchw;
#[cfg(test)]
use crate::reference;

/// Relative L2 tolerance for single f32 kernels (design.md).
pub const F32_KERNEL_TOL: f64 = 1e-5;
/// Relative L2 tolerance for a whole f32 network (design.md): errors of many layers add.
pub const F32_NETWORK_TOL: f64 = 1e-4;

/// Whether two runs of a kernel on the same input wrote the same bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Determinism {
    /// Run once only.
    #[default]
    NotChecked,
    Identical,
    /// `elements` of `of` output elements differed, by up to `max_ulp`.
    Differs {
        elements: usize,
        of: usize,
        max_ulp: u64,
    },
}

impl Determinism {
    /// Compares the outputs of two runs bit for bit.
    pub fn of(first: &[u32], second: &[u32]) -> Determinism {
        if first.len() != second.len() {
            return Determinism::Differs {
                elements: first.len().max(second.len()),
                of: first.len(),
                max_ulp: u64::MAX,
            };
        }
        let (mut elements, mut max_ulp) = (0, 0u64);
        for (a, b) in first.iter().zip(second) {
            if a != b {
                elements += 1;
                let d = ordered(f32::from_bits(*a)) - ordered(f32::from_bits(*b));
                max_ulp = max_ulp.max(d.unsigned_abs());
            }
        }
        if elements == 0 {
            Determinism::Identical
        } else {
            Determinism::Differs {
                elements,
                of: first.len(),
                max_ulp,
            }
        }
    }
}

/// One comparison of a GPU kernel with the CPU reference.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub op: String,
    pub shape: String,
    pub diff: Diff,
    /// The relative L2 error allowed.
    pub tol: f64,
    /// An absolute error that passes too (0: none). For values that are tiny against the
    /// numbers they were computed from, where relative error measures only rounding.
    pub abs_tol: f64,
    /// Integer outputs (argmax indices) that differ from the reference.
    pub index_mismatches: usize,
    /// Outputs NaN reaches in the reference that came out finite (`through_nan`).
    pub hidden_nans: usize,
    /// The bits the GPU wrote (values, then any indices), kept for the determinism check.
    pub output: Vec<u32>,
    pub determinism: Determinism,
    /// Why the case could not run (a GPU error naming the op, a limit), if it could not.
    pub error: Option<String>,
    /// Wall-clock seconds of the case, reference included.
    pub seconds: f64,
    /// Took longer than the suite's slow threshold.
    pub slow: bool,
}

impl Outcome {
    /// A comparison of `got` with `want` at the kernel tolerance.
    pub fn new(op: &str, shape: String, got: &[f32], want: &[f32]) -> Outcome {
        Outcome {
            op: op.into(),
            shape,
            diff: compare(got, want),
            tol: F32_KERNEL_TOL,
            abs_tol: 0.0,
            index_mismatches: 0,
            hidden_nans: 0,
            output: got.iter().map(|v| v.to_bits()).collect(),
            determinism: Determinism::NotChecked,
            error: None,
            seconds: 0.0,
            slow: false,
        }
    }

    /// Lets every output pass within 4 f32 ulps of `magnitude`, the largest sum of absolute
    /// terms an output adds up (|b| + sum |w x| for a conv or FC layer): where an output is
    /// the difference of terms far larger than itself, relative error measures only f32's
    /// rounding of those terms, while a missing or wrong term is off by a whole term, far
    /// more.
    pub fn within_ulps_of(mut self, magnitude: f64) -> Outcome {
        self.abs_tol = 4.0 * f32::EPSILON as f64 * magnitude;
        self
    }

    /// A case that did not produce a result.
    pub fn failed(op: &str, shape: String, error: String) -> Outcome {
        Outcome {
            error: Some(error),
            diff: Diff {
                rel_l2: f64::INFINITY,
                max_abs: f64::INFINITY,
                max_ulp: u64::MAX,
                len: 0,
            },
            ..Outcome::new(op, shape, &[], &[])
        }
    }

    /// A comparison where NaN went in (`TensorRng::with_nans`): every output the reference
    /// makes NaN must come out NaN, for a kernel that made one finite (a ReLU's max(NaN, 0))
    /// would hide an overflow from the check on the logits. `spread(i)` says whether output
    /// `i` may be NaN although the reference's is not: Winograd's transforms carry a NaN to
    /// every output of a tile it touches. Both sides' NaNs and the spread are left out of
    /// the comparison; the rest compare as `new`.
    pub fn through_nan(
        op: &str,
        shape: String,
        got: &[f32],
        want: &[f32],
        spread: impl Fn(usize) -> bool,
    ) -> Outcome {
        let (mut g, mut w) = (got.to_vec(), want.to_vec());
        let mut hidden = 0usize;
        for (i, (g, w)) in g.iter_mut().zip(w.iter_mut()).enumerate() {
            if w.is_nan() && !g.is_nan() {
                hidden += 1;
            }
            if w.is_nan() || (g.is_nan() && spread(i)) {
                (*g, *w) = (0.0, 0.0);
            }
        }
        Outcome {
            output: got.iter().map(|v| v.to_bits()).collect(),
            hidden_nans: hidden,
            ..Outcome::new(op, shape, &g, &w)
        }
    }

    /// With a relative L2 tolerance other than the kernel default.
    pub fn tol(mut self, tol: f64) -> Outcome {
        self.tol = tol;
        self
    }

    /// Records integer outputs: mismatches fail the case, and their bits join the
    /// determinism check.
    pub fn indices(mut self, got: &[u32], want: &[u32]) -> Outcome {
        self.index_mismatches = if got.len() == want.len() {
            got.iter().zip(want).filter(|(a, b)| a != b).count()
        } else {
            got.len().max(want.len())
        };
        self.output.extend_from_slice(got);
        self
    }

    /// Within tolerance (or the absolute bound), no index mismatch or hidden NaN, no error,
    /// and the same bits on a second run where that was checked.
    pub fn passed(&self) -> bool {
        self.error.is_none()
            && (self.diff.passes(self.tol) || self.diff.max_abs <= self.abs_tol)
            && self.index_mismatches == 0
            && self.hidden_nans == 0
            && !matches!(self.determinism, Determinism::Differs { .. })
    }

    /// Why the case failed, in words; empty when it passed.
    pub fn failure(&self) -> String {
        if let Some(e) = &self.error {
            return e.clone();
        }
        let mut why = Vec::new();
        if !(self.diff.passes(self.tol) || self.diff.max_abs <= self.abs_tol) {
            if self.diff.rel_l2.is_infinite() {
                why.push("NaN/inf or unwritten elements where the reference is finite".into());
            } else {
                why.push(format!(
                    "rel L2 {:.2e} over the tolerance {:.0e}",
                    self.diff.rel_l2, self.tol
                ));
            }
        }
        if self.index_mismatches > 0 {
            why.push(format!("{} argmax indices differ", self.index_mismatches));
        }
        if self.hidden_nans > 0 {
            why.push(format!(
                "{} outputs that NaN reaches in the reference came out finite (a hidden \
                 overflow)",
                self.hidden_nans
            ));
        }
        if let Determinism::Differs {
            elements,
            of,
            max_ulp,
        } = self.determinism
        {
            why.push(format!(
                "not deterministic: a second run on the same input differs in {elements} of \
                 {of} elements (up to {max_ulp} ulp)"
            ));
        }
        why.join("; ")
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let det = match self.determinism {
            Determinism::NotChecked => "",
            Determinism::Identical => " det",
            Determinism::Differs { .. } => " NONDET",
        };
        write!(f, "{:<22} {:<40} ", self.op, self.shape)?;
        if self.error.is_none() {
            write!(f, "{}{det}", self.diff)?;
        }
        if self.slow {
            write!(f, " SLOW ({:.1} s)", self.seconds)?;
        }
        if self.passed() {
            write!(f, " pass")
        } else {
            write!(f, " FAIL: {}", self.failure())
        }
    }
}

/// A check with one outcome, as one of a case's outcomes.
impl From<Outcome> for Vec<Outcome> {
    fn from(o: Outcome) -> Self {
        vec![o]
    }
}

/// An output buffer of `len` f32, filled with NaN.
pub(crate) fn poisoned(gpu: &Gpu, label: &str, len: usize) -> Result<wgpu::Buffer> {
    let b = gpu.alloc(label, (len * 4) as u64)?;
    gpu.poison(&b);
    Ok(b)
}

pub(crate) fn dims_str((n, c, h, w): Nchw) -> String {
    format!("{n}x{c}x{h}x{w}")
}

/// Relative L2 tolerance of kernels that store tensors in f16 (and compute in f32), against
/// the f32 reference on the same f16-rounded inputs: rounding each output to f16 alone
/// costs up to 2^-11 = 4.9e-4 of it.
pub const F16_KERNEL_TOL: f64 = 1e-3;
/// Relative L2 error allowed for a whole network in f16 (storage, and tensor-core operands
/// where the adapter has them): each stored layer's output is rounded to f16 (at most
/// 2^-11 = 4.9e-4 relative), and VGG16 has 16 such layers: 16 x 4.9e-4 = 7.8e-3 if every
/// rounding added up, within 1e-2 (measured on lavapipe for VGG16 at 32x32: 7e-4 to 1e-3).
/// The tests measure whole networks against the same bound.
pub const F16_NETWORK_TOL: f64 = 1e-2;

/// Rounds values to f16 and back, as an f16 upload stores them.
pub(crate) fn f16_rounded(v: Vec<f32>) -> Vec<f32> {
    v.into_iter()
        .map(|x| half::f16::from_f32(x).to_f32())
        .collect()
}

/// Reads `len` elements of `precision` back as f32.
pub(crate) async fn read_as(
    gpu: &Gpu,
    buf: &wgpu::Buffer,
    len: usize,
    precision: Precision,
) -> Result<Vec<f32>> {
    // Copies move whole 4-byte words; an odd count of f16 reads one element more.
    let bytes = gpu
        .read_async::<u8>(buf, (len * precision.bytes()).div_ceil(4) * 4)
        .await?;
    let mut out = precision.decode(&bytes);
    out.truncate(len);
    Ok(out)
}

/// Uploads `inputs`, runs `op` with a last (output) buffer of `out_len` elements holding
/// `prefill` (NaN poison when None), and reads the output back.
pub async fn run_op(
    gpu: &Gpu,
    op: &Kernel,
    inputs: &[&[f32]],
    out_len: usize,
    prefill: Option<&[f32]>,
) -> Result<Vec<f32>> {
    let mut bufs = inputs
        .iter()
        .map(|x| gpu.upload(&op.name, x))
        .collect::<Result<Vec<_>>>()?;
    bufs.push(match prefill {
        Some(p) => gpu.upload(&op.name, p)?,
        None => poisoned(gpu, &op.name, out_len)?,
    });
    let refs: Vec<&wgpu::Buffer> = bufs.iter().collect();
    let bg = op.bind(gpu, &refs)?;
    gpu.run_pass(&op.name, |p| op.encode(gpu, p, &bg))?;
    gpu.read_async(&bufs[bufs.len() - 1], out_len).await
}

/// u32 values carried through an f32 upload.
pub(crate) fn bits(v: &[u32]) -> Vec<f32> {
    v.iter().map(|u| f32::from_bits(*u)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unwritten_poisoned_element_fails() {
        let want = vec![1.0, 2.0, 3.0];
        let mut got = want.clone();
        got[1] = f32::from_bits(crate::gpu::POISON_BITS);
        let d = compare(&got, &want);
        assert!(d.rel_l2.is_infinite() && !d.passes(1.0));
    }

    #[test]
    fn length_mismatch_and_small_errors_are_measured() {
        assert!(compare(&[1.0], &[1.0, 2.0]).rel_l2.is_infinite());
        assert_eq!(compare(&[1.0, -2.0], &[1.0, -2.0]).rel_l2, 0.0);
        let d = compare(&[3.0, 4.0 + 5e-4], &[3.0, 4.0]);
        assert!((d.rel_l2 - 1e-4).abs() < 1e-6, "{d:?}");
        assert_eq!(
            compare(&[1.0], &[f32::from_bits(1.0f32.to_bits() + 3)]).max_ulp,
            3
        );
    }

    #[test]
    fn a_shifted_convolution_output_fails() {
        // What an off-by-one in a kernel's indexing looks like to the comparison.
        let mut rng = TensorRng::new(7);
        let x = rng.uniform(2 * 3 * 9 * 11);
        let w = rng.uniform(4 * 3 * 9);
        let b = rng.uniform(4);
        let y = reference::conv::forward(&x, (2, 3, 9, 11), (&w, &b), 4, 3, false);
        let mut shifted = y.clone();
        shifted.rotate_left(1);
        assert!(!compare(&shifted, &y).passes(F32_KERNEL_TOL));
    }

    #[test]
    fn a_nan_must_come_through_and_spread_only_where_allowed() {
        // The reference's ReLU keeps a NaN that f64::max would turn into 0.
        let x = TensorRng::new(3).with_nans(vec![1.0; 8]);
        assert!(x[0].is_nan() && x[7].is_nan());
        let want = reference::linear::forward(&x, 2, 4, &[1.0; 12], &[0.5; 3], 3, true);
        assert!(want.iter().all(|v| v.is_nan()));
        let (mut a, mut b) = ([1.0, f32::NAN, -2.0, 4.0], [1.0, f32::NAN, 0.0, 4.0]);
        let want = reference::linear::forward(&a, 4, 1, &[1.0], &[0.0], 1, true);
        assert_eq!(want[0], 1.0);
        assert!(want[1].is_nan());
        assert_eq!(want[2], 0.0);
        let pass = |got: &[f32], spread: &dyn Fn(usize) -> bool| {
            Outcome::through_nan("op", String::new(), got, &want, spread).passed()
        };
        assert!(pass(&b, &|_| false));
        // A ReLU that made the NaN 0 fails, and says why.
        b[1] = 0.0;
        let o = Outcome::through_nan("op", String::new(), &b, &want, |_| false);
        assert!(!o.passed() && o.hidden_nans == 1, "{}", o.failure());
        assert!(o.failure().contains("hidden"), "{}", o.failure());
        // A NaN where the reference is finite passes only where `spread` allows it.
        a = [1.0, f32::NAN, f32::NAN, 4.0];
        assert!(!pass(&a, &|_| false));
        assert!(pass(&a, &|i| i == 2));
        // The values outside the NaNs still compare.
        a = [1.5, f32::NAN, 0.0, 4.0];
        assert!(!pass(&a, &|_| true));
    }
}
