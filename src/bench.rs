//! Kernel timing: GPU timestamps where the adapter has them, else wall clock around a full
//! device sync. Shared by `cargo bench` and `vgg bench`.

use crate::check::TensorRng;
use crate::error::Result;
use crate::gpu::{Gpu, GpuTimer, Precision};
use crate::kernels::{
    adaptive_pool::AdaptiveAvgPool,
    affine::ChannelAffine,
    conv::{Conv2d, ConvShape, ConvTune},
    im2col::Im2col,
    linear::{Linear, LinearShape},
    lrn::{Lrn, LrnParams},
    maxpool::MaxPool,
    softmax::Softmax,
};
use std::time::Instant;

/// One timed kernel.
#[derive(Clone, Debug)]
pub struct Measurement {
    pub kernel: String,
    pub shape: String,
    /// Median, fastest and slowest of the timed runs, in seconds.
    pub median_s: f64,
    pub min_s: f64,
    pub max_s: f64,
    pub runs: usize,
    /// Floating-point operations per run (2 per multiply-add); 0 for data-movement kernels.
    pub flops: f64,
    /// Bytes a run must read and write at least.
    pub bytes: f64,
    /// "timestamp" or "wall".
    pub clock: &'static str,
}

impl std::fmt::Display for Measurement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<24} {:<34} {:>9.3} ms  {}  ({} runs, {} clock)",
            self.kernel,
            self.shape,
            self.median_s * 1e3,
            self.rate(),
            self.runs,
            self.clock
        )
    }
}

impl Measurement {
    pub fn gflops(&self) -> f64 {
        self.flops / self.median_s / 1e9
    }
    pub fn gbytes(&self) -> f64 {
        self.bytes / self.median_s / 1e9
    }
    /// The figure that matters for this kernel: GFLOP/s if it computes, GB/s if it moves.
    pub fn rate(&self) -> String {
        if self.flops > 0.0 {
            format!("{:8.2} GFLOP/s", self.gflops())
        } else {
            format!("{:8.2} GB/s   ", self.gbytes())
        }
    }
}

/// Runs `encode` once to warm up, then `runs` times, each in its own pass and submission.
pub fn time_pass(
    gpu: &Gpu,
    runs: usize,
    encode: impl Fn(&mut wgpu::ComputePass<'_>) -> Result<()>,
) -> Result<(Vec<f64>, &'static str)> {
    let timer = GpuTimer::new(gpu);
    gpu.run_pass("warm-up", &encode)?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let t0 = Instant::now();
        gpu.run("timed", |enc| {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("timed"),
                timestamp_writes: timer.as_ref().map(|t| t.writes()),
            });
            encode(&mut pass)?;
            drop(pass);
            if let Some(t) = &timer {
                t.resolve(enc);
            }
            Ok(())
        })?;
        let wall = t0.elapsed().as_secs_f64();
        times.push(match &timer {
            Some(t) => t.seconds(gpu)?,
            None => wall,
        });
    }
    Ok((times, if timer.is_some() { "timestamp" } else { "wall" }))
}

fn measure(
    kernel: String,
    shape: String,
    (mut times, clock): (Vec<f64>, &'static str),
    flops: f64,
    bytes: f64,
) -> Measurement {
    times.sort_by(f64::total_cmp);
    Measurement {
        kernel,
        shape,
        median_s: times[times.len() / 2],
        min_s: times[0],
        max_s: times[times.len() - 1],
        runs: times.len(),
        flops,
        bytes,
        clock,
    }
}

fn buffers(gpu: &Gpu, rng: &mut TensorRng, lens: &[usize]) -> Result<Vec<wgpu::Buffer>> {
    lens.iter()
        .map(|&l| gpu.upload("bench", &rng.uniform(l)))
        .collect()
}

fn buffers_as(
    gpu: &Gpu,
    rng: &mut TensorRng,
    lens: &[usize],
    p: Precision,
) -> Result<Vec<wgpu::Buffer>> {
    lens.iter()
        .map(|&l| gpu.upload_as("bench", &rng.uniform(l), p))
        .collect()
}

/// Times a convolution with the given tunables (None: the adapter's default).
pub fn conv(gpu: &Gpu, s: ConvShape, tune: Option<ConvTune>, runs: usize) -> Result<Measurement> {
    conv_as(gpu, s, tune, Precision::F32, runs)
}

/// `conv` with tensors stored as `precision`.
pub fn conv_as(
    gpu: &Gpu,
    s: ConvShape,
    tune: Option<ConvTune>,
    precision: Precision,
    runs: usize,
) -> Result<Measurement> {
    let mut rng = TensorRng::new(1);
    let tune = tune.unwrap_or_else(|| ConvTune::default_for(gpu));
    let conv = Conv2d::with_precision(gpu, s, true, tune, precision)?;
    let p = conv.upload(gpu, &rng.uniform(s.weight_len()), &rng.uniform(s.c_out))?;
    let b = buffers_as(gpu, &mut rng, &[s.input_len(), s.output_len()], precision)?;
    let bg = conv.bind(gpu, &b[0], &p, &b[1])?;
    let t = time_pass(gpu, runs, |pass| conv.encode(gpu, pass, &bg))?;
    let name = format!(
        "conv{}x{} {:?}/{}{}",
        s.k,
        s.k,
        conv.tune.variant,
        conv.tune.wg,
        if precision == Precision::F16 {
            " f16"
        } else {
            ""
        }
    );
    let shape = format!("{}x{}x{}x{} -> {}", s.n, s.c_in, s.h, s.w, s.c_out);
    let e = precision.bytes() as f64;
    let bytes = e * (s.input_len() + s.output_len() + s.weight_len()) as f64;
    Ok(measure(name, shape, t, 2.0 * s.macs() as f64, bytes))
}

/// Times a fully connected layer.
pub fn linear(gpu: &Gpu, s: LinearShape, runs: usize) -> Result<Measurement> {
    linear_as(gpu, s, Precision::F32, runs)
}

/// `linear` with tensors and weights stored as `precision`.
pub fn linear_as(
    gpu: &Gpu,
    s: LinearShape,
    precision: Precision,
    runs: usize,
) -> Result<Measurement> {
    let mut rng = TensorRng::new(2);
    let fc = Linear::with_options(gpu, s, true, gpu.max_binding_bytes(), precision)?;
    let p = fc.upload(gpu, &rng.uniform(s.k * s.n_out), &rng.uniform(s.n_out))?;
    let b = buffers_as(gpu, &mut rng, &[s.m * s.k, s.m * s.n_out], precision)?;
    let bgs = fc.bind(gpu, &b[0], &p, &b[1])?;
    let t = time_pass(gpu, runs, |pass| fc.encode(gpu, pass, &bgs))?;
    let name = format!(
        "linear{}{}",
        if fc.subgroup { " subgroup" } else { "" },
        if precision == Precision::F16 {
            " f16"
        } else {
            ""
        }
    );
    let shape = format!(
        "{}x{} -> {} ({} bindings)",
        s.m,
        s.k,
        s.n_out,
        fc.chunk_count()
    );
    let e = precision.bytes() as f64;
    let bytes = e * (s.m * s.k + s.k * s.n_out + s.m * s.n_out) as f64;
    Ok(measure(name, shape, t, 2.0 * s.macs() as f64, bytes))
}

type Dims = (usize, usize, usize, usize);

/// Times the memory-bound kernels at one activation shape.
pub fn elementwise(gpu: &Gpu, dims: Dims, runs: usize) -> Result<Vec<Measurement>> {
    let (n, c, h, w) = dims;
    let len = n * c * h * w;
    let shape = format!("{n}x{c}x{h}x{w}");
    let mut rng = TensorRng::new(3);
    let b = buffers(gpu, &mut rng, &[len, len, c, c, len])?;
    let mut out = Vec::new();

    let pool = MaxPool::new(gpu, dims, true)?;
    let bg = pool.bind(gpu, &b[0], &b[1], Some(&b[4]))?;
    let t = time_pass(gpu, runs, |p| pool.encode(gpu, p, &bg))?;
    let bytes = 4.0 * (len + 2 * pool.output_len()) as f64;
    out.push(measure(
        "maxpool2x2+argmax".into(),
        shape.clone(),
        t,
        0.0,
        bytes,
    ));

    let aff = ChannelAffine::new(gpu, dims, true)?;
    let bg = aff.bind(gpu, &b[0], &b[2], &b[3], &b[1])?;
    let t = time_pass(gpu, runs, |p| aff.encode(gpu, p, &bg))?;
    out.push(measure(
        "batchnorm+relu".into(),
        shape.clone(),
        t,
        0.0,
        8.0 * len as f64,
    ));

    let lrn = Lrn::new(gpu, dims, LrnParams::default())?;
    let bg = lrn.bind(gpu, &b[0], &b[1])?;
    let t = time_pass(gpu, runs, |p| lrn.encode(gpu, p, &bg))?;
    out.push(measure(
        "lrn".into(),
        shape.clone(),
        t,
        0.0,
        8.0 * len as f64,
    ));

    let ap = AdaptiveAvgPool::new(gpu, dims, (7, 7))?;
    let bg = ap.bind(gpu, &b[0], &b[1])?;
    let t = time_pass(gpu, runs, |p| ap.encode(gpu, p, &bg))?;
    let bytes = 4.0 * (len + ap.output_len()) as f64;
    out.push(measure("adaptive_avgpool 7x7".into(), shape, t, 0.0, bytes));

    // Dense evaluation's window gather at pool5 of a 384x384 image (12x12 -> 36 rows).
    let (gd, win) = ((n, 512, 12, 12), (7, 7));
    let ic = Im2col::new(gpu, gd, win)?;
    let g = buffers(gpu, &mut rng, &[n * 512 * 144, ic.output_len()])?;
    let bg = ic.bind(gpu, &g[0], &g[1])?;
    let t = time_pass(gpu, runs, |p| ic.encode(gpu, p, &bg))?;
    let bytes = 8.0 * ic.output_len() as f64;
    out.push(measure(
        "im2col 7x7 (dense fc6)".into(),
        format!("{n}x512x12x12"),
        t,
        0.0,
        bytes,
    ));
    Ok(out)
}

/// Times softmax over [rows, cols].
pub fn softmax(gpu: &Gpu, rows: usize, cols: usize, runs: usize) -> Result<Measurement> {
    let mut rng = TensorRng::new(4);
    let sm = Softmax::new(gpu, rows, cols)?;
    let b = buffers(gpu, &mut rng, &[rows * cols, rows * cols])?;
    let bg = sm.bind(gpu, &b[0], &b[1])?;
    let t = time_pass(gpu, runs, |p| sm.encode(gpu, p, &bg))?;
    let bytes = 8.0 * (rows * cols) as f64;
    Ok(measure(
        "softmax".into(),
        format!("{rows}x{cols}"),
        t,
        0.0,
        bytes,
    ))
}

/// The first suite: conv3x3 and FC at two VGG16 layer shapes each (the middle layers
/// conv3_2 and conv4_2, and fc1 and fc2), conv1x1 of config C, and the other kernels at
/// VGG16 activation shapes. `quick` uses fewer runs.
pub fn suite(
    gpu: &Gpu,
    quick: bool,
    mut report: impl FnMut(&Measurement),
) -> Result<Vec<Measurement>> {
    let runs = if quick { 3 } else { 7 };
    let mut all = Vec::new();
    let mut push = |m: Measurement| {
        report(&m);
        all.push(m);
    };
    let conv3 = [
        ConvShape::new(1, 256, 256, 56, 56, 3),
        ConvShape::new(1, 512, 512, 28, 28, 3),
    ];
    for s in conv3 {
        for t in ConvTune::variants_for(gpu) {
            push(conv(gpu, s, Some(t), runs)?);
        }
    }
    push(conv(
        gpu,
        ConvShape::new(1, 512, 512, 28, 28, 1),
        None,
        runs,
    )?);
    for m in [1, 32] {
        for (k, n_out) in [(25088, 4096), (4096, 4096)] {
            push(linear(gpu, LinearShape { m, k, n_out }, runs)?);
        }
    }
    if gpu.features().contains(wgpu::Features::SHADER_F16) {
        push(conv_as(gpu, conv3[0], None, Precision::F16, runs)?);
        for m in [1, 32] {
            let s = LinearShape {
                m,
                k: 25088,
                n_out: 4096,
            };
            push(linear_as(gpu, s, Precision::F16, runs)?);
        }
    }
    for m in elementwise(gpu, (1, 64, 224, 224), runs)? {
        push(m);
    }
    push(softmax(gpu, 32, 1000, runs)?);
    Ok(all)
}
