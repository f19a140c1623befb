//! ONNX files: the protobuf decoding, the graph walk and the initializer reads.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let _ = vgg_wgpu::io::onnx::read_onnx(data, Path::new("fuzz.onnx"));
});
