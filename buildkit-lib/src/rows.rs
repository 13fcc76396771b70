//! The pieces shared by the typed rows the library reads engine and scanner JSON into.
//!
//! Each module that reads JSON printed by `docker`, `docker buildx`, trivy or Docker Scout
//! mirrors the fields it reads in private `#[derive(Deserialize)]` structs, deserialized
//! once where the text comes in; these are what they have in common: `null` read as empty
//! (Go prints empty lists and maps as `null`), numbers the CLI prints as text, maps kept
//! in document order, an image platform, and errors that name the command.

use std::fmt;

use serde::de::{DeserializeOwned, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::error::Category;

/// `null` read as the type's default. With `#[serde(default, deserialize_with =
/// "crate::rows::nullable")]` a field may also be absent.
pub(crate) fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Reads `text` (surrounding whitespace ignored) as a `T`; the error names `what` printed
/// it and says whether it was not JSON or JSON of another shape (serde names a missing
/// field).
pub(crate) fn parse<T: DeserializeOwned>(text: &str, what: &str) -> anyhow::Result<T> {
    serde_json::from_str(text.trim()).map_err(|e| {
        // An array where one object was expected fails on its very first element.
        let array_for_object = e.classify() == Category::Data
            && text.trim_start().starts_with('[')
            && e.line() == 1
            && e.column() <= 2;
        if array_for_object {
            anyhow::Error::new(e).context(format!(
                "{what} printed a JSON array where one JSON object was expected"
            ))
        } else {
            shape_error(e, what)
        }
    })
}

/// Reads an already parsed JSON value as a `T`; the error names `what` it is.
pub(crate) fn from_value<T: DeserializeOwned>(
    value: &serde_json::Value,
    what: &str,
) -> anyhow::Result<T> {
    T::deserialize(value).map_err(|e| {
        anyhow::Error::new(e).context(format!("{what} is JSON of an unexpected shape"))
    })
}

fn shape_error(e: serde_json::Error, what: &str) -> anyhow::Error {
    let said = match e.classify() {
        Category::Data => "printed JSON of an unexpected shape",
        Category::Io | Category::Syntax | Category::Eof => "did not print JSON",
    };
    anyhow::Error::new(e).context(format!("{what} {said}"))
}

/// Text that is there and not empty (scanners print `""` for "none").
pub(crate) fn non_empty(text: Option<String>) -> Option<String> {
    text.filter(|t| !t.is_empty())
}

/// A number the CLI prints either as a JSON number or as text (`"12"`, `"1.2GB"`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub(crate) enum NumberOrText {
    /// A JSON number.
    Number(serde_json::Number),
    /// Text, as the CLI formats it.
    Text(String),
}

/// A JSON object of strings, its entries in document order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Pairs(pub(crate) Vec<(String, String)>);

impl<'de> Deserialize<'de> for Pairs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Pairs, D::Error> {
        struct PairsVisitor;
        impl<'de> Visitor<'de> for PairsVisitor {
            type Value = Pairs;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Pairs, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry::<String, String>()? {
                    out.push(entry);
                }
                Ok(Pairs(out))
            }
        }
        d.deserialize_map(PairsVisitor)
    }
}

/// An image platform as indexes, configs and buildx name it; a part left out is `None`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub(crate) struct Platform {
    /// `linux`.
    #[serde(default)]
    pub(crate) os: Option<String>,
    /// `amd64`.
    #[serde(default)]
    pub(crate) architecture: Option<String>,
    /// `v8`.
    #[serde(default)]
    pub(crate) variant: Option<String>,
}

impl Platform {
    /// `os/architecture[/variant]` (an empty variant left out); `None` without both os
    /// and architecture.
    pub(crate) fn name(&self) -> Option<String> {
        let (os, arch) = (self.os.as_deref()?, self.architecture.as_deref()?);
        Some(match self.variant.as_deref() {
            Some(v) if !v.is_empty() => format!("{os}/{arch}/{v}"),
            _ => format!("{os}/{arch}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Row {
        #[serde(rename = "Id")]
        id: String,
        #[serde(rename = "Env", default, deserialize_with = "nullable")]
        env: Vec<String>,
        #[serde(rename = "Labels", default, deserialize_with = "nullable")]
        labels: Pairs,
    }

    #[test]
    fn rows_read_null_as_empty_and_keep_order() {
        let row: Row = parse(r#"{"Id":"x","Env":null,"Labels":{"b":"1","a":"2"}}"#, "t").unwrap();
        assert_eq!(row.id, "x");
        assert!(row.env.is_empty());
        assert_eq!(
            row.labels.0,
            vec![("b".into(), "1".into()), ("a".into(), "2".into())]
        );
        let row: Row = parse(r#"{"Id":"y"}"#, "t").unwrap();
        assert!(row.labels.0.is_empty() && row.id == "y");
    }

    #[test]
    fn an_array_where_one_object_was_expected_is_said() {
        let e = parse::<Row>(r#"[{"Id":"x"}]"#, "`docker image inspect app`").unwrap_err();
        assert!(
            format!("{e:#}").contains(
                "`docker image inspect app` printed a JSON array where one JSON object was expected"
            ),
            "{e:#}"
        );
        // A list where a list is expected is read as one.
        let rows: Vec<Row> = parse(r#"[{"Id":"x"}]"#, "t").unwrap();
        assert_eq!(rows.len(), 1);
    }

    #[test]
    fn errors_name_the_command_and_the_field() {
        let e = parse::<Row>(r#"{"Env":[]}"#, "`docker x`").unwrap_err();
        let text = format!("{e:#}");
        assert!(
            text.contains("`docker x` printed JSON of an unexpected shape"),
            "{text}"
        );
        assert!(text.contains("missing field `Id`"), "{text}");
        let e = parse::<Row>("not json", "`docker x`").unwrap_err();
        assert!(format!("{e:#}").contains("`docker x` did not print JSON"));
    }

    #[test]
    fn platform_names() {
        let p: Platform =
            serde_json::from_str(r#"{"os":"linux","architecture":"arm64","variant":""}"#).unwrap();
        assert_eq!(p.name().as_deref(), Some("linux/arm64"));
        assert_eq!(Platform::default().name(), None);
    }
}
