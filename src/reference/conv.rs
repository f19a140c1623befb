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
            *d = T::of(if relu { super::relu(*a) } else { *a });
        }
    };
    // A browser page can spawn no thread (and has no parallelism to report): it runs here.
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    if threads == 1 {
        for (i, dst) in out.chunks_mut(plane).enumerate() {
            one_plane(i, dst);
        }
        return out;
    }
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

/// A forward kernel's weight layout, for [`pack`]: channel blocks of `tm` output channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// `[c_out / tm][c_in][k][k][tm]`.
    Blocked { tm: usize },
    /// `[c_out / tm][c_in][k][tm][4]`: one vec4 of taps per channel and kernel row.
    Subgroup { tm: usize },
    /// Winograd F(4x4, 3x3): `[c_out / tm][c_in][36][tm]` of each 3x3 kernel's U = G g G^T.
    Winograd { tm: usize },
    /// Winograd F(2x2, 3x3): `[c_out / tm][c_in][16][tm]`.
    Winograd2 { tm: usize },
    /// Rows of c_in * k * k weights, each zero padded to `k_pad` columns.
    Rows { k_pad: usize },
}

/// Winograd F(4x4, 3x3)'s weight transform G.
const WINOGRAD_G: [[f64; 3]; 6] = [
    [1.0 / 4.0, 0.0, 0.0],
    [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
    [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
    [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
    [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
    [0.0, 0.0, 1.0],
];

/// Winograd F(2x2, 3x3)'s weight transform G.
const WINOGRAD2_G: [[f64; 3]; 4] = [
    [1.0, 0.0, 0.0],
    [0.5, 0.5, 0.5],
    [0.5, -0.5, 0.5],
    [0.0, 0.0, 1.0],
];

/// U = G g G^T of one 3x3 kernel for the transform `gm` (t x 3): t x t, row-major, in f64.
fn transform_weight(g: &[f32], gm: &[[f64; 3]]) -> Vec<f64> {
    let t = gm.len();
    let gg: Vec<[f64; 3]> = gm
        .iter()
        .map(|row| std::array::from_fn(|k| (0..3).map(|i| row[i] * g[i * 3 + k] as f64).sum()))
        .collect();
    let mut u = vec![0.0f64; t * t];
    for a in 0..t {
        for b in 0..t {
            u[a * t + b] = (0..3).map(|k| gg[a][k] * gm[b][k]).sum();
        }
    }
    u
}

/// torchvision's conv weight `[c_out, c_in, k, k]` laid out as `layout` in `len` elements,
/// zero padded (Winograd's transform in f64, rounded once): the oracle of the GPU packing
/// (`kernels::conv::pack`).
pub fn pack(
    weight: &[f32],
    (c_in, c_out, k): (usize, usize, usize),
    layout: Layout,
    len: usize,
) -> Vec<f32> {
    assert_eq!(weight.len(), c_out * c_in * k * k);
    let mut w = vec![0.0f32; len];
    let (tm, gm): (usize, Option<&[[f64; 3]]>) = match layout {
        Layout::Rows { k_pad } => {
            let row = c_in * k * k;
            for co in 0..c_out {
                w[co * k_pad..co * k_pad + row].copy_from_slice(&weight[co * row..(co + 1) * row]);
            }
            return w;
        }
        Layout::Winograd { tm } => (tm, Some(&WINOGRAD_G)),
        Layout::Winograd2 { tm } => (tm, Some(&WINOGRAD2_G)),
        Layout::Blocked { tm } | Layout::Subgroup { tm } => (tm, None),
    };
    if let Some(gm) = gm {
        assert_eq!(k, 3, "Winograd packs 3x3 kernels");
        let pos = gm.len() * gm.len();
        for co in 0..c_out {
            let (blk, m) = (co / tm, co % tm);
            for ci in 0..c_in {
                let g = &weight[(co * c_in + ci) * 9..][..9];
                for (j, u) in transform_weight(g, gm).into_iter().enumerate() {
                    w[((blk * c_in + ci) * pos + j) * tm + m] = u as f32;
                }
            }
        }
        return w;
    }
    let sg = matches!(layout, Layout::Subgroup { .. });
    for co in 0..c_out {
        let (blk, m) = (co / tm, co % tm);
        for ci in 0..c_in {
            for ky in 0..k {
                for kx in 0..k {
                    let dst = if sg {
                        (((blk * c_in + ci) * k + ky) * tm + m) * 4 + kx
                    } else {
                        ((blk * c_in + ci) * k * k + ky * k + kx) * tm + m
                    };
                    w[dst] = weight[((co * c_in + ci) * k + ky) * k + kx];
                }
            }
        }
    }
    w
}
