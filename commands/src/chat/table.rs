//! The command table: each command's name, summary, grammar and role, written once.

/// Who may run a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Anyone,
    /// The app's `operators`.
    Operator,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionKind {
    App,
    Environment,
    /// Free text to the end of the line.
    Text,
    Integer {
        min: i64,
        max: i64,
    },
    Sha,
    /// One of fixed words.
    Choice(&'static [&'static str]),
}

/// One positional option; `required: false` ones may be left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionSpec {
    pub name: &'static str,
    pub description: &'static str,
    pub kind: OptionKind,
    pub required: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandSpec {
    pub name: &'static str,
    pub summary: &'static str,
    /// Longer help, shown by `help`.
    pub details: &'static str,
    pub options: &'static [OptionSpec],
    /// The role of its most powerful form (`/flag` reading is open to anyone).
    pub role: Role,
}

impl CommandSpec {
    pub fn usage(&self) -> String {
        let mut usage = format!("/{}", self.name);
        for option in self.options {
            if option.required {
                usage.push_str(&format!(" <{}>", option.name));
            } else {
                usage.push_str(&format!(" [{}]", option.name));
            }
        }
        usage
    }

    pub fn help(&self) -> String {
        let role = match self.role {
            Role::Anyone => "anyone",
            Role::Operator => "operators of the app",
        };
        let mut text = format!("`{}` — {}\n{}\n", self.usage(), self.summary, self.details);
        for option in self.options {
            text.push_str(&format!("• `{}`: {}\n", option.name, option.description));
        }
        text.push_str(&format!("Who: {role}."));
        text
    }
}

const APP: OptionSpec = OptionSpec {
    name: "app",
    description: "the app, as named in greenlight.toml (optional with a single app)",
    kind: OptionKind::App,
    required: false,
};

const ENVIRONMENT: OptionSpec = OptionSpec {
    name: "environment",
    description: "the environment, e.g. production",
    kind: OptionKind::Environment,
    required: true,
};

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "rollback",
        summary: "deploy the previous healthy release again",
        details: "Shows what runs now and what would run after, and asks you to confirm. \
                  Without `to`, the target is the last release that was healthy before the \
                  current one. The environment defaults to production.",
        options: &[
            APP,
            OptionSpec {
                name: "environment",
                description: "the environment (default: production)",
                kind: OptionKind::Environment,
                required: false,
            },
            OptionSpec {
                name: "to",
                description: "`to <sha>`: a release once healthy there (7+ hex characters)",
                kind: OptionKind::Sha,
                required: false,
            },
        ],
        role: Role::Operator,
    },
    CommandSpec {
        name: "lock",
        summary: "stop new deploys to an environment until /unlock",
        details: "Approvals still count while locked; the deploy waits for /unlock. Locking \
                  a locked environment tells who holds the lock and changes nothing.",
        options: &[
            APP,
            ENVIRONMENT,
            OptionSpec {
                name: "reason",
                description: "why, shown to everyone who tries to deploy",
                kind: OptionKind::Text,
                required: true,
            },
        ],
        role: Role::Operator,
    },
    CommandSpec {
        name: "unlock",
        summary: "allow deploys again (and start an approved deploy that waited)",
        details: "Releases the lock on the environment, whoever set it.",
        options: &[APP, ENVIRONMENT],
        role: Role::Operator,
    },
    CommandSpec {
        name: "releases",
        summary: "recent releases and where each stands",
        details: "Newest first, with the state of each release per environment.",
        options: &[
            APP,
            OptionSpec {
                name: "environment",
                description: "only this environment",
                kind: OptionKind::Environment,
                required: false,
            },
            OptionSpec {
                name: "limit",
                description: "how many (1-50, default 10)",
                kind: OptionKind::Integer { min: 1, max: 50 },
                required: false,
            },
        ],
        role: Role::Anyone,
    },
    CommandSpec {
        name: "flag",
        summary: "show or change feature flags",
        details: "`list` shows every flag; `<key>` shows one; `<key> on|off [reason]` and \
                  `<key> rollout <0-100>` change one (operators only; announced in the \
                  channel). Keys are 1-64 of a-z, 0-9, `_`, `.`, `-`.",
        options: &[
            APP,
            ENVIRONMENT,
            OptionSpec {
                name: "action",
                description: "`list`, `<key>`, `<key> on|off [reason]` or `<key> rollout <0-100>`",
                kind: OptionKind::Text,
                required: true,
            },
        ],
        role: Role::Operator,
    },
];

/// The table entry of `name` (with or without the leading `/`).
pub fn spec(name: &str) -> Option<&'static CommandSpec> {
    let name = name.trim_start_matches('/');
    COMMANDS.iter().find(|spec| spec.name == name)
}
