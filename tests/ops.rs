//! Every op's conformance cases, from the one table `vgg check` runs
//! (`check::suite::cases`): forward and backward kernels against the CPU reference on
//! fresh random inputs, outputs poisoned with NaN, each case run twice for determinism.
//! A case added to the table runs here and in `vgg check`; one test per op.

mod common;
use common::{gpu, on_each_gpu, seed};
use vgg_wgpu::check::suite::{self, SuiteOptions};

/// Runs the table's cases for `op` on each test adapter; fails on any that does not pass.
fn op_passes(op: &str) {
    on_each_gpu(|| {
        let opts = SuiteOptions {
            seed: seed(),
            only: Some(op.into()),
            ..Default::default()
        };
        let name = &gpu().info().name;
        let (outcomes, skipped) = suite::run(gpu(), &opts, |o| eprintln!("[{name}] {o}"));
        for s in &skipped {
            eprintln!("[{name}] {} skipped: {}", s.op, s.reason);
        }
        assert!(!outcomes.is_empty(), "no case of {op} ran");
        let failed: Vec<String> = outcomes
            .iter()
            .filter(|o| !o.passed())
            .map(|o| o.to_string())
            .collect();
        assert!(failed.is_empty(), "[{name}] failed:\n{}", failed.join("\n"));
    });
}

/// One test per op of the table, and the list of them.
macro_rules! op_tests {
    ($($op:ident),*) => {
        $(
            #[test]
            fn $op() {
                op_passes(concat!(stringify!($op), "/"));
            }
        )*
        const TESTED: &[&str] = &[$(stringify!($op)),*];
    };
}

// One line: the list of tests, read across.
#[rustfmt::skip]
op_tests!(conv, pool, linear, batchnorm, lrn, softmax, avgpool, im2col, elementwise, optim, network, train);

/// Every op of the table has its test above.
#[test]
fn every_op_of_the_table_is_tested() {
    assert_eq!(suite::OPS, TESTED);
}

/// Every case of the table is named `op/pass` after one of those ops.
#[test]
fn every_case_is_named_after_its_op() {
    on_each_gpu(|| {
        let opts = SuiteOptions {
            scope: suite::Scope::Full,
            ..Default::default()
        };
        let mut seen = std::collections::BTreeSet::new();
        for c in suite::cases(gpu(), &opts) {
            let op = match &c {
                suite::Case::Run { op, .. } => op.clone(),
                suite::Case::Skip(s) => s.op.clone(),
            };
            let (head, pass) = op.split_once('/').unwrap_or((&op, ""));
            assert!(suite::OPS.contains(&head) && !pass.is_empty(), "{op}");
            // A skipped case's name carries the variant after a space.
            seen.insert(op.split_whitespace().next().unwrap_or("").to_string());
        }
        // `vgg check --op` validates against PASSES: it lists exactly the table's names.
        let listed: std::collections::BTreeSet<String> =
            suite::PASSES.iter().map(|p| p.to_string()).collect();
        assert_eq!(seen, listed);
    });
}

/// The quick set (`vgg check` with no options) runs every pass of the table and every conv
/// and FC variant the adapter offers, at a fraction of the standard set's cases.
#[test]
fn quick_set_runs_every_pass_and_variant() {
    on_each_gpu(|| {
        let names = |scope| {
            let opts = SuiteOptions {
                scope,
                ..Default::default()
            };
            suite::cases(gpu(), &opts)
                .into_iter()
                .filter_map(|c| match c {
                    suite::Case::Run { op, shape, .. } => Some((op, shape)),
                    suite::Case::Skip(_) => None,
                })
                .collect::<Vec<_>>()
        };
        let (quick, standard) = (names(suite::Scope::Quick), names(suite::Scope::Standard));
        let passes = |v: &[(String, String)]| {
            v.iter()
                .map(|(op, _)| op.clone())
                .collect::<std::collections::BTreeSet<_>>()
        };
        assert_eq!(passes(&quick), passes(&standard));
        // Every variant of conv/forward and linear/forward (the case's shape names it).
        let variants = |v: &[(String, String)], op: &str| {
            v.iter()
                .filter(|(o, s)| o == op && !s.contains("grid over"))
                .map(|(_, s)| s.clone())
                .collect::<std::collections::BTreeSet<_>>()
        };
        for op in ["conv/forward", "linear/forward"] {
            let want: std::collections::BTreeSet<_> = variants(&standard, op)
                .into_iter()
                .filter(|s| !s.contains("binding") && s != "fc8")
                .collect();
            assert_eq!(variants(&quick, op), want, "{op}");
        }
        eprintln!(
            "[{}] quick set: {} of {} standard cases",
            gpu().info().name,
            quick.len(),
            standard.len()
        );
        assert!(quick.len() * 3 < standard.len());
        // The edge cases are the standard set's.
        for edge in ["over binding limit", "grid over 65535"] {
            assert!(standard.iter().any(|(_, s)| s.contains(edge)), "{edge}");
        }
    });
}
