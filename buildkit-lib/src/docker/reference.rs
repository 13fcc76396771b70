//! Image references (`registry:port/repo/name:tag@sha256:...`): parsed, validated, shown.
//!
//! The rules are those of the distribution reference grammar docker uses, checked before a
//! build starts so that a bad tag fails in a second with a message naming the tag and what
//! is wrong with it, not after a ten-minute build.

use std::fmt;

/// The longest tag docker accepts.
pub const MAX_TAG_LEN: usize = 128;
/// The longest repository name (registry included) docker accepts.
pub const MAX_NAME_LEN: usize = 255;

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) struct ImageRef {
    /// Registry host with optional port (`ghcr.io`, `127.0.0.1:5000`, `localhost`), when
    /// the reference names one.
    pub(crate) registry: Option<String>,
    /// Repository path (`prefect421/mvidarr`), lower-case.
    pub(crate) repository: String,
    /// Tag (`1.2.3`), when given.
    pub(crate) tag: Option<String>,
    /// Digest (`sha256:<64 hex>`), when given.
    pub(crate) digest: Option<String>,
}

/// Why a string is not a valid image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReferenceError {
    /// The reference as given.
    pub(crate) input: String,
    /// What is wrong with it.
    pub(crate) problem: String,
}

impl fmt::Display for ReferenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid image reference `{}`: {}",
            self.input, self.problem
        )
    }
}

impl std::error::Error for ReferenceError {}

impl ImageRef {
    /// Parses and validates `input`.
    pub(crate) fn parse(input: &str) -> Result<ImageRef, ReferenceError> {
        let fail = |problem: String| ReferenceError {
            input: input.to_string(),
            problem,
        };
        if input.is_empty() {
            return Err(fail("it is empty".into()));
        }
        if input.chars().any(char::is_whitespace) {
            return Err(fail("it contains white space".into()));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((rest, digest)) => {
                check_digest(digest).map_err(&fail)?;
                (rest, Some(digest.to_string()))
            }
            None => (input, None),
        };
        // A tag follows the last ':' that comes after the last '/' (a ':' before it is a
        // registry port).
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(tag) = tag {
            check_tag(tag).map_err(&fail)?;
        }
        if name.is_empty() {
            return Err(fail("the repository name is empty".into()));
        }
        if name.len() > MAX_NAME_LEN {
            return Err(fail(format!(
                "the name is {} characters long; at most {MAX_NAME_LEN} are allowed",
                name.len()
            )));
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                check_registry(first).map_err(&fail)?;
                (Some(first.to_string()), path)
            }
            _ => (None, name),
        };
        check_repository(repository).map_err(&fail)?;
        Ok(ImageRef {
            registry,
            repository: repository.to_string(),
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// The name without tag or digest: `registry/repository` or `repository`.
    pub(crate) fn name(&self) -> String {
        match &self.registry {
            Some(r) => format!("{r}/{}", self.repository),
            None => self.repository.clone(),
        }
    }

    /// The same name with another tag (and no digest).
    pub(crate) fn with_tag(&self, tag: &str) -> ImageRef {
        ImageRef {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for ImageRef {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<ImageRef, ReferenceError> {
        ImageRef::parse(s)
    }
}

/// Checks a tag alone: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub(crate) fn check_tag(tag: &str) -> Result<(), String> {
    if tag.is_empty() {
        return Err("the tag after `:` is empty".into());
    }
    if tag.len() > MAX_TAG_LEN {
        return Err(format!(
            "the tag `{tag}` is {} characters long; at most {MAX_TAG_LEN} are allowed",
            tag.len()
        ));
    }
    if let Some(bad) = tag
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(format!(
            "the tag `{tag}` contains `{bad}`; a tag may contain only letters, digits, `_`, `.` and `-`"
        ));
    }
    if tag.starts_with(['.', '-']) {
        return Err(format!(
            "the tag `{tag}` starts with `{}`; a tag must start with a letter, digit or `_`",
            &tag[..1]
        ));
    }
    Ok(())
}

fn check_digest(digest: &str) -> Result<(), String> {
    let (algo, hex) = digest
        .split_once(':')
        .ok_or_else(|| format!("the digest `{digest}` is not `algorithm:hex`"))?;
    let hex_ok = |len: usize| {
        hex.len() == len
            && hex
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    };
    let ok = match algo {
        "sha256" => hex_ok(64),
        "sha512" => hex_ok(128),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "the digest `{digest}` is not `sha256:` followed by 64 lower-case hex digits"
        ))
    }
}

fn check_registry(host: &str) -> Result<(), String> {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    if let Some(port) = port {
        if port.is_empty()
            || !port.bytes().all(|b| b.is_ascii_digit())
            || port.parse::<u16>().is_err()
        {
            return Err(format!(
                "the registry `{host}` has an invalid port `{port}`"
            ));
        }
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if name.is_empty() || !name.split('.').all(label_ok) {
        return Err(format!(
            "the registry host `{host}` is not a valid host name"
        ));
    }
    Ok(())
}

fn check_repository(repo: &str) -> Result<(), String> {
    if repo.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!(
            "the repository `{repo}` must be lower-case (try `{}`)",
            repo.to_ascii_lowercase()
        ));
    }
    for component in repo.split('/') {
        if !valid_component(component) {
            return Err(format!(
                "the repository `{repo}` has an invalid path component `{component}`: use \
                 lower-case letters and digits, separated by single `.`, `_`, `__` or `-`"
            ));
        }
    }
    Ok(())
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: &str) -> String {
        ImageRef::parse(s).unwrap_err().to_string()
    }

    #[test]
    fn parses_the_usual_shapes() {
        let r = ImageRef::parse("127.0.0.1:5000/team/app:1.2.3").unwrap();
        assert_eq!(r.registry.as_deref(), Some("127.0.0.1:5000"));
        assert_eq!(r.repository, "team/app");
        assert_eq!(r.tag.as_deref(), Some("1.2.3"));
        assert_eq!(r.to_string(), "127.0.0.1:5000/team/app:1.2.3");

        let r = ImageRef::parse("mvidarr").unwrap();
        assert_eq!((r.registry, r.tag), (None, None));

        let r = ImageRef::parse("localhost:5000/app").unwrap();
        assert_eq!(r.registry.as_deref(), Some("localhost:5000"));
        assert_eq!(r.tag, None);

        let digest = format!("sha256:{}", "a".repeat(64));
        let r = ImageRef::parse(&format!("ghcr.io/o/app:v1@{digest}")).unwrap();
        assert_eq!(r.digest.as_deref(), Some(digest.as_str()));
        assert_eq!(r.name(), "ghcr.io/o/app");
        assert_eq!(r.with_tag("latest").to_string(), "ghcr.io/o/app:latest");

        assert!(ImageRef::parse("a__b/c-d---e.f:_x.Y-1").is_ok());
        assert!(ImageRef::parse(&format!("app:{}", "x".repeat(128))).is_ok());
    }

    #[test]
    fn errors_name_the_reference_and_the_problem() {
        assert_eq!(
            err("MyApp:1.0"),
            "invalid image reference `MyApp:1.0`: the repository `MyApp` must be lower-case (try `myapp`)"
        );
        assert_eq!(
            err("app:v1+build"),
            "invalid image reference `app:v1+build`: the tag `v1+build` contains `+`; a tag may contain only letters, digits, `_`, `.` and `-`"
        );
        assert_eq!(
            err("app:-x"),
            "invalid image reference `app:-x`: the tag `-x` starts with `-`; a tag must start with a letter, digit or `_`"
        );
        let long = "x".repeat(129);
        assert_eq!(
            err(&format!("app:{long}")),
            format!("invalid image reference `app:{long}`: the tag `{long}` is 129 characters long; at most 128 are allowed")
        );
        assert_eq!(
            err("app:"),
            "invalid image reference `app:`: the tag after `:` is empty"
        );
        assert_eq!(
            err("app@sha256:abc"),
            "invalid image reference `app@sha256:abc`: the digest `sha256:abc` is not `sha256:` followed by 64 lower-case hex digits"
        );
        assert_eq!(
            err("reg.io:99999/app"),
            "invalid image reference `reg.io:99999/app`: the registry `reg.io:99999` has an invalid port `99999`"
        );
        assert_eq!(
            err("team//app"),
            "invalid image reference `team//app`: the repository `team//app` has an invalid path component ``: use lower-case letters and digits, separated by single `.`, `_`, `__` or `-`"
        );
        assert!(err("a..b").contains("invalid path component `a..b`"));
        assert!(err("a b").ends_with("it contains white space"));
    }
}
