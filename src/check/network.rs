//! network's conformance: whole networks through the executor (`Network`) against the
//! whole-network reference, and the random weights and inputs the tests share.

use super::suite::{one, skip, Case, Scope, SuiteOptions};
use super::{Outcome, TensorRng, F32_NETWORK_TOL};
use crate::error::Result;
use crate::gpu::{Gpu, Precision};
use crate::model::{Model, Op};
use crate::reference;
use crate::{Init, Network, NetworkOptions, Tensor, Weights};

/// network/forward: named configurations at 32x32, activations over the binding limit, one
/// channel with LRN and a 1x1 conv, VGG16 at 224x224 with --full, and f16.
pub fn cases<'a>(gpu: &'a Gpu, opts: &SuiteOptions) -> Vec<Case<'a>> {
    let f = "network/forward";
    let mut v = vec![
        // The quick set's network.
        one(f, "vgg16 at 32x32", move |s| async move {
            forward(gpu, &small("vgg16")?, 2, None, Precision::F32, s).await
        })
        .quick(),
        one(f, "vgg11_bn at 32x32", move |s| async move {
            forward(gpu, &small("vgg11_bn")?, 2, None, Precision::F32, s).await
        }),
        // Activations over a 64 KiB binding run in groups of images; the FC weight splits.
        one(f, "over binding limit", move |s| async move {
            let m = Model::parse("16,16,M,32,M")
                .and_then(|m| m.with_input(3, 24, 20))
                .and_then(|m| m.with_avgpool(None))
                .and_then(|m| m.with_hidden(&[40]))
                .and_then(|m| m.with_classes(7))?;
            forward(gpu, &m, 5, Some(65536), Precision::F32, s).await
        }),
        one(f, "1 channel, LRN, 1x1 conv", move |s| async move {
            let m = Model::parse("5,M,12,13:1,L,M,7")
                .and_then(|m| m.with_input(1, 13, 15))
                .and_then(|m| m.with_avgpool(None))
                .and_then(|m| m.with_hidden(&[19]))
                .and_then(|m| m.with_classes(3))?;
            forward(gpu, &m, 3, None, Precision::F32, s).await
        }),
    ];
    if opts.scope == Scope::Full {
        v.push(one(f, "vgg16 at 224x224", move |s| async move {
            forward(gpu, &Model::vgg16(), 1, None, Precision::F32, s).await
        }));
    } else {
        v.push(skip(
            &format!("{f} vgg16 224"),
            "full-size case: run with --full",
        ));
    }
    // What --precision f16 runs end to end: f16 storage, tensor cores where the adapter has
    // them.
    if gpu.features().contains(wgpu::Features::SHADER_F16) {
        v.push(
            one(f, "vgg16 at 32x32 f16", move |s| async move {
                forward(gpu, &small("vgg16")?, 2, None, Precision::F16, s).await
            })
            .f16(),
        );
    } else {
        let why = format!("{} lacks the shader-f16 feature", gpu.info().name);
        v.push(skip(&format!("{f} f16"), why));
    }
    v
}

/// A named configuration at 32x32 with small FC layers.
fn small(name: &str) -> Result<Model> {
    Model::by_name(name)?
        .with_input(3, 32, 32)
        .and_then(|m| m.with_hidden(&[64, 48]))
        .and_then(|m| m.with_classes(10))
}

/// Kaiming weights with every bias and batch-norm statistic made non-trivial, so a kernel
/// that dropped a bias or a fold that used the wrong statistic would show.
pub fn random_weights(model: &Model, seed: u64) -> Weights {
    let mut w = Weights::init(model, Init::Kaiming, seed);
    let mut rng = TensorRng::new(seed ^ 0x5eed);
    for l in model.layers() {
        for (name, shape) in l.tensors() {
            let n: usize = shape.iter().product();
            let Some(t) = w.get_mut(&name) else { continue };
            let fresh = match (l.op, name.rsplit('.').next()) {
                (Op::BatchNorm { .. }, Some("weight")) => rng.range(n, 0.5, 1.5),
                (Op::BatchNorm { .. }, Some("running_var")) => rng.range(n, 0.5, 2.0),
                (Op::BatchNorm { .. }, Some(_)) => rng.range(n, -0.2, 0.2),
                (_, Some("bias")) => rng.range(n, -0.1, 0.1),
                // torchvision's N(0, 0.01) FC init lets the biases drown the signal in
                // small networks; a He-scaled uniform keeps every input's effect visible.
                (Op::Linear { k, .. }, Some("weight")) => {
                    let a = (6.0 / k as f32).sqrt();
                    rng.range(n, -a, a)
                }
                _ => continue,
            };
            t.data = fresh;
        }
    }
    w
}

/// A batch of `n` inputs uniform in [-1, 1).
pub fn random_input(model: &Model, n: usize, seed: u64) -> Tensor {
    let [c, h, w] = model.input_dims();
    let data = TensorRng::new(seed).uniform(n * c * h * w);
    Tensor {
        shape: vec![n, c, h, w],
        data,
    }
}

/// The executor's logits (activations poisoned first) against the whole-network reference,
/// in `precision` (f16: storage, and the tensor-core kernels it selects where the adapter
/// has them) at that precision's network tolerance.
pub async fn forward(
    gpu: &Gpu,
    model: &Model,
    n: usize,
    max_binding: Option<u64>,
    precision: Precision,
    seed: u64,
) -> Result<Outcome> {
    let weights = random_weights(model, seed);
    let x = random_input(model, n, seed + 1);
    let opts = NetworkOptions {
        max_binding,
        precision,
        ..Default::default()
    };
    let mut net = Network::with_options(gpu, model, &weights, opts)?;
    let last = model
        .layers()
        .last()
        .map(|l| l.name.clone())
        .unwrap_or_default();
    net.prepare(n, &[&last])?;
    net.poison();
    let got = net.forward_features_async(&x, &last).await?;
    let want = reference::network::forward(model, &weights, &x, None)?;
    let [c, h, w] = model.input_dims();
    let shape = format!(
        "{} {n}x{c}x{h}x{w}{}{}",
        model.name(),
        match max_binding {
            Some(b) => format!(", bindings of {b} B"),
            None => String::new(),
        },
        match precision {
            Precision::F32 => "",
            Precision::F16 => " f16",
        }
    );
    let tol = match precision {
        Precision::F32 => F32_NETWORK_TOL,
        Precision::F16 => super::F16_NETWORK_TOL,
    };
    Ok(Outcome::new("network/forward", shape, &got.data, &want.data).tol(tol))
}
