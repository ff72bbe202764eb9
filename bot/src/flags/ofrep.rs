//! OFREP's JSON shapes for one flag's answer (OFREP v0.3): the success item
//! `{"key","value","reason","variant","metadata"}`, which is also the single-flag body, and the
//! failure item `{"key","errorCode","errorDetails"}`.

use serde::Serialize;
use serde_json::{Map, Value};

use super::{Evaluation, EvaluationError};

/// OFREP's error codes (OpenFeature's, plus `FLAG_NOT_FOUND` for 404).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    ParseError,
    TargetingKeyMissing,
    InvalidContext,
    FlagNotFound,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ParseError => "PARSE_ERROR",
            Self::TargetingKeyMissing => "TARGETING_KEY_MISSING",
            Self::InvalidContext => "INVALID_CONTEXT",
            Self::FlagNotFound => "FLAG_NOT_FOUND",
        }
    }
}

impl From<&EvaluationError> for ErrorCode {
    fn from(error: &EvaluationError) -> Self {
        match error {
            EvaluationError::TargetingKeyMissing { .. } => Self::TargetingKeyMissing,
        }
    }
}

/// `{"key","value","reason","variant","metadata"}`.
#[derive(Debug, Serialize)]
pub struct SuccessItem<'a> {
    pub key: &'a str,
    pub value: bool,
    pub reason: &'static str,
    pub variant: &'static str,
    pub metadata: Map<String, Value>,
}

impl<'a> SuccessItem<'a> {
    pub fn new(key: &'a str, evaluation: Evaluation) -> Self {
        Self {
            key,
            value: evaluation.value,
            reason: evaluation.reason.as_str(),
            variant: evaluation.variant(),
            metadata: Map::new(),
        }
    }
}

/// `{"key","errorCode","errorDetails"}` for a flag's failure, or `{"errorCode","errorDetails"}`
/// (no key) for a failed bulk request.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureItem<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<&'a str>,
    pub error_code: &'static str,
    pub error_details: String,
}

impl<'a> FailureItem<'a> {
    pub fn new(key: Option<&'a str>, code: ErrorCode, details: String) -> Self {
        Self {
            key,
            error_code: code.as_str(),
            error_details: details,
        }
    }
}
