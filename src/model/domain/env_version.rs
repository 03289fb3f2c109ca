use super::{excerpt, FieldError};
use std::fmt;
use std::str::FromStr;

/// Which build of the mini program opens: the published one, the trial
/// build, or the developer build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub enum EnvVersion {
    #[default]
    Release,
    Trial,
    Develop,
}

impl EnvVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            EnvVersion::Release => "release",
            EnvVersion::Trial => "trial",
            EnvVersion::Develop => "develop",
        }
    }
}

impl FromStr for EnvVersion {
    type Err = FieldError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "release" => Ok(EnvVersion::Release),
            "trial" => Ok(EnvVersion::Trial),
            "develop" => Ok(EnvVersion::Develop),
            _ => Err(FieldError::new(
                "env_version",
                format!("must be `release`, `trial` or `develop`, got {}", excerpt(s)),
            )),
        }
    }
}

impl fmt::Display for EnvVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_unknown() {
        for env in [EnvVersion::Release, EnvVersion::Trial, EnvVersion::Develop] {
            assert_eq!(env.as_str().parse::<EnvVersion>().unwrap(), env);
        }
        assert_eq!(EnvVersion::default(), EnvVersion::Release);
        for bad in ["", "Release", "prod", "trial "] {
            assert_eq!(bad.parse::<EnvVersion>().unwrap_err().field, "env_version");
        }
    }
}
