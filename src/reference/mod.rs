//! CPU reference of every op: plain, obviously-correct loops over NCHW f32 tensors, with
//! f64 accumulation. Shares no code with `kernels/`: its independence is what makes a
//! comparison with the GPU mean something.

/// The element types the reference runs in: f32 (against the GPU) and f64 (for the
/// finite-difference checks of the backward ops).
pub trait Real: Copy + Send + Sync + Into<f64> + std::fmt::Debug + 'static {
    fn of(v: f64) -> Self;
}

impl Real for f32 {
    fn of(v: f64) -> f32 {
        v as f32
    }
}

impl Real for f64 {
    fn of(v: f64) -> f64 {
        v
    }
}

/// 2-D convolution, stride 1, zero padding `k / 2`, weight [c_out, c_in, k, k].
/// Each output plane is accumulated in f64, one tap at a time over the valid window; the
/// planes are shared out over the host's cores (the whole-network reference would take
/// minutes on one).
#[allow(clippy::too_many_arguments)]
pub fn conv2d<T: Real>(
    x: &[T],
    (n, c_in, h, w): (usize, usize, usize, usize),
    weight: &[T],
    bias: &[T],
    c_out: usize,
    k: usize,
    relu: bool,
) -> Vec<T> {
    assert_eq!(x.len(), n * c_in * h * w);
    assert_eq!(weight.len(), c_out * c_in * k * k);
    assert_eq!(bias.len(), c_out);
    let pad = k / 2;
    let plane = h * w;
    let mut out = vec![T::of(0.0); n * c_out * plane];
    let one_plane = |p: usize, dst: &mut [T]| {
        let (b, co) = (p / c_out, p % c_out);
        let mut acc = vec![bias[co].into(); plane];
        for ci in 0..c_in {
            let src = &x[(b * c_in + ci) * plane..(b * c_in + ci + 1) * plane];
            for ky in 0..k {
                for kx in 0..k {
                    let wv: f64 = weight[((co * c_in + ci) * k + ky) * k + kx].into();
                    // Output rows/columns whose input tap (oy + ky - pad) lies inside.
                    let (y0, y1) = (pad.saturating_sub(ky), (h + pad).saturating_sub(ky).min(h));
                    let (x0, x1) = (pad.saturating_sub(kx), (w + pad).saturating_sub(kx).min(w));
                    for oy in y0..y1 {
                        let iy = oy + ky - pad;
                        let a = &mut acc[oy * w + x0..oy * w + x1];
                        let s = &src[iy * w + x0 + kx - pad..iy * w + x1 + kx - pad];
                        for (a, s) in a.iter_mut().zip(s) {
                            *a += Into::<f64>::into(*s) * wv;
                        }
                    }
                }
            }
        }
        for (d, a) in dst.iter_mut().zip(&acc) {
            *d = T::of(if relu { a.max(0.0) } else { *a });
        }
    };
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let planes = n * c_out;
    let per = planes.div_ceil(threads).max(1);
    std::thread::scope(|s| {
        for (t, chunk) in out.chunks_mut(per * plane).enumerate() {
            let one_plane = &one_plane;
            s.spawn(move || {
                for (i, dst) in chunk.chunks_mut(plane).enumerate() {
                    one_plane(t * per + i, dst);
                }
            });
        }
    });
    out
}

/// 2x2 max pooling, stride 2, floor for odd sizes (PyTorch's default). Also returns, per
/// output, the flat index `iy * w + ix` of the maximum within its input plane, as
/// PyTorch's `return_indices=True` does; the first maximum in scan order wins ties.
pub fn maxpool2x2<T: Real>(
    x: &[T],
    (n, c, h, w): (usize, usize, usize, usize),
) -> (Vec<T>, Vec<u32>) {
    assert_eq!(x.len(), n * c * h * w);
    let (oh, ow) = (h / 2, w / 2);
    let mut out = vec![T::of(0.0); n * c * oh * ow];
    let mut idx = vec![0u32; n * c * oh * ow];
    for p in 0..n * c {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut best = f64::NEG_INFINITY;
                let mut best_i = 0usize;
                let mut first = true;
                for dy in 0..2 {
                    for dx in 0..2 {
                        let (iy, ix) = (oy * 2 + dy, ox * 2 + dx);
                        let v: f64 = x[(p * h + iy) * w + ix].into();
                        // NaN propagates as in PyTorch: a NaN input is the maximum.
                        if first || v > best || v.is_nan() && !best.is_nan() {
                            best = v;
                            best_i = iy * w + ix;
                            first = false;
                        }
                    }
                }
                out[(p * oh + oy) * ow + ox] = T::of(best);
                idx[(p * oh + oy) * ow + ox] = best_i as u32;
            }
        }
    }
    (out, idx)
}

/// Fully connected: y[m, o] = sum_k x[m, k] * weight[o, k] + bias[o] (torchvision's layout).
pub fn linear<T: Real>(
    x: &[T],
    m: usize,
    k: usize,
    weight: &[T],
    bias: &[T],
    n_out: usize,
    relu: bool,
) -> Vec<T> {
    assert_eq!(x.len(), m * k);
    assert_eq!(weight.len(), n_out * k);
    assert_eq!(bias.len(), n_out);
    let mut out = vec![T::of(0.0); m * n_out];
    for r in 0..m {
        let xr = &x[r * k..(r + 1) * k];
        for o in 0..n_out {
            let wr = &weight[o * k..(o + 1) * k];
            let mut acc: f64 = bias[o].into();
            for (a, b) in xr.iter().zip(wr) {
                acc += Into::<f64>::into(*a) * Into::<f64>::into(*b);
            }
            out[r * n_out + o] = T::of(if relu { acc.max(0.0) } else { acc });
        }
    }
    out
}

/// Softmax over the last dimension of a [rows, cols] matrix, shifted by the row maximum.
pub fn softmax(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    assert_eq!(x.len(), rows * cols);
    let mut out = vec![0.0f32; rows * cols];
    for r in 0..rows {
        let row = &x[r * cols..(r + 1) * cols];
        let max = row.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b as f64));
        let sum: f64 = row.iter().map(|&v| (v as f64 - max).exp()).sum();
        for c in 0..cols {
            out[r * cols + c] = ((row[c] as f64 - max).exp() / sum) as f32;
        }
    }
    out
}

/// Local response normalisation across channels, PyTorch's `LocalResponseNorm`:
/// b_c = a_c / (k + alpha / size * sum_{c' in window(c)} a_c'^2)^beta, where the window
/// spans channels c - size/2 ..= c + (size - 1)/2 and zeros stand beyond the edges.
#[allow(clippy::too_many_arguments)]
pub fn lrn<T: Real>(
    x: &[T],
    (n, c, h, w): (usize, usize, usize, usize),
    size: usize,
    alpha: f32,
    beta: f32,
    k: f32,
) -> Vec<T> {
    assert_eq!(x.len(), n * c * h * w);
    let mut out = vec![T::of(0.0); x.len()];
    let lo = size / 2;
    let hi = (size - 1) / 2;
    for b in 0..n {
        for ch in 0..c {
            for p in 0..h * w {
                let mut sq = 0.0f64;
                let first = ch.saturating_sub(lo);
                let last = (ch + hi).min(c - 1);
                for j in first..=last {
                    let v: f64 = x[(b * c + j) * h * w + p].into();
                    sq += v * v;
                }
                let d = (k as f64 + alpha as f64 / size as f64 * sq).powf(beta as f64);
                let i = (b * c + ch) * h * w + p;
                out[i] = T::of(Into::<f64>::into(x[i]) / d);
            }
        }
    }
    out
}

/// Batch norm in inference form: y = (x - mean) / sqrt(var + eps) * gamma + beta.
#[allow(clippy::too_many_arguments)]
pub fn batchnorm(
    x: &[f32],
    (n, c, h, w): (usize, usize, usize, usize),
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
    eps: f32,
    relu: bool,
) -> Vec<f32> {
    assert_eq!(x.len(), n * c * h * w);
    let mut out = vec![0.0f32; x.len()];
    for b in 0..n {
        for ch in 0..c {
            let inv = 1.0 / (var[ch] as f64 + eps as f64).sqrt();
            for p in 0..h * w {
                let i = (b * c + ch) * h * w + p;
                let v = ((x[i] as f64 - mean[ch] as f64) * inv * gamma[ch] as f64 + beta[ch] as f64)
                    as f32;
                out[i] = if relu { v.max(0.0) } else { v };
            }
        }
    }
    out
}

/// Adaptive average pooling to [oh, ow], PyTorch's bins: rows floor(i*h/oh) to
/// ceil((i+1)*h/oh), likewise for columns.
pub fn adaptive_avg_pool(
    x: &[f32],
    (n, c, h, w): (usize, usize, usize, usize),
    oh: usize,
    ow: usize,
) -> Vec<f32> {
    assert_eq!(x.len(), n * c * h * w);
    let mut out = vec![0.0f32; n * c * oh * ow];
    for p in 0..n * c {
        for oy in 0..oh {
            let (y0, y1) = (oy * h / oh, ((oy + 1) * h).div_ceil(oh));
            for ox in 0..ow {
                let (x0, x1) = (ox * w / ow, ((ox + 1) * w).div_ceil(ow));
                let mut acc = 0.0f64;
                for iy in y0..y1 {
                    for ix in x0..x1 {
                        acc += x[(p * h + iy) * w + ix] as f64;
                    }
                }
                out[(p * oh + oy) * ow + ox] = (acc / ((y1 - y0) * (x1 - x0)) as f64) as f32;
            }
        }
    }
    out
}

/// Every kh x kw window (stride 1, no padding) as a row: [n][positions][c][kh][kw], the
/// positions in row-major order.
pub fn im2col(
    x: &[f32],
    (n, c, h, w): (usize, usize, usize, usize),
    kh: usize,
    kw: usize,
) -> Vec<f32> {
    assert_eq!(x.len(), n * c * h * w);
    let (oh, ow) = (h + 1 - kh, w + 1 - kw);
    let mut out = Vec::with_capacity(n * oh * ow * c * kh * kw);
    for b in 0..n {
        for oy in 0..oh {
            for ox in 0..ow {
                for ch in 0..c {
                    for ky in 0..kh {
                        for kx in 0..kw {
                            out.push(x[((b * c + ch) * h + oy + ky) * w + ox + kx]);
                        }
                    }
                }
            }
        }
    }
    out
}

pub mod backward;
pub mod network;
pub mod train;
