//! Finite-difference checks of every backward reference against its forward, in f64.

use super::{batchnorm, conv, elementwise, linear, lrn, optim, pool, softmax};

use rand::{Rng, SeedableRng};

fn rand_vec(rng: &mut rand_chacha::ChaCha8Rng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
}

/// Central differences of L(x) = sum r * f(x) in f64, against `analytic`.
fn fd_check(name: &str, x: &[f64], r: &[f64], fwd: impl Fn(&[f64]) -> Vec<f64>, analytic: &[f64]) {
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
fn conv_gradients_match_finite_differences() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    // conv 3x3 and 1x1: dx, dw, db.
    for k in [3, 1] {
        let dims = (2, 3, 5, 4);
        let (co, n) = (4, 2 * 4 * 5 * 4);
        let x = rand_vec(&mut rng, 2 * 3 * 5 * 4);
        let wt = rand_vec(&mut rng, co * 3 * k * k);
        let b = rand_vec(&mut rng, co);
        let r = rand_vec(&mut rng, n);
        let (dx, dw, db) = conv::backward(&x, dims, &wt, &r, co, k);
        fd_check(
            "conv dx",
            &x,
            &r,
            |x| conv::forward(x, dims, (&wt, &b), co, k, false),
            &dx,
        );
        fd_check(
            "conv dw",
            &wt,
            &r,
            |w| conv::forward(&x, dims, (w, &b), co, k, false),
            &dw,
        );
        fd_check(
            "conv db",
            &b,
            &r,
            |b| conv::forward(&x, dims, (&wt, b), co, k, false),
            &db,
        );
    }
}

#[test]
fn linear_gradients_match_finite_differences() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(8);
    // linear.
    let (m, k, no) = (3, 5, 4);
    let x = rand_vec(&mut rng, m * k);
    let wt = rand_vec(&mut rng, no * k);
    let b = rand_vec(&mut rng, no);
    let r = rand_vec(&mut rng, m * no);
    let (dx, dw, db) = linear::backward(&x, m, k, &wt, &r, no);
    fd_check(
        "linear dx",
        &x,
        &r,
        |x| linear::forward(x, m, k, &wt, &b, no, false),
        &dx,
    );
    fd_check(
        "linear dw",
        &wt,
        &r,
        |w| linear::forward(&x, m, k, w, &b, no, false),
        &dw,
    );
    fd_check(
        "linear db",
        &b,
        &r,
        |b| linear::forward(&x, m, k, &wt, b, no, false),
        &db,
    );
}

#[test]
fn pool_gradients_match_finite_differences() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    // max pool (odd sizes; random inputs have no ties).
    let dims = (2, 2, 5, 3);
    let x = rand_vec(&mut rng, 60);
    let (_, idx) = pool::forward(&x, dims);
    let r = rand_vec(&mut rng, 2 * 2 * 2);
    let dx = pool::backward(&r, &idx, dims);
    fd_check("maxpool", &x, &r, |x| pool::forward(x, dims).0, &dx);
}

#[test]
fn relu_gradients_match_finite_differences() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(10);
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
        &elementwise::relu_backward(&y, &r),
    );
}

#[test]
fn lrn_gradients_match_finite_differences() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    // LRN, with a large alpha so the cross terms matter.
    let dims = (2, 7, 2, 3);
    let x = rand_vec(&mut rng, 84);
    let r = rand_vec(&mut rng, 84);
    let p = crate::model::LrnParams {
        size: 5,
        alpha: 0.5,
        beta: 0.75,
        k: 2.0,
    };
    let dx = lrn::backward(&x, dims, &p, &r);
    fd_check("lrn", &x, &r, |x| lrn::forward(x, dims, &p), &dx);
}

#[test]
fn batchnorm_gradients_match_finite_differences() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(12);
    // Batch norm in training form: dx, dgamma, dbeta.
    let dims = (3, 2, 2, 2);
    let x = rand_vec(&mut rng, 24);
    let g = rand_vec(&mut rng, 2);
    let bt = rand_vec(&mut rng, 2);
    let r = rand_vec(&mut rng, 24);
    let (dx, dg, db) = batchnorm::backward(&x, dims, &g, 1e-5, &r);
    fd_check(
        "bn dx",
        &x,
        &r,
        |x| batchnorm::train(x, dims, &g, &bt, 1e-5).0,
        &dx,
    );
    fd_check(
        "bn dgamma",
        &g,
        &r,
        |g| batchnorm::train(&x, dims, g, &bt, 1e-5).0,
        &dg,
    );
    fd_check(
        "bn dbeta",
        &bt,
        &r,
        |b| batchnorm::train(&x, dims, &g, b, 1e-5).0,
        &db,
    );
}

#[test]
fn softmax_gradients_match_finite_differences() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(13);
    // Softmax cross-entropy: the gradient of the mean loss.
    let (rows, cols) = (3, 5);
    let z = rand_vec(&mut rng, rows * cols);
    let labels = [4, 0, 2];
    let (_, dz, _) = softmax::xent(&z, rows, cols, &labels, 1.0 / rows as f64);
    let loss = |z: &[f64]| vec![softmax::xent(z, rows, cols, &labels, 1.0).0];
    fd_check("softmax ce", &z, &[1.0], loss, &dz);
}

#[test]
fn dropout_keeps_about_half_and_backward_uses_the_same_mask() {
    let x = vec![1.0f64; 10000];
    let y = elementwise::dropout(&x, 0.5, 42);
    let kept = y.iter().filter(|v| **v != 0.0).count();
    assert!((4800..5200).contains(&kept), "{kept}");
    assert!(y.iter().all(|v| *v == 0.0 || *v == 2.0));
    let other = elementwise::dropout(&x, 0.5, 43);
    assert_ne!(y, other);
    // The backward pass is the same map applied to the incoming gradient.
    let g = elementwise::dropout(&vec![3.0f64; 10000], 0.5, 42);
    assert!(g.iter().zip(&y).all(|(g, y)| (*g == 0.0) == (*y == 0.0)));
}

#[test]
fn sgd_matches_pytorch_semantics() {
    let (mut w, mut v) = (vec![1.0f32, -2.0], vec![0.0f32; 2]);
    let g = [0.5f32, 0.25];
    optim::sgd(&mut w, &g, &mut v, 0.1, 0.9, 0.01);
    // d = g + 0.01 w = (0.51, 0.23); v = d; w -= 0.1 v.
    assert!(
        (w[0] - 0.949).abs() < 1e-6 && (w[1] + 2.023).abs() < 1e-6,
        "{w:?}"
    );
    optim::sgd(&mut w, &g, &mut v, 0.1, 0.9, 0.01);
    // v = 0.9 * 0.51 + 0.5 + 0.00949 = 0.96849.
    assert!((v[0] - 0.96849).abs() < 1e-6, "{v:?}");
}
