use super::codes::CodeIndex;
use super::profile::{ProfileInterner, ProfileKey};
use super::rules::{PendingRule, RuleIndex};
use super::Table;
use crate::domain::{EntryPoint, LaunchCode, Rule, Schedule};

/// Collects codes and rules, then packs them into an immutable [`Table`].
#[derive(Default)]
pub struct TableBuilder {
    profiles: ProfileInterner,
    codes: Option<CodeIndex>,
    rules: Vec<PendingRule>,
}

/// Why a table could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("code {0:?} appears twice")]
    DuplicateCode(String),
    #[error("rule prefix {0:?} appears twice (after normalizing scheme, host, port and escapes)")]
    DuplicatePrefix(String),
}

impl TableBuilder {
    pub fn new() -> TableBuilder {
        TableBuilder::default()
    }

    /// Sizes the code index up front so that a large load does not regrow it.
    pub fn with_capacity(codes: usize) -> TableBuilder {
        TableBuilder {
            codes: Some(CodeIndex::with_capacity(codes, codes * 40)),
            ..TableBuilder::default()
        }
    }

    pub fn insert_code(&mut self, code: &LaunchCode) -> Result<(), BuildError> {
        let profile = self.profiles.intern(profile_key(&code.entry, code.schedule));
        self.codes
            .get_or_insert_with(|| CodeIndex::with_capacity(0, 0))
            .insert(code.code.as_str(), code.entry.query.as_str(), profile)
            .map_err(|_| BuildError::DuplicateCode(code.code.to_string()))
    }

    pub fn insert_rule(&mut self, rule: &Rule) -> Result<(), BuildError> {
        let profile = self.profiles.intern(profile_key(&rule.entry, rule.schedule));
        self.rules.push(PendingRule {
            key: rule.prefix.key().into(),
            original: rule.prefix.as_str().into(),
            query: rule.entry.query.as_str().into(),
            profile,
        });
        Ok(())
    }

    pub fn build(self) -> Result<Table, BuildError> {
        let rules = RuleIndex::build(self.rules).map_err(|d| BuildError::DuplicatePrefix(d.original.into()))?;
        let mut codes = self.codes.unwrap_or_else(|| CodeIndex::with_capacity(0, 0));
        codes.shrink_to_fit();
        Ok(Table {
            profiles: self.profiles.into_profiles(),
            codes,
            rules,
        })
    }
}

fn profile_key(entry: &EntryPoint, schedule: Schedule) -> ProfileKey {
    ProfileKey {
        appid: entry.appid.clone(),
        path: entry.path.clone(),
        env_version: entry.env_version,
        fallback_url: entry.fallback_url.clone(),
        schedule,
    }
}
