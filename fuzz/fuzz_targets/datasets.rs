//! The data loaders: the first byte picks IDX images, IDX labels, CIFAR-10 or MNIST CSV.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use vgg_wgpu::io::datasets;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let what = Path::new("fuzz");
    // One 2x3 image and its label, the partner of a fuzzed file of the other kind.
    let images: Vec<u8> = [2051u32, 1, 2, 3]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .chain([0, 1, 2, 3, 4, 5])
        .collect();
    let labels = vec![0, 0, 8, 1, 0, 0, 0, 1, 7];
    let _ = match pick % 4 {
        0 => datasets::mnist_idx_bytes(rest.to_vec(), labels, what, what),
        1 => datasets::mnist_idx_bytes(images, rest.to_vec(), what, what),
        2 => datasets::cifar10_bytes(rest, what),
        _ => datasets::mnist_csv_bytes(rest, what),
    };
});
