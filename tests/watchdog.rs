//! `vgg check` survives the driver it checks: a dispatch that never ends, a case that
//! passes its time bound, memory past the cap, and (where SwiftShader is installed, as
//! `tools/drivers.sh` does in CI) a driver compiler that allocates without bound. Each run
//! must end by itself, promptly, with the case failed naming its stage, the cases after it
//! skipped with the reason, the report written, and exit code 1.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `vgg` with `args` and `env`; fails the test if it has not exited after `limit`.
fn vgg_within(args: &[&str], env: &[(&str, &Path)], limit: Duration) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vgg"));
    cmd.args(args)
        .env_remove("VGG_ADAPTER")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("run vgg");
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait for vgg") {
            let mut out = String::new();
            use std::io::Read;
            if let Some(mut s) = child.stdout.take() {
                s.read_to_string(&mut out).ok();
            }
            eprintln!("--- vgg {} ---\n{out}--- end ---", args.join(" "));
            return (status.code().unwrap_or(-1), out);
        }
        if started.elapsed() > limit {
            child.kill().ok();
            panic!("vgg {} did not exit within {limit:?}", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vgg-watch-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn report(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("the report was written"))
        .expect("the report is JSON")
}

/// `vgg check --seed 1 --json DIR/report.json ARGS` within `limit`: its exit code, its
/// output, and the report's first adapter.
fn check(
    dir: &Path,
    args: &[&str],
    env: &[(&str, &Path)],
    limit: Duration,
) -> (i32, String, serde_json::Value) {
    let json = dir.join("report.json");
    let mut all = vec!["check", "--seed", "1", "--json", json.to_str().unwrap()];
    all.extend(args);
    let (code, out) = vgg_within(&all, env, limit);
    let adapter = report(&json)["adapters"][0].clone();
    (code, out, adapter)
}

/// A shader folder whose max-pool kernel runs a loop of 2^32 steps per lane in front: the
/// check's grid case (over 65535 workgroups) never finishes, nor (with `inference`, whose
/// entry point is patched too) any pool layer of a network.
fn looping_pool(dir: &Path, inference: bool) {
    let source = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders/pool/forward.wgsl"),
    )
    .unwrap();
    let tail = "    let m = pool(i);\n    output[i] = S(m.value);\n    argmax[i] = m.index;";
    assert_eq!(source.matches(tail).count(), 1);
    let looping = "    var k = u32(f32(input[0]) * 0.0) + 7u;\n    \
        loop { k = k * 1664525u + 1013904223u; if (k == 7u) { break; } }\n    \
        let m = pool(i);\n    output[i] = S(m.value);\n    argmax[i] = m.index + k - 7u;";
    let mut patched = source.replace(tail, looping);
    if inference {
        let plain = "    output[i] = S(pool(i).value);\n}";
        assert_eq!(patched.matches(plain).count(), 1);
        let looping = "    var k = u32(f32(input[0]) * 0.0) + 7u;\n    \
            loop { k = k * 1664525u + 1013904223u; if (k == 7u) { break; } }\n    \
            output[i] = S(pool(i).value + f32(k - 7u));\n}";
        patched = patched.replace(plain, looping);
    }
    std::fs::create_dir_all(dir.join("pool")).unwrap();
    std::fs::write(dir.join("pool/forward.wgsl"), patched).unwrap();
}

#[test]
fn a_dispatch_that_never_ends_fails_and_the_check_exits() {
    let dir = temp_dir("hang");
    looping_pool(&dir, false);
    let args = ["--op", "pool/forward", "--gpu-timeout", "3"];
    let env = [("VGG_SHADER_DIR", dir.as_path())];
    let (code, out, a) = check(&dir, &args, &env, Duration::from_secs(90));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("did not finish within 3.000s"), "{out}");
    assert_eq!(a["status"], "failed");
    // What was left after the hung case is skipped, saying why.
    let skipped = a["skipped"].as_array().unwrap();
    assert!(!skipped.is_empty(), "{a}");
    for s in skipped {
        assert!(
            s["reason"].as_str().unwrap().contains("hung"),
            "{s}: the reason names the hang"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// Outside the check too: inference on a GPU that never finishes reports the timeout and
/// exits within seconds of it, without waiting on the driver's teardown. (A 2048x2048
/// input: the pool layer's 4M lanes; a small dispatch of the looping kernel does end.)
#[test]
fn inference_on_a_hung_gpu_ends_the_process() {
    use vgg_wgpu::{Init, Model, Weights};
    let dir = temp_dir("hang-infer");
    looping_pool(&dir, true);
    let model = Model::parse("4,M")
        .and_then(|m| m.with_input(3, 2048, 2048))
        .and_then(|m| m.with_avgpool(Some((1, 1))))
        .and_then(|m| m.with_hidden(&[]))
        .and_then(|m| m.with_classes(3))
        .unwrap();
    let w = dir.join("w.safetensors");
    Weights::init(&model, Init::Kaiming, 1).save(&w).unwrap();
    let image = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images/chelsea.png");
    let args = [
        "infer",
        "--weights",
        w.to_str().unwrap(),
        "--model",
        "4,M",
        "--input",
        "2048x2048",
        "--avgpool",
        "1x1",
        "--hidden",
        "none",
        "--classes",
        "3",
        "--crop",
        "2048",
        "--resize",
        "2048",
        "--gpu-timeout",
        "3",
        image.to_str().unwrap(),
    ];
    let env = [("VGG_SHADER_DIR", dir.as_path())];
    let t0 = Instant::now();
    let (code, _) = vgg_within(&args, &env, Duration::from_secs(60));
    assert_eq!(code, 1);
    // (The error line, "did not finish within 3.000s", goes to the inherited stderr.)
    eprintln!("exited {:.1} s after the start", t0.elapsed().as_secs_f64());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_case_past_its_time_bound_is_stopped_naming_its_stage() {
    let dir = temp_dir("slow");
    let args = ["--op", "network", "--case-timeout", "0.3"];
    let (code, out, a) = check(&dir, &args, &[], Duration::from_secs(120));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("past the bound of 0.3 s (--case-timeout)"),
        "{out}"
    );
    assert!(out.contains("cases left are skipped"), "{out}");
    let stopped = a["stopped"]
        .as_str()
        .expect("the report says what was stopped");
    let stages = ["host", "shader compile", "pipeline", "dispatch"];
    assert!(
        stages
            .iter()
            .any(|s| stopped.contains(&format!("stopped in the {s} stage"))),
        "{stopped}"
    );
    let failed = a["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["pass"] == false)
        .count();
    assert_eq!(failed, 1, "only the stopped case fails: {a}");
    assert!(a["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["reason"].as_str().unwrap().starts_with("not run: ")));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn memory_past_the_cap_stops_the_check() {
    let dir = temp_dir("memory");
    // The pool cases hold a 3x128x224x224 input and its reference: far past 64 MiB.
    let args = ["--op", "pool", "--memory-cap", "64"];
    let (code, out, a) = check(&dir, &args, &[], Duration::from_secs(120));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("past the cap of 64 MiB (--memory-cap)"),
        "{out}"
    );
    assert_eq!(a["memory_cap_bytes"], 64u64 << 20);
    assert!(a["peak_memory_bytes"].as_u64().unwrap() > 64 << 20, "{a}");
    assert!(a["stopped"].is_string(), "{a}");
    std::fs::remove_dir_all(&dir).ok();
}

/// SwiftShader's ICD as tools/drivers.sh writes it, where that has run.
fn swiftshader() -> Option<PathBuf> {
    let icd = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/drivers/icd/swiftshader.json");
    let lib = Path::new("/usr/lib/chromium/libvk_swiftshader.so");
    (icd.is_file() && lib.is_file()).then_some(icd)
}

#[test]
fn swiftshaders_compiler_bug_is_worked_around_and_caught_when_it_is_not() {
    let Some(icd) = swiftshader() else {
        eprintln!("SwiftShader is not installed here (tools/drivers.sh); skipped");
        return;
    };
    let dir = temp_dir("swiftshader");
    let args = [
        "--adapter",
        "swiftshader",
        "--op",
        "conv/backward",
        "--memory-cap",
        "1500",
    ];
    let limit = Duration::from_secs(300);
    // By default the weight gradient runs as conv/backward_weight/pairs there, and every
    // case passes.
    let (code, out, a) = check(&dir, &args, &[("VK_ADD_DRIVER_FILES", &icd)], limit);
    assert_eq!(code, 0, "{out}");
    assert!(a["name"].as_str().unwrap().contains("SwiftShader"), "{a}");
    assert!(
        a["workarounds"][0]
            .as_str()
            .unwrap()
            .starts_with("conv/backward_weight/gemm: SwiftShader's shader compiler"),
        "{a}"
    );
    // Without the workaround the driver's compiler balloons inside pipeline creation: the
    // check stops it there, at the cap, and says so.
    let off = Path::new("0");
    let env = [
        ("VK_ADD_DRIVER_FILES", icd.as_path()),
        ("VGG_DRIVER_WORKAROUNDS", off),
    ];
    let (code, out, a) = check(&dir, &args, &env, limit);
    assert_eq!(code, 1, "{out}");
    let stopped = a["stopped"].as_str().unwrap();
    assert!(
        stopped.contains("stopped in the pipeline stage of conv/backward_weight/gemm::main")
            && stopped.contains("past the cap of 1500 MiB"),
        "{stopped}"
    );
    assert!(a["peak_memory_bytes"].as_u64().unwrap() < 2000 << 20, "{a}");
    std::fs::remove_dir_all(&dir).ok();
}
