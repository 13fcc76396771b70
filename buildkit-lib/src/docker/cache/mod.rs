//! Build cache sources and destinations (`--cache-from` / `--cache-to`) as typed values.
//!
//! What a [`Cache`] renders to, what it refuses and how the GitHub Actions cache service
//! is chosen is documented for users on [`Cache`].

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::bail;

use super::reference::ImageRef;

mod gha;

pub(crate) use gha::check_gha_v2;
use gha::resolve_service;
pub(crate) use gha::GhaService;
pub(crate) use gha::{gha_in_args, mask_gha_token, resolve_gha_entries};

/// Which backend a [`Cache`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum CacheKind {
    /// A cache image in a registry (`type=registry`).
    Registry,
    /// A directory on this machine (`type=local`).
    Local,
    /// Cache metadata embedded in the image itself (`type=inline`).
    Inline,
    /// The GitHub Actions cache service (`type=gha`).
    Gha,
}

impl CacheKind {
    /// The buildx `type=` value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            CacheKind::Registry => "registry",
            CacheKind::Local => "local",
            CacheKind::Inline => "inline",
            CacheKind::Gha => "gha",
        }
    }
}

/// Layer compression of an exported cache (`compression=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    /// gzip (BuildKit's default), levels 0-9.
    Gzip,
    /// eStargz (lazily pullable gzip), levels 0-9.
    Estargz,
    /// zstd, levels 0-22.
    Zstd,
}

impl Compression {
    /// The buildx value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Estargz => "estargz",
            Compression::Zstd => "zstd",
        }
    }

    /// The highest `compression-level` BuildKit accepts for it.
    pub(crate) fn max_level(self) -> u8 {
        match self {
            Compression::Gzip | Compression::Estargz => 9,
            Compression::Zstd => 22,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Backend {
    Registry(String),
    Local(PathBuf),
    Inline,
    Gha,
}

/// One cache backend with its attributes. Make one with [`Cache::registry`],
/// [`Cache::local`], [`Cache::inline`] or [`Cache::gha`], then chain the setters:
///
/// ```
/// use buildkit_lib::docker::Build;
/// use buildkit_lib::docker::Cache;
///
/// let cache = Cache::registry("127.0.0.1:5000/app:cache")
///     .mode_max(true)
///     .compression("zstd", None, false)
///     .oci_mediatypes(true)
///     .image_manifest(true)
///     .ignore_error(true);
/// let command = Build::new(".")
///     .cache_from(cache.clone())
///     .cache_to(cache)
///     .command()
///     .to_string();
/// assert!(command.contains(
///     "--cache-from type=registry,ref=127.0.0.1:5000/app:cache \
///      --cache-to type=registry,ref=127.0.0.1:5000/app:cache,mode=max,ignore-error=true,\
///      compression=zstd,oci-mediatypes=true,image-manifest=true"
/// ));
/// ```
///
/// A [`Cache`] is a backend (registry, local directory, inline, GitHub Actions) plus the
/// export attributes users set today (`mode=max`, `ignore-error`, `compression`,
/// `oci-mediatypes`, `image-manifest`). It renders to the exact strings buildx reads, so a
/// plan can be printed and compared in tests, and a build refuses (before anything runs)
/// an attribute the backend would silently ignore.
///
/// Export attributes (`mode`, `ignore-error`, compression, media types) go into
/// `--cache-to` only: the same value serves as source and destination.
///
/// # GitHub Actions cache
///
/// The GitHub Actions cache has two services: v1 (`ACTIONS_CACHE_URL`, shut down on
/// github.com on 2025-04-15) and v2 (`ACTIONS_RESULTS_URL`, selected by
/// `ACTIONS_CACHE_SERVICE_V2`, spoken by BuildKit 0.20 and buildx 0.21 or newer).
/// Unless [`Cache::gha_version`] names one, the build reads which one the environment
/// offers and writes it as `version=1|2`, and a build refuses v2, before it starts, when
/// the builder is too old for it. The runtime token (`ACTIONS_RUNTIME_TOKEN`) is read by buildx from the
/// environment: it never appears in a command line, plan, log or error of this crate.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub struct Cache {
    backend: Backend,
    mode_max: bool,
    scope: Option<String>,
    service: GhaService,
    /// A `gha_version` that is neither 1 nor 2 (refused by the checks).
    bad_gha_version: Option<u8>,
    ignore_error: bool,
    compression: Option<Compression>,
    /// A `compression` algorithm BuildKit does not know (refused by the checks).
    bad_compression: Option<String>,
    compression_level: Option<u8>,
    force_compression: bool,
    oci_mediatypes: Option<bool>,
    image_manifest: Option<bool>,
}

impl Cache {
    fn with(backend: Backend) -> Cache {
        Cache {
            backend,
            mode_max: false,
            scope: None,
            service: GhaService::Auto,
            bad_gha_version: None,
            ignore_error: false,
            compression: None,
            bad_compression: None,
            compression_level: None,
            force_compression: false,
            oci_mediatypes: None,
            image_manifest: None,
        }
    }

    /// A cache image in a registry (`type=registry,ref=...`), for example
    /// `ghcr.io/o/app:buildcache`.
    pub fn registry(reference: impl Into<String>) -> Cache {
        Cache::with(Backend::Registry(reference.into()))
    }

    /// A directory on this machine (`type=local,src=...` / `dest=...`).
    pub fn local(path: impl Into<PathBuf>) -> Cache {
        Cache::with(Backend::Local(path.into()))
    }

    /// Cache metadata embedded in the image itself (`type=inline`; export only: import it
    /// with [`Cache::registry`] naming the image).
    pub fn inline() -> Cache {
        Cache::with(Backend::Inline)
    }

    /// The GitHub Actions cache service (`type=gha`), the service the environment offers
    /// unless [`Cache::gha_version`] says which.
    pub fn gha() -> Cache {
        Cache::with(Backend::Gha)
    }

    /// Export the layers of every stage (`mode=max`), not only the final image's.
    pub fn mode_max(mut self, on: bool) -> Cache {
        self.mode_max = on;
        self
    }

    /// The `gha` cache entry's name (buildx default `buildkit`), to keep several images'
    /// caches apart.
    pub fn scope(mut self, scope: impl Into<String>) -> Cache {
        self.scope = Some(scope.into());
        self
    }

    /// Which GitHub Actions cache service a `gha` cache uses: `1`, the legacy service at
    /// `ACTIONS_CACHE_URL` (`version=1`; github.com shut it down on 2025-04-15, GitHub
    /// Enterprise Server and self-hosted cache servers may keep it), or `2`, the current
    /// one at `ACTIONS_RESULTS_URL` (`version=2`: BuildKit 0.20 and buildx 0.21 or newer).
    /// Without it, the one the environment offers, read when the build runs.
    pub fn gha_version(mut self, version: u8) -> Cache {
        match version {
            1 => self.service = GhaService::V1,
            2 => self.service = GhaService::V2,
            other => self.bad_gha_version = Some(other),
        }
        self
    }

    /// [`Cache::gha_version`] as the service.
    pub(crate) fn with_gha_service(mut self, service: GhaService) -> Cache {
        self.service = service;
        self
    }

    /// Let the build succeed when the cache export fails (`ignore-error=true`).
    pub fn ignore_error(mut self, on: bool) -> Cache {
        self.ignore_error = on;
        self
    }

    /// Compress the exported layers (registry and local caches) with `algorithm`
    /// (`compression=`: `gzip`, BuildKit's default, `estargz` or `zstd`), at `level` when
    /// given (`compression-level=`: gzip and eStargz 0-9, zstd 0-22). Layers BuildKit
    /// already holds compressed another way keep that compression (seen with BuildKit
    /// 0.13: `compression=zstd` alone exports gzip layers of a gzip base image) unless
    /// `force` recompresses them (`force-compression=true`).
    pub fn compression(self, algorithm: &str, level: Option<u8>, force: bool) -> Cache {
        let mut cache = match algorithm {
            "gzip" => self.with_compression(Compression::Gzip),
            "estargz" => self.with_compression(Compression::Estargz),
            "zstd" => self.with_compression(Compression::Zstd),
            other => Cache {
                bad_compression: Some(other.to_string()),
                ..self
            },
        };
        cache.compression_level = level;
        cache.with_force_compression(force)
    }

    /// The compression algorithm alone.
    pub(crate) fn with_compression(mut self, compression: Compression) -> Cache {
        self.compression = Some(compression);
        self
    }

    /// The compression level alone.
    #[cfg(test)]
    pub(crate) fn with_compression_level(mut self, level: u8) -> Cache {
        self.compression_level = Some(level);
        self
    }

    /// Recompress layers already compressed another way (`force-compression=true`).
    pub(crate) fn with_force_compression(mut self, on: bool) -> Cache {
        self.force_compression = on;
        self
    }

    /// Use OCI media types (`oci-mediatypes=`; BuildKit's default is `true`).
    pub fn oci_mediatypes(mut self, on: bool) -> Cache {
        self.oci_mediatypes = Some(on);
        self
    }

    /// Write the cache as one image manifest instead of an image index
    /// (`image-manifest=`): needed by registries without image indexes, such as Amazon
    /// ECR. Needs OCI media types. BuildKit 0.21 and newer
    /// (the engine built into Docker 28.1 and newer) write an image manifest unless told
    /// `image_manifest(false)` (or `oci_mediatypes(false)`); older ones an index unless
    /// told `image_manifest(true)`. Set it either way to get the same form on every
    /// builder; a cache in either form is read by every release.
    pub fn image_manifest(mut self, on: bool) -> Cache {
        self.image_manifest = Some(on);
        self
    }

    /// The backend.
    pub(crate) fn kind(&self) -> CacheKind {
        match self.backend {
            Backend::Registry(_) => CacheKind::Registry,
            Backend::Local(_) => CacheKind::Local,
            Backend::Inline => CacheKind::Inline,
            Backend::Gha => CacheKind::Gha,
        }
    }

    /// The cache image of a registry cache.
    pub(crate) fn reference(&self) -> Option<&str> {
        match &self.backend {
            Backend::Registry(r) => Some(r),
            _ => None,
        }
    }

    /// The directory of a local cache.
    pub(crate) fn path(&self) -> Option<&Path> {
        match &self.backend {
            Backend::Local(p) => Some(p),
            _ => None,
        }
    }

    /// The GitHub Actions cache service set on a `gha` cache.
    pub(crate) fn get_gha_service(&self) -> GhaService {
        self.service
    }

    /// The same cache with its local directory replaced by `place(directory)`.
    pub(crate) fn map_path(
        &self,
        place: &dyn Fn(&Path) -> anyhow::Result<PathBuf>,
    ) -> anyhow::Result<Cache> {
        let mut out = self.clone();
        if let Backend::Local(path) = &self.backend {
            out.backend = Backend::Local(place(path)?);
        }
        Ok(out)
    }

    fn base_fields(&self, export: bool) -> Vec<String> {
        let mut fields = vec![format!("type={}", self.kind().as_str())];
        match &self.backend {
            Backend::Registry(r) => fields.push(format!("ref={r}")),
            Backend::Local(p) => {
                let key = if export { "dest" } else { "src" };
                fields.push(format!("{key}={}", p.display()));
            }
            Backend::Inline => {}
            Backend::Gha => {
                if let Some(scope) = &self.scope {
                    fields.push(format!("scope={scope}"));
                }
            }
        }
        fields
    }

    fn version_field(&self) -> Option<String> {
        match (&self.backend, self.service) {
            (Backend::Gha, GhaService::V1) => Some("version=1".into()),
            (Backend::Gha, GhaService::V2) => Some("version=2".into()),
            _ => None,
        }
    }

    /// The value of a `--cache-from` argument.
    pub(crate) fn to_from_arg(&self) -> String {
        let mut fields = self.base_fields(false);
        fields.extend(self.version_field());
        csv_join(&fields)
    }

    /// The value of a `--cache-to` argument.
    pub(crate) fn to_to_arg(&self) -> String {
        let mut fields = self.base_fields(true);
        if matches!(self.backend, Backend::Inline) {
            return csv_join(&fields);
        }
        if self.mode_max {
            fields.push("mode=max".into());
        }
        fields.extend(self.version_field());
        if self.ignore_error {
            fields.push("ignore-error=true".into());
        }
        if let Some(c) = self.compression {
            fields.push(format!("compression={}", c.as_str()));
        }
        if let Some(level) = self.compression_level {
            fields.push(format!("compression-level={level}"));
        }
        if self.force_compression {
            fields.push("force-compression=true".into());
        }
        if let Some(on) = self.oci_mediatypes {
            fields.push(format!("oci-mediatypes={on}"));
        }
        if let Some(on) = self.image_manifest {
            fields.push(format!("image-manifest={on}"));
        }
        csv_join(&fields)
    }

    /// Refuses what the backend would ignore or BuildKit would reject: an attribute of
    /// another backend, a compression level out of range, an image manifest without OCI
    /// media types, an invalid cache image reference, an empty directory.
    pub(crate) fn check(&self) -> anyhow::Result<()> {
        let kind = self.kind().as_str();
        let shown = self.to_to_arg();
        if !matches!(self.backend, Backend::Gha) {
            if self.scope.is_some() {
                bail!(
                    "cache `{shown}`: `scope` names an entry of the GitHub Actions cache and \
                     a {kind} cache has none; drop `scope` (or use `Cache::gha()`)"
                );
            }
            if self.service != GhaService::Auto {
                bail!(
                    "cache `{shown}`: a GitHub Actions cache service is set on a {kind} \
                     cache; drop `gha_version`"
                );
            }
        }
        if let Some(version) = self.bad_gha_version {
            bail!(
                "cache `{shown}`: GitHub Actions cache service {version} does not exist; \
                 `gha_version` takes 1 (the legacy service) or 2 (the current one)"
            );
        }
        if let Some(algorithm) = &self.bad_compression {
            bail!(
                "cache `{shown}`: BuildKit does not know the compression `{algorithm}`; \
                 use gzip, estargz or zstd"
            );
        }
        let compression_set = self.compression.is_some()
            || self.bad_compression.is_some()
            || self.compression_level.is_some()
            || self.force_compression
            || self.oci_mediatypes.is_some()
            || self.image_manifest.is_some();
        match &self.backend {
            Backend::Inline if self.mode_max || self.ignore_error || compression_set => bail!(
                "cache `type=inline` takes no attributes: it is written into the image itself, \
                 with mode=min only; export a registry cache \
                 (`Cache::registry(..).mode_max(true)`) for `mode=max`, compression or media \
                 types"
            ),
            Backend::Gha if compression_set => bail!(
                "cache `{shown}`: the gha backend stores layers with BuildKit's default \
                 compression and media types, and ignores compression, oci-mediatypes and \
                 image-manifest; set them on a registry or local cache"
            ),
            Backend::Registry(reference) => {
                ImageRef::parse(reference).map_err(|e| {
                    anyhow::anyhow!(
                        "cache image `{reference}` is not a valid reference: {}",
                        e.problem
                    )
                })?;
            }
            Backend::Local(path) if path.as_os_str().is_empty() => {
                bail!("a local cache needs a directory; `Cache::local(\"\")` names none")
            }
            _ => {}
        }
        if let Some(level) = self.compression_level {
            let algorithm = self.compression.unwrap_or(Compression::Gzip);
            if level > algorithm.max_level() {
                bail!(
                    "cache `{shown}`: compression-level {level} is outside {}'s 0-{}{}",
                    algorithm.as_str(),
                    algorithm.max_level(),
                    if self.compression.is_none() {
                        " (gzip is the default); set `compression(\"zstd\", ...)` for \
                         levels up to 22"
                    } else {
                        ""
                    }
                );
            }
        }
        if self.image_manifest == Some(true) && self.oci_mediatypes == Some(false) {
            bail!(
                "cache `{shown}`: image-manifest=true writes an OCI image manifest and needs \
                 OCI media types; drop `oci_mediatypes(false)`"
            );
        }
        Ok(())
    }

    /// The cache with `gha_service` set to the service it will use: [`GhaService::Auto`]
    /// becomes the one the environment offers; an explicit service is checked against
    /// the environment. Other backends are returned as they are. Errors name the missing
    /// variables and how to expose them; they never show a variable's value.
    pub(crate) fn resolve(&self, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Cache> {
        if !matches!(self.backend, Backend::Gha) {
            return Ok(self.clone());
        }
        let service = resolve_service(self.service, env)
            .map_err(|e| anyhow::anyhow!("cache `{}` cannot be used: {e}", self.to_to_arg()))?;
        Ok(self.clone().with_gha_service(service))
    }
}

impl fmt::Display for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_to_arg())
    }
}

/// Splits an entry into its fields the way buildx does (one CSV record): a field in
/// double quotes may hold `,`, and `""` inside it is one `"`.
pub(crate) fn csv_fields(entry: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = entry.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        match c {
            '"' if at_start && !quoted => quoted = true,
            '"' if quoted => {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    quoted = false;
                }
            }
            ',' if !quoted => {
                fields.push(std::mem::take(&mut field));
                at_start = true;
                continue;
            }
            other => field.push(other),
        }
        at_start = false;
    }
    fields.push(field);
    fields
}

/// Joins `key=value` fields the way buildx splits them (CSV): a field holding `,` or `"`
/// is quoted, with `"` doubled.
pub(crate) fn csv_join(fields: &[String]) -> String {
    fields
        .iter()
        .map(|f| {
            if f.contains([',', '"', '\n']) {
                format!("\"{}\"", f.replace('"', "\"\""))
            } else {
                f.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::gha::*;
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn renders_every_backend_and_attribute() {
        let reg = Cache::registry("127.0.0.1:5000/app:cache");
        assert_eq!(
            reg.to_from_arg(),
            "type=registry,ref=127.0.0.1:5000/app:cache"
        );
        assert_eq!(
            reg.to_to_arg(),
            "type=registry,ref=127.0.0.1:5000/app:cache"
        );
        let full = reg
            .clone()
            .mode_max(true)
            .ignore_error(true)
            .with_compression(Compression::Zstd)
            .with_compression_level(19)
            .with_force_compression(true)
            .oci_mediatypes(true)
            .image_manifest(true);
        assert_eq!(
            full.to_to_arg(),
            "type=registry,ref=127.0.0.1:5000/app:cache,mode=max,ignore-error=true,\
             compression=zstd,compression-level=19,force-compression=true,\
             oci-mediatypes=true,image-manifest=true"
        );
        // Export attributes never reach --cache-from.
        assert_eq!(
            full.to_from_arg(),
            "type=registry,ref=127.0.0.1:5000/app:cache"
        );
        assert_eq!(full.to_string(), full.to_to_arg());
        let local = Cache::local("target/cache")
            .with_compression(Compression::Estargz)
            .oci_mediatypes(false);
        assert_eq!(local.to_from_arg(), "type=local,src=target/cache");
        assert_eq!(
            local.to_to_arg(),
            "type=local,dest=target/cache,compression=estargz,oci-mediatypes=false"
        );
        assert_eq!(
            Cache::local("c")
                .with_compression(Compression::Gzip)
                .with_compression_level(0)
                .to_to_arg(),
            "type=local,dest=c,compression=gzip,compression-level=0"
        );
        assert_eq!(
            Cache::local("c").image_manifest(false).to_to_arg(),
            "type=local,dest=c,image-manifest=false"
        );
        assert_eq!(Cache::inline().to_to_arg(), "type=inline");
        assert_eq!(Cache::inline().to_from_arg(), "type=inline");
    }

    #[test]
    fn renders_gha_for_each_service() {
        let gha = Cache::gha();
        assert_eq!(gha.to_from_arg(), "type=gha");
        assert_eq!(gha.to_to_arg(), "type=gha");
        let scoped = gha
            .clone()
            .scope("webapp")
            .mode_max(true)
            .ignore_error(true);
        assert_eq!(scoped.to_from_arg(), "type=gha,scope=webapp");
        assert_eq!(
            scoped.to_to_arg(),
            "type=gha,scope=webapp,mode=max,ignore-error=true"
        );
        let v2 = scoped.clone().with_gha_service(GhaService::V2);
        assert_eq!(v2.to_from_arg(), "type=gha,scope=webapp,version=2");
        assert_eq!(
            v2.to_to_arg(),
            "type=gha,scope=webapp,mode=max,version=2,ignore-error=true"
        );
        let v1 = gha.with_gha_service(GhaService::V1);
        assert_eq!(v1.to_from_arg(), "type=gha,version=1");
        assert_eq!(v1.to_to_arg(), "type=gha,version=1");
    }

    #[test]
    fn entries_are_split_as_buildx_splits_them() {
        assert_eq!(
            csv_fields("type=local,\"dest=dir,with \"\"q\"\"\",mode=max"),
            ["type=local", "dest=dir,with \"q\"", "mode=max"]
        );
        assert_eq!(csv_fields("\"type=gha\""), ["type=gha"]);
        assert_eq!(csv_fields(""), [""]);
        for cache in [
            Cache::local("dir,with \"q\"").mode_max(true),
            Cache::gha().scope("a,b"),
        ] {
            let joined = cache.to_to_arg();
            assert_eq!(csv_join(&csv_fields(&joined)), joined);
        }
    }

    #[test]
    fn fields_with_commas_or_quotes_are_quoted_as_buildx_splits_them() {
        assert_eq!(
            Cache::local("dir,with \"q\"").to_to_arg(),
            "type=local,\"dest=dir,with \"\"q\"\"\""
        );
        assert_eq!(
            Cache::gha().scope("a,b").to_from_arg(),
            "type=gha,\"scope=a,b\""
        );
    }

    #[test]
    fn attributes_a_backend_would_ignore_are_refused() {
        let err = |c: Cache| c.check().unwrap_err().to_string();
        assert_eq!(
            err(Cache::registry("r.example/app:c").scope("x")),
            "cache `type=registry,ref=r.example/app:c`: `scope` names an entry of the GitHub \
             Actions cache and a registry cache has none; drop `scope` (or use `Cache::gha()`)"
        );
        assert_eq!(
            err(Cache::local("c").with_gha_service(GhaService::V2)),
            "cache `type=local,dest=c`: a GitHub Actions cache service is set on a local \
             cache; drop `gha_version`"
        );
        let inline_msg = "cache `type=inline` takes no attributes: it is written into the \
                          image itself, with mode=min only; export a registry cache \
                          (`Cache::registry(..).mode_max(true)`) for `mode=max`, compression \
                          or media types";
        assert_eq!(err(Cache::inline().mode_max(true)), inline_msg);
        assert_eq!(err(Cache::inline().ignore_error(true)), inline_msg);
        assert_eq!(
            err(Cache::inline().with_compression(Compression::Zstd)),
            inline_msg
        );
        for gha in [
            Cache::gha().with_compression(Compression::Zstd),
            Cache::gha().with_compression_level(3),
            Cache::gha().with_force_compression(true),
            Cache::gha().oci_mediatypes(true),
            Cache::gha().image_manifest(true),
        ] {
            assert!(
                err(gha.clone()).contains(
                    "the gha backend stores layers with BuildKit's default compression and \
                     media types, and ignores compression, oci-mediatypes and image-manifest; \
                     set them on a registry or local cache"
                ),
                "{gha}"
            );
        }
        assert_eq!(
            err(Cache::local("c").with_compression_level(10)),
            "cache `type=local,dest=c,compression-level=10`: compression-level 10 is outside \
             gzip's 0-9 (gzip is the default); set `compression(\"zstd\", ...)` for \
             levels up to 22"
        );
        // The public setter: an unknown algorithm, a version of the gha service that does
        // not exist.
        assert_eq!(
            err(Cache::local("c").compression("lz4", None, false)),
            "cache `type=local,dest=c`: BuildKit does not know the compression `lz4`; use \
             gzip, estargz or zstd"
        );
        assert_eq!(
            err(Cache::gha().gha_version(3)),
            "cache `type=gha`: GitHub Actions cache service 3 does not exist; `gha_version` \
             takes 1 (the legacy service) or 2 (the current one)"
        );
        assert_eq!(
            Cache::local("c")
                .compression("zstd", Some(3), true)
                .to_to_arg(),
            "type=local,dest=c,compression=zstd,compression-level=3,force-compression=true"
        );
        assert_eq!(
            err(Cache::local("c")
                .with_compression(Compression::Estargz)
                .with_compression_level(10)),
            "cache `type=local,dest=c,compression=estargz,compression-level=10`: \
             compression-level 10 is outside estargz's 0-9"
        );
        assert_eq!(
            err(Cache::local("c")
                .with_compression(Compression::Zstd)
                .with_compression_level(23)),
            "cache `type=local,dest=c,compression=zstd,compression-level=23`: \
             compression-level 23 is outside zstd's 0-22"
        );
        assert!(Cache::local("c")
            .with_compression(Compression::Zstd)
            .with_compression_level(22)
            .check()
            .is_ok());
        assert_eq!(
            err(Cache::registry("r.example/a:c")
                .image_manifest(true)
                .oci_mediatypes(false)),
            "cache `type=registry,ref=r.example/a:c,oci-mediatypes=false,image-manifest=true`: \
             image-manifest=true writes an OCI image manifest and needs OCI media types; drop \
             `oci_mediatypes(false)`"
        );
        assert!(err(Cache::registry("Bad Ref"))
            .starts_with("cache image `Bad Ref` is not a valid reference: "));
        assert_eq!(
            err(Cache::local("")),
            "a local cache needs a directory; `Cache::local(\"\")` names none"
        );
        assert!(Cache::gha()
            .scope("s")
            .mode_max(true)
            .ignore_error(true)
            .check()
            .is_ok());
        assert!(Cache::inline().check().is_ok());
    }

    #[test]
    fn detects_the_service_the_environment_offers() {
        let detect = |pairs: &[(&str, &str)]| GhaService::detect(&env_of(pairs));
        let token = (GHA_TOKEN, "tok");
        let results = (
            GHA_RESULTS_URL,
            "https://results-receiver.actions.githubusercontent.com/",
        );
        let cache_url = (
            GHA_CACHE_URL,
            "https://artifactcache.actions.githubusercontent.com/x/",
        );
        // Today's hosted runner: all four variables, v2 selected.
        assert_eq!(
            detect(&[token, results, cache_url, (GHA_SERVICE_V2, "True")]).unwrap(),
            GhaService::V2
        );
        // Every spelling Go's ParseBool accepts; an unknown one is not "true", as in buildx.
        for yes in ["1", "t", "T", "true", "TRUE", "True"] {
            assert_eq!(
                detect(&[token, results, cache_url, (GHA_SERVICE_V2, yes)]).unwrap(),
                GhaService::V2
            );
        }
        assert_eq!(
            detect(&[token, results, cache_url, (GHA_SERVICE_V2, "yes")]).unwrap(),
            GhaService::V1
        );
        assert_eq!(
            detect(&[token, results, cache_url, (GHA_SERVICE_V2, "false")]).unwrap(),
            GhaService::V1
        );
        // Only the results service offered: v2 even without the flag.
        assert_eq!(detect(&[token, results]).unwrap(), GhaService::V2);
        // A v1-only environment (GitHub Enterprise Server, a self-hosted cache server).
        assert_eq!(detect(&[token, cache_url]).unwrap(), GhaService::V1);
    }

    #[test]
    fn every_gha_environment_error_names_the_fix() {
        let detect =
            |pairs: &[(&str, &str)]| GhaService::detect(&env_of(pairs)).unwrap_err().to_string();
        let actions = ("GITHUB_ACTIONS", "true");
        assert_eq!(
            detect(&[actions]),
            format!(
                "this GitHub Actions step does not see the runtime variables the gha cache \
                 needs (ACTIONS_RUNTIME_TOKEN, and ACTIONS_RESULTS_URL with \
                 ACTIONS_CACHE_SERVICE_V2=true, or the older ACTIONS_CACHE_URL): {EXPOSE_HINT}"
            )
        );
        assert_eq!(
            detect(&[]),
            "the gha cache needs the GitHub Actions runtime (ACTIONS_RUNTIME_TOKEN and \
             ACTIONS_RESULTS_URL), and this process is not in a GitHub Actions job \
             (GITHUB_ACTIONS is not `true`); use a registry or local cache here"
        );
        assert_eq!(
            detect(&[actions, (GHA_SERVICE_V2, "true"), (GHA_TOKEN, "tok")]),
            format!(
                "ACTIONS_CACHE_SERVICE_V2 selects the v2 cache service, but \
                 ACTIONS_RESULTS_URL is not set: {EXPOSE_HINT}"
            )
        );
        assert_eq!(
            detect(&[actions, (GHA_RESULTS_URL, "http://r/")]),
            format!(
                "the environment offers a cache service, but ACTIONS_RUNTIME_TOKEN is not \
                 set: {EXPOSE_HINT}"
            )
        );
        // Empty counts as unset.
        assert!(
            detect(&[(GHA_TOKEN, ""), (GHA_RESULTS_URL, "")]).starts_with("the gha cache needs")
        );
        // An explicit service is checked against the environment.
        let resolve = |c: Cache, pairs: &[(&str, &str)]| c.resolve(&env_of(pairs));
        let err = resolve(
            Cache::gha().with_gha_service(GhaService::V2),
            &[(GHA_TOKEN, "tok"), (GHA_CACHE_URL, "http://c/")],
        )
        .unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "cache `type=gha,version=2` cannot be used: the cache asks for the v2 service, \
             but ACTIONS_RESULTS_URL is not set: the gha cache only works inside a GitHub \
             Actions job"
        );
        let err = resolve(
            Cache::gha().with_gha_service(GhaService::V1),
            &[(GHA_RESULTS_URL, "http://r/")],
        )
        .unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "cache `type=gha,version=1` cannot be used: the cache asks for the v1 service, \
             but ACTIONS_RUNTIME_TOKEN and ACTIONS_CACHE_URL are not set: the gha cache only \
             works inside a GitHub Actions job"
        );
        // Resolving writes the detected service; other backends pass through untouched.
        let resolved = resolve(
            Cache::gha().scope("w"),
            &[
                (GHA_TOKEN, "tok"),
                (GHA_RESULTS_URL, "http://r/"),
                (GHA_SERVICE_V2, "1"),
            ],
        )
        .unwrap();
        assert_eq!(resolved.to_from_arg(), "type=gha,scope=w,version=2");
        let reg = Cache::registry("r.example/a:c");
        assert_eq!(resolve(reg.clone(), &[]).unwrap(), reg);
    }

    #[test]
    fn no_error_shows_a_variable_value() {
        let secret = "ghs_SECRETTOKENVALUE";
        let cases: &[&[(&str, &str)]] = &[
            &[(GHA_TOKEN, secret)],
            &[(GHA_TOKEN, secret), (GHA_SERVICE_V2, "true")],
            &[
                (GHA_TOKEN, secret),
                ("GITHUB_ACTIONS", "true"),
                (GHA_SERVICE_V2, "1"),
            ],
        ];
        for pairs in cases {
            for service in [GhaService::Auto, GhaService::V1, GhaService::V2] {
                if let Err(e) = Cache::gha()
                    .with_gha_service(service)
                    .resolve(&env_of(pairs))
                {
                    assert!(!format!("{e:#}").contains(secret), "{e:#}");
                }
            }
        }
        // The rendered arguments never carry the token or the addresses either.
        let ok = Cache::gha()
            .resolve(&env_of(&[
                (GHA_TOKEN, secret),
                (GHA_RESULTS_URL, "http://r/"),
            ]))
            .unwrap();
        assert!(!ok.to_to_arg().contains(secret) && !ok.to_to_arg().contains("http"));
    }

    #[test]
    fn bake_entries_are_read_and_resolved() {
        let entries = vec![
            "type=registry,ref=r/a:c".to_string(),
            "type=gha,scope=a,version=2".to_string(),
            "type=gha,mode=max".to_string(),
        ];
        assert_eq!(
            gha_entries(&entries),
            vec![GhaService::V2, GhaService::Auto]
        );
        let env = env_of(&[(GHA_TOKEN, "t"), (GHA_RESULTS_URL, "http://r/")]);
        assert!(resolve_gha_entries(&entries, &env).unwrap());
        let v1_env = env_of(&[(GHA_TOKEN, "t"), (GHA_CACHE_URL, "http://c/")]);
        let err = resolve_gha_entries(&entries, &v1_env).unwrap_err();
        assert!(format!("{err:#}").starts_with(
            "cache `type=gha,scope=a,version=2` cannot be used: the cache asks for the v2 \
             service, but ACTIONS_RESULTS_URL is not set"
        ));
        assert!(!resolve_gha_entries(&entries[..1], &env_of(&[])).unwrap());
    }
}
