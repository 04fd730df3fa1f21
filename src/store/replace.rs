//! Replacing a whole sled store (a restore) without ever leaving a half-made one in its place.
//! The new store is built beside the old one, marked complete by a rename, and swapped in by
//! two more; a crash at any point leaves either the old store or the complete new one, and the
//! next open finishes or undoes the swap.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{SledStore, Store, StoreError};

/// Where each stage lives, beside the store at `path`.
struct Stages {
    live: PathBuf,
    /// Being filled: incomplete by definition.
    building: PathBuf,
    /// Filled and flushed: complete, waiting to be swapped in.
    built: PathBuf,
    /// The store that was replaced, until it is removed.
    old: PathBuf,
}

impl Stages {
    fn of(path: &Path) -> Self {
        let with = |suffix: &str| {
            let mut name = path.file_name().unwrap_or_default().to_owned();
            name.push(suffix);
            path.with_file_name(name)
        };
        Self {
            live: path.to_owned(),
            building: with(".restoring"),
            built: with(".restored"),
            old: with(".replaced"),
        }
    }
}

fn io(e: io::Error) -> StoreError {
    StoreError::Io(e.to_string())
}

fn remove(path: &Path) -> io::Result<()> {
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Finishes or undoes a swap a crash interrupted. Called before the store at `path` opens.
pub fn recover(path: &Path) -> Result<(), StoreError> {
    let stages = Stages::of(path);
    remove(&stages.building).map_err(io)?;
    if stages.built.exists() {
        if stages.live.exists() {
            fs::rename(&stages.live, &stages.old).map_err(io)?;
        }
        fs::rename(&stages.built, &stages.live).map_err(io)?;
    }
    remove(&stages.old).map_err(io)
}

/// Builds a new store with `fill` beside the one at `path` and swaps it in only once `fill`
/// succeeded and everything is on disk. On any failure the store at `path` is untouched.
pub fn replace_sled<T, E>(
    path: &Path,
    fill: impl FnOnce(&dyn Store) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<StoreError>,
{
    recover(path)?;
    let stages = Stages::of(path);
    let filled = {
        let store = SledStore::open(&stages.building)?;
        let filled = fill(&store)?;
        store.flush()?;
        filled
    };
    // sled's flusher may still hold the directory for a moment after its last handle drops;
    // the rename below does not mind.
    fs::rename(&stages.building, &stages.built).map_err(io)?;
    recover(path)?;
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Username;

    fn users_in(path: &Path) -> Vec<String> {
        // sled's flusher may hold the lock a moment after the last handle dropped.
        let store = (0..100)
            .find_map(|_| match SledStore::open(path) {
                Err(StoreError::Locked(_)) => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    None
                }
                other => Some(other.unwrap()),
            })
            .unwrap();
        store
            .users()
            .unwrap()
            .into_iter()
            .map(|u| u.name.to_string())
            .collect()
    }

    fn user(name: &str) -> crate::domain::User {
        let ctx = crate::domain::UserContext {
            domain: "example.com",
            now: 1,
            new_secret: &|| crate::domain::Secret::new("s"),
        };
        crate::domain::User::create(Username::parse(name).unwrap(), Default::default(), &ctx)
            .unwrap()
    }

    #[test]
    fn a_failed_fill_leaves_the_old_store_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        {
            let store = SledStore::open(&path).unwrap();
            store.put_user(&user("alice")).unwrap();
            store.flush().unwrap();
        }
        let failed: Result<(), StoreError> = replace_sled(&path, |store| {
            store.put_user(&user("bob"))?;
            Err(StoreError::Corrupt("half-way".into()))
        });
        assert!(failed.is_err());
        assert_eq!(users_in(&path), ["alice"]);
        assert!(!Stages::of(&path).building.exists());

        replace_sled::<_, StoreError>(&path, |store| store.put_user(&user("bob"))).unwrap();
        assert_eq!(users_in(&path), ["bob"]);
    }

    #[test]
    fn a_crash_after_the_new_store_was_complete_is_finished_on_the_next_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        let stages = Stages::of(&path);
        {
            let old = SledStore::open(&path).unwrap();
            old.put_user(&user("alice")).unwrap();
            old.flush().unwrap();
            let new = SledStore::open(&stages.built).unwrap();
            new.put_user(&user("bob")).unwrap();
            new.flush().unwrap();
        }
        // The crash came between marking the new store complete and swapping it in.
        recover(&path).unwrap();
        assert_eq!(users_in(&path), ["bob"]);
        assert!(!stages.built.exists() && !stages.old.exists());
    }
}
