//! `vgg infer` end to end on the committed fixtures, and every kind of bad input: each must
//! give one clear error line and a non-zero exit, never a panic.

use safetensors::tensor::{Dtype, TensorView};
use std::path::{Path, PathBuf};
use std::process::Command;
use vgg_wgpu::io::{read_safetensors, save_safetensors};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The fixture net tiny_a as `vgg infer` options.
const TINY_A: &[&str] = &[
    "--model",
    "8,M,16,M,24,24,M,32,32,M,32,32,M",
    "--hidden",
    "64,64",
    "--classes",
    "10",
];

fn vgg(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vgg"))
        .args(args)
        .output()
        .expect("run vgg");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn infer(weights: &Path, extra: &[&str]) -> (Option<i32>, String, String) {
    let w = weights.display().to_string();
    let mut args = vec!["infer", "--weights", &w];
    args.extend_from_slice(TINY_A);
    args.extend_from_slice(extra);
    vgg(&args)
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vgg-infer-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// One line starting with "error: ", exit code 1, and no panic.
fn assert_clean_error(r: &(Option<i32>, String, String), expect: &str) {
    let (code, _, err) = r;
    eprintln!("{err}");
    assert_eq!(*code, Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line in: {err}"));
    assert!(line.contains(expect), "expected '{expect}' in: {line}");
}

#[test]
fn classifies_fixture_images_as_pytorch_does() {
    let img = fixtures().join("images");
    let r = infer(
        &fixtures().join("tiny_a.safetensors"),
        &[img.to_str().unwrap(), "--json", "--batch-size", "2"],
    );
    assert_eq!(r.0, Some(0), "{}", r.2);
    let doc: serde_json::Value = serde_json::from_str(&r.1).unwrap();
    let results = doc["results"].as_array().unwrap();
    assert_eq!(results.len(), 5);
    // The photos' top-5 match PyTorch's logits on torchvision's preprocessing.
    let logits = read_safetensors(&fixtures().join("logits.safetensors")).unwrap();
    let want = logits.get("tiny_a").unwrap();
    for (row, file) in ["astronaut.jpg", "chelsea.png"].iter().enumerate() {
        let res = results
            .iter()
            .find(|r| r["file"].as_str().unwrap().ends_with(file))
            .unwrap();
        let got: Vec<u64> = res["top"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["class"].as_u64().unwrap())
            .collect();
        let top = vgg_wgpu::io::labels::top_k(want.row(row), 5);
        let want_top: Vec<u64> = top.iter().map(|t| t.0 as u64).collect();
        assert_eq!(got, want_top, "{file}");
        let p: f64 = res["top"][0]["probability"].as_f64().unwrap();
        assert!(p > 0.0 && p <= 1.0);
    }
    assert!(
        r.2.contains("images/s") && r.2.contains("ms per image"),
        "{}",
        r.2
    );
}

#[test]
fn features_are_written_as_npy_and_safetensors() {
    let d = tmpdir("features");
    let img = fixtures().join("images/chelsea.png");
    for name in ["f.npy", "f.safetensors"] {
        let out = d.join(name);
        let r = infer(
            &fixtures().join("tiny_a.safetensors"),
            &[
                img.to_str().unwrap(),
                img.to_str().unwrap(),
                "--features",
                "pool5",
                "--out",
                out.to_str().unwrap(),
            ],
        );
        assert_eq!(r.0, Some(0), "{}", r.2);
        assert!(out.exists());
    }
    let st = read_safetensors(&d.join("f.safetensors")).unwrap();
    assert_eq!(st.get("pool5").unwrap().shape, vec![2, 32, 7, 7]);
    let npy = std::fs::read(d.join("f.npy")).unwrap();
    assert_eq!(npy.len() % 4, 0);
    assert!(String::from_utf8_lossy(&npy[..128]).contains("(2, 32, 7, 7)"));
    let r = infer(
        &fixtures().join("tiny_a.safetensors"),
        &[
            img.to_str().unwrap(),
            "--features",
            "conv9_9",
            "--out",
            "x.npy",
        ],
    );
    assert_clean_error(&r, "has no layer 'conv9_9'");
}

/// A PNG whose header says 0x0 pixels (checksums valid, so only the size is wrong).
fn zero_sized_png() -> Vec<u8> {
    fn crc32(data: &[u8]) -> u32 {
        let mut c = 0xffff_ffffu32;
        for &b in data {
            c ^= b as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        png.extend_from_slice(&body);
        png.extend_from_slice(&crc32(&body).to_be_bytes());
    };
    chunk(b"IHDR", &[0, 0, 0, 0, 0, 0, 0, 0, 8, 2, 0, 0, 0]);
    chunk(b"IEND", &[]);
    png
}

#[test]
fn bad_images_fail_cleanly() {
    let d = tmpdir("images");
    let jpeg = std::fs::read(fixtures().join("images/astronaut.jpg")).unwrap();
    std::fs::write(d.join("truncated.jpg"), &jpeg[..jpeg.len() / 3]).unwrap();
    std::fs::write(d.join("text.jpg"), "this is not an image").unwrap();
    std::fs::write(d.join("zero.png"), zero_sized_png()).unwrap();
    std::fs::write(d.join("empty.png"), "").unwrap();
    let w = fixtures().join("tiny_a.safetensors");
    for (file, expect) in [
        ("missing.jpg", "no such file"),
        ("truncated.jpg", "truncated.jpg"),
        ("text.jpg", "not an image"),
        ("zero.png", "zero.png"),
        ("empty.png", "empty.png"),
    ] {
        let p = d.join(file);
        assert_clean_error(&infer(&w, &[p.to_str().unwrap(), "--strict"]), expect);
        if file != "missing.jpg" {
            // Without --strict a lone bad file is skipped, and nothing was classified.
            let r = infer(&w, &[p.to_str().unwrap()]);
            assert_eq!(r.0, Some(1), "{}", r.2);
            assert!(r.2.contains("warning: skipped") && !r.2.contains("panicked"));
        }
    }
}

#[test]
fn a_directory_with_one_bad_file() {
    let d = tmpdir("mixed");
    for f in ["astronaut.jpg", "chelsea.png"] {
        std::fs::copy(fixtures().join("images").join(f), d.join(f)).unwrap();
    }
    std::fs::write(d.join("broken.jpg"), "garbage").unwrap();
    let w = fixtures().join("tiny_a.safetensors");
    let (code, out, err) = infer(&w, &[d.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("astronaut.jpg") && out.contains("chelsea.png"),
        "{out}"
    );
    assert!(
        err.contains("warning: skipped") && err.contains("broken.jpg"),
        "{err}"
    );
    let r = infer(&w, &[d.to_str().unwrap(), "--strict"]);
    assert_clean_error(&r, "broken.jpg");
    assert!(r.1.is_empty(), "strict classifies nothing: {}", r.1);
}

type Named = Vec<(String, vgg_wgpu::Tensor)>;

#[test]
fn bad_weights_fail_cleanly() {
    let d = tmpdir("weights");
    let img = fixtures().join("images/chelsea.png");
    let img = img.to_str().unwrap();
    let good = read_safetensors(&fixtures().join("tiny_a.safetensors")).unwrap();
    let all: Named = good.iter().map(|(n, t)| (n.clone(), t.clone())).collect();
    let save = |name: &str, edit: &dyn Fn(&mut Named)| {
        let mut t = all.clone();
        edit(&mut t);
        let list: Vec<(&str, &vgg_wgpu::Tensor)> = t.iter().map(|(n, t)| (n.as_str(), t)).collect();
        let p = d.join(name);
        save_safetensors(&p, &list, None).unwrap();
        p
    };
    let missing = save("missing.safetensors", &|t| {
        t.retain(|(n, _)| n != "features.3.bias")
    });
    assert_clean_error(&infer(&missing, &[img]), "missing tensor 'features.3.bias'");
    let shape = save("shape.safetensors", &|t| {
        for (n, x) in t.iter_mut() {
            if n == "classifier.3.weight" {
                x.shape = vec![32, 128];
            }
        }
    });
    assert_clean_error(
        &infer(&shape, &[img]),
        "tensor 'classifier.3.weight': expected shape [64, 64]",
    );
    let nan = save("nan.safetensors", &|t| {
        for (n, x) in t.iter_mut() {
            if n == "features.0.weight" {
                x.data[5] = f32::NAN;
            }
        }
    });
    assert_clean_error(&infer(&nan, &[img]), "'features.0.weight' holds NaN");
    let inf = save("inf.safetensors", &|t| {
        for (n, x) in t.iter_mut() {
            if n == "classifier.6.bias" {
                x.data[0] = f32::INFINITY;
            }
        }
    });
    assert_clean_error(&infer(&inf, &[img]), "'classifier.6.bias' holds inf");
    // An integer tensor where a float one belongs.
    let ints = vec![0u8; 8 * 4];
    let views = vec![(
        "features.0.bias".to_string(),
        TensorView::new(Dtype::I32, vec![8], &ints).unwrap(),
    )];
    let p = d.join("dtype.safetensors");
    std::fs::write(&p, safetensors::serialize(views, None).unwrap()).unwrap();
    assert_clean_error(&infer(&p, &[img]), "missing tensor 'features.0.weight'");
    let mut bytes = std::fs::read(&p).unwrap();
    let mut views = vec![];
    for (n, t) in all.iter().filter(|(n, _)| n != "features.0.bias") {
        let b: Vec<u8> = t.data.iter().flat_map(|v| v.to_le_bytes()).collect();
        views.push((n.clone(), t.shape.clone(), b));
    }
    let tv: Vec<(String, TensorView)> = views
        .iter()
        .map(|(n, s, b)| {
            (
                n.clone(),
                TensorView::new(Dtype::F32, s.clone(), b).unwrap(),
            )
        })
        .chain([(
            "features.0.bias".to_string(),
            TensorView::new(Dtype::I32, vec![8], &ints).unwrap(),
        )])
        .collect();
    std::fs::write(&p, safetensors::serialize(tv, None).unwrap()).unwrap();
    assert_clean_error(
        &infer(&p, &[img]),
        "tensor 'features.0.bias' has dtype I32; f32, f16 or bf16 expected",
    );
    // A header that is not what safetensors says it is.
    bytes.truncate(20);
    let p = d.join("corrupt.safetensors");
    std::fs::write(&p, &bytes).unwrap();
    assert_clean_error(&infer(&p, &[img]), "not a valid safetensors file");
    let p = d.join("nonexistent.safetensors");
    assert_clean_error(&infer(&p, &[img]), "cannot read");
    // Weights of another model.
    let r = vgg(&[
        "infer",
        "--model",
        "vgg11",
        "--weights",
        fixtures().join("tiny_a.safetensors").to_str().unwrap(),
        img,
    ]);
    assert_clean_error(&r, "expected shape [64, 3, 3, 3]");
}

#[test]
fn dense_evaluation_runs_on_whole_images() {
    let img = fixtures().join("images");
    let w = fixtures().join("tiny_a.safetensors");
    let r = infer(
        &w,
        &[
            img.to_str().unwrap(),
            "--dense",
            "--resize",
            "288",
            "--json",
        ],
    );
    assert_eq!(r.0, Some(0), "{}", r.2);
    let doc: serde_json::Value = serde_json::from_str(&r.1).unwrap();
    for res in doc["results"].as_array().unwrap() {
        let p: f64 = res["top"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["probability"].as_f64().unwrap())
            .sum();
        assert!(p > 0.0 && p <= 1.0 + 1e-5, "{res}");
    }
    let r = infer(&w, &[img.to_str().unwrap(), "--dense", "--resize", "200"]);
    assert_clean_error(&r, "at least 7x7");
}

#[test]
fn f16_precision_where_the_adapter_has_it() {
    let img = fixtures().join("images/chelsea.png");
    let w = fixtures().join("tiny_a.safetensors");
    let f32_run = infer(&w, &[img.to_str().unwrap(), "--json"]);
    let f16_run = infer(&w, &[img.to_str().unwrap(), "--json", "--precision", "f16"]);
    assert_eq!(f32_run.0, Some(0), "{}", f32_run.2);
    let has_f16 = vgg(&["devices"])
        .1
        .lines()
        .nth(1)
        .is_some_and(|l| l.contains("shader-f16"));
    if !has_f16 {
        assert_clean_error(&f16_run, "shader-f16");
        return;
    }
    assert_eq!(f16_run.0, Some(0), "{}", f16_run.2);
    let classes = |out: &str| -> Vec<u64> {
        let doc: serde_json::Value = serde_json::from_str(out).unwrap();
        doc["results"][0]["top"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["class"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(classes(&f16_run.1), classes(&f32_run.1));
    let r = infer(&w, &[img.to_str().unwrap(), "--precision", "f8"]);
    assert_eq!(r.0, Some(2), "clap rejects an unknown precision: {}", r.2);
}
