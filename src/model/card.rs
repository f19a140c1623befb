//! What a weights file says about itself, in its safetensors metadata: the architecture
//! (the whole [`Config`], enough to rebuild the [`Model`]), the preprocessing its inputs
//! need, and the class names. The engine writes one into every file it saves; `vgg infer`
//! reads it, so a trained model needs no flags to run.

use super::{Config, Model};
use crate::error::{Error, Result};
use std::collections::HashMap;

/// How pixels become a network's input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// torchvision's: RGB scaled to [0, 1], ImageNet's mean and std (PyTorch's VGGs).
    Torchvision,
    /// Caffe's and Keras' VGG16: BGR on 0..255 minus ImageNet's mean pixel.
    Caffe,
    /// RGB (or its gray mean, for 1 channel) scaled to [0, 1]: what this engine's trainer
    /// feeds the networks it trains.
    Unit,
}

impl Preset {
    pub const ALL: [Preset; 3] = [Preset::Torchvision, Preset::Caffe, Preset::Unit];

    pub fn name(self) -> &'static str {
        match self {
            Preset::Torchvision => "torchvision",
            Preset::Caffe => "caffe",
            Preset::Unit => "unit",
        }
    }

    pub fn parse(s: &str) -> Result<Preset> {
        Preset::ALL
            .into_iter()
            .find(|p| p.name() == s.trim())
            .ok_or_else(|| Error::InvalidOption {
                option: "--preprocess".into(),
                message: format!("'{s}': use torchvision, caffe or unit"),
            })
    }
}

/// The preprocessing a model was trained with: a preset, the shorter side images are
/// resized to and the side of the center crop (the network's input).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Preprocessing {
    pub preset: Preset,
    pub resize: u32,
    pub crop: u32,
}

/// AlexNet's colour augmentation, as the paper used it: the principal components of the
/// training set's pixel values (one vector of `c` channel values per pixel), along which
/// each training image is shifted by a random amount (`io::scale` computes and applies it).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ColourPca {
    /// Eigenvalues of the channels' covariance, largest first.
    pub values: Vec<f32>,
    /// The unit eigenvectors, `vectors[i]` for `values[i]`.
    pub vectors: Vec<Vec<f32>>,
}

impl ColourPca {
    /// Checks a PCA (from a file, say) fits images of `c` channels.
    pub fn validate(&self, c: usize) -> Result<()> {
        let ok = self.values.len() == c
            && self.vectors.len() == c
            && self.vectors.iter().all(|v| v.len() == c)
            && self
                .values
                .iter()
                .chain(self.vectors.iter().flatten())
                .all(|v| v.is_finite());
        match ok {
            true => Ok(()),
            false => Err(Error::Shape(format!(
                "a colour PCA of {} components does not fit {c}-channel images",
                self.values.len()
            ))),
        }
    }
}

/// The scales a model was trained at (the paper's S: `min == max` for a fixed scale, else
/// the jittering range) and its colour PCA, recorded so evaluation picks the paper's test
/// scales without flags.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainingScale {
    pub min: u32,
    pub max: u32,
    pub colour: Option<ColourPca>,
}

/// A model's self-description.
#[derive(Clone, Debug, PartialEq)]
pub struct Card {
    pub config: Config,
    pub preprocessing: Preprocessing,
    /// One per class, in class order.
    pub classes: Vec<String>,
    /// Where the model was trained with the paper's scale protocol.
    pub scale: Option<TrainingScale>,
}

const MODEL: &str = "vgg.model";
const PREPROCESSING: &str = "vgg.preprocessing";
const CLASSES: &str = "vgg.classes";
const SCALE: &str = "vgg.scale";

impl Card {
    /// The card of `model` with this preprocessing and these class names (one per class).
    pub fn new(model: &Model, preprocessing: Preprocessing, classes: Vec<String>) -> Result<Card> {
        if classes.len() != model.classes() {
            return Err(Error::InvalidOption {
                option: "class names".into(),
                message: format!(
                    "{} names for a model of {} classes",
                    classes.len(),
                    model.classes()
                ),
            });
        }
        Ok(Card {
            config: model.config().clone(),
            preprocessing,
            classes,
            scale: None,
        })
    }

    /// The safetensors metadata entries that hold the card (JSON values).
    pub fn to_metadata(&self) -> HashMap<String, String> {
        let json = |v: serde_json::Result<String>| v.unwrap_or_default();
        [
            (MODEL, json(serde_json::to_string(&self.config))),
            (
                PREPROCESSING,
                json(serde_json::to_string(&self.preprocessing)),
            ),
            (CLASSES, json(serde_json::to_string(&self.classes))),
        ]
        .into_iter()
        .chain(
            self.scale
                .as_ref()
                .map(|s| (SCALE, json(serde_json::to_string(s)))),
        )
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// The card in a file's metadata: `None` where the file has none (torchvision's, or
    /// written before cards existed); an error naming the entry where one is malformed or
    /// its model is invalid.
    pub fn from_metadata(
        meta: &HashMap<String, String>,
    ) -> std::result::Result<Option<Card>, String> {
        let Some(model) = meta.get(MODEL) else {
            return Ok(None);
        };
        let bad = |k: &str, e: &dyn std::fmt::Display| format!("metadata {k}: {e}");
        let config: Config = serde_json::from_str(model).map_err(|e| bad(MODEL, &e))?;
        let m = Model::new(config.clone()).map_err(|e| bad(MODEL, &e))?;
        let preprocessing: Preprocessing = meta
            .get(PREPROCESSING)
            .map(|p| serde_json::from_str(p).map_err(|e| bad(PREPROCESSING, &e)))
            .transpose()?
            .ok_or_else(|| bad(PREPROCESSING, &"missing"))?;
        let classes: Vec<String> = meta
            .get(CLASSES)
            .map(|c| serde_json::from_str(c).map_err(|e| bad(CLASSES, &e)))
            .transpose()?
            .unwrap_or_else(|| (0..m.classes()).map(|i| format!("class {i}")).collect());
        if classes.len() != m.classes() {
            return Err(bad(
                CLASSES,
                &format!("{} names for {} classes", classes.len(), m.classes()),
            ));
        }
        let scale: Option<TrainingScale> = meta
            .get(SCALE)
            .map(|p| serde_json::from_str(p).map_err(|e| bad(SCALE, &e)))
            .transpose()?;
        if let Some(s) = &scale {
            let c = m.config().in_channels;
            if s.min == 0 || s.min > s.max {
                return Err(bad(SCALE, &format!("scales {}..{}", s.min, s.max)));
            }
            if let Some(p) = &s.colour {
                p.validate(c).map_err(|e| bad(SCALE, &e))?;
            }
        }
        Ok(Some(Card {
            config,
            preprocessing,
            classes,
            scale,
        }))
    }

    pub fn model(&self) -> Result<Model> {
        Model::new(self.config.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_card_survives_its_metadata() {
        let m = Model::parse("8,M,16:1,L,M")
            .and_then(|m| m.with_input(1, 20, 24))
            .and_then(|m| m.with_batch_norm(true))
            .and_then(|m| m.with_hidden(&[7]))
            .and_then(|m| m.with_classes(2))
            .unwrap();
        let pre = Preprocessing {
            preset: Preset::Unit,
            resize: 24,
            crop: 20,
        };
        let card = Card::new(&m, pre, vec!["cats".into(), "dogs".into()]).unwrap();
        let back = Card::from_metadata(&card.to_metadata()).unwrap().unwrap();
        assert_eq!(back, card);
        assert_eq!(back.model().unwrap(), m);
        assert!(Card::from_metadata(&HashMap::new()).unwrap().is_none());
        let mut broken = card.to_metadata();
        broken.insert(CLASSES.into(), "[\"one\"]".into());
        assert!(Card::from_metadata(&broken)
            .unwrap_err()
            .contains("vgg.classes"));
        assert!(Card::new(&m, pre, vec![]).is_err());
        // The training scale and colour PCA travel too; a PCA of the wrong channel count
        // is refused by the entry's name.
        let scaled = Card {
            scale: Some(TrainingScale {
                min: 24,
                max: 40,
                colour: Some(ColourPca {
                    values: vec![0.25],
                    vectors: vec![vec![1.0]],
                }),
            }),
            ..card.clone()
        };
        let meta = scaled.to_metadata();
        assert_eq!(Card::from_metadata(&meta).unwrap().unwrap(), scaled);
        let mut broken = meta.clone();
        let three = r#"{"min":24,"max":40,"colour":{"values":[1,2,3],"vectors":[[1,0,0],[0,1,0],[0,0,1]]}}"#;
        broken.insert(SCALE.into(), three.into());
        assert!(Card::from_metadata(&broken)
            .unwrap_err()
            .contains("vgg.scale"));
        broken.insert(SCALE.into(), r#"{"min":40,"max":24,"colour":null}"#.into());
        assert!(Card::from_metadata(&broken)
            .unwrap_err()
            .contains("vgg.scale"));
    }
}
