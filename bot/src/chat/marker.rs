//! What an announcement is about, said by the engine without knowing any platform; each
//! renderer turns it into its own emoji or markup.

/// The tone of an announcement, shown before its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// Needs someone now (a faulty release, a failed rollback).
    Alert,
    /// Worth a look (a deploy around the gate, no automatic rollback).
    Warning,
    /// Back to good (a healthy rollback).
    Success,
    /// Something did not work (a failed deploy).
    Failure,
    /// An environment was locked.
    Locked,
    /// An environment was unlocked.
    Unlocked,
    /// A rollback started.
    Rollback,
}

impl Marker {
    const ALL: [Marker; 7] = [
        Marker::Alert,
        Marker::Warning,
        Marker::Success,
        Marker::Failure,
        Marker::Locked,
        Marker::Unlocked,
        Marker::Rollback,
    ];

    /// The stored name (outbox payloads).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Alert => "alert",
            Self::Warning => "warning",
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Locked => "locked",
            Self::Unlocked => "unlocked",
            Self::Rollback => "rollback",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|marker| marker.as_str() == name)
    }

    /// The Unicode emoji; a platform with its own names for emoji may map the marker itself.
    pub fn emoji(self) -> &'static str {
        match self {
            Self::Alert => "🚨",
            Self::Warning => "⚠️",
            Self::Success => "✅",
            Self::Failure => "❌",
            Self::Locked => "🔒",
            Self::Unlocked => "🔓",
            Self::Rollback => "↩️",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_marker_reads_back_from_its_stored_name() {
        for marker in Marker::ALL {
            assert_eq!(Marker::parse(marker.as_str()), Some(marker));
        }
        assert_eq!(Marker::parse("party"), None);
    }
}
