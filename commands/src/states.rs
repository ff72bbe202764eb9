//! The words of SPEC §1 for states, as enums stored as TEXT and shown to people unchanged.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A stored state word that is not one of the enum's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?}")]
pub struct UnknownWord {
    pub kind: &'static str,
    pub value: String,
}

macro_rules! word_enum {
    ($(#[$doc:meta])* $name:ident, $kind:literal { $($variant:ident => $word:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $word),+ }
            }
        }

        impl FromStr for $name {
            type Err = UnknownWord;
            fn from_str(value: &str) -> Result<Self, Self::Err> {
                match value {
                    $($word => Ok($name::$variant),)+
                    _ => Err(UnknownWord { kind: $kind, value: value.to_owned() }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

word_enum!(
    /// A release going to an environment (SPEC §1 "Deployment").
    DeploymentState, "deployment state" {
        Pending => "pending",
        Deploying => "deploying",
        Verifying => "verifying",
        Healthy => "healthy",
        Faulty => "faulty",
        Failed => "failed",
        RolledBack => "rolled_back",
        Superseded => "superseded",
    }
);

word_enum!(
    /// Whether a deployment ships a new release or puts a previous one back.
    DeploymentKind, "deployment kind" {
        Deploy => "deploy",
        Rollback => "rollback",
    }
);

word_enum!(
    /// The gate before a gated environment (SPEC §1 "Approval request").
    ApprovalState, "approval state" {
        Waiting => "waiting",
        Approved => "approved",
        Rejected => "rejected",
        Expired => "expired",
        Superseded => "superseded",
        Cancelled => "cancelled",
    }
);

word_enum!(
    /// What a reviewer asked for. Refused attempts are recorded with `refused_reason` set.
    DecisionVerdict, "decision" {
        Approve => "approve",
        Reject => "reject",
    }
);

word_enum!(
    /// What GitHub is told about a deployment protection rule (the `state` of its callback,
    /// REFERENCE §3.3).
    GateAnswer, "gate answer" {
        Approved => "approved",
        Rejected => "rejected",
    }
);

word_enum!(
    /// Where a person acted from.
    Platform, "platform" {
        Slack => "slack",
        Discord => "discord",
        Github => "github",
        Cli => "cli",
        Api => "api",
    }
);

impl DeploymentState {
    /// States after which nothing more happens to this deployment.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Healthy | Self::Faulty | Self::Failed | Self::RolledBack | Self::Superseded
        )
    }
}

impl Platform {
    /// Whether cards are posted and decided on it (a chat platform with an adapter).
    pub fn is_chat(self) -> bool {
        matches!(self, Self::Slack | Self::Discord)
    }

    /// The platform's name as its users write it, for messages ("your Slack account …").
    pub fn display_name(self) -> &'static str {
        match self {
            Self::Slack => "Slack",
            Self::Discord => "Discord",
            Self::Github => "GitHub",
            Self::Cli => "CLI",
            Self::Api => "API",
        }
    }
}

impl ApprovalState {
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Waiting)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_round_trips() {
        for state in DeploymentState::ALL {
            assert_eq!(state.as_str().parse::<DeploymentState>(), Ok(*state));
        }
        for state in ApprovalState::ALL {
            assert_eq!(state.as_str().parse::<ApprovalState>(), Ok(*state));
        }
        assert!("unknown".parse::<ApprovalState>().is_err());
    }
}
