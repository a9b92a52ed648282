//! The TrainingTemplates that exist now, and which one offers a model type.
//!
//! Read from the API on every call, so that `kubectl apply` of a template
//! takes effect for the next webhook without a restart.

use std::collections::BTreeMap;

use kube::{Api, Client, ResourceExt, api::ListParams};

use crate::resources::TrainingTemplate;

/// The templates in the watched namespaces.
#[derive(Clone)]
pub struct Catalog {
    client: Client,
    scopes: Vec<Option<String>>,
}

/// Result of resolving a model type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Exactly one template offers it.
    Found {
        /// Namespace of the template, where the run goes.
        namespace: String,
        /// Name of the template.
        template: String,
    },
    /// No template offers it.
    Unknown {
        /// Model types that are offered, sorted.
        known: Vec<String>,
    },
    /// More than one template offers it, a configuration error.
    Ambiguous {
        /// The templates offering it, as `namespace/name`.
        templates: Vec<String>,
    },
}

impl Catalog {
    /// Creates a catalog over the given namespaces (`None` for all).
    pub fn new(client: Client, scopes: Vec<Option<String>>) -> Self {
        Self { client, scopes }
    }

    /// Lists every template in the watched namespaces.
    pub async fn templates(&self) -> Result<Vec<TrainingTemplate>, kube::Error> {
        let mut templates = Vec::new();
        for scope in &self.scopes {
            let api: Api<TrainingTemplate> = match scope {
                Some(namespace) => Api::namespaced(self.client.clone(), namespace),
                None => Api::all(self.client.clone()),
            };
            templates.extend(api.list(&ListParams::default()).await?.items);
        }
        Ok(templates)
    }

    /// Lists the offered model types, each with the templates offering it.
    pub async fn model_types(&self) -> Result<BTreeMap<String, Vec<String>>, kube::Error> {
        Ok(offers(&self.templates().await?))
    }

    /// Finds the template that offers `model_type`.
    pub async fn resolve(&self, model_type: &str) -> Result<Resolution, kube::Error> {
        Ok(resolve_in(&offers(&self.templates().await?), model_type))
    }
}

/// Maps each model type to the templates offering it, as `namespace/name`.
pub fn offers(templates: &[TrainingTemplate]) -> BTreeMap<String, Vec<String>> {
    let mut offers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for template in templates {
        let qualified = format!(
            "{}/{}",
            template.namespace().unwrap_or_default(),
            template.name_any()
        );
        offers
            .entry(template.model_type())
            .or_default()
            .push(qualified);
    }
    for templates in offers.values_mut() {
        templates.sort();
    }
    offers
}

/// Resolves `model_type` against the offers of [`offers`].
pub fn resolve_in(offers: &BTreeMap<String, Vec<String>>, model_type: &str) -> Resolution {
    match offers.get(model_type).map(Vec::as_slice) {
        None | Some([]) => Resolution::Unknown {
            known: offers.keys().cloned().collect(),
        },
        Some([only]) => {
            let (namespace, template) = only.split_once('/').expect("offers hold namespace/name");
            Resolution::Found {
                namespace: namespace.to_owned(),
                template: template.to_owned(),
            }
        }
        Some(many) => Resolution::Ambiguous {
            templates: many.to_vec(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::training_template::{JobTemplate, TrainingTemplateSpec};

    fn template(namespace: &str, name: &str, model_type: Option<&str>) -> TrainingTemplate {
        let mut template = TrainingTemplate::new(
            name,
            TrainingTemplateSpec {
                model_type: model_type.map(str::to_owned),
                job_template: JobTemplate::default(),
                training_container: None,
                init_container_stages: Vec::new(),
                labelbox_api_key_secret: None,
            },
        );
        template.metadata.namespace = Some(namespace.to_owned());
        template
    }

    #[test]
    fn model_type_defaults_to_name() {
        let offers = offers(&[template("ml", "ner", None)]);
        assert_eq!(offers.keys().collect::<Vec<_>>(), ["ner"]);
    }

    #[test]
    fn resolves_single_offer() {
        let offers = offers(&[template("ml", "boxes", Some("bounding_box"))]);
        let expected = Resolution::Found {
            namespace: "ml".into(),
            template: "boxes".into(),
        };
        assert_eq!(resolve_in(&offers, "bounding_box"), expected);
    }

    #[test]
    fn unknown_lists_known_types() {
        let offers = offers(&[
            template("ml", "b", Some("bounding_box")),
            template("ml", "ner", None),
        ]);
        let expected = Resolution::Unknown {
            known: vec!["bounding_box".into(), "ner".into()],
        };
        assert_eq!(resolve_in(&offers, "segmentation"), expected);
    }

    #[test]
    fn two_offers_are_ambiguous() {
        let offers = offers(&[
            template("b", "x", Some("ner")),
            template("a", "y", Some("ner")),
        ]);
        let expected = Resolution::Ambiguous {
            templates: vec!["a/y".into(), "b/x".into()],
        };
        assert_eq!(resolve_in(&offers, "ner"), expected);
    }
}
