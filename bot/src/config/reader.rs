//! Reading typed values out of TOML tables while collecting every problem, with key paths and
//! "did you mean" hints for unknown keys.
//!
//! Each field is read on its own, so one bad value never hides the problems of its neighbours.
//! A reader returns `Err(Invalid)` after recording why; callers only decide what else depends
//! on the value.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use greenlight_commands::{AppName, EnvironmentName, PersonName};
use toml::{Table, Value};
use url::Url;

use super::error::Problems;
use super::path::KeyPath;
use super::values::{
    DatabaseUrl, DiscordPublicKey, Email, GithubLogin, GroupName, ImageRepository, Principal,
    RepositoryName, SlackChannelId, SlackUserId, Snowflake,
};
use crate::secret::{Secret, SecretList};

/// A value was present but unusable; its problem is already recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Invalid;

/// A value read from the configuration, with what is wrong with it recorded in `Problems`.
pub(crate) trait FromValue: Sized {
    fn from_value(value: &Value, at: &KeyPath, problems: &mut Problems) -> Result<Self, Invalid>;
}

/// Reads `value` unless expanding its `${VAR}` failed, which was already reported.
pub(crate) fn read<T>(
    value: &Value,
    at: &KeyPath,
    problems: &mut Problems,
    parse: impl FnOnce(&Value, &KeyPath, &mut Problems) -> Result<T, Invalid>,
) -> Result<T, Invalid> {
    if problems.is_poisoned(at) {
        Err(Invalid)
    } else {
        parse(value, at, problems)
    }
}

/// The keys of one table, read one by one; whatever is left over is an unknown key.
pub(crate) struct Fields<'t, 'p> {
    table: &'t Table,
    at: KeyPath,
    problems: &'p mut Problems,
    known: Vec<&'static str>,
}

impl<'t, 'p> Fields<'t, 'p> {
    pub(crate) fn new(table: &'t Table, at: &KeyPath, problems: &'p mut Problems) -> Self {
        Self {
            table,
            at: at.clone(),
            problems,
            known: Vec::new(),
        }
    }

    pub(crate) fn problems(&mut self) -> &mut Problems {
        self.problems
    }

    pub(crate) fn path(&self, key: &str) -> KeyPath {
        self.at.key(key)
    }

    /// Whether `key` is present, without reading it.
    pub(crate) fn has(&self, key: &str) -> bool {
        self.table.contains_key(key)
    }

    pub(crate) fn optional_with<T>(
        &mut self,
        key: &'static str,
        parse: impl FnOnce(&Value, &KeyPath, &mut Problems) -> Result<T, Invalid>,
    ) -> Result<Option<T>, Invalid> {
        self.known.push(key);
        match self.table.get(key) {
            None => Ok(None),
            Some(value) => read(value, &self.at.key(key), self.problems, parse).map(Some),
        }
    }

    pub(crate) fn optional<T: FromValue>(
        &mut self,
        key: &'static str,
    ) -> Result<Option<T>, Invalid> {
        self.optional_with(key, T::from_value)
    }

    /// Reads `key`, reporting it as missing with `hint` (what to write there) when absent.
    pub(crate) fn required_with<T>(
        &mut self,
        key: &'static str,
        hint: &str,
        parse: impl FnOnce(&Value, &KeyPath, &mut Problems) -> Result<T, Invalid>,
    ) -> Result<T, Invalid> {
        match self.optional_with(key, parse)? {
            Some(value) => Ok(value),
            None => {
                let at = self.at.key(key);
                self.problems.add(&at, format!("missing; {hint}"));
                Err(Invalid)
            }
        }
    }

    pub(crate) fn required<T: FromValue>(
        &mut self,
        key: &'static str,
        hint: &str,
    ) -> Result<T, Invalid> {
        self.required_with(key, hint, T::from_value)
    }

    pub(crate) fn or_default<T: FromValue>(
        &mut self,
        key: &'static str,
        default: T,
    ) -> Result<T, Invalid> {
        self.optional(key).map(|value| value.unwrap_or(default))
    }

    /// Reports every key that was not read, suggesting the closest known key.
    pub(crate) fn finish(self) {
        for key in self.table.keys() {
            if self.known.contains(&key.as_str()) {
                continue;
            }
            let message = match did_you_mean(key, self.known.iter().copied()) {
                Some(suggestion) => format!("unknown key; did you mean {suggestion:?}?"),
                None => format!("unknown key; expected one of {}", self.known.join(", ")),
            };
            self.problems.add(&self.at.key(key), message);
        }
    }

    /// Like [`Self::finish`] when the remaining keys cannot be judged (a deploy of unknown kind).
    pub(crate) fn abandon(self) {}
}

/// `value` as a table, or a problem saying what it is instead.
pub(crate) fn table<'v>(
    value: &'v Value,
    at: &KeyPath,
    problems: &mut Problems,
) -> Result<&'v Table, Invalid> {
    match value {
        Value::Table(table) => Ok(table),
        other => {
            problems.add(at, format!("expected a table, found {}", describe(other)));
            Err(Invalid)
        }
    }
}

/// `value` as a string, or a problem saying what it is instead (without repeating it).
pub(crate) fn text<'v>(
    value: &'v Value,
    at: &KeyPath,
    problems: &mut Problems,
    expected: &str,
) -> Result<&'v str, Invalid> {
    match value {
        Value::String(text) => Ok(text),
        other => {
            problems.add(
                at,
                format!("expected {expected}, found {}", describe(other)),
            );
            Err(Invalid)
        }
    }
}

/// Reads each element of an array with `parse`; every bad element is reported.
pub(crate) fn list_with<T>(
    value: &Value,
    at: &KeyPath,
    problems: &mut Problems,
    expected: &str,
    mut parse: impl FnMut(&Value, &KeyPath, &mut Problems) -> Result<T, Invalid>,
) -> Result<Vec<T>, Invalid> {
    let Value::Array(items) = value else {
        problems.add(
            at,
            format!("expected an array of {expected}, found {}", describe(value)),
        );
        return Err(Invalid);
    };
    let mut parsed = Vec::with_capacity(items.len());
    let mut failed = false;
    for (index, item) in items.iter().enumerate() {
        match read(item, &at.index(index), problems, &mut parse) {
            Ok(value) => parsed.push(value),
            Err(Invalid) => failed = true,
        }
    }
    if failed {
        Err(Invalid)
    } else {
        Ok(parsed)
    }
}

/// Reads a string and parses it with `parse`, whose message is reported as it is.
pub(crate) fn parsed_text<T>(
    value: &Value,
    at: &KeyPath,
    problems: &mut Problems,
    expected: &str,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, Invalid> {
    let text = text(value, at, problems, expected)?;
    parse(text).map_err(|message| {
        problems.add(at, message);
        Invalid
    })
}

fn describe(value: &Value) -> String {
    match value {
        Value::Array(_) => "an array".to_owned(),
        Value::Integer(_) => "an integer".to_owned(),
        other => format!("a {}", other.type_str()),
    }
}

pub(crate) use greenlight_commands::suggest::did_you_mean;

/// ` (did you mean "x"?)` or nothing, for messages about unknown names.
pub(crate) fn suggestion_suffix<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> String {
    did_you_mean(word, candidates)
        .map(|suggestion| format!("; did you mean {suggestion:?}?"))
        .unwrap_or_default()
}

impl FromValue for bool {
    /// `${VAR}` always yields a string, so "true" and "false" are accepted too.
    fn from_value(value: &Value, at: &KeyPath, problems: &mut Problems) -> Result<Self, Invalid> {
        match value {
            Value::Boolean(flag) => Ok(*flag),
            Value::String(text) if text == "true" => Ok(true),
            Value::String(text) if text == "false" => Ok(false),
            other => {
                problems.add(
                    at,
                    format!("expected true or false, found {}", describe(other)),
                );
                Err(Invalid)
            }
        }
    }
}

/// A non-negative integer that fits `T`; digits in a string are accepted because `${VAR}`
/// always yields a string.
fn integer<T: TryFrom<i64> + std::str::FromStr>(
    value: &Value,
    at: &KeyPath,
    problems: &mut Problems,
) -> Result<T, Invalid> {
    let parsed = match value {
        Value::Integer(number) => T::try_from(*number).ok(),
        Value::String(text) if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => {
            text.parse().ok()
        }
        other => {
            problems.add(
                at,
                format!("expected a whole number, found {}", describe(other)),
            );
            return Err(Invalid);
        }
    };
    parsed.ok_or_else(|| {
        let shown = match value {
            Value::Integer(number) => number.to_string(),
            other => format!("{:?}", other.as_str().unwrap_or_default()),
        };
        problems.add(at, format!("{shown} is out of range"));
        Invalid
    })
}

impl FromValue for u32 {
    fn from_value(value: &Value, at: &KeyPath, problems: &mut Problems) -> Result<Self, Invalid> {
        integer(value, at, problems)
    }
}

impl FromValue for u64 {
    fn from_value(value: &Value, at: &KeyPath, problems: &mut Problems) -> Result<Self, Invalid> {
        integer(value, at, problems)
    }
}

impl FromValue for String {
    fn from_value(value: &Value, at: &KeyPath, problems: &mut Problems) -> Result<Self, Invalid> {
        let text = text(value, at, problems, "a string")?;
        if text.trim().is_empty() {
            problems.add(at, "must not be empty");
            return Err(Invalid);
        }
        Ok(text.to_owned())
    }
}

/// The longest duration accepted anywhere: beyond this a value is surely a typo, and keeping
/// durations small keeps time arithmetic elsewhere far from overflow.
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 60 * 60);

impl FromValue for Duration {
    fn from_value(value: &Value, at: &KeyPath, problems: &mut Problems) -> Result<Self, Invalid> {
        parsed_text(
            value,
            at,
            problems,
            "a duration like \"30s\", \"5m\" or \"24h\"",
            |text| {
                let duration = humantime::parse_duration(text).map_err(|_| {
                format!("invalid duration {text:?}: expected a number and a unit, like \"30s\", \"5m\" or \"24h\"")
            })?;
                if duration > MAX_DURATION {
                    Err(format!("duration {text:?} is longer than a year"))
                } else {
                    Ok(duration)
                }
            },
        )
    }
}

impl FromValue for SocketAddr {
    fn from_value(value: &Value, at: &KeyPath, problems: &mut Problems) -> Result<Self, Invalid> {
        parsed_text(
            value,
            at,
            problems,
            "an address like \"127.0.0.1:8080\"",
            parse_socket_addr,
        )
    }
}

pub(crate) fn parse_socket_addr(text: &str) -> Result<SocketAddr, String> {
    text.parse().map_err(|_| {
        format!("invalid socket address {text:?}: expected IP:PORT, like \"127.0.0.1:8080\" or \"0.0.0.0:8080\"")
    })
}

/// Every URL in the configuration is an HTTP(S) URL (the database's is a [`DatabaseUrl`]).
impl FromValue for Url {
    fn from_value(value: &Value, at: &KeyPath, problems: &mut Problems) -> Result<Self, Invalid> {
        parsed_text(value, at, problems, "a URL", parse_http_url)
    }
}

pub(crate) fn parse_http_url(text: &str) -> Result<Url, String> {
    // A URL with credentials must not be repeated in a message.
    let shown = if text.contains('@') {
        "(not shown: it may contain credentials)".to_owned()
    } else {
        format!("{text:?}")
    };
    let url = Url::parse(text).map_err(|error| format!("invalid URL {shown}: {error}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "invalid URL {shown}: must start with http:// or https://"
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("invalid URL {shown}: no host"));
    }
    if url.password().is_some() {
        return Err("URL must not contain a password: it would show in logs".to_owned());
    }
    Ok(url)
}

impl FromValue for PathBuf {
    fn from_value(value: &Value, at: &KeyPath, problems: &mut Problems) -> Result<Self, Invalid> {
        String::from_value(value, at, problems).map(PathBuf::from)
    }
}

impl FromValue for Secret {
    /// Messages never show the value: not even its length, or what it looks like.
    fn from_value(value: &Value, at: &KeyPath, problems: &mut Problems) -> Result<Self, Invalid> {
        let text = text(value, at, problems, "a string")?;
        if text.is_empty() {
            problems.add(at, "must not be empty");
            return Err(Invalid);
        }
        if text.trim() != text {
            // Usually a newline copied along with the secret; it would never match.
            problems.add(at, "starts or ends with whitespace (value not shown)");
            return Err(Invalid);
        }
        Ok(Secret::new(text))
    }
}

impl FromValue for SecretList {
    /// A single string, or an array of strings to accept several during a rotation.
    fn from_value(value: &Value, at: &KeyPath, problems: &mut Problems) -> Result<Self, Invalid> {
        match value {
            Value::Array(_) => {
                let secrets = list_with(value, at, problems, "strings", Secret::from_value)?;
                SecretList::from_vec(secrets).ok_or_else(|| {
                    problems.add(at, "must list at least one secret");
                    Invalid
                })
            }
            _ => Secret::from_value(value, at, problems).map(SecretList::single),
        }
    }
}

impl<T: FromValue> FromValue for Vec<T> {
    fn from_value(value: &Value, at: &KeyPath, problems: &mut Problems) -> Result<Self, Invalid> {
        list_with(value, at, problems, "values", T::from_value)
    }
}

impl FromValue for Snowflake {
    /// Written as a string (JSON-style, since they exceed 2^53) or as a TOML integer.
    fn from_value(value: &Value, at: &KeyPath, problems: &mut Problems) -> Result<Self, Invalid> {
        match value {
            Value::Integer(number) => {
                match u64::try_from(*number).ok().and_then(Snowflake::from_u64) {
                    Some(id) => Ok(id),
                    None => {
                        problems.add(at, format!("invalid Discord id {number}"));
                        Err(Invalid)
                    }
                }
            }
            _ => parsed_text(value, at, problems, "a Discord id", Snowflake::parse),
        }
    }
}

macro_rules! from_text {
    ($($type:ty => $expected:literal, $parse:expr;)+) => {$(
        impl FromValue for $type {
            fn from_value(value: &Value, at: &KeyPath, problems: &mut Problems) -> Result<Self, Invalid> {
                parsed_text(value, at, problems, $expected, $parse)
            }
        }
    )+};
}

from_text! {
    SlackUserId => "a Slack user id", SlackUserId::parse;
    SlackChannelId => "a Slack channel id", SlackChannelId::parse;
    DiscordPublicKey => "a hexadecimal key", DiscordPublicKey::parse;
    GithubLogin => "a GitHub login", GithubLogin::parse;
    Email => "an e-mail address", Email::parse;
    RepositoryName => "owner/name", RepositoryName::parse;
    ImageRepository => "an image repository", ImageRepository::parse;
    DatabaseUrl => "a database URL", DatabaseUrl::parse;
    GroupName => "a group name", GroupName::parse;
    Principal => "a person or group:NAME", Principal::parse;
    PersonName => "a person's name", |text| PersonName::parse(text).map_err(|error| error.to_string());
    AppName => "an app name", |text| AppName::parse(text).map_err(|error| error.to_string());
    EnvironmentName => "an environment name", |text| EnvironmentName::parse(text).map_err(|error| error.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_one<T: FromValue>(toml_value: &str) -> Result<T, Vec<String>> {
        let table: Table = toml::from_str(&format!("x = {toml_value}")).expect("valid TOML");
        let mut problems = Problems::default();
        let value = T::from_value(&table["x"], &KeyPath::root().key("x"), &mut problems);
        match (value, problems.finish(())) {
            (Ok(value), Ok(())) => Ok(value),
            (_, Err(errors)) => Err(errors
                .problems()
                .iter()
                .map(|p| p.message.clone())
                .collect()),
            (Err(Invalid), Ok(())) => panic!("Invalid without a problem"),
        }
    }

    #[test]
    fn durations() {
        for (text, seconds) in [
            (r#""30s""#, 30),
            (r#""5m""#, 300),
            (r#""24h""#, 86_400),
            (r#""1h 30m""#, 5_400),
            (r#""0s""#, 0),
        ] {
            assert_eq!(
                read_one::<Duration>(text),
                Ok(Duration::from_secs(seconds)),
                "{text}"
            );
        }
        for (text, message) in [
            (
                r#""soon""#,
                r#"invalid duration "soon": expected a number and a unit, like "30s", "5m" or "24h""#,
            ),
            (
                r#""5""#,
                r#"invalid duration "5": expected a number and a unit, like "30s", "5m" or "24h""#,
            ),
            (
                "5",
                r#"expected a duration like "30s", "5m" or "24h", found an integer"#,
            ),
            (
                r#""400days""#,
                r#"duration "400days" is longer than a year"#,
            ),
        ] {
            assert_eq!(
                read_one::<Duration>(text),
                Err(vec![message.to_owned()]),
                "{text}"
            );
        }
    }

    #[test]
    fn integers_and_booleans_accept_strings_from_variables() {
        assert_eq!(read_one::<u32>("2"), Ok(2));
        assert_eq!(read_one::<u32>(r#""2""#), Ok(2));
        assert_eq!(
            read_one::<u32>("-1"),
            Err(vec!["-1 is out of range".to_owned()])
        );
        assert_eq!(
            read_one::<u32>(r#""two""#),
            Err(vec!["expected a whole number, found a string".to_owned()])
        );
        assert_eq!(
            read_one::<u32>("1.5"),
            Err(vec!["expected a whole number, found a float".to_owned()])
        );
        assert_eq!(read_one::<bool>("true"), Ok(true));
        assert_eq!(read_one::<bool>(r#""false""#), Ok(false));
        assert_eq!(
            read_one::<bool>(r#""yes""#),
            Err(vec!["expected true or false, found a string".to_owned()])
        );
    }

    #[test]
    fn urls_must_be_http() {
        assert!(read_one::<Url>(r#""https://shop.example/health""#).is_ok());
        for (text, message) in [
            (
                r#""ftp://shop.example""#,
                r#"invalid URL "ftp://shop.example": must start with http:// or https://"#,
            ),
            (
                r#""not a url""#,
                r#"invalid URL "not a url": relative URL without a base"#,
            ),
            (
                r#""https://user:pw@shop.example""#,
                "URL must not contain a password: it would show in logs",
            ),
            (
                r#""https://user:pw@""#,
                "invalid URL (not shown: it may contain credentials): empty host",
            ),
        ] {
            assert_eq!(
                read_one::<Url>(text),
                Err(vec![message.to_owned()]),
                "{text}"
            );
        }
    }

    #[test]
    fn secrets_are_never_repeated() {
        assert_eq!(
            read_one::<Secret>(r#""xoxb-1""#).map(|s| s.expose().to_owned()),
            Ok("xoxb-1".to_owned())
        );
        for text in [
            r#""""#,
            r#"" xoxb-1""#,
            r#""xoxb-1\n""#,
            "12345",
            "[\"xoxb-1\"]",
        ] {
            let messages = read_one::<Secret>(text).expect_err(text);
            assert!(
                messages
                    .iter()
                    .all(|m| !m.contains("xoxb") && !m.contains("12345")),
                "{messages:?}"
            );
        }
        let list = read_one::<SecretList>(r#"["old", "new"]"#).expect("two secrets");
        assert_eq!(list.len(), 2);
        assert_eq!(read_one::<SecretList>(r#""only""#).map(|l| l.len()), Ok(1));
        assert_eq!(
            read_one::<SecretList>("[]").err(),
            Some(vec!["must list at least one secret".to_owned()])
        );
    }

    #[test]
    fn snowflakes_as_string_or_integer() {
        assert_eq!(
            read_one::<Snowflake>(r#""80351110224678912""#).map(Snowflake::get),
            Ok(80351110224678912)
        );
        assert_eq!(
            read_one::<Snowflake>("80351110224678912").map(Snowflake::get),
            Ok(80351110224678912)
        );
        assert!(read_one::<Snowflake>("-5").is_err());
    }

    #[test]
    fn lists_report_every_bad_element() {
        let messages = read_one::<Vec<Principal>>(r#"["alice", "Bob", "group:", "carol"]"#)
            .expect_err("two bad");
        assert_eq!(messages.len(), 2, "{messages:?}");
    }

    #[test]
    fn suggestions_for_typos_only() {
        let keys = ["reviewers", "required_approvals", "after", "wait_timer"];
        for (word, expected) in [
            ("reviewrs", Some("reviewers")),
            ("Reviewers", Some("reviewers")),
            ("aftr", Some("after")),
            ("wait-timer", Some("wait_timer")),
            ("required_approval", Some("required_approvals")),
            ("colour", None),
            ("x", None),
        ] {
            assert_eq!(did_you_mean(word, keys), expected, "{word}");
        }
        assert_eq!(did_you_mean("sre2", ["sre", "ops"]), Some("sre"));
        assert_eq!(did_you_mean("ftp", ["command", "http"]), None);
    }

    #[test]
    fn unknown_keys_are_reported_with_suggestions() {
        let table: Table = toml::from_str("listen = 1\nlisen = 2\nbogus = 3").expect("valid TOML");
        let mut problems = Problems::default();
        let mut fields = Fields::new(&table, &KeyPath::root().key("server"), &mut problems);
        let _ = fields.optional::<u32>("listen");
        let _ = fields.optional::<u32>("public_url");
        fields.finish();
        let errors = problems.finish(()).expect_err("two unknown keys");
        let lines: Vec<String> = errors.problems().iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                r#"server.lisen: unknown key; did you mean "listen"?"#,
                "server.bogus: unknown key; expected one of listen, public_url",
            ]
        );
    }
}
