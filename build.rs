//! Records the git commit the binary is built from, so that benchmark and conformance
//! reports name the code that produced them wherever the binary runs; and writes the table
//! of every WGSL file under shaders/ by name (`conv/header` for shaders/conv/header.wgsl),
//! which `#include "NAME"` lines in the shaders resolve against.

use std::path::Path;
use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!("cargo:rustc-env=VGG_GIT_COMMIT={commit}");
    shader_table();
    // A commit moves HEAD's branch; a checkout moves HEAD.
    for path in [".git/HEAD", ".git/refs/heads"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}

/// `$OUT_DIR/shaders.rs`: `[(name, source)]` of every shader, sorted by name.
fn shader_table() {
    // Read when the script runs, not when it compiles: cargo reuses a compiled build script
    // for another checkout of the same source (a worktree sharing a target folder), whose
    // shaders `env!` would leave pointing at the first.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let root = Path::new(&manifest).join("shaders");
    // Cargo scans a directory named here recursively for changes.
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir).expect("read the shaders folder");
        for entry in entries {
            let path = entry.expect("read the shaders folder").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "wgsl") {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut table = String::from("&[\n");
    for path in &files {
        let name = path
            .strip_prefix(&root)
            .expect("a path under shaders/")
            .with_extension("");
        let name = name
            .to_str()
            .expect("shader paths are UTF-8")
            .replace('\\', "/");
        table += &format!(
            "    ({name:?}, include_str!({:?})),\n",
            path.display().to_string()
        );
    }
    table += "]\n";
    let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("shaders.rs");
    std::fs::write(out, table).expect("write the shader table");
}
