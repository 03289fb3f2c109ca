//! Launch codes by exact match, packed for memory and for cache misses.
//!
//! Layout: all code and query bytes live in one arena string; a SwissTable
//! (`hashbrown::HashTable`) holds a 12-byte record per code (arena offset,
//! lengths, profile index) directly in its slots. A lookup touches the
//! table's control bytes, the slot, and the arena line that holds both the
//! code (to compare) and the query (to answer): three cache lines, which is
//! what a random lookup in a table far larger than the CPU cache costs.
//! There is no per-code heap allocation. The index is immutable once built;
//! changes build a new one (see [`super::LiveTable`]).

use hashbrown::HashTable;

#[derive(Debug, Clone, Copy)]
pub(crate) struct CodeRecord {
    /// Start of `code` then `query` in the arena.
    start: u32,
    pub profile: u32,
    /// Dense index of the code, for its scan counters.
    pub id: u32,
    query_len: u16,
    code_len: u8,
}

pub(crate) struct CodeIndex {
    hasher: ahash::RandomState,
    slots: HashTable<CodeRecord>,
    arena: String,
    /// Ids handed out so far (replaced codes keep theirs).
    next_id: u32,
}

impl CodeIndex {
    pub fn with_capacity(codes: usize, arena_bytes: usize) -> CodeIndex {
        CodeIndex {
            hasher: ahash::RandomState::new(),
            slots: HashTable::with_capacity(codes),
            arena: String::with_capacity(arena_bytes),
            next_id: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Adds a code, replacing an earlier one of the same name. `code` is at
    /// most 32 bytes and `query` at most 512 encoded characters, as the
    /// domain types guarantee.
    pub fn insert(&mut self, code: &str, query: &str, profile: u32) {
        let hash = self.hasher.hash_one(code.as_bytes());
        let CodeIndex {
            hasher,
            slots,
            arena,
            next_id,
        } = self;
        if let Some(existing) = slots.find_mut(hash, |r| record_code(arena, r) == code) {
            // The old bytes stay in the arena, unused: repeats are rare.
            let start = u32::try_from(arena.len()).expect("code arena below 4 GiB");
            arena.push_str(code);
            arena.push_str(query);
            *existing = CodeRecord {
                start,
                profile,
                id: existing.id,
                query_len: u16::try_from(query.len()).expect("query fits u16"),
                code_len: existing.code_len,
            };
            return;
        }
        let start = u32::try_from(arena.len()).expect("code arena below 4 GiB");
        arena.push_str(code);
        arena.push_str(query);
        let record = CodeRecord {
            start,
            profile,
            id: *next_id,
            query_len: u16::try_from(query.len()).expect("query fits u16"),
            code_len: u8::try_from(code.len()).expect("code fits u8"),
        };
        *next_id += 1;
        slots.insert_unique(hash, record, |r| hasher.hash_one(record_code(arena, r).as_bytes()));
    }

    /// Releases the slack left by growing, so RSS reflects the data.
    pub fn shrink_to_fit(&mut self) {
        let CodeIndex {
            hasher, slots, arena, ..
        } = self;
        arena.shrink_to_fit();
        slots.shrink_to_fit(|r| hasher.hash_one(record_code(arena, r).as_bytes()));
    }

    pub fn get(&self, code: &str) -> Option<(&str, &str, &CodeRecord)> {
        let hash = self.hasher.hash_one(code.as_bytes());
        let record = self.slots.find(hash, |r| record_code(&self.arena, r) == code)?;
        Some((
            record_code(&self.arena, record),
            record_query(&self.arena, record),
            record,
        ))
    }

    /// Every code with its query and profile, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, u32)> + '_ {
        let mut records: Vec<&CodeRecord> = self.slots.iter().collect();
        records.sort_unstable_by_key(|r| r.id);
        records
            .into_iter()
            .map(|r| (record_code(&self.arena, r), record_query(&self.arena, r), r.profile))
    }

    /// Every code with its id, in no order (for draining counters).
    pub fn ids(&self) -> impl Iterator<Item = (&str, u32)> + '_ {
        self.slots.iter().map(|r| (record_code(&self.arena, r), r.id))
    }

    /// How many ids were handed out: the size of the code counters.
    pub fn id_count(&self) -> usize {
        self.next_id as usize
    }
}

fn record_code<'a>(arena: &'a str, r: &CodeRecord) -> &'a str {
    let start = r.start as usize;
    &arena[start..start + usize::from(r.code_len)]
}

fn record_query<'a>(arena: &'a str, r: &CodeRecord) -> &'a str {
    let start = r.start as usize + usize::from(r.code_len);
    &arena[start..start + usize::from(r.query_len)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_exactly_what_was_inserted() {
        let mut index = CodeIndex::with_capacity(0, 0);
        for i in 0..10_000u32 {
            index.insert(&format!("c{i}"), &format!("id={i}"), i % 7);
        }
        index.shrink_to_fit();
        assert_eq!(index.len(), 10_000);
        for i in (0..10_000u32).step_by(97) {
            let code = format!("c{i}");
            let (stored, query, record) = index.get(&code).unwrap();
            assert_eq!(stored, code, "the index hands back the code it stored");
            assert_eq!(query, format!("id={i}"));
            assert_eq!(record.profile, i % 7);
        }
        assert!(index.get("c10000").is_none());
        assert!(index.get("C1").is_none(), "codes are case-sensitive");
        assert!(index.get("").is_none());
        index.insert("c5", "replaced", 9);
        assert_eq!(index.get("c5").map(|(_, q, r)| (q, r.profile)), Some(("replaced", 9)));
        assert_eq!(index.iter().count(), 10_000);
    }
}
