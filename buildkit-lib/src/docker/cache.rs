//! Build cache sources and destinations (`--cache-from` / `--cache-to`) as typed values.
//!
//! Each [`Cache`] renders to the exact string buildx expects, so a plan can be printed and
//! compared in tests. The `gha` cache needs the GitHub Actions runtime token in the
//! environment; [`Cache::missing_env`] says which variable is missing.

use std::path::PathBuf;

/// Environment variables the `gha` cache backend reads (set by GitHub Actions runners).
pub const GHA_ENV: [&str; 2] = ["ACTIONS_RUNTIME_TOKEN", "ACTIONS_CACHE_URL"];

/// One cache backend.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cache {
    /// A cache image in a registry (`type=registry,ref=...`).
    Registry {
        /// The cache image reference (`ghcr.io/o/app:buildcache`).
        reference: String,
        /// Export the layers of every stage (`mode=max`), not only the final one.
        mode_max: bool,
    },
    /// A directory on this machine (`type=local,src=...` / `dest=...`).
    Local {
        /// The cache directory.
        path: PathBuf,
    },
    /// Cache metadata embedded in the image itself (`type=inline`; export only: import
    /// it with [`Cache::Registry`] naming the image).
    Inline,
    /// The GitHub Actions cache service (`type=gha`).
    Gha {
        /// Cache scope, to keep several images' caches apart (buildx default `buildkit`).
        scope: Option<String>,
        /// Export the layers of every stage (`mode=max`).
        mode_max: bool,
    },
}

impl Cache {
    /// The value of a `--cache-from` argument.
    pub fn to_from_arg(&self) -> String {
        match self {
            Cache::Registry { reference, .. } => format!("type=registry,ref={reference}"),
            Cache::Local { path } => format!("type=local,src={}", path.display()),
            Cache::Inline => "type=inline".to_string(),
            Cache::Gha { scope, .. } => match scope {
                Some(s) => format!("type=gha,scope={s}"),
                None => "type=gha".to_string(),
            },
        }
    }

    /// The value of a `--cache-to` argument.
    pub fn to_to_arg(&self) -> String {
        let mode = |max: bool| if max { ",mode=max" } else { "" };
        match self {
            Cache::Registry {
                reference,
                mode_max,
            } => format!("type=registry,ref={reference}{}", mode(*mode_max)),
            Cache::Local { path } => format!("type=local,dest={}", path.display()),
            Cache::Inline => "type=inline".to_string(),
            Cache::Gha { scope, mode_max } => {
                let scope = scope
                    .as_ref()
                    .map(|s| format!(",scope={s}"))
                    .unwrap_or_default();
                format!("type=gha{scope}{}", mode(*mode_max))
            }
        }
    }

    /// The first environment variable this backend needs that `lookup` does not find
    /// (only `gha` needs any).
    pub fn missing_env(&self, lookup: &dyn Fn(&str) -> Option<String>) -> Option<&'static str> {
        match self {
            Cache::Gha { .. } => GHA_ENV
                .into_iter()
                .find(|k| lookup(k).is_none_or(|v| v.is_empty())),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_buildx_strings() {
        let reg = Cache::Registry {
            reference: "127.0.0.1:5000/app:cache".into(),
            mode_max: true,
        };
        assert_eq!(
            reg.to_from_arg(),
            "type=registry,ref=127.0.0.1:5000/app:cache"
        );
        assert_eq!(
            reg.to_to_arg(),
            "type=registry,ref=127.0.0.1:5000/app:cache,mode=max"
        );
        let local = Cache::Local {
            path: "target/cache".into(),
        };
        assert_eq!(local.to_from_arg(), "type=local,src=target/cache");
        assert_eq!(local.to_to_arg(), "type=local,dest=target/cache");
        assert_eq!(Cache::Inline.to_to_arg(), "type=inline");
        let gha = Cache::Gha {
            scope: Some("webapp".into()),
            mode_max: true,
        };
        assert_eq!(gha.to_from_arg(), "type=gha,scope=webapp");
        assert_eq!(gha.to_to_arg(), "type=gha,scope=webapp,mode=max");
        let plain = Cache::Gha {
            scope: None,
            mode_max: false,
        };
        assert_eq!(plain.to_to_arg(), "type=gha");
        assert_eq!(plain.missing_env(&|_| None), Some("ACTIONS_RUNTIME_TOKEN"));
        assert_eq!(
            plain.missing_env(&|k| (k == "ACTIONS_RUNTIME_TOKEN").then(|| "t".into())),
            Some("ACTIONS_CACHE_URL")
        );
        assert_eq!(plain.missing_env(&|_| Some("x".into())), None);
        assert_eq!(reg.missing_env(&|_| None), None);
    }
}
