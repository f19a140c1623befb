//! conv's conformance: its cases (`cases`, which the suite's table concatenates) and the
//! checks they run, each against the CPU reference
//! (`reference::conv`): the forward on every variant, the input and weight gradients as
//! training computes them, and the GPU weight packings against the host's.

use super::run_op;
use super::suite::{case, cs, one, skip, Case};
use super::{
    dims_str, f16_rounded, poisoned, read_as, Outcome, TensorRng, F16_KERNEL_TOL, F32_KERNEL_TOL,
};
use crate::error::Result;
use crate::gpu::{Gpu, Precision};
use crate::kernels::conv::{ConvShape, ConvTune, ConvVariant, Packing, Tiling};
use crate::kernels::{self, conv::Conv2d};
use crate::reference;

/// conv's cases: the forward and packings, then the backward.
pub fn cases(gpu: &Gpu) -> Vec<Case<'_>> {
    let mut v = forward_cases(gpu);
    v.extend(backward_cases(gpu));
    v
}

/// conv/forward on every variant the adapter offers (the others named as skipped), at 3x3
/// and 1x1, with and without ReLU, in f16 where the adapter has it, and with grids past
/// 65535 workgroups in a dimension; conv/pack for every variant.
fn forward_cases(gpu: &Gpu) -> Vec<Case<'_>> {
    let f = "conv/forward";
    let mut v = vec![
        // 66000 images of 1x1: one workgroup each, past 65535 in one dimension.
        one(f, "grid over 65535", |s| {
            forward(gpu, cs(66000, 3, 4, 1, 1, 3), true, None, s)
        }),
    ];
    let offered = ConvTune::variants_for(gpu);
    for variant in ConvVariant::ALL {
        // The f16-operand variants' cases are f16's (`SuiteOptions::precision`).
        let name = match variant.f16_operands() {
            true => format!("{variant:?} f16 operands"),
            false => format!("{variant:?}"),
        };
        let Some(&tune) = offered.iter().find(|t| t.variant == variant) else {
            let why = variant.spec().missing(gpu).unwrap_or_default();
            v.push(skip(&format!("{f} {name}"), why));
            continue;
        };
        let mut cases = variant_cases(gpu, tune, &name);
        if variant.f16_operands() {
            cases.iter_mut().for_each(Case::mark_f16);
        }
        v.extend(cases);
    }
    v.extend(f16_cases(gpu, &offered));
    v
}

/// One conv variant's cases at `tune`: 3x3 shapes off every tile with and without ReLU,
/// 1x1 where it computes them, a grid past 65535 workgroups, and the trainer's repack of
/// canonical weights into its layout.
fn variant_cases<'g>(gpu: &'g Gpu, tune: ConvTune, name: &str) -> Vec<Case<'g>> {
    let (f, variant) = ("conv/forward", tune.variant);
    // (n, c_in, c_out, h, w): C_in = 3, odd sizes, 1x1 spatial, channel counts off every tile.
    const SHAPES_3X3: [(usize, usize, usize, usize, usize); 6] = [
        (1, 3, 13, 13, 15),
        (3, 16, 20, 7, 7),
        (2, 8, 5, 1, 1),
        (1, 64, 72, 28, 28),
        (3, 5, 9, 2, 3),
        (2, 19, 37, 11, 9),
    ];
    const SHAPES_1X1: [(usize, usize, usize, usize, usize); 4] = [
        (3, 5, 11, 13, 15),
        (1, 64, 24, 7, 7),
        (2, 3, 1, 1, 1),
        (2, 7, 9, 5, 3),
    ];
    let mut v = Vec::new();
    // The quick set: the 3x3 shape off every tile with ReLU, and one 1x1.
    for (i, (n, ci, co, h, w)) in SHAPES_3X3.into_iter().enumerate() {
        for relu in [false, true] {
            v.push(
                one(f, name, move |s| {
                    forward(gpu, cs(n, ci, co, h, w, 3), relu, Some(tune), s)
                })
                .quick_if(i == 5 && relu),
            );
        }
    }
    let kernels = variant.spec().kernels;
    if kernels.contains(&1) {
        for (i, (n, ci, co, h, w)) in SHAPES_1X1.into_iter().enumerate() {
            v.push(
                one(f, name, move |s| {
                    forward(gpu, cs(n, ci, co, h, w, 1), true, Some(tune), s)
                })
                .quick_if(i == 0),
            );
        }
    }
    // NaN through the fused ReLU, at two corners and inside (quick: every driver and the
    // browser run it).
    v.push(
        one(f, &format!("{name} NaN"), move |s| {
            forward_nan(gpu, cs(2, 6, 11, 9, 10, 3), tune, s)
        })
        .quick(),
    );
    let (grid_tune, big) = grid_case(tune);
    v.push(one(f, &format!("{name} grid over 65535"), move |s| {
        forward(gpu, big, false, Some(grid_tune), s)
    }));
    // The one preparation of canonical weights into this variant's layout (training's
    // per-step repack, inference's upload), and in f16 where f16 storage stores them so.
    let mut packs = vec![tune];
    if variant == ConvVariant::Direct {
        packs.push(ConvTune { tm: 4, ..tune });
    }
    for t in packs {
        let f32 = Precision::F32;
        let halves = t.weight_precision(f32) == f32 && t.weight_precision(Precision::F16) != f32;
        for storage in [f32, Precision::F16]
            .into_iter()
            .filter(|p| *p == f32 || halves)
        {
            let label = match storage {
                Precision::F32 => name.to_string(),
                Precision::F16 => format!("{name} f16"),
            };
            for (i, (ci, co, k)) in [(3, 13, 3), (8, 16, 1), (5, 9, 3)].into_iter().enumerate() {
                if !kernels.contains(&k) {
                    continue;
                }
                let c = one("conv/pack", &label, move |s| {
                    pack(gpu, (ci, co, k), t, storage, s)
                });
                v.push(match storage {
                    Precision::F32 => c.quick_if(i == 0),
                    Precision::F16 => c.f16(),
                });
            }
        }
    }
    v
}

/// f16 storage's cases: a default conv, and what --precision f16 runs on tensor cores
/// where the adapter offers them; skipped without shader-f16.
fn f16_cases<'g>(gpu: &'g Gpu, offered: &[ConvTune]) -> Vec<Case<'g>> {
    let f = "conv/forward";
    let mut v = Vec::new();
    if gpu.features().contains(wgpu::Features::SHADER_F16) {
        v.push(
            one(f, "f16", |s| {
                forward_as(gpu, cs(2, 16, 24, 13, 15, 3), true, None, Precision::F16, s)
            })
            .quick(),
        );
        // What --precision f16 runs on tensor cores, in f16 storage.
        for t in offered.iter().filter(|t| t.variant.f16_operands()) {
            let t = *t;
            for (i, (n, ci, co, h, w, k)) in [
                (2, 16, 24, 13, 15, 3),
                (1, 70, 130, 9, 11, 3),
                (3, 5, 7, 6, 5, 1),
            ]
            .into_iter()
            .enumerate()
            {
                v.push(
                    one(f, &format!("{:?} f16", t.variant), move |s| {
                        forward_as(
                            gpu,
                            cs(n, ci, co, h, w, k),
                            true,
                            Some(t),
                            Precision::F16,
                            s,
                        )
                    })
                    .quick_if(i == 0),
                );
            }
        }
    } else {
        let why = format!("{} lacks the shader-f16 feature", gpu.info().name);
        v.push(skip(&format!("{f} f16"), why));
    }
    v.iter_mut().for_each(Case::mark_f16);
    v
}

/// A conv shape whose grid passes 65535 workgroups in x under `tune` (with the workgroup
/// size it sets): 16-lane workgroups of 4 pixels need 1024 rows of 1025 pixel groups
/// (65600); the GEMM variant's tiles of 128 pixels twice the rows; 16-lane workgroups of
/// 4x4 tiles 16 images of 256 x 257 tiles, of 2x2 tiles 4 images of 512 x 514; blocks of
/// 64 pixels 2048 x 2050 pixels.
pub fn grid_case(tune: ConvTune) -> (ConvTune, ConvShape) {
    match tune.variant.spec().tiling {
        Tiling::Pixels128 => (tune, cs(1, 1, 3, 2048, 4100, 3)),
        Tiling::Gemm64 => (tune, cs(1, 1, 3, 2048, 2050, 3)),
        Tiling::Tiles4x4 => (ConvTune { wg: 16, ..tune }, cs(16, 1, 1, 1024, 1028, 3)),
        Tiling::Tiles2x2 => (ConvTune { wg: 16, ..tune }, cs(4, 1, 1, 1024, 1028, 3)),
        Tiling::Lanes => (ConvTune { wg: 16, ..tune }, cs(1, 1, 3, 1024, 4100, 3)),
    }
}

/// conv/backward: the input, weight and bias gradients over the weight gradient's ways
/// (per channel pair, the GEMM in one chunk and split), and f16 training's where an
/// f16-operand forward is offered.
fn backward_cases(gpu: &Gpu) -> Vec<Case<'_>> {
    let mut v = Vec::new();
    for (i, s) in [
        cs(2, 3, 5, 7, 9, 3),
        cs(1, 8, 16, 13, 15, 3),
        cs(3, 6, 4, 1, 1, 3),
        cs(2, 5, 7, 6, 5, 1),
        cs(1, 13, 3, 5, 1, 3),
        // Above are batches of under 16 groups of 4 pixels, where the weight gradient runs
        // per channel pair; below, the GEMM in one chunk, then with the pixels split in 2,
        // 3 and 8 chunks (of 512 groups).
        cs(1, 6, 7, 17, 19, 3),
        cs(2, 5, 3, 9, 15, 1),
        cs(2, 9, 6, 37, 45, 3),
        cs(3, 4, 5, 33, 50, 1),
        cs(4, 3, 10, 64, 61, 3),
        // Past one 64x64 block of the tensor-core weight gradient in both dimensions
        // (70 output channels, 66 x 9 columns), its 544 pixels in 2 chunks.
        cs(2, 66, 70, 16, 17, 3),
        // Small maps, a chunk per image, each lane summing a chunk of its own (where the
        // chunks fill a workgroup: 8 lanes on a CPU driver, 32 on a GPU): 9 chunks of 1
        // work item, 33 of 2, and a 1x1 kernel's 10 of 2.
        cs(9, 7, 9, 4, 4, 3),
        cs(33, 3, 5, 4, 5, 3),
        cs(10, 5, 3, 3, 5, 1),
    ]
    .into_iter()
    .enumerate()
    {
        // The quick set: the weight gradient per channel pair, and as a GEMM in chunks.
        v.push(
            case("conv/backward", "", move |seed| backward(gpu, s, seed))
                .quick_if(i == 0 || i == 7),
        );
        // f16 training's dx and dw, where an f16-operand forward is offered.
        if ConvTune::variants_for(gpu)
            .iter()
            .any(|t| t.variant.f16_operands() && t.variant.spec().kernels.contains(&s.k))
        {
            v.push(
                case("conv/backward", "f16 operands", move |seed| {
                    backward_f16_operands(gpu, s, seed)
                })
                .f16()
                .quick_if(i == 0),
            );
        }
    }
    v
}

/// Convolution (kernel 1 or 3) against the reference; `tune` None takes the adapter default.
pub async fn forward(
    gpu: &Gpu,
    s: ConvShape,
    relu: bool,
    tune: Option<ConvTune>,
    seed: u64,
) -> Result<Outcome> {
    forward_as(gpu, s, relu, tune, Precision::F32, seed).await
}

/// `forward` with tensors and weights stored as `precision`.
pub async fn forward_as(
    gpu: &Gpu,
    s: ConvShape,
    relu: bool,
    tune: Option<ConvTune>,
    precision: Precision,
    seed: u64,
) -> Result<Outcome> {
    let tune = tune.unwrap_or_else(|| ConvTune::default_for_shape(gpu, &s));
    let f16 = precision == Precision::F16 || tune.variant.f16_operands();
    let [x, w, b] = TensorRng::new(seed).operands([s.input_len(), s.weight_len(), s.c_out], f16);
    let (got, conv) = run_forward(gpu, s, relu, tune, precision, (&x, &w, &b)).await?;
    let want = reference::conv::forward(&x, (s.n, s.c_in, s.h, s.w), (&w, &b), s.c_out, s.k, relu);
    let shape = format!(
        "{}x{}{}{} {}->{} {:?}/{}",
        s.k,
        s.k,
        if relu { "+relu" } else { "" },
        if precision == Precision::F16 {
            " f16"
        } else {
            ""
        },
        dims_str((s.n, s.c_in, s.h, s.w)),
        s.c_out,
        conv.tune.variant,
        conv.tune.wg
    );
    let tol = match precision {
        Precision::F32 => F32_KERNEL_TOL,
        Precision::F16 => F16_KERNEL_TOL,
    };
    let o = Outcome::new("conv/forward", shape, &got, &want).tol(tol);
    if precision == Precision::F16 || o.diff.passes(tol) {
        return Ok(o);
    }
    // As linear's check, cancelling outputs (a 1x1 conv of 3 channels on a 1x1 map adds 4
    // terms; CI drew one whose 2 outputs came out 6e-5 apart, relative, at 3e-8 absolute)
    // pass within a few ulps of their terms (`Outcome::within_ulps_of`). Computed only
    // where the relative check fails: it costs a second reference conv.
    let abs = |v: &[f32]| v.iter().map(|a| a.abs()).collect::<Vec<_>>();
    let dims = (s.n, s.c_in, s.h, s.w);
    let terms = reference::conv::forward(&abs(&x), dims, (&abs(&w), &abs(&b)), s.c_out, s.k, false);
    Ok(o.within_ulps_of(terms.iter().fold(0.0f64, |m, v| m.max(*v as f64))))
}

/// One conv on the GPU into a poisoned output: what it wrote, and the kernel.
async fn run_forward(
    gpu: &Gpu,
    s: ConvShape,
    relu: bool,
    tune: ConvTune,
    precision: Precision,
    (x, w, b): (&[f32], &[f32], &[f32]),
) -> Result<(Vec<f32>, Conv2d)> {
    let conv = Conv2d::with_precision(gpu, s, relu, tune, precision)?;
    let params = conv.upload(gpu, w, b)?;
    let xb = gpu.upload_as("x", x, precision)?;
    let out = poisoned(gpu, "y", s.output_len())?;
    let bg = conv.bind(gpu, &xb, &params, &out)?;
    gpu.run_pass("conv", |pass| conv.encode(gpu, pass, &bg))?;
    let got = read_as(gpu, &out, s.output_len(), precision).await?;
    Ok((got, conv))
}

/// `tune`'s kernel with ReLU on an input that holds NaN (`TensorRng::with_nans`): the NaN
/// must reach every output it reaches in the reference, the rest as the reference
/// (`Outcome::through_nan`). Winograd's outputs may be NaN over each whole tile a NaN
/// touches: its transforms add every input of the tile's patch into every output, with
/// weights that cancel to 0 for the taps outside an output's window, and NaN * 0 is NaN.
pub async fn forward_nan(gpu: &Gpu, s: ConvShape, tune: ConvTune, seed: u64) -> Result<Outcome> {
    let mut rng = TensorRng::new(seed);
    let lens = [s.input_len(), s.weight_len(), s.c_out];
    let [x, w, b] = rng.operands(lens, tune.variant.f16_operands());
    let x = rng.with_nans(x);
    let (got, conv) = run_forward(gpu, s, true, tune, Precision::F32, (&x, &w, &b)).await?;
    let want = reference::conv::forward(&x, (s.n, s.c_in, s.h, s.w), (&w, &b), s.c_out, s.k, true);
    let tile = match tune.variant.spec().tiling {
        Tiling::Tiles4x4 => 4,
        Tiling::Tiles2x2 => 2,
        _ => 1,
    };
    // Output i's tile, as (plane, tile row, tile column); a plane is one (image, channel).
    let tile_of = |i: usize| {
        let (plane, p) = (i / (s.h * s.w), i % (s.h * s.w));
        (plane, p / s.w / tile, p % s.w / tile)
    };
    let reached: std::collections::HashSet<_> = (0..want.len())
        .filter(|&i| want[i].is_nan())
        .map(tile_of)
        .collect();
    let shape = format!(
        "{}x{}+relu NaN {}->{} {:?}/{}",
        s.k,
        s.k,
        dims_str((s.n, s.c_in, s.h, s.w)),
        s.c_out,
        conv.tune.variant,
        conv.tune.wg
    );
    Ok(Outcome::through_nan(
        "conv/forward",
        shape,
        &got,
        &want,
        |i| tile > 1 && reached.contains(&tile_of(i)),
    ))
}

fn conv_tag(s: &ConvShape) -> String {
    format!(
        "{}->{} k{}",
        dims_str((s.n, s.c_in, s.h, s.w)),
        s.c_out,
        s.k
    )
}

/// Conv input gradient, weight gradient (fresh and accumulated onto a previous
/// micro-batch's) and bias gradient.
pub async fn backward(gpu: &Gpu, s: ConvShape, seed: u64) -> Result<Vec<Outcome>> {
    let mut rng = TensorRng::new(seed);
    let x = rng.uniform(s.input_len());
    let wt = rng.uniform(s.weight_len());
    let dy = rng.uniform(s.output_len());
    let prev = rng.uniform(s.weight_len());
    let (dx, dw, db) =
        reference::conv::backward(&x, (s.n, s.c_in, s.h, s.w), &wt, &dy, s.c_out, s.k);
    let tag = conv_tag(&s);
    let got = run_op(
        gpu,
        &kernels::conv::dgrad(gpu, s)?,
        &[&dy, &wt],
        s.input_len(),
        None,
    )
    .await?;
    let mut out = vec![Outcome::new("conv/dgrad", tag.clone(), &got, &dx)];
    // The same gradient as a forward conv of dy with the flipped weight, on every variant
    // the adapter offers that f32 training runs (the f16-operand ones: `backward_f16_operands`).
    for tune in ConvTune::variants_for(gpu)
        .into_iter()
        .filter(|t| t.variant.spec().kernels.contains(&s.k) && !t.variant.f16_operands())
    {
        let got = dgrad_forward(gpu, s, &wt, &dy, tune).await?;
        let tag = format!("{tag} {:?}", tune.variant);
        out.push(Outcome::new("conv/dgrad_forward", tag, &got, &dx));
    }
    let f32_kernels = ConvVariant::Direct;
    let got = run_wgrad(gpu, s, &x, &dy, None, f32_kernels).await?;
    out.push(Outcome::new("conv/wgrad", tag.clone(), &got, &dw));
    let got = run_wgrad(gpu, s, &x, &dy, Some(&prev), f32_kernels).await?;
    let want: Vec<f32> = prev.iter().zip(&dw).map(|(a, b)| a + b).collect();
    out.push(Outcome::new(
        "conv/wgrad_accumulate",
        tag.clone(),
        &got,
        &want,
    ));
    let op = kernels::elementwise::channel_sum(gpu, s.n, s.c_out, s.h * s.w, false)?;
    let got = run_op(gpu, &op, &[&dy], s.c_out, None).await?;
    out.push(Outcome::new("conv/bias_grad", tag, &got, &db));
    Ok(out)
}

/// The gradients f16 training computes on tensor cores, after each f16-operand forward
/// variant the adapter offers: dx (the forward kernel over dy with the flipped weight,
/// repacked to f16 on the GPU) and dw (fresh and accumulated). x, the weight and dy are
/// rounded to f16 first and the reference takes the same values, so what remains is f32
/// summation, at the f32 tolerance.
pub async fn backward_f16_operands(gpu: &Gpu, s: ConvShape, seed: u64) -> Result<Vec<Outcome>> {
    let mut rng = TensorRng::new(seed);
    let x = f16_rounded(rng.uniform(s.input_len()));
    let wt = f16_rounded(rng.uniform(s.weight_len()));
    let dy = f16_rounded(rng.uniform(s.output_len()));
    let prev = rng.uniform(s.weight_len());
    let (dx, dw, _) =
        reference::conv::backward(&x, (s.n, s.c_in, s.h, s.w), &wt, &dy, s.c_out, s.k);
    let mut out = Vec::new();
    for tune in ConvTune::variants_for(gpu)
        .into_iter()
        .filter(|t| t.variant.spec().kernels.contains(&s.k) && t.variant.f16_operands())
    {
        let tag = format!("{} {:?}", conv_tag(&s), tune.variant);
        let got = dgrad_forward(gpu, s, &wt, &dy, tune).await?;
        out.push(Outcome::new("conv/dgrad_forward", tag.clone(), &got, &dx));
        let got = run_wgrad(gpu, s, &x, &dy, None, tune.variant).await?;
        out.push(Outcome::new("conv/wgrad", tag.clone(), &got, &dw));
        let got = run_wgrad(gpu, s, &x, &dy, Some(&prev), tune.variant).await?;
        let want: Vec<f32> = prev.iter().zip(&dw).map(|(a, b)| a + b).collect();
        out.push(Outcome::new("conv/wgrad_accumulate", tag, &got, &want));
    }
    Ok(out)
}

/// dw of conv `s` from x and dy, both passes where the pixels are split; added onto `prev`
/// where given, into a poisoned buffer otherwise.
async fn run_wgrad(
    gpu: &Gpu,
    s: ConvShape,
    x: &[f32],
    dy: &[f32],
    prev: Option<&[f32]>,
    forward: ConvVariant,
) -> Result<Vec<f32>> {
    let op = kernels::conv::backward_weight::wgrad_for(gpu, s, prev.is_some(), forward, s.n)?;
    let (xb, dyb) = (gpu.upload("x", x)?, gpu.upload("dy", dy)?);
    let dw = match prev {
        Some(p) => gpu.upload("dw", p)?,
        None => poisoned(gpu, "dw", s.weight_len())?,
    };
    let need = match forward.f16_operands() {
        true => kernels::conv::backward_weight::coop_partial_len(s),
        false => kernels::conv::backward_weight::partial_len(s, s.n),
    };
    let partials = poisoned(gpu, "partials", need.max(1))?;
    let bgs = op.bind(gpu, &xb, &dyb, &partials, &dw)?;
    gpu.run_pass("conv/wgrad", |p| op.encode(gpu, p, &bgs))?;
    gpu.read_async(&dw, s.weight_len()).await
}

/// dx of conv `s` as the trainer computes it: the weight flipped and repacked on the GPU for
/// `tune`, then the forward conv from c_out to c_in channels over dy.
async fn dgrad_forward(
    gpu: &Gpu,
    s: ConvShape,
    wt: &[f32],
    dy: &[f32],
    tune: ConvTune,
) -> Result<Vec<f32>> {
    let flipped = run_op(
        gpu,
        &kernels::conv::flip(gpu, s.c_in, s.c_out, s.k)?,
        &[wt],
        wt.len(),
        None,
    )
    .await?;
    let d = ConvShape::new(s.n, s.c_out, s.c_in, s.h, s.w, s.k);
    let conv = kernels::conv::Conv2d::with_tune(gpu, d, false, tune)?;
    let (wl, bl) = conv.tune.packed_elems(d.c_in, d.c_out, d.k);
    let packed = run_op(
        gpu,
        &kernels::conv::pack(gpu, d.c_in, d.c_out, d.k, conv.tune, Precision::F32)?,
        &[&flipped],
        wl,
        None,
    )
    .await?;
    let params = kernels::conv::ConvParams {
        weight: gpu.upload("dgrad weight", &packed)?,
        bias: gpu.upload("dgrad bias", &vec![0.0f32; bl])?,
    };
    let (xb, out) = (gpu.upload("dy", dy)?, poisoned(gpu, "dx", d.output_len())?);
    let bg = conv.bind(gpu, &xb, &params, &out)?;
    gpu.run_pass("conv/dgrad_forward", |p| conv.encode(gpu, p, &bg))?;
    gpu.read_async(&out, d.output_len()).await
}

/// `tune`'s packed weight layout as the reference describes it.
fn layout(tune: ConvTune, c_in: usize, k: usize) -> reference::conv::Layout {
    use reference::conv::Layout;
    let spec = tune.variant.spec();
    let tm = spec.tm.unwrap_or(tune.tm) as usize;
    match spec.packing {
        Packing::Blocked => Layout::Blocked { tm },
        Packing::Subgroup => Layout::Subgroup { tm },
        Packing::Winograd => Layout::Winograd { tm },
        Packing::Winograd2 => Layout::Winograd2 { tm },
        // Rows padded to whole 16-column matrix tiles.
        Packing::Gemm16 => Layout::Rows {
            k_pad: (c_in * k * k).div_ceil(16) * 16,
        },
    }
}

/// Canonical weights packed on the GPU into `tune`'s forward layout, stored as
/// `tune.weight_precision(storage)`, against the host packing: exact (a permutation),
/// except Winograd's transform, a sum of 9 products in f32 on the GPU against the f64 sum
/// rounded once on the host (relative error a few f32 ulps; 1e-6 allows for 8).
pub async fn pack(
    gpu: &Gpu,
    (c_in, c_out, ks): (usize, usize, usize),
    tune: ConvTune,
    storage: Precision,
    seed: u64,
) -> Result<Outcome> {
    let w = TensorRng::new(seed).uniform(c_out * c_in * ks * ks);
    let (len, _) = tune.packed_elems(c_in, c_out, ks);
    let want = reference::conv::pack(&w, (c_in, c_out, ks), layout(tune, c_in, ks), len);
    let op = kernels::conv::pack(gpu, c_in, c_out, ks, tune, storage)?;
    let shape = format!("{c_in}->{c_out} k{ks} {:?}/tm{}", tune.variant, tune.tm);
    let packing = tune.variant.spec().packing;
    if tune.weight_precision(storage) == Precision::F16 {
        // Two f16 halves per 4-byte word (low half first), against the host's values
        // rounded to f16 to nearest even. WGSL lets a conversion to f16 round to either
        // neighbour, so an adapter may differ by one f16 ulp per element: relative error at
        // most 2^-10 (9.8e-4), the tolerance.
        let words = run_op(gpu, &op, &[&w], want.len().div_ceil(2), None).await?;
        let got: Vec<f32> = words
            .iter()
            .flat_map(|x| {
                let b = x.to_bits();
                [b as u16, (b >> 16) as u16].map(|h| half::f16::from_bits(h).to_f32())
            })
            .take(want.len())
            .collect();
        let want = f16_rounded(want);
        let shape = format!("{shape} f16");
        return Ok(Outcome::new("conv/pack", shape, &got, &want).tol(1e-3));
    }
    let got = run_op(gpu, &op, &[&w], want.len(), None).await?;
    let tol = if matches!(packing, Packing::Winograd | Packing::Winograd2) {
        1e-6
    } else {
        0.0
    };
    Ok(Outcome::new("conv/pack", shape, &got, &want).tol(tol))
}
