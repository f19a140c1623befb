//! The demo: the small VGG for 28x28 digits and its bundled trained weights.

use crate::error::Result;
use crate::model::{Model, Weights};

/// The demo's network: a small VGG for 28x28 digits (three blocks of 3x3 convs and max
/// pooling, one hidden FC layer with dropout).
pub const MNIST_MODEL: &str = "16,M,32,M,64,M";

pub fn mnist_model() -> Result<Model> {
    Model::parse(MNIST_MODEL)
        .and_then(|m| m.with_input(1, 28, 28))
        .and_then(|m| m.with_avgpool(None))
        .and_then(|m| m.with_hidden(&[128]))
        .and_then(|m| m.with_classes(10))
        .map(|m| {
            m.modified(|c| c.name = "mnist_vgg".into())
                .unwrap_or_else(|_| m.clone())
        })
}

/// The demo model's weights, trained by this engine (see the README for the command).
pub fn demo_weights() -> Result<Weights> {
    const BYTES: &[u8] = include_bytes!("mnist_vgg.safetensors");
    let what = std::path::Path::new("bundled mnist_vgg.safetensors");
    crate::io::weights::load_weights_bytes(BYTES, what, &mnist_model()?)
}
