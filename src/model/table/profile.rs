//! Interned entry points.
//!
//! A million codes typically share a handful of (appid, path, env_version,
//! fallback_url, schedule) combinations; only the code and its query differ.
//! Each distinct combination is stored once as a [`Profile`], with the
//! constant parts of its scheme URL already rendered, and records point at
//! it by index. This is what keeps a code at well under 128 bytes.

use crate::model::domain::{AppId, CountBy, EnvVersion, FallbackUrl, PagePath, Schedule};
use crate::model::scheme_url;
use std::collections::HashMap;

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
    index: HashMap<ProfileKey, u32, ahash::RandomState>,
    profiles: Vec<Profile>,
}

impl ProfileInterner {
    pub fn intern(&mut self, key: ProfileKey) -> u32 {
        if let Some(&id) = self.index.get(&key) {
            return id;
        }
        let id = u32::try_from(self.profiles.len()).expect("fewer than 2^32 distinct profiles");
        self.profiles.push(Profile {
            scheme_head: scheme_url::head(key.appid.as_str(), key.path.as_str()).into(),
            scheme_tail: scheme_url::tail(key.env_version.as_str()).into(),
            key: key.clone(),
        });
        self.index.insert(key, id);
        id
    }

    pub fn into_profiles(self) -> Vec<Profile> {
        let mut profiles = self.profiles;
        profiles.shrink_to_fit();
        profiles
    }
}
