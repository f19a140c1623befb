//! The benchmark suite behind `vgg bench` and `cargo bench`: every kernel at every distinct
//! layer shape of a model, timed with GPU timestamps (wall clock around a full sync where
//! the adapter has none), related to the adapter's measured peaks and to the CPU reference;
//! whole networks end to end; conv tuning; reports as a table, JSON, Markdown and SVG.

mod ops;
pub mod report;
pub mod suite;
pub mod tune;

pub use ops::*;
pub use report::{Kernel, Network, Peak, Report};
pub use suite::{run, run_async, Options};

use crate::error::Result;
use crate::gpu::{Gpu, GpuTimer};
// std's Instant panics in a browser page; this one reads the page's clock there.
use web_time::Instant;

/// Runs of one kernel: median, fastest and slowest, in seconds.
#[derive(Clone, Debug)]
pub struct Timing {
    pub median_s: f64,
    pub min_s: f64,
    pub max_s: f64,
    pub runs: usize,
    /// "timestamp" or "wall".
    pub clock: &'static str,
}

impl Timing {
    fn from(mut times: Vec<f64>, clock: &'static str) -> Timing {
        times.sort_by(f64::total_cmp);
        Timing {
            median_s: times[times.len() / 2],
            min_s: times[0],
            max_s: times[times.len() - 1],
            runs: times.len(),
            clock,
        }
    }
}

/// Runs `encode(pass, i)` once to warm up, then `runs` times, each in its own pass and
/// submission; `i` counts the runs so callers can rotate among input buffers (a kernel
/// that rereads one buffer would be flattered by caches).
pub async fn time_pass(
    gpu: &Gpu,
    runs: usize,
    encode: impl Fn(&mut wgpu::ComputePass<'_>, usize) -> Result<()>,
) -> Result<Timing> {
    let timer = GpuTimer::new(gpu);
    gpu.run_pass("warm-up", |p| encode(p, 0))?;
    let mut times = Vec::with_capacity(runs);
    for i in 0..runs.max(1) {
        let t0 = Instant::now();
        gpu.run("timed", |enc| {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("timed"),
                timestamp_writes: timer.as_ref().map(|t| t.writes()),
            });
            encode(&mut pass, i + 1)?;
            drop(pass);
            if let Some(t) = &timer {
                t.resolve(enc);
            }
            Ok(())
        })?;
        gpu.done_async("timed").await?;
        let wall = t0.elapsed().as_secs_f64();
        times.push(match &timer {
            Some(t) => t.seconds_async(gpu).await?,
            None => wall,
        });
    }
    Ok(Timing::from(
        times,
        if timer.is_some() { "timestamp" } else { "wall" },
    ))
}

/// Wall time of `runs` awaited calls of `f`: whole networks and training steps, whose
/// readbacks a page awaits, and the CPU reference.
pub async fn time_async<T>(runs: usize, mut f: impl AsyncFnMut() -> Result<T>) -> Result<Timing> {
    let mut times = Vec::new();
    for _ in 0..runs.max(1) {
        let t0 = Instant::now();
        f().await?;
        times.push(t0.elapsed().as_secs_f64());
    }
    Ok(Timing::from(times, "wall"))
}
