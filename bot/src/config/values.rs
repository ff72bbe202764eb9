//! Small validated values of the configuration: chat ids, GitHub names, image repositories,
//! reviewer entries and the database URL. Each `parse` returns a message fit for a person.

use std::fmt;

use greenlight_commands::PersonName;
use url::{Position, Url};

/// A Slack user id (`U012AB3CD`; `W…` on Enterprise Grid), as found in a profile's
/// "Copy member ID".
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SlackUserId(String);

impl SlackUserId {
    pub fn parse(value: &str) -> Result<Self, String> {
        if value.starts_with('@') {
            return Err(format!(
                "{value:?} is a user name; use the member id (like \"U012AB3CD\") from the profile's \"Copy member ID\""
            ));
        }
        slack_id(value, &['U', 'W'])
            .map(Self)
            .ok_or_else(|| format!("invalid Slack user id {value:?}: expected U or W and capital letters or digits, like \"U012AB3CD\""))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SlackUserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Slack channel id (`C0DEPLOYS`; `G…` for older private channels).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SlackChannelId(String);

impl SlackChannelId {
    pub fn parse(value: &str) -> Result<Self, String> {
        if value.starts_with('#') {
            return Err(format!(
                "{value:?} is a channel name; use the channel id (like \"C0123ABCD\") shown at the bottom of the channel's details"
            ));
        }
        slack_id(value, &['C', 'G'])
            .map(Self)
            .ok_or_else(|| format!("invalid Slack channel id {value:?}: expected C or G and capital letters or digits, like \"C0123ABCD\""))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SlackChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn slack_id(value: &str, prefixes: &[char]) -> Option<String> {
    let mut chars = value.chars();
    let first = chars.next()?;
    let rest = chars.as_str();
    let well_formed = prefixes.contains(&first)
        && (2..=23).contains(&rest.len())
        && rest
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    well_formed.then(|| value.to_owned())
}

/// A Discord id (user, channel, application): a "snowflake", a 64-bit number written in decimal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Snowflake(u64);

impl Snowflake {
    pub fn parse(value: &str) -> Result<Self, String> {
        let digits_only = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
        match value.parse::<u64>() {
            Ok(id) if digits_only && id > 0 => Ok(Self(id)),
            _ => Err(format!(
                "invalid Discord id {value:?}: expected a snowflake (digits only, like \"80351110224678912\"); copy it with Developer Mode on"
            )),
        }
    }

    pub fn from_u64(id: u64) -> Option<Self> {
        (id > 0).then_some(Self(id))
    }

    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Snowflake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The Ed25519 public key of a Discord application (64 hex digits in the Developer Portal),
/// used to verify interaction signatures. Public, so `Debug` shows it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DiscordPublicKey([u8; 32]);

impl DiscordPublicKey {
    pub fn parse(value: &str) -> Result<Self, String> {
        let mut key = [0u8; 32];
        match hex::decode_to_slice(value, &mut key) {
            Ok(()) => Ok(Self(key)),
            Err(_) => Err(format!(
                "invalid Discord public key: expected 64 hexadecimal digits (32 bytes) from the Developer Portal, got {} characters",
                value.chars().count()
            )),
        }
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for DiscordPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DiscordPublicKey({})", hex::encode(self.0))
    }
}

/// A GitHub user name. GitHub treats them case-insensitively, and so does [`Self::matches`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GithubLogin(String);

impl GithubLogin {
    pub fn parse(value: &str) -> Result<Self, String> {
        if is_github_name(value) {
            Ok(Self(value.to_owned()))
        } else {
            Err(format!("invalid GitHub login {value:?}: expected 1-39 letters, digits or '-', not starting with '-'"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn matches(&self, login: &str) -> bool {
        self.key() == Self::key_of(login)
    }

    /// What two logins that are the same account share: GitHub ignores case.
    pub fn key(&self) -> String {
        Self::key_of(&self.0)
    }

    pub fn key_of(login: &str) -> String {
        login.to_ascii_lowercase()
    }
}

impl fmt::Display for GithubLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_github_name(value: &str) -> bool {
    (1..=39).contains(&value.len())
        && !value.starts_with('-')
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// An e-mail address as found in commit metadata; compared case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Email(String);

impl Email {
    pub fn parse(value: &str) -> Result<Self, String> {
        let well_formed = value.len() <= 254
            && !value
                .chars()
                .any(|c| c.is_whitespace() || c == '<' || c == '>')
            && value.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty() && !domain.is_empty() && !domain.contains('@')
            });
        if well_formed {
            Ok(Self(value.to_owned()))
        } else {
            Err(format!(
                "invalid e-mail address {value:?}: expected name@domain"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn matches(&self, email: &str) -> bool {
        self.key() == Self::key_of(email)
    }

    /// What two spellings of one address share: case and surrounding blanks do not count.
    pub fn key(&self) -> String {
        Self::key_of(&self.0)
    }

    pub fn key_of(email: &str) -> String {
        email.trim().to_ascii_lowercase()
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A GitHub repository, `owner/name`. GitHub matches these case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RepositoryName {
    owner: String,
    name: String,
}

impl RepositoryName {
    pub fn parse(value: &str) -> Result<Self, String> {
        if value.contains("://") || value.starts_with("github.com") {
            return Err(format!(
                "invalid repository {value:?}: give owner/name (like \"acme/shop\"), not a URL"
            ));
        }
        let parsed = value.split_once('/').filter(|(owner, name)| {
            is_github_name(owner)
                && (1..=100).contains(&name.len())
                && *name != "."
                && *name != ".."
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        });
        match parsed {
            Some((owner, name)) => Ok(Self {
                owner: owner.to_owned(),
                name: name.to_owned(),
            }),
            None => Err(format!(
                "invalid repository {value:?}: expected owner/name, like \"acme/shop\""
            )),
        }
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether GitHub's `repository.full_name` names this repository.
    pub fn matches(&self, full_name: &str) -> bool {
        full_name.split_once('/').is_some_and(|(owner, name)| {
            owner.eq_ignore_ascii_case(&self.owner) && name.eq_ignore_ascii_case(&self.name)
        })
    }
}

impl fmt::Display for RepositoryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

/// A container image repository without tag or digest (`ghcr.io/acme/shop`). Releases name an
/// immutable image *in* this repository (SPEC §1); the repository itself must not pin one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRepository(String);

impl ImageRepository {
    pub fn parse(value: &str) -> Result<Self, String> {
        let refuse = |why: &str| Err(format!("invalid image {value:?}: {why}"));
        if value.contains("://") {
            return refuse("give the repository without a scheme, like \"ghcr.io/acme/shop\"");
        }
        if value.contains('@') {
            return refuse("must not include a digest; each release brings its own");
        }
        if value.is_empty() || value.len() > 255 {
            return refuse("expected a repository like \"ghcr.io/acme/shop\"");
        }
        let components: Vec<&str> = value.split('/').collect();
        // The first component is a registry host when it looks like one (as Docker decides).
        let (registry, path) = match components.split_first() {
            Some((first, rest))
                if !rest.is_empty()
                    && (first.contains('.') || first.contains(':') || *first == "localhost") =>
            {
                (Some(*first), rest)
            }
            _ => (None, &components[..]),
        };
        if let Some(last) = path.last() {
            if last.contains(':') {
                return refuse("must not include a tag; each release brings its own tag or digest");
            }
        }
        if let Some(registry) = registry {
            let (host, port) = match registry.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (registry, None),
            };
            let host_ok = !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
            let port_ok = port.is_none_or(|port| port.parse::<u16>().is_ok());
            if !host_ok || !port_ok {
                return refuse("the registry must be a host name with an optional port");
            }
        }
        for component in path {
            if component.bytes().any(|b| b.is_ascii_uppercase()) {
                return refuse("repository names must be lowercase");
            }
            let ok = component.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            }) && component.starts_with(|c: char| c.is_ascii_alphanumeric())
                && component.ends_with(|c: char| c.is_ascii_alphanumeric());
            if !ok {
                return refuse("expected path components of lowercase letters, digits, '.', '_' or '-', like \"ghcr.io/acme/shop\"");
            }
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ImageRepository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A key of the `[groups]` table.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupName(String);

impl GroupName {
    pub fn parse(value: &str) -> Result<Self, String> {
        let bytes = value.as_bytes();
        let ok = (1..=63).contains(&bytes.len())
            && bytes[0].is_ascii_alphanumeric()
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'_');
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(format!("group name must be 1-63 characters of lowercase letters, digits, '-' or '_', starting with a letter or digit; got {value:?}"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GroupName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An entry of `reviewers` or `operators`: a person, or `group:NAME` for every member of a group.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Principal {
    Person(PersonName),
    Group(GroupName),
}

impl Principal {
    pub const GROUP_PREFIX: &'static str = "group:";

    pub fn parse(value: &str) -> Result<Self, String> {
        match value.strip_prefix(Self::GROUP_PREFIX) {
            Some(group) => GroupName::parse(group).map(Self::Group),
            None => PersonName::parse(value)
                .map(Self::Person)
                .map_err(|error| error.to_string()),
        }
    }
}

/// As written in the configuration: `alice` or `group:sre`.
impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Person(person) => write!(f, "{person}"),
            Self::Group(group) => write!(f, "{}{group}", Self::GROUP_PREFIX),
        }
    }
}

/// Which database a [`DatabaseUrl`] points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseBackend {
    Sqlite,
    Postgres,
}

/// `sqlite://greenlight.db` or `postgres://user:password@host/db`. A PostgreSQL URL usually
/// carries a password, so `Debug` and `Display` redact it; [`Self::expose`] gives the full text.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    text: String,
    backend: DatabaseBackend,
}

impl DatabaseUrl {
    /// Error messages never repeat the URL, which may hold a password.
    pub fn parse(value: &str) -> Result<Self, String> {
        const EXPECTED: &str = "expected sqlite://PATH or postgres://USER@HOST/DATABASE";
        if let Some(rest) = value.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() {
                return Err(format!("invalid database URL: no file name; {EXPECTED}"));
            }
            return Ok(Self {
                text: value.to_owned(),
                backend: DatabaseBackend::Sqlite,
            });
        }
        if value.starts_with("postgres://") || value.starts_with("postgresql://") {
            return match Url::parse(value) {
                Ok(_) => Ok(Self {
                    text: value.to_owned(),
                    backend: DatabaseBackend::Postgres,
                }),
                Err(error) => Err(format!("invalid database URL ({error}); {EXPECTED}")),
            };
        }
        let scheme = value.split_once(':').map_or("", |(scheme, _)| scheme);
        if scheme.is_empty() || scheme.contains('/') || scheme.contains('@') {
            Err(format!("invalid database URL: {EXPECTED}"))
        } else {
            Err(format!("unsupported database {scheme:?}: {EXPECTED}"))
        }
    }

    pub fn backend(&self) -> DatabaseBackend {
        self.backend
    }

    /// The URL with its password, for connecting. Never log the result.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// The URL with any password (in the user info or the query) replaced by `[redacted]`.
    pub fn redacted(&self) -> String {
        let Ok(url) = Url::parse(&self.text) else {
            return self.text.clone();
        };
        let mut shown = String::new();
        if url.password().is_some() {
            shown.push_str(&url[..Position::BeforePassword]);
            shown.push_str("[redacted]");
            shown.push_str(&url[Position::AfterPassword..Position::AfterPath]);
        } else {
            shown.push_str(&url[..Position::AfterPath]);
        }
        if let Some(query) = url.query() {
            if query.to_ascii_lowercase().contains("password") {
                shown.push_str("?[redacted]");
            } else {
                shown.push('?');
                shown.push_str(query);
            }
        }
        shown
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({:?})", self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_ids() {
        for good in ["U012AB3CD", "W012AB3CD", "UABC"] {
            assert!(SlackUserId::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "U",
            "u012ab3cd",
            "C012AB3CD",
            "U012 AB3",
            "@alice",
            "U01-2",
        ] {
            assert!(SlackUserId::parse(bad).is_err(), "{bad}");
        }
        for good in ["C0DEPLOYS", "G012AB3CD"] {
            assert!(SlackChannelId::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "#deploys",
            "deploys",
            "D012AB3CD",
            "U012AB3CD",
            "c0deploys",
        ] {
            assert!(SlackChannelId::parse(bad).is_err(), "{bad}");
        }
        assert!(SlackChannelId::parse("#deploys")
            .expect_err("a name")
            .contains("channel id"));
    }

    #[test]
    fn snowflakes() {
        assert_eq!(
            Snowflake::parse("80351110224678912").map(Snowflake::get),
            Ok(80351110224678912)
        );
        for bad in [
            "",
            "0",
            "-1",
            "+5",
            "12ab",
            "1 2",
            "99999999999999999999999",
        ] {
            assert!(Snowflake::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn discord_public_keys_are_32_bytes_of_hex() {
        let hex = "e5f6".repeat(16);
        let key = DiscordPublicKey::parse(&hex).expect("64 hex");
        assert_eq!(key.as_bytes()[..2], [0xe5, 0xf6]);
        for bad in ["", "abc", &"zz".repeat(32), &"ab".repeat(33)] {
            assert!(DiscordPublicKey::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn github_names() {
        for good in ["alice", "bob-gh", "A1"] {
            assert!(GithubLogin::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "-bob", "bob smith", "bob_gh", &"a".repeat(40)] {
            assert!(GithubLogin::parse(bad).is_err(), "{bad}");
        }
        assert!(GithubLogin::parse("Bob-GH")
            .expect("valid")
            .matches("bob-gh"));

        let repository = RepositoryName::parse("acme/shop.api_v2").expect("valid");
        assert_eq!(repository.to_string(), "acme/shop.api_v2");
        assert!(repository.matches("ACME/Shop.API_v2"));
        assert!(!repository.matches("acme/shop"));
        for bad in [
            "",
            "acme",
            "acme/",
            "/shop",
            "acme/shop/x",
            "acme/..",
            "https://github.com/acme/shop",
            "acme/sh op",
        ] {
            assert!(RepositoryName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn emails() {
        assert!(Email::parse("carol@example.com")
            .expect("valid")
            .matches(" Carol@Example.com"));
        for bad in [
            "",
            "carol",
            "@example.com",
            "carol@",
            "carol smith@example.com",
            "a@b@c",
            "<carol@example.com>",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn images_are_repositories_without_tag_or_digest() {
        for good in [
            "ghcr.io/acme/shop",
            "registry.example:5000/acme/shop",
            "localhost:5000/shop",
            "acme/shop",
            "shop",
            "docker.io/library/nginx",
            "ghcr.io/acme/shop-api_v2.x",
        ] {
            assert!(ImageRepository::parse(good).is_ok(), "{good}");
        }
        for (bad, why) in [
            ("ghcr.io/acme/shop:latest", "tag"),
            ("shop:1.2.3", "tag"),
            ("ghcr.io/acme/shop@sha256:abc", "digest"),
            ("https://ghcr.io/acme/shop", "scheme"),
            ("ghcr.io/Acme/shop", "lowercase"),
            ("ghcr.io/acme//shop", "path components"),
            ("ghcr.io/acme/shop/", "path components"),
            ("ghcr.io/acme/-shop", "path components"),
            ("", "expected"),
            ("bad host:80/shop", "registry"),
        ] {
            let message = ImageRepository::parse(bad).expect_err(bad);
            assert!(message.contains(why), "{bad}: {message}");
        }
    }

    #[test]
    fn principals() {
        assert_eq!(
            Principal::parse("group:sre"),
            Ok(Principal::Group(GroupName::parse("sre").expect("valid")))
        );
        assert_eq!(
            Principal::parse("carol"),
            Ok(Principal::Person(
                PersonName::parse("carol").expect("valid")
            ))
        );
        assert_eq!(
            Principal::parse("group:sre")
                .map(|p| p.to_string())
                .as_deref(),
            Ok("group:sre")
        );
        for bad in ["", "group:", "group:SRE", "Carol", "team:sre"] {
            assert!(Principal::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn database_urls_hide_their_password() {
        let sqlite = DatabaseUrl::parse("sqlite://greenlight.db").expect("valid");
        assert_eq!(sqlite.backend(), DatabaseBackend::Sqlite);
        assert_eq!(sqlite.to_string(), "sqlite://greenlight.db");
        for good in [
            "sqlite::memory:",
            "sqlite:///data/greenlight.db",
            "sqlite:greenlight.db",
        ] {
            assert!(DatabaseUrl::parse(good).is_ok(), "{good}");
        }

        let postgres = DatabaseUrl::parse(
            "postgres://greenlight:s3cr3t@db.internal:5432/greenlight?sslmode=require",
        )
        .expect("valid");
        assert_eq!(postgres.backend(), DatabaseBackend::Postgres);
        assert!(postgres.expose().contains("s3cr3t"));
        let shown = format!("{postgres} {postgres:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert_eq!(
            postgres.to_string(),
            "postgres://greenlight:[redacted]@db.internal:5432/greenlight?sslmode=require"
        );
        let in_query =
            DatabaseUrl::parse("postgresql://db/greenlight?user=g&password=s3cr3t").expect("valid");
        assert!(!in_query.to_string().contains("s3cr3t"));

        for bad in [
            "",
            "sqlite:",
            "sqlite://",
            "mysql://root:s3cr3t@db/x",
            "greenlight.db",
            "postgres://root:s3cr3t@[bad/x",
        ] {
            let message = DatabaseUrl::parse(bad).expect_err(bad);
            assert!(!message.contains("s3cr3t"), "{message}");
        }
    }
}
