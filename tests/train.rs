//! Training on the GPU against the CPU reference: the same three SGD steps from the same
//! weights on the same batches give the same parameters; and a short run's loss falls.

mod common;
use common::{gpu, on_each_gpu, seed};
use vgg_wgpu::check::{compare, TensorRng};
use vgg_wgpu::kernels::conv::{ConvTune, ConvVariant};
use vgg_wgpu::model::Op;
use vgg_wgpu::reference::train::{pool_margin, step as ref_step, Sgd};
use vgg_wgpu::train::{TrainOptions, Trainer};
use vgg_wgpu::{Init, Model, Network, Tensor, Weights};

fn model(bn: bool) -> Model {
    Model::parse("6,M,8:1,L,M,10")
        .and_then(|m| m.with_input(2, 12, 10))
        .and_then(|m| m.with_batch_norm(bn))
        .and_then(|m| m.with_avgpool(None))
        .and_then(|m| m.with_hidden(&[12]))
        .and_then(|m| m.with_classes(5))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn batch(m: &Model, n: usize, seed: u64) -> (Tensor, Vec<u32>) {
    let [c, h, w] = m.input_dims();
    let mut rng = TensorRng::new(seed);
    let x = Tensor::new(vec![n, c, h, w], rng.uniform(n * c * h * w)).unwrap();
    let labels = (0..n)
        .map(|i| ((i * 3 + seed as usize) % m.classes()) as u32)
        .collect();
    (x, labels)
}

#[test]
fn three_sgd_steps_match_the_reference() {
    on_each_gpu(|| {
        // The last cases split fc's 12x60 weight (2880 bytes) over bindings of 1000 bytes.
        // Batch norm is not combined with accumulation here: the GPU normalises each
        // micro-batch by its own statistics, as PyTorch would, while the reference step takes
        // the logical batch at once. The last case runs the GEMM conv variant, the default
        // on GPUs but not on the CPU adapters CI has.
        let gemm = ConvTune::variants_for(gpu())
            .into_iter()
            .find(|t| t.variant == ConvVariant::Gemm);
        for (bn, accumulate, max_binding, conv) in [
            (false, 1, None, None),
            (true, 1, None, None),
            (false, 2, None, None),
            (true, 1, Some(1000), None),
            (false, 2, Some(1000), None),
            (true, 1, Some(1000), gemm),
        ] {
            let m = model(bn);
            let mut w = Weights::init(&m, Init::Kaiming, seed());
            // Non-trivial biases and batch-norm parameters.
            let mut rng = TensorRng::new(seed() + 1);
            let names: Vec<String> = w.iter().map(|(n, _)| n.clone()).collect();
            for name in names {
                let t = w.get_mut(&name).unwrap();
                if name.ends_with("bias") || name.ends_with("running_mean") {
                    t.data = rng.range(t.len(), -0.1, 0.1);
                } else if name.ends_with("running_var") {
                    t.data = rng.range(t.len(), 0.5, 1.5);
                }
            }
            let opts = TrainOptions {
                batch: 4,
                accumulate,
                dropout: false,
                max_binding,
                conv,
                ..Default::default()
            };
            let mut t = Trainer::new(gpu(), &m, &w, opts).unwrap();
            let sgd = Sgd {
                lr: 0.05,
                momentum: 0.9,
                weight_decay: 5e-4,
            };
            let (mut rw, mut rv) = (w.clone(), Weights::new());
            for s in 0..3u64 {
                // A batch with no near-tie in a max-pool window (see pool_margin): there the
                // GPU and the reference may both be right and still route the gradient to
                // different inputs (seed 1796234663921720731 drew one at step 0).
                let (x, labels) = (0..100)
                    .map(|k| batch(&m, 4 * accumulate, seed() + 10 + s + 1000 * k))
                    .find(|(x, _)| pool_margin(&m, &rw, x).is_ok_and(|g| g > 1e-4))
                    .unwrap_or_else(|| panic!("no batch without a near-tie in 100 draws"));
                let got = t.step(&x, &labels, sgd.lr as f32).unwrap();
                // The reference steps each micro-batch's gradient separately only when there is
                // one; with accumulation it takes the whole logical batch at once, which is the
                // same mean gradient.
                let (loss, correct) = ref_step(&m, &mut rw, &mut rv, &x, &labels, sgd).unwrap();
                assert!(
                    (got.loss - loss).abs() <= 1e-4 * loss.abs().max(1.0),
                    "step {s}: {} vs {loss}",
                    got.loss
                );
                assert_eq!(got.correct, correct, "step {s}");
            }
            let gw = t.weights().unwrap();
            for (name, want) in rw.iter() {
                // The steps must have moved every trainable tensor, or the comparison is empty.
                if !name.contains("running") {
                    let init = w.get(name).unwrap();
                    let moved = compare(&want.data, &init.data);
                    assert!(moved.rel_l2 > 1e-7, "{name} did not move: {moved}");
                }
                let got = gw.get(name).unwrap_or_else(|| panic!("no {name}"));
                let d = compare(&got.data, &want.data);
                assert!(d.passes(1e-4), "{name}: {d}");
                if name.contains("running") {
                    continue;
                }
                // The updates themselves, which are small against the weights, so the check on
                // the weights alone would hide a wrong gradient. Their f32 rounding (one ulp
                // of the weight, about 1e-4 of the update) bounds how close they can be.
                let init = &w.get(name).unwrap().data;
                let delta = |v: &[f32]| v.iter().zip(init).map(|(a, b)| a - b).collect::<Vec<_>>();
                let dd = compare(&delta(&got.data), &delta(&want.data));
                eprintln!(
                    "[{}] bn={bn} accumulate={accumulate} {name}: weights {d}; updates {dd}",
                    gpu().info().name
                );
                // Where an update is tiny against its weight, a few ulps of the weight bound it.
                let ulp =
                    f32::EPSILON as f64 * init.iter().fold(0.0f64, |m, v| m.max(v.abs() as f64));
                assert!(
                    dd.passes(1e-3) || dd.max_abs <= 4.0 * ulp,
                    "{name} updates: {dd}"
                );
            }
        }
    });
}

#[test]
fn a_short_run_lowers_the_loss() {
    on_each_gpu(|| {
        let m = model(true);
        let w = Weights::init(&m, Init::Kaiming, seed());
        let opts = TrainOptions {
            batch: 8,
            ..Default::default()
        };
        let mut t = Trainer::new(gpu(), &m, &w, opts).unwrap();
        let (x, labels) = batch(&m, 8, seed());
        let first = t.step(&x, &labels, 0.05).unwrap().loss;
        let losses: Vec<f64> = (0..60)
            .map(|_| t.step(&x, &labels, 0.05).unwrap().loss)
            .collect();
        // Dropout is on, so single steps are noisy: compare the mean of the last ten.
        let last = losses[50..].iter().sum::<f64>() / 10.0;
        eprintln!("loss {first:.4} -> {last:.4} (mean of the last 10 of 60 steps)");
        assert!(last < 0.7 * first, "loss {first} -> {last}");
    });
}

#[test]
fn staging_the_next_batch_during_a_step_changes_nothing() {
    // fit uploads batch s + 1 between submitting step s and reading its loss; the queue
    // must order that write after step s's reads, or step s would train on batch s + 1.
    on_each_gpu(|| {
        let m = model(false);
        let w = Weights::init(&m, Init::Kaiming, seed());
        let opts = || TrainOptions {
            batch: 4,
            ..Default::default()
        };
        let batches: Vec<_> = (0..3).map(|s| batch(&m, 4, seed() + 20 + s)).collect();
        let mut one = Trainer::new(gpu(), &m, &w, opts()).unwrap();
        let a: Vec<_> = batches
            .iter()
            .map(|(x, l)| one.step(x, l, 0.05).unwrap())
            .collect();
        let mut two = Trainer::new(gpu(), &m, &w, opts()).unwrap();
        let err = two.submit(0.05).unwrap_err().to_string();
        assert!(err.contains("stage"), "{err}");
        assert!(two.finish().is_err());
        two.stage(&batches[0].0, &batches[0].1).unwrap();
        let mut b = Vec::new();
        for s in 0..batches.len() {
            two.submit(0.05).unwrap();
            assert!(two.submit(0.05).is_err(), "a second submit before finish");
            if let Some((x, l)) = batches.get(s + 1) {
                two.stage(x, l).unwrap();
            }
            b.push(two.finish().unwrap());
        }
        for (s, (a, b)) in a.iter().zip(&b).enumerate() {
            assert_eq!(a.loss.to_bits(), b.loss.to_bits(), "step {s}");
            assert_eq!(a.correct, b.correct, "step {s}");
        }
        let (wa, wb) = (one.weights().unwrap(), two.weights().unwrap());
        for (name, t) in wa.iter() {
            assert_eq!(t.data, wb.get(name).unwrap().data, "{name}");
        }
        assert_eq!(one.steps(), two.steps());
    });
}

/// Every tensor of `a` and `b`, bit for bit.
fn same_bits(a: &Weights, b: &Weights, what: &str) {
    for (name, t) in a.iter() {
        let u = b
            .get(name)
            .unwrap_or_else(|| panic!("{what}: {name} missing"));
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&t.data), bits(&u.data), "{what}: {name}");
    }
}

#[test]
fn a_batch_run_in_groups_of_images_trains_bit_for_bit_as_the_whole_batch() {
    // Under a binding of 3000 bytes the first conv (2880 bytes an image) and the first
    // pool run one image at a time, the 1x1 conv, LRN and second pool in groups of 3, 3
    // and 2 (960 bytes an image, a batch of 8); the last conv, the FC layers and the loss
    // on the whole batch. Weight gradients and bias sums add the groups in the batch's
    // order, so the run is the whole batch's bit for bit: losses, weights and momentum,
    // over three steps of two micro-batches. The batch's 8 chunks (an image each) fill a
    // CPU driver's workgroup, so the weight gradients of the first two convs sum a chunk
    // per lane, in groups as on the whole batch.
    on_each_gpu(|| {
        let m = model(false);
        let w = Weights::init(&m, Init::Kaiming, seed());
        let opts = |group_binding| TrainOptions {
            batch: 8,
            accumulate: 2,
            group_binding,
            ..Default::default()
        };
        let mut whole = Trainer::new(gpu(), &m, &w, opts(None)).unwrap();
        let mut split = Trainer::new(gpu(), &m, &w, opts(Some(3000))).unwrap();
        assert!(whole.grouped().is_empty());
        let sizes: Vec<usize> = split.grouped().iter().map(|g| g.1).collect();
        assert_eq!(sizes, [1, 1, 3, 3, 3], "{:?}", split.grouped());
        for s in 0..3 {
            let (x, labels) = batch(&m, 16, seed() + 40 + s);
            let a = whole.step(&x, &labels, 0.05).unwrap();
            let b = split.step(&x, &labels, 0.05).unwrap();
            assert_eq!(a.loss.to_bits(), b.loss.to_bits(), "step {s}");
            assert_eq!(a.correct, b.correct, "step {s}");
        }
        same_bits(
            &whole.weights().unwrap(),
            &split.weights().unwrap(),
            "weights",
        );
        same_bits(
            &whole.momentum().unwrap(),
            &split.momentum().unwrap(),
            "momentum",
        );
        // The groups were really used: a binding too small for one image is refused, and
        // batch norm, whose statistics span the batch, is refused by name.
        let e = Trainer::new(gpu(), &m, &w, opts(Some(2000))).err().unwrap();
        assert!(
            e.to_string().contains("one image's tensor alone passes it"),
            "{e}"
        );
        let bn = model(true);
        let wb = Weights::init(&bn, Init::Kaiming, seed());
        let e = Trainer::new(gpu(), &bn, &wb, opts(Some(3000)))
            .err()
            .unwrap();
        assert!(
            e.to_string().contains("does not run in groups of images"),
            "{e}"
        );
    });
}

#[test]
fn the_trainer_and_the_executor_choose_the_same_variants() {
    // One choice per layer: inference and training of the same model on the same adapter
    // run every conv and FC layer in the same configuration, at maps from 32x32 down to
    // 2x2 (untuned here; tests/tuning.rs does it with a tuning file).
    on_each_gpu(|| {
        let m = Model::parse("8,M,16,M,16,16,M,24,M,24")
            .and_then(|m| m.with_input(3, 32, 32))
            .and_then(|m| m.with_avgpool(None))
            .and_then(|m| m.with_hidden(&[20]))
            .and_then(|m| m.with_classes(7))
            .unwrap_or_else(|e| panic!("{e}"));
        let w = Weights::init(&m, Init::Kaiming, seed());
        let mut net = Network::new(gpu(), &m, &w).unwrap();
        let x = Tensor::new(
            vec![4, 3, 32, 32],
            TensorRng::new(seed()).uniform(4 * 3 * 32 * 32),
        )
        .unwrap();
        net.forward(&x).unwrap();
        let opts = TrainOptions {
            batch: 4,
            dropout: false,
            ..Default::default()
        };
        let t = Trainer::new(gpu(), &m, &w, opts).unwrap();
        let (mut convs, mut fcs) = (Vec::new(), 0);
        for (l, layer) in m.layers().iter().enumerate() {
            match layer.op {
                Op::Conv { .. } => {
                    let tune = net.conv_tune(l);
                    assert_eq!(t.conv_tune(l), Some(tune), "{}", layer.name);
                    convs.push(tune.variant);
                }
                Op::Linear { .. } => {
                    let v = net.linear_variant(l);
                    assert!(v.is_some(), "{}", layer.name);
                    assert_eq!(t.linear_variant(l), v, "{}", layer.name);
                    fcs += 1;
                }
                _ => {}
            }
        }
        assert_eq!((convs.len(), fcs), (6, 2));
        eprintln!("[{}] conv variants {convs:?}", gpu().info().name);
    });
}

#[test]
fn evaluation_agrees_with_the_reference() {
    on_each_gpu(|| {
        use vgg_wgpu::io::datasets::mnist_5k;
        use vgg_wgpu::io::labels::top_k;
        let m = vgg_wgpu::train::mnist_model().unwrap();
        let w = Weights::init(&m, Init::Kaiming, seed());
        let data = mnist_5k().unwrap().slice(0..40);
        let mut net = vgg_wgpu::Network::new(gpu(), &m, &w).unwrap();
        let acc = vgg_wgpu::train::fit::evaluate(&mut net, &data).unwrap();
        let x = Tensor::new(vec![40, 1, 28, 28], data.images.clone()).unwrap();
        let logits = vgg_wgpu::reference::network::forward(&m, &w, &x, None).unwrap();
        let correct = (0..40)
            .filter(|&i| top_k(logits.row(i), 1)[0].0 == data.labels[i] as usize)
            .count();
        assert_eq!(acc, correct as f64 / 40.0);
    });
}

/// 200 of the bundled digits, 40 of them held out: a run of a few steps an epoch.
fn every_25th_digit() -> (
    vgg_wgpu::io::datasets::Dataset,
    vgg_wgpu::io::datasets::Dataset,
) {
    let data = vgg_wgpu::io::datasets::mnist_5k().unwrap();
    data.select(&(0..5000).step_by(25).collect::<Vec<_>>())
        .split(40)
        .unwrap()
}

#[test]
fn resuming_from_a_checkpoint_continues_exactly() {
    let (train, test) = every_25th_digit();
    resumed_runs_match("shift", &train, &test, None);
}

/// The paper's scale jittering with the colour shift: the digits stored at 36x36 (padded),
/// S drawn from 28..36 per image, a 28x28 crop, the colour PCA of the training set.
#[test]
fn resuming_with_scale_jittering_and_colour_shift_continues_exactly() {
    let (train, test) = every_25th_digit();
    let pad = |d: &vgg_wgpu::io::datasets::Dataset| {
        let mut images = Vec::with_capacity(d.len() * 36 * 36);
        for i in 0..d.len() {
            let img = d.image(i);
            for y in 0..36 {
                for x in 0..36 {
                    let inside = (4..32).contains(&y) && (4..32).contains(&x);
                    images.push(if inside {
                        img[(y - 4) * 28 + x - 4]
                    } else {
                        0.0
                    });
                }
            }
        }
        vgg_wgpu::io::datasets::Dataset {
            images,
            dims: (1, 36, 36),
            ..d.clone()
        }
    };
    let stored = pad(&train);
    let colour = vgg_wgpu::io::scale::pca_of_images(&stored.images, stored.dims).unwrap();
    let jitter = vgg_wgpu::io::scale::Jitter {
        min: 28,
        max: 36,
        crop: (28, 28),
        colour: Some(colour),
    };
    let test = vgg_wgpu::io::scale::center_views(&pad(&test), 32, (28, 28)).unwrap();
    resumed_runs_match("jitter", &stored, &test, Some(jitter));
}

/// Three epochs at once and one epoch then a resume for two give the same bits.
fn resumed_runs_match(
    name: &str,
    train: &vgg_wgpu::io::datasets::Dataset,
    test: &vgg_wgpu::io::datasets::Dataset,
    scale: Option<vgg_wgpu::io::scale::Jitter>,
) {
    on_each_gpu(|| {
        use vgg_wgpu::train::fit::{fit, FitOptions, Schedule, Start};
        let m = vgg_wgpu::train::mnist_model().unwrap();
        let w = Weights::init(&m, Init::Kaiming, 3);
        let dir = |run: &str| {
            let d = std::env::temp_dir()
                .join(format!("vgg-resume-{}-{name}-{run}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            d
        };
        let opts = |epochs, out| FitOptions {
            epochs,
            lr: 0.05,
            schedule: Schedule::Step {
                every: 1,
                factor: 0.5,
            },
            train: TrainOptions {
                batch: 16,
                seed: 9,
                ..Default::default()
            },
            out: Some(out),
            augment: true,
            augment_pad: 2,
            resized_crop: false,
            scale: scale.clone(),
            lr_on_resume: None,
            card: None,
        };
        let (a, b) = (dir("a"), dir("b"));
        let quiet = |_: usize, _: usize, _: usize, _: &vgg_wgpu::train::StepStats| {};
        let data = (train, test);
        let from = Start::From(&w);
        let (wa, ha) = fit(gpu(), &m, from, data, &opts(3, a), quiet, |_| {}).unwrap();
        fit(gpu(), &m, from, data, &opts(1, b.clone()), quiet, |_| {}).unwrap();
        let ckpt = b.join("checkpoint.safetensors");
        let resume = Start::Resume(&ckpt);
        let (wb, hb) = fit(gpu(), &m, resume, data, &opts(3, b.clone()), quiet, |_| {}).unwrap();
        assert_eq!(hb.len(), 2, "the resumed run does epochs 2 and 3");
        for (x, y) in ha[1..].iter().zip(&hb) {
            eprintln!("epoch {}: loss {} vs resumed {}", x.epoch, x.loss, y.loss);
            assert_eq!((x.epoch, x.loss, x.lr), (y.epoch, y.loss, y.lr));
        }
        assert_eq!(wa, wb, "the same weights after the same epochs");
        let csv = std::fs::read_to_string(b.join("metrics.csv")).unwrap();
        assert_eq!(csv.lines().count(), 4, "{csv}");
    });
}

#[test]
fn a_diverging_run_stops_and_keeps_its_last_good_checkpoint() {
    on_each_gpu(|| {
        use vgg_wgpu::train::fit::{fit, FitOptions, Schedule, Start};
        let m = vgg_wgpu::train::mnist_model().unwrap();
        let (train, test) = every_25th_digit();
        let w = Weights::init(&m, Init::Kaiming, 3);
        let dir = std::env::temp_dir().join(format!("vgg-diverge-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let opts = |epochs, lr_on_resume| FitOptions {
            epochs,
            lr: 0.05,
            schedule: Schedule::Constant,
            train: TrainOptions {
                batch: 16,
                seed: 9,
                ..Default::default()
            },
            out: Some(dir.clone()),
            augment: false,
            augment_pad: 0,
            resized_crop: false,
            scale: None,
            lr_on_resume,
            card: None,
        };
        let quiet = |_: usize, _: usize, _: usize, _: &vgg_wgpu::train::StepStats| {};
        let run = |o: &FitOptions, resume: Option<&std::path::Path>| {
            let start = resume.map_or(Start::From(&w), Start::Resume);
            fit(gpu(), &m, start, (&train, &test), o, quiet, |_| {})
        };
        run(&opts(1, None), None).unwrap();
        let ckpt = dir.join("checkpoint.safetensors");
        let before = std::fs::read(&ckpt).unwrap();
        // A second, fresh run into the same folder would overwrite the first: refused.
        let e = run(&opts(1, None), None).unwrap_err().to_string();
        assert!(e.contains("already holds a training run"), "{e}");
        // Resumed at a rate of 100, the loss explodes within the epoch.
        let e = run(&opts(2, Some(100.0)), Some(&ckpt))
            .unwrap_err()
            .to_string();
        eprintln!("{e}");
        assert!(
            e.contains("training diverged at epoch 2 step ")
                && e.contains("at learning rate 100")
                && e.contains("checkpoint.safetensors (epoch 1)"),
            "{e}"
        );
        assert_eq!(
            std::fs::read(&ckpt).unwrap(),
            before,
            "the good checkpoint is kept"
        );
        let csv = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
        assert_eq!(csv.lines().count(), 2, "{csv}");
        // From it, at a sane rate, the run finishes epoch 2.
        let (_, h) = run(&opts(2, Some(0.05)), Some(&ckpt)).unwrap();
        assert_eq!(h.iter().map(|r| r.epoch).collect::<Vec<_>>(), [2]);
        let csv = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
        assert_eq!(csv.lines().count(), 3, "{csv}");
        let _ = std::fs::remove_dir_all(&dir);
    });
}

#[test]
fn an_image_folder_loads_by_class() {
    let fx = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images");
    let dir = std::env::temp_dir().join(format!("vgg-folder-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for (class, files) in [
        ("cats", &["chelsea.png"][..]),
        ("things", &["astronaut.jpg", "coffee_rgba.png"][..]),
    ] {
        std::fs::create_dir_all(dir.join(class)).unwrap();
        for f in files {
            std::fs::copy(fx.join(f), dir.join(class).join(f)).unwrap();
        }
    }
    let (d, names) = vgg_wgpu::io::datasets::folder(&dir, 3, 32, u64::MAX).unwrap();
    assert_eq!(names, ["cats", "things"]);
    assert_eq!((d.len(), d.dims, d.classes), (3, (3, 32, 32), 2));
    assert_eq!(d.labels, [0, 1, 1]);
    assert!(d.images.iter().all(|v| (0.0..=1.0).contains(v)));
    let (g, _) = vgg_wgpu::io::datasets::folder(&dir, 1, 16, u64::MAX).unwrap();
    assert_eq!(g.dims, (1, 16, 16));
    assert!(
        vgg_wgpu::io::datasets::folder(&fx, 3, 32, u64::MAX).is_err(),
        "no class subdirectories"
    );
}

#[test]
fn the_training_memory_plan_is_what_the_trainer_allocates() {
    on_each_gpu(|| {
        // f16 training's conv weights packed as f16 halves, where the emulation runs.
        let coop = ConvTune::variants_for(gpu())
            .into_iter()
            .find(|t| t.variant == ConvVariant::CoopEmulated);
        let mut cases = vec![(false, None), (true, None)];
        if coop.is_some() {
            cases.extend([(false, coop), (true, coop)]);
        }
        for (bn, conv) in cases {
            let m = model(bn);
            let w = Weights::init(&m, Init::Kaiming, 1);
            let opts = TrainOptions {
                batch: 6,
                accumulate: 3,
                conv,
                ..Default::default()
            };
            let t = Trainer::new(gpu(), &m, &w, opts).unwrap();
            use vgg_wgpu::graph::choice::{Choose, Numerics};
            let choose = Choose {
                gpu: gpu(),
                numerics: Numerics::training(opts.precision),
                conv,
                linear: None,
            };
            let binding = gpu().max_binding_bytes();
            let plan: u64 =
                vgg_wgpu::train::memory_plan(&m, &opts, binding, |at, dx| choose.node(at, dx))
                    .unwrap()
                    .bytes
                    .iter()
                    .map(|p| p.1)
                    .sum();
            // The readback buffer (each image's loss and correctness, then the overflow
            // flag) is the only allocation the plan leaves out.
            let readback = ((2 * 6 * 3 + 1) * 4) as u64;
            assert_eq!(plan + readback, t.allocated_bytes(), "bn={bn} {conv:?}");
        }
    });
}

/// The f32 forward variants, named, so a test keeps them on an adapter with tensor cores
/// (where f16 would pick the cooperative-matrix ones).
fn f32_variants() -> (
    Option<ConvTune>,
    Option<vgg_wgpu::kernels::linear::LinearVariant>,
) {
    let g = gpu();
    (
        Some(ConvTune::default_for(g)),
        Some(vgg_wgpu::kernels::linear::LinearVariant::default_for(g)),
    )
}

#[test]
fn loss_scaling_by_a_power_of_two_changes_no_bit_of_f32_arithmetic() {
    // f16 training with the f32 kernels: the loss gradient is multiplied by 2^16 and the
    // update divides it back out. Both are exact in binary floating point (barring overflow
    // and subnormals, which these magnitudes do not reach), and every backward op is linear
    // in the gradient, so the weights must come out bitwise as in f32. A scale applied twice,
    // or not removed, or a skipped update, would change them.
    on_each_gpu(|| {
        let m = model(true);
        let w = Weights::init(&m, Init::Kaiming, seed());
        let (conv, linear) = f32_variants();
        let opts = |precision| TrainOptions {
            batch: 4,
            accumulate: 2,
            conv,
            linear,
            precision,
            ..Default::default()
        };
        use vgg_wgpu::gpu::Precision;
        let mut a = Trainer::new(gpu(), &m, &w, opts(Precision::F32)).unwrap();
        let mut b = Trainer::new(gpu(), &m, &w, opts(Precision::F16)).unwrap();
        for s in 0..4u64 {
            let (x, labels) = batch(&m, 8, seed() + 30 + s);
            let (sa, sb) = (
                a.step(&x, &labels, 0.05).unwrap(),
                b.step(&x, &labels, 0.05).unwrap(),
            );
            assert_eq!(sa.loss.to_bits(), sb.loss.to_bits(), "step {s}");
            assert_eq!((sa.loss_scale, sb.loss_scale), (1.0, 65536.0), "step {s}");
            assert!(!sa.skipped && !sb.skipped, "step {s}");
        }
        let (wa, wb) = (a.weights().unwrap(), b.weights().unwrap());
        let (ma, mb) = (a.momentum().unwrap(), b.momentum().unwrap());
        for (name, t) in wa.iter() {
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&t.data), bits(&wb.get(name).unwrap().data), "{name}");
        }
        for (name, t) in ma.iter() {
            assert_eq!(t.data, mb.get(name).unwrap().data, "momentum of {name}");
        }
    });
}

#[test]
fn an_overflowing_step_is_skipped_and_the_loss_scale_backs_off() {
    // A loss scale of 2^127 with inputs of magnitude up to 10^4 (and no LRN, which would
    // squash them): the last FC layer's weight gradient, hidden activations in the
    // thousands times a logit gradient near 2^124 (1/8 of the scale), passes f32's 2^128,
    // so the first steps overflow (on lavapipe 6, the first update at 2^121). Each must
    // leave weights and momentum bitwise as they were and halve the scale, until one goes
    // through.
    on_each_gpu(|| {
        let m = Model::parse("6,M,8,M,10")
            .and_then(|m| m.with_input(2, 12, 10))
            .and_then(|m| m.with_avgpool(None))
            .and_then(|m| m.with_hidden(&[12]))
            .and_then(|m| m.with_classes(5))
            .unwrap_or_else(|e| panic!("{e}"));
        let w = Weights::init(&m, Init::Kaiming, seed());
        let (conv, linear) = f32_variants();
        let opts = TrainOptions {
            batch: 8,
            dropout: false,
            conv,
            linear,
            precision: vgg_wgpu::gpu::Precision::F16,
            loss_scale: Some(2f32.powi(127)),
            ..Default::default()
        };
        let mut t = Trainer::new(gpu(), &m, &w, opts).unwrap();
        let (mut x, labels) = batch(&m, 8, seed() + 40);
        for v in &mut x.data {
            *v *= 1e4;
        }
        let bits = |w: &Weights| {
            w.iter()
                .flat_map(|(_, t)| t.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>())
                .collect::<Vec<_>>()
        };
        let (w0, v0) = (bits(&t.weights().unwrap()), bits(&t.momentum().unwrap()));
        let mut scale = 2f32.powi(127);
        let mut skipped = 0;
        let first = loop {
            let st = t.step(&x, &labels, 0.01).unwrap();
            assert_eq!(st.loss_scale, scale);
            if !st.skipped {
                break st;
            }
            skipped += 1;
            scale *= 0.5;
            assert_eq!(t.loss_scale(), (scale, 0));
            assert_eq!(
                bits(&t.weights().unwrap()),
                w0,
                "weights after skip {skipped}"
            );
            assert_eq!(
                bits(&t.momentum().unwrap()),
                v0,
                "momentum after skip {skipped}"
            );
            assert!(
                skipped < 40,
                "no step went through down to a scale of {scale}"
            );
        };
        eprintln!(
            "[{}] {skipped} steps skipped, the first update at a loss scale of 2^{}",
            gpu().info().name,
            first.loss_scale.log2()
        );
        assert!(skipped >= 1, "the first step at 2^127 should overflow");
        assert_ne!(
            bits(&t.weights().unwrap()),
            w0,
            "the update that went through"
        );
        assert_eq!(t.loss_scale(), (scale, 1));
    });
}

#[test]
fn the_loss_scale_doubles_after_its_interval_of_clean_steps() {
    let m = model(false);
    let w = Weights::init(&m, Init::Kaiming, seed());
    let opts = TrainOptions {
        batch: 4,
        precision: vgg_wgpu::gpu::Precision::F16,
        loss_scale: Some(1024.0),
        scale_growth: 3,
        ..Default::default()
    };
    let mut t = Trainer::new(gpu(), &m, &w, opts).unwrap();
    let (x, labels) = batch(&m, 4, seed() + 50);
    let scales: Vec<f32> = (0..7)
        .map(|_| t.step(&x, &labels, 0.01).unwrap().loss_scale)
        .collect();
    assert_eq!(
        scales,
        [1024.0, 1024.0, 1024.0, 2048.0, 2048.0, 2048.0, 4096.0]
    );
    assert_eq!(t.loss_scale(), (4096.0, 1));
    let bad = TrainOptions {
        loss_scale: Some(f32::INFINITY),
        ..opts
    };
    assert!(Trainer::new(gpu(), &m, &w, bad).is_err());
}

#[test]
fn f16_operands_on_emulated_tensor_cores_train_as_f32_does() {
    // What --precision f16 runs on tensor cores, with the matrix operations done lane by
    // lane (CI's CPU drivers have no cooperative matrices): every conv forward, input
    // gradient and weight gradient, and every FC forward, on f16 operands with f32 sums,
    // the weights repacked to f16 from their f32 masters each step, the loss scaled by 2^16.
    use vgg_wgpu::kernels::linear::LinearVariant;
    on_each_gpu(|| {
        let g = gpu();
        let conv = ConvTune::variants_for(g)
            .into_iter()
            .find(|t| t.variant == ConvVariant::CoopEmulated);
        let (Some(conv), None) = (conv, LinearVariant::CoopEmulated.missing(g)) else {
            eprintln!(
                "[{}] not tested: no emulated cooperative matrices",
                g.info().name
            );
            return;
        };
        // No LRN, and batch norm: a short run's loss falls clearly.
        let m = Model::parse("6,M,8,M,10")
            .and_then(|m| m.with_input(2, 12, 10))
            .and_then(|m| m.with_batch_norm(true))
            .and_then(|m| m.with_avgpool(None))
            .and_then(|m| m.with_hidden(&[12]))
            .and_then(|m| m.with_classes(5))
            .unwrap_or_else(|e| panic!("{e}"));
        let w = Weights::init(&m, Init::Kaiming, seed());
        let mut f32_run = Trainer::new(
            g,
            &m,
            &w,
            TrainOptions {
                batch: 16,
                dropout: false,
                ..Default::default()
            },
        )
        .unwrap();
        let mut f16_run = Trainer::new(
            g,
            &m,
            &w,
            TrainOptions {
                batch: 16,
                dropout: false,
                conv: Some(conv),
                linear: Some(LinearVariant::CoopEmulated),
                precision: vgg_wgpu::gpu::Precision::F16,
                ..Default::default()
            },
        )
        .unwrap();
        let convs: Vec<_> = (0..m.layers().len())
            .filter_map(|l| f16_run.conv_tune(l))
            .collect();
        assert_eq!(convs.len(), 3);
        assert!(
            convs.iter().all(|t| t.variant == ConvVariant::CoopEmulated),
            "{convs:?}"
        );
        let (x, labels) = batch(&m, 16, seed() + 60);
        let mut losses = Vec::new();
        for _ in 0..40 {
            let a = f32_run.step(&x, &labels, 0.1).unwrap();
            let b = f16_run.step(&x, &labels, 0.1).unwrap();
            assert!(!b.skipped, "no overflow at 2^16 with these magnitudes");
            losses.push((a.loss, b.loss));
        }
        let (first, last) = (losses[0], losses[losses.len() - 1]);
        eprintln!(
            "[{}] loss f32 {:.7} -> {:.7}, f16 operands {:.7} -> {:.7}",
            g.info().name,
            first.0,
            last.0,
            first.1,
            last.1
        );
        // The first step's loss is the forward alone: 5 layers whose operands are each
        // rounded to f16 (relative 2^-11 = 4.9e-4 per operand, two per product) put at most
        // about 5 x 2 x 4.9e-4 = 4.9e-3 of relative error in the logits; 1e-2 allows twice.
        assert!(
            (first.1 - first.0).abs() <= 1e-2 * first.0,
            "first loss {} vs {}",
            first.1,
            first.0
        );
        assert!(
            last.0 < 0.5 * first.0 && last.1 < 0.5 * first.1,
            "{losses:?}"
        );
    });
}
