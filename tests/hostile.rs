//! Hostile input through the command line: sizes and paths nothing else checks. Each case
//! ends in a non-zero exit with one error line naming the file or option (or in a correct
//! result), within seconds; none panics, aborts or hangs. A bounded, seeded mutation test
//! drives the parsers themselves with thousands of corrupted inputs.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use vgg_wgpu::{Init, Model, Weights};

/// Runs `vgg` with `args`, killing it after `limit`: (exit code, stdout, stderr).
fn vgg_within(args: &[&str], limit: Duration) -> (Option<i32>, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vgg"))
        .args(args)
        .env_remove("VGG_ADAPTER")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run vgg");
    let t0 = Instant::now();
    loop {
        if child.try_wait().expect("wait for vgg").is_some() {
            break;
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            panic!("vgg {args:?} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("vgg output");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn vgg(args: &[&str]) -> (Option<i32>, String, String) {
    vgg_within(args, Duration::from_secs(120))
}

/// `vgg` in an address space of 1 GiB (`ulimit -v`), for the cases that fail before a GPU
/// is opened: one that allocated what a header or an option claims would abort instead of
/// printing its error line. (A GPU driver maps more than that, so the rest run uncapped.)
fn vgg_capped(args: &[&str]) -> (Option<i32>, String, String) {
    let mut all = vec![
        "-c",
        "ulimit -v 1048576 && exec \"$0\" \"$@\"",
        env!("CARGO_BIN_EXE_vgg"),
    ];
    all.extend(args);
    let out = Command::new("sh")
        .args(&all)
        .env_remove("VGG_ADAPTER")
        .stdin(Stdio::null())
        .output()
        .expect("run vgg under sh");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A fresh folder for one case.
fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vgg-hostile-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Exit code 1 and one error line, the last on stderr, containing every one of `words`
/// (progress lines such as "training X on Y" may come before it; nothing else).
fn one_error_line(r: &(Option<i32>, String, String), words: &[&str]) {
    let (code, _, err) = r;
    assert_eq!(*code, Some(1), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    let errors: Vec<&&str> = lines.iter().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "one error line expected:\n{err}");
    let last = lines.last().copied().unwrap_or("");
    assert!(
        last.starts_with("error: ") && !err.contains("panicked"),
        "{err}"
    );
    for w in words {
        assert!(last.contains(w), "'{w}' missing from: {err}");
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/images")
        .join(name)
}

/// The small classifier these cases infer with: an 8x8 input, one conv and pool, 3 classes.
const TINY: [&str; 12] = [
    "--model",
    "4,M",
    "--avgpool",
    "none",
    "--hidden",
    "none",
    "--classes",
    "3",
    "--crop",
    "8",
    "--resize",
    "8",
];

fn tiny_model() -> Model {
    Model::parse("4,M")
        .and_then(|m| m.with_input(3, 8, 8))
        .and_then(|m| m.with_avgpool(None))
        .and_then(|m| m.with_hidden(&[]))
        .and_then(|m| m.with_classes(3))
        .unwrap()
}

fn tiny_weights(d: &Path) -> PathBuf {
    let p = d.join("tiny.safetensors");
    Weights::init(&tiny_model(), Init::Kaiming, 1)
        .save(&p)
        .unwrap();
    p
}

fn infer(weights: &Path, extra: &[&str], images: &[&Path]) -> (Option<i32>, String, String) {
    infer_within(weights, extra, images, Duration::from_secs(120))
}

/// `infer` killed (and the test failed) after `limit`.
fn infer_within(
    weights: &Path,
    extra: &[&str],
    images: &[&Path],
    limit: Duration,
) -> (Option<i32>, String, String) {
    let mut args = vec!["infer", "--weights", weights.to_str().unwrap()];
    args.extend(TINY);
    args.extend(extra);
    args.extend(images.iter().map(|p| p.to_str().unwrap()));
    vgg_within(&args, limit)
}

/// A PNG whose header declares `w` x `h` (valid signature, IHDR and CRCs) over a few bytes
/// of pixel data.
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        out.extend(kind);
        out.extend(data);
        out.extend(crc.sum().to_be_bytes());
    }
    let mut png = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    let mut ihdr = Vec::new();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]); // 8-bit RGB
    chunk(&mut png, b"IHDR", &ihdr);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&[0u8; 64]).unwrap();
    chunk(&mut png, b"IDAT", &z.finish().unwrap());
    chunk(&mut png, b"IEND", &[]);
    png
}

#[test]
fn an_image_declaring_ten_gigapixels_is_refused_and_the_others_classified() {
    let d = dir("bomb");
    let w = tiny_weights(&d);
    let bomb = d.join("bomb.png");
    std::fs::write(&bomb, png_claiming(100_000, 100_000)).unwrap();
    let good = fixture("chelsea.png");
    let (code, out, err) = infer(&w, &[], &[&bomb, &good]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("chelsea.png"), "{out}");
    assert!(
        err.contains("bomb.png") && err.contains("100000x100000") && err.contains("--max-pixels"),
        "{err}"
    );
    // A long strip is small, but resized to its shorter side it is not.
    let strip = d.join("strip.png");
    std::fs::write(&strip, png_claiming(1, 100_000)).unwrap();
    let r = infer(&w, &["--max-pixels", "1000000", "--strict"], &[&strip]);
    one_error_line(&r, &["strip.png", "resized", "--max-pixels"]);
}

#[test]
fn a_jpeg_cut_short_with_its_end_marker_appended_is_refused() {
    let d = dir("halfjpeg");
    let w = tiny_weights(&d);
    let full = std::fs::read(fixture("astronaut.jpg")).unwrap();
    let mut half = full[..full.len() / 2].to_vec();
    half.extend([0xFF, 0xD9]);
    let p = d.join("half.jpg");
    std::fs::write(&p, half).unwrap();
    let r = infer(&w, &["--strict"], &[&p]);
    one_error_line(&r, &["half.jpg", "corrupt JPEG"]);
    // The whole file still classifies.
    let (code, _, err) = infer(&w, &[], &[&fixture("astronaut.jpg")]);
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn special_files_are_refused_by_name_without_blocking() {
    let d = dir("special");
    let w = tiny_weights(&d);
    // /dev/zero never ends; a FIFO blocks a reader until a writer comes.
    let r = infer(&w, &["--strict"], &[Path::new("/dev/zero")]);
    one_error_line(&r, &["/dev/zero", "is a device"]);
    let fifo = d.join("x.jpg");
    let made = Command::new("mkfifo").arg(&fifo).status();
    if made.is_ok_and(|s| s.success()) {
        let r = infer_within(&w, &[], &[&fifo], Duration::from_secs(60));
        assert_eq!(r.0, Some(1), "{}", r.2);
        assert!(
            r.2.contains("x.jpg") && r.2.contains("is a FIFO"),
            "{}",
            r.2
        );
    }
    let r = vgg(&[
        &["infer", "--weights", "/dev/zero"][..],
        &TINY,
        &[fixture("chelsea.png").to_str().unwrap()],
    ]
    .concat());
    one_error_line(&r, &["/dev/zero", "is a device"]);
}

/// Outputs replace only regular files: a FIFO, or a symlink to a device, is refused by
/// name and left as it was; a symlink to a regular file is written through and stays.
#[test]
fn outputs_never_replace_what_is_not_a_regular_file() {
    use std::os::unix::fs::FileTypeExt;
    let d = dir("outputs");
    let w = tiny_weights(&d);
    let convert = |out: &Path| {
        vgg(&[
            "convert",
            w.to_str().unwrap(),
            out.to_str().unwrap(),
            "--force",
            "--model",
            "4,M",
            "--input",
            "8x8",
            "--avgpool",
            "none",
            "--hidden",
            "none",
            "--classes",
            "3",
        ])
    };
    let fifo = d.join("fifo.safetensors");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    one_error_line(&convert(&fifo), &["fifo.safetensors", "is a FIFO"]);
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    let null = d.join("null.safetensors");
    std::os::unix::fs::symlink("/dev/null", &null).unwrap();
    one_error_line(&convert(&null), &["null.safetensors", "is a device"]);
    assert!(std::fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());
    let real = d.join("real.safetensors");
    std::fs::write(&real, b"old").unwrap();
    let link = d.join("link.safetensors");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let r = convert(&link);
    assert_eq!(r.0, Some(0), "{}", r.2);
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(std::fs::metadata(&real).unwrap().len() > 3);
    // No temporary file is left beside them.
    let left: Vec<_> = std::fs::read_dir(&d)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_directory_linking_to_itself_is_walked_once() {
    let d = dir("loop");
    let w = tiny_weights(&d);
    let images = d.join("images");
    std::fs::create_dir_all(&images).unwrap();
    std::fs::copy(fixture("chelsea.png"), images.join("a.png")).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(&images, images.join("again")).unwrap();
    let (code, out, err) = infer(&w, &[], &[&images]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.matches("a.png").count(), 1, "{out}");
}

/// A tree 1,900 directories deep (a path of 3,800 bytes, under PATH_MAX) with an image at
/// the bottom and one halfway: both found, in well under the time bound (the walk is
/// linear in the entries; it was 7 s at 800 levels and over 60 s at 1,900).
#[test]
fn a_directory_tree_1900_deep_is_walked_in_linear_time() {
    let d = dir("deep");
    let w = tiny_weights(&d);
    let mut deep = d.join("t");
    let mut half = None;
    for i in 0..1900 {
        deep.push("d");
        if i == 950 {
            half = Some(deep.clone());
        }
    }
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::copy(fixture("chelsea.png"), deep.join("bottom.png")).unwrap();
    std::fs::copy(fixture("chelsea.png"), half.unwrap().join("half.png")).unwrap();
    let t0 = Instant::now();
    let r = infer_within(&w, &[], &[&d.join("t")], Duration::from_secs(60));
    assert_eq!(r.0, Some(0), "{}", r.2);
    assert!(
        r.1.contains("bottom.png") && r.1.contains("half.png"),
        "{}",
        r.1
    );
    eprintln!(
        "1900 levels walked and 2 images classified in {:.2} s",
        t0.elapsed().as_secs_f64()
    );
    std::fs::remove_dir_all(d.join("t")).ok();
}

#[test]
fn weights_that_overflow_are_an_error_not_nan_percent() {
    let d = dir("overflow");
    let m = tiny_model();
    let mut weights = Weights::init(&m, Init::Kaiming, 1);
    // Finite, so the file loads; their products overflow f32.
    let names: Vec<String> = weights.iter().map(|(n, _)| n.clone()).collect();
    for name in names {
        if let Some(t) = weights.get_mut(&name) {
            t.data.iter_mut().for_each(|v| *v = 3e38);
        }
    }
    let p = d.join("huge.safetensors");
    weights.save(&p).unwrap();
    let r = infer(&p, &[], &[&fixture("chelsea.png")]);
    one_error_line(&r, &["chelsea.png", "overflow"]);
    assert!(!r.1.contains("NaN"), "{}", r.1);
}

#[test]
fn sizes_from_options_are_checked_before_any_allocation() {
    let fx = fixture("chelsea.png");
    let img = fx.to_str().unwrap();
    let r = vgg_capped(&[
        "infer",
        "--weights",
        "none.safetensors",
        "--classes",
        "18446744073709551615",
        img,
    ]);
    one_error_line(&r, &["invalid model", "18446744073709551615"]);
    let r = vgg(&[
        "infer",
        "--weights",
        "x",
        "--resize",
        "100000",
        "--crop",
        "224",
        img,
    ]);
    one_error_line(&r, &["--resize", "100000", "--max-pixels"]);
    let r = vgg_capped(&["summary", "--width", "1e30"]);
    one_error_line(&r, &["invalid model"]);
    let r = vgg_capped(&["summary", "--input", "100000x100000"]);
    one_error_line(&r, &["invalid model", "100000x100000"]);
    let r = vgg_capped(&["summary", "--avgpool", "70000x70000"]);
    one_error_line(&r, &["invalid model", "70000x70000"]);
    let d = dir("options");
    let out = d.join("run");
    let o = out.to_str().unwrap();
    for (args, words) in [
        (vec!["--lr", "1e9"], vec!["--lr", "1000000000"]),
        (vec!["--lr", "NaN"], vec!["--lr", "NaN"]),
        (vec!["--schedule", "step:1:-1"], vec!["--schedule", "-1"]),
        (vec!["--epochs", "0"], vec!["--epochs", "0"]),
        (
            vec!["--batch-size", "4611686018427387904", "--accumulate", "8"],
            vec!["batch", "4611686018427387904"],
        ),
    ] {
        let r = vgg(&[&["train", "--mnist-model", "--out", o][..], &args].concat());
        one_error_line(&r, &words);
    }
}

/// An IDX image file's header: magic 2051, then n, h, w.
fn idx_header(n: u32, h: u32, w: u32) -> Vec<u8> {
    [2051u32, n, h, w]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect()
}

#[test]
fn data_files_are_sized_by_their_headers() {
    let d = dir("data");
    let labels = d.join("labels.idx");
    let mut lb = vec![0, 0, 8, 1, 0, 0, 0, 1];
    lb.push(3);
    std::fs::write(&labels, &lb).unwrap();
    let train = |images: &Path| {
        let data = format!("{},{}", images.display(), labels.display());
        let out = d.join("out");
        let _ = std::fs::remove_dir_all(&out);
        vgg_capped(&[
            "train",
            "--mnist-model",
            "--format",
            "mnist-idx",
            "--data",
            &data,
            "--out",
            out.to_str().unwrap(),
        ])
    };
    // 16 x 2^30 x 2^30 wraps to 0 in 64-bit arithmetic.
    let wrap = d.join("wrap.idx");
    std::fs::write(&wrap, idx_header(16, 1 << 30, 1 << 30)).unwrap();
    one_error_line(&train(&wrap), &["wrap.idx", "header claims"]);
    // A 4 MB gzip stream of zeros behind a header of one 28x28 digit.
    let bomb = d.join("bomb.idx.gz");
    let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(&idx_header(1, 28, 28)).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..256 {
        z.write_all(&zeros).unwrap();
    }
    std::fs::write(&bomb, z.finish().unwrap()).unwrap();
    one_error_line(
        &train(&bomb),
        &["bomb.idx.gz", "holds more than the 800 bytes"],
    );
    let r = vgg_capped(&["train", "--format", "cifar10", "--data", "/dev/zero"]);
    one_error_line(&r, &["/dev/zero", "is a device"]);
    // A folder of one class would report 100% held-out accuracy.
    let one = d.join("one");
    std::fs::create_dir_all(one.join("cats")).unwrap();
    std::fs::copy(fixture("chelsea.png"), one.join("cats/a.png")).unwrap();
    let out = d.join("out1");
    let r = vgg(&[
        "train",
        "--format",
        "folder",
        "--data",
        one.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    one_error_line(&r, &["one", "one class", "two"]);
}

/// `vgg args` with stdout on `stdout`: (exit code, signal, stderr).
fn vgg_into(args: &[&str], stdout: Stdio) -> (Option<i32>, Option<i32>, String) {
    use std::os::unix::process::ExitStatusExt;
    let out = Command::new(env!("CARGO_BIN_EXE_vgg"))
        .args(args)
        .env_remove("VGG_ADAPTER")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .output()
        .expect("run vgg");
    (
        out.status.code(),
        out.status.signal(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// stdout on a full disk is one error line and exit 1; a closed pipe ends the command as
/// it ends `cat` (SIGPIPE, nothing printed); neither panics.
#[test]
fn output_errors_are_one_line_and_closed_pipes_end_quietly() {
    let d = dir("output");
    let w = tiny_weights(&d);
    let image = fixture("chelsea.png");
    let mut infer_args = vec!["infer", "--weights", w.to_str().unwrap()];
    infer_args.extend(TINY);
    infer_args.push(image.to_str().unwrap());
    let commands: [&[&str]; 3] = [
        &["summary"],
        &["summary", "--model", "vgg11", "--train"],
        &infer_args,
    ];
    for args in commands {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let (code, signal, err) = vgg_into(args, Stdio::from(full));
        one_error_line(
            &(code, String::new(), err.clone()),
            &["standard output", "No space left"],
        );
        assert_eq!(signal, None, "{args:?}");
        // The pipe's reading end is closed before vgg starts: its first write meets EPIPE.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let (code, signal, err) = vgg_into(args, Stdio::from(writer));
        assert_eq!((code, signal), (None, Some(13)), "{args:?}: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("error"),
            "{args:?}: {err}"
        );
    }
}

/// `n` zero bytes after `head`, gzipped (the best level: a bomb's ratio).
fn gz_zeros(head: &[u8], n: usize) -> Vec<u8> {
    let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(head).unwrap();
    let zeros = vec![0u8; 1 << 20];
    let mut left = n;
    while left > 0 {
        let k = left.min(zeros.len());
        z.write_all(&zeros[..k]).unwrap();
        left -= k;
    }
    z.finish().unwrap()
}

/// Gzip bombs in every compressed format: each refused from its header or at the first
/// byte past its format's bound, inflating no more than that (under a 1 GiB address space).
#[test]
fn compressed_data_is_refused_as_soon_as_it_exceeds_its_header() {
    let d = dir("bombs");
    let train = |format: &str, data: &Path| {
        let out = d.join("out");
        vgg_capped(&[
            "train",
            "--mnist-model",
            "--format",
            format,
            "--data",
            data.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
    };
    // A header of one 46000x46000 image (2.1 GB) over 8 MB of zeros, 8 KB compressed.
    let big = d.join("big.idx.gz");
    std::fs::write(&big, gz_zeros(&idx_header(1, 46000, 46000), 8 << 20)).unwrap();
    let labels = d.join("labels.idx");
    std::fs::write(&labels, [0, 0, 8, 1, 0, 0, 0, 1, 3]).unwrap();
    let both = format!("{},{}", big.display(), labels.display());
    let r = train("mnist-idx", Path::new(&both));
    one_error_line(&r, &["big.idx.gz", "1073741824 bytes an IDX file may hold"]);
    // 60001 CIFAR-10 records of zeros (184 MB inflated, 180 KB compressed).
    let cifar = d.join("bomb.bin.gz");
    std::fs::write(&cifar, gz_zeros(&[], 60_001 * 3073)).unwrap();
    one_error_line(
        &train("cifar10", &cifar),
        &["bomb.bin.gz", "more than 60000 records"],
    );
    // A CSV line of four million digits.
    let csv = d.join("digits.csv.gz");
    let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(&vec![b'7'; 4_000_000]).unwrap();
    std::fs::write(&csv, z.finish().unwrap()).unwrap();
    one_error_line(
        &train("mnist-csv", &csv),
        &["digits.csv.gz", "line 1", "longer than 16384 bytes"],
    );
}

/// Two runs into one --out: the second is refused at once naming the first's pid; a run
/// killed with SIGKILL leaves no lock behind.
#[test]
fn one_training_run_per_output_folder() {
    let d = dir("lock");
    let out = d.join("run");
    let args = [
        "train",
        "--mnist-model",
        "--epochs",
        "50",
        "--out",
        out.to_str().unwrap(),
    ];
    let mut first = Command::new(env!("CARGO_BIN_EXE_vgg"))
        .args(args)
        .env_remove("VGG_ADAPTER")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lock = out.join(".vgg.lock");
    let t0 = Instant::now();
    let pid = first.id().to_string();
    while std::fs::read_to_string(&lock).map_or(true, |s| s.trim() != pid) {
        assert!(t0.elapsed() < Duration::from_secs(60), "no lock taken");
        std::thread::sleep(Duration::from_millis(20));
    }
    let t1 = Instant::now();
    let r = vgg(&args);
    one_error_line(
        &r,
        &[
            "run",
            "in use by another training run",
            &format!("pid {pid}"),
        ],
    );
    assert!(
        t1.elapsed() < Duration::from_secs(20),
        "not refused at once"
    );
    first.kill().unwrap();
    first.wait().unwrap();
    // The kernel dropped the lock with the process: a new holder gets it at once.
    use std::os::unix::io::AsRawFd;
    let f = std::fs::OpenOptions::new().write(true).open(&lock).unwrap();
    // SAFETY: flock on a descriptor this test owns.
    let got = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    assert_eq!(got, 0, "{}", std::io::Error::last_os_error());
}

/// A checkpoint's metadata for model `m` at epoch 1: what `--resume` reads.
fn checkpoint_meta(m: &Model) -> std::collections::HashMap<String, String> {
    [
        ("epoch", "1"),
        ("step", "10"),
        ("lr", "0.05"),
        ("best_accuracy", "0.5"),
        ("epochs_since_best", "0"),
        ("model", m.name()),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

#[test]
fn runs_and_checkpoints_are_not_overwritten_or_trusted_blindly() {
    let d = dir("runs");
    // A fresh run into a folder that holds one.
    let out = d.join("old");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("metrics.csv"), "epoch,lr\n1,0.05\n").unwrap();
    let r = vgg(&["train", "--mnist-model", "--out", out.to_str().unwrap()]);
    one_error_line(&r, &["old", "already holds a training run"]);
    assert_eq!(
        std::fs::read_to_string(out.join("metrics.csv")).unwrap(),
        "epoch,lr\n1,0.05\n"
    );
    // Checkpoint metadata out of range.
    let m = vgg_wgpu::train::mnist_model().unwrap();
    let w = Weights::init(&m, Init::Kaiming, 1);
    for (key, value) in [("epoch", "-5"), ("lr", "NaN"), ("model", "vgg16")] {
        let out = d.join(format!("ckpt-{key}"));
        std::fs::create_dir_all(&out).unwrap();
        let mut meta = checkpoint_meta(&m);
        meta.insert(key.into(), value.into());
        let ckpt = out.join("checkpoint.safetensors");
        vgg_wgpu::train::fit::save_checkpoint(&ckpt, &w, &Weights::new(), &meta).unwrap();
        let r = vgg(&[
            "train",
            "--mnist-model",
            "--resume",
            "--epochs",
            "2",
            "--out",
            out.to_str().unwrap(),
        ]);
        one_error_line(&r, &["checkpoint.safetensors", key]);
    }
    // A checkpoint whose card records another architecture of the same name, and one
    // whose momentum holds a NaN.
    let base = checkpoint_meta(&m);
    let other = m.with_hidden(&[7]).unwrap();
    let names = (0..10).map(|i| i.to_string()).collect();
    let pre = vgg_wgpu::io::datasets::folder_preprocessing(28);
    let card = vgg_wgpu::model::Card::new(&other, pre, names).unwrap();
    let mut nan = Weights::new();
    let (name, t) = w.iter().next().unwrap();
    let mut bad = t.clone();
    bad.data[3] = f32::NAN;
    nan.insert(name, bad);
    let nan_name = format!("momentum.{name}");
    let cases = [
        (
            "card",
            card.to_metadata(),
            Weights::new(),
            vec!["another model", "hidden widths"],
        ),
        (
            "nan",
            Default::default(),
            nan,
            vec![nan_name.as_str(), "NaN"],
        ),
    ];
    for (what, extra, momentum, words) in cases {
        let out = d.join(format!("ckpt-{what}"));
        std::fs::create_dir_all(&out).unwrap();
        let mut meta = base.clone();
        meta.extend(extra);
        let ckpt = out.join("checkpoint.safetensors");
        vgg_wgpu::train::fit::save_checkpoint(&ckpt, &w, &momentum, &meta).unwrap();
        let o = out.to_str().unwrap();
        let r = vgg(&[
            "train",
            "--mnist-model",
            "--resume",
            "--epochs",
            "2",
            "--out",
            o,
        ]);
        let mut all = vec!["checkpoint.safetensors"];
        all.extend(words.iter().copied());
        one_error_line(&r, &all);
    }
}

/// Options that size loops or lists are bounded, each command checks them as the others
/// do, and a layer list is checked at the input given.
#[test]
fn arguments_and_metadata_are_checked_where_they_are_given() {
    let d = dir("args");
    for args in [
        &["bench", "--runs", "0"][..],
        &["bench", "--runs", "18446744073709551615"],
        &["bench", "--runs", "4294967296"],
        &["infer", "--top", "0", "x.png"],
    ] {
        let (code, _, err) = vgg(args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(
            err.contains("from 1 to") && !err.contains("panicked"),
            "{err}"
        );
    }
    for accumulate in ["0", "9223372036854775808"] {
        let r = vgg(&["summary", "--train", "--accumulate", accumulate]);
        one_error_line(&r, &["invalid batch", "accumulation"]);
    }
    // 100000 channels are too many at 224x224, not at 8x8.
    let (code, _, err) = vgg(&["summary", "--model", "100000", "--input", "8x8"]);
    assert_eq!(code, Some(0), "{err}");
    // Two names for three classes.
    let w = tiny_weights(&d);
    let labels = d.join("labels.txt");
    std::fs::write(&labels, "cat\ndog\n\n").unwrap();
    let image = fixture("chelsea.png");
    let r = infer(&w, &["--labels", labels.to_str().unwrap()], &[&image]);
    one_error_line(&r, &["labels.txt", "holds 2 class names", "3 classes"]);
    // A class folder without images.
    let data = d.join("folder");
    std::fs::create_dir_all(data.join("cats")).unwrap();
    std::fs::create_dir_all(data.join("dogs")).unwrap();
    std::fs::copy(&image, data.join("cats/a.png")).unwrap();
    let out = d.join("out");
    let r = vgg(&[
        "train",
        "--format",
        "folder",
        "--data",
        data.to_str().unwrap(),
        "--model",
        "4,M",
        "--input",
        "8x8",
        "--out",
        out.to_str().unwrap(),
    ]);
    one_error_line(&r, &["dogs", "class folder without images"]);
}

/// Flips two bits in tensor `name`'s data of the safetensors file at `path`.
fn flip_bits(path: &Path, name: &str) {
    let mut b = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&b[8..8 + n]).unwrap();
    let start = header[name]["data_offsets"][0].as_u64().unwrap() as usize + 8 + n;
    b[start] ^= 0x10;
    b[start + 5] ^= 0x01;
    std::fs::write(path, b).unwrap();
}

/// Two bit flips in a weight the engine wrote, or in a checkpoint's momentum, are caught
/// by the tensor's recorded checksum and named, before anything runs on them.
#[test]
fn bit_flips_in_written_files_are_caught_by_name() {
    let d = dir("flips");
    let w = tiny_weights(&d);
    flip_bits(&w, "features.0.weight");
    let r = infer(&w, &[], &[&fixture("chelsea.png")]);
    one_error_line(&r, &["tiny.safetensors", "features.0.weight", "checksum"]);
    let m = vgg_wgpu::train::mnist_model().unwrap();
    let weights = Weights::init(&m, Init::Kaiming, 1);
    let meta = checkpoint_meta(&m);
    let out = d.join("run");
    std::fs::create_dir_all(&out).unwrap();
    let ckpt = out.join("checkpoint.safetensors");
    vgg_wgpu::train::fit::save_checkpoint(&ckpt, &weights, &weights, &meta).unwrap();
    let (name, _) = weights.iter().last().unwrap();
    let momentum = format!("momentum.{name}");
    flip_bits(&ckpt, &momentum);
    let o = out.to_str().unwrap();
    let r = vgg(&[
        "train",
        "--mnist-model",
        "--resume",
        "--epochs",
        "2",
        "--out",
        o,
    ]);
    one_error_line(&r, &["checkpoint.safetensors", &momentum, "checksum"]);
}

/// A small deterministic generator for the mutation test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// `seed` corrupted: bytes flipped, runs overwritten with extreme values (the likeliest way
/// to reach a size field), cut short, or grown.
fn mutate(seed: &[u8], r: &mut Rng) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..1 + r.below(4) {
        if b.is_empty() {
            b.push(r.next() as u8);
        }
        let at = r.below(b.len());
        match r.below(5) {
            0 => b[at] ^= 1 << r.below(8),
            1 => b[at] = r.next() as u8,
            2 => {
                let v = [0x00, 0xFF, 0x7F, 0x80][r.below(4)];
                let end = (at + 1 + r.below(8)).min(b.len());
                b[at..end].iter_mut().for_each(|x| *x = v);
            }
            3 => b.truncate(at),
            _ => {
                let n = r.below(64);
                let fill: Vec<u8> = (0..n).map(|_| r.next() as u8).collect();
                b.splice(at..at, fill);
            }
        }
    }
    b
}

/// Every parser, on a few thousand corrupted copies of valid inputs: an error or a result,
/// never a panic, an abort or a runaway allocation (images are capped at 4 megapixels).
#[test]
fn mutated_inputs_never_panic() {
    use vgg_wgpu::io::{datasets, image, weights};
    let t0 = Instant::now();
    let mut r = Rng(0x5eed_1234_abcd_0001);
    let what = Path::new("mutated");
    let images = [
        std::fs::read(fixture("rocket_exif6.jpg")).unwrap(),
        std::fs::read(fixture("camera_gray.png")).unwrap(),
        png_claiming(40, 30),
    ];
    let model = tiny_model();
    let st = {
        let p = dir("mutate").join("w.safetensors");
        Weights::init(&model, Init::Kaiming, 1).save(&p).unwrap();
        std::fs::read(p).unwrap()
    };
    let mut idx = idx_header(2, 2, 3);
    idx.extend([0, 255, 128, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    let idx_labels = vec![0, 0, 8, 1, 0, 0, 0, 2, 7, 1];
    let mut cifar = vec![3u8];
    cifar.extend((0..3072).map(|i| i as u8));
    let csv: Vec<u8> = (0..784)
        .map(|i| (i % 256).to_string())
        .chain(["7".to_string()])
        .collect::<Vec<_>>()
        .join(",")
        .into_bytes();
    let model_strings = [&b"64,M,128,M,256,256:1,L,M"[..], b"vgg16_bn", b"8,8,M"];
    // About 2 s on CI's two cores.
    const N: usize = 20_000;
    let mut outcomes = [0usize; 2];
    for i in 0..N {
        let ok = match i % 7 {
            0 | 1 => {
                let b = mutate(&images[i % images.len()], &mut r);
                image::decode_bytes(&b, what, 4_000_000, Some(64)).is_ok()
            }
            2 => weights::load_weights_bytes(&mutate(&st, &mut r), what, &model).is_ok(),
            3 => {
                let (im, lb) = if r.below(2) == 0 {
                    (mutate(&idx, &mut r), idx_labels.clone())
                } else {
                    (idx.clone(), mutate(&idx_labels, &mut r))
                };
                datasets::mnist_idx_bytes(im, lb, what, what).is_ok()
            }
            4 => datasets::cifar10_bytes(&mutate(&cifar, &mut r), what).is_ok(),
            5 => datasets::mnist_csv_bytes(&mutate(&csv, &mut r), what).is_ok(),
            _ => {
                let b = mutate(model_strings[r.below(3)], &mut r);
                Model::parse(&String::from_utf8_lossy(&b)).is_ok()
            }
        };
        outcomes[ok as usize] += 1;
    }
    eprintln!(
        "{N} mutated inputs: {} parsed, {} refused, in {:.1} s",
        outcomes[1],
        outcomes[0],
        t0.elapsed().as_secs_f64()
    );
    // Both outcomes occur: the mutations neither always break nor never touch the input.
    assert!(outcomes[0] > 100 && outcomes[1] > 100, "{outcomes:?}");
}
