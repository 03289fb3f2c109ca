//! One contract for the `Store` trait, held against both backends: every
//! case below runs on a fresh SQLite store and on a fresh database of a
//! PostgreSQL cluster this test starts, and both must answer the same way
//! (the same errors, the same positions, the same order).

use crate::support::*;
use qrlaunch::model::client_class::{ClientClass, CountClass};
use qrlaunch::model::domain::{Entry, EntryKey, EntryKind, FieldError, Stored};
use qrlaunch::model::table_file::{parse_line, Item};
use qrlaunch::replication::store::postgres::PostgresStore;
use qrlaunch::replication::store::sqlite::SqliteStore;
use qrlaunch::replication::store::{
    Change, CountRow, CountSelection, ImportLine, ListQuery, Store, StoreError, Wakeup, WriteMode, MAX_LOGGED_CHANGES,
};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

type Case = fn(Arc<dyn Store>) -> Pin<Box<dyn Future<Output = ()> + Send>>;

/// Every case, by name. A new rule of the store gets a line here.
const CASES: &[(&str, Case)] = &[
    ("a new store is empty and not initialised", |s| Box::pin(new_store(s))),
    ("puts take consecutive positions and keep created_at", |s| {
        Box::pin(puts(s))
    }),
    ("a change keeps created_at, may not rename, and is refused whole", |s| {
        Box::pin(modify(s))
    }),
    ("a tag's entries change in one transaction", |s| {
        Box::pin(modify_tagged(s))
    }),
    ("a delete leaves a tombstone and takes the tags along", |s| {
        Box::pin(delete(s))
    }),
    ("listings page in key order, by kind and tag", |s| Box::pin(list(s))),
    ("tags are counted per kind, in tag order", |s| Box::pin(tags(s))),
    ("an import writes, generates and logs", |s| Box::pin(import(s))),
    ("an insert import with existing keys changes nothing", |s| {
        Box::pin(import_conflicts(s))
    }),
    ("a failing import source rolls everything back", |s| {
        Box::pin(import_failure(s))
    }),
    ("a big import is logged as one resync", |s| Box::pin(big_import(s))),
    ("exports are in key order and stop when the reader goes", |s| {
        Box::pin(export(s))
    }),
    ("a snapshot holds every entry at its head", |s| Box::pin(snapshot(s))),
    ("a first import's entries are read back as they were parsed", |s| {
        Box::pin(first_import_reads_back(s))
    }),
    ("the change log reads in ranges and is pruned from the front", |s| {
        Box::pin(change_log(s))
    }),
    ("counts add up, by key, by tag and by day", |s| Box::pin(counts(s))),
    ("a commit wakes the follower", |s| Box::pin(wakeups(s))),
    ("keys are stored, logged, touched and removed", |s| Box::pin(keys(s))),
    ("every write leaves its audit lines, a failed one none", |s| {
        Box::pin(audit(s))
    }),
    (
        "certificates are stored, replaced and logged; the first account kept wins",
        |s| Box::pin(certificates(s)),
    ),
];

fn entry(text: &str) -> Entry {
    match parse_line(text).unwrap() {
        Item::Entry(e) => e,
        Item::Generate(_) => panic!("a line without a code: {text}"),
    }
}

fn code(name: &str, query: &str, tags: &[&str]) -> Entry {
    entry(
        &json!({"code": name, "appid": "wx1234567890abcdef", "path": "pages/a", "query": query, "tags": tags})
            .to_string(),
    )
}

fn rule(prefix: &str) -> Entry {
    entry(&json!({"prefix": prefix, "appid": "wx1234567890abcdef", "path": "pages/r"}).to_string())
}

fn lines(texts: &[&str]) -> qrlaunch::replication::store::ImportSource {
    let lines: Vec<Result<ImportLine, StoreError>> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            Ok(ImportLine {
                line: i + 1,
                item: parse_line(t).unwrap(),
            })
        })
        .collect();
    Box::new(lines.into_iter())
}

fn all_codes(limit: u32) -> ListQuery {
    ListQuery {
        kind: EntryKind::Code,
        after: None,
        limit,
        tag: None,
    }
}

async fn new_store(store: Arc<dyn Store>) {
    let head = store.head().await.unwrap();
    assert_eq!(head.position, 0);
    assert!(!head.epoch.is_empty());
    assert!(!store.initialised().await.unwrap());
    store.mark_initialised().await.unwrap();
    assert!(store.initialised().await.unwrap());
    assert_eq!(store.head().await.unwrap().position, 0, "marking takes no position");
    assert_eq!(store.get(&EntryKey::of(&code("a", "", &[]))).await.unwrap(), None);
    assert!(store.list(all_codes(10)).await.unwrap().is_empty());
    let feed = store.changes_since(0, 100).await.unwrap();
    assert!(feed.changes.is_empty());
    assert_eq!(feed.oldest, 1);
}

async fn puts(store: Arc<dyn Store>) {
    let a = code("a1", "x=1", &["t"]);
    let put = store.put(a.clone(), WriteMode::Insert).await.unwrap();
    assert!(put.value.created);
    assert_eq!(put.position, 1);
    let created_at = put.value.stored.created_at;
    assert_eq!(store.put(a.clone(), WriteMode::Insert).await, Err(StoreError::Conflict));
    let changed = code("a1", "x=2", &[]);
    let again = store.put(changed.clone(), WriteMode::Upsert).await.unwrap();
    assert!(!again.value.created);
    assert_eq!(again.position, 2, "a refused write takes no position");
    assert_eq!(again.value.stored.created_at, created_at);
    let stored = store.get(&a.key()).await.unwrap().unwrap();
    assert_eq!(stored.entry, changed);
    assert_eq!(stored.created_at, created_at, "a replace keeps created_at");
    assert!(stored.updated_at >= created_at);
    for (i, other) in [
        rule("https://www.example.com/dl?c="),
        entry(r#"{"host":"www.example.com","unmatched":"https://old.example.com"}"#),
        entry(r#"{"host":"www.example.com","file":"/MP_verify_a.txt","body":"a"}"#),
    ]
    .into_iter()
    .enumerate()
    {
        let put = store.put(other.clone(), WriteMode::Upsert).await.unwrap();
        assert_eq!(put.position, 3 + i as i64);
        assert_eq!(store.get(&other.key()).await.unwrap().unwrap().entry, other);
    }
    let feed = store.changes_since(0, 100).await.unwrap();
    assert_eq!(feed.head.position, 5);
    let positions: Vec<i64> = feed.changes.iter().map(|c| c.position).collect();
    assert_eq!(positions, [1, 2, 3, 4, 5]);
    assert_eq!(feed.changes[1].change, Change::Put(changed));
}

async fn modify(store: Arc<dyn Store>) {
    let a = code("m1", "x=1", &[]);
    assert_eq!(
        store
            .modify(a.key(), Box::new(|s: Stored<Entry>| Ok(s.entry)))
            .await
            .map(|c| c.position),
        Err(StoreError::NotFound)
    );
    let created = store.put(a.clone(), WriteMode::Insert).await.unwrap();
    let refused = store
        .modify(a.key(), Box::new(|_| Err(FieldError::new("query", "no"))))
        .await;
    assert_eq!(
        refused.map(|c| c.position),
        Err(StoreError::Rejected(FieldError::new("query", "no")))
    );
    let renamed = store.modify(a.key(), Box::new(|_| Ok(code("m2", "", &[])))).await;
    assert!(matches!(renamed, Err(StoreError::Failed(_))), "{renamed:?}");
    assert_eq!(store.get(&EntryKey::of(&code("m2", "", &[]))).await.unwrap(), None);
    let b = code("m1", "x=9", &[]);
    let changed = store.modify(a.key(), Box::new(move |_| Ok(b))).await.unwrap();
    assert_eq!(
        changed.position,
        created.position + 1,
        "refused changes took no position"
    );
    assert_eq!(changed.value.created_at, created.value.stored.created_at);
    assert_eq!(
        store.get(&a.key()).await.unwrap().unwrap().entry,
        code("m1", "x=9", &[])
    );
}

async fn modify_tagged(store: Arc<dyn Store>) {
    for name in ["t1", "t2", "t3"] {
        store.put(code(name, "", &["spring"]), WriteMode::Insert).await.unwrap();
    }
    store.put(code("u1", "", &["summer"]), WriteMode::Insert).await.unwrap();
    let disable = |s: Stored<Entry>| {
        let mut line = qrlaunch::model::domain::Line::from(&s.entry);
        line.disabled = true;
        line.validate()
    };
    let tag = "spring".parse().unwrap();
    let changed = store
        .modify_tagged(vec![EntryKind::Code], tag, Box::new(disable))
        .await
        .unwrap();
    assert_eq!(changed.value, 3);
    for name in ["t1", "t2", "t3"] {
        let stored = store.get(&EntryKey::of(&code(name, "", &[]))).await.unwrap().unwrap();
        assert!(matches!(&stored.entry, Entry::Code(c) if c.schedule.disabled), "{name}");
    }
    let untouched = store.get(&EntryKey::of(&code("u1", "", &[]))).await.unwrap().unwrap();
    assert!(matches!(&untouched.entry, Entry::Code(c) if !c.schedule.disabled));
    let none = store
        .modify_tagged(vec![EntryKind::Code], "autumn".parse().unwrap(), Box::new(disable))
        .await;
    assert_eq!(none.map(|c| c.value), Err(StoreError::NotFound));
    // A rename refuses the whole change: nothing of it is kept.
    let rename = |s: Stored<Entry>| {
        let mut line = qrlaunch::model::domain::Line::from(&s.entry);
        line.code = Some(format!("{}x", line.code.unwrap()));
        line.query = Some("changed=1".into());
        line.validate()
    };
    let head = store.head().await.unwrap().position;
    let refused = store
        .modify_tagged(vec![EntryKind::Code], "spring".parse().unwrap(), Box::new(rename))
        .await;
    assert!(matches!(refused, Err(StoreError::Failed(_))), "{refused:?}");
    assert_eq!(store.head().await.unwrap().position, head);
    let t1 = store.get(&EntryKey::of(&code("t1", "", &[]))).await.unwrap().unwrap();
    assert!(matches!(&t1.entry, Entry::Code(c) if c.entry.query.as_str().is_empty()));
}

async fn delete(store: Arc<dyn Store>) {
    let a = code("d1", "", &["gone"]);
    assert_eq!(
        store.delete(a.key()).await.map(|c| c.position),
        Err(StoreError::NotFound)
    );
    store.put(a.clone(), WriteMode::Insert).await.unwrap();
    let deleted = store.delete(a.key()).await.unwrap();
    assert_eq!(deleted.position, 2);
    assert_eq!(store.get(&a.key()).await.unwrap(), None);
    let tagged = ListQuery {
        tag: Some("gone".parse().unwrap()),
        ..all_codes(10)
    };
    assert!(store.list(tagged).await.unwrap().is_empty(), "the tags went too");
    let feed = store.changes_since(1, 10).await.unwrap();
    assert_eq!(feed.changes[0].change, Change::Delete(a.key()));
}

async fn list(store: Arc<dyn Store>) {
    for name in ["c", "a", "e", "b", "d"] {
        let tags: &[&str] = if name < "c" { &["early"] } else { &[] };
        store.put(code(name, "", tags), WriteMode::Insert).await.unwrap();
    }
    for prefix in ["https://b.example.com/", "https://a.example.com/x"] {
        store.put(rule(prefix), WriteMode::Insert).await.unwrap();
    }
    let names = |entries: Vec<Stored<Entry>>| -> Vec<String> {
        entries
            .into_iter()
            .map(|s| s.entry.key().as_str().to_string())
            .collect()
    };
    assert_eq!(names(store.list(all_codes(3)).await.unwrap()), ["a", "b", "c"]);
    let after = ListQuery {
        after: Some("c".into()),
        ..all_codes(10)
    };
    assert_eq!(names(store.list(after).await.unwrap()), ["d", "e"]);
    let tagged = ListQuery {
        tag: Some("early".parse().unwrap()),
        ..all_codes(10)
    };
    assert_eq!(names(store.list(tagged).await.unwrap()), ["a", "b"]);
    let rules = ListQuery {
        kind: EntryKind::Rule,
        ..all_codes(10)
    };
    assert_eq!(
        names(store.list(rules).await.unwrap()),
        ["https://a.example.com/x", "https://b.example.com/"]
    );
}

async fn import(store: Arc<dyn Store>) {
    let existing = store.put(code("i1", "old=1", &[]), WriteMode::Insert).await.unwrap();
    let imported = store
        .import(
            WriteMode::Upsert,
            lines(&[
                r#"{"code":"i1","appid":"wx1234567890abcdef","path":"p","query":"new=1"}"#,
                r#"{"appid":"wx1234567890abcdef","path":"p","tags":["gen"]}"#,
                r#"{"prefix":"https://www.example.com/i","appid":"wx1234567890abcdef","path":"p"}"#,
                r#"{"appid":"wx1234567890abcdef","path":"p","tags":["gen"]}"#,
                r#"{"host":"www.example.com","unmatched":"https://old.example.com"}"#,
                r#"{"host":"www.example.com","file":"/MP_verify_i.txt","body":"i"}"#,
                r#"{"code":"i2","appid":"wx1234567890abcdef","path":"p"}"#,
            ]),
        )
        .await
        .unwrap();
    let summary = imported.value;
    assert_eq!(imported.position, existing.position + 1, "one position for the import");
    assert_eq!(
        (
            summary.lines,
            summary.codes,
            summary.rules,
            summary.hosts,
            summary.files
        ),
        (7, 4, 1, 1, 1)
    );
    let generated: Vec<(usize, String)> = summary.generated.clone();
    assert_eq!(generated.iter().map(|(l, _)| *l).collect::<Vec<_>>(), [2, 4]);
    assert_ne!(generated[0].1, generated[1].1);
    for (_, name) in &generated {
        let stored = store.get(&EntryKey::of(&code(name, "", &[]))).await.unwrap();
        assert!(stored.is_some(), "generated code {name} is stored");
    }
    let i1 = store.get(&EntryKey::of(&code("i1", "", &[]))).await.unwrap().unwrap();
    assert_eq!(
        i1.created_at, existing.value.stored.created_at,
        "an upsert import keeps created_at"
    );
    assert!(matches!(&i1.entry, Entry::Code(c) if c.entry.query.as_str() == "new=1"));
    let feed = store.changes_since(existing.position, 10).await.unwrap();
    assert_eq!(feed.changes.len(), 7, "each imported entry is logged");
    assert!(feed.changes.iter().all(|c| c.position == imported.position));
    let tagged = ListQuery {
        tag: Some("gen".parse().unwrap()),
        ..all_codes(10)
    };
    assert_eq!(store.list(tagged).await.unwrap().len(), 2);
}

async fn import_conflicts(store: Arc<dyn Store>) {
    store.put(code("x1", "", &[]), WriteMode::Insert).await.unwrap();
    store.put(code("x3", "", &[]), WriteMode::Insert).await.unwrap();
    let refused = store
        .import(
            WriteMode::Insert,
            lines(&[
                r#"{"code":"x3","appid":"wx1234567890abcdef","path":"p"}"#,
                r#"{"code":"x2","appid":"wx1234567890abcdef","path":"p"}"#,
                r#"{"code":"x1","appid":"wx1234567890abcdef","path":"p"}"#,
            ]),
        )
        .await;
    assert_eq!(refused.map(|c| c.position), Err(StoreError::Conflicts(vec![1, 3])));
    assert_eq!(store.get(&EntryKey::of(&code("x2", "", &[]))).await.unwrap(), None);
    assert_eq!(store.head().await.unwrap().position, 2);
}

async fn import_failure(store: Arc<dyn Store>) {
    let good = ImportLine {
        line: 1,
        item: parse_line(r#"{"code":"f1","appid":"wx1234567890abcdef","path":"p"}"#).unwrap(),
    };
    let source: Vec<Result<ImportLine, StoreError>> = vec![Ok(good), Err(StoreError::Failed("the body broke".into()))];
    let failed = store.import(WriteMode::Upsert, Box::new(source.into_iter())).await;
    assert_eq!(
        failed.map(|c| c.position),
        Err(StoreError::Failed("the body broke".into()))
    );
    assert_eq!(store.get(&EntryKey::of(&code("f1", "", &[]))).await.unwrap(), None);
    assert_eq!(store.head().await.unwrap().position, 0);
}

async fn big_import(store: Arc<dyn Store>) {
    let texts: Vec<String> = (0..MAX_LOGGED_CHANGES + 10)
        .map(|i| format!(r#"{{"code":"big{i:05}","appid":"wx1234567890abcdef","path":"p"}}"#))
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let imported = store.import(WriteMode::Insert, lines(&refs)).await.unwrap();
    assert_eq!(imported.value.codes as usize, texts.len());
    let feed = store.changes_since(0, 10).await.unwrap();
    let changes: Vec<&Change> = feed.changes.iter().map(|c| &c.change).collect();
    assert_eq!(changes, [&Change::Resync]);
}

async fn export(store: Arc<dyn Store>) {
    store.put(code("b", "", &[]), WriteMode::Insert).await.unwrap();
    store.put(code("a", "", &[]), WriteMode::Insert).await.unwrap();
    store
        .put(rule("https://z.example.com/"), WriteMode::Insert)
        .await
        .unwrap();
    store
        .put(entry(r#"{"host":"h.example.com"}"#), WriteMode::Insert)
        .await
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel(100);
    store.export(tx).await.unwrap();
    let mut keys = Vec::new();
    while let Some(entry) = rx.recv().await {
        keys.push(entry.key().as_str().to_string());
    }
    assert_eq!(keys, ["a", "b", "https://z.example.com/", "h.example.com"]);
    // A reader that goes away ends the export without an error.
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    drop(rx);
    store.export(tx).await.unwrap();
}

async fn snapshot(store: Arc<dyn Store>) {
    store.put(code("s1", "", &[]), WriteMode::Insert).await.unwrap();
    store
        .put(rule("https://s.example.com/"), WriteMode::Insert)
        .await
        .unwrap();
    store
        .put(
            entry(r#"{"host":"s.example.com","file":"/MP_verify_s.txt","body":"s"}"#),
            WriteMode::Insert,
        )
        .await
        .unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    let head = store
        .snapshot(Box::new(move |e| {
            sink.lock().unwrap().push(e.key().as_str().to_string())
        }))
        .await
        .unwrap();
    assert_eq!(head.position, 3);
    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    assert_eq!(seen, ["https://s.example.com/", "s.example.com/MP_verify_s.txt", "s1"]);
    // The builder's size hint: SQLite counts the codes, PostgreSQL gives
    // its planner's estimate (0 until autovacuum analysed the table).
    let codes = store.code_count().await.unwrap();
    if store.describe().starts_with("sqlite:") {
        assert_eq!(codes, 1);
    } else {
        assert!(codes <= 1, "{codes} codes estimated, 1 stored");
    }
}

/// A first seed builds the node's first table from the lines as it parsed
/// them, not from the store (src/edge/app/seed.rs): that is only right if
/// the store gives back exactly what an import of them wrote, every field
/// of every kind.
async fn first_import_reads_back(store: Arc<dyn Store>) {
    let mut texts: Vec<&str> = qrlaunch::model::table_file::EXAMPLE_TABLE
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    texts.extend([
        r#"{"code":"rb1","appid":"wx1234567890abcdef","path":"pages/a/b","query":"x=1&y=%E5%80%BC","env_version":"trial","fallback_url":"https://example.com/f?a=1","valid_from":"2026-01-02T03:04:05Z","valid_until":"2027-01-01T00:00:00+08:00","disabled":true,"tags":["spring","b-2"]}"#,
        r#"{"code":"rb2","appid":"wx1234567890abcdef","path":"p","query":"名=值"}"#,
        r#"{"prefix":"HTTP://RB.Example.com:80/a%7e/","appid":"wx1234567890abcdef","path":"p","count_by":"channel","tags":["t"],"valid_until":"2030-01-01T00:00:00Z"}"#,
        r#"{"host":"rb.example.com","unmatched":"https://rb.example.com/gone"}"#,
        r#"{"host":"rb.example.com","file":"/MP_verify_rb.txt","body":"rb"}"#,
    ]);
    let mut parsed: Vec<Entry> = texts
        .iter()
        .map(|t| match parse_line(t).unwrap() {
            Item::Entry(entry) => entry,
            Item::Generate(_) => panic!("no generated codes here: {t}"),
        })
        .collect();
    let imported = store.import(WriteMode::Insert, lines(&texts)).await.unwrap();
    assert_eq!(imported.position, 1, "the store's first write");
    let read = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = read.clone();
    let head = store
        .snapshot(Box::new(move |e| sink.lock().unwrap().push(e.clone())))
        .await
        .unwrap();
    assert_eq!(head.position, 1);
    let mut read = read.lock().unwrap().clone();
    let by_key = |e: &Entry| (e.kind().as_str(), e.key().as_str().to_string());
    parsed.sort_by_key(by_key);
    read.sort_by_key(by_key);
    assert_eq!(read.len(), parsed.len());
    for (read, parsed) in read.iter().zip(&parsed) {
        assert_eq!(read, parsed);
    }
}

async fn change_log(store: Arc<dyn Store>) {
    for i in 0..6 {
        store
            .put(code(&format!("l{i}"), "", &[]), WriteMode::Insert)
            .await
            .unwrap();
    }
    let page = store.changes_since(2, 3).await.unwrap();
    let positions: Vec<i64> = page.changes.iter().map(|c| c.position).collect();
    assert_eq!(positions, [3, 4, 5]);
    assert_eq!((page.head.position, page.oldest), (6, 1));
    assert_eq!(store.prune_log(2).await.unwrap(), 4);
    let after = store.changes_since(0, 10).await.unwrap();
    assert_eq!(after.oldest, 5, "a follower behind position 4 must resync");
    assert_eq!(after.changes.len(), 2);
}

async fn tags(store: Arc<dyn Store>) {
    assert!(store.tags().await.unwrap().is_empty());
    store.put(code("t1", "", &["b", "a"]), WriteMode::Insert).await.unwrap();
    store.put(code("t2", "", &["b"]), WriteMode::Insert).await.unwrap();
    let tagged_rule = entry(
        &json!({"prefix": "https://t.example.com/", "appid": "wx1234567890abcdef", "path": "p", "tags": ["b"]})
            .to_string(),
    );
    store.put(tagged_rule, WriteMode::Insert).await.unwrap();
    let counted: Vec<(String, u64, u64)> = store
        .tags()
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.tag, t.codes, t.rules))
        .collect();
    assert_eq!(counted, [("a".into(), 1, 0), ("b".into(), 2, 1)]);
    store.delete(EntryKey::Code("t1".into())).await.unwrap();
    let counted: Vec<String> = store.tags().await.unwrap().into_iter().map(|t| t.tag).collect();
    assert_eq!(counted, ["b"], "a tag goes with its last entry");
}

async fn counts(store: Arc<dyn Store>) {
    store.put(code("k1", "", &["camp"]), WriteMode::Insert).await.unwrap();
    store.put(code("k2", "", &["camp"]), WriteMode::Insert).await.unwrap();
    let row = |key: &str, day: i32, class: CountClass, count: i64| CountRow {
        kind: if matches!(class, CountClass::NotFound) {
            EntryKind::Host
        } else {
            EntryKind::Code
        },
        key: key.into(),
        day,
        class,
        count,
    };
    let ios = CountClass::Client(ClientClass::Ios);
    let android = CountClass::Client(ClientClass::Android);
    store
        .add_counts(vec![
            row("k1", 100, ios, 2),
            row("k1", 101, android, 1),
            row("k2", 100, ios, 5),
            row("h.example.com", 100, CountClass::NotFound, 7),
        ])
        .await
        .unwrap();
    // Adds, never overwrites (nodes sharing a store sum up).
    store.add_counts(vec![row("k1", 100, ios, 3)]).await.unwrap();
    let k1 = store
        .counts(CountSelection::Key(EntryKind::Code, "k1".into()), 0, 1000)
        .await
        .unwrap();
    let summary: Vec<(i32, &str, i64)> = k1.iter().map(|r| (r.day, r.class.as_str(), r.count)).collect();
    assert_eq!(summary, [(100, "ios", 5), (101, "android", 1)]);
    let camp = store
        .counts(CountSelection::Tag(EntryKind::Code, "camp".parse().unwrap()), 100, 100)
        .await
        .unwrap();
    let summary: Vec<(&str, i64)> = camp.iter().map(|r| (r.key.as_str(), r.count)).collect();
    assert_eq!(summary, [("k1", 5), ("k2", 5)]);
    // Every code, whatever its tags; hosts apart.
    let every = store
        .counts(CountSelection::Kind(EntryKind::Code), 100, 101)
        .await
        .unwrap();
    let summary: Vec<(&str, i32, i64)> = every.iter().map(|r| (r.key.as_str(), r.day, r.count)).collect();
    assert_eq!(summary, [("k1", 100, 5), ("k1", 101, 1), ("k2", 100, 5)]);
    let hosts = store
        .counts(CountSelection::Kind(EntryKind::Host), 0, 1000)
        .await
        .unwrap();
    assert_eq!(hosts.len(), 1);
    let host = store
        .counts(CountSelection::Key(EntryKind::Host, "h.example.com".into()), 0, 1000)
        .await
        .unwrap();
    assert_eq!(host[0].class, CountClass::NotFound);
    assert_eq!(store.prune_counts(101).await.unwrap(), 3);
    let left = store
        .counts(CountSelection::Key(EntryKind::Code, "k1".into()), 0, 1000)
        .await
        .unwrap();
    assert_eq!(left.len(), 1);
}

async fn keys(store: Arc<dyn Store>) {
    use qrlaunch::model::access::{Role, Scopes};
    use qrlaunch::replication::store::StoredKey;
    assert!(store.keys().await.unwrap().is_empty());
    let key = StoredKey {
        id: "k1".into(),
        name: "agency".into(),
        role: Role::Editor,
        scopes: Scopes::parse(
            &["spring".into()],
            &["shop.example.com".into()],
            &["wx1111111111111111".into()],
        )
        .unwrap(),
        secret_hash: "ab".repeat(32),
        previous: None,
        created_at: 1_000,
        expires_at: Some(9_000_000_000_000),
        last_used_at: None,
    };
    let first = store.put_key(key.clone(), None).await.unwrap();
    assert_eq!(
        store.put_key(key.clone(), None).await.unwrap_err(),
        StoreError::Conflict,
        "an id taken"
    );
    assert_eq!(store.keys().await.unwrap(), vec![key.clone()]);
    // A replacement keeps the creation time and the last use.
    store.touch_keys(vec![("k1".into(), 5_000)]).await.unwrap();
    store.touch_keys(vec![("k1".into(), 4_000)]).await.unwrap();
    let rotated = StoredKey {
        secret_hash: "cd".repeat(32),
        previous: Some(("ab".repeat(32), 7_000)),
        created_at: 2_000,
        ..key.clone()
    };
    assert_eq!(
        store.put_key(rotated.clone(), Some("ef".repeat(32))).await.unwrap_err(),
        StoreError::Conflict,
        "a change made from a secret that is no longer the key's"
    );
    let second = store.put_key(rotated.clone(), Some("ab".repeat(32))).await.unwrap();
    assert_eq!(second.position, first.position + 1);
    let stored = store.keys().await.unwrap();
    assert_eq!(
        stored,
        vec![StoredKey {
            created_at: 1_000,
            last_used_at: Some(5_000),
            ..rotated.clone()
        }]
    );
    let removed = store.delete_key("k1".into()).await.unwrap();
    assert_eq!(
        store.put_key(rotated.clone(), Some("cd".repeat(32))).await.unwrap_err(),
        StoreError::Conflict,
        "a change racing a removal does not bring the key back"
    );
    assert_eq!(store.delete_key("k1".into()).await.unwrap_err(), StoreError::NotFound);
    assert!(store.keys().await.unwrap().is_empty());
    // Each change is logged as a keys change, nothing else.
    let feed = store.changes_since(first.position - 1, 10).await.unwrap();
    let logged: Vec<_> = feed.changes.iter().map(|c| c.change.clone()).collect();
    assert_eq!(logged, vec![Change::Keys("k1".into()); 3]);
    assert_eq!(feed.head.position, removed.position);
}

async fn audit(store: Arc<dyn Store>) {
    use qrlaunch::replication::audit::{scope, Actor, Query};
    let alice = Actor {
        key_id: "k-alice".into(),
        key_name: "alice".into(),
        client: Some("192.0.2.7".into()),
    };
    let put = scope(alice.clone(), store.put(code("a1", "x=1", &["t"]), WriteMode::Upsert))
        .await
        .unwrap();
    let failed = scope(
        alice.clone(),
        store.modify(
            EntryKey::Code("a1".into()),
            Box::new(|_| Err(FieldError::new("query", "refused"))),
        ),
    )
    .await;
    assert!(failed.is_err());
    scope(alice.clone(), store.delete(EntryKey::Code("a1".into())))
        .await
        .unwrap();
    store
        .import(
            WriteMode::Upsert,
            lines(&[r#"{"code":"i1","appid":"wx1234567890abcdef","path":"p"}"#]),
        )
        .await
        .unwrap();
    let all = |q: Query| {
        let store = store.clone();
        async move { store.audit(Query { limit: 100, ..q }).await.unwrap() }
    };
    let found = all(Query::default()).await;
    let actions: Vec<&str> = found.iter().map(|l| l.record.action.as_str()).collect();
    assert_eq!(
        actions,
        ["import", "delete", "create"],
        "newest first; the failed patch left none"
    );
    assert_eq!(found[2].actor, alice);
    assert_eq!(found[2].position, put.position);
    assert!(found[2].record.before.is_none());
    assert!(found[2].record.after.as_deref().unwrap().contains("x=1"));
    assert!(found[1].record.before.as_deref().unwrap().contains("x=1") && found[1].record.after.is_none());
    assert_eq!(found[0].actor, Actor::service(), "outside a request: the service");
    assert!(found[0].record.after.as_deref().unwrap().contains("\"codes\":1"));
    // Filters and the cursor.
    let a1 = all(Query {
        entry: Some("a1".into()),
        ..Query::default()
    })
    .await;
    assert_eq!(a1.len(), 2);
    let by_key = all(Query {
        key_id: Some("k-alice".into()),
        ..Query::default()
    })
    .await;
    assert_eq!(by_key.len(), 2);
    let older = all(Query {
        before_id: Some(found[1].id),
        ..Query::default()
    })
    .await;
    assert_eq!(older.len(), 1);
    let later = all(Query {
        from_ms: Some(i64::MAX),
        ..Query::default()
    })
    .await;
    assert!(later.is_empty());
    assert_eq!(store.prune_audit(i64::MAX).await.unwrap(), 3);
    assert!(all(Query::default()).await.is_empty());
}

async fn wakeups(store: Arc<dyn Store>) {
    let mut wakeups = store.wakeups().await.unwrap();
    let put = store.put(code("w1", "", &[]), WriteMode::Insert).await.unwrap();
    let woke = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match wakeups.next().await.unwrap() {
                Wakeup::Committed(position) if position >= put.position => return position,
                _ => {}
            }
        }
    })
    .await
    .expect("a wake-up within 10 s");
    assert_eq!(woke, put.position);
}

async fn certificates(store: Arc<dyn Store>) {
    use qrlaunch::replication::store::StoredCertificate;
    assert!(store.certificates().await.unwrap().is_empty());
    let cert = StoredCertificate {
        name: "go.shop-example.com".into(),
        chain_pem: "-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----\n".into(),
        key_pem: "-----BEGIN PRIVATE KEY-----\nB\n-----END PRIVATE KEY-----\n".into(),
        not_before: 1_000,
        not_after: 4_000,
        renew_after: 3_000,
        issuer: "https://acme.example/dir".into(),
        updated_at: 5,
    };
    let first = store.put_certificate(cert.clone()).await.unwrap();
    let renewed = StoredCertificate {
        chain_pem: "renewed".into(),
        not_after: 8_000,
        renew_after: 6_000,
        ..cert.clone()
    };
    let second = store.put_certificate(renewed.clone()).await.unwrap();
    assert_eq!(second.position, first.position + 1);
    assert_eq!(
        store.certificates().await.unwrap(),
        vec![renewed],
        "replaced, not added"
    );
    let feed = store.changes_since(first.position - 1, 10).await.unwrap();
    let logged: Vec<Change> = feed.changes.into_iter().map(|c| c.change).collect();
    assert_eq!(
        logged,
        vec![
            Change::Certificates("go.shop-example.com".into()),
            Change::Certificates("go.shop-example.com".into())
        ]
    );
    let audit = store
        .audit(qrlaunch::replication::audit::Query {
            before_id: None,
            limit: 10,
            key_id: None,
            entry: Some("go.shop-example.com".into()),
            from_ms: None,
            to_ms: None,
            entries_only: false,
        })
        .await
        .unwrap();
    let actions: Vec<&str> = audit.iter().map(|r| r.record.action.as_str()).collect();
    assert_eq!(actions, ["certificate_renew", "certificate_create"]);
    let removed = store.delete_certificate("go.shop-example.com".into()).await.unwrap();
    assert_eq!(removed.position, second.position + 1);
    assert!(store.certificates().await.unwrap().is_empty());
    assert_eq!(
        store
            .delete_certificate("go.shop-example.com".into())
            .await
            .unwrap_err(),
        StoreError::NotFound
    );
    let feed = store.changes_since(second.position, 10).await.unwrap();
    assert_eq!(
        feed.changes.last().map(|c| c.change.clone()),
        Some(Change::Certificates("go.shop-example.com".into())),
        "a removal is logged too"
    );
    assert!(
        audit.iter().all(|r| !format!("{:?}", r.record).contains("PRIVATE KEY")),
        "no key in the audit log"
    );
    assert!(!format!("{cert:?}").contains("PRIVATE KEY"), "nor in Debug");

    let directory = "https://acme.example/dir".to_string();
    assert_eq!(store.acme_account(directory.clone()).await.unwrap(), None);
    let kept = store
        .keep_acme_account(directory.clone(), "{\"id\":\"first\"}".into())
        .await
        .unwrap();
    assert_eq!(kept, "{\"id\":\"first\"}");
    let raced = store
        .keep_acme_account(directory.clone(), "{\"id\":\"second\"}".into())
        .await
        .unwrap();
    assert_eq!(raced, "{\"id\":\"first\"}", "the first account kept wins");
    assert_eq!(store.acme_account(directory).await.unwrap(), Some(kept));

    // One holder of the ACME lease at a time; it renews it; another takes
    // it only once it lapsed.
    assert!(store.take_acme_lease("a".into(), 1_000, 2_000).await.unwrap());
    assert!(
        !store.take_acme_lease("b".into(), 1_500, 2_500).await.unwrap(),
        "held by a"
    );
    assert!(
        store.take_acme_lease("a".into(), 1_900, 3_000).await.unwrap(),
        "renewed"
    );
    assert!(
        !store.take_acme_lease("b".into(), 2_999, 4_000).await.unwrap(),
        "renewed until 3000"
    );
    assert!(store.take_acme_lease("b".into(), 3_001, 4_000).await.unwrap(), "lapsed");
    assert!(
        !store.take_acme_lease("a".into(), 3_500, 5_000).await.unwrap(),
        "b's now"
    );
}

/// Runs every case on a fresh store from `open(case_number)`; all failures
/// are reported together, each with its case and backend.
fn run_all<F, Fut>(backend: &str, open: F)
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Arc<dyn Store>>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut failed = Vec::new();
    for (n, (name, case)) in CASES.iter().enumerate() {
        let store = runtime.block_on(open(n));
        let outcome = runtime.block_on(async { tokio::spawn(case(store)).await });
        if let Err(error) = outcome {
            let message = error
                .try_into_panic()
                .ok()
                .and_then(|p| {
                    p.downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                })
                .unwrap_or_default();
            failed.push(format!("{backend}: {name}: {message}"));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn the_contract_holds_on_sqlite() {
    let dirs: Vec<tempfile::TempDir> = CASES.iter().map(|_| temp_dir()).collect();
    run_all("sqlite", |n| {
        let path = dirs[n].path().to_path_buf();
        async move {
            let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await.unwrap());
            store
        }
    });
}

#[test]
fn the_contract_holds_on_postgres() {
    let Some(cluster) = PgCluster::start() else { return };
    let urls: Vec<String> = (0..CASES.len())
        .map(|n| cluster.database(&format!("contract_{n}")))
        .collect();
    run_all("postgres", |n| {
        let url = urls[n].clone();
        async move {
            let store: Arc<dyn Store> = Arc::new(PostgresStore::connect(&url).await.unwrap());
            store
        }
    });
}

/// A snapshot checks every row on several threads: a row that does not
/// check (here a query edited to start with `?` behind the store's back)
/// fails the snapshot with `Corrupt`, after thousands of good rows and
/// without waiting for ever on the threads that stopped.
#[test]
fn a_corrupt_row_fails_a_sqlite_snapshot() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    snapshot_reads_all_and_fails_on_a_corrupt_row(&runtime);
}

/// The same on a thread pinned to one CPU (as a node under `taskset`),
/// where the reader and its decoders take turns on one core.
#[test]
fn a_sqlite_snapshot_on_one_cpu_reads_and_checks_alike() {
    std::thread::spawn(|| {
        // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET and
        // sched_setaffinity(0, ..) only touch this thread's mask.
        let pinned = unsafe {
            let mut one: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(0, &mut one);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &one)
        };
        assert_eq!(pinned, 0, "sched_setaffinity failed");
        assert_eq!(std::thread::available_parallelism().unwrap().get(), 1);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        snapshot_reads_all_and_fails_on_a_corrupt_row(&runtime);
    })
    .join()
    .unwrap();
}

fn snapshot_reads_all_and_fails_on_a_corrupt_row(runtime: &tokio::runtime::Runtime) {
    let dir = temp_dir();
    let texts: Vec<String> = (0..20_000)
        .map(|i| format!(r#"{{"code":"c{i}","appid":"wx1234567890abcdef","path":"p","query":"n={i}"}}"#))
        .collect();
    let read = runtime.block_on(async {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        store.import(WriteMode::Insert, lines(&texts)).await.unwrap();
        let keys = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = keys.clone();
        store
            .snapshot(Box::new(move |e| {
                sink.lock().unwrap().push(e.key().as_str().to_string())
            }))
            .await
            .unwrap();
        let mut keys = keys.lock().unwrap().clone();
        keys.sort();
        keys
    });
    let mut want: Vec<String> = (0..20_000).map(|i| format!("c{i}")).collect();
    want.sort();
    assert_eq!(read, want, "every row, once");
    let db = rusqlite::Connection::open(dir.path().join("qrlaunch.db")).unwrap();
    db.execute("UPDATE codes SET query = '?n=1' WHERE code IN ('c7', 'c9000')", [])
        .unwrap();
    drop(db);
    let outcome = runtime.block_on(async {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
        let sink = Box::new(|_entry: &Entry| {});
        tokio::time::timeout(Duration::from_secs(60), store.snapshot(sink)).await
    });
    match outcome {
        Ok(Err(StoreError::Corrupt(message))) => assert!(message.contains("query"), "{message}"),
        other => panic!("expected a corrupt row, got {other:?}"),
    }
}
