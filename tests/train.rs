//! Training on the GPU against the CPU reference: the same three SGD steps from the same
//! weights on the same batches give the same parameters; and a short run's loss falls.

mod common;
use common::{gpu, on_each_gpu, seed};
use vgg_wgpu::check::{compare, TensorRng};
use vgg_wgpu::kernels::conv::{ConvTune, ConvVariant};
use vgg_wgpu::reference::train::{step as ref_step, Sgd};
use vgg_wgpu::train::{TrainOptions, Trainer};
use vgg_wgpu::{Init, Model, Tensor, Weights};

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
                let (x, labels) = batch(&m, 4 * accumulate, seed() + 10 + s);
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
    on_each_gpu(|| {
        use vgg_wgpu::train::fit::{fit, FitOptions, Schedule};
        let m = vgg_wgpu::train::mnist_model().unwrap();
        let (train, test) = every_25th_digit();
        let w = Weights::init(&m, Init::Kaiming, 3);
        let dir = |name: &str| {
            let d = std::env::temp_dir().join(format!("vgg-resume-{}-{name}", std::process::id()));
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
            lr_on_resume: None,
            card: None,
        };
        let (a, b) = (dir("a"), dir("b"));
        let quiet = |_: usize, _: usize, _: usize, _: &vgg_wgpu::train::StepStats| {};
        let (wa, ha) = fit(
            gpu(),
            &m,
            &w,
            &train,
            &test,
            &opts(3, a),
            None,
            quiet,
            |_| {},
        )
        .unwrap();
        fit(
            gpu(),
            &m,
            &w,
            &train,
            &test,
            &opts(1, b.clone()),
            None,
            quiet,
            |_| {},
        )
        .unwrap();
        let ckpt = b.join("checkpoint.safetensors");
        let (wb, hb) = fit(
            gpu(),
            &m,
            &w,
            &train,
            &test,
            &opts(3, b.clone()),
            Some(&ckpt),
            quiet,
            |_| {},
        )
        .unwrap();
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
        use vgg_wgpu::train::fit::{fit, FitOptions, Schedule};
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
            lr_on_resume,
            card: None,
        };
        let quiet = |_: usize, _: usize, _: usize, _: &vgg_wgpu::train::StepStats| {};
        let run = |o: &FitOptions, resume: Option<&std::path::Path>| {
            fit(gpu(), &m, &w, &train, &test, o, resume, quiet, |_| {})
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
        for bn in [false, true] {
            let m = model(bn);
            let w = Weights::init(&m, Init::Kaiming, 1);
            let opts = TrainOptions {
                batch: 6,
                accumulate: 3,
                ..Default::default()
            };
            let t = Trainer::new(gpu(), &m, &w, opts).unwrap();
            let select =
                |s| vgg_wgpu::kernels::conv::select(gpu(), s, None, vgg_wgpu::gpu::Precision::F32);
            let plan: u64 = vgg_wgpu::train::memory_plan(&m, &opts, select)
                .unwrap()
                .iter()
                .map(|p| p.1)
                .sum();
            // The readback buffer is the only allocation the plan leaves out.
            let readback = (2 * 6 * 3 * 4) as u64;
            assert_eq!(plan + readback, t.allocated_bytes(), "bn={bn}");
        }
    });
}
