//! Numbered placeholders for statements that carry a variable number of values (a batch).

/// `count` placeholders numbered from `first`, comma-separated: `$3, $4, $5`.
pub(crate) fn numbered(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `rows` tuples of `width` placeholders numbered from `first`, one after another:
/// `($2, $3), ($4, $5)`.
pub(crate) fn tuples(first: usize, rows: usize, width: usize) -> String {
    (0..rows)
        .map(|row| format!("({})", numbered(first + row * width, width)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_order() {
        assert_eq!(numbered(3, 3), "$3, $4, $5");
        assert_eq!(numbered(1, 0), "");
        assert_eq!(tuples(2, 2, 2), "($2, $3), ($4, $5)");
    }
}
