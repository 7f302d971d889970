//! Nomad-style glob matching for namespace labels and variables paths.
//!
//! Called by [`crate::Acl`] when no exact rule names the namespace or path being checked. The
//! only wildcard is `*`, which matches any run of characters, `/` included. When several globs
//! match, the closest one wins: the one that leaves the fewest characters of the subject to the
//! wildcards. That ranking is why this is written here rather than taken from `globset`.

/// Reports whether `label` contains a wildcard and so must be matched as a glob.
pub(crate) fn is_glob(label: &str) -> bool {
    label.contains('*')
}

/// Reports whether `pattern` matches the whole of `subject`.
///
/// A pattern without `*` matches only itself.
pub(crate) fn matches(pattern: &str, subject: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = subject.strip_prefix(first) else {
        return false;
    };

    let tail: Vec<&str> = parts.collect();
    let Some((last, middle)) = tail.split_last() else {
        return rest.is_empty();
    };

    // Taking the leftmost occurrence of each middle part leaves the longest remainder, so if any
    // assignment of the wildcards works, this one does.
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// How many characters of a matched subject the wildcards of `pattern` account for.
///
/// Only meaningful when `pattern` matches a subject of `subject_chars` characters; smaller is
/// closer.
pub(crate) fn difference(pattern: &str, subject_chars: usize) -> usize {
    let literal = pattern.chars().filter(|c| *c != '*').count();
    subject_chars.saturating_sub(literal)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The obvious recursive definition of `*`-only globs, to check the fast one against.
    fn reference(pattern: &[u8], subject: &[u8]) -> bool {
        match (pattern.split_first(), subject.split_first()) {
            (None, _) => subject.is_empty(),
            (Some((b'*', rest)), _) => {
                reference(rest, subject)
                    || (!subject.is_empty() && reference(pattern, &subject[1..]))
            }
            (Some((p, rest)), Some((s, subject_rest))) if p == s => reference(rest, subject_rest),
            _ => false,
        }
    }

    proptest! {
        /// A small alphabet makes overlapping parts, the case greedy matchers get wrong, common.
        #[test]
        fn matches_agrees_with_the_recursive_definition(
            pattern in "[ab*/]{0,7}",
            subject in "[ab/]{0,9}",
        ) {
            prop_assert_eq!(
                matches(&pattern, &subject),
                reference(pattern.as_bytes(), subject.as_bytes()),
                "pattern {:?} against {:?}", pattern, subject
            );
        }
    }

    #[test]
    fn a_pattern_without_wildcards_matches_only_itself() {
        assert!(matches("default", "default"), "identical text must match");
        assert!(
            !matches("default", "default2"),
            "a longer subject must not match"
        );
        assert!(
            !matches("default", "defaul"),
            "a shorter subject must not match"
        );
    }

    #[test]
    fn a_lone_wildcard_matches_everything_including_empty() {
        assert!(matches("*", ""), "* must match the empty string");
        assert!(matches("*", "a/b/c"), "* must match across slashes");
    }

    #[test]
    fn prefix_suffix_and_middle_parts_must_all_appear_in_order() {
        assert!(matches("prod-*", "prod-web"), "prefix glob must match");
        assert!(matches("*-web", "prod-web"), "suffix glob must match");
        assert!(matches("a*b*c", "a-b-c"), "middle part must be found");
        assert!(
            !matches("a*c*b", "a-b-c"),
            "parts out of order must not match"
        );
        assert!(
            !matches("ab*ba", "aba"),
            "prefix and suffix must not overlap"
        );
        assert!(
            matches("*bc*c", "bcc"),
            "greedy middle must leave room for the suffix"
        );
    }

    #[test]
    fn difference_counts_the_characters_left_to_wildcards() {
        assert_eq!(
            difference("prod-*", 8),
            3,
            "prod-web leaves 'web' to the wildcard"
        );
        assert_eq!(
            difference("*", 8),
            8,
            "a lone wildcard accounts for every character"
        );
        assert_eq!(
            difference("a*b", 2),
            0,
            "an empty wildcard accounts for nothing"
        );
    }
}
