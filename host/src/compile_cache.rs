//! Compiled mappers kept on disk for the command line, so that `invoke`, `test-mapper` and
//! `describe` compile a mapper once, not at every run: the JIT of the embedded mapper takes
//! some 180 ms, loading its compiled code a few.
//!
//! An entry is named after the component's SHA-256, the engine's compatibility hash (wasmtime
//! version, target, CPU features, settings) and the mapper's epoch checks, so a changed mapper
//! or host never finds another's code. Compiled code runs as native code, so the cache is used
//! only in a directory that belongs to the user running the command and that nobody else can
//! write (as the user's own files: whoever can write there can already change their
//! programs); otherwise it is left alone, with a warning. Entries are written whole (a
//! temporary file renamed), so a run cut short never leaves half an entry. Lambda never uses
//! it: the package's precompiled default stands in for it there.
//!
//! | variable | meaning |
//! |---|---|
//! | `RDS_FORWARDER_CACHE_DIR` | the directory (default `$XDG_CACHE_HOME/rds-forwarder`, else `~/.cache/rds-forwarder`) |
//! | `RDS_FORWARDER_CACHE` | `off`: compile at every run and write nothing |

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;

use crate::sandbox::EpochChecks;

/// A directory of compiled mappers.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: PathBuf,
}

/// Why the cache was not used; the command goes on without it.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}: not used: it is not this user's own, or others can write it")]
    Unsafe(PathBuf),
}

impl CompileCache {
    /// The cache the environment names, or `None` when it is turned off or no directory can
    /// be named (no `HOME`).
    pub fn from_env() -> Option<CompileCache> {
        Self::from_lookup(|k| std::env::var_os(k))
    }

    pub fn from_lookup(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> Option<CompileCache> {
        if var("RDS_FORWARDER_CACHE").is_some_and(|v| v == "off") {
            return None;
        }
        let set = |k: &str| var(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        let dir = set("RDS_FORWARDER_CACHE_DIR")
            .or_else(|| set("XDG_CACHE_HOME").map(|d| d.join("rds-forwarder")))
            .or_else(|| set("HOME").map(|h| h.join(".cache").join("rds-forwarder")))?;
        Some(CompileCache { dir })
    }

    pub fn at(dir: impl Into<PathBuf>) -> CompileCache {
        CompileCache { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The entry's file name for `component` compiled by `engine` with `checks`.
    pub fn key(component: &[u8], engine: &Engine, checks: EpochChecks) -> String {
        let mut engine_hash = std::collections::hash_map::DefaultHasher::new();
        engine
            .precompile_compatibility_hash()
            .hash(&mut engine_hash);
        env!("CARGO_PKG_VERSION").hash(&mut engine_hash);
        let sha = Sha256::digest(component);
        let sha: String = sha[..16].iter().map(|b| format!("{b:02x}")).collect();
        let checks = match checks {
            EpochChecks::Off => "u",
            EpochChecks::On => "e",
        };
        format!("{sha}-{:016x}-{checks}.cwasm", engine_hash.finish())
    }

    /// The entry's path when it exists in a directory safe to load code from, and is itself
    /// a file of this user's that no one else can write.
    pub fn lookup(&self, key: &str) -> Result<Option<PathBuf>, CacheError> {
        if !self.dir.exists() {
            return Ok(None);
        }
        check_private(&self.dir, true)?;
        let path = self.dir.join(key);
        if !path.exists() {
            return Ok(None);
        }
        check_private(&path, false)?;
        Ok(Some(path))
    }

    /// Writes an entry whole: a temporary file in the directory, renamed into place.
    pub fn store(&self, key: &str, code: &[u8]) -> Result<PathBuf, CacheError> {
        let io = |source| CacheError::Io {
            path: self.dir.clone(),
            source,
        };
        create_private_dir(&self.dir).map_err(io)?;
        check_private(&self.dir, true)?;
        let path = self.dir.join(key);
        let tmp = self.dir.join(format!(".{key}.{}.tmp", std::process::id()));
        // A leftover of a run cut short that had this process id.
        let _ = std::fs::remove_file(&tmp);
        let written = (|| {
            let mut f = create_private_file(&tmp)?;
            f.write_all(code)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(io(e));
        }
        Ok(path)
    }
}

/// `path` (a directory when `dir`, else a regular file, never a link) belongs to this user and
/// no one else may write it.
#[cfg(unix)]
fn check_private(path: &Path, dir: bool) -> Result<(), CacheError> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path).map_err(|source| CacheError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let kind = if dir { meta.is_dir() } else { meta.is_file() };
    if !kind || meta.uid() != me || meta.mode() & 0o022 != 0 {
        return Err(CacheError::Unsafe(path.to_path_buf()));
    }
    Ok(())
}

/// Without Unix ownership to check, the cache is not used.
#[cfg(not(unix))]
fn check_private(path: &Path, _dir: bool) -> Result<(), CacheError> {
    Err(CacheError::Unsafe(path.to_path_buf()))
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

/// A new file only this user can read or write, whatever the umask.
#[cfg(unix)]
fn create_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn create_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::create(path)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::ffi::OsString;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_directory_comes_from_the_environment_in_order() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        let dir = |pairs| CompileCache::from_lookup(env(pairs)).map(|c| c.dir);
        assert_eq!(
            dir(&[("HOME", "/h")]),
            Some(PathBuf::from("/h/.cache/rds-forwarder"))
        );
        assert_eq!(
            dir(&[("HOME", "/h"), ("XDG_CACHE_HOME", "/x")]),
            Some(PathBuf::from("/x/rds-forwarder"))
        );
        assert_eq!(
            dir(&[("HOME", "/h"), ("RDS_FORWARDER_CACHE_DIR", "/c")]),
            Some(PathBuf::from("/c"))
        );
        assert_eq!(dir(&[("HOME", "/h"), ("RDS_FORWARDER_CACHE", "off")]), None);
        assert_eq!(dir(&[]), None);
    }

    #[test]
    fn entries_are_stored_privately_and_found_again() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = CompileCache::at(tmp.path().join("cache"));
        assert!(cache.lookup("k.cwasm").unwrap().is_none());
        let path = cache.store("k.cwasm", b"code").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"code");
        assert_eq!(cache.lookup("k.cwasm").unwrap(), Some(path));
        let mode = std::fs::metadata(cache.dir()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let mode = std::fs::metadata(cache.dir().join("k.cwasm"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(cache.dir()).unwrap().count(), 1);
    }

    #[test]
    fn a_directory_others_can_write_is_not_used() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("shared");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let cache = CompileCache::at(&dir);
        let err = cache.lookup("k.cwasm").unwrap_err();
        assert!(
            err.to_string()
                .ends_with("not used: it is not this user's own, or others can write it"),
            "{err}"
        );
        assert!(cache.store("k.cwasm", b"code").is_err());
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    }

    #[test]
    fn an_entry_others_can_write_is_not_loaded() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = CompileCache::at(tmp.path().join("cache"));
        let path = cache.store("k.cwasm", b"code").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(matches!(
            cache.lookup("k.cwasm"),
            Err(CacheError::Unsafe(p)) if p == path
        ));
        // A link in place of an entry is not followed.
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(tmp.path(), &path).unwrap();
        assert!(cache.lookup("k.cwasm").is_err());
    }
}
