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

#[test]
fn conv() {
    op_passes("conv/");
}

#[test]
fn pool() {
    op_passes("pool/");
}

#[test]
fn linear() {
    op_passes("linear/");
}

#[test]
fn batchnorm() {
    op_passes("batchnorm/");
}

#[test]
fn lrn() {
    op_passes("lrn/");
}

#[test]
fn softmax() {
    op_passes("softmax/");
}

#[test]
fn avgpool() {
    op_passes("avgpool/");
}

#[test]
fn im2col() {
    op_passes("im2col/");
}

#[test]
fn elementwise() {
    op_passes("elementwise/");
}

#[test]
fn optim() {
    op_passes("optim/");
}

#[test]
fn network() {
    op_passes("network/");
}

#[test]
fn train() {
    op_passes("train/");
}

/// Every op of the table has its test above.
#[test]
fn every_op_of_the_table_is_tested() {
    let tested = [
        "conv",
        "pool",
        "linear",
        "batchnorm",
        "lrn",
        "softmax",
        "avgpool",
        "im2col",
        "elementwise",
        "optim",
        "network",
        "train",
    ];
    assert_eq!(suite::OPS, tested);
}

/// Every case of the table is named `op/pass` after one of those ops.
#[test]
fn every_case_is_named_after_its_op() {
    on_each_gpu(|| {
        let opts = SuiteOptions {
            full: true,
            ..Default::default()
        };
        for c in suite::cases(gpu(), &opts) {
            let op = match &c {
                suite::Case::Run { op, .. } => op.clone(),
                suite::Case::Skip(s) => s.op.clone(),
            };
            let (head, pass) = op.split_once('/').unwrap_or((&op, ""));
            assert!(suite::OPS.contains(&head) && !pass.is_empty(), "{op}");
        }
    });
}
