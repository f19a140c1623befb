//! The engine against PyTorch and torchvision, through fixtures that tools/make_fixtures.py
//! wrote from them (committed; these tests need no Python): preprocessing of real photos,
//! and small torchvision-style networks with seeded weights in f32, f16 and bf16.

mod common;
use common::{gpu, on_each_gpu};
use safetensors::tensor::Dtype;
use safetensors::SafeTensors;
use std::path::{Path, PathBuf};
use vgg_wgpu::check::{compare, F32_NETWORK_TOL};
use vgg_wgpu::io::image::{load_rgb, Preprocess};
use vgg_wgpu::io::labels::top_k;
use vgg_wgpu::io::{load_weights, read_safetensors};
use vgg_wgpu::reference::network as reference;
use vgg_wgpu::{Model, Network, Tensor};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

#[test]
fn preprocessing_matches_torchvision() {
    let bytes = std::fs::read(fixtures().join("preprocess.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut names = st.names();
    names.sort();
    assert_eq!(names.len(), 5);
    for name in names {
        let want = st.tensor(name).unwrap();
        assert_eq!(
            (want.dtype(), want.shape()),
            (Dtype::U8, &[3, 224, 224][..])
        );
        let img = load_rgb(&fixtures().join("images").join(name)).unwrap();
        let got = Preprocess::default().geometry(&img).unwrap();
        assert_eq!((got.width(), got.height()), (224, 224));
        let (mut max, mut sum) = (0i32, 0i64);
        for c in 0..3 {
            for p in 0..224 * 224 {
                let g = got.as_raw()[p * 3 + c] as i32;
                let w = want.data()[c * 224 * 224 + p] as i32;
                max = max.max((g - w).abs());
                sum += (g - w).abs() as i64;
            }
        }
        let mean = sum as f64 / (3.0 * 224.0 * 224.0);
        eprintln!("{name}: max abs difference {max}/255, mean {mean:.4}/255");
        assert!(max <= 2, "{name}: max abs difference {max}/255");
    }
}

/// (net description, weights file, dtype tag) for every fixture net and dtype.
fn nets() -> Vec<(serde_json::Value, String, String)> {
    let text = std::fs::read_to_string(fixtures().join("nets.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut out = Vec::new();
    for net in v["nets"].as_array().unwrap() {
        for (tag, file) in net["weights"].as_object().unwrap() {
            out.push((net.clone(), file.as_str().unwrap().to_string(), tag.clone()));
        }
    }
    out
}

fn model_of(net: &serde_json::Value) -> Model {
    let n = |v: &serde_json::Value| v.as_u64().unwrap() as usize;
    let hidden: Vec<usize> = net["hidden"].as_array().unwrap().iter().map(n).collect();
    let avgpool = net["avgpool"].as_array().map(|a| (n(&a[0]), n(&a[1])));
    Model::parse(net["model"].as_str().unwrap())
        .and_then(|m| m.with_batch_norm(net["bn"].as_bool().unwrap()))
        .and_then(|m| {
            m.with_input(
                n(&net["in_channels"]),
                n(&net["input"][0]),
                n(&net["input"][1]),
            )
        })
        .and_then(|m| m.with_avgpool(avgpool))
        .and_then(|m| m.with_hidden(&hidden))
        .and_then(|m| m.with_classes(n(&net["classes"])))
        .unwrap()
}

/// Every row of `got` ranks the same 5 classes first as `want`'s row.
fn assert_same_top5(got: &Tensor, want: &Tensor, what: &str) {
    for row in 0..got.shape[0] {
        let top = |t: &Tensor| top_k(t.row(row), 5).iter().map(|p| p.0).collect::<Vec<_>>();
        assert_eq!(top(got), top(want), "{what} row {row} top-5");
    }
}

#[test]
fn fixture_networks_match_pytorch() {
    on_each_gpu(|| {
        let inputs = read_safetensors(&fixtures().join("inputs.safetensors")).unwrap();
        let logits = read_safetensors(&fixtures().join("logits.safetensors")).unwrap();
        let all = nets();
        assert!(all.len() >= 6, "{} nets", all.len());
        for (net, file, tag) in all {
            let name = net["name"].as_str().unwrap();
            if folds_batch_norm(&net, &tag) {
                // Its model is not the net's layer list; onnx_files_run_without_model_flags
                // reads it by its card.
                continue;
            }
            // The .pth and ONNX files hold the f32 weights, so PyTorch's f32 logits.
            let key = if tag == "f32" || tag == "pth" || tag.starts_with("onnx") {
                name.to_string()
            } else {
                format!("{name}_{tag}")
            };
            let model = model_of(&net);
            let weights = load_weights(&fixtures().join(&file), &model).unwrap();
            let x: &Tensor = inputs.get(net["input_tensor"].as_str().unwrap()).unwrap();
            let want = logits.get(&key).unwrap();
            let mut gpu_net = Network::new(gpu(), &model, &weights).unwrap();
            let got = gpu_net.forward(x).unwrap();
            let cpu = reference::forward(&model, &weights, x, None).unwrap();
            assert_eq!(got.shape, want.shape);
            let d = compare(&got.data, &want.data);
            let dc = compare(&cpu.data, &want.data);
            eprintln!(
                "[{}] {key} ({tag} weights) vs PyTorch: GPU {d}; CPU reference {dc}",
                gpu().info().name
            );
            assert!(d.passes(F32_NETWORK_TOL), "{key}: {d}");
            assert!(dc.passes(F32_NETWORK_TOL), "{key} reference: {dc}");
            assert_same_top5(&got, want, &key);
        }
    });
}

/// Whether the file is one of today's PyTorch exporters' (`onnx_dynamo`, torch.export-based;
/// `onnx_ts`, TorchScript-based) of a net with batch norm: both fold it into the convs.
fn folds_batch_norm(net: &serde_json::Value, tag: &str) -> bool {
    net["bn"].as_bool().unwrap() && (tag == "onnx_dynamo" || tag == "onnx_ts")
}

/// Each ONNX fixture is read with no model flags: torch.onnx.export's at opset 13; today's
/// PyTorch's two exporters at their defaults (the torch.export-based one's weights in an
/// external file, zero biases left out; the TorchScript one's identical initializers as
/// Identity nodes; both fold batch norm into the convs); the model zoo's layout with batch
/// norm; tf2onnx's NHWC Keras layout. Its card gives the model, the preprocessing (Caffe's
/// for the Keras layout) and its tensors; the network built from them gives PyTorch's
/// logits and top-5.
#[test]
fn onnx_files_run_without_model_flags() {
    use vgg_wgpu::io::weights::read_card;
    use vgg_wgpu::model::card::Preset;
    on_each_gpu(|| {
        let inputs = read_safetensors(&fixtures().join("inputs.safetensors")).unwrap();
        let logits = read_safetensors(&fixtures().join("logits.safetensors")).unwrap();
        let onnx: Vec<_> = nets()
            .into_iter()
            .filter(|n| n.2.starts_with("onnx"))
            .collect();
        assert_eq!(onnx.len(), 9);
        for (net, file, tag) in onnx {
            let path = fixtures().join(&file);
            let card = read_card(&path).unwrap().unwrap();
            let model = card.model().unwrap();
            let mut want_model = model_of(&net);
            if folds_batch_norm(&net, &tag) {
                want_model = want_model.with_batch_norm(false).unwrap();
            }
            // The zoo and Keras layouts have no average pool (at 224 it is the identity).
            assert_eq!(
                model
                    .layers()
                    .iter()
                    .flat_map(|l| l.tensors())
                    .collect::<Vec<_>>(),
                want_model
                    .layers()
                    .iter()
                    .flat_map(|l| l.tensors())
                    .collect::<Vec<_>>(),
                "{file}"
            );
            let preset = if tag == "onnx_keras" {
                Preset::Caffe
            } else {
                Preset::Torchvision
            };
            assert_eq!(card.preprocessing.preset, preset, "{file}");
            let weights = load_weights(&path, &model).unwrap();
            let x: &Tensor = inputs.get(net["input_tensor"].as_str().unwrap()).unwrap();
            let want = logits.get(net["name"].as_str().unwrap()).unwrap();
            let got = Network::new(gpu(), &model, &weights)
                .unwrap()
                .forward(x)
                .unwrap();
            let d = compare(&got.data, &want.data);
            eprintln!("[{}] {file} vs PyTorch: {d}", gpu().info().name);
            assert!(d.passes(F32_NETWORK_TOL), "{file}: {d}");
            assert_same_top5(&got, want, &file);
        }
    });
}

/// torch.save's zip file of tiny_a and legacy file of tiny_bn (with its integer
/// num_batches_tracked) hold bitwise the tensors of their safetensors exports.
#[test]
fn pth_files_hold_the_safetensors_tensors() {
    for (pth, st) in [
        ("tiny_a.pth", "tiny_a.safetensors"),
        ("tiny_bn_legacy.pth", "tiny_bn.safetensors"),
    ] {
        let a = read_safetensors(&fixtures().join(pth)).unwrap();
        let b = read_safetensors(&fixtures().join(st)).unwrap();
        let names = |w: &vgg_wgpu::Weights| {
            let mut n: Vec<String> = w.iter().map(|(n, _)| n.clone()).collect();
            n.sort();
            n
        };
        assert_eq!(names(&a), names(&b), "{pth}");
        for (name, t) in b.iter() {
            let p = a.get(name).unwrap();
            assert_eq!(p.shape, t.shape, "{pth} {name}");
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&p.data), bits(&t.data), "{pth} {name}");
        }
    }
}

#[test]
fn fixture_networks_in_f16_keep_the_f32_top5() {
    on_each_gpu(|| {
        use vgg_wgpu::gpu::Precision;
        use vgg_wgpu::NetworkOptions;
        if !gpu().features().contains(wgpu::Features::SHADER_F16) {
            eprintln!("skipped: {} has no shader-f16", gpu().info().name);
            return;
        }
        let inputs = read_safetensors(&fixtures().join("inputs.safetensors")).unwrap();
        let logits = read_safetensors(&fixtures().join("logits.safetensors")).unwrap();
        for (net, file, tag) in nets().into_iter().filter(|n| n.2 == "f32") {
            let name = net["name"].as_str().unwrap();
            let model = model_of(&net);
            let weights = load_weights(&fixtures().join(&file), &model).unwrap();
            let x: &Tensor = inputs.get(net["input_tensor"].as_str().unwrap()).unwrap();
            let want = logits.get(name).unwrap();
            let opts = NetworkOptions {
                precision: Precision::F16,
                ..Default::default()
            };
            let got = Network::with_options(gpu(), &model, &weights, opts)
                .and_then(|mut n| n.forward(x))
                .unwrap();
            let d = compare(&got.data, &want.data);
            eprintln!(
                "[{}] {name} in f16 ({tag} weights) vs PyTorch f32: {d}",
                gpu().info().name
            );
            assert!(d.passes(1e-2), "{name}: {d}");
            assert_same_top5(&got, want, &format!("{name} in f16"));
        }
    });
}
