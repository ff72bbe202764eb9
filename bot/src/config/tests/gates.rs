//! Approval gates: `after`, reviewers and the keys that only a gated environment may have.

use super::*;

#[test]
fn reviewer_and_approval_rules() {
    let p = "apps.shop.environments.production";
    for (production, expected) in [
        (
            r#"reviewers = ["group:sre2", "alice"]"#,
            vec![format!(r#"{p}.reviewers[0]: unknown group "sre2"; did you mean "sre"?"#)],
        ),
        (
            r#"reviewers = ["alcie"]"#,
            vec![format!(r#"{p}.reviewers[0]: unknown person "alcie"; did you mean "alice"?"#)],
        ),
        (
            r#"reviewers = ["sre"]"#,
            vec![format!(r#"{p}.reviewers[0]: unknown person "sre"; for the group write "group:sre""#)],
        ),
        (
            r#"reviewers = ["Alice"]"#,
            vec![format!(r#"{p}.reviewers[0]: person name must be 1-63 characters of lowercase letters, digits, '-' or '_', starting with a letter or digit; got "Alice""#)],
        ),
        (
            r#"reviewers = ["alice", "group:sre", "alice"]"#,
            vec![format!(r#"{p}.reviewers[2]: "alice" is listed twice"#)],
        ),
        (
            "reviewers = []",
            vec![format!("{p}.reviewers: must list at least one reviewer")],
        ),
        (
            "",
            vec![format!(r#"{p}.reviewers: missing; a gated environment (one with `after`) needs reviewers, e.g. ["group:sre"]"#)],
        ),
        (
            "reviewers = \"group:sre\"",
            vec![format!("{p}.reviewers: expected an array of people or group:NAME, found a string")],
        ),
        (
            "reviewers = [\"group:sre\", \"alice\"]\nrequired_approvals = 3",
            vec![format!("{p}.required_approvals: 3 approvals required but the reviewers are only 2 people (alice, bob)")],
        ),
        (
            "reviewers = [\"carol\"]\nrequired_approvals = 2",
            vec![format!("{p}.required_approvals: 2 approvals required but the reviewers are only 1 person (carol)")],
        ),
        (
            "reviewers = [\"group:sre\"]\nrequired_approvals = 0",
            vec![format!("{p}.required_approvals: must be at least 1")],
        ),
        (
            "reviewers = [\"group:sre\"]\nrequired_approvals = \"two\"",
            vec![format!("{p}.required_approvals: expected a whole number, found a string")],
        ),
        (
            "reviewers = [\"group:sre\"]\nwait_timer = \"2d\"\napproval_timeout = \"1d\"",
            vec![format!("{p}.wait_timer: must be shorter than approval_timeout (1day), or requests expire before approvals open")],
        ),
        (
            "reviewers = [\"group:sre\"]\napproval_timeout = \"0s\"\nreminder_every = \"0s\"",
            vec![
                format!("{p}.approval_timeout: must be longer than 0s"),
                format!("{p}.reminder_every: must be longer than 0s"),
            ],
        ),
        (
            "reviewers = [\"group:sre\"]\nprevent_self_review = \"no\"",
            vec![format!("{p}.prevent_self_review: expected true or false, found a string")],
        ),
    ] {
        assert_eq!(problems(&with_production(production)), expected, "{production}");
    }
}

#[test]
fn after_must_name_a_sibling_without_cycles() {
    let app = |staging: &str, production: &str| {
        format!(
            r#"{}
[apps.shop]
image = "ghcr.io/acme/shop"
ci_token = "ci"
channels = {{ slack = "C0DEPLOYS" }}
[apps.shop.environments.staging]
{staging}
[apps.shop.environments.production]
{production}
"#,
            base()
        )
    };
    let gated = |after: &str| format!("after = \"{after}\"\nreviewers = [\"alice\"]");
    for (staging, production, expected) in [
        (
            String::new(),
            gated("stagin"),
            vec![r#"apps.shop.environments.production.after: unknown environment "stagin"; did you mean "staging"? (this app has: staging)"#.to_owned()],
        ),
        (
            String::new(),
            gated("production"),
            vec!["apps.shop.environments.production.after: an environment cannot come after itself".to_owned()],
        ),
        (
            gated("production"),
            gated("staging"),
            vec!["apps.shop.environments.staging.after: environments form a cycle: staging → production → staging; the first environment must have no `after`".to_owned()],
        ),
        (
            "reviewers = [\"alice\"]\nwait_timer = \"5m\"".to_owned(),
            gated("staging"),
            vec![
                r#"apps.shop.environments.staging.reviewers: only applies to a gated environment (one with `after`); add `after = "production"` to gate this one"#.to_owned(),
                r#"apps.shop.environments.staging.wait_timer: only applies to a gated environment (one with `after`); add `after = "production"` to gate this one"#.to_owned(),
            ],
        ),
    ] {
        assert_eq!(problems(&app(&staging, &production)), expected, "{staging} / {production}");
    }
}

#[test]
fn protection_rules_only_gate_gated_environments() {
    let text = format!(
        r#"{}
[github]
webhook_secret = "w"
app_id = 42
private_key_file = "key.pem"
[apps.shop]
repository = "acme/shop"
image = "ghcr.io/acme/shop"
ci_token = "ci"
[apps.shop.environments.production]
deploy = {{ kind = "github-protection-rule" }}
"#,
        base()
    );
    assert_eq!(
        problems(&text),
        ["apps.shop.environments.production.deploy.kind: github-protection-rule needs a gated environment (one with `after` and `reviewers`)"]
    );
}

/// Environments that name the same reviewers share one count of them (validation stays linear
/// when a thousand apps name one large group), and each still gets its own problem when they
/// are too few for it.
#[test]
fn environments_naming_the_same_reviewers_are_each_checked() {
    let app = |name: &str, required: u32| {
        format!(
            r#"
[apps.{name}]
image = "ghcr.io/acme/{name}"
ci_token = "ci-{name}"
channels = {{ slack = "C0DEPLOYS" }}
[apps.{name}.environments.staging]
[apps.{name}.environments.production]
after = "staging"
reviewers = ["group:sre", "alice"]
required_approvals = {required}
"#
        )
    };
    let text = format!(
        "{}{}{}{}",
        base(),
        app("cart", 3),
        app("shop", 2),
        app("till", 3)
    );
    let too_few = |app: &str| {
        format!("apps.{app}.environments.production.required_approvals: 3 approvals required but the reviewers are only 2 people (alice, bob)")
    };
    assert_eq!(problems(&text), vec![too_few("cart"), too_few("till")]);
}
