//! What PyInstaller's analysis can learn from one Python module, read by a tokenizer.
//!
//! PyInstaller's analysis of a module depends on its import statements (every
//! `import`/`from … import` anywhere in it, at any depth), on `__all__` (star imports of
//! a package), and on calls it follows by name (`ctypes` libraries, `__import__`,
//! `importlib`, namespace packages). [`fingerprint`] tokenizes the source (strings,
//! comments, brackets and line continuations as Python reads them, so an `import` in a
//! string or a comment is not one) and keeps exactly those: two versions of a module with
//! the same fingerprint give the same analysis. A module that names one of the dynamic
//! markers is fingerprinted by its whole text, so any change to it takes the full path.

use anyhow::{bail, Result};

/// Names whose use makes a module's effect on the analysis depend on more than its
/// import statements: dynamic imports, libraries loaded by name, search-path changes,
/// namespace packages.
const DYNAMIC: &[&str] = &[
    "__import__",
    "import_module",
    "importlib",
    "ctypes",
    "cdll",
    "CDLL",
    "LoadLibrary",
    "find_library",
    "pkg_resources",
    "pkgutil",
    "extend_path",
    "declare_namespace",
    "__path__",
    "exec",
    "eval",
];

/// The parts of a module that decide PyInstaller's analysis of it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Fingerprint {
    /// Every import statement, tokens joined by one space, sorted, without duplicates.
    pub imports: Vec<String>,
    /// Every statement assigning or extending `__all__`, normalized the same way.
    pub all: Vec<String>,
    /// The dynamic markers the module names (sorted); empty for a plain module.
    pub dynamic: Vec<String>,
    /// The sha256 of the whole text when [`Fingerprint::dynamic`] is not empty.
    pub text: Option<String>,
}

impl Fingerprint {
    /// What changed from `old` to `self`, in words (`+import json`, `-from . import x`),
    /// or `None` when they are the same.
    pub(crate) fn difference(&self, old: &Fingerprint) -> Option<String> {
        if self == old {
            return None;
        }
        if !self.dynamic.is_empty() || !old.dynamic.is_empty() {
            let names = if self.dynamic.is_empty() {
                &old.dynamic
            } else {
                &self.dynamic
            };
            return Some(format!(
                "it uses {} (its effect on the analysis cannot be proven from its imports)",
                names.join(", ")
            ));
        }
        let mut parts = Vec::new();
        for line in self.imports.iter().filter(|l| !old.imports.contains(l)) {
            parts.push(format!("+{line}"));
        }
        for line in old.imports.iter().filter(|l| !self.imports.contains(l)) {
            parts.push(format!("-{line}"));
        }
        if self.all != old.all {
            parts.push("__all__ changed".into());
        }
        Some(format!("its imports changed ({})", parts.join(", ")))
    }
}

/// A token: what matters to find statements.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A name or keyword.
    Name(String),
    /// An operator or delimiter, one or more characters.
    Op(String),
    /// A number (its text).
    Number(String),
    /// A string literal (its text, prefix and quotes included).
    Str(String),
    /// The end of a logical line.
    Newline,
}

/// The fingerprint of `source`, or an error when it cannot be tokenized (an unclosed
/// string or bracket).
pub(crate) fn fingerprint(source: &str) -> Result<Fingerprint> {
    let tokens = tokenize(source)?;
    let mut imports = Vec::new();
    let mut all = Vec::new();
    let mut dynamic = Vec::new();
    for statement in statements(&tokens) {
        for token in statement {
            match token {
                Token::Name(name) if DYNAMIC.contains(&name.as_str()) => dynamic.push(name.clone()),
                // An f-string can call anything: its text is searched for the markers.
                Token::Str(text)
                    if is_f_string(text)
                        && (text.contains("import")
                            || DYNAMIC.iter().any(|n| text.contains(n))) =>
                {
                    dynamic.push("an f-string that may import".to_string())
                }
                _ => {}
            }
        }
        let joined = || join(statement);
        let names_import = statement
            .iter()
            .any(|t| matches!(t, Token::Name(n) if n == "import"));
        if names_import {
            imports.push(joined());
        }
        if statement
            .iter()
            .any(|t| matches!(t, Token::Name(n) if n == "__all__"))
        {
            all.push(joined());
        }
    }
    imports.sort();
    imports.dedup();
    all.sort();
    all.dedup();
    dynamic.sort();
    dynamic.dedup();
    let text = (!dynamic.is_empty()).then(|| crate::hash::sha256_hex(source.as_bytes()));
    Ok(Fingerprint {
        imports,
        all,
        dynamic,
        text,
    })
}

fn is_f_string(text: &str) -> bool {
    text.chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .any(|c| c == 'f' || c == 'F')
}

/// A statement's tokens as Python would print it: `from .y import (a, b)`,
/// `import packaging.version`.
fn join(tokens: &[Token]) -> String {
    let mut out = String::new();
    let mut previous: Option<&str> = None;
    for token in tokens {
        let text = text_of(token);
        let space = match previous {
            None => false,
            Some("(") | Some("[") => false,
            // After a dot, a name joins (`a.b`, `.y`) but a keyword does not (`. import`).
            Some(".") => text == "import",
            Some(p) => match text {
                "." => p == "from" || p == "import",
                ")" | "]" | "," => false,
                _ => true,
            },
        };
        if space {
            out.push(' ');
        }
        out.push_str(text);
        previous = Some(text);
    }
    out
}

fn text_of(token: &Token) -> &str {
    match token {
        Token::Name(s) | Token::Op(s) | Token::Number(s) | Token::Str(s) => s,
        Token::Newline => "",
    }
}

/// Splits the tokens into simple statements: at the end of a logical line, at `;`, and
/// after the `:` that ends a compound statement's header (`if x: import y`), where the
/// `:` is not inside brackets, a `lambda` or a slice.
fn statements(tokens: &[Token]) -> Vec<&[Token]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut depth = 0usize;
    let mut lambdas = 0usize;
    for (i, token) in tokens.iter().enumerate() {
        let split = match token {
            Token::Op(op) if matches!(op.as_str(), "(" | "[" | "{") => {
                depth += 1;
                false
            }
            Token::Op(op) if matches!(op.as_str(), ")" | "]" | "}") => {
                depth = depth.saturating_sub(1);
                false
            }
            Token::Name(n) if n == "lambda" => {
                lambdas += 1;
                false
            }
            Token::Op(op) if op == ":" && depth == 0 => {
                if lambdas > 0 {
                    lambdas -= 1;
                    false
                } else {
                    true
                }
            }
            Token::Op(op) => op == ";",
            Token::Newline => true,
            _ => false,
        };
        if split {
            if i > start {
                out.push(&tokens[start..i]);
            }
            start = i + 1;
            lambdas = 0;
        }
    }
    if tokens.len() > start {
        out.push(&tokens[start..]);
    }
    out
}

/// Python's tokens, as far as statements go: comments dropped, strings whole,
/// newlines inside brackets or after a backslash joined.
fn tokenize(source: &str) -> Result<Vec<Token>> {
    let chars: Vec<char> = source.chars().collect();
    let mut tokens = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    let mut line = 1;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\n' => {
                line += 1;
                if depth == 0 && !matches!(tokens.last(), None | Some(Token::Newline)) {
                    tokens.push(Token::Newline);
                }
                i += 1;
            }
            '\\' if chars.get(i + 1) == Some(&'\n') => {
                line += 1;
                i += 2;
            }
            '\\' if chars.get(i + 1) == Some(&'\r') && chars.get(i + 2) == Some(&'\n') => {
                line += 1;
                i += 3;
            }
            c if c.is_whitespace() => i += 1,
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '\'' | '"' => {
                let (end, lines) = string_end(&chars, i)
                    .ok_or_else(|| anyhow::anyhow!("line {line}: a string is not closed"))?;
                tokens.push(Token::Str(chars[i..end].iter().collect()));
                line += lines;
                i = end;
            }
            c if c.is_alphabetic() || c == '_' => {
                let begin = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                let word: String = chars[begin..i].iter().collect();
                // A string prefix (r, b, f, u, rb, br, fr, rf in any case) followed by a quote.
                if word.len() <= 2
                    && word
                        .chars()
                        .all(|c| matches!(c.to_ascii_lowercase(), 'r' | 'b' | 'f' | 'u'))
                    && matches!(chars.get(i), Some('\'') | Some('"'))
                {
                    let (end, lines) = string_end(&chars, i)
                        .ok_or_else(|| anyhow::anyhow!("line {line}: a string is not closed"))?;
                    tokens.push(Token::Str(chars[begin..end].iter().collect()));
                    line += lines;
                    i = end;
                } else {
                    tokens.push(Token::Name(word));
                }
            }
            c if c.is_ascii_digit() => {
                let begin = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric()
                        || chars[i] == '_'
                        || chars[i] == '.'
                        || ((chars[i] == '+' || chars[i] == '-')
                            && matches!(chars[i - 1], 'e' | 'E')
                            && !chars[begin..i].iter().any(|c| matches!(c, 'x' | 'X'))))
                {
                    i += 1;
                }
                tokens.push(Token::Number(chars[begin..i].iter().collect()));
            }
            '(' | '[' | '{' => {
                depth += 1;
                tokens.push(Token::Op(c.to_string()));
                i += 1;
            }
            ')' | ']' | '}' => {
                depth = depth.saturating_sub(1);
                tokens.push(Token::Op(c.to_string()));
                i += 1;
            }
            _ => {
                tokens.push(Token::Op(c.to_string()));
                i += 1;
            }
        }
    }
    if depth != 0 {
        bail!("a bracket is not closed at the end of the file");
    }
    Ok(tokens)
}

/// The index after the string starting with the quote at `start`, and the newlines it
/// holds; `None` when it does not end.
fn string_end(chars: &[char], start: usize) -> Option<(usize, usize)> {
    let quote = chars[start];
    let triple = chars.get(start + 1) == Some(&quote) && chars.get(start + 2) == Some(&quote);
    let mut i = start + if triple { 3 } else { 1 };
    let mut lines = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            // Even in a raw string a backslash keeps the next quote from ending it.
            if chars.get(i + 1) == Some(&'\n') {
                lines += 1;
            }
            i += 2;
            continue;
        }
        if c == '\n' {
            if !triple {
                return None;
            }
            lines += 1;
        }
        if c == quote {
            if !triple {
                return Some((i + 1, lines));
            }
            if chars.get(i + 1) == Some(&quote) && chars.get(i + 2) == Some(&quote) {
                return Some((i + 3, lines));
            }
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn imports(source: &str) -> Vec<String> {
        fingerprint(source).unwrap().imports
    }

    #[test]
    fn import_statements_anywhere_are_found_and_normalized() {
        let source = "\"\"\"Docs: import os is not an import.\"\"\"\n\
            import sys\n\
            from . import (a,\n    b)  # import c\n\
            def f():\n    import json as j; x = 1\n\
            if x: from .y import z\n\
            s = 'import nothing'\n\
            t = x[1:2]; import re\n\
            try:\n    import tomllib\nexcept ImportError:\n    tomllib = None\n\
            v = \\\n  3\n";
        assert_eq!(
            imports(source),
            vec![
                "from . import (a, b)",
                "from .y import z",
                "import json as j",
                "import re",
                "import sys",
                "import tomllib",
            ]
        );
    }

    #[test]
    fn a_body_edit_keeps_the_fingerprint_and_an_import_change_does_not() {
        let old = fingerprint("import os\nMARGIN = 12\n\ndef f():\n    return os.sep\n").unwrap();
        let body =
            fingerprint("import os\nMARGIN = 37\n\ndef f():\n    return os.sep * 2\n").unwrap();
        assert_eq!(body.difference(&old), None);
        let added = fingerprint("import os\nimport json\nMARGIN = 12\n").unwrap();
        assert_eq!(
            added.difference(&old).unwrap(),
            "its imports changed (+import json)"
        );
        let moved = fingerprint("MARGIN = 12\n\ndef f():\n    import os\n").unwrap();
        assert_eq!(
            moved.difference(&old),
            None,
            "where an import sits does not matter"
        );
        let all = fingerprint("import os\n__all__ = ['f']\n").unwrap();
        assert_eq!(
            all.difference(&old).unwrap(),
            "its imports changed (__all__ changed)"
        );
    }

    #[test]
    fn dynamic_modules_are_fingerprinted_by_their_text() {
        let a = fingerprint("import ctypes\nlib = ctypes.CDLL('libm.so.6')\n").unwrap();
        let b = fingerprint("import ctypes\nlib = ctypes.CDLL('libc.so.6')\n").unwrap();
        assert_eq!(a.dynamic, vec!["CDLL", "ctypes"]);
        assert!(b.difference(&a).unwrap().contains("CDLL, ctypes"));
        let f = fingerprint("x = f\"{__import__('os').sep}\"\n").unwrap();
        assert!(!f.dynamic.is_empty(), "an f-string can import");
        let plain = fingerprint("x = 'ctypes'\n# __import__\n").unwrap();
        assert!(
            plain.dynamic.is_empty(),
            "strings and comments are not names"
        );
    }

    #[test]
    fn strings_of_every_shape_and_errors() {
        let source = "a = rb'\\''\nb = '''x\nimport os\n'''\nc = \"\\\"\"\nimport sys\n";
        assert_eq!(imports(source), vec!["import sys"]);
        assert!(fingerprint("x = 'open\n").is_err());
        assert!(fingerprint("x = (1,\n").is_err());
        assert_eq!(imports("x = 1e-3; import os\n"), vec!["import os"]);
        assert_eq!(imports("f = lambda: 1; import os\n"), vec!["import os"]);
    }
}
