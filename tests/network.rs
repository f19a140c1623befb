//! The executor against the whole-network CPU reference: every config of the family, the
//! batch split for tensors over the binding limit, one submit per forward, memory errors,
//! and (slow, one test) the full VGG16 at 224x224.

mod common;
use common::{gpu, on_each_gpu, seed};
use vgg_wgpu::check::compare;
use vgg_wgpu::check::network::{random_input as input, random_weights};
use vgg_wgpu::graph::PROB;
use vgg_wgpu::kernels::conv::ConvTune;
use vgg_wgpu::model::Summary;
use vgg_wgpu::reference::network as reference;
use vgg_wgpu::{Init, Model, Network, NetworkOptions, Tensor, Weights};

use vgg_wgpu::check::F32_NETWORK_TOL as NET_TOL;

/// GPU forward (activations poisoned first) vs the CPU reference at the named layer.
fn check_model(model: &Model, n: usize, layer: &str, opts: NetworkOptions, seed: u64) {
    check_model_tol(model, n, layer, opts, seed, NET_TOL)
}

fn check_model_tol(
    model: &Model,
    n: usize,
    layer: &str,
    opts: NetworkOptions,
    seed: u64,
    tol: f64,
) {
    let precision = opts.precision;
    let weights = random_weights(model, seed);
    let x = input(model, n, seed + 1);
    let mut net = Network::with_options(gpu(), model, &weights, opts)
        .unwrap_or_else(|e| panic!("{}: {e}", model.name()));
    net.prepare(n, &[layer]).unwrap_or_else(|e| panic!("{e}"));
    net.poison();
    let got = net
        .forward_features(&x, layer)
        .unwrap_or_else(|e| panic!("{}: {e}", model.name()));
    let idx = model.layer_index(layer).ok();
    let mut want = reference::forward(model, &weights, &x, idx).unwrap_or_else(|e| panic!("{e}"));
    if layer == PROB {
        let cols = model.classes();
        want.data = vgg_wgpu::reference::softmax::forward(&want.data, n, cols);
    }
    assert_eq!(got.shape, want.shape);
    assert!(
        want.data.iter().any(|v| *v != 0.0),
        "a reference of zeros tests nothing"
    );
    let d = compare(&got.data, &want.data);
    eprintln!(
        "[{}] {} n={n} {layer} {precision:?}: {d}",
        gpu().info().name,
        model.name()
    );
    assert!(d.passes(tol), "{} {layer}: {d}", model.name());
}

fn small(model: Model) -> Model {
    model
        .with_input(3, 32, 32)
        .and_then(|m| m.with_hidden(&[64, 48]))
        .and_then(|m| m.with_classes(10))
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_config_matches_reference_at_32x32() {
    on_each_gpu(|| {
        for (i, name) in [
            "vgg11",
            "vgg11_lrn",
            "vgg13",
            "vgg16_c",
            "vgg16",
            "vgg19",
            "vgg11_bn",
            "vgg13_bn",
            "vgg16_bn",
            "vgg19_bn",
        ]
        .iter()
        .enumerate()
        {
            let m = small(Model::by_name(name).unwrap_or_else(|e| panic!("{e}")));
            check_model(
                &m,
                2,
                "fc8",
                NetworkOptions::default(),
                seed() + 10 * i as u64,
            );
        }
    });
}

#[test]
fn every_conv_variant_runs_a_whole_network() {
    on_each_gpu(|| {
        let m = small(Model::by_name("vgg11_bn").unwrap_or_else(|e| panic!("{e}")));
        for (i, tune) in ConvTune::variants_for(gpu()).into_iter().enumerate() {
            eprintln!("{tune:?}");
            if tune.variant.f16_operands() {
                // Tensor-core variants run what --precision f16 runs, at its tolerance.
                let opts = NetworkOptions {
                    conv: Some(tune),
                    precision: vgg_wgpu::gpu::Precision::F16,
                    ..Default::default()
                };
                check_model_tol(&m, 2, "fc8", opts, seed() + i as u64, 1e-2);
                continue;
            }
            let opts = NetworkOptions {
                conv: Some(tune),
                ..Default::default()
            };
            check_model(&m, 2, "fc8", opts, seed() + i as u64);
        }
    });
}

#[test]
fn named_layers_and_probabilities_match_reference() {
    on_each_gpu(|| {
        let m = small(Model::by_name("vgg11_bn").unwrap_or_else(|e| panic!("{e}")));
        for (i, layer) in ["bn1_1", "relu2_1", "pool5", "avgpool", "fc6", "drop7", PROB]
            .iter()
            .enumerate()
        {
            check_model(&m, 3, layer, NetworkOptions::default(), seed() + i as u64);
        }
    });
}

#[test]
fn custom_odd_model_matches_reference() {
    on_each_gpu(|| {
        // One input channel, odd sizes, channel counts off every tile, a 1x1 conv and LRN.
        let m = Model::parse("5,M,12,13:1,L,M,7")
            .and_then(|m| m.with_input(1, 13, 15))
            .and_then(|m| m.with_avgpool(None))
            .and_then(|m| m.with_hidden(&[19]))
            .and_then(|m| m.with_classes(3))
            .unwrap_or_else(|e| panic!("{e}"));
        check_model(&m, 3, "fc5", NetworkOptions::default(), seed());
    });
}

#[test]
fn tensors_over_the_binding_limit_are_split_and_match() {
    on_each_gpu(|| {
        let m = Model::parse("16,16,M,32,M")
            .and_then(|m| m.with_input(3, 24, 20))
            .and_then(|m| m.with_avgpool(None))
            .and_then(|m| m.with_hidden(&[40]))
            .and_then(|m| m.with_classes(7))
            .unwrap_or_else(|e| panic!("{e}"));
        // conv1 output is 16*24*20*4 = 30720 bytes an image; 5 images are 153600 bytes. A
        // 65536-byte binding holds 2 images, so the first block runs in groups (2 + 2 + 1), and
        // the 40x1920 FC weight (307200 bytes) splits into 5 row chunks.
        let limit = 65536;
        let opts = || NetworkOptions {
            max_binding: Some(limit),
            ..Default::default()
        };
        let weights = random_weights(&m, seed());
        let mut net = Network::with_options(gpu(), &m, &weights, opts()).unwrap();
        let plan = net.prepare(5, &["fc4"]).unwrap().clone();
        eprintln!("stages: {:?}", plan.stages);
        assert!(plan.stages[0].chunk < 5, "{:?}", plan.stages);
        assert_eq!(plan.chunks(0), vec![2, 2, 1]);
        for p in plan.local.values() {
            assert!(p.bytes <= limit);
        }
        check_model(&m, 5, "fc4", opts(), seed());
        // A tensor asked for from inside a split stage comes back whole.
        check_model(&m, 5, "relu1_2", opts(), seed() + 1);
    });
}

#[test]
fn planned_memory_reuses_buffers() {
    on_each_gpu(|| {
        let m = Model::vgg16();
        let weights = Weights::init(&m, Init::Kaiming, 1);
        let net = Network::new(gpu(), &m, &weights).unwrap();
        let plan = net.plan(8, &["fc8"]).unwrap();
        let all = Summary {
            model: &m,
            batch: 8,
        }
        .activation_bytes();
        eprintln!(
            "vgg16 batch 8: planned activations {} bytes, all layer outputs {all} bytes",
            plan.activation_bytes()
        );
        assert!(plan.activation_bytes() * 10 < all * 4);
    });
}

#[test]
fn a_batch_that_does_not_fit_fails_before_gpu_work() {
    on_each_gpu(|| {
        let m = small(Model::vgg11());
        let weights = random_weights(&m, seed());
        // Weights alone over the limit.
        let e = Network::with_options(
            gpu(),
            &m,
            &weights,
            NetworkOptions {
                memory_limit: Some(1 << 20),
                ..Default::default()
            },
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(
            e.contains("need") && e.contains("1048576 bytes are available"),
            "{e}"
        );
        // Weights fit, a huge batch does not.
        let f32 = vgg_wgpu::gpu::Precision::F32;
        let select = |s| vgg_wgpu::kernels::conv::select(gpu(), s, None, f32);
        let need = vgg_wgpu::graph::weight_bytes(&m, f32, select);
        let mut net = Network::with_options(
            gpu(),
            &m,
            &weights,
            NetworkOptions {
                memory_limit: Some(need + (8 << 20)),
                ..Default::default()
            },
        )
        .unwrap();
        let x = input(&m, 2048, seed());
        let before = gpu().submit_count();
        let e = net.forward(&x).unwrap_err().to_string();
        assert!(e.contains("needs") && e.contains("available"), "{e}");
        assert_eq!(gpu().submit_count(), before, "no GPU work before the error");
        // A bad input shape is an error, not a panic.
        let bad = Tensor::zeros(vec![1, 3, 31, 32]);
        assert!(net.forward(&bad).is_err());
    });
}

#[test]
fn full_vgg16_224_batch2_matches_reference() {
    on_each_gpu(|| {
        let m = Model::vgg16();
        check_model(&m, 2, "fc8", NetworkOptions::default(), seed());
    });
}

#[test]
fn adapter_binding_limit_splits_a_large_activation() {
    on_each_gpu(|| {
        // 16 x 1024 x 1024 f32 is 64 MiB an image; three images pass lavapipe's 128 MiB binding
        // limit, so on such an adapter the first block runs in groups under its real limit.
        let m = Model::parse("16,M")
            .and_then(|m| m.with_input(3, 1024, 1024))
            .and_then(|m| m.with_avgpool(Some((4, 4))))
            .and_then(|m| m.with_hidden(&[]))
            .and_then(|m| m.with_classes(10))
            .unwrap_or_else(|e| panic!("{e}"));
        let weights = random_weights(&m, seed());
        let mut net = Network::new(gpu(), &m, &weights).unwrap();
        let plan = net.prepare(3, &["fc2"]).unwrap().clone();
        let over = 3 * 16 * 1024 * 1024 * 4 > gpu().max_binding_bytes();
        eprintln!(
            "binding limit {}: {:?}",
            gpu().max_binding_bytes(),
            plan.stages
        );
        assert_eq!(plan.chunked(0), over);
        check_model(&m, 3, "fc2", NetworkOptions::default(), seed());
    });
}

#[test]
fn dense_evaluation_matches_reference_and_the_plain_forward() {
    on_each_gpu(|| {
        let m = Model::parse("8,M,16,M,24,M,32,M,32,M")
            .and_then(|m| m.with_hidden(&[40, 24]))
            .and_then(|m| m.with_classes(11))
            .unwrap_or_else(|e| panic!("{e}"));
        let weights = random_weights(&m, seed());
        let mut net = Network::new(gpu(), &m, &weights).unwrap();
        // At the training size there is one position, and the scores are the plain forward's.
        let x = input(&m, 2, seed());
        let plain = net.forward(&x).unwrap();
        let dense = net.forward_dense(&x).unwrap();
        assert_eq!(dense.shape, vec![2, 1, 11]);
        assert_eq!(dense.data, plain.data);
        // A larger, non-square image: pool5 is 8x10, so 2 x 4 positions.
        net.set_input_size(256, 320).unwrap();
        let big = m.with_input(3, 256, 320).unwrap();
        let x = input(&big, 2, seed() + 1);
        net.forward_dense(&x).unwrap();
        net.poison();
        let got = net.forward_dense(&x).unwrap();
        let want = reference::forward_dense(&big, &weights, &x).unwrap();
        assert_eq!(got.shape, vec![2, 8, 11]);
        assert_eq!(want.shape, got.shape);
        let d = compare(&got.data, &want.data);
        eprintln!("[{}] dense 2x3x256x320: {d}", gpu().info().name);
        assert!(d.passes(NET_TOL), "{d}");
        // Too small an image for the 7x7 window is a clear error.
        net.set_input_size(160, 160).unwrap();
        let small = input(&m.with_input(3, 160, 160).unwrap(), 1, 0);
        let e = net.forward_dense(&small).unwrap_err().to_string();
        assert!(e.contains("at least 7x7"), "{e}");
    });
}

#[test]
fn f16_storage_stays_within_1e_2_of_the_f32_reference() {
    on_each_gpu(|| {
        use vgg_wgpu::gpu::Precision;
        if !gpu().features().contains(wgpu::Features::SHADER_F16) {
            eprintln!("skipped: {} has no shader-f16", gpu().info().name);
            return;
        }
        for (i, name) in ["vgg11_lrn", "vgg16_c", "vgg13_bn"].iter().enumerate() {
            let m = small(Model::by_name(name).unwrap_or_else(|e| panic!("{e}")));
            let opts = NetworkOptions {
                precision: Precision::F16,
                ..Default::default()
            };
            check_model_tol(&m, 3, "fc8", opts, seed() + i as u64, 1e-2);
        }
        // Odd sizes, a tensor split into groups, and softmax, in f16.
        let m = Model::parse("6,M,10:1,L,M")
            .and_then(|m| m.with_input(3, 26, 20))
            .and_then(|m| m.with_avgpool(Some((3, 3))))
            .and_then(|m| m.with_hidden(&[18]))
            .and_then(|m| m.with_classes(5))
            .unwrap_or_else(|e| panic!("{e}"));
        let opts = || NetworkOptions {
            precision: Precision::F16,
            max_binding: Some(16384),
            ..Default::default()
        };
        check_model_tol(&m, 4, "fc4", opts(), seed(), 1e-2);
        check_model_tol(&m, 3, PROB, opts(), seed() + 1, 1e-2);
    });
}

/// The asynchronous API a browser page awaits computes what the blocking one does, bit for
/// bit: the forward and the dense forward, and a device opened by `Gpu::new_async`.
#[test]
fn the_async_forward_gives_the_blocking_ones_bits() {
    on_each_gpu(|| {
        // 9x9 at the average pool: dense evaluation has 3x3 positions.
        let m = Model::parse("8,M,16,M")
            .and_then(|m| m.with_input(3, 36, 36))
            .and_then(|m| m.with_hidden(&[24]))
            .and_then(|m| m.with_classes(5))
            .unwrap();
        let (w, x) = (random_weights(&m, seed()), input(&m, 2, seed() + 1));
        let mut net = Network::new(gpu(), &m, &w).unwrap();
        let bits = |t: &Tensor| t.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        let blocking = net.forward(&x).unwrap();
        let awaited = pollster::block_on(net.forward_async(&x)).unwrap();
        assert_eq!(bits(&blocking), bits(&awaited));
        let dense = net.forward_dense(&x).unwrap();
        let awaited = pollster::block_on(net.forward_dense_async(&x)).unwrap();
        assert_eq!(bits(&dense), bits(&awaited));
    });
    // The adapter the environment picks, opened asynchronously, runs the same forward.
    let g = pollster::block_on(vgg_wgpu::Gpu::new_async(&Default::default())).unwrap();
    let m = small(Model::vgg11());
    let (w, x) = (random_weights(&m, 3), input(&m, 1, 4));
    let got = pollster::block_on(Network::new(&g, &m, &w).unwrap().forward_async(&x)).unwrap();
    let want = reference::forward(&m, &w, &x, None).unwrap();
    let d = compare(&got.data, &want.data);
    assert!(d.passes(NET_TOL), "{d}");
}
