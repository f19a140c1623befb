//! Every backward and training kernel against the CPU reference (whose gradients are
//! checked against finite differences in the library's unit tests): fresh random inputs,
//! odd shapes, outputs poisoned with NaN, or prefilled where a kernel accumulates. The
//! comparisons are `vgg check`'s (`check::backward`); these run them at more shapes.

mod common;
use common::{assert_pass, gpu, on_each_gpu, seed};
use vgg_wgpu::check::backward as bw;
use vgg_wgpu::kernels::conv::{ConvShape, ConvTune};
use vgg_wgpu::kernels::linear::LinearShape;

fn assert_all(outcomes: vgg_wgpu::Result<Vec<vgg_wgpu::check::Outcome>>) {
    for o in outcomes.unwrap_or_else(|e| panic!("{e}")) {
        assert_pass(Ok(o));
    }
}

#[test]
fn conv_gradients_match_reference() {
    on_each_gpu(|| {
        // Reductions over n*h*w positions: their f32 sums in a different order than the
        // reference's f64 need more room than a single dot product at large sizes; these
        // shapes stay within the kernel tolerance.
        for (i, &(n, ci, co, h, w, ks)) in [
            (2, 3, 5, 7, 9, 3),
            (1, 8, 16, 13, 15, 3),
            (3, 6, 4, 1, 1, 3),
            (2, 5, 7, 6, 5, 1),
            (1, 13, 3, 5, 1, 3),
        ]
        .iter()
        .enumerate()
        {
            let s = ConvShape::new(n, ci, co, h, w, ks);
            assert_all(bw::conv(gpu(), s, seed() + i as u64));
        }
    });
}

#[test]
fn maxpool_and_relu_gradients_match_reference() {
    on_each_gpu(|| {
        for (i, dims) in [(2, 3, 7, 5), (1, 4, 8, 8), (3, 2, 3, 2)]
            .into_iter()
            .enumerate()
        {
            // Exact: the outcome's tolerance is zero.
            assert_pass(bw::maxpool(gpu(), dims, seed() + i as u64));
        }
        assert_pass(bw::relu(gpu(), 1001, seed()));
    });
}

#[test]
fn linear_gradients_match_reference_over_weight_chunks() {
    on_each_gpu(|| {
        // The weight in three row chunks, as the forward splits a weight over bindings.
        let s = LinearShape {
            m: 5,
            k: 37,
            n_out: 23,
        };
        assert_all(bw::linear(gpu(), s, &[(0, 10), (10, 10), (20, 3)], seed()));
        let s = LinearShape {
            m: 1,
            k: 300,
            n_out: 7,
        };
        assert_all(bw::linear(gpu(), s, &[(0, 7)], seed() + 1));
    });
}

#[test]
fn softmax_cross_entropy_matches_reference() {
    on_each_gpu(|| {
        for (i, &(rows, cols)) in [(3, 10), (7, 1000), (2, 3)].iter().enumerate() {
            assert_all(bw::softmax_xent(gpu(), rows, cols, seed() + i as u64));
        }
    });
}

#[test]
fn sgd_and_dropout_match_reference() {
    on_each_gpu(|| {
        assert_all(bw::sgd(gpu(), 1003, seed()));
        // The same mask as the reference: the outcome compares where zeros fall.
        for p in [0.5, 0.1] {
            assert_pass(bw::dropout(gpu(), 1003, p, seed()));
        }
    });
}

#[test]
fn lrn_backward_matches_reference() {
    on_each_gpu(|| {
        for (i, dims) in [(2, 7, 3, 5), (1, 64, 4, 4), (2, 3, 1, 1)]
            .into_iter()
            .enumerate()
        {
            assert_pass(bw::lrn(gpu(), dims, seed() + i as u64));
        }
    });
}

#[test]
fn batchnorm_training_matches_reference() {
    on_each_gpu(|| {
        // At least 4 values per channel: with 2, batch norm maps them to +-1 whatever they
        // are, dx cancels to ~1e-7, and a relative comparison measures only rounding.
        for (i, dims) in [(3, 5, 7, 3), (4, 16, 1, 1), (1, 3, 9, 11)]
            .into_iter()
            .enumerate()
        {
            assert_all(bw::batchnorm(gpu(), dims, seed() + i as u64));
        }
    });
}

#[test]
fn conv_weights_repack_on_the_gpu_as_on_the_host() {
    on_each_gpu(|| {
        for (i, &(ci, co, ks)) in [(3, 13, 3), (8, 16, 1), (5, 9, 3)].iter().enumerate() {
            let mut variants = ConvTune::variants_for(gpu());
            variants.push(ConvTune {
                tm: 4,
                ..variants[0]
            });
            for tune in variants {
                assert_pass(bw::conv_pack(gpu(), ci, co, ks, tune, seed() + i as u64));
            }
        }
    });
}
