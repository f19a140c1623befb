//! The `vgg` binary: adapter listing, the self-check, and one-line errors on bad options.

use std::process::Command;

fn vgg(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vgg"))
        .args(args)
        .env_remove("VGG_ADAPTER")
        .output()
        .expect("run vgg");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Without XDG_RUNTIME_DIR (a fresh container, sudo), or with one that names nothing, the
/// OpenGL driver's complaint about it is not the user's problem: vgg gives it a private one.
#[test]
fn no_runtime_directory_is_no_noise() {
    for runtime in [None, Some("/nonexistent/run")] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vgg"));
        cmd.args(["devices"]).env_remove("VGG_ADAPTER");
        match runtime {
            None => cmd.env_remove("XDG_RUNTIME_DIR"),
            Some(d) => cmd.env("XDG_RUNTIME_DIR", d),
        };
        let out = cmd.output().expect("run vgg");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert!(!err.contains("XDG_RUNTIME_DIR"), "{err}");
    }
}

/// An --op that names no case is an error listing the names, not a run of nothing.
#[test]
fn check_refuses_an_op_that_names_no_case() {
    for op in ["conv/forwrd", "convolution", "train/steps"] {
        let (ok, _, err) = vgg(&["check", "--op", op]);
        assert!(!ok && err.contains("names no case"), "{op}: {err}");
        assert!(
            err.contains("conv/backward") && err.contains("train/step"),
            "{err}"
        );
    }
}

#[test]
fn devices_lists_adapters_with_limits() {
    let (ok, out, err) = vgg(&["devices"]);
    assert!(ok, "{err}");
    eprintln!("{out}");
    assert!(
        out.contains("max binding") && out.lines().count() >= 2,
        "{out}"
    );
}

/// `--all` where the tests run on every adapter, else the default adapter.
fn adapter_scope() -> Vec<&'static str> {
    if std::env::var("VGG_TEST_ALL_ADAPTERS").is_ok_and(|v| v == "1") {
        vec!["--all"]
    } else {
        vec![]
    }
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("vgg-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn check_passes_and_writes_the_conformance_report() {
    let dir = temp_dir("check");
    let (json, md) = (dir.join("report.json"), dir.join("report.md"));
    let mut args = vec!["check", "--seed", "11", "--json", json.to_str().unwrap()];
    args.extend(["--markdown", md.to_str().unwrap()]);
    args.extend(adapter_scope());
    let (ok, out, err) = vgg(&args);
    eprintln!("{out}");
    assert!(ok, "{out}{err}");
    assert!(out.contains("PASSED: ") && !out.contains("FAIL"), "{out}");
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r["schema"], "vgg-conformance/1");
    assert_eq!(r["seed"], 11);
    // No scope given: the quick set, and the way to the rest.
    assert_eq!(r["scope"], "quick");
    // Once, however many adapters (with --all each child's copy is dropped).
    assert_eq!(out.matches("that was the quick set").count(), 1, "{out}");
    assert!(out.contains("--full"), "{out}");
    let adapters = r["adapters"].as_array().unwrap();
    assert!(!adapters.is_empty());
    let mut ran = 0;
    for a in adapters {
        for key in ["name", "vendor", "backend", "driver", "device_type"] {
            assert!(a[key].is_string(), "{key} missing: {a}");
        }
        if a["status"] == "unsupported" {
            assert!(a["message"].is_string());
            continue;
        }
        ran += 1;
        assert_eq!(a["status"], "passed", "{}", a["name"]);
        let rows = a["results"].as_array().unwrap();
        for op in [
            "conv/forward",
            "conv/dgrad",
            "conv/wgrad",
            "pool/backward",
            "linear/dw",
            "batchnorm/dx",
            "lrn/backward",
            "optim/sgd",
            "network/forward",
            "train/update",
        ] {
            assert!(rows.iter().any(|r| r["op"] == op), "no {op} row");
        }
        // The edge cases (tensors over the binding limit, grids past 65535 workgroups) are
        // the standard set's, which tests/ops.rs runs op by op.
        for row in rows {
            assert_eq!(row["pass"], true, "{row}");
            assert_eq!(row["deterministic"], true, "{row}");
            assert!(
                row["rel_l2"].is_number() && row["max_ulp"].is_number(),
                "{row}"
            );
        }
        assert_eq!(a["failed"], 0);
        for s in a["skipped"].as_array().unwrap() {
            assert!(!s["reason"].as_str().unwrap().is_empty(), "{s}");
        }
    }
    assert!(ran >= 1, "no adapter could run");
    let md = std::fs::read_to_string(&md).unwrap();
    assert!(
        md.contains("| op | shape | max abs | rel L2 | max ULP |"),
        "{md}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn check_catches_an_off_by_one_kernel() {
    // The max-pool kernel with its window loop one short: the bottom-right element of each
    // 2x2 window is never looked at.
    let dir = temp_dir("offbyone");
    let source = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/shaders/pool/forward.wgsl"
    ))
    .unwrap();
    assert_eq!(source.matches("t < 4u").count(), 1);
    std::fs::create_dir_all(dir.join("pool")).unwrap();
    std::fs::write(
        dir.join("pool/forward.wgsl"),
        source.replace("t < 4u", "t < 3u"),
    )
    .unwrap();
    let json = dir.join("report.json");
    // The pool cases only: the whole suite runs on every adapter in tests/ops.rs.
    let mut args = vec![
        "check",
        "--op",
        "pool",
        "--no-determinism",
        "--json",
        json.to_str().unwrap(),
    ];
    args.extend(adapter_scope());
    let out = Command::new(env!("CARGO_BIN_EXE_vgg"))
        .args(&args)
        .env_remove("VGG_ADAPTER")
        .env("VGG_SHADER_DIR", &dir)
        .output()
        .expect("run vgg");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!(
        "--- expected: the run with a broken max-pool kernel; its FAIL lines are the point \
         of this test ---\n{stdout}--- end of the expected failures ---"
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    // Every forward max-pool case fails with a line that says what and by how much; the
    // only other failures are the whole networks and the training step, which pool.
    let pools: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("pool/forward "))
        .collect();
    assert!(pools.len() >= 6, "{stdout}");
    for line in &pools {
        // A window one short can miss no maximum by chance only where there are few
        // windows: the two smallest cases.
        let small = line.contains(" 1x2x3x2 ") || line.contains(" 2x4x2x2 ");
        assert!(
            small || (line.contains("FAIL: rel L2 ") && line.contains("argmax indices differ")),
            "{line}"
        );
    }
    let pooling = ["pool/forward ", "network/forward ", "train/"];
    for line in stdout.lines().filter(|l| l.contains(" FAIL: ")) {
        assert!(
            pooling.iter().any(|p| line.starts_with(p)),
            "a kernel that does not pool failed: {line}"
        );
    }
    assert!(
        stdout.contains("kernels replaced from VGG_SHADER_DIR: pool/forward"),
        "{stdout}"
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for a in r["adapters"].as_array().unwrap() {
        if a["status"] == "unsupported" {
            continue;
        }
        assert_eq!(a["status"], "failed");
        assert_eq!(a["shader_overrides"][0], "pool/forward");
        let failed: Vec<&serde_json::Value> = a["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["pass"] == false)
            .collect();
        let pool_rows = failed.iter().filter(|r| r["op"] == "pool/forward").count();
        assert!(
            pool_rows >= 4,
            "the forward max-pool cases with many windows"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn unknown_adapter_is_one_clear_line() {
    let (ok, _, err) = vgg(&["check", "--adapter", "no-such-gpu"]);
    assert!(!ok);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("no adapter matches 'no-such-gpu'"), "{err}");
}

#[test]
fn unknown_backend_is_one_clear_line() {
    let (ok, _, err) = vgg(&["devices", "--backend", "glide"]);
    assert!(!ok);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("'glide' is not one of vulkan, gl, metal, dx12"),
        "{err}"
    );
}

#[test]
fn out_of_range_adapter_index_is_an_error() {
    let (ok, _, err) = vgg(&["check", "--adapter", "99"]);
    assert!(!ok);
    assert!(err.starts_with("error: no adapter matches '99'"), "{err}");
}

#[test]
fn summary_totals_match_the_published_ones() {
    for (model, params, gmac) in [
        ("vgg11", "132,863,336", "7.61"),
        ("vgg13", "133,047,848", "11.31"),
        ("vgg16_c", "133,638,952", "11.77"),
        ("vgg16", "138,357,544", "15.47"),
        ("vgg19", "143,667,240", "19.63"),
        ("vgg16_bn", "138,365,992", "15.47"),
    ] {
        let (ok, out, err) = vgg(&["summary", "--model", model, "--batch", "2"]);
        assert!(ok, "{err}");
        let total = out
            .lines()
            .find(|l| l.starts_with("total:"))
            .unwrap_or_default();
        assert!(
            total.contains(&format!("{params} parameters"))
                && total.contains(&format!("({gmac} GMAC)")),
            "{model}: {total}"
        );
        assert!(out.contains("planned GPU memory at batch 2"), "{out}");
    }
    let (ok, _, err) = vgg(&["summary", "--model", "vgg16", "--input", "16x16"]);
    assert!(
        !ok && err.starts_with("error: ") && err.contains("too small"),
        "{err}"
    );
    let (ok, out, err) = vgg(&["summary", "--model", "vgg11_bn", "--train", "--batch", "4"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("training memory plan at micro-batch 4") && out.contains("activations kept"),
        "{out}"
    );
    let (ok, out, _) = vgg(&["summary", "--list"]);
    assert!(
        ok && out.contains("vgg11_lrn") && out.contains("vgg19_bn"),
        "{out}"
    );
}

#[test]
fn bench_quick_json_has_every_field() {
    let (ok, out, err) = vgg(&["bench", "--quick", "--json"]);
    assert!(ok, "{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    for field in [
        "schema",
        "tool",
        "adapter",
        "date",
        "git_commit",
        "model",
        "input",
        "batches",
        "peak",
        "kernels",
        "networks",
        "notes",
    ] {
        assert!(!r[field].is_null(), "missing {field}");
    }
    for field in ["name", "backend", "device_type", "driver"] {
        assert!(r["adapter"][field].is_string(), "adapter.{field}");
    }
    assert!(r["peak"]["gflops"].as_f64().unwrap() > 0.0);
    assert!(r["peak"]["gbytes_per_s"].as_f64().unwrap() > 0.0);
    let kernels = r["kernels"].as_array().unwrap();
    let ops: std::collections::BTreeSet<&str> =
        kernels.iter().map(|k| k["op"].as_str().unwrap()).collect();
    for op in [
        "peak/fma",
        "peak/copy",
        "conv/forward",
        "pool/forward",
        "linear/forward",
        "softmax/forward",
        "lrn/forward",
        "batchnorm/affine",
        "avgpool/forward",
        "avgpool/backward",
        "im2col/forward",
        "conv/dgrad",
        "conv/wgrad",
        "conv/bias_grad",
        "linear/dx",
        "linear/dw",
        "pool/backward",
        "softmax/xent",
        "optim/sgd",
    ] {
        assert!(ops.contains(op), "no {op} in {ops:?}");
    }
    for k in kernels {
        for f in [
            "median_ms",
            "min_ms",
            "max_ms",
            "gbytes_per_s",
            "fraction_of_peak",
        ] {
            assert!(k[f].as_f64().is_some(), "{f} in {k}");
        }
        assert!(k["runs"].as_u64().unwrap() >= 3);
        let op = k["op"].as_str().unwrap();
        if op == "conv/forward" || op.ends_with("dgrad") {
            assert!(k["gflops"].as_f64().is_some() && k["cpu_reference_ms"].as_f64().is_some());
        }
    }
    // The weight gradient's rows name how it ran: per channel pair where the batch has few
    // pixels (VGG16's last blocks at 32x32), as a GEMM (in chunks) elsewhere.
    let wgrad: Vec<&str> = kernels
        .iter()
        .filter(|k| k["op"] == "conv/wgrad")
        .map(|k| k["variant"].as_str().unwrap())
        .collect();
    assert!(
        wgrad.iter().any(|v| v.starts_with("gemm")) && wgrad.contains(&"pairs"),
        "{wgrad:?}"
    );
    let nets = r["networks"].as_array().unwrap();
    assert!(nets.iter().any(|n| n["mode"] == "training"), "{nets:?}");
    assert!(
        nets.iter().any(|n| n["batch"] == 1) && nets.len() >= 2,
        "{nets:?}"
    );
    assert!(nets
        .iter()
        .all(|n| n["images_per_second"].as_f64().unwrap() > 0.0));
    // The table goes to stderr when JSON takes stdout.
    assert!(err.contains("measured peak"), "{err}");
}

#[test]
fn bench_compares_with_another_report() {
    let dir = std::env::temp_dir().join(format!("vgg-bench-cmp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let a = dir.join("a.json");
    let tiny = [
        "bench",
        "--quick",
        "--no-cpu",
        "--networks",
        "none",
        "--runs",
        "1",
        "--model",
        "8,M,16,M",
        "--input",
        "16x16",
        "--hidden",
        "8",
        "--classes",
        "3",
    ];
    let a_path = a.to_str().unwrap();
    let (ok, _, err) = vgg(&[&tiny[..], &["--json", a_path]].concat());
    assert!(ok, "{err}");
    let (ok, out, err) = vgg(&[&tiny[..], &["--compare", a_path]].concat());
    assert!(ok, "{err}");
    assert!(
        out.contains("entries matched") && out.contains("conv/forward"),
        "{out}"
    );
    // Reports saved before ops were named op/pass read with today's names and still pair.
    let (ok, out, err) = vgg(&[
        "bench",
        "--report",
        "benches/results/lavapipe.json",
        "--compare",
        "benches/results/pytorch-cpu.json",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("28 entries matched"), "{out}");
    assert!(
        out.contains("conv/forward") && !out.contains("conv3x3"),
        "{out}"
    );
    let (ok, _, err) = vgg(&["bench", "--quick", "--compare", "/nonexistent.json"]);
    assert!(!ok && err.starts_with("error: "), "{err}");
}

#[test]
fn demo_classifies_the_held_out_digits() {
    let (ok, out, err) = vgg(&["demo"]);
    assert!(ok, "{err}");
    eprintln!("{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("accuracy "))
        .unwrap_or_default();
    let pct: f64 = line
        .trim_start_matches("accuracy ")
        .split('%')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(pct >= 96.0, "{line}");
    assert!(out.starts_with("adapter: "), "{out}");
}

#[test]
fn train_runs_checkpoints_and_resumes() {
    let dir = std::env::temp_dir().join(format!("vgg-train-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let d = dir.to_str().unwrap();
    let args = [
        "train",
        "--mnist-model",
        "--holdout",
        "4880",
        "--batch-size",
        "20",
        "--out",
        d,
    ];
    let (ok, _, err) = vgg(&[&args[..], &["--epochs", "1"]].concat());
    assert!(ok, "{err}");
    assert!(err.contains("held-out accuracy"), "{err}");
    for f in [
        "checkpoint.safetensors",
        "metrics.csv",
        "model.safetensors",
        "metrics.svg",
    ] {
        assert!(dir.join(f).exists(), "{f}");
    }
    // The checkpoint's card gives the model: --mnist-model need not be repeated, and a
    // model that disagrees with it is refused by name.
    let (ok, _, err) = vgg(&["train", "--model", "vgg11", "--out", d, "--resume"]);
    assert!(
        !ok && err.contains("holds a model of other layers"),
        "{err}"
    );
    let resume = [
        "train",
        "--holdout",
        "4880",
        "--batch-size",
        "20",
        "--out",
        d,
    ];
    let (ok, _, err) = vgg(&[&resume[..], &["--epochs", "2", "--resume"]].concat());
    assert!(ok && err.contains("epoch 2:"), "{err}");
    let (ok, _, err) = vgg(&["train", "--format", "cifar10"]);
    assert!(!ok && err.starts_with("error: "), "{err}");
}

/// OUT/metrics.csv, and the held-out accuracy of its last epoch.
fn last_accuracy(out: &std::path::Path) -> (String, f64) {
    let metrics = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    let last = metrics
        .lines()
        .last()
        .unwrap()
        .split(',')
        .collect::<Vec<_>>();
    let accuracy = last[4].parse().unwrap();
    (metrics, accuracy)
}

/// `vgg infer --weights WEIGHTS DIR` with no model flags, over a folder of `n` images in
/// one subdirectory per class: the share whose top label, one of `classes`, names the
/// image's folder.
fn labelled_accuracy(
    weights: &std::path::Path,
    dir: &std::path::Path,
    classes: &[&str],
    n: usize,
) -> f64 {
    let (ok, json, err) = vgg(&[
        "infer",
        "--weights",
        weights.to_str().unwrap(),
        dir.to_str().unwrap(),
        "--json",
        "--top",
        "1",
    ]);
    assert!(ok, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    let results = doc["results"].as_array().unwrap();
    assert_eq!(results.len(), n);
    let right = results
        .iter()
        .filter(|r| {
            let label = r["top"][0]["label"].as_str().unwrap();
            assert!(classes.contains(&label), "{label}");
            r["file"].as_str().unwrap().contains(&format!("/{label}/"))
        })
        .count();
    right as f64 / n as f64
}

/// Writes `n` 12x12 PNGs of class `light` (bright noise) or not (dark noise) into `dir`.
fn noise_images(dir: &std::path::Path, n: usize, light: bool, seed: u32) {
    std::fs::create_dir_all(dir).unwrap();
    let mut s = seed.wrapping_mul(2654435761).max(1);
    for i in 0..n {
        let img = image::RgbImage::from_fn(12, 12, |_, _| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            let v = (s % 80) as u8 + if light { 150 } else { 20 };
            image::Rgb([v, v.saturating_sub(10), v])
        });
        img.save(dir.join(format!("{i}.png"))).unwrap();
    }
}

#[test]
fn a_model_trained_on_a_folder_classifies_with_no_flags() {
    let dir = temp_dir("folder-e2e");
    for (part, n, seed) in [("train", 24, 1), ("val", 8, 2)] {
        noise_images(&dir.join(part).join("dark"), n, false, seed);
        noise_images(&dir.join(part).join("light"), n, true, seed + 10);
    }
    let out = dir.join("out");
    let _ = std::fs::remove_dir_all(&out);
    let path = |p: &str| dir.join(p).to_str().unwrap().to_string();
    // No --classes: the folder has two. No --format: a directory is a folder of classes.
    let (ok, _, err) = vgg(&[
        "train",
        "--data",
        &path("train"),
        "--val",
        &path("val"),
        "--model",
        "8,M",
        "--input",
        "12x12",
        "--avgpool",
        "none",
        "--hidden",
        "16",
        "--epochs",
        "6",
        "--batch-size",
        "8",
        "--augment",
        "false",
        "--schedule",
        "constant",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(err.contains("2 classes: dark, light"), "{err}");
    let (metrics, trained) = last_accuracy(&out);
    // No model flags: the file says what it is.
    let weights = out.join("model.safetensors");
    let inferred = labelled_accuracy(&weights, &dir.join("val"), &["dark", "light"], 16);
    eprintln!("held-out accuracy: trainer {trained}, infer {inferred}");
    assert!((inferred - trained).abs() < 1e-6, "{inferred} vs {trained}");
    // Dark against light is learnable: a model at chance would make the equality hollow.
    assert!(trained >= 0.75, "{metrics}");
    // A flag that contradicts the file is refused, naming it and the field.
    let (ok, _, err) = vgg(&[
        "infer",
        "--weights",
        weights.to_str().unwrap(),
        "--classes",
        "5",
        &path("val"),
    ]);
    assert!(
        !ok && err.contains("model.safetensors") && err.contains("classes 2"),
        "{err}"
    );
}

#[test]
fn a_one_channel_model_runs_through_infer() {
    let dir = temp_dir("gray");
    let m = vgg_wgpu::train::mnist_model().unwrap();
    let card = vgg_wgpu::model::Card::new(
        &m,
        vgg_wgpu::io::datasets::folder_preprocessing(28),
        (0..10).map(|d| d.to_string()).collect(),
    )
    .unwrap();
    let w = dir.join("mnist.safetensors");
    vgg_wgpu::train::demo_weights()
        .unwrap()
        .save_with(&w, Some(&card))
        .unwrap();
    // The demo's eight held-out digits, as PNG files.
    let (_, test) = vgg_wgpu::io::datasets::mnist_5k()
        .unwrap()
        .split(1000)
        .unwrap();
    let (ok, demo, err) = vgg(&["demo"]);
    assert!(ok, "{err}");
    let mut files = Vec::new();
    for i in 0..8 {
        let at = i * 125 + 7;
        let px: Vec<u8> = test
            .image(at)
            .iter()
            .map(|v| (v * 255.0).round() as u8)
            .collect();
        let p = dir.join(format!("{at}.png"));
        image::GrayImage::from_raw(28, 28, px)
            .unwrap()
            .save(&p)
            .unwrap();
        files.push(p.to_str().unwrap().to_string());
    }
    let mut args = vec![
        "infer",
        "--weights",
        w.to_str().unwrap(),
        "--top",
        "1",
        "--json",
    ];
    args.extend(files.iter().map(|s| s.as_str()));
    let (ok, json, err) = vgg(&args);
    assert!(ok, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    for (i, r) in doc["results"].as_array().unwrap().iter().enumerate() {
        let at = i * 125 + 7;
        let predicted = r["top"][0]["label"].as_str().unwrap();
        let line = format!("held-out digit {at:>3}: label");
        let demo_line = demo.lines().find(|l| l.contains(&line)).unwrap();
        assert!(
            demo_line.ends_with(&format!("predicted {predicted}")),
            "{demo_line} vs {predicted}"
        );
    }
}

#[test]
fn fine_tuning_a_new_head_keeps_the_frozen_features_bitwise() {
    let dir = temp_dir("finetune");
    // The source model knows three kinds of noise; the new task has two.
    noise_images(&dir.join("three/dark"), 16, false, 3);
    noise_images(&dir.join("three/light"), 16, true, 4);
    noise_images(&dir.join("three/more"), 16, true, 5);
    for (part, n, seed) in [("train", 24, 6), ("val", 8, 7)] {
        noise_images(&dir.join(part).join("dark"), n, false, seed);
        noise_images(&dir.join(part).join("light"), n, true, seed + 10);
    }
    let path = |p: &str| dir.join(p).to_str().unwrap().to_string();
    let common = [
        "--batch-size",
        "8",
        "--augment",
        "false",
        "--schedule",
        "constant",
    ];
    let _ = std::fs::remove_dir_all(dir.join("src"));
    let (ok, _, err) = vgg(&[
        &[
            "train",
            "--format",
            "folder",
            "--data",
            &path("three"),
            "--model",
            "8,M",
            "--bn",
            "--input",
            "12x12",
            "--avgpool",
            "none",
            "--hidden",
            "16",
            "--epochs",
            "2",
            "--out",
            &path("src"),
        ][..],
        &common,
    ]
    .concat());
    assert!(ok, "{err}");
    // No model flags: the source file gives the model; the folder gives two classes.
    let source = dir.join("src/model.safetensors");
    let _ = std::fs::remove_dir_all(dir.join("tuned"));
    let (ok, _, err) = vgg(&[
        &[
            "train",
            "--format",
            "folder",
            "--data",
            &path("train"),
            "--val",
            &path("val"),
            "--init",
            source.to_str().unwrap(),
            "--freeze",
            "features",
            "--epochs",
            "6",
            "--out",
            &path("tuned"),
        ][..],
        &common,
    ]
    .concat());
    assert!(ok, "{err}");
    assert!(err.contains("drawn anew for 2 classes"), "{err}");
    let before = vgg_wgpu::io::read_safetensors(&source).unwrap();
    let after = vgg_wgpu::io::read_safetensors(&dir.join("tuned/model.safetensors")).unwrap();
    let mut features = 0;
    for (name, t) in after.iter() {
        if name.starts_with("features.") {
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&t.data),
                bits(&before.get(name).unwrap().data),
                "{name}"
            );
            features += 1;
        }
    }
    // conv weight and bias, batch norm's two parameters and two running statistics.
    assert_eq!(features, 6);
    assert_ne!(
        after.get("classifier.0.weight").unwrap(),
        before.get("classifier.0.weight").unwrap(),
        "the head trains"
    );
    let metrics = std::fs::read_to_string(dir.join("tuned/metrics.csv")).unwrap();
    let last = metrics
        .lines()
        .last()
        .unwrap()
        .split(',')
        .collect::<Vec<_>>();
    let acc: f64 = last[4].parse().unwrap();
    assert!(
        acc >= 0.75,
        "the new head learns on frozen features:\n{metrics}"
    );
}

/// The README's fine-tune: the demo's digit model (--mnist-model, 10 classes) takes a
/// folder's class count, and the tuned file runs through infer with the folder's names.
#[test]
fn the_demo_model_fine_tunes_on_a_folder_of_other_classes() {
    let dir = temp_dir("finetune-digits");
    noise_images(&dir.join("data/dark"), 12, false, 8);
    noise_images(&dir.join("data/light"), 12, true, 9);
    let demo =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/train/mnist_vgg.safetensors");
    let _ = std::fs::remove_dir_all(dir.join("tuned"));
    let data = dir.join("data");
    let out = dir.join("tuned");
    let (ok, _, err) = vgg(&[
        "train",
        "--format",
        "folder",
        "--data",
        data.to_str().unwrap(),
        "--holdout",
        "4",
        "--init",
        demo.to_str().unwrap(),
        "--mnist-model",
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(
        err.contains("classifier.3.weight, classifier.3.bias drawn anew for 2 classes"),
        "{err}"
    );
    let tuned = out.join("model.safetensors");
    let w = vgg_wgpu::io::read_safetensors(&tuned).unwrap();
    assert_eq!(w.get("classifier.3.weight").unwrap().shape[0], 2);
    let img = data.join("light/0.png");
    let (ok, text, err) = vgg(&[
        "infer",
        "--weights",
        tuned.to_str().unwrap(),
        img.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(
        text.contains("dark (class 0)") && text.contains("light (class 1)"),
        "{text}"
    );
}

/// A torch.save file through `vgg convert`: the written safetensors carries its card, so
/// infer needs no flags for it and classifies as infer on the .pth with the flags does.
#[test]
fn a_pth_converts_to_a_file_infer_needs_no_flags_for() {
    let dir = temp_dir("convert");
    let fx = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let (pth, photo) = (fx.join("tiny_a.pth"), fx.join("images/chelsea.png"));
    let (pth, photo) = (pth.to_str().unwrap(), photo.to_str().unwrap());
    let out = dir.join("tiny_a.safetensors");
    let out = out.to_str().unwrap();
    let flags = [
        "--model",
        "8,M,16,M,24,24,M,32,32,M,32,32,M",
        "--hidden",
        "64,64",
        "--classes",
        "10",
    ];
    // Not a built-in VGG: the architecture must be given.
    let (ok, _, err) = vgg(&["convert", pth, out]);
    assert!(!ok && err.contains("--model"), "{err}");
    let mut args = vec!["convert", pth, out];
    args.extend(flags);
    let (ok, text, err) = vgg(&args);
    assert!(ok && text.contains("10 classes"), "{text}{err}");
    // An existing output is not replaced without --force.
    let (ok, _, err) = vgg(&args);
    assert!(!ok && err.contains("--force"), "{err}");
    let mut direct = vec!["infer", "--json", "--weights", pth];
    direct.extend(flags);
    direct.push(photo);
    let (ok, want, err) = vgg(&direct);
    assert!(ok, "{err}");
    let (ok, got, err) = vgg(&["infer", "--json", "--weights", out, photo]);
    assert!(ok, "{err}");
    // The classes and probabilities, bitwise (not the timing).
    let classes = |j: &str| {
        let v: serde_json::Value = serde_json::from_str(j).unwrap();
        v["results"][0]["top"].to_string()
    };
    assert_eq!(classes(&got), classes(&want));
    // The legacy format loads the same way.
    let legacy = fx.join("tiny_bn_legacy.pth");
    let mut args = vec!["infer", "--weights", legacy.to_str().unwrap(), "--bn"];
    args.extend(flags);
    args.push(photo);
    let (ok, _, err) = vgg(&args);
    assert!(ok, "{err}");
}

/// ONNX files through `vgg infer` and `vgg convert` with no model flags: torchvision's
/// export classifies bitwise as the same weights from safetensors with the flags do; the
/// Keras layout converts to a file whose card records Caffe's preprocessing.
#[test]
fn onnx_files_need_no_model_flags() {
    let dir = temp_dir("onnx");
    let fx = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let photo = s(&fx.join("images/chelsea.png"));
    let (ok, got, err) = vgg(&[
        "infer",
        "--json",
        "--weights",
        &s(&fx.join("tiny_a.onnx")),
        &photo,
    ]);
    assert!(ok, "{err}");
    let st = s(&fx.join("tiny_a.safetensors"));
    let (ok, want, err) = vgg(&[
        "infer",
        "--json",
        "--weights",
        &st,
        "--model",
        "8,M,16,M,24,24,M,32,32,M,32,32,M",
        "--hidden",
        "64,64",
        "--classes",
        "10",
        "--preprocess",
        "torchvision",
        &photo,
    ]);
    assert!(ok, "{err}");
    let top = |j: &str| {
        let v: serde_json::Value = serde_json::from_str(j).unwrap();
        v["results"][0]["top"].to_string()
    };
    assert_eq!(top(&got), top(&want));
    let out = s(&dir.join("keras.safetensors"));
    let (ok, text, err) = vgg(&["convert", &s(&fx.join("tiny_a_keras.onnx")), &out]);
    assert!(ok && text.contains("caffe preprocessing"), "{text}{err}");
    let (ok, _, err) = vgg(&["infer", "--weights", &out, &photo]);
    assert!(ok, "{err}");
    // A file that is not an ONNX graph of a VGG is refused by name.
    let bad = dir.join("bad.onnx");
    std::fs::write(&bad, b"\x08\x07not a model").unwrap();
    let (ok, _, err) = vgg(&["infer", "--weights", &s(&bad), &photo]);
    assert!(
        !ok && err.contains("bad.onnx") && err.contains("ONNX"),
        "{err}"
    );
}

/// Fine-tuning weights whose card records torchvision's preprocessing trains on images
/// normalised that way, and the tuned model's card says so (its inference then matches).
#[test]
fn fine_tuning_keeps_the_pretrained_models_preprocessing() {
    let dir = temp_dir("finetune-pre");
    for (class, light, seed) in [("dark", false, 21), ("light", true, 22)] {
        noise_images(&dir.join("data").join(class), 12, light, seed);
    }
    let m = vgg_wgpu::Model::parse("8,M")
        .and_then(|m| m.with_input(3, 12, 12))
        .and_then(|m| m.with_avgpool(None))
        .and_then(|m| m.with_hidden(&[16]))
        .and_then(|m| m.with_classes(3))
        .unwrap();
    use vgg_wgpu::model::card::{Preprocessing, Preset};
    let pre = Preprocessing {
        preset: Preset::Torchvision,
        resize: 14,
        crop: 12,
    };
    let names = vec!["a".into(), "b".into(), "c".into()];
    let card = vgg_wgpu::model::Card::new(&m, pre, names).unwrap();
    let init = dir.join("pretrained.safetensors");
    vgg_wgpu::Weights::init(&m, vgg_wgpu::Init::Kaiming, 3)
        .save_with(&init, Some(&card))
        .unwrap();
    let out = dir.join("tuned");
    let _ = std::fs::remove_dir_all(&out);
    let (ok, _, err) = vgg(&[
        "train",
        "--format",
        "folder",
        "--data",
        dir.join("data").to_str().unwrap(),
        "--init",
        init.to_str().unwrap(),
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--holdout",
        "4",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let tuned = vgg_wgpu::io::weights::read_card(&out.join("model.safetensors"))
        .unwrap()
        .unwrap();
    assert_eq!(tuned.preprocessing, pre);
    assert_eq!(tuned.classes, vec!["dark".to_string(), "light".to_string()]);
}

/// A row that cannot run (a batch past the adapter's buffers, refused before the bench
/// draws its input) is reported with its error; the other rows still run and are written,
/// and the command fails.
#[test]
fn a_bench_row_that_fails_keeps_the_others_and_fails_the_command() {
    let dir = temp_dir("bench-failure");
    let json = dir.join("report.json");
    let (ok, out, err) = vgg(&[
        "bench",
        "--quick",
        "--kernels",
        "none",
        "--train",
        "none",
        "--e2e-batch",
        "2,100000000",
        "--runs",
        "1",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(!ok, "{out}{err}");
    assert!(
        err.contains("1 row(s) failed") && err.contains("batch 100000000"),
        "{err}"
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let batches: Vec<u64> = doc["networks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["batch"].as_u64().unwrap())
        .collect();
    assert_eq!(batches, [1, 2]);
    let failures = doc["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1);
    assert!(
        failures[0].as_str().unwrap().contains("buffer limit"),
        "{failures:?}"
    );
}

/// Mixed-precision training records its loss scale in each checkpoint, and a resumed run
/// continues the scale's schedule from it.
#[test]
fn f16_training_keeps_its_loss_scale_across_a_resume() {
    let dir = temp_dir("f16-resume");
    noise_images(&dir.join("data/dark"), 16, false, 11);
    noise_images(&dir.join("data/light"), 16, true, 12);
    let out = dir.join("run");
    let _ = std::fs::remove_dir_all(&out);
    let data = dir.join("data");
    let args = [
        "train",
        "--format",
        "folder",
        "--data",
        data.to_str().unwrap(),
        "--holdout",
        "8",
        "--model",
        "8,M",
        "--input",
        "12x12",
        "--avgpool",
        "none",
        "--hidden",
        "16",
        "--batch-size",
        "8",
        "--precision",
        "f16",
        "--out",
        out.to_str().unwrap(),
    ];
    let meta =
        || vgg_wgpu::io::weights::read_metadata(&out.join("checkpoint.safetensors")).unwrap();
    let (ok, _, err) = vgg(&[&args[..], &["--epochs", "1"]].concat());
    assert!(ok, "{err}");
    assert!(err.contains("loss scale 65536 (0 steps skipped)"), "{err}");
    // 24 training images in steps of 8: 3 clean steps at 2^16.
    let m = meta();
    assert_eq!(
        (m["loss_scale"].as_str(), m["loss_scale_steps"].as_str()),
        ("65536", "3")
    );
    let (ok, _, err) = vgg(&[&args[..], &["--epochs", "2", "--resume"]].concat());
    assert!(ok, "{err}");
    let m = meta();
    assert_eq!(
        (m["loss_scale"].as_str(), m["loss_scale_steps"].as_str()),
        ("65536", "6")
    );
}

/// Writes `n` 32x32 colour PNGs of pattern `class` into `dir`: horizontal stripes, vertical
/// stripes, a disc or a checkerboard, in random colours, phase, period and position, with
/// pixel noise. A flip or a shift of a few pixels keeps the class.
fn pattern_images(dir: &std::path::Path, class: usize, n: usize, seed: u32) {
    std::fs::create_dir_all(dir).unwrap();
    let mut s = seed.wrapping_mul(2654435761).max(1);
    let mut next = move |m: u32| {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        s % m
    };
    for i in 0..n {
        let fg = [next(156) + 100, next(156) + 100, next(156) + 100];
        let bg = [next(90), next(90), next(90)];
        let (period, phase) = (next(4) + 3, next(8));
        let (cx, cy, r) = (next(12) + 10, next(12) + 10, next(5) + 6);
        let mut px = Vec::with_capacity(32 * 32 * 3);
        for y in 0..32u32 {
            for x in 0..32u32 {
                let on = match class {
                    0 => ((y + phase) / period) % 2 == 0,
                    1 => ((x + phase) / period) % 2 == 0,
                    2 => {
                        (x as i32 - cx as i32).pow(2) + (y as i32 - cy as i32).pow(2)
                            <= (r * r) as i32
                    }
                    _ => (((x + phase) / period) + ((y + phase) / period)) % 2 == 0,
                };
                for c in 0..3 {
                    let v = if on { fg[c] } else { bg[c] } + next(40);
                    px.push(v.min(255) as u8);
                }
            }
        }
        image::RgbImage::from_raw(32, 32, px)
            .unwrap()
            .save(dir.join(format!("{i}.png")))
            .unwrap();
    }
}

/// The first hour's run (issue: "a user's first hour"): a small custom model trains on a
/// folder of four classes with every training default (the average pool to 7x7, the
/// schedule, the rate, the batch, augmentation), and the file it writes labels the held-out
/// images with the folder names, with no flags, at the trainer's own accuracy.
#[test]
fn a_small_model_trains_on_defaults_and_labels_with_no_flags() {
    let dir = temp_dir("defaults");
    let classes = ["checks", "disc", "horizontal", "vertical"];
    for (k, name) in classes.iter().enumerate() {
        let class = [3, 2, 0, 1][k];
        pattern_images(&dir.join("train").join(name), class, 96, 1 + k as u32);
        pattern_images(&dir.join("test").join(name), class, 16, 101 + k as u32);
    }
    let out = dir.join("out");
    let _ = std::fs::remove_dir_all(&out);
    let path = |p: &str| dir.join(p).to_str().unwrap().to_string();
    let (ok, _, err) = vgg(&[
        "train",
        "--format",
        "folder",
        "--data",
        &path("train"),
        "--val",
        &path("test"),
        "--model",
        "16,M,32,M",
        "--input",
        "32x32",
        "--hidden",
        "64",
        "--epochs",
        "15",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(
        err.contains("4 classes: checks, disc, horizontal, vertical"),
        "{err}"
    );
    let (metrics, trained) = last_accuracy(&out);
    eprintln!("{metrics}");
    let weights = out.join("model.safetensors");
    let inferred = labelled_accuracy(&weights, &dir.join("test"), &classes, 64);
    eprintln!("held-out accuracy: trainer {trained}, infer {inferred}");
    assert!((inferred - trained).abs() < 1e-6, "{inferred} vs {trained}");
    // The defaults train: far above chance (25%) in 15 epochs.
    assert!(trained >= 0.9, "{metrics}");
    std::fs::remove_dir_all(&dir).ok();
}

/// The paper's start for a deeper net: a trained A gives its first four convs (by name)
/// and its FC layers, the rest drawn as --init says; what does not fit is refused.
#[test]
fn a_deeper_model_starts_from_a_trained_shallower_one() {
    let dir = temp_dir("init-from");
    for (k, name) in ["disc", "vertical"].iter().enumerate() {
        pattern_images(&dir.join("data").join(name), [2, 1][k], 8, 7 + k as u32);
    }
    let data = dir.join("data");
    let train = |model: &str, hidden: &str, out: &str, extra: &[&str]| {
        let out = dir.join(out);
        let _ = std::fs::remove_dir_all(&out);
        let mut args = vec![
            "train",
            "--data",
            data.to_str().unwrap(),
            "--model",
            model,
            "--input",
            "32x32",
            "--hidden",
            hidden,
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--holdout",
            "4",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(extra);
        vgg(&args)
    };
    let (ok, _, err) = train("8,M,16,M,24,24,M", "16,16", "a", &["--init", "glorot"]);
    assert!(ok, "{err}");
    let a = dir.join("a/model.safetensors");
    let deeper = "8,8,M,16,16,M,24,24,24,M";
    let (ok, _, err) = train(
        deeper,
        "16,16",
        "d",
        &["--init-from", a.to_str().unwrap(), "--init", "paper"],
    );
    assert!(ok, "{err}");
    assert!(
        err.contains(
            "conv1_1 <- conv1_1, conv2_1 <- conv2_1, conv3_1 <- conv3_1, conv3_2 <- conv3_2, \
             fc4 <- fc4, fc5 <- fc5, fc6 <- fc6; the rest drawn (paper)"
        ),
        "{err}"
    );
    // Other FC widths: the layer is named with both shapes (a net of three blocks numbers
    // its FC layers from fc4).
    let (ok, _, err) = train(deeper, "32,16", "d2", &["--init-from", a.to_str().unwrap()]);
    assert!(
        !ok && err.contains("fc4") && err.contains("takes [32,"),
        "{err}"
    );
    // One file gives all the layers or some of them, not both.
    let (ok, _, err) = train(
        deeper,
        "16,16",
        "d3",
        &[
            "--init-from",
            a.to_str().unwrap(),
            "--init",
            a.to_str().unwrap(),
        ],
    );
    assert!(!ok && err.contains("--init-from"), "{err}");
    // A file that is not there stops the run, named.
    let missing = dir.join("no-such-a.safetensors");
    let (ok, _, err) = train(
        deeper,
        "16,16",
        "d5",
        &["--init-from", missing.to_str().unwrap()],
    );
    assert!(!ok && err.contains("no-such-a.safetensors"), "{err}");
    // Nothing is loaded to keep.
    let (ok, _, err) = train(
        deeper,
        "16,16",
        "d4",
        &["--init", "kaiming", "--freeze", "conv1"],
    );
    assert!(
        !ok && err.contains("--freeze") && err.contains("--init FILE"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// The paper's protocol end to end: training with scale jittering and the colour shift
/// records both in the model, the held-out accuracy is the center crop at the middle scale
/// (what infer then does with no flags), and `vgg eval` reads the scales from the file and
/// reports every method at one and at three scales.
/// `vgg eval` of a model trained with scale jittering: JSON with every method at the
/// single test scale and the three defaults, the single-scale center crop equal to the
/// trainer's held-out accuracy `trained`; Markdown of one method at chosen scales.
fn papers_evaluation_reports(weights: &std::path::Path, test: &str, trained: f64) {
    let (ok, json, err) = vgg(&[
        "eval",
        "-w",
        weights.to_str().unwrap(),
        "--data",
        test,
        "--json",
    ]);
    assert!(ok, "{err}");
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    let rows = report["rows"].as_array().unwrap();
    let shown: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r["method"].to_string(), r["scales"].to_string()))
        .collect();
    let want: Vec<(String, String)> = ["center", "dense", "multi-crop", "dense+multi-crop"]
        .iter()
        .flat_map(|m| ["[28]", "[24,28,32]"].map(|s| (format!("\"{m}\""), s.to_string())))
        .collect();
    assert_eq!(shown, want);
    assert_eq!(report["images"], 24);
    // The single-scale center crop is the trainer's held-out evaluation.
    let center = rows[0]["top1_error"].as_f64().unwrap();
    assert!(
        (1.0 - center - trained).abs() < 1e-6,
        "{center} vs {trained}"
    );
    for r in rows {
        let e = r["top1_error"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&e) && r["images_per_second"].as_f64().unwrap() > 0.0);
    }
    let (ok, md, _) = vgg(&[
        "eval",
        "-w",
        weights.to_str().unwrap(),
        "--data",
        test,
        "--methods",
        "multi-crop",
        "--scales",
        "26,30",
        "--grid",
        "2",
        "--markdown",
    ]);
    assert!(ok);
    assert!(
        md.starts_with("| method | scales | top-1 error | top-3 error"),
        "{md}"
    );
    assert_eq!(md.lines().count(), 4, "{md}");
}

#[test]
fn scale_jittered_training_and_the_papers_evaluation() {
    let dir = temp_dir("scale");
    let classes = ["disc", "horizontal", "vertical"];
    for (k, name) in classes.iter().enumerate() {
        let class = [2, 0, 1][k];
        pattern_images(&dir.join("train").join(name), class, 32, 31 + k as u32);
        pattern_images(&dir.join("test").join(name), class, 8, 131 + k as u32);
    }
    let out = dir.join("out");
    let _ = std::fs::remove_dir_all(&out);
    let path = |p: &str| dir.join(p).to_str().unwrap().to_string();
    let model = [
        "--model",
        "8,M,16,M",
        "--input",
        "24x24",
        "--avgpool",
        "2x2",
    ];
    let (train_dir, test_dir) = (path("train"), path("test"));
    let train = |extra: &[&str]| {
        let mut args = vec!["train", "--data", &train_dir, "--val", &test_dir];
        args.extend(model);
        args.extend(["--hidden", "32", "--out"]);
        args.push(out.to_str().unwrap());
        args.extend(extra);
        vgg(&args)
    };
    let (ok, _, err) = train(&["--scale-jitter", "24,32", "--epochs", "2"]);
    assert!(ok, "{err}");
    // A resume continues at the recorded scales and colour components; flags that
    // disagree with the checkpoint are refused.
    let ckpt = vgg_wgpu::io::weights::read_card(&out.join("checkpoint.safetensors"));
    let before = ckpt.unwrap().unwrap().scale;
    for (args, says) in [
        (&["--scale", "28"][..], "was trained at scales 24..32"),
        (
            &["--colour-shift", "false"][..],
            "was trained with the colour shift",
        ),
    ] {
        let (ok, _, err) = train(&[args, &["--epochs", "3", "--resume"]].concat());
        assert!(!ok && err.contains(says), "{args:?}: {err}");
    }
    let (ok, _, err) = train(&["--epochs", "3", "--resume"]);
    assert!(ok, "{err}");
    let weights = out.join("model.safetensors");
    let card = vgg_wgpu::io::weights::read_card(&weights).unwrap().unwrap();
    let scale = card.scale.clone().unwrap();
    assert_eq!((scale.min, scale.max), (24, 32));
    assert_eq!(Some(&scale), before.as_ref(), "the resumed run's record");
    assert_eq!(scale.colour.as_ref().map(|c| c.values.len()), Some(3));
    assert_eq!(
        (card.preprocessing.resize, card.preprocessing.crop),
        (28, 24)
    );
    let (_, trained) = last_accuracy(&out);
    let inferred = labelled_accuracy(&weights, &dir.join("test"), &classes, 24);
    assert!((inferred - trained).abs() < 1e-6, "{inferred} vs {trained}");

    papers_evaluation_reports(&weights, &path("test"), trained);

    // Refused before any work (the output folder holding a run is not reached): options
    // that cannot mean anything.
    for (args, says) in [
        (&["--scale", "20"][..], "at least the input side 24"),
        (&["--scale-jitter", "32"][..], "not SMIN,SMAX"),
        (&["--scale-jitter", "32,24"][..], "must be ordered"),
        (
            &["--colour-shift", "false"][..],
            "only means something with --scale",
        ),
    ] {
        let (ok, _, err) = train(args);
        assert!(!ok && err.contains(says), "{args:?}: {err}");
    }
    let (ok, _, err) = vgg(&["train", "--scale", "32", "--epochs", "1"]);
    assert!(!ok && err.contains("--format folder"), "{err}");
    // A class the model does not know, named.
    pattern_images(&dir.join("other").join("fox"), 3, 2, 7);
    let (ok, _, err) = vgg(&[
        "eval",
        "-w",
        weights.to_str().unwrap(),
        "--data",
        &path("other"),
    ]);
    assert!(
        !ok && err.contains("'fox'") && err.contains("disc, horizontal, vertical"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
