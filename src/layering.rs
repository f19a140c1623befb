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

/// Every `crate::NAME` a source file names, with its line (1-based); comments skipped. A
/// group, `crate::{A, b::{C, D}}`, names each of its top-level items, across lines as
/// rustfmt wraps it.
fn uses_in(text: &str) -> Vec<(usize, &str)> {
    // Code only: each line up to a `//`, at its offset in `text`.
    let mut code = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let body = line.strip_suffix('\n').unwrap_or(line);
        let kept = body.split("//").next().unwrap_or("");
        code.push_str(kept);
        // Blanks keep every later offset where it was, and the line count with it.
        code.extend(std::iter::repeat_n(' ', body.len() - kept.len()));
        if line.ends_with('\n') {
            code.push('\n');
        }
    }
    let line_of = |i: usize| text[..i].matches('\n').count() + 1;
    let mut out = Vec::new();
    for (i, _) in code.match_indices("crate::") {
        // Not `vgg_wgpu_crate::` or `$crate::` (the macros' own path).
        if i > 0 && code[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let rest = &code[i + "crate::".len()..];
        let names: Vec<&str> = match rest.strip_prefix('{') {
            Some(group) => top_level_items(group),
            None => vec![rest],
        };
        for n in names {
            let n = n.trim_start();
            let end = n
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(n.len());
            if end > 0 {
                // The same bytes in `text`, which the names borrow from.
                let at = n.as_ptr() as usize - code.as_ptr() as usize;
                out.push((line_of(i), root_item(&text[at..at + end])));
            }
        }
    }
    out
}

/// The items of a `{...}` group (its text after the `{`), split at its top-level commas.
fn top_level_items(group: &str) -> Vec<&str> {
    let (mut depth, mut from, mut items) = (0usize, 0, Vec::new());
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&group[from..i]);
                return items;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&group[from..i]);
                from = i + 1;
            }
            _ => {}
        }
    }
    items.push(&group[from..]);
    items
}

/// The modules one line names, for the tests.
#[cfg(test)]
fn uses(line: &str) -> Vec<&str> {
    uses_in(line).into_iter().map(|(_, m)| m).collect()
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
        for (n, used) in uses_in(&text) {
            if used != module && !ok.contains(&used) {
                out.push(format!(
                    "src/{}:{}: {module} may not use {used} ({module} may use: {})",
                    rel.display(),
                    n,
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
    // As rustfmt wraps a long group, nested groups included; lines counted from 1.
    let wrapped = "//! doc\nuse crate::{\n    bench::tune,\n    gpu::{Gpu, Shader},\n    // crate::io\n    Model,\n};\nfn f() -> crate::Result<()> {}\n";
    assert_eq!(
        uses_in(wrapped),
        [(2, "bench"), (2, "gpu"), (2, "model"), (8, "error")]
    );
    assert!(!allowed("graph").contains(&"bench"));
    assert!(!allowed("reference").contains(&"kernels"));
    assert!(!allowed("model").contains(&"kernels"));
    assert!(!allowed("io").contains(&"infer"));
}
