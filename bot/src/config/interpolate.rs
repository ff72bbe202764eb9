//! `${VAR}` in string values, replaced from the environment before anything else is read.
//!
//! Only string values are expanded (never keys), each once: a variable's value is not scanned
//! again, so a secret containing `${` stays as it is. `$${` writes a literal `${`.

use toml::{Table, Value};

use super::error::Problems;
use super::path::KeyPath;

/// Expands every string value in `table`. A value that cannot be expanded is left as it is and
/// poisoned (see [`Problems::poison`]), with one problem per missing variable.
pub(crate) fn interpolate_table(
    table: &mut Table,
    at: &KeyPath,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Problems,
) {
    for (key, value) in table.iter_mut() {
        if may_refer(value) {
            interpolate_value(value, &at.key(key), env, problems);
        }
    }
}

/// Whether `value` may hold a `${…}` (or `$${`) to replace; the rest is skipped without
/// building its key path, which matters with 100,000 people.
fn may_refer(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains('$'),
        Value::Array(_) | Value::Table(_) => true,
        Value::Integer(_) | Value::Float(_) | Value::Boolean(_) | Value::Datetime(_) => false,
    }
}

fn interpolate_value(
    value: &mut Value,
    at: &KeyPath,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Problems,
) {
    match value {
        Value::String(text) => match expand(text, env) {
            Ok(expanded) => {
                // A problem about this value must not quote what came from the environment.
                for name in referenced_names(text) {
                    if let Some(value) = env(&name) {
                        problems.hide(value, name);
                    }
                }
                *text = expanded;
            }
            Err(messages) => {
                for message in messages {
                    problems.add(at, message);
                }
                problems.poison(at);
            }
        },
        Value::Array(items) => {
            for (index, item) in items.iter_mut().enumerate() {
                if may_refer(item) {
                    interpolate_value(item, &at.index(index), env, problems);
                }
            }
        }
        Value::Table(table) => interpolate_table(table, at, env, problems),
        Value::Integer(_) | Value::Float(_) | Value::Boolean(_) | Value::Datetime(_) => {}
    }
}

/// `text` with every `${NAME}` replaced, or one message per reference that could not be.
/// Messages name the variable, never the text around it (which may be a secret).
fn expand(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, Vec<String>> {
    let mut out = String::with_capacity(text.len());
    let mut errors = Vec::new();
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar..];
        if let Some(escaped) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = escaped;
        } else if let Some(reference) = after.strip_prefix("${") {
            let Some(end) = reference.find('}') else {
                errors.push("unterminated `${` (write `$${` for a literal `${`)".to_owned());
                return Err(errors);
            };
            let name = &reference[..end];
            if !is_variable_name(name) {
                errors.push(format!(
                    "invalid variable name {name:?} in `${{…}}`: use letters, digits and '_'"
                ));
            } else {
                match env(name) {
                    Some(value) => out.push_str(&value),
                    None => errors.push(format!("environment variable {name} is not set")),
                }
            }
            rest = &reference[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// The variables `text` refers to with `${NAME}` (not `$${`, which is a literal).
fn referenced_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        let after = &rest[dollar..];
        if let Some(escaped) = after.strip_prefix("$${") {
            rest = escaped;
        } else if let Some(reference) = after.strip_prefix("${") {
            let Some(end) = reference.find('}') else {
                break;
            };
            names.push(reference[..end].to_owned());
            rest = &reference[end + 1..];
        } else {
            rest = &after[1..];
        }
    }
    names
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("abc".to_owned()),
            "EMPTY" => Some(String::new()),
            "TRICKY" => Some("${TOKEN}".to_owned()),
            _ => None,
        }
    }

    #[test]
    fn expands_references() {
        for (text, expected) in [
            ("plain", "plain"),
            ("${TOKEN}", "abc"),
            ("Bearer ${TOKEN}!", "Bearer abc!"),
            ("${TOKEN}${TOKEN}", "abcabc"),
            ("${EMPTY}", ""),
            ("costs $5", "costs $5"),
            ("$TOKEN", "$TOKEN"),
            ("trailing $", "trailing $"),
            ("$${TOKEN}", "${TOKEN}"),
            ("$$${TOKEN}", "$${TOKEN}"),
            ("${TRICKY}", "${TOKEN}"),
            ("ünïcode ${TOKEN} ✓", "ünïcode abc ✓"),
        ] {
            assert_eq!(expand(text, &env).as_deref(), Ok(expected), "{text:?}");
        }
    }

    #[test]
    fn reports_every_bad_reference() {
        for (text, expected) in [
            (
                "${MISSING}",
                vec!["environment variable MISSING is not set"],
            ),
            (
                "${A}-${TOKEN}-${B}",
                vec![
                    "environment variable A is not set",
                    "environment variable B is not set",
                ],
            ),
            (
                "${}",
                vec![r#"invalid variable name "" in `${…}`: use letters, digits and '_'"#],
            ),
            (
                "${BAD-NAME}",
                vec![r#"invalid variable name "BAD-NAME" in `${…}`: use letters, digits and '_'"#],
            ),
            (
                "${TOKEN",
                vec!["unterminated `${` (write `$${` for a literal `${`)"],
            ),
        ] {
            let expected: Vec<String> = expected.into_iter().map(str::to_owned).collect();
            assert_eq!(expand(text, &env), Err(expected), "{text:?}");
        }
    }

    #[test]
    fn walks_nested_values_and_poisons_what_failed() {
        let mut table: Table = toml::from_str(
            r#"
            a = "${TOKEN}"
            list = ["x", "${NOPE}"]
            [nested]
            b = { c = "${TOKEN}", d = 5 }
            "#,
        )
        .expect("valid TOML");
        let mut problems = Problems::default();
        interpolate_table(&mut table, &KeyPath::root(), &env, &mut problems);

        assert_eq!(table["a"].as_str(), Some("abc"));
        assert_eq!(table["nested"]["b"]["c"].as_str(), Some("abc"));
        assert_eq!(table["list"][1].as_str(), Some("${NOPE}"));
        let bad = KeyPath::root().key("list").index(1);
        assert!(problems.is_poisoned(&bad));
        let errors = problems.finish(()).expect_err("one problem");
        assert_eq!(
            errors.problems(),
            [super::super::ConfigProblem {
                path: "list[1]".to_owned(),
                message: "environment variable NOPE is not set".to_owned(),
            }]
        );
    }
}
