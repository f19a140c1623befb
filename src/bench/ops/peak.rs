//! The adapter's peaks, which every other row is read against: FMA throughput and copy
//! bandwidth.

use super::{entry, time_pass, unary, Lens, Settings};
use crate::bench::report::Kernel;
use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels::peak;

/// The adapter's FMA throughput and copy bandwidth, each the median of `runs`.
pub async fn peaks(gpu: &Gpu, runs: usize) -> Result<(Kernel, Kernel)> {
    // Enough invocations to fill any GPU several times over; the loop length keeps one run
    // in the tens of milliseconds on a CPU driver.
    let threads = if gpu.is_cpu() { 1 << 14 } else { 1 << 20 };
    let fma = peak::fma(gpu, threads, 1024)?;
    let out = gpu.alloc("peak out", (threads * 16) as u64)?;
    let bg = fma.bind(gpu, &[&out])?;
    let t = time_pass(gpu, runs, |p, _| fma.encode(gpu, p, &bg)).await?;
    let flops = peak::fma_flops(threads, 1024);
    let f = entry(
        "peak/fma",
        format!("{threads} x 1024 x 16 FMA"),
        t,
        flops,
        0.0,
    );
    // 64 MiB each way: past any GPU cache, within every binding limit.
    let len = ((64u64 << 20).min(gpu.max_binding_bytes()) / 4) as usize / 4 * 4;
    let copy = peak::copy(gpu, len)?;
    let set = Settings { runs, cpu: false };
    let lens = Lens {
        input: len,
        output: len,
    };
    let (t, _) = unary(gpu, set, 9, &copy, lens, &[], |_| ()).await?;
    let shape = format!("{} MiB", (len * 4) >> 20);
    let c = entry("peak/copy", shape, t, 0.0, peak::copy_bytes(len));
    Ok((f, c))
}
