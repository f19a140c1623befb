//! The executor and the trainer run the conv configuration and FC variant `vgg bench
//! --tune` stored for their adapter. Alone in its binary: it points VGG_TUNING_FILE at a file of its own for the
//! whole process, written before any device of the process reads it (each `Gpu` reads the
//! file once).

mod common;
use common::{gpu, on_each_gpu, seed};
use vgg_wgpu::check::{compare, TensorRng, F32_NETWORK_TOL};
use vgg_wgpu::gpu::tuning::{adapter_key, TunedConv, TunedLinear, TuningFile};
use vgg_wgpu::kernels::conv::{ConvShape, ConvTune, ConvVariant};
use vgg_wgpu::kernels::linear::{LinearShape, LinearVariant};
use vgg_wgpu::reference::network as reference;
use vgg_wgpu::reference::train::{step as ref_step, Sgd};
use vgg_wgpu::train::{TrainOptions, Trainer};
use vgg_wgpu::{Init, Model, Network, Tensor, Weights};

#[test]
fn the_executor_and_the_trainer_use_the_tuning_file() {
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
                ConvShape::new(1, 12, 20, 8, 9, 3).tuning_key(),
                TunedConv {
                    variant: "Direct".into(),
                    wg: 32,
                    tm: 4,
                    median_ms: 1.0,
                    default_ms: 2.0,
                },
            );
        // And the FC variant the adapter would not pick, for the FC layer at batch 2.
        let fc_tuned = match LinearVariant::default_for(gpu()) {
            LinearVariant::Rows => LinearVariant::Reduce,
            _ => LinearVariant::Rows,
        };
        let fc_shape = LinearShape {
            m: 2,
            k: 20 * 8 * 9,
            n_out: 4,
        };
        file.adapters
            .entry(adapter_key(gpu()))
            .or_default()
            .linear
            .insert(
                fc_shape.tuning_key(),
                TunedLinear {
                    variant: fc_tuned.name(),
                    median_ms: 1.0,
                    default_ms: 2.0,
                },
            );
        file.save(&path).unwrap();
        let fc = m.layer_index("fc3").unwrap();
        let weights = Weights::init(&m, Init::Kaiming, seed());
        let mut net = Network::new(gpu(), &m, &weights).unwrap();
        let conv2 = m.layer_index("conv2_1").unwrap();
        assert_eq!(net.conv_tune(conv2), tuned);
        // The first conv, untuned, gets the default for its shape.
        let first = ConvTune::default_for_shape(gpu(), &ConvShape::new(1, 3, 12, 16, 18, 3));
        assert_eq!(net.conv_tune(0), first);
        let x = Tensor::new(
            vec![2, 3, 16, 18],
            TensorRng::new(seed()).uniform(2 * 3 * 16 * 18),
        )
        .unwrap();
        let got = net.forward(&x).unwrap();
        assert_eq!(net.linear_variant(fc), Some(fc_tuned));
        let want = reference::forward(&m, &weights, &x, None).unwrap();
        let d = compare(&got.data, &want.data);
        assert!(d.passes(F32_NETWORK_TOL), "{d}");

        // The trainer selects the same way, and its step still matches the reference's.
        let opts = TrainOptions {
            batch: 2,
            dropout: false,
            ..Default::default()
        };
        let mut t = Trainer::new(gpu(), &m, &weights, opts).unwrap();
        assert_eq!(t.conv_tune(conv2), Some(tuned));
        assert_eq!(t.conv_tune(0), Some(first));
        assert_eq!(t.linear_variant(fc), Some(fc_tuned));
        let sgd = Sgd {
            lr: 0.05,
            momentum: 0.9,
            weight_decay: 5e-4,
        };
        let labels = [1u32, 3];
        let got = t.step(&x, &labels, sgd.lr as f32).unwrap();
        let (mut rw, mut rv) = (weights.clone(), Weights::new());
        let (loss, _) = ref_step(&m, &mut rw, &mut rv, &x, &labels, sgd).unwrap();
        assert!(
            (got.loss - loss).abs() <= 1e-4 * loss.abs().max(1.0),
            "{} vs {loss}",
            got.loss
        );
        let gw = t.weights().unwrap();
        for (name, want) in rw.iter() {
            let d = compare(&gw.get(name).unwrap().data, &want.data);
            assert!(d.passes(1e-4), "{name}: {d}");
        }
        let _ = std::fs::remove_file(&path);
    });
}
