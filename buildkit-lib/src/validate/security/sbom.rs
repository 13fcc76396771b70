//! CycloneDX SBOMs of a local image, made by trivy ([`TrivySbom`]) and read into typed
//! components (`Sbom`); the step returns the Python packages ([`Component`]s). Listing
//! packages needs no database, so this works offline.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use serde_json::Value;

use super::trivy::{TrivyBin, TrivySource};
#[cfg(doc)]
use super::Trivy;
use crate::cmd::{Cmd, Runner};
use crate::files::write_atomic;
use crate::plan::Step;
use crate::rows::{from_value, non_empty, nullable};

/// One component an SBOM lists: a Python package of the image, as [`TrivySbom`] returns
/// them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Component {
    /// CycloneDX's type: `library`, `operating-system`, `application`...
    pub(crate) kind: String,
    /// The name, as the package manager spells it (`Flask`).
    pub name: String,
    /// The version, when known.
    pub version: Option<String>,
    /// The package URL (`pkg:pypi/flask@3.0.3`), when known.
    pub(crate) purl: Option<String>,
}

/// A CycloneDX SBOM of an image: the document itself is the file [`TrivySbom::output`]
/// writes; its Python packages are what [`TrivySbom`] returns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Sbom {
    /// The image it describes.
    pub(crate) image: String,
    /// CycloneDX's specification version (`1.6`).
    pub(crate) spec_version: String,
    /// Every component listed.
    pub(crate) components: Vec<Component>,
    /// The document as trivy wrote it.
    pub(crate) json: String,
}

impl Sbom {
    /// Reads a CycloneDX JSON document.
    pub(crate) fn parse(json: &str) -> Result<Sbom> {
        let root: Value = serde_json::from_str(json.trim()).context("not JSON")?;
        // The format first: another kind of document has other fields.
        let format: FormatRow = from_value(&root, "the document")?;
        if format.bom_format.as_deref() != Some("CycloneDX") {
            bail!("not a CycloneDX document (no `bomFormat: CycloneDX`)");
        }
        let bom: BomRow = from_value(&root, "the CycloneDX document")?;
        let components = bom
            .components
            .into_iter()
            .filter_map(|c| {
                Some(Component {
                    kind: non_empty(c.kind).unwrap_or_default(),
                    name: non_empty(c.name)?,
                    version: non_empty(c.version),
                    purl: non_empty(c.purl),
                })
            })
            .collect();
        Ok(Sbom {
            image: non_empty(bom.metadata.and_then(|m| m.component).and_then(|c| c.name))
                .unwrap_or_default(),
            spec_version: non_empty(bom.spec_version).unwrap_or_default(),
            components,
            json: json.to_string(),
        })
    }

    /// The Python packages listed (package URL `pkg:pypi/...`).
    pub(crate) fn python_packages(&self) -> Vec<&Component> {
        self.components
            .iter()
            .filter(|c| {
                c.purl
                    .as_deref()
                    .is_some_and(|p| p.starts_with("pkg:pypi/"))
            })
            .collect()
    }
}

/// Which kind of document this is.
#[derive(Debug, Deserialize)]
struct FormatRow {
    #[serde(rename = "bomFormat", default)]
    bom_format: Option<String>,
}

/// What the library reads of a CycloneDX document.
#[derive(Debug, Deserialize)]
struct BomRow {
    #[serde(rename = "specVersion", default)]
    spec_version: Option<String>,
    #[serde(default)]
    metadata: Option<BomMetadataRow>,
    #[serde(default, deserialize_with = "nullable")]
    components: Vec<ComponentRow>,
}

#[derive(Debug, Deserialize)]
struct BomMetadataRow {
    /// What the document describes (the image).
    #[serde(default)]
    component: Option<ComponentRow>,
}

/// A component; one without a name is left out.
#[derive(Debug, Deserialize)]
struct ComponentRow {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    purl: Option<String>,
}

/// `trivy image --format cyclonedx` of a local image (read from the engine, offline): the
/// image's Python packages, and the CycloneDX document when asked ([`TrivySbom::output`]).
/// Made from a trivy scan of the image ([`Trivy::sbom`](super::Trivy::sbom)), whose trivy
/// and timeout it shares.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct TrivySbom {
    /// The image, or the configuration path of a scan that has none (an error when run).
    image: Result<String, PathBuf>,
    output: Option<PathBuf>,
    timeout: Duration,
    trivy: TrivySource,
}

impl TrivySbom {
    /// The SBOM of `image` (`Err`: the path of a configuration scan), made by `trivy`.
    pub(crate) fn of(
        image: Result<String, PathBuf>,
        timeout: Duration,
        trivy: TrivySource,
    ) -> TrivySbom {
        TrivySbom {
            image,
            output: None,
            timeout,
            trivy,
        }
    }

    /// Also writes the document to `path` (atomically).
    pub fn output(mut self, path: impl Into<PathBuf>) -> TrivySbom {
        self.output = Some(path.into());
        self
    }

    /// The image, or the error of an SBOM made from a configuration scan.
    fn image(&self) -> Result<&str> {
        match &self.image {
            Ok(image) => Ok(image),
            Err(path) => bail!(
                "an SBOM lists the packages of an image, and a configuration scan of {} has \
                 none: make it from `Trivy::image(..).sbom()`",
                path.display()
            ),
        }
    }

    /// The command line.
    pub(crate) fn command(&self, bin: &TrivyBin, image: &str) -> Cmd {
        Cmd::new(bin.program().display().to_string())
            .args(["image", "--format", "cyclonedx", "--quiet", "--cache-dir"])
            .arg_path(bin.cache_dir())
            .arg("--timeout")
            .arg(format!("{}s", self.timeout.as_secs().max(1)))
            .args([
                "--image-src",
                "docker",
                "--skip-db-update",
                "--skip-java-db-update",
            ])
            .arg(image)
            .timeout(self.timeout + Duration::from_secs(30))
    }

    /// A document of this image listing nothing: what a dry run answers for trivy.
    fn empty_document(image: &str) -> String {
        serde_json::json!({
            "bomFormat": "CycloneDX",
            "specVersion": "1.6",
            "metadata": { "component": { "name": image } },
            "components": [],
        })
        .to_string()
    }
}

impl Step for TrivySbom {
    type Output = Vec<Component>;

    /// Makes the SBOM (with the trivy of the scan it was made from: [`Trivy::bin`], or else
    /// the one installed from [`Trivy::tools`]), checks it describes this image, writes it when asked
    /// ([`TrivySbom::output`]), and returns the Python packages it lists (package URL
    /// `pkg:pypi/...`), in its order. Its plan is this body recorded (a dry run answers a
    /// document listing nothing).
    fn run(&self, runner: &Runner) -> Result<Vec<Component>> {
        let image = self.image()?;
        let context = || format!("SBOM of {image}");
        let bin = self.trivy.bin(runner).with_context(context)?;
        let out = runner
            .capture(
                &self
                    .command(&bin, image)
                    .dry_answer(TrivySbom::empty_document(image)),
            )
            .with_context(context)?;
        let sbom = Sbom::parse(&out.stdout)
            .context("cannot read trivy's CycloneDX output")
            .with_context(context)?;
        if sbom.image != image {
            bail!(
                "SBOM of {image}: trivy's document describes `{}`, not this image",
                sbom.image
            );
        }
        if let Some(path) = &self.output {
            write_atomic(runner, path, sbom.json.as_bytes()).with_context(context)?;
        }
        Ok(sbom.python_packages().into_iter().cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Trivy;
    use super::*;

    #[test]
    fn command_line_and_parse() {
        let bin = TrivyBin::at("/t/trivy", "/p/target/buildkit/trivy");
        assert_eq!(
            Trivy::image("app:1")
                .sbom()
                .command(&bin, "app:1")
                .to_string(),
            "/t/trivy image --format cyclonedx --quiet --cache-dir /p/target/buildkit/trivy \
             --timeout 900s --image-src docker --skip-db-update --skip-java-db-update app:1"
        );
        let sbom = Sbom::parse(
            r#"{"bomFormat":"CycloneDX","specVersion":"1.6","metadata":{"component":{"name":"app:1"}},
            "components":[{"type":"library","name":"Flask","version":"3.0.3","purl":"pkg:pypi/flask@3.0.3"},
            {"type":"library","name":"libc6","version":"2.36","purl":"pkg:deb/debian/libc6@2.36"},{"type":"library"}]}"#,
        )
        .unwrap();
        assert_eq!(sbom.image, "app:1");
        assert_eq!(sbom.components.len(), 2);
        let py: Vec<&str> = sbom
            .python_packages()
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(py, ["Flask"]);
        assert!(Sbom::parse(r#"{"spdxVersion":"SPDX-2.3"}"#).is_err());
    }

    #[test]
    fn components_of_another_shape_are_an_error() {
        let sbom = Sbom::parse(r#"{"bomFormat":"CycloneDX","components":null}"#).unwrap();
        assert!(sbom.components.is_empty() && sbom.image.is_empty());
        let e = Sbom::parse(r#"{"bomFormat":"CycloneDX","components":{"name":"x"}}"#).unwrap_err();
        assert!(
            format!("{e:#}").starts_with("the CycloneDX document is JSON of an unexpected shape"),
            "{e:#}"
        );
        let e = Sbom::parse(r#"{"bomFormat":"SPDX","components":{"name":"x"}}"#).unwrap_err();
        assert!(e.to_string().contains("not a CycloneDX document"), "{e}");
    }

    #[test]
    fn a_configuration_scan_has_no_image_to_list() {
        let runner = Runner::new().echo(crate::cmd::Echo::Silent).dry_run(true);
        let err = Trivy::config("app/Dockerfile")
            .sbom()
            .run(&runner)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "an SBOM lists the packages of an image, and a configuration scan of \
             app/Dockerfile has none: make it from `Trivy::image(..).sbom()`"
        );
        // An image's, made by the scan's own trivy, lists nothing in a plan.
        let bin = TrivyBin::at("/t/trivy", "/t/cache");
        let sbom = Trivy::image("app:1").bin("/t/trivy", "/t/cache").sbom();
        assert_eq!(sbom.trivy, TrivySource::Bin(bin));
        assert_eq!(sbom.run(&runner).unwrap(), Vec::new());
    }

    #[test]
    fn the_timeout_is_trivys_own_and_the_commands_limit_with_a_margin() {
        let bin = TrivyBin::at("/t/trivy", "/p/target/buildkit/trivy");
        let cmd = Trivy::image("app:1")
            .timeout(Duration::from_secs(120))
            .sbom()
            .command(&bin, "app:1");
        assert!(cmd.to_string().contains(" --timeout 120s "), "{cmd}");
        assert_eq!(cmd.get_timeout(), Some(Duration::from_secs(150)));
    }
}
