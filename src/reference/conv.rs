//! Convolution (stride 1, zero padding k / 2): the forward and both gradients.

use super::{f, Real};

/// 2-D convolution, stride 1, zero padding `k / 2`, (weight [c_out, c_in, k, k], bias).
/// Each output plane is accumulated in f64, one tap at a time over the valid window; the
/// planes are shared out over the host's cores (the whole-network reference would take
/// minutes on one).
pub fn forward<T: Real>(
    x: &[T],
    (n, c_in, h, w): (usize, usize, usize, usize),
    (weight, bias): (&[T], &[T]),
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

/// Gradients of `conv2d` (stride 1, padding k/2) given dy [n, c_out, h, w]:
/// (dx [n, c_in, h, w], dw [c_out, c_in, k, k], db `[c_out]`).
#[allow(clippy::type_complexity)]
pub fn backward<T: Real>(
    x: &[T],
    (n, c_in, h, w): (usize, usize, usize, usize),
    weight: &[T],
    dy: &[T],
    c_out: usize,
    k: usize,
) -> (Vec<T>, Vec<T>, Vec<T>) {
    assert_eq!(x.len(), n * c_in * h * w);
    assert_eq!(dy.len(), n * c_out * h * w);
    assert_eq!(weight.len(), c_out * c_in * k * k);
    let pad = k as isize / 2;
    let mut dx = vec![0.0f64; x.len()];
    let mut dw = vec![0.0f64; weight.len()];
    let mut db = vec![0.0f64; c_out];
    for b in 0..n {
        for co in 0..c_out {
            for oy in 0..h {
                for ox in 0..w {
                    let g = f(dy[((b * c_out + co) * h + oy) * w + ox]);
                    db[co] += g;
                    for ci in 0..c_in {
                        for ky in 0..k {
                            let iy = oy as isize + ky as isize - pad;
                            if iy < 0 || iy >= h as isize {
                                continue;
                            }
                            for kx in 0..k {
                                let ix = ox as isize + kx as isize - pad;
                                if ix < 0 || ix >= w as isize {
                                    continue;
                                }
                                let xi = ((b * c_in + ci) * h + iy as usize) * w + ix as usize;
                                let wi = ((co * c_in + ci) * k + ky) * k + kx;
                                dx[xi] += g * f(weight[wi]);
                                dw[wi] += g * f(x[xi]);
                            }
                        }
                    }
                }
            }
        }
    }
    let t = |v: Vec<f64>| v.into_iter().map(T::of).collect();
    (t(dx), t(dw), t(db))
}
