//! conv's benchmark rows: the forward per variant and precision, and training's input,
//! weight and bias gradients, each beside the CPU reference's time where asked.

use super::{entry, grad, time_async, time_pass, upload_n, with_cpu, Io, Row, Settings, ROTATE};
use crate::bench::report::Kernel;
use crate::check::TensorRng;
use crate::error::Result;
use crate::gpu::{Gpu, Precision};
use crate::kernels::conv::{Conv2d, ConvShape, ConvTune};
use crate::reference;

/// Convolution with `tune` (the adapter's default if None), ReLU fused.
pub async fn forward(
    gpu: &Gpu,
    s: ConvShape,
    tune: Option<ConvTune>,
    precision: Precision,
    set: Settings,
) -> Result<Kernel> {
    let mut rng = TensorRng::new(1);
    let default = ConvTune::default_for_shape(gpu, &s);
    let t = tune.unwrap_or(default);
    let conv = Conv2d::with_precision(gpu, s, true, t, precision)?;
    let w = rng.uniform(s.weight_len());
    let b = rng.uniform(s.c_out);
    let p = conv.upload(gpu, &w, &b)?;
    let xs = upload_n(gpu, &mut rng, s.input_len(), precision)?;
    let y = gpu.alloc("bench output", (s.output_len() * precision.bytes()) as u64)?;
    let bgs = xs
        .iter()
        .map(|x| conv.bind(gpu, x, &p, &y))
        .collect::<Result<Vec<_>>>()?;
    let timing = time_pass(gpu, set.runs, |pass, i| {
        conv.encode(gpu, pass, &bgs[i % ROTATE])
    })
    .await?;
    let e = precision.bytes() as f64;
    let bytes = e * (s.input_len() + s.output_len() + s.weight_len()) as f64;
    let shape = shape(&s);
    let mut k = entry("conv/forward", shape, timing, 2.0 * s.macs() as f64, bytes);
    k.variant = format!(
        "{:?}/wg{}/tm{}",
        conv.tune.variant, conv.tune.wg, conv.tune.tm
    );
    k.precision = format!("{precision:?}").to_lowercase();
    k.is_default = t == default && precision == Precision::F32;
    let cpu = if set.cpu && precision == Precision::F32 {
        let x = rng.uniform(s.input_len());
        Some(
            time_async(1, async || {
                Ok(reference::conv::forward(
                    &x,
                    (s.n, s.c_in, s.h, s.w),
                    (&w, &b),
                    s.c_out,
                    s.k,
                    true,
                ))
            })
            .await?,
        )
    } else {
        None
    };
    Ok(with_cpu(k, cpu))
}

/// The weight preparation of conv `s` for `tune` (`kernels::conv::pack`: training runs it
/// every step, inference once at upload), stored as `tune.weight_precision(storage)`.
pub async fn pack(
    gpu: &Gpu,
    s: ConvShape,
    tune: ConvTune,
    storage: Precision,
    set: Settings,
) -> Result<Kernel> {
    let (c_in, c_out, k) = (s.c_in, s.c_out, s.k);
    let op = crate::kernels::conv::pack(gpu, c_in, c_out, k, tune, storage)?;
    let (packed, _) = tune.packed_elems(c_in, c_out, k);
    let stored = tune.weight_precision(storage);
    let io = Io {
        inputs: &[s.weight_len()],
        zeroed: &[],
        // In 4-byte words: f16 halves go two to a word.
        output: (packed * stored.bytes()).div_ceil(4),
    };
    let row = Row {
        op: "conv/pack",
        shape: shape(&s),
        flops: 0.0,
    };
    let mut e = grad(gpu, set, &op, io, row, None).await?;
    e.variant = format!("{:?}/wg{}/tm{}", tune.variant, tune.wg, tune.tm);
    e.precision = format!("{storage:?}").to_lowercase();
    Ok(e)
}

/// A conv entry's shape: "3x3 1x64x224x224 -> 64" (kernel size, input, output channels).
pub fn shape(s: &ConvShape) -> String {
    format!(
        "{}x{} {}x{}x{}x{} -> {}",
        s.k, s.k, s.n, s.c_in, s.h, s.w, s.c_out
    )
}

/// The backward kernels of one conv layer: the input gradient as the trainer computes it
/// (through the forward kernels) and by the plain kernel, the weight gradient, the bias
/// gradient.
pub async fn backward(gpu: &Gpu, s: ConvShape, set: Settings) -> Result<Vec<Kernel>> {
    let shape = shape(&s);
    let macs = 2.0 * s.macs() as f64;
    let dims = (s.n, s.c_in, s.h, s.w);
    // The reference computes all three gradients in one call; it is timed under dgrad.
    let full = |d: &[Vec<f32>]| {
        let x = TensorRng::new(12).uniform(s.input_len());
        let _ = crate::reference::conv::backward(&x, dims, &d[1], &d[0], s.c_out, s.k);
    };
    // What the trainer runs for dx: the forward conv from c_out to c_in channels with the
    // flipped weight, in the variant the selector picks for that shape (no CPU timing: the
    // reference's is the dgrad row's).
    let d = ConvShape::new(s.n, s.c_out, s.c_in, s.h, s.w, s.k);
    let tune = crate::kernels::conv::select(gpu, d, None, Precision::F32);
    let no_cpu = Settings { cpu: false, ..set };
    let mut dx = forward(gpu, d, Some(tune), Precision::F32, no_cpu).await?;
    dx.op = "conv/dgrad_forward".into();
    dx.shape = shape.clone();
    dx.is_default = true;
    let mut rows = vec![
        dx,
        grad(
            gpu,
            set,
            &crate::kernels::conv::dgrad(gpu, s)?,
            Io {
                inputs: &[s.output_len(), s.weight_len()],
                zeroed: &[],
                output: s.input_len(),
            },
            Row {
                op: "conv/dgrad",
                shape: shape.clone(),
                flops: macs,
            },
            Some(&full),
        )
        .await?,
        wgrad(
            gpu,
            s,
            set,
            shape.clone(),
            crate::kernels::conv::ConvVariant::Direct,
        )
        .await?,
        grad(
            gpu,
            set,
            &crate::kernels::elementwise::channel_sum(gpu, s.n, s.c_out, s.h * s.w, false)?,
            Io {
                inputs: &[s.output_len()],
                zeroed: &[],
                output: s.c_out,
            },
            Row {
                op: "conv/bias_grad",
                shape: shape.clone(),
                flops: 0.0,
            },
            None,
        )
        .await?,
    ];
    // The tensor-core weight gradient (f16 training's) where the adapter has cooperative
    // matrices; like the forward's, its lane-by-lane emulation is a test device, not timed.
    let coop = crate::kernels::conv::ConvVariant::Coop;
    if coop.spec().missing(gpu).is_none() && coop.spec().kernels.contains(&s.k) {
        rows.push(wgrad(gpu, s, no_cpu, shape.clone(), coop).await?);
    }
    Ok(rows)
}

/// The weight gradient of conv `s` that goes with the `forward` variant (`wgrad_for`: the
/// tensor-core one after an f16-operand forward), both passes where it splits the pixels.
async fn wgrad(
    gpu: &Gpu,
    s: ConvShape,
    set: Settings,
    shape: String,
    forward: crate::kernels::conv::ConvVariant,
) -> Result<Kernel> {
    use crate::kernels::conv::backward_weight as wg;
    let mut rng = TensorRng::new(11);
    let op = wg::wgrad_for(gpu, s, false, forward, s.n)?;
    let x = gpu.upload("bench input", &rng.uniform(s.input_len()))?;
    let dy = gpu.upload("bench dy", &rng.uniform(s.output_len()))?;
    let coop = forward.f16_operands();
    let partial = match coop {
        true => wg::coop_partial_len(s),
        false => wg::partial_len(s, s.n),
    };
    let partials = gpu.alloc("bench partials", (partial.max(1) * 4) as u64)?;
    let dw = gpu.alloc("bench output", (s.weight_len() * 4) as u64)?;
    let bgs = op.bind(gpu, &x, &dy, &partials, &dw)?;
    let t = time_pass(gpu, set.runs, |p, _| op.encode(gpu, p, &bgs)).await?;
    // The partial sums are written once and read once.
    let bytes = 4.0 * (s.input_len() + s.output_len() + s.weight_len() + 2 * partial) as f64;
    let mut k = entry("conv/wgrad", shape, t, 2.0 * s.macs() as f64, bytes);
    // `gemm::lanes` is the GEMM with a chunk per lane (small maps).
    let name = op.main.name.strip_prefix("conv/backward_weight/");
    let name = name.unwrap_or(&op.main.name);
    k.variant = match (&op.reduce, name) {
        (_, _) if coop => format!("{forward:?}/{} chunks", wg::coop_split(s).0),
        (Some(_), _) => format!("{name}/{} chunks", wg::split(s, s.n).chunks),
        (None, _) => name.into(),
    };
    if coop {
        // f16 operands (what f16 training runs), not the f32 default.
        k.precision = "f16".into();
        k.is_default = false;
    }
    Ok(k)
}
