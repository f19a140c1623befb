//! One queue submit per forward, counted by the device. Alone in its binary: the counter is
//! per device, and other tests on the same device would add their submits to it.

mod common;
use common::{gpu, on_each_gpu, seed};
use vgg_wgpu::check::TensorRng;
use vgg_wgpu::graph::PROB;
use vgg_wgpu::{Init, Model, Network, Tensor, Weights};

#[test]
fn one_submit_per_forward() {
    on_each_gpu(|| {
        let m = Model::vgg11()
            .with_input(3, 32, 32)
            .and_then(|m| m.with_hidden(&[64, 48]))
            .and_then(|m| m.with_classes(10))
            .unwrap();
        let weights = Weights::init(&m, Init::Kaiming, seed());
        let mut net = Network::new(gpu(), &m, &weights).unwrap();
        let x = Tensor::new(
            vec![4, 3, 32, 32],
            TensorRng::new(seed()).uniform(4 * 3 * 32 * 32),
        )
        .unwrap();
        for round in 0..3 {
            let before = gpu().submit_count();
            let out = net.forward(&x).unwrap();
            assert_eq!(out.shape, vec![4, 10]);
            assert_eq!(gpu().submit_count() - before, 1, "round {round}");
        }
        // Asking for two outputs is still one submit.
        let before = gpu().submit_count();
        let outs = net.run(&x, &["pool5", PROB]).unwrap();
        assert_eq!(gpu().submit_count() - before, 1);
        assert_eq!(outs[0].shape, vec![4, 512, 1, 1]);
        for row in 0..4 {
            let s: f32 = outs[1].row(row).iter().sum();
            assert!((s - 1.0).abs() < 1e-5, "probabilities sum to {s}");
        }
    });
}
