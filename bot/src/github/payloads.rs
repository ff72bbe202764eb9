//! GitHub webhook payloads as serde structs: only the fields Greenlight reads, `Option` wherever
//! GitHub may omit or null them (its examples do both), unknown fields ignored.
//!
//! Decoding names the field at fault (`deployment.sha: is required`), so a bad delivery is a
//! 400 that says what is wrong rather than a 500 or a panic.

use std::borrow::Cow;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

/// Why a delivery's body cannot be read as the event its header names. Always the sender's
/// fault (400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    #[error("the body must be a JSON object")]
    NotObject,
    #[error("the form-encoded body has no `payload` field; set the webhook's content type to application/json")]
    FormWithoutPayload,
    #[error("{field}: {message}")]
    Field { field: String, message: String },
}

/// The JSON of a delivery. GitHub sends it as the body (`application/json`) or, when the hook's
/// content type is `application/x-www-form-urlencoded` (the default in GitHub's settings page),
/// as the form field `payload`. Either way the signature covers the raw body, checked earlier.
pub fn parse_body(content_type: Option<&str>, body: &[u8]) -> Result<Value, PayloadError> {
    parse_value(&json_text(content_type, body)?)
}

/// The JSON text of a delivery: the body itself (borrowed, not copied), or the form's decoded
/// `payload` field.
fn json_text<'b>(
    content_type: Option<&str>,
    body: &'b [u8],
) -> Result<Cow<'b, [u8]>, PayloadError> {
    let is_form = content_type
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| {
            mime.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Ok(Cow::Borrowed(body));
    }
    url::form_urlencoded::parse(body)
        .find(|(name, _)| name == "payload")
        .map(|(_, payload)| Cow::Owned(payload.into_owned().into_bytes()))
        .ok_or(PayloadError::FormWithoutPayload)
}

fn parse_value(json: &[u8]) -> Result<Value, PayloadError> {
    let value: Value =
        serde_json::from_slice(json).map_err(|error| PayloadError::NotJson(error.to_string()))?;
    if value.is_object() {
        Ok(value)
    } else {
        Err(PayloadError::NotObject)
    }
}

/// Reads a delivery as `T` in one pass over its JSON, skipping the fields Greenlight does not
/// read (a 25 KB `workflow_run` is never built as a tree). Only a delivery that does not fit
/// is read again, as a tree, so that its refusal is the one [`parse_body`] and [`decode`] give
/// (not JSON, not an object, or the field at fault).
pub fn read<T: DeserializeOwned>(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<T, PayloadError> {
    let json = json_text(content_type, body)?;
    match read_object(&json) {
        Some(event) => Ok(event),
        None => decode(&parse_value(&json)?),
    }
}

/// `T` straight from JSON text that is an object; `None` when it is not one or does not fit.
/// (serde would also read a struct from a JSON array, which GitHub never sends.) Fields that
/// are not read are skipped, not checked the way a tree is: a lone `\ud800` escape or a
/// number beyond `f64` there no longer refuses the delivery. Invalid UTF-8 still does.
fn read_object<T: DeserializeOwned>(json: &[u8]) -> Option<T> {
    let text = std::str::from_utf8(json).ok()?;
    if !text.trim_start().starts_with('{') {
        return None;
    }
    serde_json::from_str(text).ok()
}

/// Events whose `action` says whether Greenlight acts on them.
pub trait WithAction {
    fn action(&self) -> Option<&str>;
}

/// A delivery of an event Greenlight acts on for one action only.
#[derive(Debug, Clone)]
pub enum ForAction<T> {
    /// The action Greenlight acts on, read as `T`.
    Wanted(T),
    /// Another action (or none), as sent; its other fields are not checked.
    Other(Option<String>),
}

/// Reads a delivery whose `action` must be `wanted` for Greenlight to act on it, in one pass when
/// it fits `T`. Deliveries of other actions never fail on fields only `wanted` needs.
pub fn read_for_action<T: DeserializeOwned + WithAction>(
    content_type: Option<&str>,
    body: &[u8],
    wanted: &str,
) -> Result<ForAction<T>, PayloadError> {
    let json = json_text(content_type, body)?;
    if let Some(event) = read_object::<T>(&json) {
        return Ok(match event.action() {
            Some(action) if action == wanted => ForAction::Wanted(event),
            other => ForAction::Other(other.map(str::to_owned)),
        });
    }
    let value = parse_value(&json)?;
    match action(&value) {
        Some(action) if action == wanted => decode(&value).map(ForAction::Wanted),
        other => Ok(ForAction::Other(other.map(str::to_owned))),
    }
}

/// Reads `T` out of a delivery's JSON, naming the path of the first field that does not fit.
pub fn decode<T: DeserializeOwned>(value: &Value) -> Result<T, PayloadError> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let message = error.inner().to_string();
        // serde reports a missing field at its parent, as "missing field `sha`"; name the field
        // itself, the way the other errors do.
        match message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.strip_suffix('`'))
        {
            Some(missing) => PayloadError::Field {
                field: join(&path, missing),
                message: "is required".to_owned(),
            },
            None => PayloadError::Field {
                field: path,
                message,
            },
        }
    })
}

fn join(parent: &str, field: &str) -> String {
    if parent.is_empty() || parent == "." {
        field.to_owned()
    } else {
        format!("{parent}.{field}")
    }
}

/// The `action` of an event, if any; read before decoding so actions Greenlight ignores never
/// fail on fields only the interesting actions need.
pub fn action(value: &Value) -> Option<&str> {
    value.get("action").and_then(Value::as_str)
}

/// A non-empty, trimmed string: GitHub sends `""` for absent URLs and names.
pub fn non_empty(text: Option<&str>) -> Option<&str> {
    text.map(str::trim).filter(|text| !text.is_empty())
}

/// `ping`: sent when a hook is created.
#[derive(Debug, Clone, Deserialize)]
pub struct PingEvent {
    pub zen: Option<String>,
    pub hook_id: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Repository {
    /// `owner/name`, matched against each app's `repository`.
    pub full_name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub login: Option<String>,
}

/// The `installation` of a GitHub App delivery (installation-lite).
#[derive(Debug, Clone, Deserialize)]
pub struct Installation {
    pub id: i64,
}

/// The common deployment object of `deployment_status` and `deployment_protection_rule`.
#[derive(Debug, Clone, Deserialize)]
pub struct Deployment {
    pub id: Option<i64>,
    pub sha: String,
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    pub environment: Option<String>,
    /// Whatever the deployment was created with: an object, or a string (of JSON, usually).
    pub payload: Option<Value>,
    pub creator: Option<User>,
}

impl Deployment {
    /// A string field of the deployment's `payload`, e.g. `image` or `app`. A payload created
    /// as a string of JSON is read as that JSON.
    pub fn payload_str(&self, key: &str) -> Option<String> {
        let payload = match self.payload.as_ref()? {
            Value::String(text) => serde_json::from_str::<Value>(text).ok()?,
            other => other.clone(),
        };
        non_empty(payload.get(key).and_then(Value::as_str)).map(str::to_owned)
    }
}

/// `deployment_status` (action `created`).
#[derive(Debug, Clone, Deserialize)]
pub struct DeploymentStatusEvent {
    pub deployment_status: DeploymentStatus,
    pub deployment: Deployment,
    pub repository: Repository,
    pub sender: Option<User>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DeploymentStatus {
    /// `pending`, `in_progress`, `queued`, `waiting`, `success`, `failure`, `error`, …
    pub state: String,
    pub environment: Option<String>,
    pub target_url: Option<String>,
    pub log_url: Option<String>,
    pub description: Option<String>,
    pub creator: Option<User>,
}

/// `workflow_run`.
#[derive(Debug, Clone, Deserialize)]
pub struct WorkflowRunEvent {
    /// `requested`, `in_progress` or `completed`; only `completed` runs are recorded.
    pub action: Option<String>,
    pub workflow_run: WorkflowRun,
    pub workflow: Option<Workflow>,
    pub repository: Repository,
    pub sender: Option<User>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Workflow {
    pub name: Option<String>,
    pub path: Option<String>,
}

/// A workflow run as GitHub reports it. Real deliveries are messy (a `completed` run whose
/// status is `queued`, a null conclusion, an empty name), so nearly everything is optional.
#[derive(Debug, Clone, Deserialize)]
pub struct WorkflowRun {
    pub id: i64,
    pub name: Option<String>,
    pub path: Option<String>,
    pub run_number: Option<i64>,
    pub run_attempt: Option<i64>,
    pub event: Option<String>,
    pub status: Option<String>,
    pub conclusion: Option<String>,
    pub head_sha: String,
    pub head_branch: Option<String>,
    pub html_url: Option<String>,
    pub created_at: Option<String>,
    pub run_started_at: Option<String>,
    pub updated_at: Option<String>,
    pub actor: Option<User>,
    pub triggering_actor: Option<User>,
}

/// `deployment_protection_rule` (action `requested`): GitHub waits for our answer at
/// `deployment_callback_url`.
#[derive(Debug, Clone, Deserialize)]
pub struct DeploymentProtectionRuleEvent {
    /// Only `requested` is answered.
    pub action: Option<String>,
    /// The environment's name as GitHub spells it; echoed back in the callback.
    pub environment: String,
    /// What triggered the deployment (`push`, `workflow_dispatch`, …).
    pub event: Option<String>,
    pub deployment_callback_url: String,
    pub deployment: Deployment,
    pub installation: Option<Installation>,
    pub repository: Repository,
    pub sender: Option<User>,
}

impl WithAction for WorkflowRunEvent {
    fn action(&self) -> Option<&str> {
        self.action.as_deref()
    }
}

impl WithAction for DeploymentProtectionRuleEvent {
    fn action(&self) -> Option<&str> {
        self.action.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field_error(value: Value) -> (String, String) {
        match decode::<DeploymentStatusEvent>(&value) {
            Err(PayloadError::Field { field, message }) => (field, message),
            other => panic!("expected a field error for {value}, got {other:?}"),
        }
    }

    fn status_event() -> Value {
        json!({
            "deployment_status": {"state": "success", "environment": "staging"},
            "deployment": {"sha": "0123456789abcdef0123456789abcdef01234567", "payload": {}},
            "repository": {"full_name": "acme/shop"},
        })
    }

    #[test]
    fn missing_and_mistyped_fields_are_named_by_their_path() {
        let mut value = status_event();
        value["deployment"]
            .as_object_mut()
            .expect("object")
            .remove("sha");
        assert_eq!(
            field_error(value),
            ("deployment.sha".to_owned(), "is required".to_owned())
        );

        let mut value = status_event();
        value.as_object_mut().expect("object").remove("repository");
        assert_eq!(field_error(value).0, "repository");

        let mut value = status_event();
        value["deployment_status"]["state"] = json!(7);
        let (field, message) = field_error(value);
        assert_eq!(field, "deployment_status.state");
        assert!(message.contains("expected a string"), "{message}");

        let mut value = status_event();
        value["deployment"]["sha"] = Value::Null;
        assert_eq!(field_error(value).0, "deployment.sha");
    }

    #[test]
    fn bodies_that_are_not_json_objects_are_told_apart() {
        assert!(matches!(
            parse_body(None, b"{\"zen\":"),
            Err(PayloadError::NotJson(_))
        ));
        assert!(matches!(
            parse_body(Some("application/json"), b"not json"),
            Err(PayloadError::NotJson(_))
        ));
        assert_eq!(parse_body(None, b"[1]"), Err(PayloadError::NotObject));
        assert!(matches!(
            parse_body(None, b""),
            Err(PayloadError::NotJson(_))
        ));
    }

    #[test]
    fn form_encoded_deliveries_carry_the_json_in_payload() {
        let body = b"payload=%7B%22zen%22%3A%22Keep+it+logically+awesome.%22%7D";
        let value = parse_body(
            Some("application/x-www-form-urlencoded; charset=utf-8"),
            body,
        )
        .expect("form body");
        assert_eq!(value["zen"], "Keep it logically awesome.");
        assert_eq!(
            parse_body(Some("application/x-www-form-urlencoded"), b"other=1"),
            Err(PayloadError::FormWithoutPayload)
        );
    }

    #[test]
    fn one_pass_reads_refuse_as_the_tree_does() {
        // serde would read a struct from an array; GitHub's payloads are objects.
        assert_eq!(
            read::<PingEvent>(None, b"[null, null]").err(),
            Some(PayloadError::NotObject)
        );
        assert!(matches!(
            read::<PingEvent>(None, b"{\"zen\": \"a\"} trailing"),
            Err(PayloadError::NotJson(_))
        ));
        let body = br#"{"deployment_status": {"state": "success"}, "deployment": {"payload": {}},
            "repository": {"full_name": "acme/shop"}}"#;
        assert_eq!(
            read::<DeploymentStatusEvent>(None, body).err(),
            Some(PayloadError::Field {
                field: "deployment.sha".to_owned(),
                message: "is required".to_owned()
            })
        );
        let ping: PingEvent =
            read(None, b"{\"zen\": \"Keep it simple.\", \"hook\": {}}").expect("ping");
        assert_eq!(ping.zen.as_deref(), Some("Keep it simple."));
    }

    #[test]
    fn other_actions_are_not_checked_for_the_wanted_actions_fields() {
        let requested = br#"{"action": "requested", "workflow_run": {}}"#;
        match read_for_action::<WorkflowRunEvent>(None, requested, "completed") {
            Ok(ForAction::Other(Some(action))) => assert_eq!(action, "requested"),
            other => panic!("ignored as another action: {other:?}"),
        }
        let completed = br#"{"action": "completed", "workflow_run": {"head_sha": "abc"},
            "repository": {"full_name": "acme/shop"}}"#;
        assert_eq!(
            read_for_action::<WorkflowRunEvent>(None, completed, "completed").err(),
            Some(PayloadError::Field {
                field: "workflow_run.id".to_owned(),
                message: "is required".to_owned()
            })
        );
        let form = b"payload=%7B%22action%22%3A7%7D";
        match read_for_action::<WorkflowRunEvent>(
            Some("application/x-www-form-urlencoded"),
            form,
            "completed",
        ) {
            Ok(ForAction::Other(None)) => {}
            other => panic!("an action that is not a string is no action: {other:?}"),
        }
    }

    #[test]
    fn payload_fields_are_read_from_objects_and_json_strings() {
        let mut value = status_event();
        value["deployment"]["payload"] = json!({"image": "ghcr.io/acme/shop:abc", "app": 3});
        let event: DeploymentStatusEvent = decode(&value).expect("valid");
        assert_eq!(
            event.deployment.payload_str("image").as_deref(),
            Some("ghcr.io/acme/shop:abc")
        );
        assert_eq!(event.deployment.payload_str("app"), None);

        value["deployment"]["payload"] = json!("{\"image\":\"ghcr.io/acme/shop:def\"}");
        let event: DeploymentStatusEvent = decode(&value).expect("valid");
        assert_eq!(
            event.deployment.payload_str("image").as_deref(),
            Some("ghcr.io/acme/shop:def")
        );

        value["deployment"]["payload"] = json!("not json");
        let event: DeploymentStatusEvent = decode(&value).expect("valid");
        assert_eq!(event.deployment.payload_str("image"), None);
    }
}
