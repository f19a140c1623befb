//! Weights files: safetensors (f32, f16 or bf16) and PyTorch's `torch.save` files (both
//! formats, read by `io::pth`), a model's weights by torchvision name.
//!
//! Names follow torchvision's `VGG` module: `features.N.weight` / `.bias` for the N-th
//! module of the feature extractor (conv, batch norm, ReLU, pool each take an index; in
//! config A-LRN the LRN takes one too, after the first ReLU), batch norm adds
//! `features.N.running_mean` / `.running_var`, and the classifier's FC layers are
//! `classifier.0`, `classifier.3`, `classifier.6` (every third index, with ReLU and dropout
//! between). Config C and custom models use the same scheme; `vgg summary` prints each
//! layer's name.

use super::file_err;
use crate::error::Result;
use crate::model::{Card, Model, Tensor, Weights};
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use std::collections::HashMap;
use std::path::Path;

/// The largest header safetensors itself accepts.
const HEADER_BYTES: u64 = 100_000_000;

/// The largest safetensors file read without a model to size it by (checkpoints of a VGG
/// with its momentum are about 1.1 GB).
pub const MAX_WEIGHTS_FILE_BYTES: u64 = 64 << 30;

/// Decodes one tensor to f32, from f32, f16 or bf16 little-endian data.
fn to_f32(path: &Path, name: &str, view: &TensorView<'_>) -> Result<Vec<f32>> {
    let d = view.data();
    Ok(match view.dtype() {
        Dtype::F32 => d
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::F16 => d
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::BF16 => d
            .chunks_exact(2)
            .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        other => {
            return Err(file_err(
                path,
                format!("tensor '{name}' has dtype {other:?}; f32, f16 or bf16 expected"),
            ))
        }
    })
}

/// Whether these are the first bytes of a `torch.save` file rather than safetensors: a
/// zip archive, or the legacy format's first pickle (protocol 2, then the 10-byte magic
/// number). As a safetensors header length either would be 67 MB with a zero upper half,
/// or past the format's 100 MB limit.
pub fn is_pth(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(&[0x80, 0x02, 0x8a, 0x0a])
}

/// Every tensor of a safetensors or `torch.save` file, as f32 (f16 and bf16 widened).
/// Tensors of other dtypes (PyTorch's integer `num_batches_tracked`) are skipped.
pub fn read_safetensors(path: &Path) -> Result<Weights> {
    let bytes = super::read_file(path, MAX_WEIGHTS_FILE_BYTES, "a weights file")?;
    read_safetensors_bytes(&bytes, path)
}

/// [`read_safetensors`] on a file's bytes (`path` names it in errors).
pub fn read_safetensors_bytes(bytes: &[u8], path: &Path) -> Result<Weights> {
    if is_pth(bytes) {
        return super::pth::read_pth(bytes, path);
    }
    if is_onnx_file(path, bytes) {
        return Ok(super::onnx::read_onnx(bytes, path)?.weights);
    }
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| file_err(path, format!("not a valid safetensors file: {e}")))?;
    let sums = checksums(path, bytes)?;
    let mut w = Weights::new();
    for (name, view) in st.tensors() {
        if !matches!(view.dtype(), Dtype::F32 | Dtype::F16 | Dtype::BF16) {
            continue;
        }
        verify(path, &sums, &name, view.data())?;
        let data = to_f32(path, &name, &view)?;
        w.insert(&name, Tensor::new(view.shape().to_vec(), data)?);
    }
    Ok(w)
}

/// Loads the weights `model` needs from a safetensors file, checking each tensor's
/// presence, dtype, shape and values; the first problem is reported by tensor name.
pub fn load_weights(path: &Path, model: &Model) -> Result<Weights> {
    // The model's tensors in the widest dtype a file may hold them in (f64 is refused
    // later, by name), and a header as large as safetensors allows.
    let elems: usize = model
        .layers()
        .iter()
        .flat_map(|l| l.tensors())
        .map(|(_, shape)| shape.iter().product::<usize>())
        .sum();
    let max = (elems as u64)
        .saturating_mul(8)
        .saturating_add(HEADER_BYTES);
    let bytes = super::read_file(path, max, &format!("{}'s weights", model.name()))?;
    load_weights_bytes(&bytes, path, model)
}

/// `load_weights` from the bytes of a safetensors or `torch.save` file; `path` names it in
/// errors.
pub fn load_weights_bytes(bytes: &[u8], path: &Path, model: &Model) -> Result<Weights> {
    let all = if is_pth(bytes) {
        Some(super::pth::read_pth(bytes, path)?)
    } else if is_onnx_file(path, bytes) {
        Some(super::onnx::read_onnx(bytes, path)?.weights)
    } else {
        None
    };
    if let Some(all) = all {
        return pick(path, model, |name| {
            Ok(all.get(name).map(|t| (t.shape.clone(), t.data.clone())))
        });
    }
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| file_err(path, format!("not a valid safetensors file: {e}")))?;
    let sums = checksums(path, bytes)?;
    pick(path, model, |name| match st.tensor(name) {
        Ok(view) => {
            verify(path, &sums, name, view.data())?;
            Ok(Some((view.shape().to_vec(), to_f32(path, name, &view)?)))
        }
        Err(_) => Ok(None),
    })
}

/// The tensors `model` needs, each from `get` (its shape and f32 values, None where the
/// file lacks it), checked for presence, shape and finite values; the first problem is
/// reported by tensor name.
fn pick(
    path: &Path,
    model: &Model,
    mut get: impl FnMut(&str) -> Result<Option<(Vec<usize>, Vec<f32>)>>,
) -> Result<Weights> {
    let mut w = Weights::new();
    for layer in model.layers() {
        for (name, shape) in layer.tensors() {
            let (found, data) = get(&name)?.ok_or_else(|| {
                file_err(
                    path,
                    format!(
                        "missing tensor '{name}' (shape {shape:?}) for {} layer {}",
                        model.name(),
                        layer.name
                    ),
                )
            })?;
            if found != shape {
                return Err(file_err(
                    path,
                    format!(
                        "tensor '{name}': expected shape {shape:?} for {} layer {}, found \
                         {found:?}",
                        model.name(),
                        layer.name
                    ),
                ));
            }
            if let Some(i) = data.iter().position(|v| !v.is_finite()) {
                return Err(file_err(
                    path,
                    format!("tensor '{name}' holds {} at element {i}", data[i]),
                ));
            }
            w.insert(&name, Tensor::new(shape, data)?);
        }
    }
    Ok(w)
}

/// The metadata entry of the files the engine writes that holds each tensor's CRC-32 (of
/// its little-endian bytes), as a JSON object of name to 8 hex digits: a bit flipped on
/// disk or in a copy is caught by name when the file is read back.
pub const CHECKSUMS: &str = "vgg.crc32";

fn crc32(bytes: &[u8]) -> String {
    format!("{:08x}", crc32fast::hash(bytes))
}

/// The checksums a file's header records, if any.
fn checksums(path: &Path, bytes: &[u8]) -> Result<Option<HashMap<String, String>>> {
    let (_, meta) = SafeTensors::read_metadata(bytes)
        .map_err(|e| file_err(path, format!("not a valid safetensors file: {e}")))?;
    let Some(text) = meta.metadata().as_ref().and_then(|m| m.get(CHECKSUMS)) else {
        return Ok(None);
    };
    serde_json::from_str(text)
        .map(Some)
        .map_err(|e| file_err(path, format!("metadata {CHECKSUMS}: {e}")))
}

/// Checks one tensor's bytes against the file's recorded checksum, where there is one.
fn verify(
    path: &Path,
    sums: &Option<HashMap<String, String>>,
    name: &str,
    data: &[u8],
) -> Result<()> {
    match sums.as_ref().and_then(|s| s.get(name)) {
        Some(want) if *want != crc32(data) => Err(file_err(
            path,
            format!(
                "tensor '{name}' does not match its recorded checksum ({CHECKSUMS}): the file \
                 is corrupted"
            ),
        )),
        _ => Ok(()),
    }
}

/// Writes tensors as f32 safetensors, with optional string metadata and each tensor's
/// checksum ([`CHECKSUMS`]), atomically.
pub fn save_safetensors(
    path: &Path,
    tensors: &[(&str, &Tensor)],
    metadata: Option<HashMap<String, String>>,
) -> Result<()> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, t)| t.data.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, t), b)| {
            TensorView::new(Dtype::F32, t.shape.clone(), b)
                .map(|v| (name.to_string(), v))
                .map_err(|e| file_err(path, format!("tensor '{name}': {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let sums: HashMap<&str, String> = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, _), b)| (*name, crc32(b)))
        .collect();
    let mut metadata = metadata.unwrap_or_default();
    let sums = serde_json::to_string(&sums)
        .map_err(|e| file_err(path, format!("cannot encode checksums: {e}")))?;
    metadata.insert(CHECKSUMS.into(), sums);
    // safetensors' own map type (hashbrown's, built without std).
    let out = safetensors::serialize(views, Some(metadata.into_iter().collect()))
        .map_err(|e| file_err(path, format!("cannot encode safetensors: {e}")))?;
    super::write_atomically(path, &out)
}

impl Weights {
    /// Saves every tensor as f32 safetensors.
    pub fn save(&self, path: &Path) -> Result<()> {
        self.save_with(path, None)
    }

    /// Saves every tensor as f32 safetensors, with a model card in the metadata.
    pub fn save_with(&self, path: &Path, card: Option<&Card>) -> Result<()> {
        let list: Vec<(&str, &Tensor)> = self.iter().map(|(n, t)| (n.as_str(), t)).collect();
        save_safetensors(path, &list, card.map(Card::to_metadata))
    }
}

/// The metadata of a safetensors file, from its header alone (at most safetensors' own
/// 100 MB header limit is read, whatever the file's size).
pub fn read_metadata(path: &Path) -> Result<HashMap<String, String>> {
    use std::io::Read;
    super::regular_size(path)?;
    let mut f =
        std::fs::File::open(path).map_err(|e| file_err(path, format!("cannot read: {e}")))?;
    let mut len = [0u8; 8];
    f.read_exact(&mut len)
        .map_err(|_| file_err(path, "not a safetensors file (shorter than its header)"))?;
    if is_pth(&len) || has_onnx_extension(path) {
        // torch.save and ONNX files have no safetensors metadata, so no card.
        return Ok(HashMap::new());
    }
    let n = u64::from_le_bytes(len);
    if n > HEADER_BYTES {
        return Err(file_err(
            path,
            format!("not a valid safetensors file: a {n}-byte header (the format allows {HEADER_BYTES})"),
        ));
    }
    let mut header = Vec::new();
    f.take(n)
        .read_to_end(&mut header)
        .map_err(|e| file_err(path, format!("cannot read: {e}")))?;
    let v: serde_json::Value = serde_json::from_slice(&header)
        .map_err(|e| file_err(path, format!("not a valid safetensors file: {e}")))?;
    Ok(v.get("__metadata__")
        .and_then(|m| m.as_object())
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default())
}

/// A weights file opened for its card and then its tensors, read from disk once: a
/// `torch.save` or ONNX file is parsed whole for its card (its tensors or graph give the
/// model), and those tensors are kept for [`Opened::load`] instead of parsing it again;
/// a safetensors card comes from the header alone and the tensors load afterwards.
pub struct Opened {
    path: std::path::PathBuf,
    card: Option<Card>,
    parsed: Option<Weights>,
    /// A safetensors file's bytes, where it was opened from them ([`Opened::from_bytes`]).
    bytes: Option<Vec<u8>>,
}

impl Opened {
    pub fn open(path: &Path) -> Result<Opened> {
        if has_onnx_extension(path) || is_pth_or_onnx(path)? {
            let bytes = super::read_file(path, MAX_WEIGHTS_FILE_BYTES, "a weights file")?;
            return Opened::from_bytes(bytes, path);
        }
        let meta = read_metadata(path)?;
        Ok(Opened {
            path: path.to_path_buf(),
            card: Card::from_metadata(&meta).map_err(|e| file_err(path, e))?,
            parsed: None,
            bytes: None,
        })
    }

    /// A weights file's bytes (as a browser page is handed them), `path` its name in errors:
    /// safetensors, `torch.save` or ONNX, told apart by content as [`Opened::open`] does.
    pub fn from_bytes(bytes: Vec<u8>, path: &Path) -> Result<Opened> {
        let at = path.to_path_buf();
        if is_pth(&bytes) {
            let all = super::pth::read_pth(&bytes, path)?;
            let tensors: Vec<(String, Vec<usize>)> = all
                .iter()
                .map(|(n, t)| (n.clone(), t.shape.clone()))
                .collect();
            let card = Model::matching(&tensors)
                .map(|m| foreign_card(&m, crate::model::card::Preset::Torchvision))
                .transpose()?;
            return Ok(Opened {
                path: at,
                card,
                parsed: Some(all),
                bytes: None,
            });
        }
        if is_onnx_file(path, &bytes) {
            let m = super::onnx::read_onnx(&bytes, path)?;
            return Ok(Opened {
                path: at,
                card: Some(onnx_card(&m)?),
                parsed: Some(m.weights),
                bytes: None,
            });
        }
        let (_, meta) = SafeTensors::read_metadata(&bytes)
            .map_err(|e| file_err(path, format!("not a valid safetensors file: {e}")))?;
        let meta: HashMap<String, String> = meta
            .metadata()
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(Opened {
            path: at,
            card: Card::from_metadata(&meta).map_err(|e| file_err(path, e))?,
            parsed: None,
            bytes: Some(bytes),
        })
    }

    /// The model card the file carries or implies (see [`read_card`]).
    pub fn card(&self) -> Option<&Card> {
        self.card.as_ref()
    }

    /// Every tensor of the file, as [`read_safetensors`] gives them.
    pub fn all(self) -> Result<Weights> {
        match (self.parsed, self.bytes) {
            (Some(all), _) => Ok(all),
            (None, Some(bytes)) => read_safetensors_bytes(&bytes, &self.path),
            (None, None) => read_safetensors(&self.path),
        }
    }

    /// The tensors `model` needs, checked as [`load_weights`] checks them.
    pub fn load(self, model: &Model) -> Result<Weights> {
        match self.parsed {
            Some(mut all) => pick(&self.path, model, |name| {
                Ok(all.remove(name).map(|t| (t.shape, t.data)))
            }),
            None => match &self.bytes {
                Some(bytes) => load_weights_bytes(bytes, &self.path, model),
                None => load_weights(&self.path, model),
            },
        }
    }
}

/// The model card a weights file carries, if any (see [`Card`]). A `torch.save` file
/// carries none; for one whose tensors are exactly a built-in VGG's (torchvision's state
/// dicts), the card is that model with torchvision's preprocessing and, for 1000 classes,
/// ImageNet's class names. That reads the whole file, where a safetensors card is read
/// from the header alone.
pub fn read_card(path: &Path) -> Result<Option<Card>> {
    Ok(Opened::open(path)?.card)
}

/// The card of a model read from a file that has none (a state dict or an ONNX graph):
/// the preset's preprocessing at the model's input size (resized by 256/224 first, as
/// torchvision and Keras' ImageNet models are evaluated), ImageNet's class names for 1000
/// classes, else "class i".
fn foreign_card(model: &Model, preset: crate::model::card::Preset) -> Result<Card> {
    let classes = match model.classes() {
        1000 => super::labels::imagenet(),
        n => (0..n).map(|i| format!("class {i}")).collect(),
    };
    let [_, h, w] = model.input_dims();
    let crop = h.min(w) as u32;
    let pre = crate::model::card::Preprocessing {
        preset,
        resize: crop * 256 / 224,
        crop,
    };
    Card::new(model, pre, classes)
}

/// The card an ONNX graph implies: its model, and Caffe's preprocessing for an NHWC input
/// (Keras' VGGs through tf2onnx), torchvision's otherwise.
pub fn onnx_card(m: &super::onnx::OnnxModel) -> Result<Card> {
    foreign_card(&m.model, m.preset)
}

/// Whether `path` ends in .onnx, or its bytes look like an ONNX model (files saved under
/// other names).
fn is_onnx_file(path: &Path, bytes: &[u8]) -> bool {
    has_onnx_extension(path) || super::onnx::is_onnx(bytes)
}

fn has_onnx_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
}

/// Whether the regular file at `path` starts as a `torch.save` file or an ONNX model does
/// (and not as safetensors, whose first 8 bytes are a header length within the file),
/// from its first 8 bytes and its size.
fn is_pth_or_onnx(path: &Path) -> Result<bool> {
    use std::io::Read;
    let size = super::regular_size(path)?;
    let f = std::fs::File::open(path).map_err(|e| file_err(path, format!("cannot read: {e}")))?;
    let mut h = Vec::with_capacity(8);
    f.take(8)
        .read_to_end(&mut h)
        .map_err(|e| file_err(path, format!("cannot read: {e}")))?;
    Ok(is_pth(&h) || super::onnx::is_onnx_start(&h, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (card, every tensor) of a file opened from disk and from its bytes.
    fn both(path: &Path) -> [(Option<HashMap<String, String>>, Weights); 2] {
        let bytes = std::fs::read(path).unwrap();
        [
            Opened::open(path).unwrap(),
            Opened::from_bytes(bytes, path).unwrap(),
        ]
        .map(|o| (o.card().map(Card::to_metadata), o.all().unwrap()))
    }

    #[test]
    fn a_file_opened_from_its_bytes_gives_what_opening_it_gives() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        // A safetensors file with a card, as the engine writes one (tiny_a's, from the
        // card its ONNX graph implies).
        let onnx = Opened::open(&fixtures.join("tiny_a.onnx")).unwrap();
        let card = onnx.card().cloned().unwrap();
        let model = card.model().unwrap();
        let dir = std::env::temp_dir().join(format!("vgg-opened-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("w.safetensors");
        let weights = onnx.load(&model).unwrap();
        weights.save_with(&path, Some(&card)).unwrap();
        let [disk, bytes] = both(&path);
        assert_eq!(disk.0, Some(card.to_metadata()));
        assert_eq!(disk, bytes);
        let loaded = Opened::from_bytes(std::fs::read(&path).unwrap(), &path)
            .and_then(|o| o.load(&model))
            .unwrap();
        assert_eq!(loaded, weights);
        std::fs::remove_dir_all(&dir).ok();
        // torch.save and ONNX files: their card comes from their tensors or graph.
        for name in ["tiny_a.pth", "tiny_a.onnx", "tiny_a_keras.onnx"] {
            let [disk, bytes] = both(&fixtures.join(name));
            assert_eq!(disk, bytes, "{name}");
        }
    }
}
