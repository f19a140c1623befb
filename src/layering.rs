//! The import table: every module of the library names the modules it may use, and this
//! test fails on any `crate::X` path outside it. Dependencies point down only:
//!
//! ```text
//! module      may use (besides itself)
//! error       -
//! model       error
//! io          error, model
//! gpu         error, io
//! kernels     error, io, model, gpu
//! reference   error, model                     (an independent oracle: no kernels)
//! graph       error, io, model, gpu, kernels
//! train       error, io, model, gpu, kernels, graph
//! infer       error, io, model, gpu, graph
//! eval        error, io, model, gpu, graph, infer
//! check       everything below, reference, train, infer
//! bench       everything below, check
//! ```
//!
//! An upward import fails with the file, the line and the table row, e.g. after adding
//! `use crate::bench::tune;` to src/graph/network.rs:
//!
//! ```text
//! src/graph/network.rs:4: graph may not use bench (graph may use: error, io, model, gpu, kernels)
//! ```

use std::path::Path;

const BOTTOM: &[&str] = &["error", "io", "model"];

/// The modules `module` may use.
fn allowed(module: &str) -> Vec<&'static str> {
    let below: &[&str] = match module {
        "error" => &[],
        "model" => &["error"],
        "io" => &["error", "model"],
        "gpu" => &["error", "io"],
        "reference" => &["error", "model"],
        "kernels" => &["gpu"],
        "graph" => &["gpu", "kernels"],
        "train" => &["gpu", "kernels", "graph"],
        "infer" => &["gpu", "graph"],
        "eval" => &["gpu", "graph", "infer"],
        "check" => &["gpu", "kernels", "graph", "reference", "train", "infer"],
        "bench" => &[
            "gpu",
            "kernels",
            "graph",
            "reference",
            "train",
            "infer",
            "check",
        ],
        _ => &[],
    };
    let mut v: Vec<&str> = match module {
        "error" | "model" | "io" | "gpu" | "reference" => below.to_vec(),
        _ => BOTTOM.iter().chain(below).copied().collect(),
    };
    v.dedup();
    v
}

/// Every `crate::NAME` a line of code names (comments skipped).
fn uses(line: &str) -> Vec<&str> {
    let code = line.split("//").next().unwrap_or("");
    code.match_indices("crate::")
        .filter(|(i, _)| {
            // Not `vgg_wgpu_crate::` or `$crate::` (the macros' own path).
            *i == 0 || !code[..*i].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == '$')
        })
        .flat_map(|(i, _)| {
            let rest = &code[i + "crate::".len()..];
            // `crate::{A, b::C}` names several on one line.
            let names: Vec<&str> = match rest.strip_prefix('{') {
                Some(group) => group.split('}').next().unwrap_or("").split(',').collect(),
                None => vec![rest],
            };
            names
                .into_iter()
                .filter_map(|n| {
                    let n = n.trim();
                    let end = n
                        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .unwrap_or(n.len());
                    (end > 0).then(|| root_item(&n[..end]))
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The module behind a crate-root re-export (lib.rs's `pub use`), or the name itself.
fn root_item(name: &str) -> &str {
    match name {
        "Error" | "Result" => "error",
        "Gpu" | "GpuOptions" => "gpu",
        "Network" | "NetworkOptions" => "graph",
        "Init" | "Model" | "Tensor" | "Weights" => "model",
        _ => name,
    }
}

fn violations(dir: &Path, out: &mut Vec<String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("list src")
        .map(|e| e.expect("list src").path())
        .collect();
    entries.sort();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for path in entries {
        if path.is_dir() {
            violations(&path, out);
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let rel = path.strip_prefix(&src).expect("a file under src");
        let module = rel
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .map(|s| s.trim_end_matches(".rs"))
            .unwrap_or("");
        // The crate root and the binary (main.rs, cli/) see everything; this file names every module.
        if ["lib", "main", "cli", "layering"].contains(&module) {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read a source file");
        let ok = allowed(module);
        for (n, line) in text.lines().enumerate() {
            for used in uses(line) {
                if used != module && !ok.contains(&used) {
                    out.push(format!(
                        "src/{}:{}: {module} may not use {used} ({module} may use: {})",
                        rel.display(),
                        n + 1,
                        if ok.is_empty() {
                            "-".into()
                        } else {
                            ok.join(", ")
                        }
                    ));
                }
            }
        }
    }
}

#[test]
fn dependencies_point_down_only() {
    let mut out = Vec::new();
    violations(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut out);
    assert!(out.is_empty(), "upward imports:\n{}", out.join("\n"));
}

#[test]
fn the_table_sees_paths_in_use_lines_and_in_code() {
    assert_eq!(uses("use crate::bench::tune;"), ["bench"]);
    assert_eq!(
        uses("    let t = crate::kernels::conv::select(gpu, s, crate::gpu::X); // crate::io"),
        ["kernels", "gpu"]
    );
    assert_eq!(uses("$crate::gpu::Shader {"), Vec::<&str>::new());
    assert_eq!(uses("use crate::{Network, Result};"), ["graph", "error"]);
    assert_eq!(uses("-> crate::Result<crate::Network>"), ["error", "graph"]);
    assert!(!allowed("graph").contains(&"bench"));
    assert!(!allowed("reference").contains(&"kernels"));
    assert!(!allowed("model").contains(&"kernels"));
    assert!(!allowed("io").contains(&"infer"));
}
