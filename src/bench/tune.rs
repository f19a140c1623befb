//! Conv tuning: a search over variants and tunables per layer shape, whose results go into
//! the tuning file (`gpu::tuning`) that the conv selector reads at run time.

use super::{ops, Settings};
use crate::error::Result;
use crate::gpu::tuning::TunedConv;
use crate::gpu::{Gpu, Precision};
use crate::kernels::conv::{ConvShape, ConvTune};

/// Every configuration the search tries on this adapter for kernel size `k`.
pub fn candidates(gpu: &Gpu, k: usize) -> Vec<ConvTune> {
    let max = gpu.limits().max_compute_invocations_per_workgroup;
    let mut out = Vec::new();
    for base in ConvTune::variants_for(gpu) {
        let spec = base.variant.spec();
        if !spec.kernels.contains(&k) {
            continue;
        }
        let wgs = match spec.wg {
            Some(wg) => vec![wg],
            None => [16, 32, 64, 128, 256]
                .into_iter()
                .filter(|w| *w <= max)
                .collect(),
        };
        let tms = match spec.tm {
            Some(tm) => vec![tm],
            None => vec![4, 8],
        };
        for wg in wgs {
            for &tm in &tms {
                out.push(ConvTune {
                    variant: base.variant,
                    wg,
                    tm,
                });
            }
        }
    }
    out
}

/// Times every candidate on `s` and returns the fastest with its time, and the default's.
pub fn search(
    gpu: &Gpu,
    s: ConvShape,
    runs: usize,
    mut progress: impl FnMut(&str),
) -> Result<(TunedConv, ConvTune)> {
    let default = ConvTune::default_for_shape(gpu, &s);
    let set = Settings { runs, cpu: false };
    let mut best: Option<(f64, ConvTune)> = None;
    let mut default_ms = f64::NAN;
    for t in candidates(gpu, s.k) {
        let k = ops::conv(gpu, s, Some(t), Precision::F32, set)?;
        progress(&format!(
            "  {:?}/wg{}/tm{}: {:.3} ms",
            t.variant, t.wg, t.tm, k.median_ms
        ));
        if t == default {
            default_ms = k.median_ms;
        }
        if best.is_none_or(|b| k.median_ms < b.0) {
            best = Some((k.median_ms, t));
        }
    }
    let (ms, t) = best.unwrap_or((default_ms, default));
    Ok((
        TunedConv {
            variant: format!("{:?}", t.variant),
            wg: t.wg,
            tm: t.tm,
            median_ms: ms,
            default_ms,
        },
        t,
    ))
}
