use super::{excerpt, FieldError};
use std::fmt;
use std::str::FromStr;

/// A short label an operator puts on entries to handle them as one campaign
/// (`spring24`): lists filter by it, bulk changes and statistics select by it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(Box<str>);

impl Tag {
    pub const MAX_CHARS: usize = 32;

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Tag {
    type Err = FieldError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = !s.is_empty()
            && s.len() <= Self::MAX_CHARS
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
        if !ok {
            return Err(FieldError::new(
                "tags",
                format!(
                    "a tag is 1-{} characters of 0-9 A-Z a-z - _ . :, got {}",
                    Self::MAX_CHARS,
                    excerpt(s)
                ),
            ));
        }
        Ok(Tag(s.into()))
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The tags of one entry: a few, sorted, without repeats.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Tags(Box<[Tag]>);

impl Tags {
    pub const MAX: usize = 16;

    /// Validates, sorts and de-duplicates.
    pub fn parse<S: AsRef<str>>(tags: &[S]) -> Result<Tags, FieldError> {
        let mut parsed = tags
            .iter()
            .map(|t| t.as_ref().parse::<Tag>())
            .collect::<Result<Vec<_>, _>>()?;
        parsed.sort();
        parsed.dedup();
        if parsed.len() > Self::MAX {
            return Err(FieldError::new(
                "tags",
                format!("at most {} tags per entry, got {}", Self::MAX, parsed.len()),
            ));
        }
        Ok(Tags(parsed.into()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Tag> {
        self.0.iter()
    }

    pub fn contains(&self, tag: &Tag) -> bool {
        self.0.binary_search(tag).is_ok()
    }

    /// The tags as strings, for JSON.
    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }

    /// One column value: the tags joined by spaces (no tag holds a space).
    pub fn joined(&self) -> String {
        self.to_strings().join(" ")
    }

    /// The inverse of [`Tags::joined`].
    pub fn from_joined(s: &str) -> Result<Tags, FieldError> {
        let parts: Vec<&str> = s.split(' ').filter(|t| !t.is_empty()).collect();
        Tags::parse(&parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_sorted_deduplicated_and_checked() {
        let tags = Tags::parse(&["spring24", "b", "spring24"]).unwrap();
        assert_eq!(tags.to_strings(), ["b", "spring24"]);
        assert_eq!(Tags::from_joined(&tags.joined()).unwrap(), tags);
        for bad in ["", "a b", "名", &"x".repeat(33)] {
            assert_eq!(Tags::parse(&[bad]).unwrap_err().field, "tags", "{bad:?}");
        }
        let many: Vec<String> = (0..17).map(|i| format!("t{i}")).collect();
        assert!(Tags::parse(&many).is_err());
    }
}
