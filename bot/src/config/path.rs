//! Key paths such as `apps.shop.environments.production.reviewers[1]`, as shown in problems.

use std::fmt;

/// Where a value sits in the configuration file, written the way TOML would address it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct KeyPath(String);

impl KeyPath {
    pub(crate) fn root() -> Self {
        Self::default()
    }

    /// The path of `key` inside this table. Keys that are not TOML bare keys are quoted, so
    /// `people."Bob Smith"` is unambiguous.
    pub(crate) fn key(&self, key: &str) -> Self {
        // One allocation: a path is made for every value read, problem or not.
        let mut path = String::with_capacity(self.0.len() + key.len() + 3);
        path.push_str(&self.0);
        if !path.is_empty() {
            path.push('.');
        }
        if is_bare_key(key) {
            path.push_str(key);
        } else {
            path.push_str(&format!("{key:?}"));
        }
        Self(path)
    }

    /// The path of element `index` of this array.
    pub(crate) fn index(&self, index: usize) -> Self {
        Self(format!("{}[{index}]", self.0))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_bare_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_read_like_toml() {
        let reviewers = KeyPath::root()
            .key("apps")
            .key("shop")
            .key("environments")
            .key("production")
            .key("reviewers")
            .index(1);
        assert_eq!(
            reviewers.as_str(),
            "apps.shop.environments.production.reviewers[1]"
        );
        assert_eq!(
            KeyPath::root().key("people").key("Bob Smith").as_str(),
            r#"people."Bob Smith""#
        );
        assert_eq!(KeyPath::root().key("").as_str(), r#""""#);
    }
}
