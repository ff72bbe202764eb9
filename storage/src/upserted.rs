//! The result of an idempotent insert: the row, and whether this call created it.

/// What an idempotent insert found: `Created` by this call, or already `Existing`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upserted<T> {
    Created(T),
    Existing(T),
}

impl<T> Upserted<T> {
    pub fn is_created(&self) -> bool {
        matches!(self, Self::Created(_))
    }

    pub fn into_inner(self) -> T {
        match self {
            Self::Created(value) | Self::Existing(value) => value,
        }
    }

    pub fn get(&self) -> &T {
        match self {
            Self::Created(value) | Self::Existing(value) => value,
        }
    }
}
