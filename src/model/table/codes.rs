//! Launch codes by exact match, packed for memory and for cache misses.
//!
//! Layout: every code is one record in an arena of bytes: an 11-byte
//! header (code length, query length, profile index, counter id) followed
//! by the code and then its query. A SwissTable (`hashbrown::HashTable`)
//! holds only each record's 4-byte arena offset in its slots. A lookup
//! touches the table's control bytes, the slot, and the record's bytes in
//! the arena (header, the code to compare, the query to answer: about 50
//! bytes, often on two lines), which is what a random lookup in a table far
//! larger than the CPU cache costs. There is no per-code heap allocation.
//!
//! Why the record is in the arena and not in the slot: a SwissTable keeps
//! at least an eighth of its slots empty and grows by doubling, so a
//! million codes take 2^21 slots. With the record in the slot (16 bytes)
//! that was 34 MiB of slots, half of them empty; with an offset (4 bytes)
//! it is 10 MiB, and the 11 header bytes a code adds to the arena cost
//! 10.5 MiB (`cargo bench --bench memory`; README, "Scans during
//! background work"). The index is immutable once built; changes build a
//! new one (see [`super::LiveTable`]).

use hashbrown::HashTable;

/// Bytes before a record's code: code length (1), query length (2),
/// profile (4), id (4), little-endian.
const HEADER: usize = 11;

/// Set in a record's code-length byte once a later record replaced it
/// (codes are at most 32 bytes, so the length never uses this bit).
const REPLACED: u8 = 0x80;

/// What a code's record says besides its code and query.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CodeRecord {
    pub profile: u32,
    /// Dense index of the code, for its scan counters.
    pub id: u32,
}

pub(crate) struct CodeIndex {
    hasher: ahash::RandomState,
    /// The arena offset of each code's record.
    slots: HashTable<u32>,
    /// Records, each header then code then query. Invariant: the code and
    /// query bytes of every record were copied from a `&str`, so each is
    /// valid UTF-8 (see [`text`]).
    arena: Vec<u8>,
    /// Ids handed out so far (replaced codes keep theirs).
    next_id: u32,
    /// Where the records not yet in `slots` begin: records are added to
    /// the arena only, and [`CodeIndex::finish`] indexes them.
    unindexed: usize,
}

impl CodeIndex {
    pub fn with_capacity(codes: usize, arena_bytes: usize) -> CodeIndex {
        CodeIndex {
            hasher: ahash::RandomState::new(),
            slots: HashTable::with_capacity(codes),
            arena: Vec::with_capacity(arena_bytes + codes * HEADER),
            next_id: 0,
            unindexed: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Adds a code, replacing an earlier one of the same name, once the
    /// index is finished ([`CodeIndex::finish`]). `code` is at most 32
    /// bytes and `query` at most 512 encoded characters, as the domain
    /// types guarantee.
    pub fn insert(&mut self, code: &str, query: &str, profile: u32) {
        push_record(
            &mut self.arena,
            code,
            query,
            CodeRecord {
                profile,
                id: self.next_id,
            },
        );
        self.next_id += 1;
    }

    /// Indexes the codes added since the last call, then releases the slack
    /// left by growing, so RSS reflects the data. Lookups need it first.
    ///
    /// The records are inserted into the table grouped by where they land
    /// in it, not in the order they came: a million inserts in the store's
    /// order each touched a random line of the table's control bytes and
    /// slots, a cache miss apiece (15% of a pinned restart's CPU samples,
    /// `perf record`). A counting sort on the high bits of each record's
    /// bucket (the hash's low bits, which is where a SwissTable starts its
    /// probe) makes them run through the table in order. That is only a
    /// question of speed: a wrong guess of the bucket count leaves the
    /// index the same. A code added twice keeps its first id and its last
    /// record, as a later write would.
    pub fn finish(&mut self) {
        let CodeIndex {
            hasher,
            slots,
            arena,
            next_id,
            unindexed,
        } = self;
        let from = std::mem::replace(unindexed, arena.len());
        let added = records_from(arena, from).count();
        let hash_of = |arena: &[u8], at: u32| hasher.hash_one(code_at(arena, at));
        slots.reserve(added, |&at| hash_of(arena, at));
        // A SwissTable has a power of two of buckets, seven eighths usable.
        let buckets = (slots.capacity() * 8 / 7).max(1).next_power_of_two();
        let parts = (buckets >> PART_BITS).max(1);
        let part_of = |arena: &[u8], at: u32| ((hash_of(arena, at) as usize) & (buckets - 1)) >> PART_BITS;
        let mut next = vec![0usize; parts + 1];
        for at in records_from(arena, from) {
            next[part_of(arena, at) + 1] += 1;
        }
        for part in 0..parts {
            next[part + 1] += next[part];
        }
        // Stable: records of one code stay in the order they were added.
        let mut order = vec![0u32; added];
        for at in records_from(arena, from) {
            let part = part_of(arena, at);
            order[next[part]] = at;
            next[part] += 1;
        }
        drop(next);
        let mut replaced = false;
        for &at in &order {
            let found = slots.entry(
                hash_of(arena, at),
                |&old| code_at(arena, old) == code_at(arena, at),
                |&old| hash_of(arena, old),
            );
            match found {
                hashbrown::hash_table::Entry::Occupied(mut existing) => {
                    // The old record stays in the arena, marked, unused:
                    // repeats are rare. The new one takes its id.
                    let old = *existing.get();
                    let id = record_at(arena, old).id;
                    arena[old as usize] |= REPLACED;
                    set_id(arena, at, id);
                    *existing.get_mut() = at;
                    replaced = true;
                }
                hashbrown::hash_table::Entry::Vacant(vacant) => {
                    vacant.insert(at);
                }
            }
        }
        drop(order);
        if replaced {
            // The ids the replacing records were given at first are
            // unused: number the records again, densely, in their order.
            // (A record that replaced one indexed before keeps that one's
            // id, below `first`.)
            let first = *next_id - u32::try_from(added).expect("fewer than 2^32 codes");
            let mut renamed = vec![u32::MAX; added];
            let mut id = first;
            let mut at = from;
            while at < arena.len() {
                let record = u32::try_from(at).expect("code arena below 4 GiB");
                if let Some(given) = record_at(arena, record)
                    .id
                    .checked_sub(first)
                    .map(|i| &mut renamed[i as usize])
                {
                    if *given == u32::MAX {
                        *given = id;
                        id += 1;
                    }
                    set_id(arena, record, *given);
                }
                at = spans(arena, record).1.end;
            }
            *next_id = id;
        }
        arena.shrink_to_fit();
        slots.shrink_to_fit(|&at| hash_of(arena, at));
    }

    pub fn get(&self, code: &str) -> Option<(&str, &str, CodeRecord)> {
        debug_assert_eq!(self.unindexed, self.arena.len(), "a lookup before `finish`");
        let hash = self.hasher.hash_one(code.as_bytes());
        let &at = self
            .slots
            .find(hash, |&at| code_at(&self.arena, at) == code.as_bytes())?;
        let (code, query) = spans(&self.arena, at);
        Some((
            text(&self.arena[code]),
            text(&self.arena[query]),
            record_at(&self.arena, at),
        ))
    }

    /// Every code with its query and profile, in the order they were
    /// stored (a replaced code where it was stored last).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, u32)> + '_ {
        self.records().map(|at| {
            let (code, query) = spans(&self.arena, at);
            (
                text(&self.arena[code]),
                text(&self.arena[query]),
                record_at(&self.arena, at).profile,
            )
        })
    }

    /// Every code with its id, in the order they were stored (for draining
    /// counters: ids then come mostly in order too).
    pub fn ids(&self) -> impl Iterator<Item = (&str, u32)> + '_ {
        self.records()
            .map(|at| (record_code(&self.arena, at), record_at(&self.arena, at).id))
    }

    /// The offset of every record not replaced, walking the arena from the
    /// start: no sort and no allocation, and memory read in order (a sort
    /// by id cost 0.5 s of CPU for a million codes, for the first code of
    /// the start's hint).
    fn records(&self) -> impl Iterator<Item = u32> + '_ {
        records_from(&self.arena, 0).filter(|&at| self.arena[at as usize] & REPLACED == 0)
    }

    /// How many ids were handed out: the size of the code counters.
    pub fn id_count(&self) -> usize {
        self.next_id as usize
    }
}

/// Records go into the table in groups of buckets of this many bits (1,024
/// buckets: 1 KiB of control bytes and 4 KiB of slots), see
/// [`CodeIndex::finish`].
const PART_BITS: u32 = 10;

/// The offset of every record from `from` on, replaced or not.
fn records_from(arena: &[u8], from: usize) -> impl Iterator<Item = u32> + '_ {
    let mut next = from;
    std::iter::from_fn(move || {
        (next < arena.len()).then(|| {
            let at = u32::try_from(next).expect("code arena below 4 GiB");
            next = spans(arena, at).1.end;
            at
        })
    })
}

fn set_id(arena: &mut [u8], at: u32, id: u32) {
    let at = at as usize + 7;
    arena[at..at + 4].copy_from_slice(&id.to_le_bytes());
}

fn push_record(arena: &mut Vec<u8>, code: &str, query: &str, record: CodeRecord) {
    // Checked before anything is pushed, so a failure leaves no half record;
    // `text` relies on a code's length never reaching the REPLACED bit
    // (codes are at most 32 bytes, `Code`'s limit).
    let code_len = u8::try_from(code.len())
        .ok()
        .filter(|len| len & REPLACED == 0)
        .expect("a code is shorter than 128 bytes");
    let query_len = u16::try_from(query.len()).expect("a query is shorter than 64 KiB");
    arena.push(code_len);
    arena.extend_from_slice(&query_len.to_le_bytes());
    arena.extend_from_slice(&record.profile.to_le_bytes());
    arena.extend_from_slice(&record.id.to_le_bytes());
    arena.extend_from_slice(code.as_bytes());
    arena.extend_from_slice(query.as_bytes());
}

/// Where a record's code and query lie in the arena.
fn spans(arena: &[u8], at: u32) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
    let at = at as usize;
    let code_len = usize::from(arena[at] & !REPLACED);
    let query_len = usize::from(u16::from_le_bytes([arena[at + 1], arena[at + 2]]));
    let code = at + HEADER..at + HEADER + code_len;
    let query = code.end..code.end + query_len;
    (code, query)
}

fn code_at(arena: &[u8], at: u32) -> &[u8] {
    &arena[spans(arena, at).0]
}

fn record_at(arena: &[u8], at: u32) -> CodeRecord {
    let at = at as usize;
    let word = |i: usize| u32::from_le_bytes([arena[i], arena[i + 1], arena[i + 2], arena[i + 3]]);
    CodeRecord {
        profile: word(at + 3),
        id: word(at + 7),
    }
}

fn record_code(arena: &[u8], at: u32) -> &str {
    text(&arena[spans(arena, at).0])
}

/// A record's code or query as the `&str` it was copied from.
fn text(bytes: &[u8]) -> &str {
    debug_assert!(std::str::from_utf8(bytes).is_ok());
    // SAFETY: only called on a record's code or query span, whose bytes
    // `push_record` copied from a `&str` and which the arena never changes
    // afterwards (it only grows; marking a record replaced sets a bit of
    // its length byte, and `finish` may rewrite its id, both in the
    // header). The spans are those pushed because `push_record` refuses a
    // code length that would carry the REPLACED bit.
    unsafe { std::str::from_utf8_unchecked(bytes) }
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
        index.finish();
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
        let id = index.get("c5").map(|(_, _, r)| r.id);
        index.insert("c5", "replaced", 9);
        index.finish();
        assert_eq!(index.get("c5").map(|(_, q, r)| (q, r.profile)), Some(("replaced", 9)));
        assert_eq!(
            index.get("c5").map(|(_, _, r)| r.id),
            id,
            "a replaced code keeps its id"
        );
        let listed: Vec<_> = index.iter().collect();
        assert_eq!(listed.len(), 10_000, "the replaced record is not listed");
        assert_eq!(listed[0], ("c0", "id=0", 0), "in the order stored");
        assert_eq!(
            listed[9_999],
            ("c5", "replaced", 9),
            "a replaced code where it was stored last"
        );
        assert!(!listed.contains(&("c5", "id=5", 5)));
        let mut ids: Vec<u32> = index.ids().map(|(_, id)| id).collect();
        ids.sort_unstable();
        assert_eq!(ids, (0..10_000).collect::<Vec<u32>>(), "every id once");
        assert_eq!(index.id_count(), 10_000);
    }

    #[test]
    fn a_code_added_twice_before_finishing_keeps_its_first_id_and_its_last_record() {
        let mut index = CodeIndex::with_capacity(0, 0);
        for (code, query) in [("a", "1"), ("b", "2"), ("a", "3"), ("c", "4"), ("a", "5"), ("d", "6")] {
            index.insert(code, query, 0);
        }
        index.finish();
        assert_eq!(index.len(), 4);
        let found = |code| index.get(code).map(|(_, q, r)| (q, r.id));
        assert_eq!(found("a"), Some(("5", 0)), "the last record, the first id");
        assert_eq!(found("b"), Some(("2", 1)));
        assert_eq!(found("c"), Some(("4", 2)), "ids stay dense");
        assert_eq!(found("d"), Some(("6", 3)));
        assert_eq!(index.id_count(), 4);
        let listed: Vec<_> = index.iter().map(|(c, q, _)| (c, q)).collect();
        assert_eq!(listed, [("b", "2"), ("c", "4"), ("a", "5"), ("d", "6")]);
    }

    #[test]
    #[should_panic(expected = "a code is shorter than 128 bytes")]
    fn a_code_as_long_as_the_replaced_bit_is_refused_before_anything_is_stored() {
        let mut index = CodeIndex::with_capacity(0, 0);
        index.insert(&"c".repeat(128), "q", 0);
    }
}
