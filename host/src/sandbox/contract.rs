//! Which components this host can run: the `whatap:rds-mapper` contract, versioned by semver.
//!
//! The version is read from the component's export names before anything is linked, so a
//! component built for another contract is refused with both versions named instead of a
//! linker error about a missing export.

use semver::Version;
use wasmtime::Engine;
use wasmtime::component::Component;

use super::error::LoadError;

/// The WIT package both sides are built from.
pub const PACKAGE: &str = "whatap:rds-mapper";
/// The interface a mapper exports.
pub const EXPORT_INTERFACE: &str = "mapper";
/// The contract version this host implements (the version in `wit/mapper.wit`).
pub const HOST_CONTRACT: &str = "1.3.0";

fn host_version() -> Version {
    Version::parse(HOST_CONTRACT).expect("HOST_CONTRACT is a valid semver")
}

/// Whether a component built for `theirs` can run here: same major version, and no newer
/// minor version than ours (a newer minor may import functions we do not provide).
pub fn is_compatible(theirs: &Version) -> bool {
    let ours = host_version();
    theirs.major == ours.major && theirs.minor <= ours.minor
}

/// Finds the contract version in the component's exports and checks it.
pub fn check_exports(engine: &Engine, component: &Component) -> Result<Version, LoadError> {
    let prefix = format!("{PACKAGE}/{EXPORT_INTERFACE}@");
    let ty = component.component_type();
    let mut names = Vec::new();
    for (name, _) in ty.exports(engine) {
        if let Some(v) = name.strip_prefix(&prefix) {
            let found = Version::parse(v).map_err(|_| LoadError::NotThisContract {
                exports: name.to_owned(),
            })?;
            check_version(&found)?;
            return Ok(found);
        }
        names.push(name.to_owned());
    }
    Err(LoadError::NotThisContract {
        exports: if names.is_empty() {
            "nothing".to_owned()
        } else {
            names.join(", ")
        },
    })
}

/// Checks a version reported by the component (its export name, or `describe().contract`).
pub fn check_version(found: &Version) -> Result<(), LoadError> {
    if is_compatible(found) {
        Ok(())
    } else {
        Err(LoadError::IncompatibleContract {
            found: found.to_string(),
            host: HOST_CONTRACT.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_major_and_older_or_equal_minor_is_compatible() {
        assert!(is_compatible(&Version::new(1, 0, 0)));
        assert!(is_compatible(&Version::new(1, 0, 7)));
        assert!(is_compatible(&Version::new(1, 1, 0)));
        assert!(is_compatible(&Version::new(1, 2, 0)));
        assert!(is_compatible(&Version::new(1, 3, 0)));
        assert!(!is_compatible(&Version::new(1, 4, 0)));
        assert!(!is_compatible(&Version::new(2, 0, 0)));
        assert!(!is_compatible(&Version::new(0, 9, 0)));
    }

    #[test]
    fn refusal_names_both_versions() {
        let e = check_version(&Version::new(2, 0, 0)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the mapper was built for contract whatap:rds-mapper@2.0.0, but this host \
             implements whatap:rds-mapper@1.3.0 (compatible: 1.0.x to 1.3.x)"
        );
    }
}
