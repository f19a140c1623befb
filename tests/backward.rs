//! Every backward and training kernel against the CPU reference (whose gradients are
//! checked against finite differences in the library's unit tests): fresh random inputs,
//! odd shapes, outputs poisoned with NaN, or prefilled where a kernel accumulates.

mod common;
use common::{gpu, seed};
use vgg_wgpu::check::{compare, TensorRng, F32_KERNEL_TOL};
use vgg_wgpu::kernels::backward as k;
use vgg_wgpu::kernels::conv::ConvShape;
use vgg_wgpu::kernels::linear::LinearShape;
use vgg_wgpu::reference::{self, backward as r};

/// Uploads `inputs`, runs `op` with a last (output) buffer of `out_len` elements filled
/// with `prefill` (NaN poison when None), and reads the output back.
fn run(op: &k::GradOp, inputs: &[&[f32]], out_len: usize, prefill: Option<&[f32]>) -> Vec<f32> {
    let g = gpu();
    let mut bufs: Vec<wgpu::Buffer> = inputs.iter().map(|x| g.upload("in", x).unwrap()).collect();
    let out = match prefill {
        Some(p) => g.upload("out", p).unwrap(),
        None => {
            let b = g.alloc("out", (out_len * 4) as u64).unwrap();
            g.poison(&b);
            b
        }
    };
    bufs.push(out);
    let refs: Vec<&wgpu::Buffer> = bufs.iter().collect();
    let bg = op.bind(g, &refs).unwrap();
    g.run_pass(op.name, |p| op.encode(g, p, &bg)).unwrap();
    g.read(&bufs[bufs.len() - 1], out_len).unwrap()
}

fn pass(what: &str, got: &[f32], want: &[f32], tol: f64) {
    let d = compare(got, want);
    eprintln!("[{}] {what}: {d}", gpu().info().name);
    assert!(d.passes(tol), "{what}: {d}");
}

fn bits(v: &[u32]) -> Vec<f32> {
    v.iter().map(|u| f32::from_bits(*u)).collect()
}

#[test]
fn conv_gradients_match_reference() {
    // Reductions over n*h*w positions: their f32 sums in a different order than the
    // reference's f64 need more room than a single dot product at large sizes; these
    // shapes stay within the kernel tolerance.
    for (i, &(n, ci, co, h, w, ks)) in [
        (2, 3, 5, 7, 9, 3),
        (1, 8, 16, 13, 15, 3),
        (3, 6, 4, 1, 1, 3),
        (2, 5, 7, 6, 5, 1),
    ]
    .iter()
    .enumerate()
    {
        let s = ConvShape::new(n, ci, co, h, w, ks);
        let mut rng = TensorRng::new(seed() + i as u64);
        let x = rng.uniform(s.input_len());
        let wt = rng.uniform(s.weight_len());
        let dy = rng.uniform(s.output_len());
        let (dx, dw, db) = r::conv2d_backward(&x, (n, ci, h, w), &wt, &dy, co, ks);
        let tag = format!("{n}x{ci}x{h}x{w}->{co} k{ks}");
        let got = run(
            &k::conv_dgrad(gpu(), s).unwrap(),
            &[&dy, &wt],
            s.input_len(),
            None,
        );
        pass(&format!("conv dgrad {tag}"), &got, &dx, F32_KERNEL_TOL);
        let got = run(
            &k::conv_wgrad(gpu(), s, false).unwrap(),
            &[&x, &dy],
            s.weight_len(),
            None,
        );
        pass(&format!("conv wgrad {tag}"), &got, &dw, F32_KERNEL_TOL);
        // Accumulating onto a previous micro-batch's gradient.
        let prev = rng.uniform(s.weight_len());
        let got = run(
            &k::conv_wgrad(gpu(), s, true).unwrap(),
            &[&x, &dy],
            s.weight_len(),
            Some(&prev),
        );
        let want: Vec<f32> = prev.iter().zip(&dw).map(|(a, b)| a + b).collect();
        pass(
            &format!("conv wgrad accumulate {tag}"),
            &got,
            &want,
            F32_KERNEL_TOL,
        );
        let got = run(
            &k::channel_sum(gpu(), n, co, h * w, false).unwrap(),
            &[&dy],
            co,
            None,
        );
        pass(&format!("conv bias grad {tag}"), &got, &db, F32_KERNEL_TOL);
    }
}

#[test]
fn maxpool_and_relu_gradients_match_reference() {
    for (i, dims) in [(2, 3, 7, 5), (1, 4, 8, 8), (3, 2, 3, 2)]
        .into_iter()
        .enumerate()
    {
        let (n, c, h, w) = dims;
        let mut rng = TensorRng::new(seed() + i as u64);
        let x = rng.uniform(n * c * h * w);
        let (_, idx) = reference::maxpool2x2(&x, dims);
        let dy = rng.uniform(idx.len());
        let want = r::maxpool2x2_backward(&dy, &idx, dims);
        let op = k::maxpool_backward(gpu(), dims).unwrap();
        // The argmax buffer holds u32; upload its bits through f32 slices.
        let got = run(&op, &[&dy, &bits(&idx)], n * c * h * w, None);
        assert_eq!(got, want, "maxpool backward {dims:?} must be exact");
        eprintln!("[{}] maxpool backward {dims:?}: exact", gpu().info().name);
    }
    let mut rng = TensorRng::new(seed());
    let y: Vec<f32> = rng.uniform(1001).into_iter().map(|v| v.max(0.0)).collect();
    let dy = rng.uniform(1001);
    let got = run(
        &k::relu_backward(gpu(), 1001).unwrap(),
        &[&y, &dy],
        1001,
        None,
    );
    assert_eq!(got, r::relu_backward(&y, &dy));
}

#[test]
fn linear_gradients_match_reference_over_weight_chunks() {
    let s = LinearShape {
        m: 5,
        k: 37,
        n_out: 23,
    };
    let mut rng = TensorRng::new(seed());
    let x = rng.uniform(s.m * s.k);
    let wt = rng.uniform(s.n_out * s.k);
    let dy = rng.uniform(s.m * s.n_out);
    let (dx, dw, db) = r::linear_backward(&x, s.m, s.k, &wt, &dy, s.n_out);
    // The weight in three row chunks, as the forward splits a weight over bindings.
    let chunks = [(0, 10), (10, 10), (20, 3)];
    let mut got_dx = None;
    for (j, &(r0, rows)) in chunks.iter().enumerate() {
        let op = k::linear_dx(gpu(), s, r0, rows, j > 0).unwrap();
        let wc = &wt[r0 * s.k..(r0 + rows) * s.k];
        got_dx = Some(run(&op, &[wc, &dy], s.m * s.k, got_dx.as_deref()));
        let op = k::linear_dw(gpu(), s, r0, rows, false).unwrap();
        let got = run(&op, &[&x, &dy], rows * s.k, None);
        pass(
            &format!("linear dw rows {r0}..{}", r0 + rows),
            &got,
            &dw[r0 * s.k..(r0 + rows) * s.k],
            F32_KERNEL_TOL,
        );
    }
    pass(
        "linear dx over 3 chunks",
        &got_dx.unwrap(),
        &dx,
        F32_KERNEL_TOL,
    );
    let got = run(
        &k::channel_sum(gpu(), s.m, s.n_out, 1, false).unwrap(),
        &[&dy],
        s.n_out,
        None,
    );
    pass("linear bias grad", &got, &db, F32_KERNEL_TOL);
}

#[test]
fn softmax_cross_entropy_matches_reference() {
    for (i, &(rows, cols)) in [(3, 10), (7, 1000), (2, 3)].iter().enumerate() {
        let mut rng = TensorRng::new(seed() + i as u64);
        let z = rng.range(rows * cols, -4.0, 4.0);
        let labels: Vec<u32> = (0..rows).map(|r| ((r * 7 + i) % cols) as u32).collect();
        let scale = 1.0 / 16.0;
        let (loss, dz, correct) = r::softmax_cross_entropy(&z, rows, cols, &labels, scale);
        let op = k::softmax_xent(gpu(), rows, cols, scale as f32).unwrap();
        let g = gpu();
        let zb = g.upload("z", &z).unwrap();
        let lb = g.upload("labels", &labels).unwrap();
        let dzb = g.alloc("dz", (rows * cols * 4) as u64).unwrap();
        let sb = g.alloc("stats", (rows * 8) as u64).unwrap();
        g.poison(&dzb);
        g.poison(&sb);
        let bg = op.bind(g, &[&zb, &lb, &dzb, &sb]).unwrap();
        g.run_pass("softmax_xent", |p| op.encode(g, p, &bg))
            .unwrap();
        let got_dz: Vec<f32> = g.read(&dzb, rows * cols).unwrap();
        let stats: Vec<f32> = g.read(&sb, rows * 2).unwrap();
        pass(
            &format!("softmax xent dz {rows}x{cols}"),
            &got_dz,
            &dz,
            F32_KERNEL_TOL,
        );
        let got_loss: f64 = stats.chunks(2).map(|s| s[0] as f64).sum::<f64>() / rows as f64;
        let got_correct = stats.chunks(2).filter(|s| s[1] == 1.0).count();
        assert!(
            (got_loss - loss).abs() <= 1e-5 * loss.abs().max(1.0),
            "{got_loss} vs {loss}"
        );
        assert_eq!(got_correct, correct);
    }
}

#[test]
fn sgd_and_dropout_match_reference() {
    let g = gpu();
    let len = 1003;
    let mut rng = TensorRng::new(seed());
    let (w0, grad, v0) = (rng.uniform(len), rng.uniform(len), rng.uniform(len));
    let (mut w, mut v) = (w0.clone(), v0.clone());
    r::sgd_step(&mut w, &grad, &mut v, 0.05, 0.9, 5e-4);
    let op = k::sgd(g, len).unwrap();
    let (wb, gb, vb) = (
        g.upload("w", &w0).unwrap(),
        g.upload("g", &grad).unwrap(),
        g.upload("v", &v0).unwrap(),
    );
    let hb = g.upload("hyper", &[0.05f32, 0.9, 5e-4]).unwrap();
    let bg = op.bind(g, &[&wb, &gb, &vb, &hb]).unwrap();
    g.run_pass("sgd", |p| op.encode(g, p, &bg)).unwrap();
    pass(
        "sgd w",
        &g.read::<f32>(&wb, len).unwrap(),
        &w,
        F32_KERNEL_TOL,
    );
    pass(
        "sgd v",
        &g.read::<f32>(&vb, len).unwrap(),
        &v,
        F32_KERNEL_TOL,
    );

    let x = rng.uniform(len);
    for (p, s) in [(0.5, 7u32), (0.1, 12345)] {
        let want = r::dropout(&x, p, s);
        let op = k::dropout(g, len, p).unwrap();
        let got = run(&op, &[&x, &bits(&[s])], len, None);
        pass(&format!("dropout p={p}"), &got, &want, F32_KERNEL_TOL);
        let zeros = |v: &[f32]| v.iter().filter(|x| **x == 0.0).count();
        assert_eq!(zeros(&got), zeros(&want), "the same mask");
    }
}

#[test]
fn lrn_backward_matches_reference() {
    use vgg_wgpu::kernels::lrn::LrnParams;
    for (i, dims) in [(2, 7, 3, 5), (1, 64, 4, 4), (2, 3, 1, 1)]
        .into_iter()
        .enumerate()
    {
        let (n, c, h, w) = dims;
        let len = n * c * h * w;
        let mut rng = TensorRng::new(seed() + i as u64);
        // Large inputs, so the normalisation (and its cross terms) is far from identity.
        let x = rng.range(len, -20.0, 20.0);
        let dy = rng.uniform(len);
        let p = LrnParams::default();
        let want = r::lrn_backward(
            &x,
            dims,
            p.size,
            p.alpha as f64,
            p.beta as f64,
            p.k as f64,
            &dy,
        );
        let got = run(
            &k::lrn_backward(gpu(), dims, p).unwrap(),
            &[&x, &dy],
            len,
            None,
        );
        pass(
            &format!("lrn backward {dims:?}"),
            &got,
            &want,
            F32_KERNEL_TOL,
        );
    }
}

#[test]
fn batchnorm_training_matches_reference() {
    let g = gpu();
    // At least 4 values per channel: with 2, batch norm maps them to +-1 whatever they
    // are, dx cancels to ~1e-7, and a relative comparison measures only rounding.
    for (i, (n, c, h, w)) in [(3, 5, 7, 3), (4, 16, 1, 1), (1, 3, 9, 11)]
        .into_iter()
        .enumerate()
    {
        let (hw, len) = (h * w, n * c * h * w);
        let mut rng = TensorRng::new(seed() + i as u64);
        let x: Vec<f32> = rng.uniform(len).iter().map(|v| v * 3.0 + 0.5).collect();
        let gamma = rng.range(c, 0.5, 1.5);
        let beta = rng.uniform(c);
        let dy = rng.uniform(len);
        let (rm0, rv0) = (rng.uniform(c), rng.range(c, 0.5, 2.0));
        let dims = (n, c, h, w);
        let (y, mean, var) = r::batchnorm_train(&x, dims, &gamma, &beta, 1e-5);
        let (mut rm, mut rv) = (rm0.clone(), rv0.clone());
        r::batchnorm_running_update(&mut rm, &mut rv, &mean, &var, n * hw, 0.1);
        let (dx, dgamma, dbeta) = r::batchnorm_train_backward(&x, dims, &gamma, 1e-5, &dy);

        let up = |d: &[f32]| g.upload("t", d).unwrap();
        let (xb, gb, bb, dyb) = (up(&x), up(&gamma), up(&beta), up(&dy));
        let (rmb, rvb) = (up(&rm0), up(&rv0));
        let poisoned = |elems: usize| {
            let b = g.alloc("t", (elems * 4) as u64).unwrap();
            g.poison(&b);
            b
        };
        let (stats, yb, sums, dgb, dbb, dxb) = (
            poisoned(2 * c),
            poisoned(len),
            poisoned(2 * c),
            poisoned(c),
            poisoned(c),
            poisoned(len),
        );
        let ops = [
            (
                k::bn_stats(g, n, c, hw, 1e-5, 0.1).unwrap(),
                vec![&xb, &stats, &rmb, &rvb],
            ),
            (
                k::bn_apply(g, n, c, hw, false).unwrap(),
                vec![&xb, &gb, &bb, &stats, &yb],
            ),
            (
                k::bn_backward_reduce(g, n, c, hw, false).unwrap(),
                vec![&xb, &dyb, &stats, &sums, &dgb, &dbb],
            ),
            (
                k::bn_backward_apply(g, n, c, hw).unwrap(),
                vec![&xb, &dyb, &gb, &stats, &sums, &dxb],
            ),
        ];
        let bgs: Vec<_> = ops.iter().map(|(op, b)| op.bind(g, b).unwrap()).collect();
        g.run_pass("batchnorm training", |p| {
            for ((op, _), bg) in ops.iter().zip(&bgs) {
                op.encode(g, p, bg)?;
            }
            Ok(())
        })
        .unwrap();
        let read = |b: &wgpu::Buffer, l: usize| g.read::<f32>(b, l).unwrap();
        let tag = format!("{n}x{c}x{h}x{w}");
        pass(
            &format!("bn train y {tag}"),
            &read(&yb, len),
            &y,
            F32_KERNEL_TOL,
        );
        pass(
            &format!("bn running mean {tag}"),
            &read(&rmb, c),
            &rm,
            F32_KERNEL_TOL,
        );
        pass(
            &format!("bn running var {tag}"),
            &read(&rvb, c),
            &rv,
            F32_KERNEL_TOL,
        );
        pass(
            &format!("bn dx {tag}"),
            &read(&dxb, len),
            &dx,
            F32_KERNEL_TOL,
        );
        pass(
            &format!("bn dgamma {tag}"),
            &read(&dgb, c),
            &dgamma,
            F32_KERNEL_TOL,
        );
        pass(
            &format!("bn dbeta {tag}"),
            &read(&dbb, c),
            &dbeta,
            F32_KERNEL_TOL,
        );
    }
}

#[test]
fn conv_weights_repack_on_the_gpu_as_on_the_host() {
    use vgg_wgpu::kernels::conv::ConvTune;
    for (i, &(ci, co, ks)) in [(3, 13, 3), (8, 16, 1), (5, 9, 3)].iter().enumerate() {
        let mut variants = ConvTune::variants_for(gpu());
        variants.push(ConvTune {
            tm: 4,
            ..variants[0]
        });
        for tune in variants {
            let mut rng = TensorRng::new(seed() + i as u64);
            let w = rng.uniform(co * ci * ks * ks);
            let (want, _) = tune.pack(ci, co, ks, &w, &vec![0.0; co]).unwrap();
            let op = k::conv_pack(gpu(), ci, co, ks, tune).unwrap();
            let got = run(&op, &[&w], want.len(), None);
            assert_eq!(got, want, "{ci}->{co} k{ks} {tune:?}");
        }
    }
}
