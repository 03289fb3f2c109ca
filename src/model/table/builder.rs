use super::codes::CodeIndex;
use super::profile::ProfileInterner;
use super::rules::{PendingRule, RuleIndex};
use super::{Hit, Table};
use crate::model::domain::{Entry, LaunchCode, Rule};

/// Collects codes and rules, then packs them into an immutable [`Table`].
///
/// Keys are unique where entries come from (the store's primary keys, the
/// table file reader's duplicate check); should one repeat anyway, the
/// later entry replaces the earlier, as a later write would.
#[derive(Default)]
pub struct TableBuilder {
    profiles: ProfileInterner,
    codes: Option<CodeIndex>,
    rules: Vec<PendingRule>,
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

    /// Adds a code or a rule; host settings and files are not scan-table
    /// entries and are skipped.
    pub fn insert(&mut self, entry: &Entry) {
        match entry {
            Entry::Code(code) => self.insert_code(code),
            Entry::Rule(rule) => self.insert_rule(rule),
            Entry::Host(_) | Entry::File(_) => {}
        }
    }

    pub fn insert_code(&mut self, code: &LaunchCode) {
        let profile = self.profiles.intern(&code.entry, code.schedule, None);
        self.codes.get_or_insert_with(|| CodeIndex::with_capacity(0, 0)).insert(
            code.code.as_str(),
            code.entry.query.as_str(),
            profile,
        );
    }

    pub fn insert_rule(&mut self, rule: &Rule) {
        let profile = self.profiles.intern(&rule.entry, rule.schedule, rule.count_by.as_ref());
        self.rules.push(PendingRule {
            key: rule.prefix.key().into(),
            original: rule.prefix.as_str().into(),
            query: rule.entry.query.as_str().into(),
            profile,
        });
    }

    /// Adds a code as another table holds it (`hit` from that table's
    /// lookup): how layers of the overlay are merged without parsing their
    /// entries again.
    pub(super) fn insert_code_hit(&mut self, code: &str, hit: &Hit<'_>) {
        let profile = self.profiles.intern_profile(hit.profile);
        self.codes
            .get_or_insert_with(|| CodeIndex::with_capacity(0, 0))
            .insert(code, hit.query, profile);
    }

    /// Adds a rule as another table holds it; `hit` is a rule's.
    pub(super) fn insert_rule_hit(&mut self, hit: &Hit<'_>) {
        let (Some(key), Some(original)) = (hit.prefix_key, hit.prefix) else {
            return;
        };
        let profile = self.profiles.intern_profile(hit.profile);
        self.rules.push(PendingRule {
            key: key.into(),
            original: original.into(),
            query: hit.query.into(),
            profile,
        });
    }

    pub fn build(self) -> Table {
        let rules = RuleIndex::build(self.rules);
        let mut codes = self.codes.unwrap_or_else(|| CodeIndex::with_capacity(0, 0));
        codes.finish();
        Table::assemble(self.profiles.into_profiles(), codes, rules)
    }
}
