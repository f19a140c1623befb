//! linear's (the FC layers') conformance: its cases (`cases`, which the suite's table
//! concatenates) and the checks they run against the CPU reference
//! (`reference::linear`): the forward on every variant and precision, weights split over
//! bindings, and the gradients over row chunks.

use super::run_op;
use super::suite::{case, ls, one, skip, Case, Scope, SuiteOptions};
use super::{poisoned, read_as, Outcome, TensorRng, F16_KERNEL_TOL, F32_KERNEL_TOL};
use crate::error::Result;
use crate::gpu::{Gpu, Precision};
use crate::kernels::{
    self,
    linear::{Linear, LinearShape, LinearVariant},
};
use crate::reference;

/// linear's cases: the forward, then the backward.
pub fn cases<'a>(gpu: &'a Gpu, opts: &SuiteOptions) -> Vec<Case<'a>> {
    let mut v = forward_cases(gpu, opts);
    v.extend(backward_cases(gpu));
    v
}

/// linear/forward on every variant: odd shapes, batch 11 and 17, weights split over
/// bindings, a grid past 65535 workgroups, fc8, f16, and VGG16's 392 MiB fc6 with --full.
fn forward_cases<'a>(gpu: &'a Gpu, opts: &SuiteOptions) -> Vec<Case<'a>> {
    let f = "linear/forward";
    let f32 = Precision::F32;
    let mut v = Vec::new();
    for variant in LinearVariant::ALL {
        // The f16-operand variants' cases are f16's (`SuiteOptions::precision`).
        let name = match variant.f16_operands() {
            true => format!("{variant:?} f16 operands"),
            false => format!("{variant:?}"),
        };
        if let Some(why) = variant.missing(gpu) {
            v.push(skip(&format!("{f} {name}"), why));
            continue;
        }
        let first = v.len();
        // The last: more than one 64 x 64 block of the tensor-core variants each way.
        let shapes = [
            (1, 100, 13),
            (3, 37, 29),
            (5, 1, 3),
            (9, 130, 6),
            (11, 300, 9),
            (17, 33, 5),
            (70, 45, 130),
        ];
        for (i, (m, k, n)) in shapes.into_iter().enumerate() {
            for relu in [false, true] {
                v.push(
                    one(f, &name, move |s| {
                        forward_as(gpu, ls(m, k, n), relu, None, f32, Some(variant), s)
                    })
                    .quick_if(i == 1 && relu),
                );
            }
        }
        v.extend([
            // NaN through the fused ReLU in rows 0, the last and one between.
            one(f, &format!("{name} NaN"), move |s| {
                forward_nan(gpu, ls(5, 37, 70), variant, s)
            })
            .quick(),
            // The weight (15.4 KB) over bindings of 2000 bytes, 10 rows: 8 chunks, the last
            // one short.
            one(f, &format!("{name} over binding limit"), move |s| {
                forward_as(gpu, ls(3, 50, 77), true, Some(2000), f32, Some(variant), s)
            }),
            // One output feature, 600000 rows of 8 per workgroup: 75000 workgroups.
            one(f, &format!("{name} grid over 65535"), move |s| {
                forward_as(gpu, ls(600_000, 3, 1), false, None, f32, Some(variant), s)
            }),
        ]);
        if variant.f16_operands() {
            v[first..].iter_mut().for_each(Case::mark_f16);
        }
    }
    v.push(one(f, "fc8", |s| {
        forward(gpu, ls(2, 4096, 1000), false, None, s)
    }));
    let first = v.len();
    if gpu.features().contains(wgpu::Features::SHADER_F16) {
        v.push(
            one(f, "f16", |s| {
                forward_as(gpu, ls(3, 50, 77), true, None, Precision::F16, None, s)
            })
            .quick(),
        );
        // What --precision f16 runs on tensor cores, in f16 storage.
        for variant in LinearVariant::offered(gpu)
            .into_iter()
            .filter(|v| v.f16_operands())
        {
            v.push(
                one(f, &format!("{variant:?} f16"), move |s| {
                    forward_as(
                        gpu,
                        ls(33, 70, 90),
                        true,
                        None,
                        Precision::F16,
                        Some(variant),
                        s,
                    )
                })
                .quick(),
            );
        }
    } else {
        let why = format!("{} lacks the shader-f16 feature", gpu.info().name);
        v.push(skip(&format!("{f} f16"), why));
    }
    v[first..].iter_mut().for_each(Case::mark_f16);
    if opts.scope == Scope::Full {
        v.push(one(f, "VGG16 fc6, 392 MiB", |s| {
            forward(gpu, ls(2, 25088, 4096), true, None, s)
        }));
    } else {
        v.push(skip(
            &format!("{f} VGG16 fc6"),
            "full-size case: run with --full",
        ));
    }
    v
}

/// linear/backward: dx, dw and the bias gradient over weights split in row chunks, as the
/// forward splits a weight over bindings.
fn backward_cases(gpu: &Gpu) -> Vec<Case<'_>> {
    vec![
        // The weight in three row chunks, as the forward splits a weight over bindings.
        case("linear/backward", "3 weight chunks", |s| {
            backward(gpu, ls(5, 37, 23), &[(0, 10), (10, 10), (20, 3)], s)
        })
        .quick(),
        case("linear/backward", "", |s| {
            backward(gpu, ls(1, 300, 7), &[(0, 7)], s)
        }),
        case("linear/backward", "fc8", |s| {
            backward(gpu, ls(3, 4096, 1000), &[(0, 1000)], s)
        }),
        // A batch past the 4-row block, K off the 8-column block, two uneven chunks.
        case("linear/backward", "batch 18", |s| {
            backward(gpu, ls(18, 70, 29), &[(0, 17), (17, 12)], s)
        }),
    ]
}

/// Fully connected layer; `max_binding` forces the weight split below the adapter's limit.
pub async fn forward(
    gpu: &Gpu,
    s: LinearShape,
    relu: bool,
    max_binding: Option<u64>,
    seed: u64,
) -> Result<Outcome> {
    forward_as(gpu, s, relu, max_binding, Precision::F32, None, seed).await
}

/// `forward` with tensors and weights stored as `precision`, in `variant` (None: the
/// adapter's default).
pub async fn forward_as(
    gpu: &Gpu,
    s: LinearShape,
    relu: bool,
    max_binding: Option<u64>,
    precision: Precision,
    variant: Option<LinearVariant>,
    seed: u64,
) -> Result<Outcome> {
    let variant = variant.unwrap_or_else(|| LinearVariant::default_for(gpu));
    let f16 = precision == Precision::F16 || variant.f16_operands();
    let [x, w, b] = TensorRng::new(seed).operands([s.m * s.k, s.n_out * s.k, s.n_out], f16);
    let max_binding = max_binding.unwrap_or(u64::MAX);
    let fc = Linear::with_variant(gpu, s, relu, max_binding, precision, variant)?;
    let got = run_forward(gpu, &fc, precision, (&x, &w, &b)).await?;
    let want = reference::linear::forward(&x, s.m, s.k, &w, &b, s.n_out, relu);
    let shape = format!(
        "{}{}{}x{} -> {} ({:?}, {} binding{})",
        if relu { "+relu " } else { "" },
        if precision == Precision::F16 {
            "f16 "
        } else {
            ""
        },
        s.m,
        s.k,
        s.n_out,
        fc.variant,
        fc.chunk_count(),
        if fc.chunk_count() == 1 { "" } else { "s" }
    );
    let tol = match precision {
        Precision::F32 => F32_KERNEL_TOL,
        Precision::F16 => F16_KERNEL_TOL,
    };
    let o = Outcome::new("linear/forward", shape, &got, &want).tol(tol);
    if precision == Precision::F16 {
        return Ok(o);
    }
    // A few terms (as k = 1 has) may cancel: within a few ulps of |b| + sum |w x| passes
    // (`Outcome::within_ulps_of`).
    let magnitude = (0..s.m)
        .flat_map(|i| (0..s.n_out).map(move |j| (i, j)))
        .map(|(i, j)| {
            let row = &w[j * s.k..(j + 1) * s.k];
            let terms: f64 = row
                .iter()
                .zip(&x[i * s.k..(i + 1) * s.k])
                .map(|(a, b)| (*a as f64 * *b as f64).abs())
                .sum();
            terms + (b[j] as f64).abs()
        })
        .fold(0.0f64, f64::max);
    Ok(o.within_ulps_of(magnitude))
}

/// One FC layer on the GPU into a poisoned output: what it wrote.
async fn run_forward(
    gpu: &Gpu,
    fc: &Linear,
    precision: Precision,
    (x, w, b): (&[f32], &[f32], &[f32]),
) -> Result<Vec<f32>> {
    let s = fc.shape;
    let params = fc.upload(gpu, w, b)?;
    let xb = gpu.upload_as("x", x, precision)?;
    let out = poisoned(gpu, "y", s.m * s.n_out)?;
    let bgs = fc.bind(gpu, &xb, &params, &out)?;
    gpu.run_pass("linear", |pass| fc.encode(gpu, pass, &bgs))?;
    read_as(gpu, &out, s.m * s.n_out, precision).await
}

/// `variant` with ReLU on an input that holds NaN (`TensorRng::with_nans`): the NaN must
/// reach every output of its row, as in the reference (`Outcome::through_nan`).
pub async fn forward_nan(
    gpu: &Gpu,
    s: LinearShape,
    variant: LinearVariant,
    seed: u64,
) -> Result<Outcome> {
    let mut rng = TensorRng::new(seed);
    let lens = [s.m * s.k, s.n_out * s.k, s.n_out];
    let [x, w, b] = rng.operands(lens, variant.f16_operands());
    let x = rng.with_nans(x);
    let fc = Linear::with_variant(gpu, s, true, u64::MAX, Precision::F32, variant)?;
    let got = run_forward(gpu, &fc, Precision::F32, (&x, &w, &b)).await?;
    let want = reference::linear::forward(&x, s.m, s.k, &w, &b, s.n_out, true);
    let shape = format!("+relu NaN {}x{} -> {} ({variant:?})", s.m, s.k, s.n_out);
    Ok(Outcome::through_nan(
        "linear/forward",
        shape,
        &got,
        &want,
        |_| false,
    ))
}

/// FC gradients with the weight in row chunks, as the forward splits a weight over
/// bindings: dx accumulates over the chunks, dw is per chunk, db is a column sum.
pub async fn backward(
    gpu: &Gpu,
    s: LinearShape,
    chunks: &[(usize, usize)],
    seed: u64,
) -> Result<Vec<Outcome>> {
    let mut rng = TensorRng::new(seed);
    let x = rng.uniform(s.m * s.k);
    let wt = rng.uniform(s.n_out * s.k);
    let dy = rng.uniform(s.m * s.n_out);
    let (dx, dw, db) = reference::linear::backward(&x, s.m, s.k, &wt, &dy, s.n_out);
    let tag = format!("{}x{} -> {} ({} chunks)", s.m, s.k, s.n_out, chunks.len());
    let mut got_dx: Option<Vec<f32>> = None;
    let mut got_dw = Vec::with_capacity(dw.len());
    for (j, &(r0, rows)) in chunks.iter().enumerate() {
        let op = kernels::linear::dx(gpu, s, r0, rows, j > 0)?;
        let wc = &wt[r0 * s.k..(r0 + rows) * s.k];
        got_dx = Some(run_op(gpu, &op, &[wc, &dy], s.m * s.k, got_dx.as_deref()).await?);
        let op = kernels::linear::dw(gpu, s, r0, rows, false)?;
        got_dw.extend(run_op(gpu, &op, &[&x, &dy], rows * s.k, None).await?);
    }
    let op = kernels::elementwise::channel_sum(gpu, s.m, s.n_out, 1, false)?;
    let got_db = run_op(gpu, &op, &[&dy], s.n_out, None).await?;
    Ok(vec![
        Outcome::new("linear/dx", tag.clone(), &got_dx.unwrap_or_default(), &dx),
        Outcome::new("linear/dw", tag.clone(), &got_dw, &dw),
        Outcome::new("linear/bias_grad", tag, &got_db, &db),
    ])
}
