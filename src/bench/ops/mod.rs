//! One timing function per kernel, in a file per op named as its shaders, kernels,
//! reference and checks: GPU time (rotating among several inputs), work, bytes, and
//! optionally the CPU reference's time for the same op. Here, what the rows share.

pub mod avgpool;
pub mod batchnorm;
pub mod conv;
pub mod elementwise;
pub mod im2col;
pub mod linear;
pub mod lrn;
pub mod optim;
pub mod peak;
pub mod pool;
pub mod softmax;

use super::report::Kernel;
use super::{time_async, time_pass, Timing};
pub(super) use crate::check::dims_str;
use crate::check::TensorRng;
use crate::error::Result;
use crate::gpu::{Gpu, Precision};
use crate::kernels::Nchw;

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

/// The lengths a one-input kernel binds: its input (rotated among `ROTATE`) and its output.
pub(super) struct Lens {
    pub input: usize,
    pub output: usize,
}

/// Times a one-input kernel, rotating among `ROTATE` inputs of `lens.input` f32 writing one
/// output of `lens.output` (bound as input, `extra`..., output), and (when asked) its CPU
/// reference `cpu_op` on a fresh input.
pub(super) async fn unary<R>(
    gpu: &Gpu,
    set: Settings,
    seed: u64,
    k: &crate::kernels::Kernel,
    lens: Lens,
    extra: &[&wgpu::Buffer],
    mut cpu_op: impl FnMut(&[f32]) -> R,
) -> Result<(Timing, Option<Timing>)> {
    let mut rng = TensorRng::new(seed);
    let xs = upload_n(gpu, &mut rng, lens.input, Precision::F32)?;
    let y = gpu.alloc("bench output", (lens.output * 4) as u64)?;
    let bgs = xs
        .iter()
        .map(|x| {
            let mut b = vec![x];
            b.extend(extra);
            b.push(&y);
            k.bind(gpu, &b)
        })
        .collect::<Result<Vec<_>>>()?;
    let t = time_pass(gpu, set.runs, |p, i| k.encode(gpu, p, &bgs[i % ROTATE])).await?;
    let cpu = if set.cpu {
        let x = rng.uniform(lens.input);
        Some(time_async(1, async || Ok(cpu_op(&x))).await?)
    } else {
        None
    };
    Ok((t, cpu))
}

pub(super) fn len((n, c, h, w): Nchw) -> usize {
    n * c * h * w
}

/// A CPU reference run on the benchmark's inputs.
pub(super) type CpuOp<'a> = dyn Fn(&[Vec<f32>]) + 'a;

/// The buffers a timed kernel binds: inputs of these lengths (those listed in `zeroed`
/// hold zeros: class labels, which must be valid indices), then an output.
pub(super) struct Io<'a> {
    pub inputs: &'a [usize],
    pub zeroed: &'a [usize],
    pub output: usize,
}

/// What a row reports: its op, shape and work.
pub(super) struct Row<'a> {
    pub op: &'a str,
    pub shape: String,
    pub flops: f64,
}

/// Times a backward kernel on random inputs laid out as `io`, and (when asked) `cpu_op`.
pub(super) async fn grad(
    gpu: &Gpu,
    set: Settings,
    op: &crate::kernels::Kernel,
    io: Io<'_>,
    row: Row<'_>,
    cpu_op: Option<&CpuOp<'_>>,
) -> Result<Kernel> {
    let mut rng = TensorRng::new(11);
    let data: Vec<Vec<f32>> = io
        .inputs
        .iter()
        .enumerate()
        .map(|(i, &l)| {
            if io.zeroed.contains(&i) {
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
    bufs.push(gpu.alloc("bench output", (io.output * 4) as u64)?);
    let refs: Vec<&wgpu::Buffer> = bufs.iter().collect();
    let bg = op.bind(gpu, &refs)?;
    let t = time_pass(gpu, set.runs, |p, _| op.encode(gpu, p, &bg)).await?;
    let bytes = 4.0 * (io.inputs.iter().sum::<usize>() + io.output) as f64;
    let k = entry(row.op, row.shape, t, row.flops, bytes);
    let cpu = match cpu_op.filter(|_| set.cpu) {
        Some(f) => Some(
            time_async(1, async || {
                f(&data);
                Ok(())
            })
            .await?,
        ),
        None => None,
    };
    Ok(with_cpu(k, cpu))
}

/// Sets a row's traffic where the kernel moves other than what it binds once each (an
/// in-place update reads and writes the same buffer).
pub(super) fn with_bytes(mut k: Kernel, bytes: f64) -> Kernel {
    k.bytes = bytes;
    k.gbytes_per_s = k.bytes / (k.median_ms * 1e-3) / 1e9;
    k
}
