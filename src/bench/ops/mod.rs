//! One timing function per kernel: GPU time (rotating among several inputs), work, bytes,
//! and optionally the CPU reference's time for the same op.

pub mod conv;
pub mod linear;

use super::report::Kernel;
use super::{time_pass, time_wall, Timing};
use crate::check::TensorRng;
use crate::error::Result;
use crate::gpu::{Gpu, Precision};
use crate::kernels::{
    self,
    lrn::LrnParams,
    peak::{PeakCopy, PeakFma},
};
use crate::reference;

/// Input buffers each kernel rotates among.
pub const ROTATE: usize = 3;

/// Per-kernel settings.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    pub runs: usize,
    /// Also time the CPU reference of the op.
    pub cpu: bool,
}

pub(super) fn upload_n(
    gpu: &Gpu,
    rng: &mut TensorRng,
    len: usize,
    p: Precision,
) -> Result<Vec<wgpu::Buffer>> {
    (0..ROTATE)
        .map(|_| gpu.upload_as("bench input", &rng.uniform(len), p))
        .collect()
}

pub(super) fn entry(op: &str, shape: String, t: Timing, flops: f64, bytes: f64) -> Kernel {
    Kernel {
        op: op.into(),
        layers: String::new(),
        shape,
        variant: String::new(),
        precision: "f32".into(),
        median_ms: t.median_s * 1e3,
        min_ms: t.min_s * 1e3,
        max_ms: t.max_s * 1e3,
        runs: t.runs,
        clock: t.clock.into(),
        gflops: (flops > 0.0).then(|| flops / t.median_s / 1e9),
        gbytes_per_s: bytes / t.median_s / 1e9,
        flops,
        bytes,
        fraction_of_peak: None,
        cpu_reference_ms: None,
        speedup_vs_cpu: None,
        is_default: true,
        tuned: false,
    }
}

pub(super) fn with_cpu(mut k: Kernel, cpu: Option<Timing>) -> Kernel {
    if let Some(c) = cpu {
        k.cpu_reference_ms = Some(c.min_s * 1e3);
        k.speedup_vs_cpu = Some(c.min_s * 1e3 / k.median_ms);
    }
    k
}

fn dims_str((n, c, h, w): (usize, usize, usize, usize)) -> String {
    format!("{n}x{c}x{h}x{w}")
}

/// Times a one-input kernel, rotating among `ROTATE` inputs of `in_len` f32 writing one
/// output of `out_len` (bound as input, `extra`..., output), and (when asked) its CPU
/// reference `cpu_op` on a fresh input.
#[allow(clippy::too_many_arguments)]
fn unary<R>(
    gpu: &Gpu,
    set: Settings,
    seed: u64,
    in_len: usize,
    out_len: usize,
    k: &crate::kernels::Kernel,
    extra: &[&wgpu::Buffer],
    mut cpu_op: impl FnMut(&[f32]) -> R,
) -> Result<(Timing, Option<Timing>)> {
    let mut rng = TensorRng::new(seed);
    let xs = upload_n(gpu, &mut rng, in_len, Precision::F32)?;
    let y = gpu.alloc("bench output", (out_len * 4) as u64)?;
    let bgs = xs
        .iter()
        .map(|x| {
            let mut b = vec![x];
            b.extend(extra);
            b.push(&y);
            k.bind(gpu, &b)
        })
        .collect::<Result<Vec<_>>>()?;
    let t = time_pass(gpu, set.runs, |p, i| k.encode(gpu, p, &bgs[i % ROTATE]))?;
    let cpu = if set.cpu {
        let x = rng.uniform(in_len);
        Some(time_wall(1, || Ok(cpu_op(&x)))?)
    } else {
        None
    };
    Ok((t, cpu))
}

fn len((n, c, h, w): (usize, usize, usize, usize)) -> usize {
    n * c * h * w
}

/// 2x2 max pooling (inference form, no argmax).
pub fn maxpool(gpu: &Gpu, dims: (usize, usize, usize, usize), set: Settings) -> Result<Kernel> {
    let k = kernels::pool::forward(gpu, dims, false, Precision::F32)?;
    let out = kernels::pool::output_len(dims);
    let (t, cpu) = unary(gpu, set, 3, len(dims), out, &k, &[], |x| {
        reference::pool::forward(x, dims)
    })?;
    let bytes = 4.0 * (len(dims) + out) as f64;
    Ok(with_cpu(
        entry("pool/forward", dims_str(dims), t, 0.0, bytes),
        cpu,
    ))
}

/// Batch norm in inference form with ReLU (the per-channel affine kernel).
pub fn batchnorm(gpu: &Gpu, dims: (usize, usize, usize, usize), set: Settings) -> Result<Kernel> {
    let c = dims.1;
    let k = kernels::batchnorm::affine(gpu, dims, true, Precision::F32)?;
    let mut rng = TensorRng::new(40);
    let scale = gpu.upload("scale", &rng.range(c, 0.5, 1.5))?;
    let shift = gpu.upload("shift", &rng.uniform(c))?;
    let (g, b, m, v) = (vec![1.0; c], vec![0.0; c], vec![0.0; c], vec![1.0; c]);
    let (t, cpu) = unary(
        gpu,
        set,
        4,
        len(dims),
        len(dims),
        &k,
        &[&scale, &shift],
        |x| reference::batchnorm::forward(x, dims, (&g, &b), (&m, &v), 1e-5, true),
    )?;
    let bytes = 8.0 * len(dims) as f64;
    Ok(with_cpu(
        entry("batchnorm/affine", dims_str(dims), t, 0.0, bytes),
        cpu,
    ))
}

/// Local response normalisation (config A-LRN's constants).
pub fn lrn(gpu: &Gpu, dims: (usize, usize, usize, usize), set: Settings) -> Result<Kernel> {
    let p = LrnParams::default();
    let k = kernels::lrn::forward(gpu, dims, p, Precision::F32)?;
    let (t, cpu) = unary(gpu, set, 5, len(dims), len(dims), &k, &[], |x| {
        reference::lrn::forward(x, dims, &p)
    })?;
    let bytes = 8.0 * len(dims) as f64;
    Ok(with_cpu(
        entry("lrn/forward", dims_str(dims), t, 0.0, bytes),
        cpu,
    ))
}

/// Adaptive average pooling to `out`.
pub fn adaptive_pool(
    gpu: &Gpu,
    dims: (usize, usize, usize, usize),
    out: (usize, usize),
    set: Settings,
) -> Result<Kernel> {
    let k = kernels::avgpool::forward(gpu, dims, out, Precision::F32)?;
    let out_len = dims.0 * dims.1 * out.0 * out.1;
    let (t, cpu) = unary(gpu, set, 6, len(dims), out_len, &k, &[], |x| {
        reference::avgpool::forward(x, dims, out.0, out.1)
    })?;
    let bytes = 4.0 * (len(dims) + out_len) as f64;
    let shape = format!("{} -> {}x{}", dims_str(dims), out.0, out.1);
    Ok(with_cpu(
        entry("avgpool/forward", shape, t, 0.0, bytes),
        cpu,
    ))
}

/// The adaptive average pool's input gradient (training below the input size the pool
/// was made for: a VGG at 32x32 spreads each 7x7 bin back to its 1x1 map).
pub fn adaptive_pool_backward(
    gpu: &Gpu,
    dims: (usize, usize, usize, usize),
    out: (usize, usize),
    set: Settings,
) -> Result<Kernel> {
    let out_len = dims.0 * dims.1 * out.0 * out.1;
    grad(
        gpu,
        set,
        &kernels::avgpool::backward(gpu, dims, out)?,
        &[out_len],
        &[],
        len(dims),
        "avgpool/backward",
        format!("{} -> {}x{}", dims_str(dims), out.0, out.1),
        0.0,
        None,
    )
}

/// Dense evaluation's window gather.
pub fn im2col(
    gpu: &Gpu,
    dims: (usize, usize, usize, usize),
    window: (usize, usize),
    set: Settings,
) -> Result<Kernel> {
    let k = kernels::im2col::forward(gpu, dims, window, Precision::F32)?;
    let out_len = dims.0 * kernels::im2col::positions(dims, window) * dims.1 * window.0 * window.1;
    let (t, cpu) = unary(gpu, set, 7, len(dims), out_len, &k, &[], |x| {
        reference::im2col::forward(x, dims, window.0, window.1)
    })?;
    let bytes = 8.0 * out_len as f64;
    let shape = format!("{} window {}x{}", dims_str(dims), window.0, window.1);
    Ok(with_cpu(entry("im2col/forward", shape, t, 0.0, bytes), cpu))
}

/// Softmax over [rows, cols].
pub fn softmax(gpu: &Gpu, rows: usize, cols: usize, set: Settings) -> Result<Kernel> {
    let k = kernels::softmax::forward(gpu, rows, cols, Precision::F32)?;
    let (t, cpu) = unary(gpu, set, 8, rows * cols, rows * cols, &k, &[], |x| {
        reference::softmax::forward(x, rows, cols)
    })?;
    let bytes = 8.0 * (rows * cols) as f64;
    Ok(with_cpu(
        entry("softmax/forward", format!("{rows}x{cols}"), t, 0.0, bytes),
        cpu,
    ))
}

/// The adapter's FMA throughput and copy bandwidth, each the median of `runs`.
pub fn peaks(gpu: &Gpu, runs: usize) -> Result<(Kernel, Kernel)> {
    // Enough invocations to fill any GPU several times over; the loop length keeps one run
    // in the tens of milliseconds on a CPU driver.
    let threads = if gpu.is_cpu() { 1 << 14 } else { 1 << 20 };
    let fma = PeakFma::new(gpu, threads, 1024)?;
    let out = gpu.alloc("peak out", (fma.output_len() * 4) as u64)?;
    let bg = fma.bind(gpu, &out)?;
    let t = time_pass(gpu, runs, |p, _| fma.encode(gpu, p, &bg))?;
    let f = entry(
        "peak/fma",
        format!("{threads} x 1024 x 16 FMA"),
        t,
        fma.flops(),
        0.0,
    );
    // 64 MiB each way: past any GPU cache, within every binding limit.
    let len = ((64u64 << 20).min(gpu.max_binding_bytes()) / 4) as usize / 4 * 4;
    let copy = PeakCopy::new(gpu, len)?;
    let mut rng = TensorRng::new(9);
    let xs = upload_n(gpu, &mut rng, len, Precision::F32)?;
    let y = gpu.alloc("copy out", (len * 4) as u64)?;
    let bgs = xs
        .iter()
        .map(|x| copy.bind(gpu, x, &y))
        .collect::<Result<Vec<_>>>()?;
    let t = time_pass(gpu, runs, |p, i| copy.encode(gpu, p, &bgs[i % ROTATE]))?;
    let c = entry(
        "peak/copy",
        format!("{} MiB", (len * 4) >> 20),
        t,
        0.0,
        copy.bytes(),
    );
    Ok((f, c))
}

/// A CPU reference run on the benchmark's inputs.
type CpuOp<'a> = dyn Fn(&[Vec<f32>]) + 'a;

/// Times a backward kernel on random inputs of the given lengths, writing `out_len`.
#[allow(clippy::too_many_arguments)]
pub(super) fn grad(
    gpu: &Gpu,
    set: Settings,
    op: &crate::kernels::Kernel,
    inputs: &[usize],
    zeroed: &[usize],
    out_len: usize,
    name: &str,
    shape: String,
    flops: f64,
    cpu_op: Option<&CpuOp>,
) -> Result<Kernel> {
    let mut rng = TensorRng::new(11);
    // Inputs listed in `zeroed` hold zeros (class labels, which must be valid indices).
    let data: Vec<Vec<f32>> = inputs
        .iter()
        .enumerate()
        .map(|(i, &l)| {
            if zeroed.contains(&i) {
                vec![0.0; l]
            } else {
                rng.uniform(l)
            }
        })
        .collect();
    let mut bufs = data
        .iter()
        .map(|d| gpu.upload("bench input", d))
        .collect::<Result<Vec<_>>>()?;
    bufs.push(gpu.alloc("bench output", (out_len * 4) as u64)?);
    let refs: Vec<&wgpu::Buffer> = bufs.iter().collect();
    let bg = op.bind(gpu, &refs)?;
    let t = time_pass(gpu, set.runs, |p, _| op.encode(gpu, p, &bg))?;
    let bytes = 4.0 * (inputs.iter().sum::<usize>() + out_len) as f64;
    let k = entry(name, shape, t, flops, bytes);
    let cpu = match cpu_op.filter(|_| set.cpu) {
        Some(f) => Some(time_wall(1, || {
            f(&data);
            Ok(())
        })?),
        None => None,
    };
    Ok(with_cpu(k, cpu))
}

/// Max-pool backward, softmax cross-entropy and the SGD step at one size each.
pub fn training_misc(
    gpu: &Gpu,
    pool: (usize, usize, usize, usize),
    rows: usize,
    cols: usize,
    params: usize,
    set: Settings,
) -> Result<Vec<Kernel>> {
    let (n, c, h, w) = pool;
    let out = n * c * (h / 2) * (w / 2);
    let (len, hw) = (n * c * h * w, h * w);
    Ok(vec![
        grad(
            gpu,
            set,
            &crate::kernels::lrn::backward(gpu, pool, LrnParams::default())?,
            &[len, len],
            &[],
            len,
            "lrn/backward",
            dims_str(pool),
            0.0,
            None,
        )?,
        grad(
            gpu,
            set,
            &crate::kernels::batchnorm::apply(gpu, n, c, hw, true)?,
            &[len, c, c, 2 * c],
            &[],
            len,
            "batchnorm/apply",
            dims_str(pool),
            0.0,
            None,
        )?,
        grad(
            gpu,
            set,
            &crate::kernels::batchnorm::backward_apply(gpu, n, c, hw)?,
            &[len, len, c, 2 * c, 2 * c],
            &[],
            len,
            "batchnorm/backward",
            dims_str(pool),
            0.0,
            None,
        )?,
        grad(
            gpu,
            set,
            &crate::kernels::pool::backward(gpu, pool)?,
            &[out, out],
            &[],
            n * c * h * w,
            "pool/backward",
            dims_str(pool),
            0.0,
            None,
        )?,
        grad(
            gpu,
            set,
            // The hyperparameters in the output slot: zeros, a loss scale of 0, which
            // changes no load or store.
            &crate::kernels::softmax::xent(gpu, rows, cols, 1.0 / rows as f32)?,
            &[rows * cols, rows, rows * cols, rows * 2],
            &[1],
            crate::kernels::optim::HYPER,
            "softmax/xent",
            format!("{rows}x{cols}"),
            0.0,
            None,
        )?,
        {
            // Weights, gradients and momentum, then the hyperparameters in the output slot
            // (zeros: the same loads and stores as any step). Traffic: 3 reads, 2 writes.
            let mut k = grad(
                gpu,
                set,
                &crate::kernels::optim::sgd(gpu, params)?,
                &[params, params, params],
                &[],
                crate::kernels::optim::HYPER,
                "optim/sgd",
                format!("{params} parameters"),
                0.0,
                None,
            )?;
            k.bytes = 20.0 * params as f64;
            k.gbytes_per_s = k.bytes / (k.median_ms * 1e-3) / 1e9;
            k
        },
        {
            // Loss-scaled training's pass over a gradient before the update: one read.
            let mut k = grad(
                gpu,
                set,
                &crate::kernels::optim::overflow(gpu, params)?,
                &[params],
                &[],
                crate::kernels::optim::HYPER,
                "optim/overflow",
                format!("{params} parameters"),
                0.0,
                None,
            )?;
            k.bytes = 4.0 * params as f64;
            k.gbytes_per_s = k.bytes / (k.median_ms * 1e-3) / 1e9;
            k
        },
    ])
}
