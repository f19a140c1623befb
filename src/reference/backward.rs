//! The backward pass of every op, and the training forms (softmax cross-entropy, dropout,
//! batch norm with batch statistics, SGD), on the CPU: plain loops, f64 accumulation,
//! generic over f32 (against the GPU) and f64 (against finite differences).

use super::Real;

fn f<T: Real>(v: T) -> f64 {
    v.into()
}

/// Gradients of `conv2d` (stride 1, padding k/2) given dy [n, c_out, h, w]:
/// (dx [n, c_in, h, w], dw [c_out, c_in, k, k], db [c_out]).
#[allow(clippy::type_complexity)]
pub fn conv2d_backward<T: Real>(
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

/// Gradient of 2x2 max pooling: each output's gradient goes to its argmax (the flat index
/// within the input plane, as `maxpool2x2` returns it); the rest of the input gets 0.
pub fn maxpool2x2_backward<T: Real>(
    dy: &[T],
    argmax: &[u32],
    (n, c, h, w): (usize, usize, usize, usize),
) -> Vec<T> {
    let (oh, ow) = (h / 2, w / 2);
    assert_eq!(dy.len(), n * c * oh * ow);
    let mut dx = vec![0.0f64; n * c * h * w];
    for p in 0..n * c {
        for o in 0..oh * ow {
            dx[p * h * w + argmax[p * oh * ow + o] as usize] += f(dy[p * oh * ow + o]);
        }
    }
    dx.into_iter().map(T::of).collect()
}

/// Gradients of `linear` (y = x·Wᵀ + b): (dx [m, k], dw [n_out, k], db [n_out]).
#[allow(clippy::type_complexity)]
pub fn linear_backward<T: Real>(
    x: &[T],
    m: usize,
    k: usize,
    weight: &[T],
    dy: &[T],
    n_out: usize,
) -> (Vec<T>, Vec<T>, Vec<T>) {
    assert_eq!(x.len(), m * k);
    assert_eq!(dy.len(), m * n_out);
    let mut dx = vec![T::of(0.0); m * k];
    let mut dw = vec![T::of(0.0); n_out * k];
    let mut db = vec![T::of(0.0); n_out];
    for r in 0..m {
        for j in 0..k {
            let s: f64 = (0..n_out)
                .map(|o| f(dy[r * n_out + o]) * f(weight[o * k + j]))
                .sum();
            dx[r * k + j] = T::of(s);
        }
    }
    for o in 0..n_out {
        for j in 0..k {
            let s: f64 = (0..m).map(|r| f(dy[r * n_out + o]) * f(x[r * k + j])).sum();
            dw[o * k + j] = T::of(s);
        }
        db[o] = T::of((0..m).map(|r| f(dy[r * n_out + o])).sum());
    }
    (dx, dw, db)
}

/// Gradient of ReLU given its output y: dy where y > 0, else 0.
pub fn relu_backward<T: Real>(y: &[T], dy: &[T]) -> Vec<T> {
    y.iter()
        .zip(dy)
        .map(|(y, g)| if f(*y) > 0.0 { *g } else { T::of(0.0) })
        .collect()
}

/// Softmax cross-entropy over [rows, cols] logits with integer labels: the mean loss, the
/// gradient scaled by `scale` (1/rows for the mean; 1/logical batch when micro-batches
/// accumulate), and how many rows' argmax equals the label.
pub fn softmax_cross_entropy<T: Real>(
    z: &[T],
    rows: usize,
    cols: usize,
    labels: &[u32],
    scale: f64,
) -> (f64, Vec<T>, usize) {
    assert_eq!(z.len(), rows * cols);
    let mut loss = 0.0;
    let mut dz = vec![T::of(0.0); z.len()];
    let mut correct = 0;
    for r in 0..rows {
        let row: Vec<f64> = z[r * cols..(r + 1) * cols].iter().map(|v| f(*v)).collect();
        let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = row.iter().map(|v| (v - max).exp()).sum();
        let label = labels[r] as usize;
        loss += sum.ln() + max - row[label];
        let arg = (0..cols).fold(0, |b, c| if row[c] > row[b] { c } else { b });
        correct += usize::from(arg == label);
        for c in 0..cols {
            let p = (row[c] - max).exp() / sum;
            dz[r * cols + c] = T::of((p - f64::from(c == label)) * scale);
        }
    }
    (loss / rows as f64, dz, correct)
}

/// Gradient of `lrn` (PyTorch's LocalResponseNorm) given dy.
#[allow(clippy::too_many_arguments)]
pub fn lrn_backward<T: Real>(
    x: &[T],
    (n, c, h, w): (usize, usize, usize, usize),
    size: usize,
    alpha: f64,
    beta: f64,
    k: f64,
    dy: &[T],
) -> Vec<T> {
    let (lo, hi) = (size / 2, (size - 1) / 2);
    let hw = h * w;
    let at = |b: usize, ch: usize, p: usize| (b * c + ch) * hw + p;
    // d_i = k + alpha/size * sum of squares over i's window.
    let d = |b: usize, i: usize, p: usize| {
        let sq: f64 = (i.saturating_sub(lo)..=(i + hi).min(c - 1))
            .map(|j| f(x[at(b, j, p)]).powi(2))
            .sum();
        k + alpha / size as f64 * sq
    };
    let mut dx = vec![T::of(0.0); x.len()];
    for b in 0..n {
        for p in 0..hw {
            let ds: Vec<f64> = (0..c).map(|i| d(b, i, p)).collect();
            for j in 0..c {
                let xj = f(x[at(b, j, p)]);
                // Channels i whose window holds j: i - lo <= j <= i + hi.
                let cross: f64 = (j.saturating_sub(hi)..=(j + lo).min(c - 1))
                    .map(|i| f(dy[at(b, i, p)]) * f(x[at(b, i, p)]) * ds[i].powf(-beta - 1.0))
                    .sum();
                let g = f(dy[at(b, j, p)]) * ds[j].powf(-beta)
                    - 2.0 * alpha * beta / size as f64 * xj * cross;
                dx[at(b, j, p)] = T::of(g);
            }
        }
    }
    dx
}

/// Batch norm in training form: per-channel mean and biased variance over (n, h, w),
/// y = gamma (x - mean) / sqrt(var + eps) + beta. Returns (y, mean, biased var).
#[allow(clippy::type_complexity)]
pub fn batchnorm_train<T: Real>(
    x: &[T],
    (n, c, h, w): (usize, usize, usize, usize),
    gamma: &[T],
    beta: &[T],
    eps: f64,
) -> (Vec<T>, Vec<f64>, Vec<f64>) {
    let hw = h * w;
    let cnt = (n * hw) as f64;
    let mut y = vec![T::of(0.0); x.len()];
    let (mut means, mut vars) = (vec![0.0; c], vec![0.0; c]);
    for ch in 0..c {
        let vals = || (0..n).flat_map(move |b| (0..hw).map(move |p| (b * c + ch) * hw + p));
        let mean = vals().map(|i| f(x[i])).sum::<f64>() / cnt;
        let var = vals().map(|i| (f(x[i]) - mean).powi(2)).sum::<f64>() / cnt;
        let inv = 1.0 / (var + eps).sqrt();
        for i in vals() {
            y[i] = T::of((f(x[i]) - mean) * inv * f(gamma[ch]) + f(beta[ch]));
        }
        means[ch] = mean;
        vars[ch] = var;
    }
    (y, means, vars)
}

/// PyTorch's running-statistics update: running = (1 - momentum) running + momentum batch,
/// with the unbiased variance (count / (count - 1)) for running_var.
pub fn batchnorm_running_update(
    running_mean: &mut [f32],
    running_var: &mut [f32],
    mean: &[f64],
    var_biased: &[f64],
    count: usize,
    momentum: f64,
) {
    let unbias = count as f64 / (count as f64 - 1.0).max(1.0);
    for ch in 0..running_mean.len() {
        running_mean[ch] =
            ((1.0 - momentum) * running_mean[ch] as f64 + momentum * mean[ch]) as f32;
        running_var[ch] =
            ((1.0 - momentum) * running_var[ch] as f64 + momentum * var_biased[ch] * unbias) as f32;
    }
}

/// Gradients of `batchnorm_train`: (dx, dgamma, dbeta).
#[allow(clippy::type_complexity)]
pub fn batchnorm_train_backward<T: Real>(
    x: &[T],
    (n, c, h, w): (usize, usize, usize, usize),
    gamma: &[T],
    eps: f64,
    dy: &[T],
) -> (Vec<T>, Vec<T>, Vec<T>) {
    let hw = h * w;
    let cnt = (n * hw) as f64;
    let mut dx = vec![T::of(0.0); x.len()];
    let (mut dg, mut dbt) = (vec![T::of(0.0); c], vec![T::of(0.0); c]);
    for ch in 0..c {
        let vals = || (0..n).flat_map(move |b| (0..hw).map(move |p| (b * c + ch) * hw + p));
        let mean = vals().map(|i| f(x[i])).sum::<f64>() / cnt;
        let var = vals().map(|i| (f(x[i]) - mean).powi(2)).sum::<f64>() / cnt;
        let inv = 1.0 / (var + eps).sqrt();
        let xhat = |i: usize| (f(x[i]) - mean) * inv;
        let sum_dy: f64 = vals().map(|i| f(dy[i])).sum();
        let sum_dy_xhat: f64 = vals().map(|i| f(dy[i]) * xhat(i)).sum();
        for i in vals() {
            let g = f(gamma[ch]) * inv / cnt * (cnt * f(dy[i]) - sum_dy - xhat(i) * sum_dy_xhat);
            dx[i] = T::of(g);
        }
        dg[ch] = T::of(sum_dy_xhat);
        dbt[ch] = T::of(sum_dy);
    }
    (dx, dg, dbt)
}

/// The dropout mask's counter-based random bits for element `i` under `seed`: a 32-bit
/// hash (MurmurHash3's finaliser over a golden-ratio counter), the same in WGSL, so the GPU
/// regenerates the forward's mask in the backward pass without storing it.
pub fn dropout_bits(seed: u32, i: u32) -> u32 {
    let mut h = i.wrapping_mul(0x9E37_79B9) ^ seed;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85EB_CA6B);
    h ^= h >> 13;
    h = h.wrapping_mul(0xC2B2_AE35);
    h ^= h >> 16;
    h
}

/// The bits threshold for dropping with probability `p`: p * 2^32, rounded.
pub fn dropout_threshold(p: f64) -> u32 {
    (p * 4_294_967_296.0).round().min(u32::MAX as f64) as u32
}

/// Whether element `i` is kept: its bits are at least the threshold.
pub fn dropout_keep(seed: u32, i: u32, p: f64) -> bool {
    dropout_bits(seed, i) >= dropout_threshold(p)
}

/// Dropout (inverted: kept elements scaled by 1 / (1 - p)); the same call on dy gives the
/// backward pass.
pub fn dropout<T: Real>(x: &[T], p: f64, seed: u32) -> Vec<T> {
    x.iter()
        .enumerate()
        .map(|(i, v)| {
            if dropout_keep(seed, i as u32, p) {
                T::of(f(*v) / (1.0 - p))
            } else {
                T::of(0.0)
            }
        })
        .collect()
}

/// One step of PyTorch's SGD with momentum and weight decay (dampening 0, not Nesterov):
/// d = g + wd * w; v = momentum * v + d; w -= lr * v.
pub fn sgd_step(w: &mut [f32], g: &[f32], v: &mut [f32], lr: f64, momentum: f64, wd: f64) {
    for i in 0..w.len() {
        let d = g[i] as f64 + wd * w[i] as f64;
        let vi = momentum * v[i] as f64 + d;
        v[i] = vi as f32;
        w[i] = (w[i] as f64 - lr * vi) as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::super::{conv2d, linear, lrn, maxpool2x2};
    use super::*;
    use rand::{Rng, SeedableRng};

    fn rand_vec(rng: &mut rand_chacha::ChaCha8Rng, n: usize) -> Vec<f64> {
        (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
    }

    /// Central differences of L(x) = sum r * f(x) in f64, against `analytic`.
    fn fd_check(
        name: &str,
        x: &[f64],
        r: &[f64],
        fwd: impl Fn(&[f64]) -> Vec<f64>,
        analytic: &[f64],
    ) {
        let h = 1e-6;
        let loss = |x: &[f64]| -> f64 { fwd(x).iter().zip(r).map(|(a, b)| a * b).sum() };
        let mut num = Vec::with_capacity(x.len());
        let mut xp = x.to_vec();
        for i in 0..x.len() {
            let v = xp[i];
            xp[i] = v + h;
            let lp = loss(&xp);
            xp[i] = v - h;
            let lm = loss(&xp);
            xp[i] = v;
            num.push((lp - lm) / (2.0 * h));
        }
        let diff: f64 = num
            .iter()
            .zip(analytic)
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f64>()
            .sqrt();
        let norm: f64 = num.iter().map(|a| a * a).sum::<f64>().sqrt();
        assert!(
            diff <= 1e-6 * norm.max(1e-12),
            "{name}: FD rel error {}",
            diff / norm
        );
    }

    #[test]
    fn reference_gradients_match_finite_differences() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        // conv 3x3 and 1x1: dx, dw, db.
        for k in [3, 1] {
            let dims = (2, 3, 5, 4);
            let (co, n) = (4, 2 * 4 * 5 * 4);
            let x = rand_vec(&mut rng, 2 * 3 * 5 * 4);
            let wt = rand_vec(&mut rng, co * 3 * k * k);
            let b = rand_vec(&mut rng, co);
            let r = rand_vec(&mut rng, n);
            let (dx, dw, db) = conv2d_backward(&x, dims, &wt, &r, co, k);
            fd_check(
                "conv dx",
                &x,
                &r,
                |x| conv2d(x, dims, &wt, &b, co, k, false),
                &dx,
            );
            fd_check(
                "conv dw",
                &wt,
                &r,
                |w| conv2d(&x, dims, w, &b, co, k, false),
                &dw,
            );
            fd_check(
                "conv db",
                &b,
                &r,
                |b| conv2d(&x, dims, &wt, b, co, k, false),
                &db,
            );
        }
        // linear.
        let (m, k, no) = (3, 5, 4);
        let x = rand_vec(&mut rng, m * k);
        let wt = rand_vec(&mut rng, no * k);
        let b = rand_vec(&mut rng, no);
        let r = rand_vec(&mut rng, m * no);
        let (dx, dw, db) = linear_backward(&x, m, k, &wt, &r, no);
        fd_check(
            "linear dx",
            &x,
            &r,
            |x| linear(x, m, k, &wt, &b, no, false),
            &dx,
        );
        fd_check(
            "linear dw",
            &wt,
            &r,
            |w| linear(&x, m, k, w, &b, no, false),
            &dw,
        );
        fd_check(
            "linear db",
            &b,
            &r,
            |b| linear(&x, m, k, &wt, b, no, false),
            &db,
        );
        // max pool (odd sizes; random inputs have no ties).
        let dims = (2, 2, 5, 3);
        let x = rand_vec(&mut rng, 60);
        let (_, idx) = maxpool2x2(&x, dims);
        let r = rand_vec(&mut rng, 2 * 2 * 2);
        let dx = maxpool2x2_backward(&r, &idx, dims);
        fd_check("maxpool", &x, &r, |x| maxpool2x2(x, dims).0, &dx);
        // ReLU (away from 0).
        let x: Vec<f64> = rand_vec(&mut rng, 20)
            .into_iter()
            .map(|v| if v.abs() < 0.05 { 0.3 } else { v })
            .collect();
        let r = rand_vec(&mut rng, 20);
        let y: Vec<f64> = x.iter().map(|v| v.max(0.0)).collect();
        fd_check(
            "relu",
            &x,
            &r,
            |x| x.iter().map(|v| v.max(0.0)).collect(),
            &relu_backward(&y, &r),
        );
        // LRN, with a large alpha so the cross terms matter.
        let dims = (2, 7, 2, 3);
        let x = rand_vec(&mut rng, 84);
        let r = rand_vec(&mut rng, 84);
        let (s, a, be, kk) = (5, 0.5, 0.75, 2.0);
        let dx = lrn_backward(&x, dims, s, a, be, kk, &r);
        fd_check(
            "lrn",
            &x,
            &r,
            |x| lrn(x, dims, s, a as f32, be as f32, kk as f32),
            &dx,
        );
        // Batch norm in training form: dx, dgamma, dbeta.
        let dims = (3, 2, 2, 2);
        let x = rand_vec(&mut rng, 24);
        let g = rand_vec(&mut rng, 2);
        let bt = rand_vec(&mut rng, 2);
        let r = rand_vec(&mut rng, 24);
        let (dx, dg, db) = batchnorm_train_backward(&x, dims, &g, 1e-5, &r);
        fd_check(
            "bn dx",
            &x,
            &r,
            |x| batchnorm_train(x, dims, &g, &bt, 1e-5).0,
            &dx,
        );
        fd_check(
            "bn dgamma",
            &g,
            &r,
            |g| batchnorm_train(&x, dims, g, &bt, 1e-5).0,
            &dg,
        );
        fd_check(
            "bn dbeta",
            &bt,
            &r,
            |b| batchnorm_train(&x, dims, &g, b, 1e-5).0,
            &db,
        );
        // Softmax cross-entropy: the gradient of the mean loss.
        let (rows, cols) = (3, 5);
        let z = rand_vec(&mut rng, rows * cols);
        let labels = [4, 0, 2];
        let (_, dz, _) = softmax_cross_entropy(&z, rows, cols, &labels, 1.0 / rows as f64);
        let loss = |z: &[f64]| vec![softmax_cross_entropy(z, rows, cols, &labels, 1.0).0];
        fd_check("softmax ce", &z, &[1.0], loss, &dz);
    }

    #[test]
    fn dropout_keeps_about_half_and_backward_uses_the_same_mask() {
        let x = vec![1.0f64; 10000];
        let y = dropout(&x, 0.5, 42);
        let kept = y.iter().filter(|v| **v != 0.0).count();
        assert!((4800..5200).contains(&kept), "{kept}");
        assert!(y.iter().all(|v| *v == 0.0 || *v == 2.0));
        let other = dropout(&x, 0.5, 43);
        assert_ne!(y, other);
        // The backward pass is the same map applied to the incoming gradient.
        let g = dropout(&vec![3.0f64; 10000], 0.5, 42);
        assert!(g.iter().zip(&y).all(|(g, y)| (*g == 0.0) == (*y == 0.0)));
    }

    #[test]
    fn sgd_matches_pytorch_semantics() {
        let (mut w, mut v) = (vec![1.0f32, -2.0], vec![0.0f32; 2]);
        let g = [0.5f32, 0.25];
        sgd_step(&mut w, &g, &mut v, 0.1, 0.9, 0.01);
        // d = g + 0.01 w = (0.51, 0.23); v = d; w -= 0.1 v.
        assert!(
            (w[0] - 0.949).abs() < 1e-6 && (w[1] + 2.023).abs() < 1e-6,
            "{w:?}"
        );
        sgd_step(&mut w, &g, &mut v, 0.1, 0.9, 0.01);
        // v = 0.9 * 0.51 + 0.5 + 0.00949 = 0.96849.
        assert!((v[0] - 0.96849).abs() < 1e-6, "{v:?}");
    }
}
