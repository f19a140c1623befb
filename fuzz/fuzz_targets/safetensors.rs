//! A safetensors file for a small model: an error or the weights, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use vgg_wgpu::Model;

fuzz_target!(|data: &[u8]| {
    let model = Model::parse("4,M")
        .and_then(|m| m.with_input(3, 8, 8))
        .and_then(|m| m.with_avgpool(None))
        .and_then(|m| m.with_hidden(&[]))
        .and_then(|m| m.with_classes(3));
    if let Ok(model) = model {
        let _ = vgg_wgpu::io::weights::load_weights_bytes(data, Path::new("fuzz"), &model);
    }
});
