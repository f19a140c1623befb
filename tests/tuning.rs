//! The executor runs the conv configuration `vgg bench --tune` stored for its adapter. Alone
//! in its binary: it points VGG_TUNING_FILE at a file of its own for the whole process.

mod common;
use common::{gpu, on_each_gpu, seed};
use vgg_wgpu::bench::tune::{adapter_key, shape_key, TunedConv, TuningFile};
use vgg_wgpu::check::{compare, TensorRng, F32_NETWORK_TOL};
use vgg_wgpu::kernels::conv::{ConvShape, ConvTune, ConvVariant};
use vgg_wgpu::reference::network as reference;
use vgg_wgpu::{Init, Model, Network, Tensor, Weights};

#[test]
fn the_executor_uses_the_tuning_file() {
    on_each_gpu(|| {
        let path = std::env::temp_dir().join(format!("vgg-tuning-{}.json", std::process::id()));
        // SAFETY: set before any other thread of this test binary reads the environment.
        unsafe { std::env::set_var("VGG_TUNING_FILE", &path) };
        let m = Model::parse("12,M,20")
            .and_then(|m| m.with_input(3, 16, 18))
            .and_then(|m| m.with_avgpool(None))
            .and_then(|m| m.with_hidden(&[]))
            .and_then(|m| m.with_classes(4))
            .unwrap();
        // A configuration the adapter would not pick by itself, for the second conv only.
        let tuned = ConvTune {
            variant: ConvVariant::Direct,
            wg: 32,
            tm: 4,
        };
        assert_ne!(tuned, ConvTune::default_for(gpu()));
        let mut file = TuningFile::default();
        file.adapters
            .entry(adapter_key(gpu()))
            .or_default()
            .conv
            .insert(
                shape_key(ConvShape::new(1, 12, 20, 8, 9, 3)),
                TunedConv {
                    variant: "Direct".into(),
                    wg: 32,
                    tm: 4,
                    median_ms: 1.0,
                    default_ms: 2.0,
                },
            );
        file.save(&path).unwrap();
        let weights = Weights::init(&m, Init::Kaiming, seed());
        let mut net = Network::new(gpu(), &m, &weights).unwrap();
        let conv2 = m.layer_index("conv2_1").unwrap();
        assert_eq!(net.conv_tune(conv2), tuned);
        assert_eq!(net.conv_tune(0), ConvTune::default_for(gpu()));
        let x = Tensor::new(
            vec![2, 3, 16, 18],
            TensorRng::new(seed()).uniform(2 * 3 * 16 * 18),
        )
        .unwrap();
        let got = net.forward(&x).unwrap();
        let want = reference::forward(&m, &weights, &x, None).unwrap();
        let d = compare(&got.data, &want.data);
        assert!(d.passes(F32_NETWORK_TOL), "{d}");
        let _ = std::fs::remove_file(&path);
    });
}
