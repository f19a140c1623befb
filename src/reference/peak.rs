//! What the peak-measuring kernels compute, on the CPU.

/// What invocation `i` of the FMA kernel stores, computed on the CPU in f64.
pub fn fma(i: usize, iters: usize) -> [f32; 4] {
    let s = (i % 1024) as f64 * 1e-3;
    let mut out = [0.0f32; 4];
    for (lane, o) in out.iter_mut().enumerate() {
        let mut sum = 0.0;
        for chain in 0..4 {
            let mut v = s + 0.1 * lane as f64 + 0.5 * chain as f64;
            for _ in 0..iters {
                v = v * 0.999f32 as f64 + 0.001f32 as f64;
            }
            sum += v;
        }
        *o = sum as f32;
    }
    out
}
