//! "Did you mean …?": the known name closest to a mistyped one.

/// The candidate closest to `word`, if it is close enough to be a likely typo. Swapping two
/// neighbouring characters counts as one edit ("alcie" is one from "alice").
pub fn did_you_mean<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    let word_lower = word.to_ascii_lowercase();
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .filter(|candidate| *candidate != word)
        .map(|candidate| {
            let distance = strsim::osa_distance(&word_lower, &candidate.to_ascii_lowercase());
            (distance, candidate)
        })
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::did_you_mean;

    #[test]
    fn close_names_are_suggested_and_far_ones_are_not() {
        let known = ["alice", "production", "staging"];
        assert_eq!(did_you_mean("alcie", known), Some("alice"));
        assert_eq!(did_you_mean("prodution", known), Some("production"));
        assert_eq!(did_you_mean("Staging", known), Some("staging"));
        assert_eq!(did_you_mean("qa", known), None);
        assert_eq!(
            did_you_mean("alice", known),
            None,
            "an exact name is not a typo"
        );
    }
}
