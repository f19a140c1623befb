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
        // The tuning file serves f32 networks; f16-operand variants are chosen by precision.
        if !spec.kernels.contains(&k) || base.variant.f16_operands() {
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

/// Finalists the confirmation re-times besides the default.
const FINALISTS: usize = 3;
/// Interleaved rounds of the confirmation.
const ROUNDS: usize = 3;

/// What the confirmation decided: the finalist kept (0 is the default), each finalist's
/// median over the rounds, and the default's spread (max - min of its round times).
pub struct Confirmed {
    pub kept: usize,
    pub medians: Vec<f64>,
    pub spread: f64,
}

/// Re-times `n` finalists (index 0 the default) in `ROUNDS` interleaved rounds, each
/// finalist once per round, so a drift in the machine's speed (clocks, a neighbour's load)
/// falls on all of them alike. The fastest by median is kept only where it beats the
/// default's median by more than the default's own spread; otherwise the default stays.
pub async fn confirm(
    n: usize,
    mut time: impl AsyncFnMut(usize) -> Result<f64>,
) -> Result<Confirmed> {
    let mut rounds = vec![Vec::with_capacity(ROUNDS); n];
    for _ in 0..ROUNDS {
        for (i, r) in rounds.iter_mut().enumerate() {
            r.push(time(i).await?);
        }
    }
    let medians: Vec<f64> = rounds
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.sort_by(f64::total_cmp);
            r[r.len() / 2]
        })
        .collect();
    let d = &rounds[0];
    let spread =
        d.iter().cloned().fold(f64::MIN, f64::max) - d.iter().cloned().fold(f64::MAX, f64::min);
    let best = (0..n)
        .min_by(|a, b| medians[*a].total_cmp(&medians[*b]))
        .unwrap_or(0);
    let kept = if best != 0 && medians[best] < medians[0] - spread {
        best
    } else {
        0
    };
    Ok(Confirmed {
        kept,
        medians,
        spread,
    })
}

/// Times every candidate on `s`, then confirms the fastest few against the default
/// (`confirm`); returns the configuration kept with its time, and the default's.
pub async fn search(
    gpu: &Gpu,
    s: ConvShape,
    runs: usize,
    mut progress: impl FnMut(&str),
) -> Result<(TunedConv, ConvTune)> {
    let default = ConvTune::default_for_shape(gpu, &s);
    let set = Settings { runs, cpu: false };
    let mut timed = Vec::new();
    for t in candidates(gpu, s.k) {
        let k = ops::conv::forward(gpu, s, Some(t), Precision::F32, set).await?;
        progress(&format!(
            "  {:?}/wg{}/tm{}: {:.3} ms",
            t.variant, t.wg, t.tm, k.median_ms
        ));
        timed.push((k.median_ms, t));
    }
    timed.sort_by(|a, b| a.0.total_cmp(&b.0));
    let finalists: Vec<ConvTune> = std::iter::once(default)
        .chain(
            timed
                .iter()
                .map(|t| t.1)
                .filter(|t| *t != default)
                .take(FINALISTS),
        )
        .collect();
    let c = confirm(finalists.len(), async |i| {
        let k = ops::conv::forward(gpu, s, Some(finalists[i]), Precision::F32, set).await?;
        Ok(k.median_ms)
    })
    .await?;
    let t = finalists[c.kept];
    progress(&format!(
        "  confirmed over {ROUNDS} interleaved rounds: {:?}/wg{}/tm{} {:.3} ms, default {:.3} \
         ms (spread {:.3} ms)",
        t.variant, t.wg, t.tm, c.medians[c.kept], c.medians[0], c.spread
    ));
    Ok((
        TunedConv {
            variant: format!("{:?}", t.variant),
            wg: t.wg,
            tm: t.tm,
            median_ms: c.medians[c.kept],
            default_ms: c.medians[0],
        },
        t,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Round r of finalist i takes `t[i][r]`.
    fn run(t: &[[f64; ROUNDS]]) -> Confirmed {
        let mut calls = vec![0; t.len()];
        pollster::block_on(confirm(t.len(), async |i| {
            calls[i] += 1;
            Ok(t[i][calls[i] - 1])
        }))
        .unwrap()
    }

    #[test]
    fn a_candidate_must_beat_the_default_by_more_than_its_spread() {
        // Default 10 +- 0.5; a candidate 0.3 faster is within the spread: kept default.
        let c = run(&[[10.0, 10.5, 9.5], [9.7, 9.7, 9.7]]);
        assert_eq!((c.kept, c.spread), (0, 1.0));
        // 2 faster than the default's median, beyond its spread of 1: the candidate.
        let c = run(&[[10.0, 10.5, 9.5], [8.0, 8.1, 7.9], [8.5, 8.5, 8.5]]);
        assert_eq!(c.kept, 1);
        assert_eq!(c.medians, vec![10.0, 8.0, 8.5]);
        // One fast round does not make a winner: the median decides.
        let c = run(&[[10.0, 10.0, 10.0], [5.0, 11.0, 12.0]]);
        assert_eq!(c.kept, 0);
    }
}
