//! Discord's message wire format as Greenlight sends it (content, embeds, buttons, modals,
//! interaction responses), markdown escaping, and a checker that lists every limit a message
//! breaks (REFERENCE §2.4 and Discord's embed limits).
//!
//! These are our own small serde types rather than serenity's builders: Greenlight sends a
//! handful of shapes, and serenity 0.12 would bring a second rustls and its gateway stack for
//! them (REFERENCE §5 item 3). Lengths are counted in UTF-16 code units, never fewer than
//! Discord's own count, so a cut text is always accepted.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::chat::text::{self, Markup};

/// Discord's documented maxima, in characters.
pub mod limits {
    pub const CONTENT: usize = 2000;
    pub const EMBEDS: usize = 10;
    pub const EMBED_TITLE: usize = 256;
    pub const EMBED_DESCRIPTION: usize = 4096;
    pub const EMBED_FIELDS: usize = 25;
    pub const FIELD_NAME: usize = 256;
    pub const FIELD_VALUE: usize = 1024;
    pub const FOOTER_TEXT: usize = 2048;
    pub const AUTHOR_NAME: usize = 256;
    /// Title, description, field names and values, footer and author of all embeds together.
    pub const EMBED_TOTAL: usize = 6000;
    pub const ACTION_ROWS: usize = 5;
    pub const BUTTONS_PER_ROW: usize = 5;
    pub const CUSTOM_ID: usize = 100;
    pub const BUTTON_LABEL: usize = 80;
    pub const MODAL_TITLE: usize = 45;
    pub const TEXT_INPUT_LABEL: usize = 45;
    pub const PLACEHOLDER: usize = 100;
    pub const TEXT_INPUT_MAX_LENGTH: u32 = 4000;
    /// Links longer than this are shown as text: Discord refuses very long embed URLs, and a
    /// refused card would never be posted.
    pub const URL: usize = 512;
}

/// `flags` bit: only the person who acted sees the message.
pub const EPHEMERAL: u64 = 1 << 6;

/// Button styles (REFERENCE §2.4).
pub mod style {
    pub const PRIMARY: u8 = 1;
    pub const SECONDARY: u8 = 2;
    pub const SUCCESS: u8 = 3;
    pub const DANGER: u8 = 4;
}

/// One message: posted, edited, or the `data` of an interaction response.
///
/// `embeds` and `components` are always sent, so an edit replaces them (an empty list removes
/// the buttons of a final card). Mentions never ping: the text may quote what users typed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Message {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    pub embeds: Vec<Embed>,
    pub components: Vec<ActionRow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flags: Option<u64>,
    pub allowed_mentions: AllowedMentions,
    /// Makes a posted message a reply (reminders under the card).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_reference: Option<MessageReference>,
    /// With `enforce_nonce`, Discord answers a repeated post with the same nonce (within a few
    /// minutes) with the first message instead of a second one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub enforce_nonce: bool,
}

impl Message {
    /// A message that shows `text` exactly as written (escaped, cut to fit).
    pub fn plain(text: &str) -> Self {
        Self {
            content: Some(escape_truncated(text, limits::CONTENT)),
            ..Self::default()
        }
    }

    /// A private reply whose markdown is Greenlight's own (command replies: `code` for SHAs and
    /// flag keys, bullets). Mentions stay disabled, so user text inside cannot ping anyone.
    pub fn ephemeral_markdown(text: &str) -> Self {
        Self {
            content: Some(truncate(text, limits::CONTENT)),
            flags: Some(EPHEMERAL),
            ..Self::default()
        }
    }

    /// As [`Self::plain`], seen only by the person who acted.
    pub fn ephemeral(text: &str) -> Self {
        Self {
            flags: Some(EPHEMERAL),
            ..Self::plain(text)
        }
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AllowedMentions {
    /// Empty: no `@everyone`, role or user mention in the text notifies anyone.
    pub parse: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessageReference {
    pub message_id: String,
    pub channel_id: String,
    /// A deleted card should not stop the reminder.
    pub fail_if_not_exists: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Embed {
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub color: u32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<EmbedField>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub footer: Option<EmbedFooter>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EmbedField {
    pub name: String,
    pub value: String,
    pub inline: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EmbedFooter {
    pub text: String,
}

/// A row of buttons, or the one text input of a modal row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionRow {
    #[serde(rename = "type")]
    kind: u8,
    pub components: Vec<Component>,
}

impl ActionRow {
    pub fn new(components: Vec<Component>) -> Self {
        Self {
            kind: 1,
            components,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Component {
    Button(Button),
    TextInput(TextInput),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Button {
    #[serde(rename = "type")]
    kind: u8,
    pub style: u8,
    pub label: String,
    pub custom_id: String,
}

impl Component {
    /// A button that sends an interaction with `custom_id` when clicked.
    pub fn button(style: u8, label: &str, custom_id: String) -> Self {
        Self::Button(Button {
            kind: 2,
            style,
            label: truncate(label, limits::BUTTON_LABEL),
            custom_id,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TextInput {
    #[serde(rename = "type")]
    kind: u8,
    pub custom_id: String,
    /// 2: paragraph (several lines).
    pub style: u8,
    pub label: String,
    pub required: bool,
    pub min_length: u32,
    pub max_length: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<String>,
}

impl Component {
    /// A required, multi-line text input (modals only).
    pub fn paragraph(
        custom_id: &str,
        label: &str,
        max_length: u32,
        placeholder: Option<&str>,
    ) -> Self {
        Self::TextInput(TextInput {
            kind: 4,
            custom_id: custom_id.to_owned(),
            style: 2,
            label: truncate(label, limits::TEXT_INPUT_LABEL),
            required: true,
            min_length: 1,
            max_length: max_length.min(limits::TEXT_INPUT_MAX_LENGTH),
            placeholder: placeholder.map(|text| truncate(text, limits::PLACEHOLDER)),
        })
    }
}

/// The `data` of a MODAL interaction response.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Modal {
    pub custom_id: String,
    pub title: String,
    pub components: Vec<ActionRow>,
}

/// What Greenlight answers an interaction with, as the HTTP body (REFERENCE §2.2).
#[derive(Debug, Clone, PartialEq)]
pub enum InteractionResponse {
    /// 1: the answer to a PING.
    Pong,
    /// 4: a new message in reply (usually ephemeral).
    Message(Message),
    /// 7: edits the message whose button was clicked.
    UpdateMessage(Message),
    /// 8: no suggestions.
    NoChoices,
    /// 9: opens a form.
    Modal(Modal),
}

impl InteractionResponse {
    pub fn to_json(&self) -> Value {
        let (kind, data) = match self {
            Self::Pong => (1, None),
            Self::Message(message) => (4, Some(message.to_json())),
            Self::UpdateMessage(message) => (7, Some(message.to_json())),
            Self::NoChoices => (8, Some(serde_json::json!({ "choices": [] }))),
            Self::Modal(modal) => (9, serde_json::to_value(modal).ok()),
        };
        match data {
            Some(data) => serde_json::json!({ "type": kind, "data": data }),
            None => serde_json::json!({ "type": kind }),
        }
    }
}

/// Length as Discord may count it (see the module docs).
pub fn discord_len(text: &str) -> usize {
    text::len(text)
}

/// Characters Discord markdown gives a meaning to anywhere in a line (emphasis, code,
/// spoilers, masked links, mentions, timestamps). A backslash before one shows it literally.
fn needs_escape(c: char) -> bool {
    matches!(
        c,
        '\\' | '*' | '_' | '~' | '`' | '|' | '<' | '[' | ']' | '@'
    )
}

/// Characters that mean something only at the start of a line (headings, lists, quotes).
fn needs_escape_at_line_start(c: char) -> bool {
    matches!(c, '#' | '-' | '+' | '>')
}

/// Discord's markdown.
pub struct DiscordMarkdown;

impl Markup for DiscordMarkdown {
    fn push_escaped(out: &mut String, c: char, at_line_start: bool) {
        if needs_escape(c) || (at_line_start && needs_escape_at_line_start(c)) {
            out.push('\\');
        }
        out.push(c);
    }

    fn bold(text: &str) -> String {
        format!("**{text}**")
    }

    /// Shown in each reader's time zone.
    fn time(at: DateTime<Utc>) -> String {
        format!("<t:{}:f>", at.timestamp())
    }
}

/// Escapes markdown in user text, so a commit message or reason cannot format, link or
/// mention.
pub fn escape(text: &str) -> String {
    DiscordMarkdown::escape(text)
}

/// Plain text (no escaping) cut to `max`, ending in "…" when cut.
pub fn truncate(text: &str, max: usize) -> String {
    text::truncate(text, max)
}

/// Escapes `text` and cuts it to `max` after escaping, never between a backslash and the
/// character it escapes.
pub fn escape_truncated(text: &str, max: usize) -> String {
    DiscordMarkdown::escape_truncated(text, max)
}

/// A markdown link with an escaped label, or just the label when `url` is not an http(s) URL
/// Discord would link (or is too long to be worth the room).
pub fn link(url: &str, label: &str, max_label: usize) -> String {
    let label = escape_truncated(label, max_label);
    match linkable(url) {
        Some(url) => format!("[{label}]({url})"),
        None => label,
    }
}

/// `url` when Discord accepts it as a link target: http(s), parseable, not too long. `)` and
/// whitespace would end the link early, so they are percent-encoded.
pub fn linkable(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return None;
    }
    let text = parsed
        .as_str()
        .replace('(', "%28")
        .replace(')', "%29")
        .replace(' ', "%20");
    (discord_len(&text) <= limits::URL).then_some(text)
}

pub use text::join_within;

/// Total length of what counts towards [`limits::EMBED_TOTAL`] in one embed.
pub fn embed_len(embed: &Embed) -> usize {
    discord_len(&embed.title)
        + discord_len(&embed.description)
        + embed
            .fields
            .iter()
            .map(|field| discord_len(&field.name) + discord_len(&field.value))
            .sum::<usize>()
        + embed
            .footer
            .as_ref()
            .map_or(0, |footer| discord_len(&footer.text))
}

/// Every limit that a message (as [`Message::to_json`] gives it) breaks; empty when Discord
/// would accept it.
pub fn message_violations(message: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let content = message["content"].as_str().unwrap_or_default();
    check_len(&mut problems, "content", content, 0, limits::CONTENT);
    let embeds = message["embeds"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    if content.is_empty() && embeds.is_empty() {
        problems.push("message: neither content nor embeds".to_owned());
    }
    if embeds.len() > limits::EMBEDS {
        problems.push(format!("embeds: {} > {}", embeds.len(), limits::EMBEDS));
    }
    let mut total = 0;
    for (i, embed) in embeds.iter().enumerate() {
        total += check_embed(&mut problems, &format!("embeds[{i}]"), embed);
    }
    if total > limits::EMBED_TOTAL {
        problems.push(format!(
            "embeds: {total} characters in all > {}",
            limits::EMBED_TOTAL
        ));
    }
    let rows = message["components"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    check_rows(&mut problems, "components", rows, false);
    if message.get("allowed_mentions").is_none() {
        problems.push("allowed_mentions: missing (mentions in user text would ping)".to_owned());
    }
    problems
}

/// Every limit a MODAL response's `data` breaks.
pub fn modal_violations(modal: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    check_custom_id(&mut problems, "custom_id", &modal["custom_id"]);
    check_len(
        &mut problems,
        "title",
        modal["title"].as_str().unwrap_or_default(),
        1,
        limits::MODAL_TITLE,
    );
    let rows = modal["components"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    if rows.is_empty() {
        problems.push("components: a modal needs at least one input".to_owned());
    }
    check_rows(&mut problems, "components", rows, true);
    problems
}

/// Every limit an interaction response breaks, whatever its type.
pub fn response_violations(response: &Value) -> Vec<String> {
    match response["type"].as_u64() {
        Some(1) => Vec::new(),
        Some(4 | 7) => message_violations(&response["data"]),
        Some(8) => Vec::new(),
        Some(9) => modal_violations(&response["data"]),
        other => vec![format!("type: unexpected {other:?}")],
    }
}

fn check_embed(problems: &mut Vec<String>, at: &str, embed: &Value) -> usize {
    let text = |key: &str| embed[key].as_str().unwrap_or_default().to_owned();
    let title = text("title");
    let description = text("description");
    check_len(
        problems,
        &format!("{at}.title"),
        &title,
        0,
        limits::EMBED_TITLE,
    );
    check_len(
        problems,
        &format!("{at}.description"),
        &description,
        0,
        limits::EMBED_DESCRIPTION,
    );
    if let Some(url) = embed["url"].as_str() {
        if linkable(url).as_deref() != Some(url) {
            problems.push(format!("{at}.url: not a link Discord accepts: {url:?}"));
        }
    }
    let mut total = discord_len(&title) + discord_len(&description);
    let fields = embed["fields"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if fields.len() > limits::EMBED_FIELDS {
        problems.push(format!(
            "{at}.fields: {} > {}",
            fields.len(),
            limits::EMBED_FIELDS
        ));
    }
    for (i, field) in fields.iter().enumerate() {
        let name = field["name"].as_str().unwrap_or_default();
        let value = field["value"].as_str().unwrap_or_default();
        check_len(
            problems,
            &format!("{at}.fields[{i}].name"),
            name,
            1,
            limits::FIELD_NAME,
        );
        check_len(
            problems,
            &format!("{at}.fields[{i}].value"),
            value,
            1,
            limits::FIELD_VALUE,
        );
        total += discord_len(name) + discord_len(value);
    }
    if let Some(footer) = embed["footer"]["text"].as_str() {
        check_len(
            problems,
            &format!("{at}.footer.text"),
            footer,
            1,
            limits::FOOTER_TEXT,
        );
        total += discord_len(footer);
    }
    if let Some(author) = embed["author"]["name"].as_str() {
        check_len(
            problems,
            &format!("{at}.author.name"),
            author,
            1,
            limits::AUTHOR_NAME,
        );
        total += discord_len(author);
    }
    total
}

fn check_rows(problems: &mut Vec<String>, at: &str, rows: &[Value], modal: bool) {
    if rows.len() > limits::ACTION_ROWS {
        problems.push(format!(
            "{at}: {} rows > {}",
            rows.len(),
            limits::ACTION_ROWS
        ));
    }
    let mut custom_ids = std::collections::HashSet::new();
    for (r, row) in rows.iter().enumerate() {
        let at = format!("{at}[{r}]");
        if row["type"] != 1 {
            problems.push(format!("{at}.type: expected an action row (1)"));
        }
        let items = row["components"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        if items.is_empty() {
            problems.push(format!("{at}: empty action row"));
        }
        let max = if modal { 1 } else { limits::BUTTONS_PER_ROW };
        if items.len() > max {
            problems.push(format!("{at}: {} components > {max}", items.len()));
        }
        for (c, item) in items.iter().enumerate() {
            let at = format!("{at}.components[{c}]");
            check_custom_id(problems, &format!("{at}.custom_id"), &item["custom_id"]);
            if let Some(id) = item["custom_id"].as_str() {
                if !custom_ids.insert(id.to_owned()) {
                    problems.push(format!("{at}.custom_id: {id:?} used twice"));
                }
            }
            match (item["type"].as_u64(), modal) {
                (Some(2), false) => {
                    check_len(
                        problems,
                        &format!("{at}.label"),
                        item["label"].as_str().unwrap_or_default(),
                        1,
                        limits::BUTTON_LABEL,
                    );
                    if !matches!(item["style"].as_u64(), Some(1..=4)) {
                        problems.push(format!("{at}.style: expected 1-4"));
                    }
                }
                (Some(4), true) => {
                    check_len(
                        problems,
                        &format!("{at}.label"),
                        item["label"].as_str().unwrap_or_default(),
                        1,
                        limits::TEXT_INPUT_LABEL,
                    );
                    if let Some(placeholder) = item["placeholder"].as_str() {
                        check_len(
                            problems,
                            &format!("{at}.placeholder"),
                            placeholder,
                            0,
                            limits::PLACEHOLDER,
                        );
                    }
                    let max_length = item["max_length"].as_u64().unwrap_or(0);
                    let min_length = item["min_length"].as_u64().unwrap_or(0);
                    if max_length == 0 || max_length > u64::from(limits::TEXT_INPUT_MAX_LENGTH) {
                        problems.push(format!("{at}.max_length: expected 1-4000"));
                    }
                    if min_length > max_length {
                        problems.push(format!("{at}.min_length: above max_length"));
                    }
                }
                (kind, _) => problems.push(format!("{at}.type: unexpected {kind:?} here")),
            }
        }
    }
}

fn check_custom_id(problems: &mut Vec<String>, at: &str, value: &Value) {
    match value.as_str() {
        Some(id) => check_len(problems, at, id, 1, limits::CUSTOM_ID),
        None => problems.push(format!("{at}: missing")),
    }
}

fn check_len(problems: &mut Vec<String>, at: &str, text: &str, min: usize, max: usize) {
    let len = discord_len(text);
    if len < min || len > max {
        problems.push(format!("{at}: {len} characters, allowed {min}-{max}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_neutralises_markdown_mentions_and_links() {
        assert_eq!(
            escape("**bold** @everyone <@123> [x](http://e) `c`"),
            r"\*\*bold\*\* \@everyone \<\@123> \[x\](http://e) \`c\`"
        );
        assert_eq!(
            escape("self-review (alice) -> ok, 100%."),
            "self-review (alice) -> ok, 100%."
        );
        assert_eq!(
            escape("# title\n - item\n> quote\n+ x"),
            r"\# title".to_owned() + "\n" + r" \- item" + "\n" + r"\> quote" + "\n" + r"\+ x"
        );
    }

    #[test]
    fn cutting_counts_escapes_and_never_splits_one() {
        assert_eq!(escape_truncated("abcdef", 6), "abcdef");
        assert_eq!(escape_truncated("abcdefg", 6), "abcde…");
        // Escapes count: "a\*" is 3 units, then the ellipsis.
        assert_eq!(escape_truncated("a*b*c", 4), r"a\*…");
        assert_eq!(escape_truncated("a*b*c", 3), "a…");
        assert_eq!(truncate("😀😀😀", 5), "😀😀…");
        for max in 0..40 {
            let cut = escape_truncated(&"*_😀 ".repeat(20), max);
            assert!(discord_len(&cut) <= max, "{max}: {cut}");
            assert!(!cut.trim_end_matches('…').ends_with('\\'), "{max}: {cut}");
        }
    }

    #[test]
    fn links_need_an_http_url_that_fits() {
        assert_eq!(
            link("https://github.com/a/b/commit/0123", "0123", 10),
            "[0123](https://github.com/a/b/commit/0123)"
        );
        assert_eq!(link("javascript:alert(1)", "x", 10), "x");
        assert_eq!(link("not a url", "x*", 10), r"x\*");
        let long = format!("https://example.com/{}", "a".repeat(600));
        assert_eq!(link(&long, "x", 10), "x");
        assert_eq!(
            linkable("https://example.com/a(b)").as_deref(),
            Some("https://example.com/a%28b%29")
        );
    }

    #[test]
    fn responses_serialize_as_discord_expects() {
        assert_eq!(
            InteractionResponse::Pong.to_json(),
            serde_json::json!({"type": 1})
        );
        let ephemeral = InteractionResponse::Message(Message::ephemeral("hi")).to_json();
        assert_eq!(ephemeral["type"], 4);
        assert_eq!(ephemeral["data"]["flags"], 64);
        assert_eq!(ephemeral["data"]["content"], "hi");
        assert_eq!(
            ephemeral["data"]["allowed_mentions"]["parse"],
            serde_json::json!([])
        );
        assert!(response_violations(&ephemeral).is_empty());
        let row = ActionRow::new(vec![Component::button(
            style::SUCCESS,
            "Approve",
            "approve:1".into(),
        )]);
        let value = serde_json::to_value(&row).expect("json");
        assert_eq!(
            value,
            serde_json::json!({"type": 1, "components": [
                {"type": 2, "style": 3, "label": "Approve", "custom_id": "approve:1"}]})
        );
    }

    #[test]
    fn the_checker_finds_broken_limits() {
        let message = serde_json::json!({
            "content": "x".repeat(2001),
            "embeds": [{"title": "t", "fields": [{"name": "", "value": "v"}]}],
            "components": [{"type": 1, "components": [
                {"type": 2, "style": 3, "label": "a", "custom_id": "x".repeat(101)},
                {"type": 2, "style": 9, "label": "", "custom_id": "x".repeat(101)}]}],
        });
        let problems = message_violations(&message);
        for needle in [
            "content",
            "fields[0].name",
            "custom_id: 101",
            "used twice",
            "style",
            "label",
            "allowed_mentions",
        ] {
            assert!(
                problems.iter().any(|p| p.contains(needle)),
                "{needle}: {problems:#?}"
            );
        }
    }
}
