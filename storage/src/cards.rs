//! Where each card was posted (platform, channel, message id), so later edits reach it.

use chrono::{DateTime, Utc};
use greenlight_commands::Platform;
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, FromRow, Row};

use crate::columns::{millis, time, word};
use crate::{Storage, StorageError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    pub id: i64,
    /// What the message shows, e.g. `approval:42`; chosen by the caller.
    pub card_key: String,
    pub platform: Platform,
    pub channel: String,
    /// Slack `ts` or Discord message id.
    pub message_ref: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, card_key, platform, channel, message_ref, created_at, updated_at";

impl<'r> FromRow<'r, AnyRow> for ChatMessage {
    fn from_row(row: &'r AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            card_key: row.try_get("card_key")?,
            platform: word(row, "platform")?,
            channel: row.try_get("channel")?,
            message_ref: row.try_get("message_ref")?,
            created_at: time(row, "created_at")?,
            updated_at: time(row, "updated_at")?,
        })
    }
}

/// Remembers where a card was posted; posting it again in the same channel replaces the ref.
pub async fn record_chat_message(
    conn: &mut AnyConnection,
    card_key: &str,
    platform: Platform,
    channel: &str,
    message_ref: &str,
    at: DateTime<Utc>,
) -> Result<ChatMessage, StorageError> {
    if !platform.is_chat() {
        return Err(StorageError::invalid(
            "platform",
            format!("cards are posted on chat platforms, not {platform}"),
        ));
    }
    Ok(sqlx::query_as::<_, ChatMessage>(&format!(
        "INSERT INTO chat_messages (card_key, platform, channel, message_ref, created_at, \
         updated_at) VALUES ($1, $2, $3, $4, $5, $5) \
         ON CONFLICT (card_key, platform, channel) DO UPDATE SET \
         message_ref = excluded.message_ref, updated_at = excluded.updated_at \
         RETURNING {COLUMNS}"
    ))
    .bind(card_key)
    .bind(platform.as_str())
    .bind(channel)
    .bind(message_ref)
    .bind(millis(at))
    .fetch_one(conn)
    .await?)
}

/// Every message showing the card, in the order they were first posted.
pub async fn chat_messages(
    conn: &mut AnyConnection,
    card_key: &str,
) -> Result<Vec<ChatMessage>, StorageError> {
    Ok(sqlx::query_as::<_, ChatMessage>(&format!(
        "SELECT {COLUMNS} FROM chat_messages WHERE card_key = $1 ORDER BY id"
    ))
    .bind(card_key)
    .fetch_all(conn)
    .await?)
}

impl Storage {
    pub async fn record_chat_message(
        &self,
        card_key: &str,
        platform: Platform,
        channel: &str,
        message_ref: &str,
        at: DateTime<Utc>,
    ) -> Result<ChatMessage, StorageError> {
        let (key, channel, message_ref) = (
            card_key.to_owned(),
            channel.to_owned(),
            message_ref.to_owned(),
        );
        self.write(move |conn| {
            Box::pin(async move {
                record_chat_message(conn, &key, platform, &channel, &message_ref, at).await
            })
        })
        .await
    }

    pub async fn chat_messages(&self, card_key: &str) -> Result<Vec<ChatMessage>, StorageError> {
        chat_messages(&mut *self.reader().await?, card_key).await
    }
}
