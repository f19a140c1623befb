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

#[test]
fn check_passes_and_names_the_adapter() {
    let (ok, out, err) = vgg(&["check", "--seed", "11"]);
    eprintln!("{out}");
    assert!(ok, "{out}{err}");
    assert!(
        out.starts_with("adapter: ") && out.contains(" passed, 0 failed"),
        "{out}"
    );
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
