//! Comparison of GPU kernels with the CPU reference on fresh random inputs: the shared
//! machinery of the tests, `vgg check` and the benchmark suite.

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
use crate::gpu::Gpu;
use crate::kernels::{
    adaptive_pool::AdaptiveAvgPool,
    affine::{BatchNorm, ChannelAffine},
    conv::{Conv2d, ConvShape, ConvTune},
    im2col::Im2col,
    linear::{Linear, LinearShape},
    lrn::{Lrn, LrnParams},
    maxpool::MaxPool,
    softmax::Softmax,
};
use crate::reference;

/// Relative L2 tolerance for single f32 kernels (design.md).
pub const F32_KERNEL_TOL: f64 = 1e-5;
/// Relative L2 tolerance for a whole f32 network (design.md): errors of many layers add.
pub const F32_NETWORK_TOL: f64 = 1e-4;

/// One comparison of a GPU kernel with the CPU reference.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub op: String,
    pub shape: String,
    pub diff: Diff,
    pub tol: f64,
    /// Integer outputs (argmax indices) that differ from the reference.
    pub index_mismatches: usize,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.diff.passes(self.tol) && self.index_mismatches == 0
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<16} {:<44} {} {}",
            self.op,
            self.shape,
            self.diff,
            if self.passed() {
                "pass".to_string()
            } else if self.index_mismatches > 0 {
                format!("FAIL ({} argmax indices differ)", self.index_mismatches)
            } else {
                format!("FAIL (tolerance {:.0e})", self.tol)
            }
        )
    }
}

fn outcome(op: &str, shape: String, got: &[f32], want: &[f32]) -> Outcome {
    Outcome {
        op: op.into(),
        shape,
        diff: compare(got, want),
        tol: F32_KERNEL_TOL,
        index_mismatches: 0,
    }
}

/// An output buffer of `len` f32, filled with NaN.
fn poisoned(gpu: &Gpu, label: &str, len: usize) -> Result<wgpu::Buffer> {
    let b = gpu.alloc(label, (len * 4) as u64)?;
    gpu.poison(&b);
    Ok(b)
}

type Dims = (usize, usize, usize, usize);

fn dims_str((n, c, h, w): Dims) -> String {
    format!("{n}x{c}x{h}x{w}")
}

/// Convolution (kernel 1 or 3) against the reference; `tune` None takes the adapter default.
pub fn conv(
    gpu: &Gpu,
    s: ConvShape,
    relu: bool,
    tune: Option<ConvTune>,
    seed: u64,
) -> Result<Outcome> {
    let mut rng = TensorRng::new(seed);
    let x = rng.uniform(s.input_len());
    let w = rng.uniform(s.weight_len());
    let b = rng.uniform(s.c_out);
    let conv = match tune {
        Some(t) => Conv2d::with_tune(gpu, s, relu, t)?,
        None => Conv2d::new(gpu, s, relu)?,
    };
    let params = conv.upload(gpu, &w, &b)?;
    let xb = gpu.upload("x", &x)?;
    let out = poisoned(gpu, "y", s.output_len())?;
    let bg = conv.bind(gpu, &xb, &params, &out)?;
    gpu.run_pass("conv", |pass| conv.encode(gpu, pass, &bg))?;
    let got = gpu.read::<f32>(&out, s.output_len())?;
    let want = reference::conv2d(&x, (s.n, s.c_in, s.h, s.w), &w, &b, s.c_out, s.k, relu);
    let op = format!("conv{}x{}{}", s.k, s.k, if relu { "+relu" } else { "" });
    let shape = format!(
        "{}->{} {:?}/{}",
        dims_str((s.n, s.c_in, s.h, s.w)),
        s.c_out,
        conv.tune.variant,
        conv.tune.wg
    );
    Ok(outcome(&op, shape, &got, &want))
}

/// Max pooling, values and argmax indices.
pub fn maxpool(gpu: &Gpu, dims: Dims, seed: u64) -> Result<Outcome> {
    let mut rng = TensorRng::new(seed);
    let (n, c, h, w) = dims;
    let x = rng.uniform(n * c * h * w);
    let pool = MaxPool::new(gpu, dims, true)?;
    let xb = gpu.upload("x", &x)?;
    let out = poisoned(gpu, "y", pool.output_len())?;
    let idx = poisoned(gpu, "argmax", pool.output_len())?;
    let bg = pool.bind(gpu, &xb, &out, Some(&idx))?;
    gpu.run_pass("maxpool", |pass| pool.encode(gpu, pass, &bg))?;
    let got = gpu.read::<f32>(&out, pool.output_len())?;
    let got_idx = gpu.read::<u32>(&idx, pool.output_len())?;
    let (want, want_idx) = reference::maxpool2x2(&x, dims);
    let mut o = outcome("maxpool2x2", dims_str(dims), &got, &want);
    o.index_mismatches = got_idx
        .iter()
        .zip(&want_idx)
        .filter(|(a, b)| a != b)
        .count();
    Ok(o)
}

/// Fully connected layer; `max_binding` forces the weight split below the adapter's limit.
pub fn linear(
    gpu: &Gpu,
    s: LinearShape,
    relu: bool,
    max_binding: Option<u64>,
    seed: u64,
) -> Result<Outcome> {
    let mut rng = TensorRng::new(seed);
    let x = rng.uniform(s.m * s.k);
    let w = rng.uniform(s.n_out * s.k);
    let b = rng.uniform(s.n_out);
    let fc = Linear::with_binding_limit(gpu, s, relu, max_binding.unwrap_or(u64::MAX))?;
    let params = fc.upload(gpu, &w, &b)?;
    let xb = gpu.upload("x", &x)?;
    let out = poisoned(gpu, "y", s.m * s.n_out)?;
    let bgs = fc.bind(gpu, &xb, &params, &out)?;
    gpu.run_pass("linear", |pass| fc.encode(gpu, pass, &bgs))?;
    let got = gpu.read::<f32>(&out, s.m * s.n_out)?;
    let want = reference::linear(&x, s.m, s.k, &w, &b, s.n_out, relu);
    let shape = format!(
        "{}x{} -> {} ({} binding{})",
        s.m,
        s.k,
        s.n_out,
        fc.chunk_count(),
        if fc.chunk_count() == 1 { "" } else { "s" }
    );
    Ok(outcome(
        if relu { "linear+relu" } else { "linear" },
        shape,
        &got,
        &want,
    ))
}

/// Softmax over rows; logits spread over [-20, 20) so the max shift matters.
pub fn softmax(gpu: &Gpu, rows: usize, cols: usize, seed: u64) -> Result<Outcome> {
    let mut rng = TensorRng::new(seed);
    let x = rng.range(rows * cols, -20.0, 20.0);
    let sm = Softmax::new(gpu, rows, cols)?;
    let xb = gpu.upload("x", &x)?;
    let out = poisoned(gpu, "y", rows * cols)?;
    let bg = sm.bind(gpu, &xb, &out)?;
    gpu.run_pass("softmax", |pass| sm.encode(gpu, pass, &bg))?;
    let got = gpu.read::<f32>(&out, rows * cols)?;
    Ok(outcome(
        "softmax",
        format!("{rows}x{cols}"),
        &got,
        &reference::softmax(&x, rows, cols),
    ))
}

/// LRN with the paper's constants on inputs large enough for the normaliser to matter.
pub fn lrn(gpu: &Gpu, dims: Dims, seed: u64) -> Result<Outcome> {
    let mut rng = TensorRng::new(seed);
    let (n, c, h, w) = dims;
    let x = rng.range(n * c * h * w, -60.0, 60.0);
    let p = LrnParams::default();
    let k = Lrn::new(gpu, dims, p)?;
    let xb = gpu.upload("x", &x)?;
    let out = poisoned(gpu, "y", x.len())?;
    let bg = k.bind(gpu, &xb, &out)?;
    gpu.run_pass("lrn", |pass| k.encode(gpu, pass, &bg))?;
    let got = gpu.read::<f32>(&out, x.len())?;
    let want = reference::lrn(&x, dims, p.size, p.alpha, p.beta, p.k);
    Ok(outcome("lrn", dims_str(dims), &got, &want))
}

fn random_bn(rng: &mut TensorRng, c: usize) -> BatchNorm {
    BatchNorm {
        gamma: rng.range(c, 0.5, 1.5),
        beta: rng.uniform(c),
        mean: rng.uniform(c),
        var: rng.range(c, 0.1, 2.0),
        eps: 1e-5,
    }
}

/// Batch norm (inference) as a per-channel affine kernel, against the unfused reference.
pub fn batchnorm(gpu: &Gpu, dims: Dims, relu: bool, seed: u64) -> Result<Outcome> {
    let mut rng = TensorRng::new(seed);
    let (n, c, h, w) = dims;
    let x = rng.uniform(n * c * h * w);
    let bn = random_bn(&mut rng, c);
    let (scale, shift) = bn.scale_shift()?;
    let k = ChannelAffine::new(gpu, dims, relu)?;
    let (xb, sb, tb) = (
        gpu.upload("x", &x)?,
        gpu.upload("scale", &scale)?,
        gpu.upload("shift", &shift)?,
    );
    let out = poisoned(gpu, "y", x.len())?;
    let bg = k.bind(gpu, &xb, &sb, &tb, &out)?;
    gpu.run_pass("batchnorm", |pass| k.encode(gpu, pass, &bg))?;
    let got = gpu.read::<f32>(&out, x.len())?;
    let want = reference::batchnorm(
        &x, dims, &bn.gamma, &bn.beta, &bn.mean, &bn.var, bn.eps, relu,
    );
    Ok(outcome(
        if relu { "batchnorm+relu" } else { "batchnorm" },
        dims_str(dims),
        &got,
        &want,
    ))
}

/// A convolution with batch norm folded into its weights on the GPU, against the reference
/// convolution followed by the reference batch norm.
pub fn batchnorm_folded(gpu: &Gpu, s: ConvShape, seed: u64) -> Result<Outcome> {
    let mut rng = TensorRng::new(seed);
    let x = rng.uniform(s.input_len());
    let w = rng.uniform(s.weight_len());
    let b = rng.uniform(s.c_out);
    let bn = random_bn(&mut rng, s.c_out);
    let (fw, fb) = bn.fold_into_conv(&w, &b)?;
    let conv = Conv2d::new(gpu, s, true)?;
    let params = conv.upload(gpu, &fw, &fb)?;
    let xb = gpu.upload("x", &x)?;
    let out = poisoned(gpu, "y", s.output_len())?;
    let bg = conv.bind(gpu, &xb, &params, &out)?;
    gpu.run_pass("conv+bn", |pass| conv.encode(gpu, pass, &bg))?;
    let got = gpu.read::<f32>(&out, s.output_len())?;
    let dims = (s.n, s.c_in, s.h, s.w);
    let y = reference::conv2d(&x, dims, &w, &b, s.c_out, s.k, false);
    let want = reference::batchnorm(
        &y,
        (s.n, s.c_out, s.h, s.w),
        &bn.gamma,
        &bn.beta,
        &bn.mean,
        &bn.var,
        bn.eps,
        true,
    );
    Ok(outcome(
        "conv+bn folded",
        format!("{}->{}", dims_str(dims), s.c_out),
        &got,
        &want,
    ))
}

/// Adaptive average pooling to `out`.
pub fn adaptive_pool(gpu: &Gpu, dims: Dims, out: (usize, usize), seed: u64) -> Result<Outcome> {
    let mut rng = TensorRng::new(seed);
    let (n, c, h, w) = dims;
    let x = rng.uniform(n * c * h * w);
    let k = AdaptiveAvgPool::new(gpu, dims, out)?;
    let xb = gpu.upload("x", &x)?;
    let ob = poisoned(gpu, "y", k.output_len())?;
    let bg = k.bind(gpu, &xb, &ob)?;
    gpu.run_pass("adaptive_avgpool", |pass| k.encode(gpu, pass, &bg))?;
    let got = gpu.read::<f32>(&ob, k.output_len())?;
    let want = reference::adaptive_avg_pool(&x, dims, out.0, out.1);
    Ok(outcome(
        "adaptive_avgpool",
        format!("{} -> {}x{}", dims_str(dims), out.0, out.1),
        &got,
        &want,
    ))
}

/// Window gathering for dense evaluation.
pub fn im2col(gpu: &Gpu, dims: Dims, window: (usize, usize), seed: u64) -> Result<Outcome> {
    let mut rng = TensorRng::new(seed);
    let (n, c, h, w) = dims;
    let x = rng.uniform(n * c * h * w);
    let k = Im2col::new(gpu, dims, window)?;
    let xb = gpu.upload("x", &x)?;
    let ob = poisoned(gpu, "y", k.output_len())?;
    let bg = k.bind(gpu, &xb, &ob)?;
    gpu.run_pass("im2col", |pass| k.encode(gpu, pass, &bg))?;
    let got = gpu.read::<f32>(&ob, k.output_len())?;
    let want = reference::im2col(&x, dims, window.0, window.1);
    Ok(outcome(
        "im2col",
        format!("{} window {}x{}", dims_str(dims), window.0, window.1),
        &got,
        &want,
    ))
}

/// The kernel self-check behind `vgg check`: every forward kernel at a set of shapes that
/// includes the edge cases (1x1 spatial, odd sizes, channel counts off every tile, a weight
/// split over bindings). `full` adds VGG16's 392 MiB first FC layer. Outcomes are passed
/// to `report` as they finish; an error (not a mismatch) stops the run.
pub fn self_check(
    gpu: &Gpu,
    seed: u64,
    full: bool,
    mut report: impl FnMut(&Outcome),
) -> Result<Vec<Outcome>> {
    let cs = |n, c_in, c_out, h, w, k| ConvShape {
        n,
        c_in,
        c_out,
        h,
        w,
        k,
    };
    let mut cases: Vec<Box<dyn Fn(u64) -> Result<Outcome> + '_>> = vec![
        Box::new(|s| conv(gpu, cs(1, 3, 13, 13, 15, 3), true, None, s)),
        Box::new(|s| conv(gpu, cs(3, 16, 20, 7, 7, 3), false, None, s)),
        Box::new(|s| conv(gpu, cs(2, 8, 5, 1, 1, 3), true, None, s)),
        Box::new(|s| conv(gpu, cs(1, 64, 72, 28, 28, 3), true, None, s)),
        Box::new(|s| conv(gpu, cs(3, 5, 11, 13, 15, 1), true, None, s)),
        Box::new(|s| maxpool(gpu, (1, 3, 13, 15), s)),
        Box::new(|s| maxpool(gpu, (3, 5, 7, 7), s)),
        Box::new(|s| {
            linear(
                gpu,
                LinearShape {
                    m: 3,
                    k: 37,
                    n_out: 29,
                },
                true,
                None,
                s,
            )
        }),
        Box::new(|s| {
            linear(
                gpu,
                LinearShape {
                    m: 2,
                    k: 4096,
                    n_out: 1000,
                },
                false,
                None,
                s,
            )
        }),
        Box::new(|s| {
            linear(
                gpu,
                LinearShape {
                    m: 3,
                    k: 50,
                    n_out: 77,
                },
                true,
                Some(2000),
                s,
            )
        }),
        Box::new(|s| softmax(gpu, 3, 1000, s)),
        Box::new(|s| lrn(gpu, (3, 7, 7, 7), s)),
        Box::new(|s| batchnorm(gpu, (3, 13, 13, 15), true, s)),
        Box::new(|s| batchnorm_folded(gpu, cs(2, 3, 13, 13, 15, 3), s)),
        Box::new(|s| adaptive_pool(gpu, (3, 5, 13, 15), (7, 7), s)),
        Box::new(|s| adaptive_pool(gpu, (1, 8, 7, 7), (7, 7), s)),
        Box::new(|s| im2col(gpu, (2, 5, 9, 11), (7, 7), s)),
    ];
    if full {
        cases.push(Box::new(|s| {
            linear(
                gpu,
                LinearShape {
                    m: 2,
                    k: 25088,
                    n_out: 4096,
                },
                true,
                None,
                s,
            )
        }));
    }
    let mut out = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let o = case(seed.wrapping_add(i as u64))?;
        report(&o);
        out.push(o);
    }
    Ok(out)
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
        let y = reference::conv2d(&x, (2, 3, 9, 11), &w, &b, 4, 3, false);
        let mut shifted = y.clone();
        shifted.rotate_left(1);
        assert!(!compare(&shifted, &y).passes(F32_KERNEL_TOL));
    }
}
