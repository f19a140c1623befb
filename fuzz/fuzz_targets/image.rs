//! An image file through decoding and torchvision's preprocessing, with a 4-megapixel cap.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use vgg_wgpu::io::image::{decode_bytes, Preprocess};

fuzz_target!(|data: &[u8]| {
    let pre = Preprocess {
        resize: 64,
        crop: Some(56),
        max_pixels: 4_000_000,
        ..Preprocess::default()
    };
    if let Ok(img) = decode_bytes(data, Path::new("fuzz"), pre.max_pixels, Some(pre.resize)) {
        let _ = pre.apply(&img);
    }
});
