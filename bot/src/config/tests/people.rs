//! `[people]` and `[groups]`.

use greenlight_commands::{AppName, EnvironmentName, PersonName};

use super::*;

#[test]
fn people_and_group_rules() {
    let people = |people: &str, groups: &str| format!("[people]\n{people}\n[groups]\n{groups}\n");
    for (people_toml, groups_toml, expected) in [
        (
            "alice = { slack = \"U012AB3CD\" }\nbob = { slack = \"U012AB3CD\" }",
            "",
            vec![r#"people.bob.slack: "U012AB3CD" is already alice's slack identity"#],
        ),
        (
            "alice = { github = \"Alice\" }\nbob = { github = \"alice\", email = \"A@x.example\" }\ncarol = { email = \"a@X.example\" }",
            "",
            vec![
                r#"people.bob.github: "alice" is already alice's github identity"#,
                r#"people.carol.email: "a@x.example" is already bob's email identity"#,
            ],
        ),
        (
            "alice = { discord = \"80351110224678912\" }\nbob = { discord = 80351110224678912 }",
            "",
            vec![r#"people.bob.discord: "80351110224678912" is already alice's discord identity"#],
        ),
        ("alice = {}", "", vec!["people.alice: has no identity: give at least one of slack, discord, github, email"]),
        (
            "alice = { slack = \"@alice\", discord = \"x\", github = \"-a\", email = \"alice\", phone = \"1\" }",
            "",
            vec![
                r#"people.alice.slack: "@alice" is a user name; use the member id (like "U012AB3CD") from the profile's "Copy member ID""#,
                r#"people.alice.discord: invalid Discord id "x": expected a snowflake (digits only, like "80351110224678912"); copy it with Developer Mode on"#,
                r#"people.alice.github: invalid GitHub login "-a": expected 1-39 letters, digits or '-', not starting with '-'"#,
                r#"people.alice.email: invalid e-mail address "alice": expected name@domain"#,
                r#"people.alice.phone: unknown key; expected one of slack, discord, github, email"#,
            ],
        ),
        (
            "\"Alice B\" = { slack = \"U012AB3CD\" }",
            "",
            vec![r#"people."Alice B": person name must be 1-63 characters of lowercase letters, digits, '-' or '_', starting with a letter or digit; got "Alice B""#],
        ),
        (
            "alice = { slack = \"U012AB3CD\" }\nbob = { slack = \"U045EF6GH\" }",
            "sre = [\"alice\", \"bobb\", \"group:ops\", \"alice\"]\nops = []\nSRE = [\"alice\"]",
            vec![
                r#"groups.sre[1]: unknown person "bobb"; did you mean "bob"?"#,
                "groups.sre[2]: groups cannot contain groups; list the people instead",
                "groups.ops: must list at least one person",
                r#"groups.SRE: group name must be 1-63 characters of lowercase letters, digits, '-' or '_', starting with a letter or digit; got "SRE""#,
            ],
        ),
        (
            "alice = { slack = \"U012AB3CD\" }",
            "sre = [\"alice\", \"alice\"]",
            vec![r#"groups.sre[1]: "alice" is listed twice"#],
        ),
    ] {
        assert_eq!(problems(&people(people_toml, groups_toml)), expected, "{people_toml} / {groups_toml}");
    }
}

/// A company-wide directory: 100,000 people, a 20,000-person group and a reviewer list naming
/// both, loads with every person and look-up intact (the time is `bench_config`'s to measure).
#[test]
fn a_hundred_thousand_people_load_with_every_identity() {
    const PEOPLE: usize = 100_000;
    let mut text =
        String::from("[slack]\nbot_token = \"xoxb-1\"\nsigning_secret = \"s\"\n\n[people]\n");
    for i in 0..PEOPLE {
        text.push_str(&format!(
            "p{i} = {{ slack = \"U{i:09}\", github = \"gh-{i}\", email = \"p{i}@example.com\" }}\n"
        ));
    }
    let group: Vec<String> = (0..20_000).map(|i| format!("\"p{i}\"")).collect();
    text.push_str(&format!("\n[groups]\neveryone = [{}]\n", group.join(", ")));
    text.push_str(
        "\n[apps.shop]\nimage = \"ghcr.io/acme/shop\"\nci_token = \"ci\"\nchannels = { slack = \"C0DEPLOYS\" }\n\
         [apps.shop.environments.staging]\n[apps.shop.environments.production]\nafter = \"staging\"\n\
         reviewers = [\"group:everyone\", \"p99999\"]\nrequired_approvals = 2\n",
    );
    let config = Config::from_toml_str(&text, &|_| None).expect("a valid directory");
    assert_eq!(config.people.len(), PEOPLE);
    let production = config
        .environment(
            &AppName::parse("shop").expect("app"),
            &EnvironmentName::parse("production").expect("env"),
        )
        .expect("production");
    let gate = production.gate.as_ref().expect("gated");
    let reviewers = config.expand(&gate.reviewers);
    assert_eq!(reviewers.len(), 20_001);
    assert_eq!(
        config.person_by_slack("U000054321").map(PersonName::as_str),
        Some("p54321")
    );
    assert_eq!(
        config
            .person_by_author("Someone <P77777@Example.com>")
            .map(PersonName::as_str),
        Some("p77777")
    );
}
