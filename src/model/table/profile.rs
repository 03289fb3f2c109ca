//! Interned entry points.
//!
//! A million codes typically share a handful of (appid, path, env_version,
//! fallback_url, schedule) combinations; only the code and its query differ.
//! Each distinct combination is stored once as a [`Profile`], with the
//! constant parts of its scheme URL already rendered, and records point at
//! it by index. This is what keeps a code at well under 128 bytes.

use crate::model::domain::{AppId, CountBy, EntryPoint, EnvVersion, FallbackUrl, PagePath, Schedule};
use crate::model::scheme_url;
use hashbrown::HashTable;

/// Everything about an entry except its key and its query.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProfileKey {
    pub appid: AppId,
    pub path: PagePath,
    pub env_version: EnvVersion,
    pub fallback_url: Option<FallbackUrl>,
    pub schedule: Schedule,
    /// A rule's query parameter counted by value; `None` for codes.
    pub count_by: Option<CountBy>,
}

/// An interned [`ProfileKey`] plus its pre-rendered scheme URL parts.
#[derive(Debug)]
pub struct Profile {
    pub key: ProfileKey,
    /// `weixin://dl/business/?appid=…&path=…&query=`
    pub scheme_head: Box<str>,
    /// `&env_version=…`
    pub scheme_tail: Box<str>,
}

/// Hands out one index per distinct [`ProfileKey`].
#[derive(Default)]
pub(crate) struct ProfileInterner {
    hasher: ahash::RandomState,
    /// Indexes into `profiles`, by the hash of their key.
    index: HashTable<u32>,
    profiles: Vec<Profile>,
}

/// A [`ProfileKey`] borrowed from an entry: looked up without copying the
/// entry's texts, which a table built from a million codes would otherwise
/// copy and free a million times for a handful of profiles.
#[derive(Hash, PartialEq, Eq)]
struct ProfileRef<'a> {
    appid: &'a AppId,
    path: &'a PagePath,
    env_version: EnvVersion,
    fallback_url: Option<&'a FallbackUrl>,
    schedule: Schedule,
    count_by: Option<&'a CountBy>,
}

impl ProfileKey {
    fn borrowed(&self) -> ProfileRef<'_> {
        ProfileRef {
            appid: &self.appid,
            path: &self.path,
            env_version: self.env_version,
            fallback_url: self.fallback_url.as_ref(),
            schedule: self.schedule,
            count_by: self.count_by.as_ref(),
        }
    }
}

impl ProfileInterner {
    /// The index of the profile of an entry point with its schedule (and a
    /// rule's `count_by`), added when it is new.
    pub fn intern(&mut self, entry: &EntryPoint, schedule: Schedule, count_by: Option<&CountBy>) -> u32 {
        let wanted = ProfileRef {
            appid: &entry.appid,
            path: &entry.path,
            env_version: entry.env_version,
            fallback_url: entry.fallback_url.as_ref(),
            schedule,
            count_by,
        };
        self.find_or_add(wanted, || Profile {
            scheme_head: scheme_url::head(entry.appid.as_str(), entry.path.as_str()).into(),
            scheme_tail: scheme_url::tail(entry.env_version.as_str()).into(),
            key: ProfileKey {
                appid: entry.appid.clone(),
                path: entry.path.clone(),
                env_version: entry.env_version,
                fallback_url: entry.fallback_url.clone(),
                schedule,
                count_by: count_by.cloned(),
            },
        })
    }

    /// The index of another table's profile in this one, copied when new
    /// (its scheme URL parts are not rendered again).
    pub fn intern_profile(&mut self, profile: &Profile) -> u32 {
        self.find_or_add(profile.key.borrowed(), || Profile {
            key: profile.key.clone(),
            scheme_head: profile.scheme_head.clone(),
            scheme_tail: profile.scheme_tail.clone(),
        })
    }

    fn find_or_add(&mut self, wanted: ProfileRef<'_>, make: impl FnOnce() -> Profile) -> u32 {
        let ProfileInterner {
            hasher,
            index,
            profiles,
        } = self;
        let hash = hasher.hash_one(&wanted);
        if let Some(&id) = index.find(hash, |&id| profiles[id as usize].key.borrowed() == wanted) {
            return id;
        }
        let id = u32::try_from(profiles.len()).expect("fewer than 2^32 distinct profiles");
        profiles.push(make());
        index.insert_unique(hash, id, |&id| hasher.hash_one(profiles[id as usize].key.borrowed()));
        id
    }

    pub fn into_profiles(self) -> Vec<Profile> {
        let mut profiles = self.profiles;
        profiles.shrink_to_fit();
        profiles
    }
}
