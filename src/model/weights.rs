//! Host-side tensors and a model's named weights (torchvision's key names), with the two
//! initialisations the engine offers.

use super::{Model, Op};
use crate::error::{Error, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// A dense f32 tensor in row-major (NCHW) order.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Tensor {
    /// Checks that `data` fills `shape`.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Tensor> {
        // Checked: a file's shape whose product wraps (on wasm32's 32-bit usize, or past
        // 2^64) could otherwise equal the data's length and pass.
        let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if n != Some(data.len()) {
            let need = n.map_or("more than this machine can address".into(), |n| {
                n.to_string()
            });
            return Err(Error::Shape(format!(
                "tensor of shape {shape:?} needs {need} elements, got {}",
                data.len()
            )));
        }
        Ok(Tensor { shape, data })
    }
    pub fn zeros(shape: Vec<usize>) -> Tensor {
        let n = shape.iter().product();
        Tensor {
            shape,
            data: vec![0.0; n],
        }
    }
    pub fn len(&self) -> usize {
        self.data.len()
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    /// Row `i` of the leading dimension (one image of a batch).
    pub fn row(&self, i: usize) -> &[f32] {
        let per = self.data.len() / self.shape.first().copied().unwrap_or(1).max(1);
        &self.data[i * per..(i + 1) * per]
    }
}

/// How fresh weights are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Init {
    /// The paper's: weights from N(0, 1e-2) (variance 1e-2), biases zero.
    Paper,
    /// torchvision's: Kaiming normal (fan-out, ReLU gain) for convs, N(0, 0.01) for FC
    /// layers, biases zero, batch norm as identity.
    Kaiming,
    /// Glorot and Bengio's uniform draw, which the paper's footnote says works as well as
    /// initialising from net A: U(-a, a) with a = sqrt(6 / (fan_in + fan_out)), biases
    /// zero, batch norm as identity.
    Glorot,
}

impl Init {
    /// The names `--init` takes: glorot, paper, kaiming.
    pub const NAMES: [&'static str; 3] = ["glorot", "paper", "kaiming"];

    pub fn named(name: &str) -> Option<Init> {
        match name {
            "glorot" => Some(Init::Glorot),
            "paper" => Some(Init::Paper),
            "kaiming" => Some(Init::Kaiming),
            _ => None,
        }
    }
}

/// Uniform samples in [-a, a).
fn uniform(rng: &mut ChaCha8Rng, n: usize, a: f64) -> Vec<f32> {
    (0..n)
        .map(|_| ((rng.random::<f64>() * 2.0 - 1.0) * a) as f32)
        .collect()
}

/// A model's weights by torchvision name (`features.0.weight`, `classifier.6.bias`, ...;
/// batch-norm layers add `running_mean` and `running_var`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Weights {
    tensors: BTreeMap<String, Tensor>,
}

/// One N(0, 1) sample by Box-Muller, so the initialisation and the colour augmentation
/// need no extra crate.
pub fn normal_sample(rng: &mut impl rand::Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn normal(rng: &mut ChaCha8Rng, n: usize, std: f64) -> Vec<f32> {
    (0..n).map(|_| (normal_sample(rng) * std) as f32).collect()
}

impl Weights {
    pub fn new() -> Weights {
        Weights::default()
    }

    /// Fresh weights for `model`, reproducible from `seed`.
    pub fn init(model: &Model, init: Init, seed: u64) -> Weights {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut w = Weights::new();
        for layer in model.layers() {
            let t = layer.tensors();
            match layer.op {
                Op::Conv { c_out, k, .. } => {
                    let n: usize = t[0].1.iter().product();
                    // [c_out, c_in, k, k]: fan in c_in k k, fan out c_out k k.
                    let fans = (n / c_out) as f64 + (c_out * k * k) as f64;
                    let data = match init {
                        Init::Paper => normal(&mut rng, n, 0.1),
                        Init::Kaiming => normal(&mut rng, n, (2.0 / (c_out * k * k) as f64).sqrt()),
                        Init::Glorot => uniform(&mut rng, n, (6.0 / fans).sqrt()),
                    };
                    w.insert_unchecked(&t[0].0, t[0].1.clone(), data);
                    w.insert_unchecked(&t[1].0, t[1].1.clone(), vec![0.0; c_out]);
                }
                Op::Linear { k, n } => {
                    let data = match init {
                        Init::Paper => normal(&mut rng, n * k, 0.1),
                        Init::Kaiming => normal(&mut rng, n * k, 0.01),
                        Init::Glorot => uniform(&mut rng, n * k, (6.0 / (n + k) as f64).sqrt()),
                    };
                    w.insert_unchecked(&t[0].0, t[0].1.clone(), data);
                    w.insert_unchecked(&t[1].0, t[1].1.clone(), vec![0.0; n]);
                }
                Op::BatchNorm { c } => {
                    for (i, v) in [1.0, 0.0, 0.0, 1.0].into_iter().enumerate() {
                        w.insert_unchecked(&t[i].0, t[i].1.clone(), vec![v; c]);
                    }
                }
                _ => {}
            }
        }
        w
    }

    fn insert_unchecked(&mut self, name: &str, shape: Vec<usize>, data: Vec<f32>) {
        self.tensors
            .insert(name.to_string(), Tensor { shape, data });
    }

    pub fn insert(&mut self, name: &str, tensor: Tensor) {
        self.tensors.insert(name.to_string(), tensor);
    }
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.get(name)
    }
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Tensor> {
        self.tensors.get_mut(name)
    }
    pub fn remove(&mut self, name: &str) -> Option<Tensor> {
        self.tensors.remove(name)
    }
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Tensor)> {
        self.tensors.iter()
    }
    pub fn len(&self) -> usize {
        self.tensors.len()
    }
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// The tensor `name`, checked against the shape the model expects.
    pub fn expect(&self, name: &str, shape: &[usize]) -> Result<&Tensor> {
        let t = self.get(name).ok_or_else(|| {
            Error::Shape(format!("weights have no tensor '{name}' (shape {shape:?})"))
        })?;
        if t.shape != shape {
            return Err(Error::Shape(format!(
                "tensor '{name}': expected shape {shape:?}, found {:?}",
                t.shape
            )));
        }
        Ok(t)
    }

    /// Checks that every tensor `model` needs is present with its shape and finite values.
    pub fn validate(&self, model: &Model) -> Result<()> {
        for layer in model.layers() {
            for (name, shape) in layer.tensors() {
                let t = self.expect(&name, &shape)?;
                if let Some(i) = t.data.iter().position(|v| !v.is_finite()) {
                    return Err(Error::Shape(format!(
                        "tensor '{name}' holds a non-finite value ({}) at element {i}",
                        t.data[i]
                    )));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shape_whose_product_wraps_is_refused() {
        // 2^33 * 2^31 wraps to 0 in a 64-bit usize (and sooner in wasm32's): unchecked, it
        // matched the empty data.
        let e = Tensor::new(vec![1 << 33, 1 << 31], Vec::new());
        assert!(e.is_err_and(|e| e.to_string().contains("more than")));
        assert!(Tensor::new(vec![3, 0, 5], Vec::new()).is_ok());
    }

    #[test]
    fn init_is_seeded_and_scaled() {
        let m = Model::vgg11().with_hidden(&[256]).unwrap();
        let a = Weights::init(&m, Init::Paper, 7);
        assert_eq!(a, Weights::init(&m, Init::Paper, 7));
        assert_ne!(a, Weights::init(&m, Init::Paper, 8));
        let std = |t: &Tensor| {
            let n = t.len() as f64;
            (t.data.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / n).sqrt()
        };
        // The paper: variance 1e-2 (std 0.1), zero biases.
        let w = a.get("features.3.weight").unwrap();
        assert!((std(w) - 0.1).abs() < 0.002, "{}", std(w));
        assert!(a
            .get("features.3.bias")
            .unwrap()
            .data
            .iter()
            .all(|v| *v == 0.0));
        // torchvision's Kaiming: std sqrt(2 / (c_out * 9)) for conv (features.3 is 64 -> 128),
        let k = Weights::init(&m, Init::Kaiming, 7);
        let w = k.get("features.3.weight").unwrap();
        let want = (2.0 / (128.0 * 9.0f64)).sqrt();
        assert!((std(w) / want - 1.0).abs() < 0.02, "{} vs {want}", std(w));
        // and N(0, 0.01) for FC layers.
        let fc = k.get("classifier.0.weight").unwrap();
        assert!((std(fc) / 0.01 - 1.0).abs() < 0.01);
        assert!(k.validate(&m).is_ok());
    }

    /// Glorot's uniform draw: within +-sqrt(6 / (fan_in + fan_out)), its standard deviation
    /// that bound over sqrt(3), zero biases.
    #[test]
    fn glorot_is_uniform_in_its_bound() {
        let m = Model::vgg11().with_hidden(&[256]).unwrap();
        let g = Weights::init(&m, Init::Glorot, 7);
        assert!(g.validate(&m).is_ok());
        let check = |name: &str, fans: f64| {
            let t = g.get(name).unwrap();
            let a = (6.0 / fans).sqrt();
            assert!(t.data.iter().all(|v| (*v as f64).abs() <= a), "{name}");
            let n = t.len() as f64;
            let std = (t.data.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / n).sqrt();
            let want = a / 3f64.sqrt();
            assert!((std / want - 1.0).abs() < 0.02, "{name}: {std} vs {want}");
        };
        // features.3: 64 -> 128, 3x3; classifier.0: 25088 -> 256.
        check("features.3.weight", (64.0 + 128.0) * 9.0);
        check("classifier.0.weight", 25088.0 + 256.0);
        assert!(g
            .get("classifier.0.bias")
            .unwrap()
            .data
            .iter()
            .all(|v| *v == 0.0));
        assert_eq!(
            Init::NAMES.map(Init::named),
            [Some(Init::Glorot), Some(Init::Paper), Some(Init::Kaiming)]
        );
    }
}
