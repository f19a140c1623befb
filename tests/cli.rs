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
    let (ok, out, _) = vgg(&["summary", "--list"]);
    assert!(
        ok && out.contains("vgg11_lrn") && out.contains("vgg19_bn"),
        "{out}"
    );
}
