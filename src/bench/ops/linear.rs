//! linear's (the FC layers') benchmark rows: the forward per variant with the weight split
//! over bindings where needed, and the gradients.

use super::{entry, grad, time_async, time_pass, upload_n, with_cpu, Io, Row, Settings, ROTATE};
use crate::bench::report::Kernel;
use crate::check::TensorRng;
use crate::error::Result;
use crate::gpu::{Gpu, Precision};
use crate::kernels::linear::{Linear, LinearShape, LinearVariant};
use crate::reference;

/// Fully connected layer, ReLU fused, weight split over bindings where needed.
pub async fn forward(
    gpu: &Gpu,
    s: LinearShape,
    precision: Precision,
    variant: LinearVariant,
    set: Settings,
) -> Result<Kernel> {
    let mut rng = TensorRng::new(2);
    let max = gpu.max_binding_bytes();
    let fc = Linear::with_variant(gpu, s, true, max, precision, variant)?;
    let w = rng.uniform(s.k * s.n_out);
    let b = rng.uniform(s.n_out);
    let p = fc.upload(gpu, &w, &b)?;
    let xs = upload_n(gpu, &mut rng, s.m * s.k, precision)?;
    let y = gpu.alloc("bench output", (s.m * s.n_out * precision.bytes()) as u64)?;
    let bgs = xs
        .iter()
        .map(|x| fc.bind(gpu, x, &p, &y))
        .collect::<Result<Vec<_>>>()?;
    let timing = time_pass(gpu, set.runs, |pass, i| {
        fc.encode(gpu, pass, &bgs[i % ROTATE])
    })
    .await?;
    let e = precision.bytes() as f64;
    let bytes = e * (s.m * s.k + s.k * s.n_out + s.m * s.n_out) as f64;
    let shape = format!("{}x{} -> {}", s.m, s.k, s.n_out);
    let mut k = entry(
        "linear/forward",
        shape,
        timing,
        2.0 * s.macs() as f64,
        bytes,
    );
    k.variant = format!(
        "{:?}{}, {} bindings",
        variant,
        if fc.subgroup { " subgroup" } else { "" },
        fc.chunk_count()
    );
    k.precision = format!("{precision:?}").to_lowercase();
    k.is_default = precision == Precision::F32 && variant == LinearVariant::default_for(gpu);
    let cpu = if set.cpu && precision == Precision::F32 {
        let x = rng.uniform(s.m * s.k);
        Some(
            time_async(1, async || {
                Ok(reference::linear::forward(
                    &x, s.m, s.k, &w, &b, s.n_out, true,
                ))
            })
            .await?,
        )
    } else {
        None
    };
    Ok(with_cpu(k, cpu))
}

/// The backward kernels of one FC layer (weight in one binding): dx, dw.
pub async fn backward(gpu: &Gpu, s: LinearShape, set: Settings) -> Result<Vec<Kernel>> {
    let shape = format!("{}x{} -> {}", s.m, s.k, s.n_out);
    let macs = 2.0 * s.macs() as f64;
    let full = |d: &[Vec<f32>]| {
        let x = TensorRng::new(13).uniform(s.m * s.k);
        let _ = crate::reference::linear::backward(&x, s.m, s.k, &d[0], &d[1], s.n_out);
    };
    Ok(vec![
        grad(
            gpu,
            set,
            &crate::kernels::linear::dx(gpu, s, 0, s.n_out, false)?,
            Io {
                inputs: &[s.n_out * s.k, s.m * s.n_out],
                zeroed: &[],
                output: s.m * s.k,
            },
            Row {
                op: "linear/dx",
                shape: shape.clone(),
                flops: macs,
            },
            Some(&full),
        )
        .await?,
        grad(
            gpu,
            set,
            &crate::kernels::linear::dw(gpu, s, 0, s.n_out, false)?,
            Io {
                inputs: &[s.m * s.k, s.m * s.n_out],
                zeroed: &[],
                output: s.n_out * s.k,
            },
            Row {
                op: "linear/dw",
                shape,
                flops: macs,
            },
            None,
        )
        .await?,
    ])
}
