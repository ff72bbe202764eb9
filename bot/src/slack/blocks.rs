//! Block Kit text rules: mrkdwn escaping, truncation to Slack's limits, and a checker that lists
//! every limit a message or modal breaks (REFERENCE §1.8).
//!
//! Lengths are counted in UTF-16 code units, never fewer than Slack's own count whether it
//! counts code points or JavaScript string length, so a cut text is always accepted.

use chrono::{DateTime, Utc};
use serde_json::Value;
use slack_morphism::blocks::SlackBlock;

use crate::chat::text::{self, Markup};

/// Slack's documented maxima, in characters.
pub mod limits {
    pub const BLOCKS_PER_MESSAGE: usize = 50;
    pub const BLOCKS_PER_MODAL: usize = 100;
    pub const BLOCK_ID: usize = 255;
    pub const SECTION_TEXT: usize = 3000;
    pub const SECTION_FIELDS: usize = 10;
    pub const FIELD_TEXT: usize = 2000;
    pub const HEADER_TEXT: usize = 150;
    pub const CONTEXT_ELEMENTS: usize = 10;
    pub const ACTIONS_ELEMENTS: usize = 25;
    pub const BUTTON_TEXT: usize = 75;
    pub const ACTION_ID: usize = 255;
    pub const BUTTON_VALUE: usize = 2000;
    pub const BUTTON_URL: usize = 3000;
    pub const CONFIRM_TITLE: usize = 100;
    pub const CONFIRM_TEXT: usize = 300;
    pub const CONFIRM_BUTTON: usize = 30;
    pub const MODAL_TITLE: usize = 24;
    pub const MODAL_BUTTON: usize = 24;
    pub const INPUT_LABEL: usize = 2000;
    pub const PLACEHOLDER: usize = 150;
    pub const INPUT_MAX_LENGTH: u64 = 3000;
    pub const PRIVATE_METADATA: usize = 3000;
    pub const CALLBACK_ID: usize = 255;
    /// Slack cuts a message's top-level `text` beyond 4000 characters; we stay below that, so
    /// notification fallbacks and plain messages are never cut by Slack in the middle of a word.
    pub const MESSAGE_TEXT: usize = 3000;
}

/// What Greenlight sends as one Slack message: the notification/fallback `text` (mrkdwn,
/// escaped) and the blocks (may be empty for a plain message).
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub text: String,
    pub blocks: Vec<SlackBlock>,
}

impl Message {
    /// A message without blocks that shows `text` exactly as written (escaped, cut to fit).
    pub fn plain(text: &str) -> Self {
        Self {
            text: escape_truncated(text, limits::MESSAGE_TEXT),
            blocks: Vec::new(),
        }
    }

    /// The message as the Web API receives it (`text` and, when there are any, `blocks`).
    pub fn to_json(&self) -> Value {
        let mut json = serde_json::json!({ "text": self.text });
        if !self.blocks.is_empty() {
            json["blocks"] = serde_json::to_value(&self.blocks).unwrap_or(Value::Null);
        }
        json
    }
}

/// Length as Slack may count it (see the module docs).
pub fn slack_len(text: &str) -> usize {
    text::len(text)
}

/// Slack's mrkdwn: `&`, `<` and `>` are the characters it gives a meaning to.
pub struct Mrkdwn;

impl Markup for Mrkdwn {
    fn push_escaped(out: &mut String, c: char, _at_line_start: bool) {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }

    fn bold(text: &str) -> String {
        format!("*{text}*")
    }

    /// Shown in each reader's time zone, with UTC as the fallback.
    fn time(at: DateTime<Utc>) -> String {
        format!(
            "<!date^{}^{{date_short_pretty}} {{time}}|{}>",
            at.timestamp(),
            at.format("%Y-%m-%d %H:%M UTC")
        )
    }
}

/// Escapes the three characters mrkdwn gives a meaning to, so user text cannot become a link,
/// a mention or an `@channel`.
pub fn escape(text: &str) -> String {
    Mrkdwn::escape(text)
}

/// Plain text (no escaping) cut to `max`, ending in "…" when cut.
pub fn truncate(text: &str, max: usize) -> String {
    text::truncate(text, max)
}

/// Escapes `text` for mrkdwn and cuts it to `max` after escaping, never inside an entity.
pub fn escape_truncated(text: &str, max: usize) -> String {
    Mrkdwn::escape_truncated(text, max)
}

/// A mrkdwn link `<url|label>` with an escaped label, or just the label when the URL is not an
/// http(s) URL Slack would link (or is absurdly long). The label is cut to `max_label`.
pub fn link(url: &str, label: &str, max_label: usize) -> String {
    let label = escape_truncated(label, max_label);
    let linkable = (url.starts_with("https://") || url.starts_with("http://"))
        && slack_len(url) <= 1000
        && !url.chars().any(char::is_whitespace);
    if !linkable {
        return label;
    }
    // `|` and `>` end the URL part of a link; `&` and `<` are escaped like everywhere else.
    let mut target = String::with_capacity(url.len());
    for c in url.chars() {
        match c {
            '|' => target.push_str("%7C"),
            '>' => target.push_str("%3E"),
            '<' => target.push_str("%3C"),
            '&' => target.push_str("&amp;"),
            c => target.push(c),
        }
    }
    format!("<{target}|{label}>")
}

pub use text::join_within;

/// Every Block Kit limit that a message (`{"text", "blocks"}`, as [`Message::to_json`] gives
/// it) breaks; empty when Slack would accept it.
pub fn message_violations(message: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(text) = message["text"].as_str() {
        check_len(&mut problems, "text", text, 1, limits::MESSAGE_TEXT);
    } else {
        problems.push("text: missing (needed for notifications)".to_owned());
    }
    if let Some(blocks) = message.get("blocks") {
        check_blocks(&mut problems, blocks, limits::BLOCKS_PER_MESSAGE);
    }
    problems
}

/// Every limit a modal view breaks; empty when Slack would accept it.
pub fn view_violations(view: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    check_text_object(&mut problems, "title", &view["title"], limits::MODAL_TITLE);
    for key in ["submit", "close"] {
        if !view[key].is_null() {
            check_text_object(&mut problems, key, &view[key], limits::MODAL_BUTTON);
        }
    }
    if let Some(metadata) = view["private_metadata"].as_str() {
        check_len(
            &mut problems,
            "private_metadata",
            metadata,
            0,
            limits::PRIVATE_METADATA,
        );
    }
    if let Some(callback) = view["callback_id"].as_str() {
        check_len(
            &mut problems,
            "callback_id",
            callback,
            1,
            limits::CALLBACK_ID,
        );
    }
    check_blocks(&mut problems, &view["blocks"], limits::BLOCKS_PER_MODAL);
    problems
}

fn check_len(problems: &mut Vec<String>, at: &str, text: &str, min: usize, max: usize) {
    let len = slack_len(text);
    if len < min || len > max {
        problems.push(format!("{at}: length {len} not in {min}..={max}"));
    }
}

fn check_text_object(problems: &mut Vec<String>, at: &str, object: &Value, max: usize) {
    match object["text"].as_str() {
        Some(text) => check_len(problems, at, text, 1, max),
        None => problems.push(format!("{at}: not a text object")),
    }
}

fn check_blocks(problems: &mut Vec<String>, blocks: &Value, max_blocks: usize) {
    let Some(blocks) = blocks.as_array() else {
        problems.push("blocks: not a list".to_owned());
        return;
    };
    if blocks.len() > max_blocks {
        problems.push(format!(
            "blocks: {} blocks, at most {max_blocks}",
            blocks.len()
        ));
    }
    let mut block_ids = std::collections::HashSet::new();
    for (index, block) in blocks.iter().enumerate() {
        let at = format!("blocks[{index}]");
        if let Some(id) = block["block_id"].as_str() {
            check_len(problems, &format!("{at}.block_id"), id, 1, limits::BLOCK_ID);
            if !block_ids.insert(id.to_owned()) {
                problems.push(format!("{at}.block_id: {id:?} used twice"));
            }
        }
        match block["type"].as_str() {
            Some("section") => check_section(problems, &at, block),
            Some("header") => {
                check_text_object(
                    problems,
                    &format!("{at}.text"),
                    &block["text"],
                    limits::HEADER_TEXT,
                );
            }
            Some("context") => check_context(problems, &at, block),
            Some("actions") => check_actions(problems, &at, block),
            Some("input") => check_input(problems, &at, block),
            Some("divider") => {}
            other => problems.push(format!("{at}: unexpected block type {other:?}")),
        }
    }
}

fn check_section(problems: &mut Vec<String>, at: &str, block: &Value) {
    let text = &block["text"];
    let fields = block["fields"].as_array();
    if text.is_null() && fields.is_none() {
        problems.push(format!("{at}: section without text or fields"));
    }
    if !text.is_null() {
        check_text_object(problems, &format!("{at}.text"), text, limits::SECTION_TEXT);
    }
    if let Some(fields) = fields {
        if fields.is_empty() || fields.len() > limits::SECTION_FIELDS {
            problems.push(format!(
                "{at}.fields: {} fields, 1..={}",
                fields.len(),
                limits::SECTION_FIELDS
            ));
        }
        for (index, field) in fields.iter().enumerate() {
            check_text_object(
                problems,
                &format!("{at}.fields[{index}]"),
                field,
                limits::FIELD_TEXT,
            );
        }
    }
    if block["accessory"]["type"] == "button" {
        check_button(problems, &format!("{at}.accessory"), &block["accessory"]);
    }
}

fn check_context(problems: &mut Vec<String>, at: &str, block: &Value) {
    let elements = block["elements"].as_array().map_or(&[][..], Vec::as_slice);
    if elements.is_empty() || elements.len() > limits::CONTEXT_ELEMENTS {
        problems.push(format!(
            "{at}.elements: {} elements, 1..={}",
            elements.len(),
            limits::CONTEXT_ELEMENTS
        ));
    }
    for (index, element) in elements.iter().enumerate() {
        if element["type"] != "image" {
            check_text_object(
                problems,
                &format!("{at}.elements[{index}]"),
                element,
                limits::SECTION_TEXT,
            );
        }
    }
}

fn check_actions(problems: &mut Vec<String>, at: &str, block: &Value) {
    let elements = block["elements"].as_array().map_or(&[][..], Vec::as_slice);
    if elements.is_empty() || elements.len() > limits::ACTIONS_ELEMENTS {
        problems.push(format!(
            "{at}.elements: {} elements, 1..={}",
            elements.len(),
            limits::ACTIONS_ELEMENTS
        ));
    }
    let mut action_ids = std::collections::HashSet::new();
    for (index, element) in elements.iter().enumerate() {
        let at = format!("{at}.elements[{index}]");
        if let Some(id) = element["action_id"].as_str() {
            if !action_ids.insert(id.to_owned()) {
                problems.push(format!("{at}.action_id: {id:?} used twice in the block"));
            }
        }
        match element["type"].as_str() {
            Some("button") => check_button(problems, &at, element),
            other => problems.push(format!("{at}: unexpected element {other:?}")),
        }
    }
}

fn check_button(problems: &mut Vec<String>, at: &str, button: &Value) {
    check_text_object(
        problems,
        &format!("{at}.text"),
        &button["text"],
        limits::BUTTON_TEXT,
    );
    if let Some(id) = button["action_id"].as_str() {
        check_len(
            problems,
            &format!("{at}.action_id"),
            id,
            1,
            limits::ACTION_ID,
        );
    }
    if let Some(value) = button["value"].as_str() {
        check_len(
            problems,
            &format!("{at}.value"),
            value,
            1,
            limits::BUTTON_VALUE,
        );
    }
    if let Some(url) = button["url"].as_str() {
        check_len(problems, &format!("{at}.url"), url, 1, limits::BUTTON_URL);
    }
    if let Some(style) = button["style"].as_str() {
        if style != "primary" && style != "danger" {
            problems.push(format!("{at}.style: {style:?}"));
        }
    }
    let confirm = &button["confirm"];
    if !confirm.is_null() {
        let at = format!("{at}.confirm");
        check_text_object(
            problems,
            &format!("{at}.title"),
            &confirm["title"],
            limits::CONFIRM_TITLE,
        );
        check_text_object(
            problems,
            &format!("{at}.text"),
            &confirm["text"],
            limits::CONFIRM_TEXT,
        );
        check_text_object(
            problems,
            &format!("{at}.confirm"),
            &confirm["confirm"],
            limits::CONFIRM_BUTTON,
        );
        check_text_object(
            problems,
            &format!("{at}.deny"),
            &confirm["deny"],
            limits::CONFIRM_BUTTON,
        );
    }
}

fn check_input(problems: &mut Vec<String>, at: &str, block: &Value) {
    check_text_object(
        problems,
        &format!("{at}.label"),
        &block["label"],
        limits::INPUT_LABEL,
    );
    let element = &block["element"];
    if let Some(id) = element["action_id"].as_str() {
        check_len(
            problems,
            &format!("{at}.element.action_id"),
            id,
            1,
            limits::ACTION_ID,
        );
    }
    if !element["placeholder"].is_null() {
        check_text_object(
            problems,
            &format!("{at}.element.placeholder"),
            &element["placeholder"],
            limits::PLACEHOLDER,
        );
    }
    if let Some(max) = element["max_length"].as_u64() {
        if max > limits::INPUT_MAX_LENGTH {
            problems.push(format!("{at}.element.max_length: {max}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_only_what_mrkdwn_interprets() {
        assert_eq!(
            escape("<!channel> a & b > c *bold*"),
            "&lt;!channel&gt; a &amp; b &gt; c *bold*"
        );
    }

    #[test]
    fn truncation_marks_the_cut_and_keeps_short_text() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("abcdefghijk", 5), "abcd…");
        assert_eq!(slack_len(&truncate(&"x".repeat(5000), 3000)), 3000);
        // An emoji outside the BMP is two UTF-16 units; it is never split.
        let cut = truncate(&"😀".repeat(10), 5);
        assert_eq!(cut, "😀😀…");
    }

    #[test]
    fn escaped_truncation_never_splits_an_entity() {
        let cut = escape_truncated(&"<".repeat(100), 10);
        assert_eq!(cut, "&lt;&lt;…");
        assert!(slack_len(&cut) <= 10);
    }

    #[test]
    fn links_only_web_urls_and_keep_the_link_syntax_intact() {
        assert_eq!(
            link("https://x.test/a?b=1&c=2", "a<b", 50),
            "<https://x.test/a?b=1&amp;c=2|a&lt;b>"
        );
        assert_eq!(
            link("https://x.test/a|b", "l", 5),
            "<https://x.test/a%7Cb|l>"
        );
        assert_eq!(link("javascript:alert(1)", "l", 5), "l");
    }

    #[test]
    fn join_within_summarises_what_does_not_fit() {
        let lines: Vec<String> = (0..100).map(|i| format!("line {i:03}")).collect();
        let joined = join_within(&lines, 60, |n| format!("…and {n} more"));
        assert!(slack_len(&joined) <= 60, "{joined}");
        assert!(joined.starts_with("line 000\nline 001"));
        let shown = joined.lines().filter(|l| l.starts_with("line")).count();
        assert!(
            joined.ends_with(&format!("…and {} more", 100 - shown)),
            "{joined}"
        );
        assert_eq!(
            join_within(&lines[..2], 60, |_| String::new()),
            "line 000\nline 001"
        );
    }

    #[test]
    fn checker_finds_broken_limits() {
        let message = serde_json::json!({
            "text": "",
            "blocks": [
                {"type": "section", "block_id": "a", "text": {"type": "mrkdwn", "text": "x".repeat(3001)}},
                {"type": "section", "block_id": "a", "fields": vec![serde_json::json!({"type": "mrkdwn", "text": "f"}); 11]},
                {"type": "actions", "elements": [{"type": "button", "action_id": "approve",
                    "text": {"type": "plain_text", "text": "y".repeat(76)}, "value": "1",
                    "confirm": {"title": {"type": "plain_text", "text": "t"},
                        "text": {"type": "plain_text", "text": "z".repeat(301)},
                        "confirm": {"type": "plain_text", "text": "ok"},
                        "deny": {"type": "plain_text", "text": "no"}}}]}
            ]
        });
        let problems = message_violations(&message);
        assert_eq!(problems.len(), 6, "{problems:#?}");
    }
}
