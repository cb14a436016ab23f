use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::descriptor::Descriptor;
use crate::error::{Error, Result};
use crate::media_types;

/// An image manifest (OCI or Docker schema2; the two share a shape).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// An image index or Docker manifest list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// A parsed manifest-or-index, decided by media type (header or body) and shape.
#[allow(clippy::large_enum_variant)] // short-lived, one per parse
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ManifestKind {
    Image(Manifest),
    Index(Index),
}

impl ManifestKind {
    /// Parses manifest bytes. `content_type` is what the registry or descriptor said, if
    /// anything; the body's own `mediaType` wins when present. Schema1 is refused.
    pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<ManifestKind> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Probe {
            schema_version: Option<u32>,
            media_type: Option<String>,
            manifests: Option<serde_json::Value>,
            config: Option<serde_json::Value>,
        }
        let probe: Probe = serde_json::from_slice(bytes).map_err(|e| Error::json("manifest", e))?;
        let media_type = probe
            .media_type
            .clone()
            .or_else(|| content_type.map(|c| c.split(';').next().unwrap_or(c).trim().to_string()));
        if probe.schema_version == Some(1)
            || matches!(
                media_type.as_deref(),
                Some(media_types::DOCKER_MANIFEST_V1 | media_types::DOCKER_MANIFEST_V1_SIGNED)
            )
        {
            return Err(Error::UnsupportedMediaType(
                "schema1 manifest (application/vnd.docker.distribution.manifest.v1+json); \
                 it is deprecated and not supported"
                    .to_string(),
            ));
        }
        let is_index = match media_type.as_deref() {
            Some(t) if media_types::is_index(t) => true,
            Some(t) if media_types::is_manifest(t) => false,
            _ => probe.manifests.is_some() && probe.config.is_none(),
        };
        if is_index {
            serde_json::from_slice(bytes)
                .map(ManifestKind::Index)
                .map_err(|e| Error::json("image index", e))
        } else {
            serde_json::from_slice(bytes)
                .map(ManifestKind::Image)
                .map_err(|e| Error::json("image manifest", e))
        }
    }
}

impl Manifest {
    /// A new OCI manifest.
    pub fn oci(config: Descriptor, layers: Vec<Descriptor>) -> Manifest {
        Manifest {
            schema_version: 2,
            media_type: Some(media_types::OCI_MANIFEST.to_string()),
            artifact_type: None,
            config,
            layers,
            subject: None,
            annotations: None,
        }
    }

    /// The media type, defaulting to OCI when the body does not say.
    pub fn media_type(&self) -> &str {
        self.media_type
            .as_deref()
            .unwrap_or(media_types::OCI_MANIFEST)
    }

    /// Serialized bytes, the canonical form kiln writes (compact JSON).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("manifest serializes")
    }
}

impl Index {
    pub fn oci(manifests: Vec<Descriptor>) -> Index {
        Index {
            schema_version: 2,
            media_type: Some(media_types::OCI_INDEX.to_string()),
            artifact_type: None,
            manifests,
            annotations: None,
        }
    }

    pub fn media_type(&self) -> &str {
        self.media_type.as_deref().unwrap_or(media_types::OCI_INDEX)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("index serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema1_is_refused() {
        let err = ManifestKind::parse(
            br#"{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}"#,
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("schema1"));
    }

    #[test]
    fn index_is_detected_without_media_type() {
        let m = ManifestKind::parse(br#"{"schemaVersion":2,"manifests":[]}"#, None).unwrap();
        assert!(matches!(m, ManifestKind::Index(_)));
    }
}
